// N:M semi-structured masks (2:4, 4:8, any 1 <= N <= M) along the input dimension, and checks of the N:M invariant.
#pragma once

// Every row is cut into groups of M consecutive input columns (j = g·M .. g·M + M − 1)
// and each group keeps exactly its N most important weights (ranking of
// pare/prune/scores.hpp: among equal scores the lower column is kept). The columns must
// be a multiple of M (shape_error otherwise); the density is exactly N / M. 2:4 is what
// sparse tensor cores and pare's packed_sparse24 (pare/kernels/sparse/sparse24.hpp) execute.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/prune/mask.hpp"
#include "pare/prune/scores.hpp"

PARE_NAMESPACE_BEGIN
namespace prune {

namespace detail {
/// argument_error naming 'n' or 'm' unless 1 <= n <= m.
inline void check_nm(const char* where, std::size_t n, std::size_t m) {
  if (m < 1) pare::detail::fail<argument_error>(where, ": argument 'm': expected at least 1, got ", m);
  if (n < 1 || n > m)
    pare::detail::fail<argument_error>(where, ": argument 'n': expected 1 <= n <= m = ", m, ", got ", n);
}
inline void check_nm_cols(const char* where, const char* what, const shape_t& shape, std::size_t m) {
  if (shape[1] % m != 0)
    pare::detail::fail<shape_error>(where, ": argument '", what, "': expected a column count divisible by m = ", m,
                                    ", got shape ", shape);
}
}  // namespace detail

/// N:M mask over per-weight scores: each group of m consecutive columns keeps its n
/// highest scores. argument_error for n < 1 or n > m, shape_error for columns not a
/// multiple of m, value_error for NaN scores.
inline mask nm_mask(const matrix_view<const float>& scores, std::size_t n, std::size_t m) {
  const char* where = "pare::prune::nm_mask";
  detail::check_nm(where, n, m);
  detail::check_nm_cols(where, "scores", scores.shape(), m);
  detail::check_no_nan(where, "scores", scores);
  const std::size_t rows = scores.rows(), cols = scores.cols();
  mask out(rows, cols, true);
  std::vector<float> group(m), scratch;
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t g = 0; g < cols; g += m) {
      for (std::size_t j = 0; j < m; ++j) group[j] = scores(i, g + j);
      detail::mark_lowest(group.data(), m, m - n, out.data() + i * cols + g, scratch);
    }
  return out;
}

/// True when every group of m consecutive columns of every row keeps exactly n entries
/// (false when the columns are not a multiple of m). argument_error for bad n, m.
inline bool is_nm(const mask& msk, std::size_t n, std::size_t m) {
  detail::check_nm("pare::prune::is_nm", n, m);
  if (msk.cols() % m != 0) return false;
  for (std::size_t i = 0; i < msk.rows(); ++i)
    for (std::size_t g = 0; g < msk.cols(); g += m) {
      std::size_t kept = 0;
      for (std::size_t j = 0; j < m; ++j) kept += msk.kept(i, g + j);
      if (kept != n) return false;
    }
  return true;
}

/// True when every group of m consecutive columns of every row of w has at most n
/// nonzero weights (false when the columns are not a multiple of m).
inline bool is_nm_sparse(const matrix_view<const float>& w, std::size_t n, std::size_t m) {
  detail::check_nm("pare::prune::is_nm_sparse", n, m);
  if (w.cols() % m != 0) return false;
  for (std::size_t i = 0; i < w.rows(); ++i)
    for (std::size_t g = 0; g < w.cols(); g += m) {
      std::size_t nz = 0;
      for (std::size_t j = 0; j < m; ++j) nz += !(w(i, g + j) == 0.0f);
      if (nz > n) return false;
    }
  return true;
}

}  // namespace prune
PARE_NAMESPACE_END
