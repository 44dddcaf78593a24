// Structured pruning of the reference model: block (depth) scores by PPL-drop, Taylor+ and magnitude as in "Shortened LLaMA", depth pruning one-shot and iterative, and feed-forward width pruning — the llama_model entry points of pare/prune/'s model-level pruners.
#pragma once

// These functions run the model-level criteria and engine of pare/prune/ (model_criteria.hpp,
// prune_spec.hpp) on a llama_model through llama_block_model:
//   ppl_drop_scores(m, eval)      eval(model with block i removed) for every i: the
//                                 perplexity without the block (Shortened LLaMA's PPL
//                                 criterion); the model is restored before returning
//   taylor_block_scores(m, calib) Σ over the block's weights of |w · ∂L/∂w|, L the mean
//                                 next-token loss over the calibration windows (exact
//                                 backward pass, llama_grad.hpp)
//   magnitude_block_scores(m)     Σ |w| over the block's linear weights
//   select_blocks_to_remove(scores, n, keep_first, keep_last) = prune::select_blocks
//   depth_prune / depth_prune_iterative(m, n, criterion, keep_first, keep_last): remove the
//                                 n least important blocks at once, or one at a time
//                                 re-scoring after each; `criterion` is any function of the
//                                 current model giving block importance (higher = keep)
//   ffn_neuron_scores(m, layer, criterion, calib) and prune_ffn_width(m, fraction,
//                                 criterion, calib): prune::neuron_importance and the ffn
//                                 granularity ("magnitude", "activation", "activation_l2",
//                                 "apoz" — ReLU MLPs only, an argument_error on SwiGLU),
//                                 keeping round((1 − fraction)·hidden) neurons in every block
// Bad input (n ≥ block count or more than the candidates, fraction outside [0, 1),
// missing calibration) → argument_error; the model is unchanged.

#include <cstdint>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/model/calibration.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/surgery.hpp"
#include "pare/pipeline/llama_block_model.hpp"
#include "pare/prune/model_criteria.hpp"
#include "pare/prune/prune_spec.hpp"

PARE_NAMESPACE_BEGIN

/// Perplexity (or any loss) of the model with each block removed in turn.
inline std::vector<double> ppl_drop_scores(llama_model& m, const std::function<double(const llama_model&)>& eval) {
  llama_block_model bm(m, {eval, {}, {}, nullptr});
  return prune::block_importance(prune::ppl_drop{}, bm);
}

/// Σ_w |w · ∂L/∂w| per block, L the mean loss over `windows` (each 2..seq_len tokens).
inline std::vector<double> taylor_block_scores(const llama_model& m, const std::vector<std::vector<std::int32_t>>& windows) {
  if (windows.empty()) detail::fail<argument_error>("taylor_block_scores: argument 'windows': expected at least one window");
  // Read only: the Taylor criterion reads weights and gradients, it never changes the model.
  llama_block_model bm(const_cast<llama_model&>(m), {{}, windows, {}, nullptr});
  return prune::block_importance(prune::taylor{}, bm);
}

/// Σ |w| over each block's linear weights.
inline std::vector<double> magnitude_block_scores(const llama_model& m) {
  llama_block_model bm(const_cast<llama_model&>(m));  // read only, as above
  return prune::block_importance(prune::magnitude{}, bm);
}

/// Indices (ascending) of the n least important blocks among those not kept.
inline std::vector<std::size_t> select_blocks_to_remove(const std::vector<double>& importance, std::size_t n,
                                                        std::size_t keep_first = 0, std::size_t keep_last = 0) {
  return prune::select_blocks(importance, n, keep_first, keep_last);
}

/// A block criterion: importance of every block of the current model (higher = keep).
using block_criterion = std::function<std::vector<double>(llama_model&)>;

inline block_criterion ppl_drop_criterion(std::function<double(const llama_model&)> eval) {
  return [eval](llama_model& m) { return ppl_drop_scores(m, eval); };
}
inline block_criterion taylor_criterion(std::vector<std::vector<std::int32_t>> windows) {
  return [windows](llama_model& m) { return taylor_block_scores(m, windows); };
}
inline block_criterion magnitude_criterion() {
  return [](llama_model& m) { return magnitude_block_scores(m); };
}

/// Removes the n least important blocks at once; returns their original indices.
inline std::vector<std::size_t> depth_prune(llama_model& m, std::size_t n, const block_criterion& importance,
                                            std::size_t keep_first = 0, std::size_t keep_last = 0) {
  const std::vector<std::size_t> which = prune::select_blocks(importance(m), n, keep_first, keep_last);
  remove_blocks(m, which);
  return which;
}

/// Removes n blocks one at a time, re-scoring after each; returns the original indices in removal order.
inline std::vector<std::size_t> depth_prune_iterative(llama_model& m, std::size_t n, const block_criterion& importance,
                                                      std::size_t keep_first = 0, std::size_t keep_last = 0) {
  (void)prune::select_blocks(std::vector<double>(m.blocks.size(), 0.0), n, keep_first, keep_last);  // validates n
  std::vector<std::size_t> original(m.blocks.size());
  std::iota(original.begin(), original.end(), 0);
  std::vector<std::size_t> removed;
  for (std::size_t step = 0; step < n; ++step) {
    const std::size_t i = prune::select_blocks(importance(m), 1, keep_first, keep_last)[0];
    remove_blocks(m, {i});
    removed.push_back(original[i]);
    original.erase(original.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return removed;
}

namespace detail {
inline prune::criterion_kind ffn_criterion(const char* where, const std::string& criterion) {
  if (criterion == "magnitude") return prune::criterion_kind::magnitude;
  if (criterion == "activation") return prune::criterion_kind::activation;
  if (criterion == "activation_l2") return prune::criterion_kind::activation_l2;
  if (criterion == "apoz") return prune::criterion_kind::apoz;
  fail<argument_error>(where, ": argument 'criterion': expected magnitude, activation, activation_l2 or apoz, got '",
                       criterion, "'");
}
}  // namespace detail

/// Importance of each hidden neuron of block `layer`'s feed-forward network.
inline std::vector<double> ffn_neuron_scores(llama_model& m, std::size_t layer, const std::string& criterion,
                                             const calibration_capture* calib = nullptr) {
  const char* where = "ffn_neuron_scores";
  prune::prune_spec spec;
  spec.granularity = prune::granularity_kind::ffn_neurons;
  spec.criterion = detail::ffn_criterion(where, criterion);
  if (layer >= m.blocks.size())
    detail::fail<argument_error>(where, ": argument 'layer': expected < ", m.blocks.size(), ", got ", layer);
  llama_block_model bm(m, {{}, {}, {}, calib});
  return prune::detail::ffn_scores(spec, bm.ffn(layer));
}

/// Keeps the best round((1 − fraction)·hidden) neurons of every feed-forward block; returns the kept width.
inline std::size_t prune_ffn_width(llama_model& m, double fraction, const std::string& criterion,
                                   const calibration_capture* calib = nullptr) {
  const char* where = "prune_ffn_width";
  prune::prune_spec spec;
  spec.granularity = prune::granularity_kind::ffn_neurons;
  spec.criterion = detail::ffn_criterion(where, criterion);
  spec.sparsity = fraction;
  llama_block_model bm(m, {{}, {}, {}, calib});
  return prune::prune_model(bm, spec).ffn_width;
}

PARE_NAMESPACE_END
