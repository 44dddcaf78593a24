// NEON (AArch64) row kernels (4 floats per vector): quantize, stochastic, dequantize, fake-quant, scan, int4.
#pragma once

// Tail and alignment contract: x, codes, y and packed need no alignment; n may be any
// size including 0. Full vectors use vld1/vst1 (no alignment needed); the last partial
// vector of each group segment is copied into a zero-padded stack vector, computed
// with the same code, and only its valid elements are copied out. The *_streaming
// variants are the regular ones here (ordinary stores). Results equal
// pare::kernels::ref bit for bit under the default rounding mode (FCVTNS rounds to
// nearest-even, as nearbyint does under FPCR's default; no FMA: every multiply is
// followed by min/max or a conversion, never by an add). Advanced SIMD is mandatory on
// AArch64, so no target attribute is needed. Reached only through the dispatch in
// pare/kernels/quantize_row.hpp.

#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pare/kernels/ref/quantize_row_ref.hpp"
#include "pare/kernels/row_segments.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {
namespace neon {
namespace impl {

using kernels::detail::row_block;
constexpr std::size_t W = 4;
constexpr std::uint32_t golden = 0x9E3779B9u;  // counter_bits' column multiplier

PARE_ALWAYS_INLINE float32x4_t clamp4(float32x4_t v, float32x4_t lo, float32x4_t hi) noexcept {
  return vminq_f32(vmaxq_f32(v, lo), hi);
}

PARE_ALWAYS_INLINE int32x4_t round4(float32x4_t x, float32x4_t inv, float32x4_t lo, float32x4_t hi,
                                    int32x4_t z) noexcept {
  return vaddq_s32(vcvtnq_s32_f32(clamp4(vmulq_f32(x, inv), lo, hi)), z);
}

PARE_ALWAYS_INLINE float32x4_t uniform4(uint32x4_t h) noexcept {
  h = veorq_u32(h, vshrq_n_u32(h, 16));
  h = vmulq_u32(h, vdupq_n_u32(0x7feb352du));
  h = veorq_u32(h, vshrq_n_u32(h, 15));
  h = vmulq_u32(h, vdupq_n_u32(0x846ca68bu));
  h = veorq_u32(h, vshrq_n_u32(h, 16));
  return vmulq_f32(vcvtq_f32_u32(vshrq_n_u32(h, 8)), vdupq_n_f32(1.0f / 16777216.0f));
}

PARE_ALWAYS_INLINE int32x4_t stoch4(float32x4_t x, float32x4_t inv, float32x4_t lo, float32x4_t hi, int32x4_t z,
                                    uint32x4_t ctr) noexcept {
  const float32x4_t v = clamp4(vmulq_f32(x, inv), lo, hi);
  const float32x4_t f = clamp4(vrndmq_f32(vaddq_f32(v, uniform4(ctr))), lo, hi);
  return vaddq_s32(vcvtq_s32_f32(f), z);  // f is integer-valued: the conversion is exact
}

PARE_ALWAYS_INLINE float32x4_t fake4(float32x4_t x, float32x4_t inv, float32x4_t lo, float32x4_t hi,
                                     float32x4_t s) noexcept {
  return vmulq_f32(vcvtq_f32_s32(vcvtnq_s32_f32(clamp4(vmulq_f32(x, inv), lo, hi))), s);
}

template <bool Signed>
PARE_ALWAYS_INLINE float32x4_t deq4(const std::uint8_t* c, float32x4_t s, int32x4_t z) noexcept {
  std::uint32_t four;
  std::memcpy(&four, c, sizeof four);
  const uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(four));
  int32x4_t q;
  if (Signed)
    q = vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u8(b))));
  else
    q = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(b))));
  return vmulq_f32(vcvtq_f32_s32(vsubq_s32(q, z)), s);
}

PARE_ALWAYS_INLINE float32x4_t bound4(int q, int32x4_t z) noexcept {
  return vcvtq_f32_s32(vsubq_s32(vdupq_n_s32(q), z));
}

// Low bytes of 4 codes (two's complement for negatives) to dst[0, 4).
PARE_ALWAYS_INLINE void store4(std::uint8_t* dst, int32x4_t q) noexcept {
  const int16x4_t h = vmovn_s32(q);
  const int8x8_t b = vmovn_s16(vcombine_s16(h, h));  // truncating narrows keep the low bits
  const std::uint32_t four = vget_lane_u32(vreinterpret_u32_s8(b), 0);
  std::memcpy(dst, &four, sizeof four);
}

