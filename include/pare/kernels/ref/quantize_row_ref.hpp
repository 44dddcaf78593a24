// Scalar reference row kernels: quantize, stochastic quantize, dequantize, fake-quant, scan. They define the semantics.
#pragma once

// Contract (all variants): x, codes and y need no alignment; n may be any size
// including 0; nothing is validated (the API boundary does it). A code byte holds the
// low 8 bits of q (two's complement for signed formats). Integer results of every
// SIMD variant equal these functions bit for bit; float results too (same operations
// in the same order, round-to-nearest-even, no FMA contraction).

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "pare/core/rng.hpp"
#include "pare/kernels/row_qparams.hpp"
#include "pare/core/affine.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {
namespace ref {

/// codes[i] = quantize_value(x[i], ...) with nearest-even rounding.
inline void quantize_row(const float* x, std::size_t n, const row_qparams& p, std::uint8_t* codes) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t g = i / p.group;
    codes[i] = static_cast<std::uint8_t>(quantize_value(x[i], p.inv_scale[g], p.zero[g], p.qmin, p.qmax));
  }
}

/// Stochastic rounding; u for element i is counter_uniform(key, col0 + i), where key is
/// row_key(seed, row) and col0 the column of x[0] in the full row.
inline void quantize_row_stochastic(const float* x, std::size_t n, const row_qparams& p, std::uint32_t key,
                                    std::uint32_t col0, std::uint8_t* codes) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t g = i / p.group;
    const float u = counter_uniform(key, col0 + static_cast<std::uint32_t>(i));
    codes[i] = static_cast<std::uint8_t>(
        quantize_value_stochastic(x[i], p.inv_scale[g], p.zero[g], p.qmin, p.qmax, u));
  }
}

/// y[i] = float(q - z) * s, q read from a code byte (sign-extended when is_signed).
inline void dequantize_row(const std::uint8_t* codes, std::size_t n, const row_qparams& p, bool is_signed,
                           float* y) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t g = i / p.group;
    const int q = is_signed ? int(static_cast<std::int8_t>(codes[i])) : int(codes[i]);
    y[i] = dequantize_value(q, p.scale[g], p.zero[g]);
  }
}

/// y[i] = dequantize(quantize(x[i])) (nearest-even), computed as nearbyint(clamp(v))·s.
inline void fake_quant_row(const float* x, std::size_t n, const row_qparams& p, float* y) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t g = i / p.group;
    const int q = quantize_value(x[i], p.inv_scale[g], p.zero[g], p.qmin, p.qmax);
    y[i] = dequantize_value(q, p.scale[g], p.zero[g]);
  }
}

/// Min and max over the finite elements of the row, and the first non-finite position
/// (n if none). For n == 0 (or no finite element) min = +inf, max = -inf. Order rule:
/// -0.0 counts as less than +0.0, so min and max are the same bits whatever order the
/// elements are visited in (a row holding both zeros has min -0.0 / max +0.0).
inline row_stats scan_row(const float* x, std::size_t n) noexcept {
  row_stats s{INFINITY, -INFINITY, n};
  for (std::size_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (!std::isfinite(v)) {
      if (s.first_nonfinite == n) s.first_nonfinite = i;
      continue;
    }
    if (v < s.min || (v == s.min && std::signbit(v))) s.min = v;
    if (v > s.max || (v == s.max && !std::signbit(v))) s.max = v;
  }
  return s;
}

}  // namespace ref
}  // namespace kernels
PARE_NAMESPACE_END
