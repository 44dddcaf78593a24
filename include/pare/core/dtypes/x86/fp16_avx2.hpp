// AVX2+F16C row converters between binary16 and float (vcvtph2ps / vcvtps2ph); bit-identical to the scalar ones.
#pragma once

// Contract: any n (0 included), no alignment, src and dst must not overlap. Full
// groups of 8 go straight through the instructions; the tail of n % 8 elements is
// converted through a zero-padded 8-element buffer, so nothing is read or written
// outside [0, n). Callers reach these only through the dispatch in
// pare/core/dtypes/fp16.hpp (they need F16C, which pare's avx2 level includes).

#include "pare/core/config.hpp"

#if PARE_HAS_X86_KERNELS
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

PARE_NAMESPACE_BEGIN
namespace kernels {
namespace avx2 {

/// dst[i] = fp16_to_float(src[i]) for i < n.
PARE_TARGET_AVX2 inline void fp16_to_float_row(const std::uint16_t* src, float* dst, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 8));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(a));
    _mm256_storeu_ps(dst + i + 8, _mm256_cvtph_ps(b));
  }
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  if (i < n) {
    std::uint16_t in[8] = {};
    float out[8];
    std::memcpy(in, src + i, (n - i) * sizeof(std::uint16_t));
    _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in))));
    std::memcpy(dst + i, out, (n - i) * sizeof(float));
  }
}

/// dst[i] = float_to_fp16(src[i]) for i < n (round to nearest even from imm8, not MXCSR).
PARE_TARGET_AVX2 inline void float_to_fp16_row(const float* src, std::uint16_t* dst, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i a = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    const __m128i b = _mm256_cvtps_ph(_mm256_loadu_ps(src + i + 8), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), a);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 8), b);
  }
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  if (i < n) {
    float in[8] = {};
    std::uint16_t out[8];
    std::memcpy(in, src + i, (n - i) * sizeof(float));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_cvtps_ph(_mm256_loadu_ps(in), _MM_FROUND_TO_NEAREST_INT));
    std::memcpy(dst + i, out, (n - i) * sizeof(std::uint16_t));
  }
}

}  // namespace avx2
}  // namespace kernels
PARE_NAMESPACE_END

#endif  // PARE_HAS_X86_KERNELS
