// Model-level pruning criteria: block importance (PPL-drop, Taylor, Taylor+, magnitude), FFN-neuron importance (magnitude, activation, APoZ) and KV-head importance, over a block_model.
#pragma once

// Importance is "higher = keep", in double (one value per block / neuron / head).
//
// Blocks (Kim et al. 2024, "Shortened LLaMA"):
//   ppl_drop       metric_without(b): the calibration perplexity without block b
//   taylor         Σ over the block's tensors (norm gains included) of |w · ∂L/∂w| / D,
//                  with ∂L/∂w summed over D calibration batches (compute_gradients)
//   taylor_plus    taylor with the first keep_first and last keep_last blocks never
//                  removed (the paper keeps 4 and 2 of LLaMA-7B's 32; default 1 and 1)
//   magnitude      Σ |w| over the block's linear weights
// select_blocks(importance, n, keep_first, keep_last) picks the n least important blocks
// among the candidates (ties: the higher index goes first, as pare/prune/scores.hpp keeps
// the lower index).
//
// FFN neurons j of one block (h = the hidden activation, down's input, over the
// calibration tokens t):
//   magnitude      ‖gate row j‖₂ + ‖up row j‖₂ + ‖down column j‖₂
//   activation     metric mean_abs (default): mean_t |h_tj|
//                  metric l2: √Σ_t h_tj², the down-projection input norm (Wanda / Minitron
//                  style)
//                  metric apoz: 1 − APoZ_j = the fraction of tokens with h_tj > 0 (Hu et
//                  al. 2016), for ReLU MLPs only: a gated (SwiGLU) h is negative about half
//                  the time whatever the neuron's worth, so APoZ measures sign there, not
//                  dead neurons — an argument_error for a gated FFN
// KV heads g of one block: magnitude = the l2 norm of the head's rows of wk and wv and of
// its query heads' rows of wq and columns of wo (attention_head_scores, pare/prune/heads.hpp).
// Errors: argument_error naming the criterion when the model lacks what it needs
// (statistics of the hidden activations, gradients), value_error for non-finite values.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/prune/activation.hpp"
#include "pare/prune/block_model.hpp"
#include "pare/prune/heads.hpp"
#include "pare/prune/magnitude.hpp"
#include "pare/prune/taylor.hpp"

PARE_NAMESPACE_BEGIN
namespace prune {

/// Block criterion: the calibration metric without the block.
struct ppl_drop {
  static constexpr const char* name = "ppl";
};

/// Block criterion: Taylor with the first and last blocks kept (Shortened LLaMA's Taylor+).
struct taylor_plus {
  static constexpr const char* name = "taylor+";
  std::size_t keep_first = 1, keep_last = 1;
};

/// FFN criterion: a statistic of each neuron's activations (activation_metric of
/// pare/prune/activation.hpp: mean_abs, l2, or apoz for ReLU MLPs only).
struct activation {
  static constexpr const char* name = "activation";
  activation_metric metric = activation_metric::mean_abs;
};

// ---- blocks ---------------------------------------------------------------

inline std::vector<double> block_importance(const ppl_drop&, block_model& m) {
  if (m.num_blocks() < 2)
    pare::detail::fail<argument_error>("pare::prune::ppl_drop: expected a model with at least 2 blocks, got ", m.num_blocks());
  std::vector<double> out(m.num_blocks());
  for (std::size_t b = 0; b < out.size(); ++b) out[b] = m.metric_without(b);
  return out;
}

inline std::vector<double> block_importance(const taylor&, block_model& m) {
  const double divisor = m.compute_gradients();
  if (!(divisor > 0))
    pare::detail::fail<argument_error>("pare::prune::taylor: expected gradients over at least one batch, got ", divisor);
  std::vector<double> out(m.num_blocks(), 0.0);
  for (std::size_t b = 0; b < out.size(); ++b) {
    double s = 0;
    for (const block_tensor& t : m.block_tensors(b)) {
      if (!t.grad) pare::detail::fail<argument_error>("pare::prune::taylor: block ", b, ": a tensor without gradient");
      for (std::size_t i = 0; i < t.size; ++i) s += std::fabs(double(t.w[i]) * double(t.grad[i]) / divisor);
    }
    out[b] = s;
  }
  return out;
}

inline std::vector<double> block_importance(const taylor_plus&, block_model& m) { return block_importance(taylor{}, m); }

inline std::vector<double> block_importance(const magnitude&, block_model& m) {
  std::vector<double> out(m.num_blocks(), 0.0);
  for (std::size_t b = 0; b < out.size(); ++b)
    for (const block_tensor& t : m.block_tensors(b))
      if (t.linear)
        for (std::size_t i = 0; i < t.size; ++i) out[b] += std::fabs(double(t.w[i]));
  return out;
}

/// Blocks a criterion never removes: (keep_first, keep_last).
template <class Criterion>
std::pair<std::size_t, std::size_t> kept_ends(const Criterion& c) {
  if constexpr (std::is_same_v<Criterion, taylor_plus>) return {c.keep_first, c.keep_last};
  else return {0, 0};
}

/// Indices (ascending) of the n least important blocks among those not kept (see above).
inline std::vector<std::size_t> select_blocks(const std::vector<double>& importance, std::size_t n,
                                              std::size_t keep_first = 0, std::size_t keep_last = 0) {
  const char* where = "pare::prune::select_blocks";
  const std::size_t L = importance.size();
  if (keep_first + keep_last > L)
    pare::detail::fail<argument_error>(where, ": arguments 'keep_first' + 'keep_last': expected at most ", L,
                                       " blocks, got ", keep_first + keep_last);
  const std::size_t cand = L - keep_first - keep_last;
  if (n == 0 || n > cand || n >= L)
    pare::detail::fail<argument_error>(where, ": argument 'n' (block count): expected 1 to ", std::min(cand, L - 1),
                                       " (candidates after keeping ", keep_first, " first and ", keep_last,
                                       " last, and at least one block left), got ", n);
  for (double v : importance)
    if (!std::isfinite(v)) pare::detail::fail<value_error>(where, ": argument 'importance': expected finite scores");
  std::vector<std::size_t> idx(cand);
  std::iota(idx.begin(), idx.end(), keep_first);
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    return importance[a] < importance[b] || (importance[a] == importance[b] && a > b);
  });
  idx.resize(n);
  std::sort(idx.begin(), idx.end());
  return idx;
}

