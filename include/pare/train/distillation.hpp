// distillation_loss: a window_loss that trains a student toward a teacher's logits (T²·KL + λ·CE, pare/distill/kd_loss.hpp) through the logits-gradient entry.
#pragma once

// For a window of n tokens the student's logits rows 0..n−2 (those with a next-token
// label) are compared with the teacher's on the same tokens; the loss is kd_loss's
// batch mean over those n − 1 rows (labels tokens[1..n−1] for the λ·CE term), and its
// gradient w.r.t. the student logits goes back through the student (llama_pass). The
// teacher is any function giving logits [n × vocab] for a token sequence:
// teacher_logits(model) runs a llama_model through llama_session (its own kernels,
// e.g. the uncompressed original), teacher_logits(params) a llama_params<float> through
// the training forward. The teacher must outlive the loss.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/distill/kd_loss.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/train/window_loss.hpp"

PARE_NAMESPACE_BEGIN

/// Writes the teacher's logits [tokens.size() × vocab] (row-major) into `logits`.
using teacher_logits_fn = std::function<void(const std::vector<std::int32_t>& tokens, std::vector<float>& logits)>;

/// A llama_model teacher (llama_session forward, all positions).
inline teacher_logits_fn teacher_logits(const llama_model& teacher) {
  auto session = std::make_shared<llama_session>(teacher);
  return [session](const std::vector<std::int32_t>& tokens, std::vector<float>& logits) {
    session->reset();
    session->forward(tokens.data(), tokens.size(), logits, /*all_logits=*/true);
  };
}

/// A llama_params<float> teacher (training forward, no tape kept beyond the call).
inline teacher_logits_fn teacher_logits(const llama_params<float>& teacher) {
  auto pass = std::make_shared<llama_pass<float>>();
  return [pass, &teacher](const std::vector<std::int32_t>& tokens, std::vector<float>& logits) {
    pass->forward(teacher, tokens);
    const auto lg = pass->logits();
    logits.assign(lg.data(), lg.data() + lg.rows() * lg.cols());
  };
}

/// The KD window loss (see above). argument_error for an empty teacher; kd_loss's errors
/// (temperature, λ, a teacher of another vocabulary) on the first call.
inline window_loss distillation_loss(teacher_logits_fn teacher, kd_options opt = {}) {
  if (!teacher) detail::fail<argument_error>("distillation_loss: argument 'teacher': expected a function, got an empty one");
  auto pass = std::make_shared<llama_pass<float>>();
  auto tbuf = std::make_shared<std::vector<float>>();
  return [teacher = std::move(teacher), opt, pass, tbuf](const llama_params<float>& p, const std::vector<std::int32_t>& w,
                                                          llama_params<float>* grad, bool acc) {
    detail::check_training_tokens<float>("distillation_loss", p.config, w);
    teacher(w, *tbuf);
    const std::size_t n = w.size(), vocab = static_cast<std::size_t>(p.config.vocab_size);
    if (tbuf->size() != n * vocab)
      detail::fail<shape_error>("distillation_loss: argument 'teacher': expected ", n, " × ", vocab, " logits, got ", tbuf->size(), " values");
    const std::vector<std::int32_t> labels(w.begin() + 1, w.end());
    return logits_loss_and_grad(
        p, w,
        [&](const matrix_view<const float>& lg, const matrix_view<float>& dl) {
          const matrix_view<const float> student(lg.data(), n - 1, vocab, lg.row_stride());
          const matrix_view<const float> teach(tbuf->data(), n - 1, vocab);
          const matrix_view<float> g(dl.data(), n - 1, vocab, dl.row_stride());
          return float(kd_loss_and_grad(student, teach, labels, opt, g).loss);
        },
        grad, acc, pass.get());
  };
}

PARE_NAMESPACE_END
