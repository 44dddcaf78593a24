// prune::mask (keep/prune per weight, with count() and density()), apply() to a weight view, unstructured per-row/global masks, structured row/column masks.
#pragma once

// A mask has the shape of the weight it prunes ([out_features, in_features]); entry
// (i, j) is kept (1) or pruned (0). Builders (ranking and counts: pare/prune/scores.hpp):
//   unstructured_mask(scores, s, scope::per_row)  each row prunes ⌊s·cols⌋ of its entries
//   unstructured_mask(scores, s, scope::global)   ⌊s·rows·cols⌋ entries over the whole matrix
//   row_mask / column_mask(rows, cols, keep) whole rows (output neurons) or columns
//                                            (input channels) from a keep-list
//   nm_mask (pare/prune/nm.hpp), head masks (pare/prune/heads.hpp)
// apply(mask, w) zeroes the pruned weights of w in place.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/prune/scores.hpp"

PARE_NAMESPACE_BEGIN
namespace prune {

/// Which entries compete for the pruned budget.
enum class scope {
  per_row,  ///< every output row prunes the same count (Wanda's comparison group)
  global,   ///< one budget and threshold for the whole matrix
};

/// Keep (1) / prune (0) flag per weight, row-major.
class mask {
 public:
  mask() = default;
  /// rows × cols, every entry kept (`keep` true) or pruned.
  mask(std::size_t rows, std::size_t cols, bool keep = true) : rows_(rows), cols_(cols), bits_(rows * cols, keep ? 1 : 0) {}

  std::size_t rows() const noexcept { return rows_; }
  std::size_t cols() const noexcept { return cols_; }
  std::size_t size() const noexcept { return bits_.size(); }
  shape_t shape() const { return shape_t{rows_, cols_}; }

  bool kept(std::size_t i, std::size_t j) const noexcept { return bits_[i * cols_ + j] != 0; }
  void set(std::size_t i, std::size_t j, bool keep) noexcept { bits_[i * cols_ + j] = keep ? 1 : 0; }

  /// Kept entries.
  std::size_t count() const noexcept {
    std::size_t c = 0;
    for (std::uint8_t b : bits_) c += b;
    return c;
  }
  /// Pruned entries.
  std::size_t pruned() const noexcept { return size() - count(); }
  /// count() / size(); 1 for an empty mask (nothing pruned).
  double density() const noexcept { return size() ? double(count()) / double(size()) : 1.0; }
  /// 1 − density().
  double sparsity() const noexcept { return 1.0 - density(); }
  /// Kept entries of row i.
  std::size_t row_count(std::size_t i) const noexcept {
    std::size_t c = 0;
    for (std::size_t j = 0; j < cols_; ++j) c += bits_[i * cols_ + j];
    return c;
  }
  /// Kept entries of column j.
  std::size_t col_count(std::size_t j) const noexcept {
    std::size_t c = 0;
    for (std::size_t i = 0; i < rows_; ++i) c += bits_[i * cols_ + j];
    return c;
  }

  /// The flags, row-major (1 keep, 0 prune).
  const std::uint8_t* data() const noexcept { return bits_.data(); }
  std::uint8_t* data() noexcept { return bits_.data(); }
  matrix_view<const std::uint8_t> view() const noexcept { return matrix_view<const std::uint8_t>(bits_.data(), rows_, cols_); }

  /// Intersection: keeps what both keep. shape_error if the shapes differ.
  mask& operator&=(const mask& o) {
    check_same_shape("pare::prune::mask::operator&=", shape(), o.shape());
    for (std::size_t i = 0; i < bits_.size(); ++i) bits_[i] = std::uint8_t(bits_[i] & o.bits_[i]);
    return *this;
  }
  friend mask operator&(mask a, const mask& b) { return a &= b; }
  friend bool operator==(const mask& a, const mask& b) noexcept {
    return a.rows_ == b.rows_ && a.cols_ == b.cols_ && a.bits_ == b.bits_;
  }
  friend bool operator!=(const mask& a, const mask& b) noexcept { return !(a == b); }

