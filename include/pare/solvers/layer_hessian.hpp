// layer_hessian: H = 2·XᵀX/n of a linear layer's reconstruction loss, its dampening, the upper Cholesky factor of H⁻¹ that GPTQ and SparseGPT walk, and the loss tr(ΔW·H·ΔWᵀ).
#pragma once

// For a linear layer y = W·x with inputs X [n, K], replacing W by Ŵ costs
//   ‖(W − Ŵ)·Xᵀ‖²_F · 2/n = tr(ΔW · H · ΔWᵀ),   H = 2·XᵀX / n   (K × K),
// the layer-wise objective of OBS, GPTQ and SparseGPT (Frantar et al. 2022, 2023).
//
// inverse_factor() prepares what those solvers walk column by column:
//   1. dead inputs (H_jj = 0: the channel never fires on the calibration text) get H_jj = 1
//      and are reported, so their weights can be zeroed (they cannot matter to the loss);
//   2. an optional column order (act-order) permutes rows and columns of H;
//   3. dampening: H += λ·mean(diag H)·I, λ = hessian_options::dampening (GPTQ's 1 %);
//   4. the upper triangular U with (H + λ·m·I)⁻¹ = Uᵀ·U, by LAPACK (potrf of the reversed
//      matrix, then trtri).
// When a factorization fails (H not positive definite in floating point), λ is multiplied
// by 10 and the work repeated, at most `max_retries` times; the result reports the λ used
// and the retries (a solver passes them on as a warning). After that: value_error.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/huge_pages.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/linalg/lapack.hpp"
#include "pare/stats/linear_input_stats.hpp"

PARE_NAMESPACE_BEGIN
namespace solvers {

/// Dampening of H before it is inverted.
struct hessian_options {
  double dampening = 0.01;  ///< λ, as a fraction of mean(diag H); finite, >= 0
  int max_retries = 6;      ///< λ × 10 per failed factorization, at most this many times
};

/// A layer's Hessian H = 2·XᵀX/n (K × K, row-major, symmetric).
struct layer_hessian {
  std::size_t n = 0;
  std::vector<double> h;

  double at(std::size_t i, std::size_t j) const { return h[i * n + j]; }

  /// From calibration statistics that captured XᵀX (linear_input_options::xtx). argument_error
  /// naming 'stats' when XᵀX was not captured or no token was seen.
  static layer_hessian from_stats(const linear_input_stats& stats) {
    if (stats.tokens == 0 || stats.in_features == 0 || stats.xtx.size() != stats.in_features * stats.in_features)
      pare::detail::fail<argument_error>("pare::solvers::layer_hessian::from_stats: argument 'stats': expected XᵀX of ",
                                   stats.in_features, " inputs over at least one token, got ",
                                   stats.xtx.empty() ? "no XᵀX (capture it with linear_input_options::xtx)"
                                                     : "no tokens");
    layer_hessian out;
    out.n = stats.in_features;
    out.h.resize(stats.xtx.size());
    const double f = 2.0 / double(stats.tokens);
    for (std::size_t k = 0; k < out.h.size(); ++k) out.h[k] = f * stats.xtx[k];
    return out;
  }

  /// From a K × K matrix (row-major). value_error naming 'h' unless it is finite and
  /// symmetric with a non-negative diagonal.
  static layer_hessian from_matrix(std::size_t k, std::vector<double> h) {
    const char* where = "pare::solvers::layer_hessian::from_matrix";
    if (h.size() != k * k)
      pare::detail::fail<shape_error>(where, ": argument 'h': expected ", k, " x ", k, " = ", k * k, " values, got ", h.size());
    for (std::size_t i = 0; i < k; ++i) {
      if (!(h[i * k + i] >= 0.0))
        pare::detail::fail<value_error>(where, ": argument 'h': expected a non-negative diagonal, got ", h[i * k + i],
                                  " at (", i, ", ", i, ")");
      for (std::size_t j = 0; j < k; ++j) {
        const double a = h[i * k + j], b = h[j * k + i];
        if (!std::isfinite(a))
          pare::detail::fail<value_error>(where, ": argument 'h': expected finite values, got ", a, " at (", i, ", ", j, ")");
        if (std::fabs(a - b) > 1e-9 * (std::fabs(a) + std::fabs(b)) + 1e-300)
          pare::detail::fail<value_error>(where, ": argument 'h': expected a symmetric matrix, got h(", i, ", ", j, ") = ", a,
                                    " and h(", j, ", ", i, ") = ", b);
      }
    }
    layer_hessian out;
    out.n = k;
    out.h = std::move(h);
    return out;
  }
};

/// What inverse_factor() returns.
struct inverse_factor {
  std::size_t n = 0;
  std::vector<double> u;                  ///< n × n row-major upper triangular, (H' + λ·m·I)⁻¹ = Uᵀ·U
  std::vector<std::size_t> dead_columns;  ///< storage indices j with H_jj = 0
  double dampening = 0;                   ///< the λ used
  int retries = 0;                        ///< factorizations repeated with λ × 10
  double damp_add = 0;                    ///< λ·mean(diag H'): what was added to the diagonal
  double at(std::size_t i, std::size_t j) const { return u[i * n + j]; }

