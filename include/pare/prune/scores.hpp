// Pruning scores (score_matrix / score_vector, higher = keep), the exact pruned count for a sparsity, and the deterministic ranking every mask builder uses.
#pragma once

// Conventions shared by every header in pare/prune/
// ------------------------------------------------
// Score      how important a weight (or a row, column, head, neuron) is: higher scores
//            are kept, lower ones pruned. Criteria return scores before any mask is
//            made, so they can be inspected, combined or saved: a score_matrix (one
//            per weight, [out_features, in_features] like the weight) or a score_vector
//            (one per structured unit).
// Ranking    units are ordered by score, descending, and equal scores by index,
//            ascending (the row-major flat index for a matrix). The first units of
//            that order are kept: among equal scores the lower index is kept and the
//            higher index pruned. -0 and +0 are equal scores; ±Inf rank normally (+Inf
//            forces a keep, -Inf a prune); NaN is a value_error naming the argument
//            and the position.
// Count      at sparsity s ∈ [0, 1), ⌊s·n⌋ of n units are pruned (floor: a non-empty
//            set always keeps at least one unit). s·n is taken with a relative
//            allowance of 1e-12 so that decimal sparsities count as written
//            (0.29 · 100 is 28.999999999999996 in binary, and counts 29).
// Errors     every function validates all of its arguments before it writes anything:
//            a function that throws changes nothing it was given.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"

PARE_NAMESPACE_BEGIN
namespace prune {

/// One score per structured unit (row, column, head, neuron); higher = keep.
using score_vector = std::vector<float>;

/// How a structured unit's weights are summarised: Σ|w| (l1) or √Σw² (l2).
enum class unit_norm { l1, l2 };

/// Owning row-major matrix of per-weight scores ([out_features, in_features]); higher = keep.
class score_matrix {
 public:
  score_matrix() = default;
  score_matrix(std::size_t rows, std::size_t cols, float fill = 0.0f)
      : rows_(rows), cols_(cols), values_(rows * cols, fill) {}

  std::size_t rows() const noexcept { return rows_; }
  std::size_t cols() const noexcept { return cols_; }
  std::size_t size() const noexcept { return values_.size(); }
  shape_t shape() const { return shape_t{rows_, cols_}; }

  float operator()(std::size_t i, std::size_t j) const noexcept { return values_[i * cols_ + j]; }
  float& operator()(std::size_t i, std::size_t j) noexcept { return values_[i * cols_ + j]; }

  const std::vector<float>& values() const noexcept { return values_; }
  std::vector<float>& values() noexcept { return values_; }
  const float* data() const noexcept { return values_.data(); }
  float* data() noexcept { return values_.data(); }

  matrix_view<const float> view() const noexcept { return matrix_view<const float>(values_.data(), rows_, cols_); }
  matrix_view<float> view() noexcept { return matrix_view<float>(values_.data(), rows_, cols_); }
  /// Every mask builder takes a matrix_view<const float>; a score_matrix converts to one.
  operator matrix_view<const float>() const noexcept { return view(); }  // NOLINT(google-explicit-constructor)

