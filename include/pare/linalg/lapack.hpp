// LAPACKE / CBLAS bindings for pare/lowrank/ and pare/solvers/: typed (float, double) gesdd, syevd, geqrf+orgqr, potrf, potri, trtri, trtrs and gemm, failures as pare::error.
#pragma once

// pare/lowrank/ does no linear algebra of its own: SVD, QR and Cholesky are LAPACK's
// (through the LAPACKE C interface), matrix products BLAS's (through CBLAS). The CMake
// target pare::linalg links them (pare::pare does not; option PARE_WITH_LAPACK, on by
// default; Debian packages liblapacke-dev and libopenblas-dev). These wrappers only pick the s/d routine by type,
// check that sizes fit LAPACK's 32-bit integers and turn LAPACK's `info` into exceptions.
//
// Storage: LAPACK routines here are called on column-major arrays. A row-major [r, c]
// array is the column-major [c, r] transpose, which the callers use instead of copying.

#include <cblas.h>
#include <lapacke.h>

#include <climits>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "pare/core/error.hpp"

PARE_NAMESPACE_BEGIN

namespace lapack {

template <class T>
constexpr bool is_lapack_real = std::is_same_v<T, float> || std::is_same_v<T, double>;

/// `v` as a LAPACK integer; argument_error naming `what` if it does not fit.
inline lapack_int to_int(const char* where, const char* what, std::size_t v) {
  if (v > static_cast<std::size_t>(INT_MAX))
    detail::fail<argument_error>(where, ": argument '", what, "': expected at most ", INT_MAX,
                                 " (LAPACK's 32-bit integers), got ", v);
  return static_cast<lapack_int>(v);
}

/// Thin SVD of the column-major m×n array `a` (destroyed): s (min(m,n)), u (m×k, ld m), vt
/// (k×n, ld k), k = min(m,n); jobz 'S' (vectors) or 'N' (values only: u, vt unused).
/// Divide and conquer (?gesdd); error if it does not converge.
template <class T>
void gesdd(const char* where, char jobz, std::size_t m, std::size_t n, T* a, T* s, T* u, T* vt) {
  static_assert(is_lapack_real<T>, "gesdd: float or double");
  const lapack_int mi = to_int(where, "rows", m), ni = to_int(where, "cols", n);
  const lapack_int k = mi < ni ? mi : ni;
  const lapack_int ldu = mi > 0 ? mi : 1, ldvt = k > 0 ? k : 1, lda = mi > 0 ? mi : 1;
  lapack_int info;
  if constexpr (std::is_same_v<T, float>)
    info = LAPACKE_sgesdd(LAPACK_COL_MAJOR, jobz, mi, ni, a, lda, s, u, ldu, vt, ldvt);
  else
    info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, jobz, mi, ni, a, lda, s, u, ldu, vt, ldvt);
  if (info > 0) detail::fail<error>(where, ": LAPACK ?gesdd did not converge (info ", info, ")");
  if (info < 0) detail::fail<error>(where, ": LAPACK ?gesdd rejected argument ", -info);
}

/// Eigen-decomposition of the symmetric n×n array `a` (lower triangle used): on return `w`
/// holds the eigenvalues in ascending order and the column-major `a` the orthonormal
/// eigenvectors (column j for w[j]). Divide and conquer (?syevd); error if it does not converge.
template <class T>
void syevd(const char* where, std::size_t n, T* a, T* w) {
  static_assert(is_lapack_real<T>, "syevd: float or double");
  if (n == 0) return;
  const lapack_int ni = to_int(where, "n", n);
  lapack_int info;
  if constexpr (std::is_same_v<T, float>)
    info = LAPACKE_ssyevd(LAPACK_COL_MAJOR, 'V', 'L', ni, a, ni, w);
  else
    info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', ni, a, ni, w);
  if (info > 0) detail::fail<error>(where, ": LAPACK ?syevd did not converge (info ", info, ")");
  if (info < 0) detail::fail<error>(where, ": LAPACK ?syevd rejected argument ", -info);
}

/// Replaces the column-major m×n array `a` (m ≥ n, ld m) by the orthonormal Q of its thin
/// QR factorization (?geqrf then ?orgqr): the columns of Q span those of a.
template <class T>
void orthonormalize_columns(const char* where, std::size_t m, std::size_t n, T* a) {
  static_assert(is_lapack_real<T>, "orthonormalize_columns: float or double");
  if (n == 0) return;
  if (m < n) detail::fail<argument_error>(where, ": QR: expected at least as many rows as columns, got ", m, "×", n);
  const lapack_int mi = to_int(where, "rows", m), ni = to_int(where, "cols", n);
  std::vector<T> tau(n);
  lapack_int info;
  if constexpr (std::is_same_v<T, float>) {
    info = LAPACKE_sgeqrf(LAPACK_COL_MAJOR, mi, ni, a, mi, tau.data());
    if (info == 0) info = LAPACKE_sorgqr(LAPACK_COL_MAJOR, mi, ni, ni, a, mi, tau.data());
  } else {
    info = LAPACKE_dgeqrf(LAPACK_COL_MAJOR, mi, ni, a, mi, tau.data());
    if (info == 0) info = LAPACKE_dorgqr(LAPACK_COL_MAJOR, mi, ni, ni, a, mi, tau.data());
  }
  if (info != 0) detail::fail<error>(where, ": LAPACK ?geqrf/?orgqr failed (info ", info, ")");
}

