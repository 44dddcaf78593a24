// Fused fake-quant linear forward for QAT: y = x·fq(W)ᵀ with W quantize-dequantized tile by tile, never materialised whole.
#pragma once

// fq(W) uses the given fake_quant_params (learned scales during QAT) or, with a
// quant_config, parameters chosen from W by the config's observer (as fake_quantize
// would). Per tile of 16 output rows: fake_quant_row of each row into an L2-sized
// buffer, packed into the fp32 kernels' tile layout, then multiplied with all rows of x.
// The result equals matmul(x, fake_quantize(W)) bit for bit (same kernel, same order).
// The backward pass (STE / LSQ) is fake_quant_backward in pare/quant/fake_quant.hpp,
// applied to the weight gradient xᵀ·dy with the same parameters.

#include <cmath>
#include <cstddef>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/kernels/matmul/matmul_f32.hpp"
#include "pare/kernels/quantize_row.hpp"
#include "pare/quant/fake_quant.hpp"
#include "pare/quant/quantized_tensor.hpp"

PARE_NAMESPACE_BEGIN

inline void fake_quant_linear(const matrix_view<const float>& x, const matrix_view<const float>& w,
                              const fake_quant_params& p, const matrix_view<float>& y) {
  const char* where = "pare::fake_quant_linear";
  if (x.cols() != w.cols() || y.rows() != x.rows() || y.cols() != w.rows())
    detail::fail<shape_error>(where, ": expected x [M, ", w.cols(), "] and y [M, ", w.rows(), "] for weights ",
                              w.shape(), ", got x ", x.shape(), " and y ", y.shape());
  p.validate(where, w.rows(), w.cols());
  const std::size_t m = x.rows(), n = w.rows(), k = w.cols(), tiles = (n + 15) / 16;
  if (m == 0 || n == 0) return;
  // Weights must be finite (their codes would be undefined); checked before y is touched.
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t j = 0; j < k; ++j)
      if (!std::isfinite(w(r, j)))
        detail::fail<value_error>(where, ": argument 'w': expected finite values, got NaN or Inf at (", r, ", ", j, ")");
  std::vector<float> inv(p.scales.size());
  for (std::size_t i = 0; i < inv.size(); ++i) inv[i] = inverse_scale(p.scales[i]);
  const kernels::unit_stride_rows xs(x);
  const bool direct = y.col_stride() == 1 && y.row_stride() >= static_cast<std::ptrdiff_t>(n);
  std::vector<float> scratch(direct ? 0 : m * n);
  float* out = direct ? y.row_ptr(0) : scratch.data();
  const std::size_t ldy = direct ? static_cast<std::size_t>(y.row_stride()) : n;
  const kernels::f32_block_fn fn = kernels::matmul_f32_dispatch().pick();
  parallel_for(0, tiles, 1, [&](std::size_t lo, std::size_t hi) {
    std::vector<float> rows(16 * k), row_in(k);
    aligned_buffer<float> tile(16 * k);
    for (std::size_t t = lo; t < hi; ++t) {
      const std::size_t r0 = t * 16, nr = std::min<std::size_t>(16, n - r0);
      for (std::size_t r = 0; r < nr; ++r) {
        const float* src = w.row_ptr(r0 + r);
        if (w.col_stride() != 1) {
          for (std::size_t j = 0; j < k; ++j) row_in[j] = w(r0 + r, j);
          src = row_in.data();
        }
        kernels::fake_quant_row(src, k, row_params_for(p.format, p.gran, k, r0 + r, p.scales.data(), inv.data(),
                                                       p.zero_points.data()),
                                rows.data() + r * k);
      }
      pack_f32_tile(matrix_view<const float>(rows.data(), nr, k), 0, tile.data());
      fn(xs.data, xs.ld, 0, m, tile.data(), k, 1, r0, n, out, ldy);
    }
  });
  if (!direct)
    for (std::size_t r = 0; r < m; ++r)
      for (std::size_t c = 0; c < n; ++c) y(r, c) = scratch[r * n + c];
}

/// The same with parameters chosen from w by cfg's observer.
inline void fake_quant_linear(const matrix_view<const float>& x, const matrix_view<const float>& w,
                              const quant_config& cfg, const matrix_view<float>& y) {
  fake_quant_linear(x, w, fake_quant_params::from_data(w, cfg), y);
}

PARE_NAMESPACE_END
