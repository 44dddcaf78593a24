// SSE4.1 row kernels (4 floats per vector): quantize, stochastic, dequantize, fake-quant, scan, int4.
#pragma once

// Tail and alignment contract: x, codes, y and packed need no alignment; n may be any
// size including 0. Full vectors use unaligned loads and stores; the last partial
// vector of each group segment is copied into a zero-padded stack vector, computed
// with the same code, and only its valid elements are copied out, so no byte outside
// the arrays is touched. The *_streaming variants write y with non-temporal stores from
// its first 16-byte boundary on (regular stores before it and for the tail; none at all
// if y is not float-aligned) and end with sfence. Results equal pare::kernels::ref bit for bit (rounding by
// cvtps2dq under the caller's MXCSR, as nearbyint; no FMA). Reached only through the
// dispatch in pare/kernels/quantize_row.hpp.

#include "pare/core/config.hpp"

#if PARE_HAS_X86_KERNELS
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pare/kernels/ref/quantize_row_ref.hpp"
#include "pare/kernels/row_segments.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {
namespace sse41 {
namespace impl {

using kernels::detail::row_block;
constexpr std::size_t W = 4;
constexpr std::uint32_t golden = 0x9E3779B9u;  // counter_bits' column multiplier

PARE_TARGET_SSE41 PARE_ALWAYS_INLINE __m128i round4(__m128 x, __m128 inv, __m128 lo, __m128 hi, __m128i z) noexcept {
  const __m128 v = _mm_min_ps(_mm_max_ps(_mm_mul_ps(x, inv), lo), hi);
  return _mm_add_epi32(_mm_cvtps_epi32(v), z);
}

PARE_TARGET_SSE41 PARE_ALWAYS_INLINE __m128 uniform4(__m128i h) noexcept {
  h = _mm_xor_si128(h, _mm_srli_epi32(h, 16));
  h = _mm_mullo_epi32(h, _mm_set1_epi32(0x7feb352d));
  h = _mm_xor_si128(h, _mm_srli_epi32(h, 15));
  h = _mm_mullo_epi32(h, _mm_set1_epi32(static_cast<int>(0x846ca68bu)));
  h = _mm_xor_si128(h, _mm_srli_epi32(h, 16));
  return _mm_mul_ps(_mm_cvtepi32_ps(_mm_srli_epi32(h, 8)), _mm_set1_ps(1.0f / 16777216.0f));
}

PARE_TARGET_SSE41 PARE_ALWAYS_INLINE __m128i stoch4(__m128 x, __m128 inv, __m128 lo, __m128 hi, __m128i z,
                                                    __m128i ctr) noexcept {
  __m128 v = _mm_min_ps(_mm_max_ps(_mm_mul_ps(x, inv), lo), hi);
  v = _mm_floor_ps(_mm_add_ps(v, uniform4(ctr)));
  v = _mm_min_ps(_mm_max_ps(v, lo), hi);
  return _mm_add_epi32(_mm_cvtps_epi32(v), z);
}

PARE_TARGET_SSE41 PARE_ALWAYS_INLINE __m128 fake4(__m128 x, __m128 inv, __m128 lo, __m128 hi, __m128 s) noexcept {
  const __m128 v = _mm_min_ps(_mm_max_ps(_mm_mul_ps(x, inv), lo), hi);
  return _mm_mul_ps(_mm_cvtepi32_ps(_mm_cvtps_epi32(v)), s);
}

template <bool Signed>
PARE_TARGET_SSE41 PARE_ALWAYS_INLINE __m128 deq4(const std::uint8_t* c, __m128 s, __m128i z) noexcept {
  std::int32_t four;
  std::memcpy(&four, c, sizeof four);
  const __m128i b = _mm_cvtsi32_si128(four);
  const __m128i q = Signed ? _mm_cvtepi8_epi32(b) : _mm_cvtepu8_epi32(b);
  return _mm_mul_ps(_mm_cvtepi32_ps(_mm_sub_epi32(q, z)), s);
}

PARE_TARGET_SSE41 PARE_ALWAYS_INLINE __m128 bound4(int q, __m128i z) noexcept {
  return _mm_cvtepi32_ps(_mm_sub_epi32(_mm_set1_epi32(q), z));
}

// Low bytes of 4 codes in [-128, 255] (two's complement for negatives) to dst[0, 4).
PARE_TARGET_SSE41 PARE_ALWAYS_INLINE void store4(std::uint8_t* dst, __m128i q) noexcept {
  __m128i w = _mm_packs_epi32(q, q);  // exact in int16
  w = _mm_and_si128(w, _mm_set1_epi16(0xFF));
  const std::int32_t four = _mm_cvtsi128_si32(_mm_packus_epi16(w, w));
  std::memcpy(dst, &four, sizeof four);
}

// Low bytes of 16 codes (four vectors in element order) to dst[0, 16).
PARE_TARGET_SSE41 PARE_ALWAYS_INLINE void store16(std::uint8_t* dst, __m128i q0, __m128i q1, __m128i q2,
                                                  __m128i q3) noexcept {
  const __m128i m = _mm_set1_epi16(0xFF);
  const __m128i a = _mm_and_si128(_mm_packs_epi32(q0, q1), m);
  const __m128i b = _mm_and_si128(_mm_packs_epi32(q2, q3), m);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_packus_epi16(a, b));
}

// Elements of y before its first 16-byte boundary (n if y is not float-aligned).
PARE_ALWAYS_INLINE std::size_t stream_head(const float* y, std::size_t n) noexcept {
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(y);
  return a % sizeof(float) ? n : std::min(n, ((std::uintptr_t(0) - a) & 15) / sizeof(float));
}

PARE_TARGET_SSE41 PARE_ALWAYS_INLINE __m128i lane_counters() noexcept {
  return _mm_mullo_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32(static_cast<int>(golden)));
}

