// window_loss: the pluggable per-window loss-and-gradient function of the training loop, gradient accumulation over windows, and the cross-entropy instance.
#pragma once

// A window_loss computes the loss of one token window and, if grad is non-null, writes
// its gradient into *grad (added with `accumulate`, as loss_and_grad does):
//
//     double loss(const llama_params<float>& params, const std::vector<std::int32_t>& window,
//                 llama_params<float>* grad, bool accumulate)
//
// cross_entropy_loss() is mean next-token cross-entropy (loss_and_grad);
// distillation_loss() (train/distillation.hpp) the KD loss against a teacher.
// accumulate_gradients() runs k windows into one gradient: the mean of their gradients,
// i.e. the gradient of the mean loss.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/train/parameter_set.hpp"

PARE_NAMESPACE_BEGIN

using window_loss = std::function<double(const llama_params<float>& params, const std::vector<std::int32_t>& window,
                                         llama_params<float>* grad, bool accumulate)>;

/// Mean next-token cross-entropy of the window (the training forward's buffers are kept
/// between calls; one instance per thread of training).
inline window_loss cross_entropy_loss() {
  auto pass = std::make_shared<llama_pass<float>>();
  return [pass](const llama_params<float>& p, const std::vector<std::int32_t>& w, llama_params<float>* grad, bool acc) {
    detail::check_training_tokens<float>("cross_entropy_loss", p.config, w);
    return double(logits_loss_and_grad(
        p, w, [&](const matrix_view<const float>& lg, const matrix_view<float>& dl) { return next_token_ce(lg, w, dl); },
        grad, acc, pass.get()));
  };
}

/// Loss and gradient of the mean loss over `windows` (k >= 1): ps.gradients() receives
/// (1/k)·Σ ∇loss(window) (every tensor), and the mean loss is returned. Windows run one
/// after another (each one's forward/backward uses the threads).
inline double accumulate_gradients(parameter_set& ps, const std::vector<std::vector<std::int32_t>>& windows,
                                   const window_loss& loss) {
  if (windows.empty())
    detail::fail<argument_error>("accumulate_gradients: argument 'windows': expected at least one window, got none");
  if (!loss) detail::fail<argument_error>("accumulate_gradients: argument 'loss': expected a function, got an empty one");
  double total = 0;
  for (std::size_t w = 0; w < windows.size(); ++w) total += loss(ps.params(), windows[w], &ps.gradients(), w > 0);
  const float inv = 1.0f / float(windows.size());
  if (windows.size() > 1)
    for (auto& [name, v] : ps.gradients().named())
      for (float& x : *v) x *= inv;
  return total / double(windows.size());
}

PARE_NAMESPACE_END
