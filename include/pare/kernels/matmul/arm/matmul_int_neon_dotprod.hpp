// NEON dot-product (ARMv8.2-A SDOT) int8 / int4 matmul kernels: vdotq_laneq_s32 on 16-row tiles, 1-4 rows per weight load.
#pragma once

// Each 16-byte vector v of a 64-byte quad block holds rows 4v..4v+3 × 4 consecutive k
// (packed_weights.hpp), which is exactly SDOT's shape: vdotq_laneq_s32(acc, w_v, x, L)
// adds, in int32 lane r, Σ_j w[4v+r][j]·x[4L+j], so four accumulators hold the 16 rows
// of a tile and no pairwise reduction is needed. Activations are loaded 16 bytes (4 k
// quads) at a time and selected by lane; int4 blocks are split into the low nibbles
// (k = 8o..8o+3, lane 2i) and the high ones (k = 8o+4..8o+7, lane 2i+1), nibbles 0..15
// used as signed bytes. Products are at most 128·127 and the sums are int32, so the
// group sums equal ref/matmul_int_ref.hpp exactly (the same int32 contract as the other
// variants). The float epilogue is the one of arm/matmul_int_neon.hpp
// (part = fma(float(acc), scale, part); part = fma(offset, float(xsum), part); y = sx·part),
// so with exact integer sums both NEON variants give bit-identical outputs.
// Register blocking: up to 4 activation rows share each weight load (16 accumulators);
// a single row uses two accumulator sets (even / odd quads) to halve the SDOT
// dependency chains. Tails (a group's last 1..3 quads, its last int4 octet) read only
// their own 4 / 8 activation bytes, so nothing past the padded row is read.
//
// Build and selection: the functions carry PARE_TARGET_NEON_DOT, i.e. GCC's
// target("arch=armv8.2-a+dotprod") (GCC 12 rejects target("+dotprod") for the
// intrinsics: "target specific option mismatch"), or nothing when the translation unit
// is already compiled with dotprod (__ARM_FEATURE_DOTPROD). Clang before 16 only
// declares the dot-product intrinsics under __ARM_FEATURE_DOTPROD, so with Clang the
// variant exists only in such builds. PARE_HAS_NEON_DOT_KERNELS says whether it was
// compiled; it is reached only through matmul_dispatch() (matmul_int.hpp), which picks
// it when isa::neon_dot is enabled, i.e. when the CPU reports dotprod (Linux:
// getauxval(AT_HWCAP) & HWCAP_ASIMDDP; see pare/core/isa.hpp).

#include "pare/core/unroll.hpp"
#include "pare/core/config.hpp"

#if defined(__aarch64__) && \
    (defined(__ARM_FEATURE_DOTPROD) || (defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8))
#define PARE_HAS_NEON_DOT_KERNELS 1
#if defined(__ARM_FEATURE_DOTPROD)
#define PARE_TARGET_NEON_DOT
#else
#define PARE_TARGET_NEON_DOT __attribute__((target("arch=armv8.2-a+dotprod")))
#endif
#else
#define PARE_HAS_NEON_DOT_KERNELS 0
#endif

#if PARE_HAS_NEON_DOT_KERNELS
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pare/kernels/matmul/matmul_args.hpp"
#include "pare/kernels/matmul/packed_weights.hpp"


PARE_NAMESPACE_BEGIN
namespace kernels {
namespace neon_dot_mm {

/// Accumulators of MR rows × 16 outputs, in S sets (summed at the end of a group).
template <int MR>
struct accs {
  static constexpr int sets = MR == 1 ? 2 : 1;
  int32x4_t v[sets][MR][4];
};

/// acc[r][v] += rows 4v..4v+3 of the quad block w · quad L of x[r].
template <int L, int MR>
PARE_TARGET_NEON_DOT PARE_ALWAYS_INLINE void dot_quad(int32x4_t (&acc)[MR][4], const int8x16_t (&w)[4],
                                                      const int8x16_t (&x)[MR]) noexcept {
  PARE_UNROLL
  for (int r = 0; r < MR; ++r)
    PARE_UNROLL
    for (int v = 0; v < 4; ++v) acc[r][v] = vdotq_laneq_s32(acc[r][v], w[v], x[r], L);
}

/// int8: the quad block at blk against quad L of x.
template <int L, int MR>
PARE_TARGET_NEON_DOT PARE_ALWAYS_INLINE void quad8(int32x4_t (&acc)[MR][4], const std::int8_t* blk,
                                                   const int8x16_t (&x)[MR]) noexcept {
  int8x16_t w[4];
  PARE_UNROLL
  for (int v = 0; v < 4; ++v) w[v] = vld1q_s8(blk + 16 * v);
  dot_quad<L, MR>(acc, w, x);
}

/// int4: the octet block at blk; low nibbles against quad L, high nibbles against quad L + 1.
template <int L, int MR>
PARE_TARGET_NEON_DOT PARE_ALWAYS_INLINE void octet4(int32x4_t (&lo)[MR][4], int32x4_t (&hi)[MR][4],
                                                    const std::uint8_t* blk, const int8x16_t (&x)[MR]) noexcept {
  int8x16_t wl[4], wh[4];
  PARE_UNROLL
  for (int v = 0; v < 4; ++v) {
    const uint8x16_t b = vld1q_u8(blk + 16 * v);
    wl[v] = vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0x0F)));
    wh[v] = vreinterpretq_s8_u8(vshrq_n_u8(b, 4));
  }
  dot_quad<L, MR>(lo, wl, x);
  dot_quad<L + 1, MR>(hi, wh, x);
}