  /// The undamped loss tr(ΔW·H·ΔWᵀ) of a greedy OBS walk over U (GPTQ, SparseGPT) from
  /// OBS's identity: the walk's loss under the damped H' is Σ e² (`walk_loss`; each term is
  /// the exact increase (w_j − q_j)²/[H_F⁻¹]_jj), H' = H + damp_add·I on the live columns
  /// and dead columns have ΔW = 0, so the undamped loss is Σ e² − damp_add·‖W0 − Ŵ‖²
  /// (O(rows·K) instead of the 2·rows·K² of hessian_error). w0 and w_hat: `count` values.
  double undamped_loss(double walk_loss, const float* w0, const float* w_hat, std::size_t count) const {
    double dw2 = 0;
    for (std::size_t t = 0; t < count; ++t) {
      const double d = double(w0[t]) - double(w_hat[t]);
      dw2 += d * d;
    }
    return undamped_loss(walk_loss, dw2);
  }
  /// The same from dw2 = ‖W0 − Ŵ‖²_F, summed by the caller during its walk.
  double undamped_loss(double walk_loss, double dw2) const { return std::max(0.0, walk_loss - damp_add * dw2); }
};

namespace detail {

/// J·H'·J = L·Lᵀ (J the order reversal) for H' = H in walking `order` with dead diagonals 1
/// and λ·mean(diag) added, retried with λ × 10 while not positive definite. Returns the
/// column-major n × n array holding L (strict upper triangle zero) and fills `info`.
inline std::vector<double> reversed_cholesky(const char* where, const layer_hessian& hs,
                                             const std::vector<std::size_t>& order, const hessian_options& opt,
                                             inverse_factor& info) {
  const std::size_t n = hs.n;
  if (!(opt.dampening >= 0.0) || !std::isfinite(opt.dampening))
    pare::detail::fail<value_error>(where, ": argument 'dampening': expected a finite value >= 0, got ", opt.dampening);
  if (!order.empty()) {
    std::vector<char> seen(n, 0);
    if (order.size() != n)
      pare::detail::fail<argument_error>(where, ": argument 'order': expected a permutation of ", n, " columns, got ",
                                   order.size(), " entries");
    for (std::size_t k : order) {
      if (k >= n || seen[k])
        pare::detail::fail<argument_error>(where, ": argument 'order': expected a permutation of 0..", n - 1,
                                     ", got a repeated or out-of-range index ", k);
      seen[k] = 1;
    }
  }
  for (std::size_t j = 0; j < n; ++j)
    if (hs.at(j, j) == 0.0) info.dead_columns.push_back(j);
  const auto idx = [&](std::size_t a) { return order.empty() ? a : order[a]; };
  double mean_diag = 0;
  for (std::size_t j = 0; j < n; ++j) mean_diag += hs.at(j, j) == 0.0 ? 1.0 : hs.at(j, j);
  mean_diag = n ? mean_diag / double(n) : 0.0;
  double lambda = opt.dampening;
  // One n × n array holds J·H'·J, then L (no copies: each fresh 8·n² bytes costs page
  // faults comparable to the factorization's time on a VM).
  std::vector<double> rev;
  resize_huge(rev, n * n);
  for (int attempt = 0;; ++attempt) {
    // Row-major upper triangle = the column-major lower one potrf reads (symmetric).
    for (std::size_t a = 0; a < n; ++a) {
      const std::size_t i = idx(n - 1 - a);
      double* row = rev.data() + a * n;
      for (std::size_t b = a; b < n; ++b) row[b] = hs.at(i, idx(n - 1 - b));
      if (row[a] == 0.0) row[a] = 1.0;
      row[a] += lambda * mean_diag;
    }
    if (lapack::potrf_lower(where, n, rev.data()) == 0) {
      info.dampening = lambda;
      info.retries = attempt;
      info.damp_add = lambda * mean_diag;
      return rev;
    }
    if (attempt >= opt.max_retries)
      pare::detail::fail<value_error>(where, ": the ", n, " x ", n,
                                  " Hessian is not positive definite even with dampening ", lambda,
                                  " x mean(diag H) after ", attempt, " retries (too few calibration tokens?)");
    lambda = lambda > 0 ? lambda * 10.0 : 1e-6;
  }
}

/// In place: the column-major lower triangular n × n A becomes the row-major upper
/// triangular T[i][j] = A(n−1−i, n−1−j) = a[(n−1−i) + (n−1−j)·n] = a[n²−1−(j·n + i)], i.e.
/// the flat array reversed, then transposed (blocked).
inline void flip_to_upper(std::vector<double>& a, std::size_t n) {
  std::reverse(a.begin(), a.end());
  constexpr std::size_t tb = 32;
  for (std::size_t i0 = 0; i0 < n; i0 += tb)
    for (std::size_t j0 = i0; j0 < n; j0 += tb)
      for (std::size_t i = i0; i < std::min(n, i0 + tb); ++i)
        for (std::size_t j = std::max(j0, i + 1); j < std::min(n, j0 + tb); ++j) std::swap(a[i * n + j], a[j * n + i]);
}

}  // namespace detail

/// U for H with rows and columns in `order` (order[k] = storage index of the k-th column
/// walked; empty = storage order). argument_error for an order that is not a permutation,
/// value_error for a negative or non-finite dampening, value_error when H stays singular.
/// With J the order reversal, J·H'·J = L·Lᵀ (lower L) gives H' = Ũ·Ũᵀ with Ũ = J·L·J upper,
/// so H'⁻¹ = (Ũ⁻¹)ᵀ·Ũ⁻¹ and U = Ũ⁻¹ = J·L⁻¹·J: one Cholesky and one triangular inverse
/// (2n³/3 flops) instead of Cholesky, inverse and a second Cholesky (4n³/3).
inline inverse_factor inverse_factor_of(const layer_hessian& hs, const std::vector<std::size_t>& order,
                                        const hessian_options& opt = {}) {
  const char* where = "pare::solvers::inverse_factor_of";
  inverse_factor out;
  out.n = hs.n;
  out.u = detail::reversed_cholesky(where, hs, order, opt, out);
  lapack::trtri_lower(where, out.n, out.u.data());  // column-major lower: L⁻¹, strict upper zero
  detail::flip_to_upper(out.u, out.n);
  return out;
}

/// tr((W − Ŵ)·H·(W − Ŵ)ᵀ): the layer's loss increase (both [rows, K], K = H's size).
/// shape_error when the shapes disagree.
inline double hessian_error(const matrix_view<const float>& w, const matrix_view<const float>& w_hat,
                            const layer_hessian& hs) {
  const char* where = "pare::solvers::hessian_error";
  check_same_shape("pare::solvers::hessian_error: arguments 'w' and 'w_hat'", w.shape(), w_hat.shape());
  if (w.cols() != hs.n)
    pare::detail::fail<shape_error>(where, ": argument 'w': expected ", hs.n, " columns (the Hessian's size), got ", w.cols());
  const std::size_t rows = w.rows(), k = hs.n;
  std::vector<double> d(rows * k), dh(rows * k);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < k; ++j) d[i * k + j] = double(w(i, j)) - double(w_hat(i, j));
  lapack::gemm(where, false, false, rows, k, k, 1.0, d.data(), hs.h.data(), 0.0, dh.data());
  double s = 0;
  for (std::size_t t = 0; t < d.size(); ++t) s += d[t] * dh[t];
  return s;
}

}  // namespace solvers
PARE_NAMESPACE_END