 private:
  std::size_t rows_ = 0, cols_ = 0;
  std::vector<std::uint8_t> bits_;
};

/// Keeps exactly the nonzero weights of w (NaN counts as nonzero).
inline mask nonzero_mask(const matrix_view<const float>& w) {
  mask m(w.rows(), w.cols(), false);
  for (std::size_t i = 0; i < w.rows(); ++i)
    for (std::size_t j = 0; j < w.cols(); ++j) m.set(i, j, !(w(i, j) == 0.0f));
  return m;
}

/// Zeroes the weights of w that m prunes (+0.0). shape_error (both shapes) if they differ.
inline void apply(const mask& m, const matrix_view<float>& w) {
  check_same_shape("pare::prune::apply: arguments 'mask' and 'w'", m.shape(), w.shape());
  for (std::size_t i = 0; i < w.rows(); ++i)
    for (std::size_t j = 0; j < w.cols(); ++j)
      if (!m.kept(i, j)) w(i, j) = 0.0f;
}

/// Unstructured mask at `sparsity` over per-weight scores (ranking and count:
/// pare/prune/scores.hpp). per_row: every row prunes exactly ⌊s·cols⌋; global: exactly
/// ⌊s·rows·cols⌋ in all. argument_error for a sparsity outside [0, 1), value_error for NaN.
inline mask unstructured_mask(const matrix_view<const float>& scores, double sparsity, scope sc) {
  const char* where = "pare::prune::unstructured_mask";
  detail::check_sparsity(where, sparsity);
  detail::check_no_nan(where, "scores", scores);
  const std::size_t rows = scores.rows(), cols = scores.cols();
  mask m(rows, cols, true);
  std::vector<float> row, scratch;
  if (sc == scope::per_row) {
    const std::size_t k = detail::floor_count(sparsity, cols);
    for (std::size_t i = 0; i < rows; ++i) {
      detail::copy_row(scores, i, row);
      detail::mark_lowest(row.data(), cols, k, m.data() + i * cols, scratch);
    }
  } else {
    const std::size_t n = rows * cols, k = detail::floor_count(sparsity, n);
    if (scores.is_contiguous()) {
      detail::mark_lowest(scores.data(), n, k, m.data(), scratch);
    } else {
      std::vector<float> all(n);
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j) all[i * cols + j] = scores(i, j);
      detail::mark_lowest(all.data(), n, k, m.data(), scratch);
    }
  }
  return m;
}

namespace detail {
inline std::vector<std::uint8_t> keep_flags(const char* where, const char* what, const std::vector<std::size_t>& keep,
                                            std::size_t bound) {
  std::vector<std::uint8_t> f(bound, 0);
  for (std::size_t i : keep) {
    if (i >= bound)
      pare::detail::fail<argument_error>(where, ": argument '", what, "': expected indices below ", bound, ", got ", i);
    if (f[i]) pare::detail::fail<argument_error>(where, ": argument '", what, "': expected distinct indices, got ", i, " twice");
    f[i] = 1;
  }
  return f;
}
}  // namespace detail

/// Keeps whole rows (output neurons) `keep_rows` of a rows × cols weight. argument_error
/// naming 'keep_rows' for an index out of range or repeated.
inline mask row_mask(std::size_t rows, std::size_t cols, const std::vector<std::size_t>& keep_rows) {
  const std::vector<std::uint8_t> f = detail::keep_flags("pare::prune::row_mask", "keep_rows", keep_rows, rows);
  mask m(rows, cols, false);
  for (std::size_t i = 0; i < rows; ++i)
    if (f[i])
      for (std::size_t j = 0; j < cols; ++j) m.set(i, j, true);
  return m;
}

/// Keeps whole columns (input channels) `keep_cols` of a rows × cols weight.
/// argument_error naming 'keep_cols' for an index out of range or repeated.
inline mask column_mask(std::size_t rows, std::size_t cols, const std::vector<std::size_t>& keep_cols) {
  const std::vector<std::uint8_t> f = detail::keep_flags("pare::prune::column_mask", "keep_cols", keep_cols, cols);
  mask m(rows, cols, false);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) m.set(i, j, f[j] != 0);
  return m;
}

}  // namespace prune
PARE_NAMESPACE_END
