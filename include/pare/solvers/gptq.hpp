// GPTQ (Frantar et al. 2022): quantizes a linear layer's weight column by column, folding each column's rounding error into the columns not yet quantized through the inverse Hessian.
#pragma once

// gptq_quantize(W [rows, K], H, cfg, opt) returns a quantized_tensor in cfg's format, the
// same value pare::quantize(W, cfg) returns but with codes that minimise tr(ΔW·H·ΔWᵀ)
// greedily instead of |ΔW| element by element. Column by column in the walking order
// (storage order, or by decreasing H_jj with act_order):
//   q_j = quant(w_j),  e = (w_j − q_j) / U_jj,  w_k −= e·U_jk for the columns k after j,
// where (H + λ·mean(diag H)·I)⁻¹ = Uᵀ·U (pare/solvers/layer_hessian.hpp). The update is
// applied lazily: within a block of `block_size` columns immediately, to the columns
// beyond the block once per block as one BLAS product (GPTQ's lazy batch); both forms
// give the same result up to the order of floating-point sums. Arithmetic in double.
// (The walk cannot run on the Cholesky factor Ũ of H' itself, H' = Ũ·Ũᵀ, U = Ũ⁻¹, to save
// the triangular inverse: there the columns not yet reached accumulate (w0_j − q_j)·Ũ_jk/Ũ_kk,
// whose partial sums equal the OBS-updated weights only once the walk reaches column k,
// so dynamic groups would take their parameters from other weights.)
//
// Parameters (scales, zero points) come from cfg's observer:
//   per_group G, storage order   from the group's current (already updated) weights when
//                                the walk reaches the group's first column (GPTQ);
//   per_group G, act_order       from the original weights, group by group in storage
//                                order ("static groups": the layout stays the format's);
//   per_channel, per_tensor      from the original weights.
// Dead inputs (H_jj = 0) have their weights set to zero before anything else (they cannot
// change the layer's output on the calibration data). Rounding is to nearest even;
// stochastic rounding is refused.

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/huge_pages.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/linalg/lapack.hpp"
#include "pare/quant/quantize.hpp"
#include "pare/solvers/layer_hessian.hpp"

PARE_NAMESPACE_BEGIN
namespace solvers {

struct gptq_options {
  std::size_t block_size = 128;  ///< columns per lazy batch (rounded down to a multiple of the group size, at least one group)
  bool act_order = false;        ///< walk columns by decreasing H_jj (static groups)
  hessian_options hessian{};
};

struct gptq_result {
  quantized_tensor weight;      ///< in the config's format and layout
  double error = 0;             ///< tr(ΔW·H·ΔWᵀ) of the result, undamped H (inverse_factor::undamped_loss)
  double dampening = 0;         ///< λ used (larger than asked when retries > 0)
  int dampening_retries = 0;    ///< H was not positive definite this many times (a warning)
  std::size_t dead_columns = 0; ///< inputs with H_jj = 0, their weights zeroed
};

namespace detail {

/// The walking order: storage order, or by decreasing H_jj (ties by index) for act_order.
inline std::vector<std::size_t> gptq_order(const layer_hessian& h, bool act_order) {
  std::vector<std::size_t> order(h.n);
  std::iota(order.begin(), order.end(), std::size_t(0));
  if (act_order)
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return h.at(a, a) > h.at(b, b); });
  return order;
}

/// cfg with one parameter entry per row (the observer and scheme unchanged).
inline quant_config per_row_config(const quant_config& cfg) {
  quant_config c = cfg;
  c.gran = granularity::channel(0);
  return c;
}

}  // namespace detail

