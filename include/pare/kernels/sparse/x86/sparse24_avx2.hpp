// AVX2 2:4 sparse GEMV/GEMM kernel: each 16-value window as two 8-lane halves, x gathered by vpermps from 8-column quarters.
#pragma once

// Half h (values 8h .. 8h + 7 of a window, groups 4h .. 4h + 3, columns 16h .. 16h + 15):
// lanes 0-3 read columns 16h .. 16h + 7, lanes 4-7 columns 16h + 8 .. 16h + 15, so two
// vpermps (offset 4·(group mod 2) + position) and a fixed blend gather x. The two halves
// are lanes 0-7 and 8-15 of the scalar definition's 16 accumulators
// (pare/kernels/sparse/ref/sparse24_ref.hpp); the partial last window uses masked loads
// and a blend that leaves untouched lanes bit-identical. Blocks are 2 output rows for a
// GEMV and 1 row × 2 activation rows otherwise; each block prefetches the next one
// (without it the cold 11008 × 4096 GEMV took 8.4 ms instead of 4.6 ms on Zen 4).

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pare/kernels/sparse/ref/sparse24_ref.hpp"

#if PARE_HAS_X86_KERNELS
// GCC 12 warns (-Wmaybe-uninitialized, -Wuninitialized) on the self-initialised
// _mm*_undefined_*() inside its own intrinsics once they are inlined here (GCC PR 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

