// AVX2 integer matmul kernels: vpmaddubsw + vpmaddwd on half tiles (8 rows per ymm), |code| × sign-adjusted activations for int8.
#pragma once

// Same arithmetic as the AVX-512BW variant (see its note on exactness), with each
// 16-row tile handled as two ymm halves. Micro-tiles are MR (≤ 4) rows × 1 tile.

#include "pare/core/config.hpp"

#if PARE_HAS_X86_KERNELS

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "pare/kernels/matmul/matmul_args.hpp"
#include "pare/kernels/matmul/packed_weights.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {
namespace avx2_mm {

PARE_TARGET_AVX2 PARE_ALWAYS_INLINE __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) noexcept {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}

/// acc[r][h] (h: rows 0-7 / 8-15 of the tile) += group sums; then the fp32 epilogue into part.
template <int MR, bool Int8, class Packed>
PARE_TARGET_AVX2 inline void micro(const Packed& w, const matmul_acts& a, std::size_t m0, std::size_t t,
                                   float* part) noexcept {
  const std::size_t step = Int8 ? 4 : 8;  // k per 64-byte block
  const std::size_t blocks = w.kp / step, gb = w.padded_group() / step;
  const __m256i low = _mm256_set1_epi8(0x0F);
  for (std::size_t g = 0; g < w.groups; ++g) {
    __m256i acc[MR][2];
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    const std::uint8_t* gbase;  // block g·gb of tile t
    if constexpr (Int8)
      gbase = reinterpret_cast<const std::uint8_t*>(w.codes.data()) + (t * blocks + g * gb) * 64;
    else
      gbase = w.block(t, g, 0);
    for (std::size_t o = g * gb; o < (g + 1) * gb; ++o) {
      const std::uint8_t* blk = gbase + (o - g * gb) * 64;
      const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk));
      const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + 32));
      if constexpr (Int8) {
        const __m256i a0 = _mm256_abs_epi8(b0), a1 = _mm256_abs_epi8(b1);
        for (int r = 0; r < MR; ++r) {
          std::int32_t s;
          std::memcpy(&s, a.q + (m0 + r) * a.ld + 4 * o, 4);
          const __m256i x = _mm256_set1_epi32(s);
          acc[r][0] = dot_u8s8(acc[r][0], a0, _mm256_sign_epi8(x, b0));
          acc[r][1] = dot_u8s8(acc[r][1], a1, _mm256_sign_epi8(x, b1));
        }
      } else {
        const __m256i l0 = _mm256_and_si256(b0, low), l1 = _mm256_and_si256(b1, low);
        const __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(b0, 4), low);
        const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(b1, 4), low);
        for (int r = 0; r < MR; ++r) {
          std::int32_t s0, s1;
          std::memcpy(&s0, a.q + (m0 + r) * a.ld + 8 * o, 4);
          std::memcpy(&s1, a.q + (m0 + r) * a.ld + 8 * o + 4, 4);
          const __m256i x0 = _mm256_set1_epi32(s0), x1 = _mm256_set1_epi32(s1);
          acc[r][0] = dot_u8s8(dot_u8s8(acc[r][0], l0, x0), h0, x1);
          acc[r][1] = dot_u8s8(dot_u8s8(acc[r][1], l1, x0), h1, x1);
        }
      }
    }
    for (int h = 0; h < 2; ++h) {
      const __m256 sc = _mm256_load_ps(w.scales16(t, g) + 8 * h);
      const __m256 of = w.has_offsets() ? _mm256_load_ps(w.offsets16(t, g) + 8 * h) : _mm256_setzero_ps();
      for (int r = 0; r < MR; ++r) {
        float* p = part + r * 16 + 8 * h;
        __m256 v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r][h]), sc, _mm256_load_ps(p));
        if (w.has_offsets()) v = _mm256_fmadd_ps(of, _mm256_set1_ps(float(a.xsum[(m0 + r) * w.groups + g])), v);
        _mm256_store_ps(p, v);
      }
    }
  }
}

template <int MR, class Packed>
PARE_TARGET_AVX2 inline void block_impl(const Packed& w, const matmul_acts& a, const matmul_block& b) noexcept {
  constexpr bool int8 = std::is_same_v<Packed, packed_int8>;
  alignas(32) float part[MR * 16];
  for (std::size_t t = b.t0; t < b.t1; ++t) {
    const std::size_t c0 = t * matmul_tile_rows, valid = std::min<std::size_t>(16, w.n - c0);
    for (std::size_t m = b.m0; m < b.m1; m += MR) {
      const std::size_t mr = std::min<std::size_t>(MR, b.m1 - m);
      std::fill(part, part + MR * 16, 0.0f);
      switch (mr) {
        case MR: micro<MR, int8>(w, a, m, t, part); break;
        case 1: micro<1, int8>(w, a, m, t, part); break;
        case 2: micro<2, int8>(w, a, m, t, part); break;
        default: micro<3, int8>(w, a, m, t, part); break;
      }
      for (std::size_t r = 0; r < mr; ++r)
        for (std::size_t c = 0; c < valid; ++c) b.y[(m + r) * b.ldy + c0 + c] = a.sx[m + r] * part[r * 16 + c];
    }
  }
}

PARE_TARGET_AVX2 inline void matmul_int8_block(const packed_int8& w, const matmul_acts& a, const matmul_block& b) noexcept {
  block_impl<4>(w, a, b);
}
PARE_TARGET_AVX2 inline void matmul_int4_block(const packed_int4& w, const matmul_acts& a, const matmul_block& b) noexcept {
  block_impl<4>(w, a, b);
}

}  // namespace avx2_mm
}  // namespace kernels
PARE_NAMESPACE_END

#endif  // PARE_HAS_X86_KERNELS