/// GPTQ of W [rows, K] against H (K × K). shape_error when H's size is not W's column
/// count or the group size does not divide it; value_error for NaN/Inf in W; argument_error
/// for stochastic rounding or block_size 0. W is not modified.
inline gptq_result gptq_quantize(matrix_view<const float> w, const layer_hessian& h, const quant_config& cfg,
                                 const gptq_options& opt = {}) {
  const char* where = "pare::solvers::gptq_quantize";
  const std::size_t rows = w.rows(), k = w.cols();
  cfg.validate(where);
  pare::detail::check_config_for(where, cfg, k);
  if (h.n != k)
    pare::detail::fail<shape_error>(where, ": argument 'h': expected a ", k, " x ", k,
                                    " Hessian (one row per input of 'w'), got ", h.n, " x ", h.n);
  if (cfg.rounding != rounding_kind::nearest_even)
    pare::detail::fail<argument_error>(where, ": argument 'cfg': expected nearest-even rounding, got stochastic "
                                              "(GPTQ chooses each code itself)");
  if (opt.block_size == 0) pare::detail::fail<argument_error>(where, ": argument 'block_size': expected at least 1, got 0");
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < k; ++j)
      if (!std::isfinite(w(i, j)))
        pare::detail::fail<value_error>(where, ": argument 'w': expected finite values, got ", w(i, j), " at (", i, ", ",
                                        j, ")");

  const std::vector<std::size_t> order = detail::gptq_order(h, opt.act_order);
  const inverse_factor f = inverse_factor_of(h, opt.act_order ? order : std::vector<std::size_t>{}, opt.hessian);
  const bool per_group = cfg.gran.kind == granularity_kind::per_group;
  const std::size_t g = per_group ? cfg.gran.group_size : k;
  const bool dynamic_groups = per_group && !opt.act_order;
  const std::size_t bs = per_group ? std::max(g, opt.block_size / g * g) : opt.block_size;

  // Original weights (dead columns zeroed) in double, walking order, for the solve; in
  // float, storage order, only where the parameters come from them up front.
  std::vector<char> dead(k, 0);
  for (std::size_t j : f.dead_columns) dead[j] = 1;
  const auto w0_at = [&](std::size_t i, std::size_t j) { return dead[j] ? 0.0f : w(i, j); };
  std::vector<double> ww;
  resize_huge(ww, rows * k);
  parallel_for(0, rows, 64, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i)
      for (std::size_t a = 0; a < k; ++a) ww[i * k + a] = w0_at(i, order[a]);
  });

  gptq_result res;
  quantized_tensor& qt = res.weight;
  qt.config = cfg;
  qt.rows = rows;
  qt.cols = k;
  qt.codes = aligned_buffer<std::uint8_t>(rows * qt.row_bytes());
  std::fill(qt.codes.data(), qt.codes.data() + qt.codes.size(), std::uint8_t(0));
  if (dynamic_groups) {
    qt.scales.assign(param_count_for(cfg.gran, rows, k), 1.0f);
    qt.zero_points.assign(qt.scales.size(), 0);
  } else {
    std::vector<float> w0(rows * k);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < k; ++j) w0[i * k + j] = w0_at(i, j);
    const quantized_tensor q0 = quantize(matrix_view<const float>(w0.data(), rows, k), cfg);
    qt.scales = q0.scales;
    qt.zero_points = q0.zero_points;
  }
  const int qmin = cfg.format.qmin(), qmax = cfg.format.qmax(), bits = cfg.format.bits;
  const bool is_signed = cfg.format.is_signed;
  const std::size_t rb = qt.row_bytes();
  const quant_config row_cfg = detail::per_row_config(cfg);

  // The block walk runs over tiles of `tile` rows, column by column within a tile: the
  // tile's block columns (copied to a contiguous scratch) and the block's rows of U stay
  // in L1/L2 while every column updates the rest of the block.
  constexpr std::size_t tile = 16;
  std::vector<double> err(rows * bs);
  std::vector<double> row_loss(rows, 0.0);  // Σ e²: each row's loss under the damped H'
  std::vector<double> row_dw2(rows, 0.0);   // ‖W0 − Ŵ‖² per row, for undamped_loss
  for (std::size_t i1 = 0; i1 < k; i1 += bs) {
    const std::size_t i2 = std::min(k, i1 + bs), nb = i2 - i1;
    parallel_for(0, rows, tile, [&](std::size_t lo, std::size_t hi) {
      std::vector<double> blk(tile * bs);
      std::vector<float> grp;
      for (std::size_t t0 = lo; t0 < hi; t0 += tile) {
        const std::size_t t1 = std::min(hi, t0 + tile), nr = t1 - t0;
        for (std::size_t r = t0; r < t1; ++r)
          std::copy(ww.data() + r * k + i1, ww.data() + r * k + i2, blk.data() + (r - t0) * bs);
        for (std::size_t a = i1; a < i2; ++a) {
          const std::size_t c = a - i1;
          if (dynamic_groups && a % g == 0) {
            // The group's parameters from its current weights (storage order = walking order).
            grp.resize(nr * g);
            for (std::size_t r = 0; r < nr; ++r)
              for (std::size_t t = 0; t < g; ++t) grp[r * g + t] = static_cast<float>(blk[r * bs + c + t]);
            const quantized_tensor qg = quantize(matrix_view<const float>(grp.data(), nr, g), row_cfg);
            for (std::size_t r = 0; r < nr; ++r) {
              const std::size_t idx = param_index_for(cfg.gran, k, t0 + r, a);
              qt.scales[idx] = qg.scales[r];
              qt.zero_points[idx] = qg.zero_points[r];
            }
          }
          const std::size_t j = order[a];
          const double d = f.at(a, a);
          const double* urow = f.u.data() + a * k + i1;
          for (std::size_t r = t0; r < t1; ++r) {
            double* br = blk.data() + (r - t0) * bs;
            const std::size_t idx = param_index_for(cfg.gran, k, r, j);
            const float s = qt.scales[idx];
            const int z = qt.zero_points[idx];
            const int q = quantize_value(static_cast<float>(br[c]), inverse_scale(s), z, qmin, qmax);
            set_code(bits, is_signed, qt.codes.data() + r * rb, j, q);
            const float v = dequantize_value(q, s, z);
            const double dw = double(w0_at(r, j)) - double(v);
            row_dw2[r] += dw * dw;
            const double e = (br[c] - double(v)) / d;
            err[r * bs + c] = e;
            row_loss[r] += e * e;
            for (std::size_t b = c + 1; b < nb; ++b) br[b] -= e * urow[b];
          }
        }
      }
    });
    // Columns beyond the block: W[:, i2:] −= Err · U[i1:i2, i2:].
    if (i2 < k)
      lapack::gemm_strided(where, false, false, rows, k - i2, nb, -1.0, err.data(), bs, f.u.data() + i1 * k + i2, k, 1.0,
                           ww.data() + i2, k);
  }
  double loss = 0, dw2 = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    loss += row_loss[r];
    dw2 += row_dw2[r];
  }
  res.error = f.undamped_loss(loss, dw2);
  res.dampening = f.dampening;
  res.dampening_retries = f.retries;
  res.dead_columns = f.dead_columns.size();
  return res;
}

}  // namespace solvers
PARE_NAMESPACE_END
