// Activation-aware low-rank decomposition: plain SVD, ASVD (input channels scaled by mean|x|^α) and SVD-LLM whitening (Cholesky of XᵀX).
#pragma once

// All three factor W [out, in] through a transform T of its input space:
//     W·T = U·Σ·Vᵀ,   W′_r = U_r·Σ_r·V_rᵀ·T⁻¹ = A·B,   A = U_r·√Σ_r,  B = √Σ_r·V_rᵀ·T⁻¹
//   plain    T = I: minimises ‖W − W′‖_F (Eckart–Young).
//   asvd     T = S = diag(s_k), s_k = (mean_t |x_tk|)^α (ASVD, Yuan et al. 2023; α = 0.5 by
//            default): weights on input channels with large activations count more.
//            Channels with s_k < 1e-6·max s are raised to that floor (keeps S invertible).
//   whiten   T = L, the lower Cholesky factor of H = XᵀX/tokens (+ λ·mean(diag H)·I when H is
//            not positive definite; λ = `ridge`, grown ×10 from 1e-10 until LAPACK ?potrf
//            succeeds, at most 1): SVD-LLM (Wang et al. 2024). Since ‖X·(W − W′)ᵀ‖²_F =
//            tokens·‖(W − W′)·L‖²_F, the truncation minimises the output error on the
//            calibration inputs X [tokens, in] exactly (when λ = 0):
//            ‖X·(W − W′_r)ᵀ‖²_F = tokens · Σ_{i≥r} σ_i(W·L)².
// The spectrum σ(W·T) is what the rank policies use (energy fractions of the transformed
// matrix: for whitening, of the output energy on the calibration set).
// Calibration statistics: pare/stats/linear_input_stats.hpp (filled from a model by
// pare::calibration_capture; xtx for
// whiten, sum_abs for asvd, tokens). Computations are in double (LAPACK d-routines); the
// factors are returned in fp32.
//
// Errors (nothing is changed): argument_error when the method needs statistics that are
// missing (naming 'stats'), shape_error when they were captured for another input width,
// value_error for non-finite weights, pare::error if LAPACK fails.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/linalg/lapack.hpp"
#include "pare/lowrank/randomized_svd.hpp"
#include "pare/lowrank/svd.hpp"
#include "pare/stats/linear_input_stats.hpp"

PARE_NAMESPACE_BEGIN

enum class lowrank_method { plain, asvd, whiten };

inline const char* to_string(lowrank_method m) noexcept {
  return m == lowrank_method::plain ? "plain" : m == lowrank_method::asvd ? "asvd" : "whiten";
}

struct activation_aware_options {
  double asvd_alpha = 0.5;  ///< ASVD exponent α in s_k = mean|x_k|^α
  double ridge = 0.0;       ///< whitening: λ (relative to mean diag of XᵀX/tokens) always added
  /// > 0: compute only this many triplets with randomized_svd (`rsvd`) instead of the exact SVD.
  std::size_t randomized_rank = 0;
  randomized_svd_options rsvd{};
};

/// ASVD input-channel scales s_k = max(mean|x_k|^α, 1e-6·max_j mean|x_j|^α) (all 1 if every mean is 0).
inline std::vector<double> asvd_scales(const linear_input_stats& st, double alpha) {
  const char* where = "pare::asvd_scales";
  if (!(alpha >= 0.0 && alpha <= 4.0))
    detail::fail<argument_error>(where, ": argument 'alpha': expected a value in [0, 4], got ", alpha);
  if (st.tokens == 0 || st.sum_abs.size() != st.in_features)
    detail::fail<argument_error>(where, ": argument 'stats': expected channel statistics (sum |x|) over at least one token, got ",
                                 st.tokens, " tokens and ", st.sum_abs.size(), " channel sums");
  std::vector<double> s(st.in_features);
  double mx = 0;
  for (std::size_t k = 0; k < s.size(); ++k) {
    s[k] = std::pow(st.mean_abs(k), alpha);
    if (!std::isfinite(s[k]))
      detail::fail<value_error>(where, ": argument 'stats': non-finite mean |x| at channel ", k);
    mx = std::max(mx, s[k]);
  }
  for (double& v : s) v = mx > 0 ? std::max(v, 1e-6 * mx) : 1.0;
  return s;
}

/// The whitening factor: lower Cholesky L of XᵀX/tokens + ridge·mean(diag)·I.
struct whitening_factor {
  std::size_t n = 0;
  std::vector<double> l;  ///< column-major lower triangular n×n (strict upper part zero)
  double ridge = 0;       ///< λ actually added (relative to the mean diagonal)
  double at(std::size_t i, std::size_t j) const { return l[i + j * n]; }
};