// Low bytes of 16 codes (four vectors in element order) to dst[0, 16).
PARE_ALWAYS_INLINE void store16(std::uint8_t* dst, int32x4_t q0, int32x4_t q1, int32x4_t q2, int32x4_t q3) noexcept {
  const int16x8_t a = vcombine_s16(vmovn_s32(q0), vmovn_s32(q1));
  const int16x8_t b = vcombine_s16(vmovn_s32(q2), vmovn_s32(q3));
  vst1q_u8(dst, vreinterpretq_u8_s8(vcombine_s8(vmovn_s16(a), vmovn_s16(b))));
}

PARE_ALWAYS_INLINE uint32x4_t lane_counters() noexcept {
  const std::uint32_t lanes[4] = {0u, golden, 2u * golden, 3u * golden};
  return vld1q_u32(lanes);
}

PARE_ALWAYS_INLINE float32x4_t load_partial(const float* x, std::size_t m) noexcept {
  float b[W] = {};
  std::memcpy(b, x, m * sizeof(float));
  return vld1q_f32(b);
}

PARE_ALWAYS_INLINE void store_partial(float* y, std::size_t m, float32x4_t v) noexcept {
  float b[W];
  vst1q_f32(b, v);
  std::memcpy(y, b, m * sizeof(float));
}

PARE_ALWAYS_INLINE void store4_partial(std::uint8_t* dst, std::size_t m, int32x4_t q) noexcept {
  std::uint8_t b[W];
  store4(b, q);
  std::memcpy(dst, b, m);
}

// ---- segments: one group, broadcast parameters -------------------------------------

PARE_ALWAYS_INLINE void quantize_segment(const float* x, std::size_t n, float inv, std::int32_t z, int qmin, int qmax,
                                         std::uint8_t* codes) noexcept {
  const float32x4_t vi = vdupq_n_f32(inv), lo = vdupq_n_f32(float(qmin - z)), hi = vdupq_n_f32(float(qmax - z));
  const int32x4_t vz = vdupq_n_s32(z);
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W)
    store16(codes + i, round4(vld1q_f32(x + i), vi, lo, hi, vz), round4(vld1q_f32(x + i + W), vi, lo, hi, vz),
            round4(vld1q_f32(x + i + 2 * W), vi, lo, hi, vz), round4(vld1q_f32(x + i + 3 * W), vi, lo, hi, vz));
  for (; i + W <= n; i += W) store4(codes + i, round4(vld1q_f32(x + i), vi, lo, hi, vz));
  if (i < n) store4_partial(codes + i, n - i, round4(load_partial(x + i, n - i), vi, lo, hi, vz));
}

PARE_ALWAYS_INLINE void stochastic_segment(const float* x, std::size_t n, float inv, std::int32_t z, int qmin, int qmax,
                                           std::uint32_t key, std::uint32_t col, std::uint8_t* codes) noexcept {
  const float32x4_t vi = vdupq_n_f32(inv), lo = vdupq_n_f32(float(qmin - z)), hi = vdupq_n_f32(float(qmax - z));
  const int32x4_t vz = vdupq_n_s32(z);
  const uint32x4_t step = vdupq_n_u32(golden * std::uint32_t(W));
  uint32x4_t ctr = vaddq_u32(vdupq_n_u32(key + col * golden), lane_counters());
  std::size_t i = 0;
  for (; i + W <= n; i += W, ctr = vaddq_u32(ctr, step))
    store4(codes + i, stoch4(vld1q_f32(x + i), vi, lo, hi, vz, ctr));
  if (i < n) store4_partial(codes + i, n - i, stoch4(load_partial(x + i, n - i), vi, lo, hi, vz, ctr));
}

template <bool Signed>
PARE_ALWAYS_INLINE void dequantize_segment(const std::uint8_t* codes, std::size_t n, float s, std::int32_t z,
                                           float* y) noexcept {
  const float32x4_t vs = vdupq_n_f32(s);
  const int32x4_t vz = vdupq_n_s32(z);
  std::size_t i = 0;
  for (; i + W <= n; i += W) vst1q_f32(y + i, deq4<Signed>(codes + i, vs, vz));
  if (i < n) {
    std::uint8_t b[W] = {};
    std::memcpy(b, codes + i, n - i);
    store_partial(y + i, n - i, deq4<Signed>(b, vs, vz));
  }
}