 private:
  std::size_t rows_ = 0, cols_ = 0;
  std::vector<float> values_;
};

/// Units pruned at sparsity `s` out of `n`: ⌊s·n⌋ (see the essay above). argument_error
/// naming 'sparsity' unless 0 <= s < 1.
inline std::size_t pruned_count(double sparsity, std::size_t n);

namespace detail {

/// argument_error naming 'sparsity' unless it is a number in [0, 1).
inline void check_sparsity(const char* where, double s) {
  if (!(s >= 0.0 && s < 1.0))
    pare::detail::fail<argument_error>(where, ": argument 'sparsity': expected a value in [0, 1), got ", s);
}

/// ⌊s·n⌋ with the relative allowance, never n for n > 0.
inline std::size_t floor_count(double s, std::size_t n) noexcept {
  if (n == 0 || s <= 0.0) return 0;
  const double p = s * double(n);
  const double k = std::floor(p + p * 1e-12);
  const std::size_t c = k >= double(n) ? n : static_cast<std::size_t>(k);
  return std::min(c, n - 1);
}

/// value_error naming `what` and the position of the first NaN in `m`.
template <class T>
void check_no_nan(const char* where, const char* what, const matrix_view<const T>& m) {
  for (std::size_t i = 0; i < m.rows(); ++i)
    for (std::size_t j = 0; j < m.cols(); ++j)
      if (std::isnan(m(i, j)))
        pare::detail::fail<value_error>(where, ": argument '", what, "': expected no NaN, got NaN at (", i, ", ", j, ")");
}

/// value_error naming `what` and the position of the first NaN or Inf in `m`.
template <class T>
void check_finite(const char* where, const char* what, const matrix_view<const T>& m) {
  for (std::size_t i = 0; i < m.rows(); ++i)
    for (std::size_t j = 0; j < m.cols(); ++j)
      if (!std::isfinite(m(i, j)))
        pare::detail::fail<value_error>(where, ": argument '", what, "': expected finite values, got ", m(i, j), " at (",
                                        i, ", ", j, ")");
}

/// value_error naming `what` and the index of the first NaN in `v`.
inline void check_no_nan(const char* where, const char* what, const std::vector<float>& v) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (std::isnan(v[i]))
      pare::detail::fail<value_error>(where, ": argument '", what, "': expected no NaN, got NaN at index ", i);
}

/// Clears keep[i] for the k least important of the n scores s[0..n) (ranking of the
/// essay: lowest score first, among equal scores the highest index first). `scratch`
/// is reused storage. Requires no NaN in s.
inline void mark_lowest(const float* s, std::size_t n, std::size_t k, std::uint8_t* keep, std::vector<float>& scratch) {
  if (k == 0) return;
  if (k >= n) {
    std::fill(keep, keep + n, std::uint8_t(0));
    return;
  }
  scratch.assign(s, s + n);
  std::nth_element(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(k - 1), scratch.end());
  const float thr = scratch[k - 1];  // the k-th smallest score
  std::size_t pruned = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (s[i] < thr) {
      keep[i] = 0;
      ++pruned;
    }
  for (std::size_t i = n; i-- > 0 && pruned < k;)
    if (s[i] == thr) {
      keep[i] = 0;
      ++pruned;
    }
}

/// Copies a (possibly strided) row of `m` into `out`.
template <class T>
void copy_row(const matrix_view<const T>& m, std::size_t i, std::vector<float>& out) {
  out.resize(m.cols());
  for (std::size_t j = 0; j < m.cols(); ++j) out[j] = static_cast<float>(m(i, j));
}

}  // namespace detail

inline std::size_t pruned_count(double sparsity, std::size_t n) {
  detail::check_sparsity("pare::prune::pruned_count", sparsity);
  return detail::floor_count(sparsity, n);
}

/// Indices of the `n_keep` most important units (ranking of the essay), ascending.
/// argument_error naming 'n_keep' if it exceeds the size; value_error for NaN scores.
inline std::vector<std::size_t> keep_top(const score_vector& scores, std::size_t n_keep) {
  const char* where = "pare::prune::keep_top";
  if (n_keep > scores.size())
    pare::detail::fail<argument_error>(where, ": argument 'n_keep': expected at most ", scores.size(),
                                       " (the number of scores), got ", n_keep);
  detail::check_no_nan(where, "scores", scores);
  std::vector<std::uint8_t> keep(scores.size(), 1);
  std::vector<float> scratch;
  detail::mark_lowest(scores.data(), scores.size(), scores.size() - n_keep, keep.data(), scratch);
  std::vector<std::size_t> out;
  out.reserve(n_keep);
  for (std::size_t i = 0; i < keep.size(); ++i)
    if (keep[i]) out.push_back(i);
  return out;
}

/// Indices kept at `sparsity` (n − ⌊s·n⌋ most important units), ascending.
inline std::vector<std::size_t> keep_at_sparsity(const score_vector& scores, double sparsity) {
  detail::check_sparsity("pare::prune::keep_at_sparsity", sparsity);
  detail::check_no_nan("pare::prune::keep_at_sparsity", "scores", scores);
  return keep_top(scores, scores.size() - detail::floor_count(sparsity, scores.size()));
}

}  // namespace prune
PARE_NAMESPACE_END
