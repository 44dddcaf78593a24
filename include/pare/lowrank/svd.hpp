// Exact thin SVD through LAPACK (?gesdd), its truncation, reconstruction and the balanced low-rank factors A·B of a matrix.
#pragma once

// svd<T>(a) factors a [m, n] (float or double, any strides) as U·diag(s)·Vᵀ with
// k = min(m, n) singular triplets, computed in T (float: sgesdd, double: dgesdd):
//   u  [m, k] row-major, orthonormal columns
//   s  [k]    non-increasing, ≥ 0
//   vt [k, n] row-major, orthonormal rows
// Truncating to the first r triplets gives the best rank-r approximation in the Frobenius
// and spectral norms (Eckart–Young), with ‖A − A_r‖²_F = Σ_{i≥r} s_i² (tail_energy(r)).
//
// lowrank_factorize(w, r) returns the balanced factors of the rank-r truncation of w
// [out, in]: A = U_r·diag(√s_r) [out, r] and B = diag(√s_r)·V_rᵀ [r, in], so w ≈ A·B, both
// factors carry the same scale (which suits quantizing them).
//
// Errors (nothing is changed): shape_error for an empty matrix, value_error naming the
// first non-finite entry, argument_error for a rank outside [1, min(m, n)], pare::error if
// LAPACK does not converge.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/linalg/lapack.hpp"

PARE_NAMESPACE_BEGIN

/// A (possibly truncated) singular value decomposition A ≈ U·diag(s)·Vᵀ of a [rows, cols] matrix.
template <class T>
struct svd_result {
  std::size_t rows = 0, cols = 0;
  std::vector<T> u;   ///< [rows, rank()] row-major (empty when only values were computed)
  std::vector<T> s;   ///< rank() singular values, non-increasing
  std::vector<T> vt;  ///< [rank(), cols] row-major (empty when only values were computed)

  std::size_t rank() const noexcept { return s.size(); }
  bool has_vectors() const noexcept { return u.size() == rows * rank() && vt.size() == rank() * cols; }
  matrix_view<const T> u_view() const { return {u.data(), rows, rank()}; }
  matrix_view<const T> vt_view() const { return {vt.data(), rank(), cols}; }

  /// Σ s_i² over all kept values (double).
  double energy() const noexcept { return tail_energy(0); }
  /// Σ_{i ≥ r} s_i²: the squared Frobenius error of the rank-r truncation when s is complete.
  double tail_energy(std::size_t r) const noexcept {
    double e = 0;
    for (std::size_t i = s.size(); i-- > r;) e += double(s[i]) * double(s[i]);  // small to large
    return e;
  }

  /// The first r triplets; argument_error unless r ≤ rank().
  svd_result truncated(std::size_t r) const {
    check_rank("svd_result::truncated", r, false);
    svd_result o;
    o.rows = rows;
    o.cols = cols;
    o.s.assign(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(r));
    if (has_vectors()) {
      o.u.resize(rows * r);
      for (std::size_t i = 0; i < rows; ++i)
        std::copy(u.begin() + static_cast<std::ptrdiff_t>(i * rank()),
                  u.begin() + static_cast<std::ptrdiff_t>(i * rank() + r), o.u.begin() + static_cast<std::ptrdiff_t>(i * r));
      o.vt.assign(vt.begin(), vt.begin() + static_cast<std::ptrdiff_t>(r * cols));
    }
    return o;
  }

  /// out [rows, cols] = U_r·diag(s_r)·V_rᵀ (accumulated in T by BLAS); r ≤ rank().
  template <class O>
  void reconstruct(std::size_t r, const matrix_view<O>& out) const {
    check_rank("svd_result::reconstruct", r, true);
    check_same_shape("svd_result::reconstruct: argument 'out'", shape_t{rows, cols}, out.shape());
    std::vector<T> us(rows * r), prod(rows * cols, T(0));
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < r; ++j) us[i * r + j] = u[i * rank() + j] * s[j];
    if (r > 0) lapack::gemm("svd_result::reconstruct", false, false, rows, cols, r, T(1), us.data(), vt.data(), T(0), prod.data());
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) out(i, j) = static_cast<O>(prod[i * cols + j]);
  }
  /// The rank-r reconstruction as a dense row-major vector.
  std::vector<T> reconstruct(std::size_t r) const {
    std::vector<T> out(rows * cols);
    reconstruct(r, matrix_view<T>(out.data(), rows, cols));
    return out;
  }

 private:
  void check_rank(const char* where, std::size_t r, bool need_vectors) const {
    if (r > rank())
      detail::fail<argument_error>(where, ": argument 'r': expected at most the ", rank(), " computed triplets, got ", r);
    if (need_vectors && !has_vectors())
      detail::fail<argument_error>(where, ": expected an SVD with singular vectors, got singular values only");
  }
};

/// Low-rank factors of a [out, in] matrix: W ≈ A·B with A [out, rank], B [rank, in].
struct lowrank_factors {
  std::size_t out = 0, in = 0, rank = 0;
  std::vector<float> a;  ///< [out, rank] row-major
  std::vector<float> b;  ///< [rank, in] row-major
  matrix_view<const float> a_view() const { return {a.data(), out, rank}; }
  matrix_view<const float> b_view() const { return {b.data(), rank, in}; }
};

