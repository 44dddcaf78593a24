// Asymmetric calibration (GPTAQ, Li et al. 2025): the weights whose outputs on the compressed model's inputs come closest to the original layer's outputs on the original inputs, the target a layer solver then quantizes.
#pragma once

// A sequential pipeline calibrates layer W behind an already compressed prefix, so the
// layer sees inputs X̃ where the original model saw X (columns are tokens). GPTQ's
// objective ‖(W − Ŵ)·X̃‖² asks Ŵ to reproduce W on X̃; the original model's output is
// W·X. With P = Σ_t x_t·x̃_tᵀ and G = Σ_t x̃_t·x̃_tᵀ (both K × K),
//   ‖W·X − Ŵ·X̃‖² = ‖(W' − Ŵ)·X̃‖² + const,   W' = W·P·G⁻¹,
// because the cross term (W·X − W'·X̃)·X̃ᵀ = W·P − W'·G vanishes. So running the solver
// (GPTQ, SparseGPT) on W' with the Hessian of X̃ minimises the error against the original
// model's outputs exactly. G is dampened as the solvers dampen H, as a ridge regression
// towards W rather than towards 0:
//   W' = W + W·(P − G)·(G + λ·mean(diag G)·I)⁻¹,
// which is W·P·G⁻¹ at λ = 0 and W itself whenever X̃ = X, whatever λ (shrinking towards 0
// would bias every weight by λ/(σ² + λ) and hurt the layer more than the prefix did).

#include <cmath>
#include <cstddef>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/linalg/lapack.hpp"

PARE_NAMESPACE_BEGIN
namespace solvers {

/// W' = W + W·(P − G)·(G + λ·mean(diag G)·I)⁻¹ for W [rows, K], P = Σ x·x̃ᵀ and G = Σ x̃·x̃ᵀ (K × K,
/// row-major: p[i·K + j] = Σ_t x_t,i · x̃_t,j). Computed in double. shape_error for sizes
/// that do not match K; value_error for a negative or non-finite λ or when G + λ·m·I is
/// not positive definite (nothing is returned then).
inline std::vector<float> asymmetric_target(matrix_view<const float> w, const std::vector<double>& p,
                                            const std::vector<double>& g, double dampening) {
  const char* where = "pare::solvers::asymmetric_target";
  const std::size_t rows = w.rows(), k = w.cols();
  if (p.size() != k * k || g.size() != k * k)
    pare::detail::fail<shape_error>(where, ": arguments 'p' and 'g': expected ", k, " x ", k, " matrices (one row per input of 'w' ",
                                    w.shape(), "), got ", p.size(), " and ", g.size(), " entries");
  if (!(dampening >= 0.0) || !std::isfinite(dampening))
    pare::detail::fail<value_error>(where, ": argument 'dampening': expected a finite value >= 0, got ", dampening);
  double mean_diag = 0;
  for (std::size_t j = 0; j < k; ++j) mean_diag += g[j * k + j];
  mean_diag /= double(k ? k : 1);
  std::vector<double> a(g);
  for (std::size_t j = 0; j < k; ++j) a[j * k + j] += dampening * mean_diag;
  if (lapack::potrf_lower(where, k, a.data()) != 0)
    pare::detail::fail<value_error>(where, ": argument 'g': expected a positive definite matrix after dampening ", dampening,
                                    ", got one whose Cholesky factorization fails");
  // B = W·(P − G) [rows, K] row-major, i.e. Bᵀ column-major with leading dimension K;
  // solve L·Lᵀ·Dᵀ = Bᵀ in place, W' = W + D.
  std::vector<double> wd(rows * k), b(rows * k), d(k * k);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < k; ++j) wd[r * k + j] = w(r, j);
  for (std::size_t i = 0; i < d.size(); ++i) d[i] = p[i] - g[i];
  lapack::gemm(where, false, false, rows, k, k, 1.0, wd.data(), d.data(), 0.0, b.data());
  lapack::trtrs_lower(where, 'N', k, rows, a.data(), b.data());
  lapack::trtrs_lower(where, 'T', k, rows, a.data(), b.data());
  std::vector<float> out(rows * k);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(wd[i] + b[i]);
  return out;
}

}  // namespace solvers
PARE_NAMESPACE_END