// Copies m < W floats into a zero-padded vector.
PARE_TARGET_SSE41 PARE_ALWAYS_INLINE __m128 load_partial(const float* x, std::size_t m) noexcept {
  alignas(16) float b[W] = {};
  std::memcpy(b, x, m * sizeof(float));
  return _mm_load_ps(b);
}

PARE_TARGET_SSE41 PARE_ALWAYS_INLINE void store_partial(float* y, std::size_t m, __m128 v) noexcept {
  alignas(16) float b[W];
  _mm_store_ps(b, v);
  std::memcpy(y, b, m * sizeof(float));
}

PARE_TARGET_SSE41 PARE_ALWAYS_INLINE void store4_partial(std::uint8_t* dst, std::size_t m, __m128i q) noexcept {
  std::uint8_t b[W];
  store4(b, q);
  std::memcpy(dst, b, m);
}

// ---- segments: one group, broadcast parameters -------------------------------------

PARE_TARGET_SSE41 PARE_ALWAYS_INLINE void quantize_segment(const float* x, std::size_t n, float inv, std::int32_t z,
                                                           int qmin, int qmax, std::uint8_t* codes) noexcept {
  const __m128 vi = _mm_set1_ps(inv), lo = _mm_set1_ps(float(qmin - z)), hi = _mm_set1_ps(float(qmax - z));
  const __m128i vz = _mm_set1_epi32(z);
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W)
    store16(codes + i, round4(_mm_loadu_ps(x + i), vi, lo, hi, vz), round4(_mm_loadu_ps(x + i + W), vi, lo, hi, vz),
            round4(_mm_loadu_ps(x + i + 2 * W), vi, lo, hi, vz), round4(_mm_loadu_ps(x + i + 3 * W), vi, lo, hi, vz));
  for (; i + W <= n; i += W) store4(codes + i, round4(_mm_loadu_ps(x + i), vi, lo, hi, vz));
  if (i < n) store4_partial(codes + i, n - i, round4(load_partial(x + i, n - i), vi, lo, hi, vz));
}

PARE_TARGET_SSE41 PARE_ALWAYS_INLINE void stochastic_segment(const float* x, std::size_t n, float inv, std::int32_t z,
                                                             int qmin, int qmax, std::uint32_t key, std::uint32_t col,
                                                             std::uint8_t* codes) noexcept {
  const __m128 vi = _mm_set1_ps(inv), lo = _mm_set1_ps(float(qmin - z)), hi = _mm_set1_ps(float(qmax - z));
  const __m128i vz = _mm_set1_epi32(z);
  const __m128i step = _mm_set1_epi32(static_cast<int>(golden * std::uint32_t(W)));
  __m128i ctr = _mm_add_epi32(_mm_set1_epi32(static_cast<int>(key + col * golden)), lane_counters());
  std::size_t i = 0;
  for (; i + W <= n; i += W, ctr = _mm_add_epi32(ctr, step))
    store4(codes + i, stoch4(_mm_loadu_ps(x + i), vi, lo, hi, vz, ctr));
  if (i < n) store4_partial(codes + i, n - i, stoch4(load_partial(x + i, n - i), vi, lo, hi, vz, ctr));
}

