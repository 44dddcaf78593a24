// NEON (AArch64) integer matmul kernels: vmull_s8 products paired into int32 with vpadal, per 16-row tile.
#pragma once

// Each 16-byte vector of a 64-byte quad block holds 4 rows × 4 k. vmull_s8 of its halves
// with the activation quad repeated gives int16 products (|p| ≤ 128·127, exact), and
// vpadalq_s16 adds adjacent pairs into int32 lanes (row r: k0+k1, k2+k3); one vpaddq at
// the end of a group leaves one int32 per row. int4 nibbles (0..15) are used as signed
// bytes the same way. Exact int32 group sums, as the scalar reference. Advanced SIMD is
// mandatory on AArch64 (no target attribute); the dot-product extension is not used.

#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "pare/core/unroll.hpp"
#include "pare/kernels/matmul/matmul_args.hpp"
#include "pare/kernels/matmul/packed_weights.hpp"


PARE_NAMESPACE_BEGIN
namespace kernels {
namespace neon_mm {

/// acc[2v], acc[2v+1] += pairwise products of the 16-byte block v (rows 4v..4v+3) with x.
inline void dot_block(int32x4_t (&acc)[8], const int8x16_t (&w)[4], int8x16_t x) noexcept {
  PARE_UNROLL
  for (int v = 0; v < 4; ++v) {
    acc[2 * v] = vpadalq_s16(acc[2 * v], vmull_s8(vget_low_s8(w[v]), vget_low_s8(x)));
    acc[2 * v + 1] = vpadalq_s16(acc[2 * v + 1], vmull_high_s8(w[v], x));
  }
}

template <class Packed>
inline void tile_row(const Packed& w, const matmul_acts& a, std::size_t m, std::size_t t, float* part) noexcept {
  constexpr bool int8 = std::is_same_v<Packed, packed_int8>;
  const std::size_t step = int8 ? 4 : 8, pg = w.padded_group(), gb = pg / step;
  for (std::size_t g = 0; g < w.groups; ++g) {
    int32x4_t acc[8];
    PARE_UNROLL
    for (int v = 0; v < 8; ++v) acc[v] = vdupq_n_s32(0);
    for (std::size_t o = 0; o < gb; ++o) {
      const std::int8_t* xq = a.q + m * a.ld + (g * gb + o) * step;
      std::int32_t q0;
      std::memcpy(&q0, xq, 4);
      const int8x16_t x0 = vreinterpretq_s8_s32(vdupq_n_s32(q0));
      int8x16_t wv[4];
      if constexpr (int8) {
        const std::int8_t* blk = w.codes.data() + (t * (w.kp / 4) + g * gb + o) * 64;
        PARE_UNROLL
        for (int v = 0; v < 4; ++v) wv[v] = vld1q_s8(blk + 16 * v);
        dot_block(acc, wv, x0);
      } else {
        const std::uint8_t* blk = w.block(t, g, o);
        std::int32_t q1;
        std::memcpy(&q1, xq + 4, 4);
        const int8x16_t x1 = vreinterpretq_s8_s32(vdupq_n_s32(q1));
        uint8x16_t b[4];
        PARE_UNROLL
        for (int v = 0; v < 4; ++v) {
          b[v] = vld1q_u8(blk + 16 * v);
          wv[v] = vreinterpretq_s8_u8(vandq_u8(b[v], vdupq_n_u8(0x0F)));
        }
        dot_block(acc, wv, x0);
        PARE_UNROLL
        for (int v = 0; v < 4; ++v) wv[v] = vreinterpretq_s8_u8(vshrq_n_u8(b[v], 4));
        dot_block(acc, wv, x1);
      }
    }
    const float* sc = w.scales16(t, g);
    const float* of = w.offsets16(t, g);
    const float xs = w.has_offsets() ? float(a.xsum[m * w.groups + g]) : 0.0f;
    PARE_UNROLL
    for (int v = 0; v < 4; ++v) {
      const float32x4_t s = vcvtq_f32_s32(vpaddq_s32(acc[2 * v], acc[2 * v + 1]));
      float32x4_t p = vfmaq_f32(vld1q_f32(part + 4 * v), s, vld1q_f32(sc + 4 * v));
      if (of) p = vfmaq_n_f32(p, vld1q_f32(of + 4 * v), xs);
      vst1q_f32(part + 4 * v, p);
    }
  }
}

template <class Packed>
inline void block_impl(const Packed& w, const matmul_acts& a, const matmul_block& b) noexcept {
  float part[16];
  for (std::size_t t = b.t0; t < b.t1; ++t) {
    const std::size_t c0 = t * matmul_tile_rows, valid = std::min<std::size_t>(16, w.n - c0);
    for (std::size_t m = b.m0; m < b.m1; ++m) {
      std::fill(part, part + 16, 0.0f);
      tile_row(w, a, m, t, part);
      for (std::size_t c = 0; c < valid; ++c) b.y[m * b.ldy + c0 + c] = a.sx[m] * part[c];
    }
  }
}

inline void matmul_int8_block(const packed_int8& w, const matmul_acts& a, const matmul_block& b) noexcept {
  block_impl(w, a, b);
}
inline void matmul_int4_block(const packed_int4& w, const matmul_acts& a, const matmul_block& b) noexcept {
  block_impl(w, a, b);
}

}  // namespace neon_mm
}  // namespace kernels
PARE_NAMESPACE_END

#endif  // __aarch64__
