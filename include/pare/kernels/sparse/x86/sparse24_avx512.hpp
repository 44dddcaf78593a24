// AVX-512 2:4 sparse GEMV/GEMM kernel: 2-bit positions decoded to 5-bit lane offsets, x gathered by vpermt2ps from a 32-column window.
#pragma once

// Per window of 16 values (8 groups, 32 input columns) and output row: broadcast the
// 32-bit position word, shift lane i right by 2i, keep 2 bits and OR the group base 4·(i/2)
// (one vpternlogd), then vpermt2ps picks x[column] from the two 16-float registers of the
// window and one FMA accumulates into lane i. The lanes are the 16 accumulators of the
// scalar definition (pare/kernels/sparse/ref/sparse24_ref.hpp); the last, partial window
// uses masked loads and a masked FMA, so untouched lanes stay bit-identical. Blocks of
// R output rows × C activation rows share the x loads (R = 4, C = 1 for a GEMV;
// R = 2 with C = 2..4 activation rows), and each block prefetches the next one.

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
namespace avx512_sp24 {

/// tree16 of the scalar definition on one register.
PARE_TARGET_AVX512BW inline float tree16(__m512 a) noexcept {
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

/// Prefetches the cache line `bytes` after p into L1.
PARE_TARGET_AVX512BW inline void prefetch(const void* p, std::size_t bytes) noexcept {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(p) + bytes), _MM_HINT_T0);
}

template <int R, int C>
PARE_TARGET_AVX512BW inline void micro(const sparse24_block_args& a, std::size_t r, std::size_t m) noexcept {
  const std::size_t nv = a.k / 2, full = nv / 16, tail = nv % 16;
  const __m512i shifts = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i base = _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28);
  const __m512i three = _mm512_set1_epi32(3);
  const float* vr[R];
  const std::uint8_t* ir[R];
  const float* xc[C];
  // Software prefetch of the next block of R rows, same window: with the hardware
  // prefetchers alone the loads and the decode/permute work largely serialise (10-20 %
  // slower on a cold 11008 x 4096 GEMV on Zen 4; R = 4 beat R = 2, 6, 8 and 16 there).
  // The addresses may lie past the matrix: a prefetch never faults, and they are formed
  // as integers.
  const std::size_t pf_values = std::size_t(R) * a.vstride * sizeof(float), pf_idx = std::size_t(R) * a.istride;
  PARE_SP24_UNROLL
  for (int i = 0; i < R; ++i) {
    vr[i] = a.values + (r + std::size_t(i)) * a.vstride;
    ir[i] = a.idx + (r + std::size_t(i)) * a.istride;
  }
  PARE_SP24_UNROLL
  for (int c = 0; c < C; ++c) xc[c] = a.x + (m + std::size_t(c)) * a.ldx;
  __m512 acc[R][C];
  PARE_SP24_UNROLL
  for (int i = 0; i < R; ++i)
    PARE_SP24_UNROLL
    for (int c = 0; c < C; ++c) acc[i][c] = _mm512_setzero_ps();
  for (std::size_t w = 0; w < full; ++w) {
    __m512 xlo[C], xhi[C];
    PARE_SP24_UNROLL
    for (int c = 0; c < C; ++c) {
      xlo[c] = _mm512_loadu_ps(xc[c] + 32 * w);
      xhi[c] = _mm512_loadu_ps(xc[c] + 32 * w + 16);
    }
    PARE_SP24_UNROLL
    for (int i = 0; i < R; ++i) {
      prefetch(vr[i] + 16 * w, pf_values);
      if (w % 16 == 0) prefetch(ir[i] + 4 * w, pf_idx);
      std::uint32_t word;
      std::memcpy(&word, ir[i] + 4 * w, 4);
      const __m512i off =
          _mm512_ternarylogic_epi32(_mm512_srlv_epi32(_mm512_set1_epi32(int(word)), shifts), three, base, 0xEA);
      const __m512 v = _mm512_load_ps(vr[i] + 16 * w);
      PARE_SP24_UNROLL
      for (int c = 0; c < C; ++c) acc[i][c] = _mm512_fmadd_ps(v, _mm512_permutex2var_ps(xlo[c], off, xhi[c]), acc[i][c]);
    }
  }
  if (tail) {
    const std::size_t w = full, xcols = 2 * tail;  // 4 columns per 2 values; xcols <= 30
    const __mmask16 lanes = __mmask16((1u << tail) - 1);
    const __mmask16 mlo = __mmask16(xcols >= 16 ? 0xFFFFu : (1u << xcols) - 1);
    const __mmask16 mhi = __mmask16(xcols > 16 ? (1u << (xcols - 16)) - 1 : 0u);
    __m512 xlo[C], xhi[C];
    PARE_SP24_UNROLL
    for (int c = 0; c < C; ++c) {
      xlo[c] = _mm512_maskz_loadu_ps(mlo, xc[c] + 32 * w);
      xhi[c] = _mm512_maskz_loadu_ps(mhi, xc[c] + 32 * w + 16);
    }
    PARE_SP24_UNROLL
    for (int i = 0; i < R; ++i) {
      std::uint32_t word;
      std::memcpy(&word, ir[i] + 4 * w, 4);
      const __m512i off =
          _mm512_ternarylogic_epi32(_mm512_srlv_epi32(_mm512_set1_epi32(int(word)), shifts), three, base, 0xEA);
      const __m512 v = _mm512_load_ps(vr[i] + 16 * w);
      PARE_SP24_UNROLL
      for (int c = 0; c < C; ++c)
        acc[i][c] = _mm512_mask3_fmadd_ps(v, _mm512_permutex2var_ps(xlo[c], off, xhi[c]), acc[i][c], lanes);
    }
  }
  PARE_SP24_UNROLL
  for (int i = 0; i < R; ++i)
    PARE_SP24_UNROLL
    for (int c = 0; c < C; ++c) a.y[(m + std::size_t(c)) * a.ldy + r + std::size_t(i)] = tree16(acc[i][c]);
}

template <int C>
PARE_TARGET_AVX512BW inline void rows(const sparse24_block_args& a, std::size_t m) noexcept {
  constexpr int R = C == 1 ? 4 : 2;
  std::size_t r = a.r0;
  for (; r + R <= a.r1; r += R) micro<R, C>(a, r, m);
  for (; r < a.r1; ++r) micro<1, C>(a, r, m);
}

PARE_TARGET_AVX512BW inline void sparse24_block(const sparse24_block_args& a) noexcept {
  for (std::size_t m = 0; m < a.m;) {
    const std::size_t c = a.m - m >= 4 ? 4 : a.m - m;
    switch (c) {
      case 4: rows<4>(a, m); break;
      case 3: rows<3>(a, m); break;
      case 2: rows<2>(a, m); break;
      default: rows<1>(a, m); break;
    }
    m += c;
  }
}

}  // namespace avx512_sp24
}  // namespace kernels
PARE_NAMESPACE_END

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // PARE_HAS_X86_KERNELS
