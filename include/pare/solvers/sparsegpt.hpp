// SparseGPT (Frantar & Alistarh 2023): prunes a linear layer's weight column by column (unstructured or N:M), folding each removed weight into the columns not yet visited through the inverse Hessian; optionally quantizes the survivors in the same walk.
#pragma once

// sparsegpt_prune(W [rows, K], H, opt) walks the columns in storage order with the
// factor U of pare/solvers/layer_hessian.hpp ((H + λ·mean(diag H)·I)⁻¹ = Uᵀ·U):
//   q_j = 0 if w_j is pruned, else w_j (or quant(w_j) when opt.quant is set),
//   e   = (w_j − q_j) / U_jj,    w_k −= e·U_jk for the columns k after j,
// the OBS update of Algorithm 1 of the paper; U_jj² = [(H_F)⁻¹]_jj is the inverse
// Hessian's diagonal over the columns F = {j, …, K−1} still free. The update is lazy
// as in gptq.hpp: inside a block of `block_size` columns at once, beyond it once per
// block as one BLAS product. Arithmetic in double.
//
// Which weights are pruned (score w²/U_jj² from the CURRENT, already updated weights;
// lowest scores pruned, among equal scores the higher index first: the ranking of
// pare/prune/scores.hpp):
//   unstructured  at each block start, over the block's entries of ALL rows together
//                 (as the reference implementation does). The count is exact: the whole
//                 matrix prunes Z = ⌊sparsity·rows·K⌋ entries (pare's count, scores.hpp);
//                 the entries of dead inputs count towards Z, and the rest, Z − dead, is
//                 spread over the blocks in proportion to their live columns
//                 (block b gets ⌊R·L(b+1)/L⌋ − ⌊R·L(b)/L⌋, L(b) the live columns before
//                 it), so the per-block counts add up to exactly Z. The reference instead
//                 prunes everything at or below a per-block quantile (ties over-prune).
//                 per_row: the same rule row by row (each row prunes ⌊sparsity·K⌋, its
//                 dead entries included, spread over the blocks the same way), the
//                 per-output comparison group Wanda found to matter for LLMs.
//   N:M           pare's convention (pare/prune/nm.hpp): every group of m consecutive
//                 inputs of a row KEEPS n weights and prunes m − n (2:4 keeps 2 of 4),
//                 chosen when the walk reaches the group's first column. (The reference
//                 code's prunen counts the zeros; for 2:4 both read the same.) Dead inputs
//                 are pruned first; a group with more than m − n dead inputs keeps some
//                 of them, whose weights are zero all the same. `sparsity` is then unused.
// Dead inputs (H_jj = 0) have their weights set to zero before anything else.
//
// Joint sparse + quantized (opt.quant): the surviving weights are quantized GPTQ-style in
// the same walk. Parameters: per_group G from the group's current weights (pruned ones
// included) when the walk reaches the group's first column (gptq.hpp's storage-order
// path); per_channel / per_tensor from the original weights. A pruned weight gets the
// code of 0.0f under its group's parameters — the zero point z, which every affine
// parameter set holds in [qmin, qmax] (pare/core/affine.hpp), so it dequantizes to
// exactly 0. A kept weight may still round to 0; the mask says "kept" for it.
//
// error = tr(ΔW·H·ΔWᵀ) for the undamped H, ΔW = W − result, from OBS's identity
// (inverse_factor::undamped_loss, as gptq.hpp): Σ e² is the walk's loss under the damped H' = H + δ·I (live columns), so the
// undamped loss is Σ e² − δ·‖W0 − Ŵ‖² (W0 = W with dead columns zeroed; dead columns
// have zero rows and columns in H and cost nothing).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/huge_pages.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/linalg/lapack.hpp"
#include "pare/prune/nm.hpp"
#include "pare/prune/scores.hpp"
#include "pare/quant/quantize.hpp"
#include "pare/solvers/gptq.hpp"
#include "pare/solvers/layer_hessian.hpp"