/// Cholesky factorization in place of the symmetric n×n array `a` (lower triangle used;
/// symmetric storage is the same in both orders): on success the column-major lower
/// triangle holds L with A = L·Lᵀ and the strict upper triangle is zeroed. Returns LAPACK's
/// info: 0 on success, > 0 when A is not positive definite (a is then unusable).
template <class T>
lapack_int potrf_lower(const char* where, std::size_t n, T* a) {
  static_assert(is_lapack_real<T>, "potrf_lower: float or double");
  const lapack_int ni = to_int(where, "n", n);
  lapack_int info;
  if constexpr (std::is_same_v<T, float>)
    info = LAPACKE_spotrf(LAPACK_COL_MAJOR, 'L', ni, a, ni > 0 ? ni : 1);
  else
    info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', ni, a, ni > 0 ? ni : 1);
  if (info < 0) detail::fail<error>(where, ": LAPACK ?potrf rejected argument ", -info);
  if (info == 0)
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t i = 0; i < j; ++i) a[i + j * n] = T(0);  // column j, rows above the diagonal
  return info;
}

/// Inverse in place of the symmetric positive definite n×n array whose Cholesky factor
/// potrf_lower left in `a`: on return the column-major lower triangle holds A⁻¹ (the strict
/// upper triangle is untouched). Error if the factor is singular.
template <class T>
void potri_lower(const char* where, std::size_t n, T* a) {
  static_assert(is_lapack_real<T>, "potri_lower: float or double");
  if (n == 0) return;
  const lapack_int ni = to_int(where, "n", n);
  lapack_int info;
  if constexpr (std::is_same_v<T, float>)
    info = LAPACKE_spotri(LAPACK_COL_MAJOR, 'L', ni, a, ni);
  else
    info = LAPACKE_dpotri(LAPACK_COL_MAJOR, 'L', ni, a, ni);
  if (info != 0) detail::fail<error>(where, ": LAPACK ?potri failed (info ", info, "): singular Cholesky factor");
}

/// Inverse in place of the column-major lower triangular n×n L (non-unit diagonal): on
/// return the lower triangle holds L⁻¹ (the strict upper triangle is untouched). Error if L
/// is singular.
template <class T>
void trtri_lower(const char* where, std::size_t n, T* a) {
  static_assert(is_lapack_real<T>, "trtri_lower: float or double");
  if (n == 0) return;
  const lapack_int ni = to_int(where, "n", n);
  lapack_int info;
  if constexpr (std::is_same_v<T, float>)
    info = LAPACKE_strtri(LAPACK_COL_MAJOR, 'L', 'N', ni, a, ni);
  else
    info = LAPACKE_dtrtri(LAPACK_COL_MAJOR, 'L', 'N', ni, a, ni);
  if (info != 0) detail::fail<error>(where, ": LAPACK ?trtri failed (info ", info, "): singular triangular factor");
}

/// Solves op(L)·X = B in place (B column-major n×nrhs, ld n) for the column-major lower
/// triangular n×n L; trans 'N' (L) or 'T' (Lᵀ). Error if L is singular.
template <class T>
void trtrs_lower(const char* where, char trans, std::size_t n, std::size_t nrhs, const T* l, T* b) {
  static_assert(is_lapack_real<T>, "trtrs_lower: float or double");
  if (n == 0 || nrhs == 0) return;
  const lapack_int ni = to_int(where, "n", n), ri = to_int(where, "nrhs", nrhs);
  lapack_int info;
  if constexpr (std::is_same_v<T, float>)
    info = LAPACKE_strtrs(LAPACK_COL_MAJOR, 'L', trans, 'N', ni, ri, l, ni, b, ni);
  else
    info = LAPACKE_dtrtrs(LAPACK_COL_MAJOR, 'L', trans, 'N', ni, ri, l, ni, b, ni);
  if (info != 0) detail::fail<error>(where, ": LAPACK ?trtrs failed (info ", info, "): singular triangular factor");
}

/// Row-major C [m, n] = alpha·op(A)·op(B) + beta·C with op(A) [m, k], op(B) [k, n]; A, B, C
/// dense row-major (ld = their column counts), transposed when ta / tb.
template <class T>
void gemm(const char* where, bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          const T* b, T beta, T* c) {
  static_assert(is_lapack_real<T>, "gemm: float or double");
  if (m == 0 || n == 0) return;
  const lapack_int mi = to_int(where, "m", m), ni = to_int(where, "n", n), ki = to_int(where, "k", k);
  const lapack_int lda = ta ? mi : (ki > 0 ? ki : 1), ldb = tb ? (ki > 0 ? ki : 1) : ni;
  const CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans, opb = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, opa, opb, mi, ni, ki, alpha, a, lda, b, ldb, beta, c, ni);
  else
    cblas_dgemm(CblasRowMajor, opa, opb, mi, ni, ki, alpha, a, lda, b, ldb, beta, c, ni);
}

/// The same product on row-major submatrices: lda, ldb, ldc are the row strides (in
/// elements) of the arrays A, B and C point into.
template <class T>
void gemm_strided(const char* where, bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha,
                  const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  static_assert(is_lapack_real<T>, "gemm_strided: float or double");
  if (m == 0 || n == 0) return;
  const lapack_int mi = to_int(where, "m", m), ni = to_int(where, "n", n), ki = to_int(where, "k", k);
  const lapack_int la = to_int(where, "lda", lda), lb = to_int(where, "ldb", ldb), lc = to_int(where, "ldc", ldc);
  const CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans, opb = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, opa, opb, mi, ni, ki, alpha, a, la, b, lb, beta, c, lc);
  else
    cblas_dgemm(CblasRowMajor, opa, opb, mi, ni, ki, alpha, a, la, b, lb, beta, c, lc);
}

}  // namespace lapack

PARE_NAMESPACE_END
