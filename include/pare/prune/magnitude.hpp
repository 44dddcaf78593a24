// Magnitude criteria: |w| per weight, and L1 / L2 norms of rows (output neurons) and columns (input channels) for structured pruning.
#pragma once

// magnitude{}(w)                 score(i, j) = |w(i, j)|
// row_norms(w, unit_norm::l1)    score(i) = Σ_j |w(i, j)|     (l2: √Σ_j w(i, j)²)
// column_norms(w, unit_norm::l2) score(j) = √Σ_i w(i, j)²     (l1: Σ_i |w(i, j)|)
// Norms accumulate in double and are rounded to float once. The norm functions take
// any matrix view, so they also aggregate other per-weight scores into structured ones
// (e.g. column_norms(wanda(stats)(w).view(), unit_norm::l1) sums Wanda scores per input
// channel). Weights must be finite (value_error naming 'w' and the position).

#include <cmath>
#include <cstddef>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/prune/scores.hpp"

PARE_NAMESPACE_BEGIN
namespace prune {

/// Criterion: the absolute value of each weight.
struct magnitude {
  static constexpr const char* name = "magnitude";

  score_matrix operator()(const matrix_view<const float>& w) const {
    detail::check_finite("pare::prune::magnitude", "w", w);
    score_matrix s(w.rows(), w.cols());
    for (std::size_t i = 0; i < w.rows(); ++i)
      for (std::size_t j = 0; j < w.cols(); ++j) s(i, j) = std::fabs(w(i, j));
    return s;
  }
};

/// Per output row: Σ_j |w(i, j)| (l1) or √Σ_j w(i, j)² (l2).
inline score_vector row_norms(const matrix_view<const float>& w, unit_norm norm) {
  detail::check_finite("pare::prune::row_norms", "w", w);
  score_vector out(w.rows());
  for (std::size_t i = 0; i < w.rows(); ++i) {
    double s = 0.0;
    for (std::size_t j = 0; j < w.cols(); ++j) {
      const double v = w(i, j);
      s += norm == unit_norm::l1 ? std::fabs(v) : v * v;
    }
    out[i] = static_cast<float>(norm == unit_norm::l1 ? s : std::sqrt(s));
  }
  return out;
}

/// Per input column: Σ_i |w(i, j)| (l1) or √Σ_i w(i, j)² (l2).
inline score_vector column_norms(const matrix_view<const float>& w, unit_norm norm) {
  detail::check_finite("pare::prune::column_norms", "w", w);
  std::vector<double> acc(w.cols(), 0.0);
  for (std::size_t i = 0; i < w.rows(); ++i)
    for (std::size_t j = 0; j < w.cols(); ++j) {
      const double v = w(i, j);
      acc[j] += norm == unit_norm::l1 ? std::fabs(v) : v * v;
    }
  score_vector out(w.cols());
  for (std::size_t j = 0; j < w.cols(); ++j)
    out[j] = static_cast<float>(norm == unit_norm::l1 ? acc[j] : std::sqrt(acc[j]));
  return out;
}

}  // namespace prune
PARE_NAMESPACE_END