/// Cholesky of H = XᵀX/tokens from calibration statistics, with the smallest ridge (≥ `ridge`,
/// then 1e-10 ×10 steps up to 1) that makes H + λ·mean(diag H)·I positive definite.
inline whitening_factor whitening_cholesky(const linear_input_stats& st, double ridge = 0.0) {
  const char* where = "pare::whitening_cholesky";
  const std::size_t n = st.in_features;
  if (!(ridge >= 0.0 && ridge <= 1.0))
    detail::fail<argument_error>(where, ": argument 'ridge': expected a value in [0, 1], got ", ridge);
  if (st.tokens == 0 || n == 0 || st.xtx.size() != n * n)
    detail::fail<argument_error>(where, ": argument 'stats': expected XᵀX over at least one token, got ", st.tokens,
                                 " tokens and ", st.xtx.size(), " XᵀX entries for ", n, " inputs");
  std::vector<double> h(n * n);
  double mean_diag = 0;
  for (std::size_t i = 0; i < n * n; ++i) {
    h[i] = st.xtx[i] / double(st.tokens);
    if (!std::isfinite(h[i])) detail::fail<value_error>(where, ": argument 'stats': non-finite XᵀX entry at ", i / n, ", ", i % n);
  }
  for (std::size_t i = 0; i < n; ++i) mean_diag += h[i * n + i] / double(n);
  if (!(mean_diag > 0)) mean_diag = 1.0;  // all-zero inputs: the ridge alone makes H = λ·I
  whitening_factor f;
  f.n = n;
  double lambda = ridge;
  for (;;) {
    f.l = h;
    for (std::size_t i = 0; i < n; ++i) f.l[i * n + i] += lambda * mean_diag;
    if (lapack::potrf_lower<double>(where, n, f.l.data()) == 0) break;
    if (lambda >= 1.0) detail::fail<error>(where, ": XᵀX is not positive definite even with ridge 1 · mean diagonal");
    lambda = lambda < 1e-10 ? 1e-10 : std::min(1.0, lambda * 10);
  }
  f.ridge = lambda;
  return f;
}

class lowrank_decomposition;

/// Factors W [out, in] by `method` (statistics of W's inputs needed for asvd and whiten).
inline lowrank_decomposition lowrank_decompose(const matrix_view<const float>& w, lowrank_method method,
                                       const linear_input_stats* stats = nullptr,
                                       const activation_aware_options& opt = {});

/// A factorization W·T = U·Σ·Vᵀ (see the top of this file) from which any rank's factors follow.
class lowrank_decomposition {
 public:
  lowrank_method method() const noexcept { return method_; }
  std::size_t rows() const noexcept { return svd_.rows; }
  std::size_t cols() const noexcept { return svd_.cols; }
  /// The SVD of W·T (its singular values drive the rank policies).
  const svd_result<double>& svd() const noexcept { return svd_; }
  /// ‖W·T‖²_F (equals svd().energy() for an exact SVD; the randomized one has fewer values).
  double total_energy() const noexcept { return total_energy_; }
  /// ASVD channel scales (empty otherwise).
  const std::vector<double>& scales() const noexcept { return scales_; }
  /// Whitening: the ridge λ that was added (0 otherwise).
  double ridge() const noexcept { return chol_.ridge; }
  /// Largest rank available (min(rows, cols), or the randomized rank).
  std::size_t max_rank() const noexcept { return svd_.rank(); }

  /// A = U_r·√Σ_r [rows, r] and B = √Σ_r·V_rᵀ·T⁻¹ [r, cols] in fp32; 1 ≤ r ≤ max_rank().
  lowrank_factors factors(std::size_t r) const {
    std::vector<double> a, b;
    factors_double("lowrank_decomposition::factors", r, a, b);
    lowrank_factors f;
    f.out = rows();
    f.in = cols();
    f.rank = r;
    f.a.resize(a.size());
    f.b.resize(b.size());
    for (std::size_t i = 0; i < f.a.size(); ++i) f.a[i] = static_cast<float>(a[i]);
    for (std::size_t i = 0; i < f.b.size(); ++i) f.b[i] = static_cast<float>(b[i]);
    return f;
  }
  /// W′_r = A·B in double, row-major [rows, cols].
  std::vector<double> approximation(std::size_t r) const {
    std::vector<double> a, b, w(rows() * cols(), 0.0);
    factors_double("lowrank_decomposition::approximation", r, a, b);
    lapack::gemm<double>("lowrank_decomposition::approximation", false, false, rows(), cols(), r, 1.0, a.data(), b.data(),
                         0.0, w.data());
    return w;
  }

  friend lowrank_decomposition lowrank_decompose(const matrix_view<const float>& w, lowrank_method method,
                                         const linear_input_stats* stats, const activation_aware_options& opt);

