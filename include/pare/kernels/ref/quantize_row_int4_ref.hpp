// Scalar reference of the fused 4-bit row kernels: quantize to packed nibbles, dequantize from them.
#pragma once

// Nibble order (normative for every variant; two 4-bit codes per byte, row-major):
//
//   element:   0    1    2    3    4  ...  n-1 (n odd)
//   byte:      [ b0      ][ b1      ][ b2 ...  ]
//   b_k = (q[2k] & 0xF) | (q[2k+1] & 0xF) << 4       element 2k   -> low  nibble (bits 0-3)
//                                                   element 2k+1 -> high nibble (bits 4-7)
//
// A row of n codes takes (n + 1) / 2 bytes; for odd n the last high nibble is 0. A
// signed code is stored as its low 4 bits (two's complement) and sign-extended on load.
// Codes are those of ref::quantize_row, so the format's bits must be <= 4.

#include <cstddef>
#include <cstdint>

#include "pare/kernels/ref/quantize_row_ref.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {
namespace ref {

/// ref::quantize_row, then two codes per byte (see the nibble order above); writes (n + 1) / 2 bytes.
inline void quantize_row_int4(const float* x, std::size_t n, const row_qparams& p, std::uint8_t* packed) noexcept {
  auto code = [&](std::size_t i) {
    const std::size_t g = i / p.group;
    return static_cast<unsigned>(quantize_value(x[i], p.inv_scale[g], p.zero[g], p.qmin, p.qmax)) & 0xFu;
  };
  for (std::size_t k = 0; 2 * k < n; ++k) {
    const unsigned lo = code(2 * k);
    const unsigned hi = 2 * k + 1 < n ? code(2 * k + 1) : 0u;
    packed[k] = static_cast<std::uint8_t>(lo | (hi << 4));
  }
}

/// y[i] = float(q - z) * s with q the nibble of element i (sign-extended when is_signed).
inline void dequantize_row_int4(const std::uint8_t* packed, std::size_t n, const row_qparams& p, bool is_signed,
                                float* y) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t g = i / p.group;
    const int nib = (packed[i / 2] >> (4 * (i & 1))) & 0xF;
    const int q = is_signed ? (nib ^ 8) - 8 : nib;
    y[i] = dequantize_value(q, p.scale[g], p.zero[g]);
  }
}

}  // namespace ref
}  // namespace kernels
PARE_NAMESPACE_END
