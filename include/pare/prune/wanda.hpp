// Wanda criterion: |w_ij| · ‖x_j‖₂ with the input-channel norms from calibration statistics.
#pragma once

// Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for LLMs"):
//   score(i, j) = |w(i, j)| · ‖X_j‖₂,   ‖X_j‖₂ = √Σ_t x_tj²  over the calibration tokens t
// read from the linear_input_stats of the same layer
// (pare/stats/linear_input_stats.hpp: sum_sq[j] = Σ_t x_tj², so ‖X_j‖₂ = √sum_sq[j]). The
// paper compares scores within each output row: use unstructured_mask(scores, s,
// scope::per_row). Products are formed in double and rounded to float once.

#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/stats/linear_input_stats.hpp"
#include "pare/prune/scores.hpp"

PARE_NAMESPACE_BEGIN
namespace prune {

/// Criterion: weight magnitude times the L2 norm of its input channel.
class wanda {
 public:
  static constexpr const char* name = "wanda";

  /// Norms √sum_sq[j] of a captured layer. argument_error naming 'stats' when the
  /// channel statistics were not captured (linear_input_options::channel_stats).
  explicit wanda(const linear_input_stats& stats) {
    if (stats.sum_sq.size() != stats.in_features || stats.in_features == 0)
      pare::detail::fail<argument_error>("pare::prune::wanda: argument 'stats': expected per-channel sums of squares for ",
                                         stats.in_features, " input features (capture with channel_stats), got ",
                                         stats.sum_sq.size());
    norms_.resize(stats.in_features);
    for (std::size_t j = 0; j < norms_.size(); ++j) {
      if (!(stats.sum_sq[j] >= 0.0) || !std::isfinite(stats.sum_sq[j]))
        pare::detail::fail<value_error>("pare::prune::wanda: argument 'stats': expected finite non-negative sum_sq, got ",
                                        stats.sum_sq[j], " at input channel ", j);
      norms_[j] = std::sqrt(stats.sum_sq[j]);
    }
  }

  /// Explicit input-channel norms ‖X_j‖₂ (finite, >= 0; value_error naming
  /// 'input_norms' otherwise).
  explicit wanda(std::vector<double> input_norms) : norms_(std::move(input_norms)) {
    for (std::size_t j = 0; j < norms_.size(); ++j)
      if (!(norms_[j] >= 0.0) || !std::isfinite(norms_[j]))
        pare::detail::fail<value_error>("pare::prune::wanda: argument 'input_norms': expected finite values >= 0, got ",
                                        norms_[j], " at index ", j);
  }

  /// ‖X_j‖₂ per input channel.
  const std::vector<double>& input_norms() const noexcept { return norms_; }

  /// score(i, j) = |w(i, j)| · ‖X_j‖₂. shape_error unless w has one column per norm;
  /// value_error for non-finite weights.
  score_matrix operator()(const matrix_view<const float>& w) const {
    const char* where = "pare::prune::wanda";
    if (w.cols() != norms_.size())
      pare::detail::fail<shape_error>(where, ": argument 'w': expected ", norms_.size(),
                                      " columns (the input channels of the statistics), got shape ", w.shape());
    detail::check_finite(where, "w", w);
    score_matrix s(w.rows(), w.cols());
    for (std::size_t i = 0; i < w.rows(); ++i)
      for (std::size_t j = 0; j < w.cols(); ++j) s(i, j) = static_cast<float>(std::fabs(double(w(i, j))) * norms_[j]);
    return s;
  }

 private:
  std::vector<double> norms_;
};

}  // namespace prune
PARE_NAMESPACE_END
