// Principal axes of a covariance (XᵀX) matrix through LAPACK's symmetric eigensolver, in descending order of variance.
#pragma once

// principal_axes(C, n, damping) takes C = Σ xᵀx (n×n, row-major, symmetric, e.g. from
// calibration activations) and returns its eigenvalues λ₀ ≥ λ₁ ≥ … and the orthonormal
// eigenvectors as the columns of Q (row-major n×n: Q[i, j] is component i of axis j), so
// C = Q·diag(λ)·Qᵀ and x·Q expresses x in the principal basis, highest variance first.
// `damping` adds damping·mean(diag C) to the diagonal first (SliceGPT uses 0.01) so a
// rank-deficient C still gets a well-defined basis; the eigenvalues returned include it.
// energy(k) is the fraction Σ_{j<k} λ_j / Σ λ_j of the (damped) variance the first k keep.

#include <cmath>
#include <cstddef>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/linalg/lapack.hpp"

PARE_NAMESPACE_BEGIN

struct principal_axes_result {
  std::size_t n = 0;
  std::vector<double> eigenvalues;  // descending
  std::vector<double> q;            // n×n row-major, column j = axis j

  double energy(std::size_t k) const {
    double all = 0, kept = 0;
    for (std::size_t j = 0; j < eigenvalues.size(); ++j) {
      all += eigenvalues[j];
      if (j < k) kept += eigenvalues[j];
    }
    return all > 0 ? kept / all : 1.0;
  }
};

inline principal_axes_result principal_axes(const std::vector<double>& cov, std::size_t n, double damping = 0.0) {
  const char* where = "principal_axes";
  if (n == 0) detail::fail<argument_error>(where, ": argument 'n': expected >= 1, got 0");
  if (cov.size() != n * n)
    detail::fail<shape_error>(where, ": argument 'cov': expected ", n, "x", n, " = ", n * n, " values, got ", cov.size());
  if (!(damping >= 0.0) || !std::isfinite(damping))
    detail::fail<argument_error>(where, ": argument 'damping': expected a finite value >= 0, got ", damping);
  for (std::size_t i = 0; i < n * n; ++i)
    if (!std::isfinite(cov[i]))
      detail::fail<argument_error>(where, ": argument 'cov': expected finite values, got ", cov[i], " at index ", i);
  std::vector<double> a = cov;
  double mean_diag = 0;
  for (std::size_t i = 0; i < n; ++i) mean_diag += a[i * n + i];
  mean_diag /= double(n);
  for (std::size_t i = 0; i < n; ++i) a[i * n + i] += damping * mean_diag;
  std::vector<double> w(n);
  // Symmetric: the row-major array is its own column-major transpose.
  lapack::syevd(where, n, a.data(), w.data());
  principal_axes_result r;
  r.n = n;
  r.eigenvalues.resize(n);
  r.q.resize(n * n);
  for (std::size_t j = 0; j < n; ++j) {  // column-major eigenvector (n-1-j) → row-major column j
    r.eigenvalues[j] = w[n - 1 - j];
    for (std::size_t i = 0; i < n; ++i) r.q[i * n + j] = a[(n - 1 - j) * n + i];
  }
  return r;
}

PARE_NAMESPACE_END