namespace detail {
/// Copies the row-major [m, n] matrix `a` into the column-major [n, m] array (same memory
/// layout as row-major [m, n]) in T, checking every entry is finite.
template <class T, class S>
std::vector<T> checked_copy(const char* where, const char* what, const matrix_view<const S>& a) {
  if (a.rows() == 0 || a.cols() == 0)
    fail<shape_error>(where, ": argument '", what, "': expected a non-empty matrix, got shape ", a.shape());
  std::vector<T> c(a.rows() * a.cols());
  for (std::size_t i = 0; i < a.rows(); ++i)
    for (std::size_t j = 0; j < a.cols(); ++j) {
      const S v = a(i, j);
      if (!std::isfinite(v)) fail<value_error>(where, ": argument '", what, "': non-finite value ", v, " at (", i, ", ", j, ")");
      c[i * a.cols() + j] = static_cast<T>(v);
    }
  return c;
}

/// Thin SVD of the dense row-major [m, n] array `a` (destroyed), vectors or values only.
template <class T>
svd_result<T> svd_dense(const char* where, std::size_t m, std::size_t n, std::vector<T>& a, bool vectors) {
  // Row-major A [m, n] is the column-major array of Aᵀ [n, m] = V·Σ·Uᵀ: LAPACK's "U" of Aᵀ
  // (column-major n×k) is row-major Vᵀ [k, n] and its "VT" (column-major k×m) is row-major
  // U [m, k]. No transposition needed.
  const std::size_t k = std::min(m, n);
  svd_result<T> r;
  r.rows = m;
  r.cols = n;
  r.s.resize(k);
  if (vectors) {
    r.u.resize(m * k);
    r.vt.resize(k * n);
  }
  T dummy[1] = {T(0)};
  lapack::gesdd<T>(where, vectors ? 'S' : 'N', n, m, a.data(), r.s.data(), vectors ? r.vt.data() : dummy,
                   vectors ? r.u.data() : dummy);
  return r;
}

template <class T, class S>
svd_result<T> svd_impl(const matrix_view<const S>& a, bool vectors) {
  static_assert(lapack::is_lapack_real<T>, "pare::svd: T must be float or double");
  std::vector<T> c = checked_copy<T>("pare::svd", "a", a);
  return svd_dense<T>("pare::svd", a.rows(), a.cols(), c, vectors);
}

template <class T>
lowrank_factors factors_from_svd(const char* where, const svd_result<T>& d, std::size_t rank) {
  if (rank == 0 || rank > std::min(d.rows, d.cols))
    fail<argument_error>(where, ": argument 'rank': expected 1 ≤ rank ≤ min(rows, cols) = ", std::min(d.rows, d.cols),
                         ", got ", rank);
  if (rank > d.rank() || !d.has_vectors())
    fail<argument_error>(where, ": argument 'rank': expected at most the ", d.rank(), " computed singular vectors, got ", rank);
  lowrank_factors f;
  f.out = d.rows;
  f.in = d.cols;
  f.rank = rank;
  f.a.resize(d.rows * rank);
  f.b.resize(rank * d.cols);
  for (std::size_t j = 0; j < rank; ++j) {
    const double h = std::sqrt(double(d.s[j]));
    for (std::size_t i = 0; i < d.rows; ++i) f.a[i * rank + j] = static_cast<float>(double(d.u[i * d.rank() + j]) * h);
    for (std::size_t i = 0; i < d.cols; ++i) f.b[j * d.cols + i] = static_cast<float>(double(d.vt[j * d.cols + i]) * h);
  }
  return f;
}
}  // namespace detail

/// Thin SVD of a [m, n] (k = min(m, n) triplets), computed in T (float: sgesdd, double: dgesdd).
template <class T = double>
svd_result<T> svd(const matrix_view<const float>& a) {
  return detail::svd_impl<T>(a, true);
}
template <class T = double>
svd_result<T> svd(const matrix_view<const double>& a) {
  return detail::svd_impl<T>(a, true);
}

/// Singular values of a only (cheaper: no vectors), non-increasing.
template <class T = double>
std::vector<T> singular_values(const matrix_view<const float>& a) {
  return detail::svd_impl<T>(a, false).s;
}
template <class T = double>
std::vector<T> singular_values(const matrix_view<const double>& a) {
  return detail::svd_impl<T>(a, false).s;
}

/// Balanced factors of the best rank-`rank` approximation of w [out, in]: w ≈ A·B with
/// A = U_r·diag(√s_r), B = diag(√s_r)·V_rᵀ (SVD in double).
inline lowrank_factors lowrank_factorize(const matrix_view<const float>& w, std::size_t rank) {
  if (w.rows() == 0 || w.cols() == 0)
    detail::fail<shape_error>("pare::lowrank_factorize: argument 'w': expected a non-empty matrix, got shape ", w.shape());
  if (rank == 0 || rank > std::min(w.rows(), w.cols()))
    detail::fail<argument_error>("pare::lowrank_factorize: argument 'rank': expected 1 ≤ rank ≤ min(rows, cols) = ",
                                 std::min(w.rows(), w.cols()), ", got ", rank);
  return detail::factors_from_svd("pare::lowrank_factorize", svd<double>(w), rank);
}

/// Balanced factors of the first `rank` triplets of an SVD (A = U_r·√s_r, B = √s_r·V_rᵀ).
template <class T>
lowrank_factors lowrank_factors_of(const svd_result<T>& d, std::size_t rank) {
  return detail::factors_from_svd("pare::lowrank_factors_of", d, rank);
}

PARE_NAMESPACE_END