PARE_ALWAYS_INLINE void fake_quant_segment(const float* x, std::size_t n, float inv, float s, std::int32_t z, int qmin,
                                           int qmax, float* y) noexcept {
  const float32x4_t vi = vdupq_n_f32(inv), vs = vdupq_n_f32(s);
  const float32x4_t lo = vdupq_n_f32(float(qmin - z)), hi = vdupq_n_f32(float(qmax - z));
  std::size_t i = 0;
  for (; i + W <= n; i += W) vst1q_f32(y + i, fake4(vld1q_f32(x + i), vi, lo, hi, vs));
  if (i < n) store_partial(y + i, n - i, fake4(load_partial(x + i, n - i), vi, lo, hi, vs));
}

// ---- element-wise: parameter arrays aligned with the data; the tail recurses once on
// ---- zero-padded copies ------------------------------------------------------------

inline void quantize_elementwise(const float* x, std::size_t n, const float* inv, const std::int32_t* z, int qmin,
                                 int qmax, std::uint8_t* codes) noexcept {
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const int32x4_t vz = vld1q_s32(z + i);
    store4(codes + i, round4(vld1q_f32(x + i), vld1q_f32(inv + i), bound4(qmin, vz), bound4(qmax, vz), vz));
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

inline void stochastic_elementwise(const float* x, std::size_t n, const float* inv, const std::int32_t* z, int qmin,
                                   int qmax, std::uint32_t key, std::uint32_t col, std::uint8_t* codes) noexcept {
  const uint32x4_t step = vdupq_n_u32(golden * std::uint32_t(W));
  uint32x4_t ctr = vaddq_u32(vdupq_n_u32(key + col * golden), lane_counters());
  std::size_t i = 0;
  for (; i + W <= n; i += W, ctr = vaddq_u32(ctr, step)) {
    const int32x4_t vz = vld1q_s32(z + i);
    store4(codes + i, stoch4(vld1q_f32(x + i), vld1q_f32(inv + i), bound4(qmin, vz), bound4(qmax, vz), vz, ctr));
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
inline void dequantize_elementwise(const std::uint8_t* codes, std::size_t n, const float* s, const std::int32_t* z,
                                   float* y) noexcept {
  std::size_t i = 0;
  for (; i + W <= n; i += W) vst1q_f32(y + i, deq4<Signed>(codes + i, vld1q_f32(s + i), vld1q_s32(z + i)));
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

inline void fake_quant_elementwise(const float* x, std::size_t n, const float* inv, const float* s,
                                   const std::int32_t* z, int qmin, int qmax, float* y) noexcept {
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const int32x4_t vz = vld1q_s32(z + i);
    vst1q_f32(y + i, fake4(vld1q_f32(x + i), vld1q_f32(inv + i), bound4(qmin, vz), bound4(qmax, vz), vld1q_f32(s + i)));
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

inline void quantize_span(const float* x, std::size_t i0, std::size_t n, const row_qparams& p,
                          std::uint8_t* codes) noexcept {
  const std::size_t G = p.group;
  if (G == 1) return quantize_elementwise(x, n, p.inv_scale + i0, p.zero + i0, p.qmin, p.qmax, codes);
  if (G < W) {
    float inv[row_block];
    std::int32_t z[row_block];
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

template <bool Signed>
inline void dequantize_span(const std::uint8_t* codes, std::size_t i0, std::size_t n, const row_qparams& p,
                            float* y) noexcept {
  const std::size_t G = p.group;
  if (G == 1) return dequantize_elementwise<Signed>(codes, n, p.scale + i0, p.zero + i0, y);
  if (G < W) {
    float s[row_block];
    std::int32_t z[row_block];
    for (std::size_t b = 0; b < n; b += row_block) {
      const std::size_t len = std::min(row_block, n - b);
      kernels::detail::expand_params(p, i0 + b, len, nullptr, s, z);
      dequantize_elementwise<Signed>(codes + b, len, s, z, y + b);
    }
    return;
  }
  std::size_t g = i0 / G;
  for (std::size_t i = 0, len = std::min(n, G - i0 % G); i < n; i += len, len = std::min(n - i, G), ++g)
    dequantize_segment<Signed>(codes + i, len, p.scale[g], p.zero[g], y + i);
}

// Two codes per byte (element 2k low nibble, 2k+1 high nibble); n codes -> (n + 1) / 2 bytes.
inline void pack_nibbles(const std::uint8_t* codes, std::size_t n, std::uint8_t* packed) noexcept {
  for (std::size_t i = 0; i < n; i += 16) {
    const std::size_t m = std::min<std::size_t>(16, n - i);
    std::uint8_t b[16] = {};
    const std::uint8_t* src = codes + i;
    if (m < 16) {
      std::memcpy(b, src, m);
      src = b;
    }
    const uint16x8_t w = vreinterpretq_u16_u8(vld1q_u8(src));
    const uint16x8_t t =
        vorrq_u16(vandq_u16(w, vdupq_n_u16(0x000F)), vandq_u16(vshrq_n_u16(w, 4), vdupq_n_u16(0x00F0)));
    const uint8x8_t out = vmovn_u16(t);
    if (m == 16) {
      vst1_u8(packed + i / 2, out);
    } else {
      std::uint8_t o[8];
      vst1_u8(o, out);
      std::memcpy(packed + i / 2, o, (m + 1) / 2);
    }
  }
}

// Inverse of pack_nibbles; signed codes are sign-extended to a byte.
inline void unpack_nibbles(const std::uint8_t* packed, std::size_t n, bool is_signed, std::uint8_t* codes) noexcept {
  const uint8x8_t low = vdup_n_u8(0x0F);
  const uint8x16_t eight = vdupq_n_u8(8);
  for (std::size_t i = 0; i < n; i += 16) {
    const std::size_t m = std::min<std::size_t>(16, n - i);
    std::uint8_t b[8] = {};
    std::memcpy(b, packed + i / 2, (m + 1) / 2);
    const uint8x8_t v = vld1_u8(b);
    const uint8x8_t lo = vand_u8(v, low), hi = vshr_n_u8(v, 4);
    uint8x16_t c = vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi));
    if (is_signed) c = vsubq_u8(veorq_u8(c, eight), eight);  // (nib ^ 8) - 8, modulo 256
    if (m == 16) {
      vst1q_u8(codes + i, c);
    } else {
      std::uint8_t o[16];
      vst1q_u8(o, c);
      std::memcpy(codes + i, o, m);
    }
  }
}

}  // namespace impl

/// See ref::quantize_row.
inline void quantize_row(const float* x, std::size_t n, const row_qparams& p, std::uint8_t* codes) noexcept {
  impl::quantize_span(x, 0, n, p, codes);
}

/// See ref::quantize_row_stochastic.
inline void quantize_row_stochastic(const float* x, std::size_t n, const row_qparams& p, std::uint32_t key,
                                    std::uint32_t col0, std::uint8_t* codes) noexcept {
  const std::size_t G = p.group;
  if (G == 1) return impl::stochastic_elementwise(x, n, p.inv_scale, p.zero, p.qmin, p.qmax, key, col0, codes);
  if (G < impl::W) {
    float inv[impl::row_block];
    std::int32_t z[impl::row_block];
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
inline void dequantize_row(const std::uint8_t* codes, std::size_t n, const row_qparams& p, bool is_signed,
                           float* y) noexcept {
  if (is_signed)
    impl::dequantize_span<true>(codes, 0, n, p, y);
  else
    impl::dequantize_span<false>(codes, 0, n, p, y);
}

/// See ref::fake_quant_row.
inline void fake_quant_row(const float* x, std::size_t n, const row_qparams& p, float* y) noexcept {
  const std::size_t G = p.group;
  if (G == 1) return impl::fake_quant_elementwise(x, n, p.inv_scale, p.scale, p.zero, p.qmin, p.qmax, y);
  if (G < impl::W) {
    float inv[impl::row_block], s[impl::row_block];
    std::int32_t z[impl::row_block];
    for (std::size_t b = 0; b < n; b += impl::row_block) {
      const std::size_t len = std::min(impl::row_block, n - b);
      kernels::detail::expand_params(p, b, len, inv, s, z);
      impl::fake_quant_elementwise(x + b, len, inv, s, z, p.qmin, p.qmax, y + b);
    }
    return;
  }
  for (std::size_t i = 0, g = 0; i < n; i += G, ++g)
    impl::fake_quant_segment(x + i, std::min(G, n - i), p.inv_scale[g], p.scale[g], p.zero[g], p.qmin, p.qmax, y + i);
}

/// See ref::scan_row. Fast path: vector min/max and an exponent-all-ones test; a row
/// with a non-finite value is rescanned by the reference (it is an error path).
inline row_stats scan_row(const float* x, std::size_t n) noexcept {
  const uint32x4_t expo = vdupq_n_u32(0x7F800000u);
  float32x4_t mn = vdupq_n_f32(INFINITY), mx = vdupq_n_f32(-INFINITY);
  float32x4_t mn2 = mn, mx2 = mx;
  std::size_t i = 0;
  for (; i + 2 * impl::W <= n; i += 2 * impl::W) {
    const float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + i + impl::W);
    const uint32x4_t ea = vceqq_u32(vandq_u32(vreinterpretq_u32_f32(a), expo), expo);
    const uint32x4_t eb = vceqq_u32(vandq_u32(vreinterpretq_u32_f32(b), expo), expo);
    if (vmaxvq_u32(vorrq_u32(ea, eb)) != 0) return ref::scan_row(x, n);
    mn = vminq_f32(mn, a);
    mx = vmaxq_f32(mx, a);
    mn2 = vminq_f32(mn2, b);
    mx2 = vmaxq_f32(mx2, b);
  }
  row_stats s{vminvq_f32(vminq_f32(mn, mn2)), vmaxvq_f32(vmaxq_f32(mx, mx2)), n};
  for (; i < n; ++i) {
    if (!std::isfinite(x[i])) return ref::scan_row(x, n);
    s.min = x[i] < s.min ? x[i] : s.min;
    s.max = x[i] > s.max ? x[i] : s.max;
  }
  kernels::detail::settle_signed_zeros(x, n, s);
  return s;
}

/// See ref::quantize_row_int4: codes of a block in L1, then packed.
inline void quantize_row_int4(const float* x, std::size_t n, const row_qparams& p, std::uint8_t* packed) noexcept {
  std::uint8_t tmp[impl::row_block];
  for (std::size_t b = 0; b < n; b += impl::row_block) {
    const std::size_t len = std::min(impl::row_block, n - b);
    impl::quantize_span(x + b, b, len, p, tmp);
    impl::pack_nibbles(tmp, len, packed + b / 2);
  }
}

/// See ref::dequantize_row_int4: nibbles of a block unpacked in L1, then dequantized.
inline void dequantize_row_int4(const std::uint8_t* packed, std::size_t n, const row_qparams& p, bool is_signed,
                                float* y) noexcept {
  std::uint8_t tmp[impl::row_block];
  for (std::size_t b = 0; b < n; b += impl::row_block) {
    const std::size_t len = std::min(impl::row_block, n - b);
    impl::unpack_nibbles(packed + b / 2, len, is_signed, tmp);
    if (is_signed)
      impl::dequantize_span<true>(tmp, b, len, p, y + b);
    else
      impl::dequantize_span<false>(tmp, b, len, p, y + b);
  }
}

/// dequantize_row (no non-temporal stores on this ISA).
inline void dequantize_row_streaming(const std::uint8_t* codes, std::size_t n, const row_qparams& p, bool is_signed,
                                     float* y) noexcept {
  dequantize_row(codes, n, p, is_signed, y);
}

/// fake_quant_row (no non-temporal stores on this ISA).
inline void fake_quant_row_streaming(const float* x, std::size_t n, const row_qparams& p, float* y) noexcept {
  fake_quant_row(x, n, p, y);
}

/// dequantize_row_int4 (no non-temporal stores on this ISA).
inline void dequantize_row_int4_streaming(const std::uint8_t* packed, std::size_t n, const row_qparams& p,
                                          bool is_signed, float* y) noexcept {
  dequantize_row_int4(packed, n, p, is_signed, y);
}

}  // namespace neon
}  // namespace kernels
PARE_NAMESPACE_END

#endif  // defined(__aarch64__)
