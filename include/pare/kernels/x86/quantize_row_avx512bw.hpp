// AVX-512BW row kernels (16 floats per vector): the operation traits under pare/kernels/detail/row_kernels.hpp.
#pragma once

// The kernels' logic, tail and alignment contract are in detail/row_kernels.hpp; here
// are only AVX-512's operations. Partial vectors use masked loads and stores (the
// masked-off lanes are never touched, so no fault past the arrays); code bytes are
// narrowed with vpmovdb; non-temporal stores (vmovntps) from y's first 64-byte boundary,
// then sfence. Rounding by vcvtps2dq under the caller's MXCSR (nearbyint). Reached only
// through the dispatch in pare/kernels/quantize_row.hpp.

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
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pare/kernels/ref/quantize_row_ref.hpp"
#include "pare/kernels/row_segments.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {
namespace avx512bw {

#define PARE_ROW_TARGET PARE_TARGET_AVX512BW
#include "pare/kernels/detail/row_kernels.hpp"

/// AVX-512BW operations for row_kernels (see the list in detail/row_kernels.hpp).
struct ops {
  using vf = __m512;
  using vi = __m512i;
  static constexpr std::size_t W = 16, stream_bytes = 64, nibble_chunk = 64;

  // The first m < 16 lanes.
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static __mmask16 first(std::size_t m) noexcept {
    return static_cast<__mmask16>((1u << m) - 1u);
  }

  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf set1(float a) noexcept { return _mm512_set1_ps(a); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf loadu(const float* p) noexcept { return _mm512_loadu_ps(p); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf load_part(const float* p, std::size_t m, float fill = 0.0f) noexcept {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), first(m), p);
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void storeu(float* p, vf v) noexcept { _mm512_storeu_ps(p, v); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void store_part(float* p, std::size_t m, vf v) noexcept {
    _mm512_mask_storeu_ps(p, first(m), v);
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void stream(float* p, vf v) noexcept { _mm512_stream_ps(p, v); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void fence() noexcept { _mm_sfence(); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf mul(vf a, vf b) noexcept { return _mm512_mul_ps(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf add(vf a, vf b) noexcept { return _mm512_add_ps(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf min(vf a, vf b) noexcept { return _mm512_min_ps(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf max(vf a, vf b) noexcept { return _mm512_max_ps(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf floor(vf a) noexcept {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi to_int_nearest(vf a) noexcept { return _mm512_cvtps_epi32(a); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf to_float(vi a) noexcept { return _mm512_cvtepi32_ps(a); }

  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi set1i(std::int32_t a) noexcept { return _mm512_set1_epi32(a); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi loadi(const std::int32_t* p) noexcept { return _mm512_loadu_si512(p); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi loadi_part(const std::int32_t* p, std::size_t m) noexcept {
    return _mm512_maskz_loadu_epi32(first(m), p);
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi addi(vi a, vi b) noexcept { return _mm512_add_epi32(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi subi(vi a, vi b) noexcept { return _mm512_sub_epi32(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi mulli(vi a, vi b) noexcept { return _mm512_mullo_epi32(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi xori(vi a, vi b) noexcept { return _mm512_xor_si512(a, b); }
  template <int K>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi srli(vi a) noexcept {
    return _mm512_srli_epi32(a, K);
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi iota() noexcept {
    return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  }

  template <bool Signed>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi widen(__m128i c) noexcept {
    return Signed ? _mm512_cvtepi8_epi32(c) : _mm512_cvtepu8_epi32(c);
  }
  template <bool Signed>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi load_codes(const std::uint8_t* c) noexcept {
    return widen<Signed>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c)));
  }
  template <bool Signed>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi load_codes_part(const std::uint8_t* c, std::size_t m) noexcept {
    return widen<Signed>(_mm_maskz_loadu_epi8(first(m), c));
  }
  // Low bytes of 16 codes to dst[0, 16) (vpmovdb truncates).
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void store_codes(std::uint8_t* dst, vi q) noexcept {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtepi32_epi8(q));
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void store_codes4(std::uint8_t* dst, vi q0, vi q1, vi q2, vi q3) noexcept {
    store_codes(dst, q0);
    store_codes(dst + W, q1);
    store_codes(dst + 2 * W, q2);
    store_codes(dst + 3 * W, q3);
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void store_codes_part(std::uint8_t* dst, std::size_t m, vi q) noexcept {
    _mm512_mask_cvtepi32_storeu_epi8(dst, first(m), q);
  }

  PARE_ROW_TARGET PARE_ALWAYS_INLINE static bool any_nonfinite(vf a, vf b) noexcept {
    constexpr int nonfinite = 0x01 | 0x08 | 0x10 | 0x80;  // QNaN, +Inf, -Inf, SNaN
    return !_mm512_kortestz(_mm512_fpclass_ps_mask(a, nonfinite), _mm512_fpclass_ps_mask(b, nonfinite));
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static float hmin(vf v) noexcept { return _mm512_reduce_min_ps(v); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static float hmax(vf v) noexcept { return _mm512_reduce_max_ps(v); }

  // 64 codes -> 32 bytes: low nibble from the even byte, bits 4-7 from the odd byte's low nibble.
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void pack_chunk(const std::uint8_t* codes, std::uint8_t* packed) noexcept {
    const __m512i w = _mm512_loadu_si512(codes);
    const __m512i t = _mm512_ternarylogic_epi32(_mm512_set1_epi16(0x000F), w, _mm512_srli_epi16(w, 4), 0xCA);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(packed), _mm512_cvtepi16_epi8(t));
  }
  // 32 bytes -> 64 codes: word = low nibble | high nibble << 8.
  template <bool Signed>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void unpack_chunk(const std::uint8_t* packed,
                                                              std::uint8_t* codes) noexcept {
    const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(packed)));
    __m512i t = _mm512_ternarylogic_epi32(_mm512_set1_epi16(0x000F), w,
                                          _mm512_and_si512(_mm512_slli_epi16(w, 4), _mm512_set1_epi16(0x0F00)), 0xCA);
    if (Signed) t = _mm512_sub_epi8(_mm512_xor_si512(t, _mm512_set1_epi8(8)), _mm512_set1_epi8(8));
    _mm512_storeu_si512(codes, t);
  }
};

/// The dispatched AVX-512BW kernels: row::quantize_row, row::scan_row, ...
using row = row_kernels<ops>;

#undef PARE_ROW_TARGET
}  // namespace avx512bw
}  // namespace kernels
PARE_NAMESPACE_END

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // PARE_HAS_X86_KERNELS