/// Exact int32 sums of group g, tile t, for the MR activation rows xr (row pointers).
template <int MR>
PARE_TARGET_NEON_DOT PARE_ALWAYS_INLINE void group_sums(const packed_int8& w, const std::int8_t* const (&xr)[MR],
                                                        std::size_t t, std::size_t g,
                                                        int32x4_t (&sum)[MR][4]) noexcept {
  constexpr int S = accs<MR>::sets;
  accs<MR> a;
  PARE_UNROLL
  for (auto& s : a.v)
    PARE_UNROLL
    for (auto& r : s)
      PARE_UNROLL
      for (auto& v : r) v = vdupq_n_s32(0);
  const std::size_t gq = w.padded_group() / 4, q0 = g * gq;  // quads of the group, first quad
  const std::int8_t* blk = w.codes.data() + (t * (w.kp / 4) + q0) * 64;
  std::size_t o = 0;
  for (; o + 4 <= gq; o += 4, blk += 256) {
    int8x16_t x[MR];
    PARE_UNROLL
    for (int r = 0; r < MR; ++r) x[r] = vld1q_s8(xr[r] + (q0 + o) * 4);
    quad8<0, MR>(a.v[0], blk, x);
    quad8<1, MR>(a.v[1 % S], blk + 64, x);
    quad8<2, MR>(a.v[0], blk + 128, x);
    quad8<3, MR>(a.v[1 % S], blk + 192, x);
  }
  for (; o < gq; ++o, blk += 64) {
    int8x16_t x[MR];
    PARE_UNROLL
    for (int r = 0; r < MR; ++r) {
      std::int32_t q;
      std::memcpy(&q, xr[r] + (q0 + o) * 4, 4);
      x[r] = vreinterpretq_s8_s32(vdupq_n_s32(q));
    }
    quad8<0, MR>(a.v[0], blk, x);
  }
  PARE_UNROLL
  for (int r = 0; r < MR; ++r)
    PARE_UNROLL
    for (int v = 0; v < 4; ++v) sum[r][v] = S == 2 ? vaddq_s32(a.v[0][r][v], a.v[S - 1][r][v]) : a.v[0][r][v];
}

template <int MR>
PARE_TARGET_NEON_DOT PARE_ALWAYS_INLINE void group_sums(const packed_int4& w, const std::int8_t* const (&xr)[MR],
                                                        std::size_t t, std::size_t g,
                                                        int32x4_t (&sum)[MR][4]) noexcept {
  accs<MR> a;  // set 0: low nibbles; set 1 (single row): high nibbles
  constexpr int S = accs<MR>::sets;
  PARE_UNROLL
  for (auto& s : a.v)
    PARE_UNROLL
    for (auto& r : s)
      PARE_UNROLL
      for (auto& v : r) v = vdupq_n_s32(0);
  const std::size_t go = w.padded_group() / 8, o0 = g * go;  // octets of the group, first octet
  const std::uint8_t* blk = w.block(t, g, 0);                 // a group's octet blocks are contiguous
  std::size_t o = 0;
  for (; o + 2 <= go; o += 2, blk += 128) {
    int8x16_t x[MR];
    PARE_UNROLL
    for (int r = 0; r < MR; ++r) x[r] = vld1q_s8(xr[r] + (o0 + o) * 8);
    octet4<0, MR>(a.v[0], a.v[S - 1], blk, x);
    octet4<2, MR>(a.v[0], a.v[S - 1], blk + 64, x);
  }
  if (o < go) {
    int8x16_t x[MR];
    PARE_UNROLL
    for (int r = 0; r < MR; ++r) {
      std::int64_t q;
      std::memcpy(&q, xr[r] + (o0 + o) * 8, 8);
      x[r] = vreinterpretq_s8_s64(vdupq_n_s64(q));
    }
    octet4<0, MR>(a.v[0], a.v[S - 1], blk, x);
  }
  PARE_UNROLL
  for (int r = 0; r < MR; ++r)
    PARE_UNROLL
    for (int v = 0; v < 4; ++v) sum[r][v] = S == 2 ? vaddq_s32(a.v[0][r][v], a.v[S - 1][r][v]) : a.v[0][r][v];
}