template <bool Signed, bool Stream>
PARE_TARGET_SSE41 PARE_ALWAYS_INLINE void dequantize_segment(const std::uint8_t* codes, std::size_t n, float s,
                                                             std::int32_t z, float* y) noexcept {
  const __m128 vs = _mm_set1_ps(s);
  const __m128i vz = _mm_set1_epi32(z);
  std::size_t i = 0;
  if (Stream && n >= 2 * W) {
    const std::size_t h = stream_head(y, n);
    if (h < W) {
      for (; i < h; ++i) y[i] = dequantize_value(Signed ? int(std::int8_t(codes[i])) : int(codes[i]), s, z);
      for (; i + W <= n; i += W) _mm_stream_ps(y + i, deq4<Signed>(codes + i, vs, vz));
    }
  }
  for (; i + 2 * W <= n; i += 2 * W) {
    _mm_storeu_ps(y + i, deq4<Signed>(codes + i, vs, vz));
    _mm_storeu_ps(y + i + W, deq4<Signed>(codes + i + W, vs, vz));
  }
  for (; i + W <= n; i += W) _mm_storeu_ps(y + i, deq4<Signed>(codes + i, vs, vz));
  if (i < n) {
    std::uint8_t b[W] = {};
    std::memcpy(b, codes + i, n - i);
    store_partial(y + i, n - i, deq4<Signed>(b, vs, vz));
  }
}

template <bool Stream>
PARE_TARGET_SSE41 PARE_ALWAYS_INLINE void fake_quant_segment(const float* x, std::size_t n, float inv, float s,
                                                             std::int32_t z, int qmin, int qmax, float* y) noexcept {
  const __m128 vi = _mm_set1_ps(inv), vs = _mm_set1_ps(s);
  const __m128 lo = _mm_set1_ps(float(qmin - z)), hi = _mm_set1_ps(float(qmax - z));
  std::size_t i = 0;
  if (Stream && n >= 2 * W) {
    const std::size_t h = stream_head(y, n);
    if (h < W) {
      for (; i < h; ++i) y[i] = dequantize_value(quantize_value(x[i], inv, z, qmin, qmax), s, z);
      for (; i + W <= n; i += W) _mm_stream_ps(y + i, fake4(_mm_loadu_ps(x + i), vi, lo, hi, vs));
    }
  }
  for (; i + 2 * W <= n; i += 2 * W) {
    _mm_storeu_ps(y + i, fake4(_mm_loadu_ps(x + i), vi, lo, hi, vs));
    _mm_storeu_ps(y + i + W, fake4(_mm_loadu_ps(x + i + W), vi, lo, hi, vs));
  }
  for (; i + W <= n; i += W) _mm_storeu_ps(y + i, fake4(_mm_loadu_ps(x + i), vi, lo, hi, vs));
  if (i < n) store_partial(y + i, n - i, fake4(load_partial(x + i, n - i), vi, lo, hi, vs));
}

// ---- element-wise: parameter arrays aligned with the data; the tail recurses once on
// ---- zero-padded copies ------------------------------------------------------------

PARE_TARGET_SSE41 inline void quantize_elementwise(const float* x, std::size_t n, const float* inv,
                                                   const std::int32_t* z, int qmin, int qmax,
                                                   std::uint8_t* codes) noexcept {
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const __m128i vz = _mm_loadu_si128(reinterpret_cast<const __m128i*>(z + i));
    store4(codes + i, round4(_mm_loadu_ps(x + i), _mm_loadu_ps(inv + i), bound4(qmin, vz), bound4(qmax, vz), vz));
  }
  if (i < n) {
    const std::size_t m = n - i;
    float xb[W] = {}, ib[W] = {};
    std::int32_t zb[W] = {};
    std::uint8_t cb[W];
    std::memcpy(xb, x + i, m * sizeof(float));
    std::memcpy(ib, inv + i, m * sizeof(float));
    std::memcpy(zb, z + i, m * sizeof(std::int32_t));
    quantize_elementwise(xb, W, ib, zb, qmin, qmax, cb);
    std::memcpy(codes + i, cb, m);
  }
}

