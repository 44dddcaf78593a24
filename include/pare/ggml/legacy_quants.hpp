// ggml's 32-element block formats Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: quantize one row (with or without an importance matrix) and dequantize.
#pragma once

// Algorithms (ggml-quants.c, reproduced byte for byte; see types.hpp for the layouts):
//   Q8_0  d = amax/127, q = round(x/d) (half away from zero). An importance matrix is ignored.
//   Q4_0  d = max/−8 where max is the signed value of largest magnitude, q = min(15, trunc(x/d + 8.5)).
//   Q5_0  the same with −16 and 31.
//   Q4_1  d = (max − min)/15, m = min, q = min(15, trunc((x − min)/d + 0.5)); Q5_1 with 31.
// With an importance matrix imatrix[cols] (ggml's quant_weights), each element weighs
// imatrix[j]·sqrt(σ² + x_j²) with σ² = mean of x² over the row, and the block scale
// (and min for Q4_1/Q5_1) comes from the weighted fits in scale_search.hpp.
// Row functions take `cols` (a multiple of 32) and write cols/32 blocks.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "pare/ggml/detail/block_bytes.hpp"
#include "pare/ggml/detail/scale_search.hpp"

PARE_NAMESPACE_BEGIN
namespace ggml {

PARE_GGML_EXACT_BEGIN

namespace detail {

/// Mean of x² over the row: the σ² of the importance weighting.
inline float row_sigma2(const float* x, std::size_t cols) noexcept {
  PARE_GGML_EXACT
  float sum_x2 = 0;
  for (std::size_t j = 0; j < cols; ++j) sum_x2 += x[j] * x[j];
  return sum_x2 / float(cols);
}

/// w[j] = qw[j]·sqrt(σ² + x[j]²) for one block.
inline void importance_weights(const float* x, const float* qw, float sigma2, int n, float* w) noexcept {
  PARE_GGML_EXACT
  for (int j = 0; j < n; ++j) w[j] = qw[j] * std::sqrt(sigma2 + x[j] * x[j]);
}

/// The signed value of largest magnitude in the block (first one on ties).
inline float signed_absmax(const float* x, int n) noexcept {
  PARE_GGML_EXACT
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

/// Packs 32 levels (element j low nibble, j + 16 high nibble) and, for 5-bit formats, the fifth bits.
inline void pack_nibbles(const std::uint8_t* L, std::uint8_t* qs, std::uint8_t* qh) noexcept {
  std::uint32_t h = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<std::uint8_t>((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
    h |= std::uint32_t((L[j] & 0x10u) >> 4) << j;
    h |= std::uint32_t((L[j + 16] & 0x10u) >> 4) << (j + 16);
  }
  if (qh) store_u32(qh, h);
}

/// Level of element j of a 32-block: the nibble, plus the fifth bit when qh is given.
inline int unpack_level(const std::uint8_t* qs, const std::uint8_t* qh, int j) noexcept {
  const int nib = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
  return qh ? nib | int((load_u32(qh) >> j) & 1u) << 4 : nib;
}

/// Q4_0 / Q5_0 block without importance (nmax 8 or 16).
inline void quantize_block_sym(const float* x, std::uint8_t* d_at, std::uint8_t* qs, std::uint8_t* qh,
                               int nmax) noexcept {
  PARE_GGML_EXACT
  const float max = signed_absmax(x, 32);
  const float d = max / float(-nmax);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  store_f16(d_at, d);
  std::uint8_t L[32];
  const int top = 2 * nmax - 1;
  for (int j = 0; j < 32; ++j) {
    const int q = static_cast<std::int8_t>(static_cast<int>(x[j] * id + (float(nmax) + 0.5f)));
    L[j] = static_cast<std::uint8_t>(q < top ? q : top);
  }
  pack_nibbles(L, qs, qh);
}

/// Q4_1 / Q5_1 block without importance (nmax 15 or 31).
inline void quantize_block_affine(const float* x, std::uint8_t* d_at, std::uint8_t* m_at, std::uint8_t* qs,
                                  std::uint8_t* qh, int nmax) noexcept {
  PARE_GGML_EXACT
  float min = x[0], max = x[0];
  for (int j = 0; j < 32; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / float(nmax);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  store_f16(d_at, d);
  store_f16(m_at, min);
  std::uint8_t L[32];
  for (int j = 0; j < 32; ++j) {
    const float v = (x[j] - min) * id;
    if (nmax == 15) {
      const int q = static_cast<std::int8_t>(static_cast<int>(v + 0.5f));
      L[j] = static_cast<std::uint8_t>(q < 15 ? q : 15);
    } else {
      L[j] = static_cast<std::uint8_t>(static_cast<int>(v + 0.5f));
    }
  }
  pack_nibbles(L, qs, qh);
}

}  // namespace detail

/// Q8_0: 34-byte blocks. `imatrix` is accepted and ignored, as in ggml.
inline void quantize_row_q8_0(const float* x, std::uint8_t* y, std::size_t cols, const float* /*imatrix*/) noexcept {
  PARE_GGML_EXACT
  for (std::size_t b = 0; b < cols / 32; ++b, x += 32, y += 34) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = amax > std::fabs(x[j]) ? amax : std::fabs(x[j]);
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    detail::store_f16(y, d);
    for (int j = 0; j < 32; ++j)
      y[2 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(static_cast<int>(std::round(x[j] * id))));
  }
}

inline void dequantize_row_q8_0(const std::uint8_t* y, float* x, std::size_t cols) noexcept {
  PARE_GGML_EXACT
  for (std::size_t b = 0; b < cols / 32; ++b, x += 32, y += 34) {
    const float d = detail::load_f16(y);
    for (int j = 0; j < 32; ++j) x[j] = float(static_cast<std::int8_t>(y[2 + j])) * d;
  }
}

namespace detail {

/// Q4_0 / Q5_0 rows: blocks of `bytes` with d at 0, the fifth bits at qh_at (0: none) and
/// the nibbles at qs_at; levels in [0, 2·nmax).
inline void quantize_row_sym(const float* x, std::uint8_t* y, std::size_t cols, const float* imatrix, int nmax,
                             std::size_t bytes, std::size_t qs_at, std::size_t qh_at) noexcept {
  PARE_GGML_EXACT
  const float sigma2 = imatrix ? row_sigma2(x, cols) : 0.0f;
  for (std::size_t b = 0; b < cols / 32; ++b) {
    const float* xb = x + 32 * b;
    std::uint8_t* yb = y + bytes * b;
    std::uint8_t* qh = qh_at ? yb + qh_at : nullptr;
    if (!imatrix) {
      quantize_block_sym(xb, yb, yb + qs_at, qh, nmax);
      continue;
    }
    float w[32];
    std::int8_t L[32];
    importance_weights(xb, imatrix + 32 * b, sigma2, 32, w);
    store_f16(yb, symmetric_fit(32, nmax, xb, L, 1, w));
    pack_nibbles(reinterpret_cast<const std::uint8_t*>(L), yb + qs_at, qh);
  }
}

/// Q4_1 / Q5_1 rows: blocks of `bytes` with d at 0, m at 2, the fifth bits at qh_at (0:
/// none) and the nibbles at qs_at; levels in [0, nmax].
inline void quantize_row_affine(const float* x, std::uint8_t* y, std::size_t cols, const float* imatrix, int nmax,
                                std::size_t bytes, std::size_t qs_at, std::size_t qh_at) noexcept {
  PARE_GGML_EXACT
  const float sigma2 = imatrix ? row_sigma2(x, cols) : 0.0f;
  for (std::size_t b = 0; b < cols / 32; ++b) {
    const float* xb = x + 32 * b;
    std::uint8_t* yb = y + bytes * b;
    std::uint8_t* qh = qh_at ? yb + qh_at : nullptr;
    if (!imatrix) {
      quantize_block_affine(xb, yb, yb + 2, yb + qs_at, qh, nmax);
      continue;
    }
    float w[32], min = 0;
    std::uint8_t L[32], Laux[32];
    importance_weights(xb, imatrix + 32 * b, sigma2, 32, w);
    const float d = affine_fit(32, nmax, xb, w, L, &min, Laux, -0.9f, 0.05f, 36, false, true);
    store_f16(yb, d);
    store_f16(yb + 2, -min);
    pack_nibbles(L, yb + qs_at, qh);
  }
}

}  // namespace detail

/// Q4_0 (18-byte blocks: d, qs) and Q5_0 (22-byte blocks: d, qh, qs).
inline void quantize_row_q4_0(const float* x, std::uint8_t* y, std::size_t cols, const float* imatrix) noexcept {
  detail::quantize_row_sym(x, y, cols, imatrix, 8, 18, 2, 0);
}
inline void quantize_row_q5_0(const float* x, std::uint8_t* y, std::size_t cols, const float* imatrix) noexcept {
  detail::quantize_row_sym(x, y, cols, imatrix, 16, 22, 6, 2);
}

/// Q4_1 (20-byte blocks: d, m, qs) and Q5_1 (24-byte blocks: d, m, qh, qs).
inline void quantize_row_q4_1(const float* x, std::uint8_t* y, std::size_t cols, const float* imatrix) noexcept {
  detail::quantize_row_affine(x, y, cols, imatrix, 15, 20, 4, 0);
}
inline void quantize_row_q5_1(const float* x, std::uint8_t* y, std::size_t cols, const float* imatrix) noexcept {
  detail::quantize_row_affine(x, y, cols, imatrix, 31, 24, 8, 4);
}

/// Dequantization of the four nibble formats (bytes per block 18, 22, 20, 24).
inline void dequantize_row_q4_0(const std::uint8_t* y, float* x, std::size_t cols) noexcept {
  PARE_GGML_EXACT
  for (std::size_t b = 0; b < cols / 32; ++b, x += 32, y += 18) {
    const float d = detail::load_f16(y);
    for (int j = 0; j < 32; ++j) x[j] = float(detail::unpack_level(y + 2, nullptr, j) - 8) * d;
  }
}

inline void dequantize_row_q5_0(const std::uint8_t* y, float* x, std::size_t cols) noexcept {
  PARE_GGML_EXACT
  for (std::size_t b = 0; b < cols / 32; ++b, x += 32, y += 22) {
    const float d = detail::load_f16(y);
    for (int j = 0; j < 32; ++j) x[j] = float(detail::unpack_level(y + 6, y + 2, j) - 16) * d;
  }
}

inline void dequantize_row_q4_1(const std::uint8_t* y, float* x, std::size_t cols) noexcept {
  PARE_GGML_EXACT
  for (std::size_t b = 0; b < cols / 32; ++b, x += 32, y += 20) {
    const float d = detail::load_f16(y), m = detail::load_f16(y + 2);
    for (int j = 0; j < 32; ++j) x[j] = float(detail::unpack_level(y + 4, nullptr, j)) * d + m;
  }
}

inline void dequantize_row_q5_1(const std::uint8_t* y, float* x, std::size_t cols) noexcept {
  PARE_GGML_EXACT
  for (std::size_t b = 0; b < cols / 32; ++b, x += 32, y += 24) {
    const float d = detail::load_f16(y), m = detail::load_f16(y + 2);
    for (int j = 0; j < 32; ++j) x[j] = float(detail::unpack_level(y + 8, y + 4, j)) * d + m;
  }
}

PARE_GGML_EXACT_END

}  // namespace ggml
PARE_NAMESPACE_END
