// NEON (AArch64) row kernels (4 floats per vector): the operation traits under pare/kernels/detail/row_kernels.hpp.
#pragma once

// The kernels' logic, tail and alignment contract are in detail/row_kernels.hpp; here
// are only NEON's operations. Advanced SIMD is mandatory on AArch64, so no target
// attribute is needed (PARE_ROW_TARGET is empty). Partial vectors go through a
// zero-padded stack vector (padded_tails); no non-temporal stores (the *_streaming
// kernels store as the regular ones). Rounding by FCVTNS (nearest-even, as nearbyint
// under FPCR's default mode); no FMA (no multiply feeds an add, see
// detail/row_kernels.hpp). Reached only through the dispatch in pare/kernels/quantize_row.hpp.

#include "pare/core/config.hpp"

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

#define PARE_ROW_TARGET
#include "pare/kernels/detail/row_kernels.hpp"

/// NEON operations for row_kernels (see the list in detail/row_kernels.hpp).
struct ops : padded_tails<ops> {
  using vf = float32x4_t;
  using vi = int32x4_t;
  static constexpr std::size_t W = 4, stream_bytes = 0, nibble_chunk = 16;

  PARE_ALWAYS_INLINE static vf set1(float a) noexcept { return vdupq_n_f32(a); }
  PARE_ALWAYS_INLINE static vf loadu(const float* p) noexcept { return vld1q_f32(p); }
  PARE_ALWAYS_INLINE static void storeu(float* p, vf v) noexcept { vst1q_f32(p, v); }
  PARE_ALWAYS_INLINE static void fence() noexcept {}
  PARE_ALWAYS_INLINE static vf mul(vf a, vf b) noexcept { return vmulq_f32(a, b); }
  PARE_ALWAYS_INLINE static vf add(vf a, vf b) noexcept { return vaddq_f32(a, b); }
  PARE_ALWAYS_INLINE static vf min(vf a, vf b) noexcept { return vminq_f32(a, b); }
  PARE_ALWAYS_INLINE static vf max(vf a, vf b) noexcept { return vmaxq_f32(a, b); }
  PARE_ALWAYS_INLINE static vf floor(vf a) noexcept { return vrndmq_f32(a); }
  PARE_ALWAYS_INLINE static vi to_int_nearest(vf a) noexcept { return vcvtnq_s32_f32(a); }
  PARE_ALWAYS_INLINE static vf to_float(vi a) noexcept { return vcvtq_f32_s32(a); }

  PARE_ALWAYS_INLINE static vi set1i(std::int32_t a) noexcept { return vdupq_n_s32(a); }
  PARE_ALWAYS_INLINE static vi loadi(const std::int32_t* p) noexcept { return vld1q_s32(p); }
  PARE_ALWAYS_INLINE static vi addi(vi a, vi b) noexcept { return vaddq_s32(a, b); }
  PARE_ALWAYS_INLINE static vi subi(vi a, vi b) noexcept { return vsubq_s32(a, b); }
  PARE_ALWAYS_INLINE static vi mulli(vi a, vi b) noexcept { return vmulq_s32(a, b); }
  PARE_ALWAYS_INLINE static vi xori(vi a, vi b) noexcept { return veorq_s32(a, b); }
  template <int K>
  PARE_ALWAYS_INLINE static vi srli(vi a) noexcept {
    return vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(a), K));
  }
  PARE_ALWAYS_INLINE static vi iota() noexcept {
    const std::int32_t lanes[4] = {0, 1, 2, 3};
    return vld1q_s32(lanes);
  }

  template <bool Signed>
  PARE_ALWAYS_INLINE static vi load_codes(const std::uint8_t* c) noexcept {
    std::uint32_t four;
    std::memcpy(&four, c, sizeof four);
    const uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(four));
    if (Signed) return vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u8(b))));
    return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(b))));
  }
  // Low bytes of 4 codes to dst[0, 4) (truncating narrows keep the low bits).
  PARE_ALWAYS_INLINE static void store_codes(std::uint8_t* dst, vi q) noexcept {
    const int16x4_t h = vmovn_s32(q);
    const std::uint32_t four = vget_lane_u32(vreinterpret_u32_s8(vmovn_s16(vcombine_s16(h, h))), 0);
    std::memcpy(dst, &four, sizeof four);
  }
  // Low bytes of 16 codes (four vectors in element order) to dst[0, 16).
  PARE_ALWAYS_INLINE static void store_codes4(std::uint8_t* dst, vi q0, vi q1, vi q2, vi q3) noexcept {
    const int16x8_t a = vcombine_s16(vmovn_s32(q0), vmovn_s32(q1));
    const int16x8_t b = vcombine_s16(vmovn_s32(q2), vmovn_s32(q3));
    vst1q_u8(dst, vreinterpretq_u8_s8(vcombine_s8(vmovn_s16(a), vmovn_s16(b))));
  }

  PARE_ALWAYS_INLINE static bool any_nonfinite(vf a, vf b) noexcept {
    const uint32x4_t expo = vdupq_n_u32(0x7F800000u);
    const uint32x4_t ea = vceqq_u32(vandq_u32(vreinterpretq_u32_f32(a), expo), expo);
    const uint32x4_t eb = vceqq_u32(vandq_u32(vreinterpretq_u32_f32(b), expo), expo);
    return vmaxvq_u32(vorrq_u32(ea, eb)) != 0;
  }
  PARE_ALWAYS_INLINE static float hmin(vf v) noexcept { return vminvq_f32(v); }
  PARE_ALWAYS_INLINE static float hmax(vf v) noexcept { return vmaxvq_f32(v); }

  // 16 codes -> 8 bytes.
  PARE_ALWAYS_INLINE static void pack_chunk(const std::uint8_t* codes, std::uint8_t* packed) noexcept {
    const uint16x8_t w = vreinterpretq_u16_u8(vld1q_u8(codes));
    const uint16x8_t t =
        vorrq_u16(vandq_u16(w, vdupq_n_u16(0x000F)), vandq_u16(vshrq_n_u16(w, 4), vdupq_n_u16(0x00F0)));
    vst1_u8(packed, vmovn_u16(t));
  }
  // 8 bytes -> 16 codes.
  template <bool Signed>
  PARE_ALWAYS_INLINE static void unpack_chunk(const std::uint8_t* packed, std::uint8_t* codes) noexcept {
    const uint8x8_t v = vld1_u8(packed);
    const uint8x8_t lo = vand_u8(v, vdup_n_u8(0x0F)), hi = vshr_n_u8(v, 4);
    uint8x16_t c = vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi));
    if (Signed) c = vsubq_u8(veorq_u8(c, vdupq_n_u8(8)), vdupq_n_u8(8));  // (nib ^ 8) - 8, modulo 256
    vst1q_u8(codes, c);
  }
};

/// The dispatched NEON kernels: row::quantize_row, row::scan_row, ...
using row = row_kernels<ops>;

#undef PARE_ROW_TARGET
}  // namespace neon
}  // namespace kernels
PARE_NAMESPACE_END

#endif  // defined(__aarch64__)