PARE_TARGET_SSE41 inline void stochastic_elementwise(const float* x, std::size_t n, const float* inv,
                                                     const std::int32_t* z, int qmin, int qmax, std::uint32_t key,
                                                     std::uint32_t col, std::uint8_t* codes) noexcept {
  const __m128i step = _mm_set1_epi32(static_cast<int>(golden * std::uint32_t(W)));
  __m128i ctr = _mm_add_epi32(_mm_set1_epi32(static_cast<int>(key + col * golden)), lane_counters());
  std::size_t i = 0;
  for (; i + W <= n; i += W, ctr = _mm_add_epi32(ctr, step)) {
    const __m128i vz = _mm_loadu_si128(reinterpret_cast<const __m128i*>(z + i));
    store4(codes + i, stoch4(_mm_loadu_ps(x + i), _mm_loadu_ps(inv + i), bound4(qmin, vz), bound4(qmax, vz), vz, ctr));
  }
  if (i < n) {
    const std::size_t m = n - i;
    float xb[W] = {}, ib[W] = {};
    std::int32_t zb[W] = {};
    std::uint8_t cb[W];
    std::memcpy(xb, x + i, m * sizeof(float));
    std::memcpy(ib, inv + i, m * sizeof(float));
    std::memcpy(zb, z + i, m * sizeof(std::int32_t));
    stochastic_elementwise(xb, W, ib, zb, qmin, qmax, key, col + std::uint32_t(i), cb);
    std::memcpy(codes + i, cb, m);
  }
}

template <bool Signed>
PARE_TARGET_SSE41 inline void dequantize_elementwise(const std::uint8_t* codes, std::size_t n, const float* s,
                                                     const std::int32_t* z, float* y) noexcept {
  std::size_t i = 0;
  for (; i + W <= n; i += W)
    _mm_storeu_ps(
        y + i, deq4<Signed>(codes + i, _mm_loadu_ps(s + i), _mm_loadu_si128(reinterpret_cast<const __m128i*>(z + i))));
  if (i < n) {
    const std::size_t m = n - i;
    std::uint8_t cb[W] = {};
    float sb[W] = {}, yb[W];
    std::int32_t zb[W] = {};
    std::memcpy(cb, codes + i, m);
    std::memcpy(sb, s + i, m * sizeof(float));
    std::memcpy(zb, z + i, m * sizeof(std::int32_t));
    dequantize_elementwise<Signed>(cb, W, sb, zb, yb);
    std::memcpy(y + i, yb, m * sizeof(float));
  }
}

PARE_TARGET_SSE41 inline void fake_quant_elementwise(const float* x, std::size_t n, const float* inv, const float* s,
                                                     const std::int32_t* z, int qmin, int qmax, float* y) noexcept {
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const __m128i vz = _mm_loadu_si128(reinterpret_cast<const __m128i*>(z + i));
    _mm_storeu_ps(y + i, fake4(_mm_loadu_ps(x + i), _mm_loadu_ps(inv + i), bound4(qmin, vz), bound4(qmax, vz),
                               _mm_loadu_ps(s + i)));
  }
  if (i < n) {
    const std::size_t m = n - i;
    float xb[W] = {}, ib[W] = {}, sb[W] = {}, yb[W];
    std::int32_t zb[W] = {};
    std::memcpy(xb, x + i, m * sizeof(float));
    std::memcpy(ib, inv + i, m * sizeof(float));
    std::memcpy(sb, s + i, m * sizeof(float));
    std::memcpy(zb, z + i, m * sizeof(std::int32_t));
    fake_quant_elementwise(xb, W, ib, sb, zb, qmin, qmax, yb);
    std::memcpy(y + i, yb, m * sizeof(float));
  }
}

// ---- spans: elements [i0, i0 + n) of a row; x / codes / y point at element i0 -------

