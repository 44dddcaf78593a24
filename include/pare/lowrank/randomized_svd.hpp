// Randomized truncated SVD (Halko–Martinsson–Tropp): Gaussian sketch with oversampling, power iterations re-orthonormalized by LAPACK QR.
#pragma once

// randomized_svd<T>(a, k, {p, q, seed}) approximates the top k singular triplets of a
// [m, n] with l = min(k + p, min(m, n)) samples (Halko, Martinsson, Tropp 2011, Alg. 4.4
// "randomized subspace iteration" + Alg. 5.1):
//   Ω  [n, l]   Gaussian, drawn from splitmix64(seed) (the same seed gives the same Ω)
//   Q  = qr(A·Ω)                               (LAPACK ?geqrf + ?orgqr)
//   q times:  Q = qr(A·qr(Aᵀ·Q))               (re-orthonormalized after every product)
//   B  = Qᵀ·A [l, n],  B = Ũ·Σ·Vᵀ (exact, ?gesdd),  U = Q·Ũ, truncated to k
// Products are BLAS ?gemm in T. The result is an svd_result with rank() = k; U, V have
// orthonormal columns. The approximation U_k·Σ_k·V_kᵀ = P·A with P the orthogonal projector
// on span(U_k), so ‖A − U_kΣ_kV_kᵀ‖²_F = ‖A‖²_F − Σ s_i² exactly (projection_error).
// Expected error (HMT Thm. 10.5/10.6): close to the optimal Σ_{i≥k} σ_i² when the spectrum
// decays; each power iteration raises the decay of the sketched spectrum to the power 2q+1.
// Cost: (2q + 2) products of A with an [·, l] matrix plus QRs of [m, l] and [n, l].

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/rng.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/linalg/lapack.hpp"
#include "pare/lowrank/svd.hpp"

PARE_NAMESPACE_BEGIN

struct randomized_svd_options {
  std::size_t oversampling = 10;     ///< p: extra samples beyond the rank
  std::size_t power_iterations = 2;  ///< q: subspace iterations (each 2 products + 2 QRs)
  std::uint64_t seed = 0;            ///< Gaussian test matrix seed
};

namespace detail {
/// Row-major [rows, cols] standard Gaussian values (Box–Muller over splitmix64(seed)).
template <class T>
std::vector<T> gaussian_matrix(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  splitmix64 g(mix64(seed ^ 0x5A17D0C5ull));
  std::vector<T> v(rows * cols);
  for (std::size_t i = 0; i < v.size(); i += 2) {
    double u1 = g.uniform(), u2 = g.uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    const double r = std::sqrt(-2.0 * std::log(u1)), t = 6.283185307179586 * u2;
    v[i] = static_cast<T>(r * std::cos(t));
    if (i + 1 < v.size()) v[i + 1] = static_cast<T>(r * std::sin(t));
  }
  return v;
}

template <class T, class S>
svd_result<T> randomized_svd_impl(const matrix_view<const S>& a, std::size_t k, const randomized_svd_options& opt) {
  static_assert(lapack::is_lapack_real<T>, "pare::randomized_svd: T must be float or double");
  const char* where = "pare::randomized_svd";
  const std::size_t m = a.rows(), n = a.cols(), mn = std::min(m, n);
  if (m == 0 || n == 0) fail<shape_error>(where, ": argument 'a': expected a non-empty matrix, got shape ", a.shape());
  if (k == 0 || k > mn)
    fail<argument_error>(where, ": argument 'rank': expected 1 ≤ rank ≤ min(rows, cols) = ", mn, ", got ", k);
  // A as dense row-major T: the caller's memory when it already is, else a checked copy.
  std::vector<T> copy;
  const T* ad = nullptr;
  if constexpr (std::is_same_v<S, T>) {
    if (a.col_stride() == 1 && a.row_stride() == static_cast<std::ptrdiff_t>(n)) {
      for (std::size_t i = 0; i < m * n; ++i)
        if (!std::isfinite(a.data()[i]))
          fail<value_error>(where, ": argument 'a': non-finite value ", a.data()[i], " at (", i / n, ", ", i % n, ")");
      ad = a.data();
    }
  }
  if (!ad) {
    copy = checked_copy<T>(where, "a", a);
    ad = copy.data();
  }
  const std::size_t l = std::min(k + std::min(opt.oversampling, mn), mn);
  // Qt [l, m] row-major is Q [m, l] column-major (the layout LAPACK's QR wants).
  const std::vector<T> omega_t = gaussian_matrix<T>(l, n, opt.seed);  // Ωᵀ [l, n]
  std::vector<T> qt(l * m), zt(l * n);
  lapack::gemm<T>(where, false, true, l, m, n, T(1), omega_t.data(), ad, T(0), qt.data());  // (A·Ω)ᵀ = Ωᵀ·Aᵀ
  lapack::orthonormalize_columns<T>(where, m, l, qt.data());
  for (std::size_t it = 0; it < opt.power_iterations; ++it) {
    lapack::gemm<T>(where, false, false, l, n, m, T(1), qt.data(), ad, T(0), zt.data());  // (Aᵀ·Q)ᵀ = Qᵀ·A
    lapack::orthonormalize_columns<T>(where, n, l, zt.data());
    lapack::gemm<T>(where, false, true, l, m, n, T(1), zt.data(), ad, T(0), qt.data());  // (A·Z)ᵀ = Zᵀ·Aᵀ
    lapack::orthonormalize_columns<T>(where, m, l, qt.data());
  }
  std::vector<T> b(l * n);
  lapack::gemm<T>(where, false, false, l, n, m, T(1), qt.data(), ad, T(0), b.data());  // B = Qᵀ·A [l, n]
  svd_result<T> small = svd_dense<T>(where, l, n, b, true);                   // Ũ [l, l], s, Vᵀ [l, n]
  svd_result<T> r;
  r.rows = m;
  r.cols = n;
  r.s.assign(small.s.begin(), small.s.begin() + static_cast<std::ptrdiff_t>(k));
  r.vt.assign(small.vt.begin(), small.vt.begin() + static_cast<std::ptrdiff_t>(k * n));
  std::vector<T> ut(l * k);  // Ũ_k [l, k]
  for (std::size_t i = 0; i < l; ++i)
    for (std::size_t j = 0; j < k; ++j) ut[i * k + j] = small.u[i * l + j];
  r.u.resize(m * k);
  lapack::gemm<T>(where, true, false, m, k, l, T(1), qt.data(), ut.data(), T(0), r.u.data());  // U = Q·Ũ_k
  return r;
}
}  // namespace detail

/// Approximate top-`rank` SVD of a [m, n] (see the top of this file), computed in T.
template <class T = double>
svd_result<T> randomized_svd(const matrix_view<const float>& a, std::size_t rank, const randomized_svd_options& opt = {}) {
  return detail::randomized_svd_impl<T>(a, rank, opt);
}
template <class T = double>
svd_result<T> randomized_svd(const matrix_view<const double>& a, std::size_t rank, const randomized_svd_options& opt = {}) {
  return detail::randomized_svd_impl<T>(a, rank, opt);
}

/// ‖A − U_k·Σ_k·V_kᵀ‖_F for a randomized (projection) SVD: √max(0, ‖A‖²_F − Σ s_i²), given ‖A‖²_F.
template <class T>
double projection_error(const svd_result<T>& r, double frobenius_norm_squared) {
  return std::sqrt(std::max(0.0, frobenius_norm_squared - r.energy()));
}

PARE_NAMESPACE_END
