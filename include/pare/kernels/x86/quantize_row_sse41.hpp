// SSE4.1 row kernels (4 floats per vector): the operation traits under pare/kernels/detail/row_kernels.hpp.
#pragma once

// The kernels' logic, tail and alignment contract are in detail/row_kernels.hpp; here
// are only SSE4.1's operations. Partial vectors go through a zero-padded stack vector
// (padded_tails); non-temporal stores (movntps) from y's first 16-byte boundary, then
// sfence. Rounding by cvtps2dq under the caller's MXCSR (nearbyint). Reached only
// through the dispatch in pare/kernels/quantize_row.hpp.

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
namespace sse41 {

#define PARE_ROW_TARGET PARE_TARGET_SSE41
#include "pare/kernels/detail/row_kernels.hpp"

/// SSE4.1 operations for row_kernels (see the list in detail/row_kernels.hpp).
struct ops : padded_tails<ops> {
  using vf = __m128;
  using vi = __m128i;
  static constexpr std::size_t W = 4, stream_bytes = 16, nibble_chunk = 16;

  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf set1(float a) noexcept { return _mm_set1_ps(a); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf loadu(const float* p) noexcept { return _mm_loadu_ps(p); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void storeu(float* p, vf v) noexcept { _mm_storeu_ps(p, v); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void stream(float* p, vf v) noexcept { _mm_stream_ps(p, v); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void fence() noexcept { _mm_sfence(); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf mul(vf a, vf b) noexcept { return _mm_mul_ps(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf add(vf a, vf b) noexcept { return _mm_add_ps(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf min(vf a, vf b) noexcept { return _mm_min_ps(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf max(vf a, vf b) noexcept { return _mm_max_ps(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf floor(vf a) noexcept { return _mm_floor_ps(a); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi to_int_nearest(vf a) noexcept { return _mm_cvtps_epi32(a); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf to_float(vi a) noexcept { return _mm_cvtepi32_ps(a); }

  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi set1i(std::int32_t a) noexcept { return _mm_set1_epi32(a); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi loadi(const std::int32_t* p) noexcept {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi addi(vi a, vi b) noexcept { return _mm_add_epi32(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi subi(vi a, vi b) noexcept { return _mm_sub_epi32(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi mulli(vi a, vi b) noexcept { return _mm_mullo_epi32(a, b); }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi xori(vi a, vi b) noexcept { return _mm_xor_si128(a, b); }
  template <int K>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi srli(vi a) noexcept {
    return _mm_srli_epi32(a, K);
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi iota() noexcept { return _mm_setr_epi32(0, 1, 2, 3); }

  template <bool Signed>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi load_codes(const std::uint8_t* c) noexcept {
    std::int32_t four;
    std::memcpy(&four, c, sizeof four);
    const __m128i b = _mm_cvtsi32_si128(four);
    return Signed ? _mm_cvtepi8_epi32(b) : _mm_cvtepu8_epi32(b);
  }
  // Low bytes of 4 codes in [-128, 255] to dst[0, 4).
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void store_codes(std::uint8_t* dst, vi q) noexcept {
    __m128i w = _mm_packs_epi32(q, q);  // exact in int16
    w = _mm_and_si128(w, _mm_set1_epi16(0xFF));
    const std::int32_t four = _mm_cvtsi128_si32(_mm_packus_epi16(w, w));
    std::memcpy(dst, &four, sizeof four);
  }
  // Low bytes of 16 codes (four vectors in element order) to dst[0, 16).
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void store_codes4(std::uint8_t* dst, vi q0, vi q1, vi q2, vi q3) noexcept {
    const __m128i m = _mm_set1_epi16(0xFF);
    const __m128i a = _mm_and_si128(_mm_packs_epi32(q0, q1), m);
    const __m128i b = _mm_and_si128(_mm_packs_epi32(q2, q3), m);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_packus_epi16(a, b));
  }

  PARE_ROW_TARGET PARE_ALWAYS_INLINE static bool any_nonfinite(vf a, vf b) noexcept {
    const __m128i expo = _mm_set1_epi32(0x7F800000);
    const __m128i ea = _mm_cmpeq_epi32(_mm_and_si128(_mm_castps_si128(a), expo), expo);
    const __m128i eb = _mm_cmpeq_epi32(_mm_and_si128(_mm_castps_si128(b), expo), expo);
    const __m128i bad = _mm_or_si128(ea, eb);
    return !_mm_testz_si128(bad, bad);
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static float hmin(vf m) noexcept {
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_min_ss(m, _mm_shuffle_ps(m, m, 1)));
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static float hmax(vf m) noexcept {
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
  }

  // 16 codes -> 8 bytes.
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void pack_chunk(const std::uint8_t* codes, std::uint8_t* packed) noexcept {
    const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes));
    const __m128i t = _mm_or_si128(_mm_and_si128(w, _mm_set1_epi16(0x000F)),
                                   _mm_and_si128(_mm_srli_epi16(w, 4), _mm_set1_epi16(0x00F0)));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(packed), _mm_packus_epi16(t, t));
  }
  // 8 bytes -> 16 codes.
  template <bool Signed>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void unpack_chunk(const std::uint8_t* packed,
                                                              std::uint8_t* codes) noexcept {
    const __m128i low = _mm_set1_epi8(0x0F), v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(packed));
    __m128i c = _mm_unpacklo_epi8(_mm_and_si128(v, low), _mm_and_si128(_mm_srli_epi16(v, 4), low));
    if (Signed) c = _mm_sub_epi8(_mm_xor_si128(c, _mm_set1_epi8(8)), _mm_set1_epi8(8));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes), c);
  }
};

/// The dispatched SSE4.1 kernels: row::quantize_row, row::scan_row, ...
using row = row_kernels<ops>;

#undef PARE_ROW_TARGET
}  // namespace sse41
}  // namespace kernels
PARE_NAMESPACE_END

#endif  // PARE_HAS_X86_KERNELS