PARE_TARGET_SSE41 inline void quantize_span(const float* x, std::size_t i0, std::size_t n, const row_qparams& p,
                                            std::uint8_t* codes) noexcept {
  const std::size_t G = p.group;
  if (G == 1) return quantize_elementwise(x, n, p.inv_scale + i0, p.zero + i0, p.qmin, p.qmax, codes);
  if (G < W) {
    alignas(16) float inv[row_block];
    alignas(16) std::int32_t z[row_block];
    for (std::size_t b = 0; b < n; b += row_block) {
      const std::size_t len = std::min(row_block, n - b);
      kernels::detail::expand_params(p, i0 + b, len, inv, nullptr, z);
      quantize_elementwise(x + b, len, inv, z, p.qmin, p.qmax, codes + b);
    }
    return;
  }
  std::size_t g = i0 / G;
  for (std::size_t i = 0, len = std::min(n, G - i0 % G); i < n; i += len, len = std::min(n - i, G), ++g)
    quantize_segment(x + i, len, p.inv_scale[g], p.zero[g], p.qmin, p.qmax, codes + i);
}

template <bool Signed, bool Stream>
PARE_TARGET_SSE41 inline void dequantize_span(const std::uint8_t* codes, std::size_t i0, std::size_t n,
                                              const row_qparams& p, float* y) noexcept {
  const std::size_t G = p.group;
  if (G == 1) return dequantize_elementwise<Signed>(codes, n, p.scale + i0, p.zero + i0, y);
  if (G < W) {
    alignas(16) float s[row_block];
    alignas(16) std::int32_t z[row_block];
    for (std::size_t b = 0; b < n; b += row_block) {
      const std::size_t len = std::min(row_block, n - b);
      kernels::detail::expand_params(p, i0 + b, len, nullptr, s, z);
      dequantize_elementwise<Signed>(codes + b, len, s, z, y + b);
    }
    return;
  }
  std::size_t g = i0 / G;
  for (std::size_t i = 0, len = std::min(n, G - i0 % G); i < n; i += len, len = std::min(n - i, G), ++g)
    dequantize_segment<Signed, Stream>(codes + i, len, p.scale[g], p.zero[g], y + i);
}

// Two codes per byte (element 2k low nibble, 2k+1 high nibble); n codes -> (n + 1) / 2 bytes.
PARE_TARGET_SSE41 inline void pack_nibbles(const std::uint8_t* codes, std::size_t n, std::uint8_t* packed) noexcept {
  const __m128i low = _mm_set1_epi16(0x000F), high = _mm_set1_epi16(0x00F0);
  for (std::size_t i = 0; i < n; i += 16) {
    const std::size_t m = std::min<std::size_t>(16, n - i);
    alignas(16) std::uint8_t b[16] = {};
    const std::uint8_t* src = codes + i;
    if (m < 16) {
      std::memcpy(b, src, m);
      src = b;
    }
    const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
    const __m128i t = _mm_or_si128(_mm_and_si128(w, low), _mm_and_si128(_mm_srli_epi16(w, 4), high));
    const __m128i out = _mm_packus_epi16(t, t);
    if (m == 16) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(packed + i / 2), out);
    } else {
      alignas(16) std::uint8_t o[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(o), out);
      std::memcpy(packed + i / 2, o, (m + 1) / 2);
    }
  }
}

// Inverse of pack_nibbles; signed codes are sign-extended to a byte.
PARE_TARGET_SSE41 inline void unpack_nibbles(const std::uint8_t* packed, std::size_t n, bool is_signed,
                                             std::uint8_t* codes) noexcept {
  const __m128i low = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  for (std::size_t i = 0; i < n; i += 16) {
    const std::size_t m = std::min<std::size_t>(16, n - i);
    __m128i v;
    if (m == 16) {
      v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(packed + i / 2));
    } else {
      alignas(16) std::uint8_t b[16] = {};
      std::memcpy(b, packed + i / 2, (m + 1) / 2);
      v = _mm_load_si128(reinterpret_cast<const __m128i*>(b));
    }
    const __m128i lo = _mm_and_si128(v, low), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low);
    __m128i c = _mm_unpacklo_epi8(lo, hi);
    if (is_signed) c = _mm_sub_epi8(_mm_xor_si128(c, eight), eight);
    if (m == 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), c);
    } else {
      alignas(16) std::uint8_t o[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(o), c);
      std::memcpy(codes + i, o, m);
    }
  }
}

