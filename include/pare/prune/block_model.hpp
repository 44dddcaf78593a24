// block_model: what model-level pruning (whole blocks, FFN neurons, attention heads) needs from a model, so its criteria can be tested on a toy model.
#pragma once

// The reference transformer implements it (pare/pipeline/llama_block_model.hpp, over a
// calibration text); a test can implement it with a few arrays and a known loss.
//
//   num_blocks()             blocks left
//   metric_without(b)        a loss-like figure (lower = better; the reference model:
//                            perplexity of the calibration text) of the model with block
//                            b removed; the model is the same afterwards (PPL-drop)
//   compute_gradients()      ∂L/∂θ of the calibration loss for every block tensor; the
//                            gradients are sums over `grad_divisor` batches (Taylor)
//   block_tensors(b)         block b's tensors: weights, gradients (after
//                            compute_gradients), whether each is a linear layer's weight
//                            (magnitude criteria count only those) or a norm gain
//   remove_blocks(idx)       removes blocks (ascending indices)
//   ffn(b)                   block b's feed-forward weights and statistics of the hidden
//                            activations h (down's input), and whether h = act(gate·x) ⊙
//                            (up·x) is gated (SwiGLU) or h = act(up·x) (ReLU MLP)
//   refresh_statistics()     re-captures the hidden statistics for the model as it is now
//   keep_ffn_neurons(b, k)   keeps hidden neurons k (ascending) of block b
//   attention(b)             block b's wq, wk, wv, wo and head counts
//   keep_kv_heads(b, k)      keeps key/value heads k (ascending) with their query heads
// A model that cannot do something (no gradients, no FFN) throws unsupported_error there.

#include <cstddef>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/stats/linear_input_stats.hpp"

PARE_NAMESPACE_BEGIN
namespace prune {

/// One tensor of a block, flattened.
struct block_tensor {
  const float* w = nullptr;     ///< its values
  const float* grad = nullptr;  ///< ∂L/∂w summed over grad_divisor batches (null before compute_gradients)
  std::size_t size = 0;
  bool linear = true;           ///< a linear layer's weight (false: a norm gain)
};

/// A feed-forward block: weights [out, in] and the statistics of its hidden activations.
struct ffn_view {
  matrix_view<const float> gate;  ///< [hidden, dim] (unused when not gated)
  matrix_view<const float> up;    ///< [hidden, dim]
  matrix_view<const float> down;  ///< [dim, hidden]
  const linear_input_stats* hidden = nullptr;  ///< of down's input h (null: not captured)
  bool gated = true;              ///< SwiGLU-style h = act(gate·x) ⊙ (up·x)

  std::size_t hidden_size() const noexcept { return up.rows(); }
};

/// An attention block's projections [out, in] and head counts.
struct attention_view {
  matrix_view<const float> wq, wk, wv, wo;
  std::size_t n_heads = 0, n_kv_heads = 0;
};

class block_model {
 public:
  virtual ~block_model() = default;
  virtual std::size_t num_blocks() const = 0;
  virtual double metric_without(std::size_t block) = 0;
  /// Returns grad_divisor: the number of batches the gradient sums run over.
  virtual double compute_gradients() = 0;
  virtual std::vector<block_tensor> block_tensors(std::size_t block) const = 0;
  virtual void remove_blocks(const std::vector<std::size_t>& ascending) = 0;
  virtual ffn_view ffn(std::size_t block) const = 0;
  virtual void refresh_statistics() = 0;
  virtual void keep_ffn_neurons(std::size_t block, const std::vector<std::size_t>& ascending) = 0;
  virtual attention_view attention(std::size_t block) const = 0;
  virtual void keep_kv_heads(std::size_t block, const std::vector<std::size_t>& ascending) = 0;
};

}  // namespace prune
PARE_NAMESPACE_END