PARE_NAMESPACE_BEGIN
namespace solvers {

struct sparsegpt_options {
  double sparsity = 0.5;         ///< unstructured: fraction of weights pruned, in [0, 1) (checked also for N:M)
  std::size_t n = 0, m = 0;      ///< N:M when m > 0: each group of m consecutive inputs keeps n (1 <= n <= m)
  std::size_t block_size = 128;  ///< columns per lazy batch and per unstructured mask choice; a multiple of m and of the quant group size
  hessian_options hessian{};
  const quant_config* quant = nullptr;  ///< quantize the survivors in the same walk (null: prune only)
  bool per_row = false;          ///< unstructured: each row prunes its own ⌊sparsity·K⌋ (Wanda's per-output comparison group) instead of one count over all rows
};

struct sparsegpt_result {
  std::vector<float> weight;                  ///< [rows, K]: pruned entries exactly 0, the rest updated (dequantized when quantized)
  std::vector<std::uint8_t> mask;             ///< [rows, K]: 1 = kept
  std::optional<quantized_tensor> quantized;  ///< with options.quant: dequantize() equals `weight`
  double error = 0;              ///< tr(ΔW·H·ΔWᵀ) of the result, undamped H (OBS's identity)
  double dampening = 0;          ///< λ used (larger than asked when retries > 0)
  int dampening_retries = 0;     ///< H was not positive definite this many times (a warning)
  std::size_t dead_columns = 0;  ///< inputs with H_jj = 0, their weights zeroed (and pruned)
};

namespace detail {

/// Reorders idx so that its first k entries are the k lowest scores s[idx[·]] (equal
/// scores: the higher index first, pare's ranking). Deterministic: the order is total.
inline void lowest_first(std::vector<std::size_t>& idx, const std::vector<double>& s, std::size_t k) {
  if (k == 0 || k >= idx.size()) return;
  auto before = [&](std::size_t a, std::size_t b) { return s[a] < s[b] || (s[a] == s[b] && a > b); };
  std::nth_element(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k - 1), idx.end(), before);
  // nth_element leaves the k − 1 entries before the k-th lower than it: together the k lowest.
}

/// The code of 0.0f under (s, z); it must dequantize to exactly 0.
inline int zero_code(const char* where, float s, int z, int qmin, int qmax) {
  const int c = quantize_value(0.0f, inverse_scale(s), z, qmin, qmax);
  if (dequantize_value(c, s, z) != 0.0f)
    pare::detail::fail<unsupported_error>(where, ": argument 'quant': zero is not representable with scale ", s,
                                          " and zero point ", z);
  return c;
}

}  // namespace detail