/// Rows [m, m + MR) × tile t: all groups, then y = sx·part for the valid columns.
template <int MR, class Packed>
PARE_TARGET_NEON_DOT inline void tile_rows(const Packed& w, const matmul_acts& a, const matmul_block& b, std::size_t t,
                                           std::size_t m) noexcept {
  const std::int8_t* xr[MR];
  PARE_UNROLL
  for (int r = 0; r < MR; ++r) xr[r] = a.q + (m + r) * a.ld;
  float32x4_t part[MR][4];
  PARE_UNROLL
  for (auto& r : part)
    PARE_UNROLL
    for (auto& v : r) v = vdupq_n_f32(0.0f);
  for (std::size_t g = 0; g < w.groups; ++g) {
    int32x4_t sum[MR][4];
    group_sums<MR>(w, xr, t, g, sum);
    const float* sc = w.scales16(t, g);
    const float* of = w.offsets16(t, g);
    PARE_UNROLL
    for (int v = 0; v < 4; ++v) {
      const float32x4_t s = vld1q_f32(sc + 4 * v);
      PARE_UNROLL
      for (int r = 0; r < MR; ++r) part[r][v] = vfmaq_f32(part[r][v], vcvtq_f32_s32(sum[r][v]), s);
    }
    if (of) {
      PARE_UNROLL
      for (int r = 0; r < MR; ++r) {
        const float xs = float(a.xsum[(m + r) * w.groups + g]);
        PARE_UNROLL
        for (int v = 0; v < 4; ++v) part[r][v] = vfmaq_n_f32(part[r][v], vld1q_f32(of + 4 * v), xs);
      }
    }
  }
  const std::size_t c0 = t * matmul_tile_rows, valid = std::min<std::size_t>(16, w.n - c0);
  PARE_UNROLL
  for (int r = 0; r < MR; ++r) {
    float* y = b.y + (m + r) * b.ldy + c0;
    const float sx = a.sx[m + r];
    if (valid == 16) {
      PARE_UNROLL
      for (int v = 0; v < 4; ++v) vst1q_f32(y + 4 * v, vmulq_n_f32(part[r][v], sx));
    } else {
      float out[16];
      PARE_UNROLL
      for (int v = 0; v < 4; ++v) vst1q_f32(out + 4 * v, vmulq_n_f32(part[r][v], sx));
      std::copy(out, out + valid, y);
    }
  }
}

template <class Packed>
PARE_TARGET_NEON_DOT inline void block_impl(const Packed& w, const matmul_acts& a, const matmul_block& b) noexcept {
  for (std::size_t t = b.t0; t < b.t1; ++t) {
    std::size_t m = b.m0;
    for (; m + 4 <= b.m1; m += 4) tile_rows<4>(w, a, b, t, m);
    switch (b.m1 - m) {
      case 3: tile_rows<3>(w, a, b, t, m); break;
      case 2: tile_rows<2>(w, a, b, t, m); break;
      case 1: tile_rows<1>(w, a, b, t, m); break;
      default: break;
    }
  }
}

PARE_TARGET_NEON_DOT inline void matmul_int8_block(const packed_int8& w, const matmul_acts& a,
                                                   const matmul_block& b) noexcept {
  block_impl(w, a, b);
}
PARE_TARGET_NEON_DOT inline void matmul_int4_block(const packed_int4& w, const matmul_acts& a,
                                                   const matmul_block& b) noexcept {
  block_impl(w, a, b);
}

}  // namespace neon_dot_mm
}  // namespace kernels
PARE_NAMESPACE_END

#endif  // PARE_HAS_NEON_DOT_KERNELS