PARE_NAMESPACE_BEGIN
namespace kernels {
namespace avx2_sp24 {

/// tree16 of the scalar definition on lanes 0-7 (lo) and 8-15 (hi).
PARE_TARGET_AVX2 inline float tree16(__m256 lo, __m256 hi) noexcept {
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

/// Lane mask (all ones in lanes < n, n <= 8) for maskload / blendv.
PARE_TARGET_AVX2 inline __m256i first_lanes(int n) noexcept {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// Prefetches the cache line `bytes` after p into L1 (formed as an integer: may lie past the matrix).
PARE_TARGET_AVX2 inline void prefetch(const void* p, std::size_t bytes) noexcept {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(p) + bytes), _MM_HINT_T0);
}

template <int R, int C, bool Tail>
PARE_TARGET_AVX2 inline void window(const float* const* vr, const std::uint8_t* const* ir, const float* const* xc,
                                    std::size_t w, std::size_t tail, std::size_t pf_values, std::size_t pf_idx,
                                    __m256 (*acc)[C][2]) noexcept {
  const __m256i sh_lo = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i sh_hi = _mm256_setr_epi32(16, 18, 20, 22, 24, 26, 28, 30);
  const __m256i base = _mm256_setr_epi32(0, 0, 4, 4, 0, 0, 4, 4);
  const __m256i three = _mm256_set1_epi32(3);
  __m256 xq[C][4];
  __m256 lane_lo = _mm256_setzero_ps(), lane_hi = _mm256_setzero_ps();
  if (Tail) {
    const int xcols = int(2 * tail);  // columns left in the window (< 32)
    PARE_SP24_UNROLL
    for (int c = 0; c < C; ++c)
      PARE_SP24_UNROLL
      for (int q = 0; q < 4; ++q) {
        const int n = xcols - 8 * q;
        xq[c][q] = n >= 8 ? _mm256_loadu_ps(xc[c] + 32 * w + 8 * q)
                   : n > 0 ? _mm256_maskload_ps(xc[c] + 32 * w + 8 * q, first_lanes(n))
                           : _mm256_setzero_ps();
      }
    lane_lo = _mm256_castsi256_ps(first_lanes(int(tail)));
    lane_hi = _mm256_castsi256_ps(first_lanes(int(tail) - 8));
  } else {
    PARE_SP24_UNROLL
    for (int c = 0; c < C; ++c)
      PARE_SP24_UNROLL
      for (int q = 0; q < 4; ++q) xq[c][q] = _mm256_loadu_ps(xc[c] + 32 * w + 8 * q);
  }
  PARE_SP24_UNROLL
  for (int i = 0; i < R; ++i) {
    if (!Tail) {
      prefetch(vr[i] + 16 * w, pf_values);
      if (w % 16 == 0) prefetch(ir[i] + 4 * w, pf_idx);
    }
    std::uint32_t word;
    std::memcpy(&word, ir[i] + 4 * w, 4);
    const __m256i wv = _mm256_set1_epi32(int(word));
    const __m256i off_lo = _mm256_or_si256(_mm256_and_si256(_mm256_srlv_epi32(wv, sh_lo), three), base);
    const __m256i off_hi = _mm256_or_si256(_mm256_and_si256(_mm256_srlv_epi32(wv, sh_hi), three), base);
    const __m256 v_lo = _mm256_load_ps(vr[i] + 16 * w), v_hi = _mm256_load_ps(vr[i] + 16 * w + 8);
    PARE_SP24_UNROLL
    for (int c = 0; c < C; ++c) {
      const __m256 g_lo = _mm256_blend_ps(_mm256_permutevar8x32_ps(xq[c][0], off_lo),
                                          _mm256_permutevar8x32_ps(xq[c][1], off_lo), 0xF0);
      const __m256 g_hi = _mm256_blend_ps(_mm256_permutevar8x32_ps(xq[c][2], off_hi),
                                          _mm256_permutevar8x32_ps(xq[c][3], off_hi), 0xF0);
      const __m256 f_lo = _mm256_fmadd_ps(v_lo, g_lo, acc[i][c][0]);
      const __m256 f_hi = _mm256_fmadd_ps(v_hi, g_hi, acc[i][c][1]);
      if (Tail) {
        acc[i][c][0] = _mm256_blendv_ps(acc[i][c][0], f_lo, lane_lo);
        acc[i][c][1] = _mm256_blendv_ps(acc[i][c][1], f_hi, lane_hi);
      } else {
        acc[i][c][0] = f_lo;
        acc[i][c][1] = f_hi;
      }
    }
  }
}

template <int R, int C>
PARE_TARGET_AVX2 inline void micro(const sparse24_block_args& a, std::size_t r, std::size_t m) noexcept {
  const std::size_t nv = a.k / 2, full = nv / 16, tail = nv % 16;
  const float* vr[R];
  const std::uint8_t* ir[R];
  const float* xc[C];
  PARE_SP24_UNROLL
  for (int i = 0; i < R; ++i) {
    vr[i] = a.values + (r + std::size_t(i)) * a.vstride;
    ir[i] = a.idx + (r + std::size_t(i)) * a.istride;
  }
  PARE_SP24_UNROLL
  for (int c = 0; c < C; ++c) xc[c] = a.x + (m + std::size_t(c)) * a.ldx;
  __m256 acc[R][C][2];
  PARE_SP24_UNROLL
  for (int i = 0; i < R; ++i)
    PARE_SP24_UNROLL
    for (int c = 0; c < C; ++c) acc[i][c][0] = acc[i][c][1] = _mm256_setzero_ps();
  // Prefetch the next block of R rows, same window (as the AVX-512 kernel does).
  const std::size_t pf_values = std::size_t(R) * a.vstride * sizeof(float), pf_idx = std::size_t(R) * a.istride;
  for (std::size_t w = 0; w < full; ++w) window<R, C, false>(vr, ir, xc, w, 0, pf_values, pf_idx, acc);
  if (tail) window<R, C, true>(vr, ir, xc, full, tail, 0, 0, acc);
  PARE_SP24_UNROLL
  for (int i = 0; i < R; ++i)
    PARE_SP24_UNROLL
    for (int c = 0; c < C; ++c)
      a.y[(m + std::size_t(c)) * a.ldy + r + std::size_t(i)] = tree16(acc[i][c][0], acc[i][c][1]);
}

template <int C>
PARE_TARGET_AVX2 inline void rows(const sparse24_block_args& a, std::size_t m) noexcept {
  constexpr int R = C == 1 ? 2 : 1;
  std::size_t r = a.r0;
  for (; r + R <= a.r1; r += R) micro<R, C>(a, r, m);
  for (; r < a.r1; ++r) micro<1, C>(a, r, m);
}

PARE_TARGET_AVX2 inline void sparse24_block(const sparse24_block_args& a) noexcept {
  for (std::size_t m = 0; m < a.m;) {
    if (a.m - m >= 2) {
      rows<2>(a, m);
      m += 2;
    } else {
      rows<1>(a, m);
      m += 1;
    }
  }
}

}  // namespace avx2_sp24
}  // namespace kernels
PARE_NAMESPACE_END

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // PARE_HAS_X86_KERNELS