/// SparseGPT of W [rows, K] against H (K × K). shape_error when H's size is not K or m does
/// not divide K; value_error for NaN/Inf in W; argument_error for sparsity outside [0, 1),
/// bad n / m, block_size 0 or not a multiple of m (or of the quant group size), and a quant
/// config with stochastic rounding or a group size that does not divide K. W is not modified.
inline sparsegpt_result sparsegpt_prune(matrix_view<const float> w, const layer_hessian& h,
                                        const sparsegpt_options& opt = {}) {
  const char* where = "pare::solvers::sparsegpt_prune";
  const std::size_t rows = w.rows(), k = w.cols();
  prune::detail::check_sparsity(where, opt.sparsity);
  const bool nm = opt.m > 0;
  if (!nm && opt.n != 0)
    pare::detail::fail<argument_error>(where, ": argument 'm': expected m > 0 when n is given (N:M), got m = 0, n = ",
                                       opt.n);
  if (nm) {
    prune::detail::check_nm(where, opt.n, opt.m);
    prune::detail::check_nm_cols(where, "w", w.shape(), opt.m);
  }
  if (h.n != k)
    pare::detail::fail<shape_error>(where, ": argument 'h': expected a ", k, " x ", k,
                                    " Hessian (one row per input of 'w'), got ", h.n, " x ", h.n);
  const std::size_t bs = opt.block_size;
  if (bs == 0) pare::detail::fail<argument_error>(where, ": argument 'block_size': expected at least 1, got 0");
  if (nm && bs % opt.m != 0)
    pare::detail::fail<argument_error>(where, ": argument 'block_size': expected a multiple of m = ", opt.m, ", got ", bs);
  const quant_config* cfg = opt.quant;
  const bool per_group = cfg && cfg->gran.kind == granularity_kind::per_group;
  const std::size_t g = per_group ? cfg->gran.group_size : k;
  if (cfg) {
    pare::detail::check_config_for(where, *cfg, k);
    if (cfg->rounding != rounding_kind::nearest_even)
      pare::detail::fail<argument_error>(where, ": argument 'quant': expected nearest-even rounding, got stochastic "
                                                "(SparseGPT chooses each code itself)");
    if (per_group && bs % g != 0)
      pare::detail::fail<argument_error>(where, ": argument 'block_size': expected a multiple of the quant group size ", g,
                                         ", got ", bs);
  }
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < k; ++j)
      if (!std::isfinite(w(i, j)))
        pare::detail::fail<value_error>(where, ": argument 'w': expected finite values, got ", w(i, j), " at (", i, ", ",
                                        j, ")");

  const inverse_factor f = inverse_factor_of(h, {}, opt.hessian);
  std::vector<char> dead(k, 0);
  for (std::size_t j : f.dead_columns) dead[j] = 1;
  std::vector<float> w0(rows * k);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < k; ++j) w0[i * k + j] = dead[j] ? 0.0f : w(i, j);
  std::vector<double> ww;
  resize_huge(ww, w0.size());
  std::copy(w0.begin(), w0.end(), ww.begin());

  sparsegpt_result res;
  res.weight.assign(rows * k, 0.0f);
  res.mask.assign(rows * k, 1);

  // Unstructured counts: R = Z − dead entries spread over the live columns (see above).
  const std::size_t live = k - f.dead_columns.size();
  std::vector<std::size_t> live_before(k + 1, 0);
  for (std::size_t j = 0; j < k; ++j) live_before[j + 1] = live_before[j] + !dead[j];
  const std::size_t z_total = nm ? 0 : prune::detail::floor_count(opt.sparsity, rows * k);
  const std::size_t z_dead = rows * f.dead_columns.size();
  const std::size_t z_live = z_total > z_dead ? z_total - z_dead : 0;
  auto live_share = [&](std::size_t j) -> std::size_t {  // ⌊R·L(j)/L⌋
    return live == 0 ? 0 : static_cast<std::size_t>(std::uint64_t(z_live) * live_before[j] / live);
  };
  // per_row: each row prunes ⌊sparsity·K⌋, its dead entries first.
  const std::size_t z_row = nm ? 0 : prune::detail::floor_count(opt.sparsity, k);
  const std::size_t z_live_row = z_row > f.dead_columns.size() ? z_row - f.dead_columns.size() : 0;
  auto live_share_row = [&](std::size_t j) -> std::size_t {
    return live == 0 ? 0 : static_cast<std::size_t>(std::uint64_t(z_live_row) * live_before[j] / live);
  };

  // Quantization state (as gptq.hpp's storage-order path).
  quantized_tensor* qt = nullptr;
  int qmin = 0, qmax = 0, bits = 0;
  bool is_signed = false;
  std::size_t rb = 0;
  quant_config row_cfg;
  if (cfg) {
    res.quantized.emplace();
    qt = &*res.quantized;
    qt->config = *cfg;
    qt->rows = rows;
    qt->cols = k;
    qt->codes = aligned_buffer<std::uint8_t>(rows * qt->row_bytes());
    std::fill(qt->codes.data(), qt->codes.data() + qt->codes.size(), std::uint8_t(0));
    if (per_group) {
      qt->scales.assign(param_count_for(cfg->gran, rows, k), 1.0f);
      qt->zero_points.assign(qt->scales.size(), 0);
    } else {
      const quantized_tensor q0 = quantize(matrix_view<const float>(w0.data(), rows, k), *cfg);
      qt->scales = q0.scales;
      qt->zero_points = q0.zero_points;
    }
    qmin = cfg->format.qmin();
    qmax = cfg->format.qmax();
    bits = cfg->format.bits;
    is_signed = cfg->format.is_signed;
    rb = qt->row_bytes();
    row_cfg = detail::per_row_config(*cfg);
  }

  std::vector<double> err(rows * bs);
  std::vector<double> row_loss(rows, 0.0);  // Σ e² per row: its loss under the damped H'
  std::vector<double> score;
  std::vector<std::size_t> idx;
  for (std::size_t i1 = 0; i1 < k; i1 += bs) {
    const std::size_t i2 = std::min(k, i1 + bs), nb = i2 - i1;
    if (!nm && opt.per_row) {
      // Each row's mask in the block: its dead entries and its live share.
      const std::size_t count = (live_before[i1] + nb - live_before[i2]) + live_share_row(i2) - live_share_row(i1);
      score.resize(nb);
      idx.resize(nb);
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t c = 0; c < nb; ++c) {
          const double x = ww[r * k + i1 + c], d = f.at(i1 + c, i1 + c);
          score[c] = dead[i1 + c] ? -std::numeric_limits<double>::infinity() : x * x / (d * d);
        }
        std::iota(idx.begin(), idx.end(), std::size_t(0));
        detail::lowest_first(idx, score, count);
        for (std::size_t t = 0; t < std::min(count, nb); ++t) res.mask[r * k + i1 + idx[t]] = 0;
      }
    } else if (!nm) {
      // The block's mask over all rows: dead entries (score −∞) and the live share.
      const std::size_t count = rows * (live_before[i1] + nb - live_before[i2]) + live_share(i2) - live_share(i1);
      score.resize(rows * nb);
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < nb; ++c) {
          const double x = ww[r * k + i1 + c], d = f.at(i1 + c, i1 + c);
          score[r * nb + c] = dead[i1 + c] ? -std::numeric_limits<double>::infinity() : x * x / (d * d);
        }
      idx.resize(rows * nb);
      std::iota(idx.begin(), idx.end(), std::size_t(0));
      detail::lowest_first(idx, score, count);
      for (std::size_t t = 0; t < std::min(count, idx.size()); ++t)
        res.mask[idx[t] / nb * k + i1 + idx[t] % nb] = 0;
    }
    parallel_for(0, rows, std::max<std::size_t>(1, 4096 / nb), [&](std::size_t lo, std::size_t hi) {
      const std::size_t nr = hi - lo;
      std::vector<float> grp;
      std::vector<double> gs(opt.m);
      std::vector<std::size_t> gi(opt.m);
      for (std::size_t a = i1; a < i2; ++a) {
        if (per_group && a % g == 0) {
          // The group's parameters from its current weights.
          grp.resize(nr * g);
          for (std::size_t r = 0; r < nr; ++r)
            for (std::size_t t = 0; t < g; ++t) grp[r * g + t] = static_cast<float>(ww[(lo + r) * k + a + t]);
          const quantized_tensor qg = quantize(matrix_view<const float>(grp.data(), nr, g), row_cfg);
          for (std::size_t r = 0; r < nr; ++r) {
            const std::size_t pi = param_index_for(cfg->gran, k, lo + r, a);
            qt->scales[pi] = qg.scales[r];
            qt->zero_points[pi] = qg.zero_points[r];
          }
        }
        if (nm && a % opt.m == 0) {
          // Each row's group a .. a + m − 1 prunes its m − n lowest current scores.
          for (std::size_t r = lo; r < hi; ++r) {
            for (std::size_t t = 0; t < opt.m; ++t) {
              const double x = ww[r * k + a + t], d = f.at(a + t, a + t);
              gs[t] = dead[a + t] ? -std::numeric_limits<double>::infinity() : x * x / (d * d);
              gi[t] = t;
            }
            detail::lowest_first(gi, gs, opt.m - opt.n);
            for (std::size_t t = 0; t < opt.m - opt.n; ++t) res.mask[r * k + a + gi[t]] = 0;
          }
        }
        const double d = f.at(a, a);
        const double* urow = f.u.data() + a * k;
        for (std::size_t r = lo; r < hi; ++r) {
          double* wr = ww.data() + r * k;
          const bool kept = res.mask[r * k + a] != 0;
          double q = kept ? wr[a] : 0.0;
          if (qt) {
            const std::size_t pi = param_index_for(cfg->gran, k, r, a);
            const float s = qt->scales[pi];
            const int z = qt->zero_points[pi];
            const int c = kept ? quantize_value(static_cast<float>(wr[a]), inverse_scale(s), z, qmin, qmax)
                               : detail::zero_code(where, s, z, qmin, qmax);
            set_code(bits, is_signed, qt->codes.data() + r * rb, a, c);
            q = dequantize_value(c, s, z);
          }
          res.weight[r * k + a] = static_cast<float>(q);
          const double e = (wr[a] - q) / d;
          err[r * bs + (a - i1)] = e;
          row_loss[r] += e * e;
          if (e != 0.0)
            for (std::size_t b = a + 1; b < i2; ++b) wr[b] -= e * urow[b];
        }
      }
    });
    // Columns beyond the block: W[:, i2:] −= Err · U[i1:i2, i2:].
    if (i2 < k)
      lapack::gemm_strided(where, false, false, rows, k - i2, nb, -1.0, err.data(), bs, f.u.data() + i1 * k + i2, k, 1.0,
                           ww.data() + i2, k);
  }
  double loss = 0;
  for (std::size_t r = 0; r < rows; ++r) loss += row_loss[r];
  res.error = f.undamped_loss(loss, w0.data(), res.weight.data(), rows * k);
  res.dampening = f.dampening;
  res.dampening_retries = f.retries;
  res.dead_columns = f.dead_columns.size();
  return res;
}

}  // namespace solvers
PARE_NAMESPACE_END
