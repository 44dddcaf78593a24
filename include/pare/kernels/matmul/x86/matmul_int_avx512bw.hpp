// AVX-512BW integer matmul kernels: vpmaddubsw + vpmaddwd (|code| × sign-adjusted activations for int8, nibbles × activations for int4).
#pragma once

// int8 without VNNI: vpmaddubsw multiplies unsigned by signed bytes with int16 pair
// sums that saturate. |code| ≤ 128 (unsigned) times the activation negated where the
// code is negative (|q| ≤ 127, so the negation is exact) keeps every pair sum within
// 2·128·127 = 32512: exact for every code in [-128, 127].

#include "pare/core/config.hpp"

#if PARE_HAS_X86_KERNELS
// GCC 12 warns (-Wmaybe-uninitialized) on the self-initialised _mm512_undefined_*()
// inside its own AVX-512 intrinsics once they are inlined here (GCC PR 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
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
namespace avx512bw_mm {

struct w8 {
  __m512i abs;
  __mmask64 neg;
};
PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE w8 prep8(__m512i w) noexcept {
  return {_mm512_abs_epi8(w), _mm512_movepi8_mask(w)};
}
PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE __m512i dot8(__m512i acc, const w8& w, const std::uint8_t*,
                                                    const std::int8_t* x) noexcept {
  std::int32_t s;
  std::memcpy(&s, x, 4);
  const __m512i xq = _mm512_set1_epi32(s);
  const __m512i xs = _mm512_mask_sub_epi8(xq, w.neg, _mm512_setzero_si512(), xq);
  const __m512i pairs = _mm512_maddubs_epi16(w.abs, xs);
  return _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, _mm512_set1_epi16(1)));
}
PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE __m512i fix8(__m512i acc, __m512i) noexcept { return acc; }
PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE __m512i dot4(__m512i acc, __m512i w, const std::int8_t* p) noexcept {
  std::int32_t s;
  std::memcpy(&s, p, 4);
  const __m512i x = _mm512_set1_epi32(s);
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(w, x), _mm512_set1_epi16(1)));
}

#define PARE_MM_TARGET PARE_TARGET_AVX512BW
#include "pare/kernels/matmul/x86/matmul_int_512_body.hpp"
#undef PARE_MM_TARGET

PARE_TARGET_AVX512BW inline void matmul_int8_block(const packed_int8& w, const matmul_acts& a,
                                                   const matmul_block& b) noexcept {
  if (b.m1 - b.m0 == 1)
    block_impl<1, 4, ~std::size_t(0)>(w, a, b);
  else
    block_impl<4, 2, 1024>(w, a, b);
}
PARE_TARGET_AVX512BW inline void matmul_int4_block(const packed_int4& w, const matmul_acts& a,
                                                   const matmul_block& b) noexcept {
  if (b.m1 - b.m0 == 1)
    block_impl<1, 4, ~std::size_t(0)>(w, a, b);
  else
    block_impl<4, 2, 512>(w, a, b);
}

}  // namespace avx512bw_mm
}  // namespace kernels
PARE_NAMESPACE_END

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // PARE_HAS_X86_KERNELS
