// AVX2 row converters between bfloat16 and float (integer rounding in lanes); bit-identical to the scalar ones.
#pragma once

// Contract: any n (0 included), no alignment, src and dst must not overlap. The tail
// of n % 16 elements goes through a zero-padded 16-element buffer, so nothing is read
// or written outside [0, n). Reached only through the dispatch in
// pare/core/dtypes/bf16.hpp.

#include "pare/core/config.hpp"

#if PARE_HAS_X86_KERNELS
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

PARE_NAMESPACE_BEGIN
namespace kernels {
namespace avx2 {
namespace detail_bf16 {
/// Eight float bit patterns → eight bf16 patterns in the low 16 bits of each 32-bit lane.
PARE_TARGET_AVX2 inline __m256i round_to_bf16(__m256i x) noexcept {
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7FFF)), lsb), 16);
  const __m256i abs = _mm256_and_si256(x, _mm256_set1_epi32(0x7FFFFFFF));
  const __m256i is_nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7F800000));
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x0040));
  return _mm256_blendv_epi8(rounded, quiet, is_nan);
}

/// Sixteen floats at src → sixteen bf16 patterns at dst.
PARE_TARGET_AVX2 inline void convert16(const float* src, std::uint16_t* dst) noexcept {
  const __m256i a = round_to_bf16(_mm256_castps_si256(_mm256_loadu_ps(src)));
  const __m256i b = round_to_bf16(_mm256_castps_si256(_mm256_loadu_ps(src + 8)));
  // packus works per 128-bit lane: [a0-3 b0-3 | a4-7 b4-7]; reorder the 64-bit quarters.
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), packed);
}
}  // namespace detail_bf16

/// dst[i] = bf16_to_float(src[i]) for i < n.
PARE_TARGET_AVX2 inline void bf16_to_float_row(const std::uint16_t* src, float* dst, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_slli_epi32(w, 16));
  }
  for (; i < n; ++i) {  // at most 7: the shift is exact, no rounding to share
    const std::uint32_t u = std::uint32_t(src[i]) << 16;
    std::memcpy(dst + i, &u, sizeof u);
  }
}

/// dst[i] = float_to_bf16(src[i]) for i < n.
PARE_TARGET_AVX2 inline void float_to_bf16_row(const float* src, std::uint16_t* dst, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) detail_bf16::convert16(src + i, dst + i);
  if (i < n) {
    float in[16] = {};
    std::uint16_t out[16];
    std::memcpy(in, src + i, (n - i) * sizeof(float));
    detail_bf16::convert16(in, out);
    std::memcpy(dst + i, out, (n - i) * sizeof(std::uint16_t));
  }
}

}  // namespace avx2
}  // namespace kernels
PARE_NAMESPACE_END

#endif  // PARE_HAS_X86_KERNELS