 private:
  void factors_double(const char* where, std::size_t r, std::vector<double>& a, std::vector<double>& b) const {
    if (r == 0 || r > max_rank())
      detail::fail<argument_error>(where, ": argument 'r': expected 1 ≤ r ≤ ", max_rank(), ", got ", r);
    const std::size_t m = rows(), n = cols(), k = svd_.rank();
    a.assign(m * r, 0.0);
    b.assign(r * n, 0.0);
    for (std::size_t j = 0; j < r; ++j) {
      const double h = std::sqrt(svd_.s[j]);
      for (std::size_t i = 0; i < m; ++i) a[i * r + j] = svd_.u[i * k + j] * h;
    }
    // V_rᵀ [r, n] row-major is V_r column-major (n×r): the right-hand sides of Lᵀ·X = V_r.
    std::copy(svd_.vt.begin(), svd_.vt.begin() + static_cast<std::ptrdiff_t>(r * n), b.begin());
    if (method_ == lowrank_method::asvd) {
      for (std::size_t j = 0; j < r; ++j)
        for (std::size_t i = 0; i < n; ++i) b[j * n + i] /= scales_[i];
    } else if (method_ == lowrank_method::whiten) {
      lapack::trtrs_lower<double>(where, 'T', n, r, chol_.l.data(), b.data());  // X = L⁻ᵀ·V_r = (V_rᵀ·L⁻¹)ᵀ
    }
    for (std::size_t j = 0; j < r; ++j) {
      const double h = std::sqrt(svd_.s[j]);
      for (std::size_t i = 0; i < n; ++i) b[j * n + i] *= h;
    }
  }

  lowrank_method method_ = lowrank_method::plain;
  svd_result<double> svd_;
  double total_energy_ = 0;
  std::vector<double> scales_;
  whitening_factor chol_;
};

inline lowrank_decomposition lowrank_decompose(const matrix_view<const float>& w, lowrank_method method,
                                       const linear_input_stats* stats, const activation_aware_options& opt) {
  const char* where = "pare::lowrank_decompose";
  std::vector<double> wt = detail::checked_copy<double>(where, "w", w);
  const std::size_t m = w.rows(), n = w.cols();
  lowrank_decomposition d;
  d.method_ = method;
  if (method != lowrank_method::plain) {
    if (!stats)
      detail::fail<argument_error>(where, ": argument 'stats': expected calibration statistics for method ", to_string(method),
                                   ", got none");
    if (stats->in_features != n)
      detail::fail<shape_error>(where, ": argument 'stats': expected statistics of ", n, " inputs, got ", stats->in_features);
  }
  if (opt.randomized_rank > std::min(m, n))
    detail::fail<argument_error>(where, ": argument 'randomized_rank': expected at most min(rows, cols) = ", std::min(m, n),
                                 ", got ", opt.randomized_rank);
  if (method == lowrank_method::asvd) {
    d.scales_ = asvd_scales(*stats, opt.asvd_alpha);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) wt[i * n + j] *= d.scales_[j];
  } else if (method == lowrank_method::whiten) {
    d.chol_ = whitening_cholesky(*stats, opt.ridge);
    std::vector<double> wl(m * n, 0.0);
    // W·L: the column-major L array read row-major is Lᵀ, hence the transposed operand.
    lapack::gemm<double>(where, false, true, m, n, n, 1.0, wt.data(), d.chol_.l.data(), 0.0, wl.data());
    wt.swap(wl);
  }
  for (double v : wt) d.total_energy_ += v * v;
  if (opt.randomized_rank > 0)
    d.svd_ = randomized_svd<double>(matrix_view<const double>(wt.data(), m, n), opt.randomized_rank, opt.rsvd);
  else
    d.svd_ = detail::svd_dense<double>(where, m, n, wt, true);
  return d;
}

/// ‖X·(W − W′)ᵀ‖_F / √tokens from statistics (√tr(D·H·Dᵀ), H = XᵀX/tokens, D = W − W′ [out, in] row-major, double).
inline double calibrated_output_error(const linear_input_stats& st, const std::vector<double>& diff, std::size_t out) {
  const std::size_t n = st.in_features;
  if (st.tokens == 0 || st.xtx.size() != n * n || diff.size() != out * n)
    detail::fail<argument_error>("pare::calibrated_output_error: argument 'stats': expected XᵀX of ", diff.size() / std::max<std::size_t>(out, 1),
                                 " inputs over at least one token, got ", n, " inputs and ", st.tokens, " tokens");
  std::vector<double> dh(out * n, 0.0);
  lapack::gemm<double>("pare::calibrated_output_error", false, false, out, n, n, 1.0, diff.data(), st.xtx.data(), 0.0, dh.data());
  double t = 0;
  for (std::size_t i = 0; i < out * n; ++i) t += dh[i] * diff[i];
  return std::sqrt(std::max(0.0, t) / double(st.tokens));
}

PARE_NAMESPACE_END