PARE_TARGET_SSE41 PARE_ALWAYS_INLINE float hmin(__m128 m) noexcept {
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_min_ss(m, _mm_shuffle_ps(m, m, 1)));
}

PARE_TARGET_SSE41 PARE_ALWAYS_INLINE float hmax(__m128 m) noexcept {
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}

}  // namespace impl

/// See ref::quantize_row.
PARE_TARGET_SSE41 inline void quantize_row(const float* x, std::size_t n, const row_qparams& p,
                                           std::uint8_t* codes) noexcept {
  impl::quantize_span(x, 0, n, p, codes);
}

/// See ref::quantize_row_stochastic.
PARE_TARGET_SSE41 inline void quantize_row_stochastic(const float* x, std::size_t n, const row_qparams& p,
                                                      std::uint32_t key, std::uint32_t col0,
                                                      std::uint8_t* codes) noexcept {
  const std::size_t G = p.group;
  if (G == 1) return impl::stochastic_elementwise(x, n, p.inv_scale, p.zero, p.qmin, p.qmax, key, col0, codes);
  if (G < impl::W) {
    alignas(16) float inv[impl::row_block];
    alignas(16) std::int32_t z[impl::row_block];
    for (std::size_t b = 0; b < n; b += impl::row_block) {
      const std::size_t len = std::min(impl::row_block, n - b);
      kernels::detail::expand_params(p, b, len, inv, nullptr, z);
      impl::stochastic_elementwise(x + b, len, inv, z, p.qmin, p.qmax, key, col0 + std::uint32_t(b), codes + b);
    }
    return;
  }
  for (std::size_t i = 0, g = 0; i < n; i += G, ++g)
    impl::stochastic_segment(x + i, std::min(G, n - i), p.inv_scale[g], p.zero[g], p.qmin, p.qmax, key,
                             col0 + std::uint32_t(i), codes + i);
}

/// See ref::dequantize_row.
PARE_TARGET_SSE41 inline void dequantize_row(const std::uint8_t* codes, std::size_t n, const row_qparams& p,
                                             bool is_signed, float* y) noexcept {
  if (is_signed)
    impl::dequantize_span<true, false>(codes, 0, n, p, y);
  else
    impl::dequantize_span<false, false>(codes, 0, n, p, y);
}

/// dequantize_row with non-temporal stores for y (same results).
PARE_TARGET_SSE41 inline void dequantize_row_streaming(const std::uint8_t* codes, std::size_t n, const row_qparams& p,
                                                       bool is_signed, float* y) noexcept {
  if (is_signed)
    impl::dequantize_span<true, true>(codes, 0, n, p, y);
  else
    impl::dequantize_span<false, true>(codes, 0, n, p, y);
  _mm_sfence();
}

namespace impl {
template <bool Stream>
PARE_TARGET_SSE41 inline void fake_quant_row(const float* x, std::size_t n, const row_qparams& p, float* y) noexcept {
  const std::size_t G = p.group;
  if (G == 1) return fake_quant_elementwise(x, n, p.inv_scale, p.scale, p.zero, p.qmin, p.qmax, y);
  if (G < W) {
    alignas(16) float inv[row_block], s[row_block];
    alignas(16) std::int32_t z[row_block];
    for (std::size_t b = 0; b < n; b += row_block) {
      const std::size_t len = std::min(row_block, n - b);
      kernels::detail::expand_params(p, b, len, inv, s, z);
      fake_quant_elementwise(x + b, len, inv, s, z, p.qmin, p.qmax, y + b);
    }
    return;
  }
  for (std::size_t i = 0, g = 0; i < n; i += G, ++g)
    fake_quant_segment<Stream>(x + i, std::min(G, n - i), p.inv_scale[g], p.scale[g], p.zero[g], p.qmin, p.qmax, y + i);
}
}  // namespace impl

/// See ref::fake_quant_row.
PARE_TARGET_SSE41 inline void fake_quant_row(const float* x, std::size_t n, const row_qparams& p, float* y) noexcept {
  impl::fake_quant_row<false>(x, n, p, y);
}