// ---- FFN neurons ----------------------------------------------------------

namespace detail {
inline const linear_input_stats& hidden_stats(const char* where, const ffn_view& f) {
  const std::size_t h = f.hidden_size();
  if (!f.hidden || f.hidden->in_features != h || f.hidden->tokens == 0 || f.hidden->sum_abs.size() != h ||
      f.hidden->sum_sq.size() != h || f.hidden->nonpositive.size() != h)
    pare::detail::fail<argument_error>(where, ": expected channel statistics of the ", h,
                                       " hidden activations over at least one calibration token, got ",
                                       f.hidden ? "statistics of another shape or no tokens" : "none");
  return *f.hidden;
}
}  // namespace detail

inline std::vector<double> neuron_importance(const magnitude&, const ffn_view& f) {
  const std::size_t hidden = f.hidden_size(), dim = f.up.cols();
  std::vector<double> s(hidden, 0.0);
  for (std::size_t j = 0; j < hidden; ++j) {
    double a = 0, c = 0, d = 0;
    for (std::size_t k = 0; k < dim; ++k) {
      if (f.gated) a += double(f.gate(j, k)) * f.gate(j, k);
      c += double(f.up(j, k)) * f.up(j, k);
      d += double(f.down(k, j)) * f.down(k, j);
    }
    s[j] = std::sqrt(a) + std::sqrt(c) + std::sqrt(d);
  }
  return s;
}

inline std::vector<double> neuron_importance(const activation& a, const ffn_view& f) {
  if (a.metric == activation_metric::apoz && f.gated)
    pare::detail::fail<argument_error>(
        "pare::prune::activation: metric apoz expects a ReLU MLP, got a gated (SwiGLU) feed-forward block: its hidden "
        "activation is negative about half the time whatever the neuron's worth, so APoZ measures sign, not dead neurons "
        "(use mean_abs or l2)");
  const linear_input_stats& st = detail::hidden_stats("pare::prune::activation", f);
  std::vector<double> s(f.hidden_size());
  for (std::size_t j = 0; j < s.size(); ++j)
    s[j] = a.metric == activation_metric::mean_abs ? st.mean_abs(j)
           : a.metric == activation_metric::l2     ? st.l2_norm(j)
                                                   : 1.0 - st.apoz(j);
  return s;
}

// ---- KV heads -------------------------------------------------------------

inline std::vector<double> head_importance(const magnitude&, const attention_view& a) {
  const head_scores h = attention_head_scores(a.wq, a.wk, a.wv, a.wo, a.n_heads, a.n_kv_heads, unit_norm::l2);
  return std::vector<double>(h.kv.begin(), h.kv.end());
}

/// The `keep` highest of `importance` (ascending indices; ties keep the lower index).
inline std::vector<std::size_t> keep_highest(const std::vector<double>& importance, std::size_t keep) {
  std::vector<std::size_t> idx(importance.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return importance[a] > importance[b]; });
  idx.resize(std::min(keep, idx.size()));
  std::sort(idx.begin(), idx.end());
  return idx;
}

}  // namespace prune
PARE_NAMESPACE_END
