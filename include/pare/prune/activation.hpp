// Activation-based neuron criteria (Network Trimming): APoZ and mean |activation| per neuron from calibration statistics.
#pragma once

// From the linear_input_stats of a layer (pare/stats/linear_input_stats.hpp),
// over its T calibration tokens, per input channel j:
//   apoz(stats)[j]      = #{t : x_tj <= 0} / T          (Hu et al. 2016, "Network Trimming")
//   mean_abs(stats)[j]  = Σ_t |x_tj| / T
// Both are raw statistics (inspect them as they are). The criterion network_trimming
// turns them into importance scores with the pare/prune convention (higher = keep):
//   activation_metric::apoz      score = 1 − APoZ   (mostly-zero neurons are pruned first)
//   activation_metric::mean_abs  score = mean |x|
//   activation_metric::l2        score = √Σ x² (the input's L2 norm over the tokens)
// APoZ suits ReLU layers, whose zero outputs mark inactive neurons; the SwiGLU output of
// a gated FFN is negative about half the time whatever the neuron's worth (measured
// 0.48-0.50 on stories260K), so there APoZ measures sign: use mean_abs or l2
// (pare/prune/model_criteria.hpp refuses apoz on gated FFNs).
// On ffn_down the inputs are the FFN neurons (SwiGLU outputs), so these scores rank the
// rows of ffn_gate / ffn_up and the columns of ffn_down together: pass
// keep_at_sparsity(scores, s) to a structured shrink (pare/model/surgery.hpp shrink_ffn).

#include <cstddef>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/stats/linear_input_stats.hpp"
#include "pare/prune/scores.hpp"

PARE_NAMESPACE_BEGIN
namespace prune {

namespace detail {
inline void check_activation_stats(const char* where, const linear_input_stats& s) {
  if (s.in_features == 0 || s.sum_abs.size() != s.in_features || s.nonpositive.size() != s.in_features)
    pare::detail::fail<argument_error>(where, ": argument 'stats': expected per-channel statistics for ", s.in_features,
                                       " input features (capture with channel_stats), got ", s.sum_abs.size());
  if (s.tokens == 0)
    pare::detail::fail<argument_error>(where, ": argument 'stats': expected at least one calibration token, got 0");
}
}  // namespace detail

/// Fraction of calibration tokens on which each input channel was <= 0.
inline score_vector apoz(const linear_input_stats& stats) {
  detail::check_activation_stats("pare::prune::apoz", stats);
  score_vector out(stats.in_features);
  for (std::size_t j = 0; j < out.size(); ++j) out[j] = static_cast<float>(stats.apoz(j));
  return out;
}

/// Mean absolute value of each input channel over the calibration tokens.
inline score_vector mean_abs(const linear_input_stats& stats) {
  detail::check_activation_stats("pare::prune::mean_abs", stats);
  score_vector out(stats.in_features);
  for (std::size_t j = 0; j < out.size(); ++j) out[j] = static_cast<float>(stats.mean_abs(j));
  return out;
}

/// Which activation statistic ranks the neurons.
enum class activation_metric { apoz, mean_abs, l2 };

/// Criterion: neuron importance from activation statistics (see the essay above).
struct network_trimming {
  static constexpr const char* name = "network_trimming";
  activation_metric metric = activation_metric::apoz;

  score_vector operator()(const linear_input_stats& stats) const {
    if (metric == activation_metric::mean_abs) return mean_abs(stats);
    detail::check_activation_stats("pare::prune::network_trimming", stats);
    score_vector s(stats.in_features);
    for (std::size_t j = 0; j < s.size(); ++j)
      s[j] = static_cast<float>(metric == activation_metric::l2 ? stats.l2_norm(j) : 1.0 - stats.apoz(j));
    return s;
  }
};

}  // namespace prune
PARE_NAMESPACE_END
