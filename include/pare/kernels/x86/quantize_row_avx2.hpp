// AVX2 row kernels (8 floats per vector): the operation traits under pare/kernels/detail/row_kernels.hpp.
#pragma once

// The kernels' logic, tail and alignment contract are in detail/row_kernels.hpp; here
// are only AVX2's operations. Partial vectors go through a zero-padded stack vector
// (padded_tails); non-temporal stores (vmovntps) from y's first 32-byte boundary, then
// sfence. Rounding by vcvtps2dq under the caller's MXCSR (nearbyint). The target
// includes FMA, but no multiply feeds an add that could be contracted (see
// detail/row_kernels.hpp). Reached only through the dispatch in pare/kernels/quantize_row.hpp.

#include "pare/core/config.hpp"

#if PARE_HAS_X86_KERNELS
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pare/kernels/ref/quantize_row_ref.hpp"
#include "pare/kernels/row_segments.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {
namespace avx2 {

#define PARE_ROW_TARGET PARE_TARGET_AVX2
#include "pare/kernels/detail/row_kernels.hpp"

/// AVX2 operations for row_kernels (see the list in detail/row_kernels.hpp).
struct ops : padded_tails<ops> {
  using vf = __m256;
  using vi = __m256i;
  static constexpr std::size_t W = 8, stream_bytes = 32, nibble_chunk = 32;

  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf set1(float a) noexcept { return _mm256_set1_ps(a); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf loadu(const float* p) noexcept { return _mm256_loadu_ps(p); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void storeu(float* p, vf v) noexcept { _mm256_storeu_ps(p, v); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void stream(float* p, vf v) noexcept { _mm256_stream_ps(p, v); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void fence() noexcept { _mm_sfence(); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf mul(vf a, vf b) noexcept { return _mm256_mul_ps(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf add(vf a, vf b) noexcept { return _mm256_add_ps(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf min(vf a, vf b) noexcept { return _mm256_min_ps(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf max(vf a, vf b) noexcept { return _mm256_max_ps(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf floor(vf a) noexcept { return _mm256_floor_ps(a); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi to_int_nearest(vf a) noexcept { return _mm256_cvtps_epi32(a); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf to_float(vi a) noexcept { return _mm256_cvtepi32_ps(a); }

  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi set1i(std::int32_t a) noexcept { return _mm256_set1_epi32(a); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi loadi(const std::int32_t* p) noexcept {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi addi(vi a, vi b) noexcept { return _mm256_add_epi32(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi subi(vi a, vi b) noexcept { return _mm256_sub_epi32(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi mulli(vi a, vi b) noexcept { return _mm256_mullo_epi32(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi xori(vi a, vi b) noexcept { return _mm256_xor_si256(a, b); }
  template <int K>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi srli(vi a) noexcept {
    return _mm256_srli_epi32(a, K);
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi iota() noexcept { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }

  template <bool Signed>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi load_codes(const std::uint8_t* c) noexcept {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(c));
    return Signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
  }
  // Low bytes of 8 codes in [-128, 255] to dst[0, 8).
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void store_codes(std::uint8_t* dst, vi q) noexcept {
    __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));  // exact in int16
    w = _mm_and_si128(w, _mm_set1_epi16(0xFF));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm_packus_epi16(w, w));
  }
  // Low bytes of 32 codes (four vectors in element order) to dst[0, 32).
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void store_codes4(std::uint8_t* dst, vi q0, vi q1, vi q2, vi q3) noexcept {
    const __m256i m = _mm256_set1_epi16(0xFF);
    const __m256i a = _mm256_and_si256(_mm256_packs_epi32(q0, q1), m);
    const __m256i b = _mm256_and_si256(_mm256_packs_epi32(q2, q3), m);
    const __m256i c = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), c);
  }

  PARE_ROW_TARGET PARE_ALWAYS_INLINE static bool any_nonfinite(vf a, vf b) noexcept {
    const __m256i expo = _mm256_set1_epi32(0x7F800000);
    const __m256i ea = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(a), expo), expo);
    const __m256i eb = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(b), expo), expo);
    const __m256i bad = _mm256_or_si256(ea, eb);
    return !_mm256_testz_si256(bad, bad);
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static float hmin(vf v) noexcept {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_min_ss(m, _mm_shuffle_ps(m, m, 1)));
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static float hmax(vf v) noexcept {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
  }

  // 32 codes -> 16 bytes.
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void pack_chunk(const std::uint8_t* codes, std::uint8_t* packed) noexcept {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes));
    const __m256i t = _mm256_or_si256(_mm256_and_si256(w, _mm256_set1_epi16(0x000F)),
                                      _mm256_and_si256(_mm256_srli_epi16(w, 4), _mm256_set1_epi16(0x00F0)));
    const __m128i out = _mm_packus_epi16(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(packed), out);
  }
  // 16 bytes -> 32 codes.
  template <bool Signed>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void unpack_chunk(const std::uint8_t* packed,
                                                              std::uint8_t* codes) noexcept {
    const __m128i low = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));
    const __m128i lo = _mm_and_si128(v, low), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low);
    __m128i c0 = _mm_unpacklo_epi8(lo, hi), c1 = _mm_unpackhi_epi8(lo, hi);
    if (Signed) {
      c0 = _mm_sub_epi8(_mm_xor_si128(c0, eight), eight);
      c1 = _mm_sub_epi8(_mm_xor_si128(c1, eight), eight);
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes), c0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + 16), c1);
  }
};

/// The dispatched AVX2 kernels: row::quantize_row, row::scan_row, ...
using row = row_kernels<ops>;

#undef PARE_ROW_TARGET
}  // namespace avx2
}  // namespace kernels
PARE_NAMESPACE_END

#endif  // PARE_HAS_X86_KERNELS