/// fake_quant_row with non-temporal stores for y (same results).
PARE_TARGET_SSE41 inline void fake_quant_row_streaming(const float* x, std::size_t n, const row_qparams& p,
                                                       float* y) noexcept {
  impl::fake_quant_row<true>(x, n, p, y);
  _mm_sfence();
}

/// See ref::scan_row. Fast path: vector min/max and an exponent-all-ones test; a row
/// with a non-finite value is rescanned by the reference (it is an error path).
PARE_TARGET_SSE41 inline row_stats scan_row(const float* x, std::size_t n) noexcept {
  const __m128i expo = _mm_set1_epi32(0x7F800000);
  __m128 mn = _mm_set1_ps(INFINITY), mx = _mm_set1_ps(-INFINITY);
  __m128 mn2 = mn, mx2 = mx;
  std::size_t i = 0;
  for (; i + 2 * impl::W <= n; i += 2 * impl::W) {
    const __m128 a = _mm_loadu_ps(x + i), b = _mm_loadu_ps(x + i + impl::W);
    const __m128i ea = _mm_cmpeq_epi32(_mm_and_si128(_mm_castps_si128(a), expo), expo);
    const __m128i eb = _mm_cmpeq_epi32(_mm_and_si128(_mm_castps_si128(b), expo), expo);
    const __m128i bad = _mm_or_si128(ea, eb);
    if (!_mm_testz_si128(bad, bad)) return ref::scan_row(x, n);
    mn = _mm_min_ps(mn, a);
    mx = _mm_max_ps(mx, a);
    mn2 = _mm_min_ps(mn2, b);
    mx2 = _mm_max_ps(mx2, b);
  }
  row_stats s{impl::hmin(_mm_min_ps(mn, mn2)), impl::hmax(_mm_max_ps(mx, mx2)), n};
  for (; i < n; ++i) {
    if (!std::isfinite(x[i])) return ref::scan_row(x, n);
    s.min = x[i] < s.min ? x[i] : s.min;
    s.max = x[i] > s.max ? x[i] : s.max;
  }
  kernels::detail::settle_signed_zeros(x, n, s);
  return s;
}

/// See ref::quantize_row_int4: codes of a block in L1, then packed.
PARE_TARGET_SSE41 inline void quantize_row_int4(const float* x, std::size_t n, const row_qparams& p,
                                                std::uint8_t* packed) noexcept {
  alignas(16) std::uint8_t tmp[impl::row_block];
  for (std::size_t b = 0; b < n; b += impl::row_block) {
    const std::size_t len = std::min(impl::row_block, n - b);
    impl::quantize_span(x + b, b, len, p, tmp);
    impl::pack_nibbles(tmp, len, packed + b / 2);
  }
}

namespace impl {
template <bool Stream>
PARE_TARGET_SSE41 inline void dequantize_row_int4(const std::uint8_t* packed, std::size_t n, const row_qparams& p,
                                                  bool is_signed, float* y) noexcept {
  alignas(16) std::uint8_t tmp[row_block];
  for (std::size_t b = 0; b < n; b += row_block) {
    const std::size_t len = std::min(row_block, n - b);
    unpack_nibbles(packed + b / 2, len, is_signed, tmp);
    if (is_signed)
      dequantize_span<true, Stream>(tmp, b, len, p, y + b);
    else
      dequantize_span<false, Stream>(tmp, b, len, p, y + b);
  }
}
}  // namespace impl

/// See ref::dequantize_row_int4: nibbles of a block unpacked in L1, then dequantized.
PARE_TARGET_SSE41 inline void dequantize_row_int4(const std::uint8_t* packed, std::size_t n, const row_qparams& p,
                                                  bool is_signed, float* y) noexcept {
  impl::dequantize_row_int4<false>(packed, n, p, is_signed, y);
}

/// dequantize_row_int4 with non-temporal stores for y (same results).
PARE_TARGET_SSE41 inline void dequantize_row_int4_streaming(const std::uint8_t* packed, std::size_t n,
                                                            const row_qparams& p, bool is_signed, float* y) noexcept {
  impl::dequantize_row_int4<true>(packed, n, p, is_signed, y);
  _mm_sfence();
}

}  // namespace sse41
}  // namespace kernels
PARE_NAMESPACE_END

#endif  // PARE_HAS_X86_KERNELS
