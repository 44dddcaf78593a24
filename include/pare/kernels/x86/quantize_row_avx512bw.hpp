// AVX-512BW row kernels (16 floats per vector): quantize, stochastic, dequantize, fake-quant, scan, int4.
#pragma once

// Tail and alignment contract: x, codes, y and packed need no alignment; n may be any
// size including 0. Full vectors use unaligned loads and stores; the partial vector at
// the end of each group segment uses masked loads and stores, so no byte outside the
// arrays is touched. The *_streaming variants write y with non-temporal stores from its
// first 64-byte boundary on (regular stores before it and for the tail; none at all if
// y is not float-aligned) and end with sfence. Results equal pare::kernels::ref bit for bit (integers and floats:
// same operations in the same order; rounding by vcvtps2dq under the caller's MXCSR,
// as nearbyint). Reached only through the dispatch in pare/kernels/quantize_row.hpp.

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

#include "pare/kernels/ref/quantize_row_ref.hpp"
#include "pare/kernels/row_segments.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {
namespace avx512bw {
namespace impl {

using kernels::detail::row_block;
constexpr std::size_t W = 16;
constexpr std::uint32_t golden = 0x9E3779B9u;  // counter_bits' column multiplier

PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE __mmask16 first(std::size_t m) noexcept {
  return static_cast<__mmask16>((1u << m) - 1u);
}

// One vector of nearest-even codes: cvt(clamp(x * inv, lo, hi)) + z.
PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE __m512i round16(__m512 x, __m512 inv, __m512 lo, __m512 hi,
                                                        __m512i z) noexcept {
  const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, inv), lo), hi);
  return _mm512_add_epi32(_mm512_cvtps_epi32(v), z);
}

// counter_uniform for the 16 counters key + col * golden in `ctr`.
PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE __m512 uniform16(__m512i h) noexcept {
  h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
  h = _mm512_mullo_epi32(h, _mm512_set1_epi32(0x7feb352d));
  h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 15));
  h = _mm512_mullo_epi32(h, _mm512_set1_epi32(static_cast<int>(0x846ca68bu)));
  h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(h, 8)), _mm512_set1_ps(1.0f / 16777216.0f));
}

// One vector of stochastic codes: clamp(floor(clamp(x * inv) + u)) + z.
PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE __m512i stoch16(__m512 x, __m512 inv, __m512 lo, __m512 hi, __m512i z,
                                                        __m512i ctr) noexcept {
  __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, inv), lo), hi);
  v = _mm512_roundscale_ps(_mm512_add_ps(v, uniform16(ctr)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
  return _mm512_add_epi32(_mm512_cvtps_epi32(v), z);
}

// One vector of fake-quant values: float(cvt(clamp(x * inv))) * s.
PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE __m512 fake16(__m512 x, __m512 inv, __m512 lo, __m512 hi, __m512 s) noexcept {
  const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, inv), lo), hi);
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtps_epi32(v)), s);
}

// One vector of dequantized values from 16 code bytes.
template <bool Signed>
PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE __m512 deq16(__m128i c, __m512 s, __m512i z) noexcept {
  const __m512i q = Signed ? _mm512_cvtepi8_epi32(c) : _mm512_cvtepu8_epi32(c);
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(q, z)), s);
}

// Clamp bounds float(qmin - z), float(qmax - z) for per-lane zero points.
PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE __m512 bound16(int q, __m512i z) noexcept {
  return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_set1_epi32(q), z));
}

// Elements of y before its first 64-byte boundary (n if y is not float-aligned).
PARE_ALWAYS_INLINE std::size_t stream_head(const float* y, std::size_t n) noexcept {
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(y);
  return a % sizeof(float) ? n : std::min(n, ((std::uintptr_t(0) - a) & 63) / sizeof(float));
}

PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE __m512i lane_counters() noexcept {
  return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                            _mm512_set1_epi32(static_cast<int>(golden)));
}

// ---- segments: one group, broadcast parameters -------------------------------------

PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE void quantize_segment(const float* x, std::size_t n, float inv, std::int32_t z,
                                                              int qmin, int qmax, std::uint8_t* codes) noexcept {
  const __m512 vi = _mm512_set1_ps(inv), lo = _mm512_set1_ps(float(qmin - z)), hi = _mm512_set1_ps(float(qmax - z));
  const __m512i vz = _mm512_set1_epi32(z);
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const __m512i a = round16(_mm512_loadu_ps(x + i), vi, lo, hi, vz);
    const __m512i b = round16(_mm512_loadu_ps(x + i + W), vi, lo, hi, vz);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm512_cvtepi32_epi8(a));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i + W), _mm512_cvtepi32_epi8(b));
  }
  for (; i < n; i += W) {
    const __mmask16 k = n - i >= W ? __mmask16(0xFFFF) : first(n - i);
    _mm512_mask_cvtepi32_storeu_epi8(codes + i, k, round16(_mm512_maskz_loadu_ps(k, x + i), vi, lo, hi, vz));
  }
}

PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE void stochastic_segment(const float* x, std::size_t n, float inv,
                                                                std::int32_t z, int qmin, int qmax, std::uint32_t key,
                                                                std::uint32_t col, std::uint8_t* codes) noexcept {
  const __m512 vi = _mm512_set1_ps(inv), lo = _mm512_set1_ps(float(qmin - z)), hi = _mm512_set1_ps(float(qmax - z));
  const __m512i vz = _mm512_set1_epi32(z);
  const __m512i step = _mm512_set1_epi32(static_cast<int>(golden * std::uint32_t(W)));
  __m512i ctr = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(key + col * golden)), lane_counters());
  for (std::size_t i = 0; i < n; i += W, ctr = _mm512_add_epi32(ctr, step)) {
    const __mmask16 k = n - i >= W ? __mmask16(0xFFFF) : first(n - i);
    _mm512_mask_cvtepi32_storeu_epi8(codes + i, k, stoch16(_mm512_maskz_loadu_ps(k, x + i), vi, lo, hi, vz, ctr));
  }
}

template <bool Signed, bool Stream>
PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE void dequantize_segment(const std::uint8_t* codes, std::size_t n, float s,
                                                                std::int32_t z, float* y) noexcept {
  const __m512 vs = _mm512_set1_ps(s);
  const __m512i vz = _mm512_set1_epi32(z);
  std::size_t i = 0;
  if (Stream && n >= 2 * W) {
    const std::size_t h = stream_head(y, n);
    if (h < W) {
      if (h) {
        const __mmask16 k = first(h);
        _mm512_mask_storeu_ps(y, k, deq16<Signed>(_mm_maskz_loadu_epi8(k, codes), vs, vz));
      }
      for (i = h; i + W <= n; i += W)
        _mm512_stream_ps(y + i, deq16<Signed>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i)), vs, vz));
    }
  }
  for (; i + 2 * W <= n; i += 2 * W) {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + i));
    _mm512_storeu_ps(y + i, deq16<Signed>(_mm256_castsi256_si128(c), vs, vz));
    _mm512_storeu_ps(y + i + W, deq16<Signed>(_mm256_extracti128_si256(c, 1), vs, vz));
  }
  for (; i < n; i += W) {
    const __mmask16 k = n - i >= W ? __mmask16(0xFFFF) : first(n - i);
    _mm512_mask_storeu_ps(y + i, k, deq16<Signed>(_mm_maskz_loadu_epi8(k, codes + i), vs, vz));
  }
}

template <bool Stream>
PARE_TARGET_AVX512BW PARE_ALWAYS_INLINE void fake_quant_segment(const float* x, std::size_t n, float inv, float s,
                                                                std::int32_t z, int qmin, int qmax, float* y) noexcept {
  const __m512 vi = _mm512_set1_ps(inv), vs = _mm512_set1_ps(s);
  const __m512 lo = _mm512_set1_ps(float(qmin - z)), hi = _mm512_set1_ps(float(qmax - z));
  std::size_t i = 0;
  if (Stream && n >= 2 * W) {
    const std::size_t h = stream_head(y, n);
    if (h < W) {
      if (h) {
        const __mmask16 k = first(h);
        _mm512_mask_storeu_ps(y, k, fake16(_mm512_maskz_loadu_ps(k, x), vi, lo, hi, vs));
      }
      for (i = h; i + W <= n; i += W) _mm512_stream_ps(y + i, fake16(_mm512_loadu_ps(x + i), vi, lo, hi, vs));
    }
  }
  for (; i + 2 * W <= n; i += 2 * W) {
    _mm512_storeu_ps(y + i, fake16(_mm512_loadu_ps(x + i), vi, lo, hi, vs));
    _mm512_storeu_ps(y + i + W, fake16(_mm512_loadu_ps(x + i + W), vi, lo, hi, vs));
  }
  for (; i < n; i += W) {
    const __mmask16 k = n - i >= W ? __mmask16(0xFFFF) : first(n - i);
    _mm512_mask_storeu_ps(y + i, k, fake16(_mm512_maskz_loadu_ps(k, x + i), vi, lo, hi, vs));
  }
}

// ---- element-wise: parameter arrays aligned with the data --------------------------

PARE_TARGET_AVX512BW inline void quantize_elementwise(const float* x, std::size_t n, const float* inv,
                                                      const std::int32_t* z, int qmin, int qmax,
                                                      std::uint8_t* codes) noexcept {
  for (std::size_t i = 0; i < n; i += W) {
    const __mmask16 k = n - i >= W ? __mmask16(0xFFFF) : first(n - i);
    const __m512i vz = _mm512_maskz_loadu_epi32(k, z + i);
    const __m512i q = round16(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, inv + i), bound16(qmin, vz),
                              bound16(qmax, vz), vz);
    _mm512_mask_cvtepi32_storeu_epi8(codes + i, k, q);
  }
}

PARE_TARGET_AVX512BW inline void stochastic_elementwise(const float* x, std::size_t n, const float* inv,
                                                        const std::int32_t* z, int qmin, int qmax, std::uint32_t key,
                                                        std::uint32_t col, std::uint8_t* codes) noexcept {
  const __m512i step = _mm512_set1_epi32(static_cast<int>(golden * std::uint32_t(W)));
  __m512i ctr = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(key + col * golden)), lane_counters());
  for (std::size_t i = 0; i < n; i += W, ctr = _mm512_add_epi32(ctr, step)) {
    const __mmask16 k = n - i >= W ? __mmask16(0xFFFF) : first(n - i);
    const __m512i vz = _mm512_maskz_loadu_epi32(k, z + i);
    const __m512i q = stoch16(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, inv + i), bound16(qmin, vz),
                              bound16(qmax, vz), vz, ctr);
    _mm512_mask_cvtepi32_storeu_epi8(codes + i, k, q);
  }
}

template <bool Signed>
PARE_TARGET_AVX512BW inline void dequantize_elementwise(const std::uint8_t* codes, std::size_t n, const float* s,
                                                        const std::int32_t* z, float* y) noexcept {
  for (std::size_t i = 0; i < n; i += W) {
    const __mmask16 k = n - i >= W ? __mmask16(0xFFFF) : first(n - i);
    const __m512 v = deq16<Signed>(_mm_maskz_loadu_epi8(k, codes + i), _mm512_maskz_loadu_ps(k, s + i),
                                   _mm512_maskz_loadu_epi32(k, z + i));
    _mm512_mask_storeu_ps(y + i, k, v);
  }
}

PARE_TARGET_AVX512BW inline void fake_quant_elementwise(const float* x, std::size_t n, const float* inv, const float* s,
                                                        const std::int32_t* z, int qmin, int qmax, float* y) noexcept {
  for (std::size_t i = 0; i < n; i += W) {
    const __mmask16 k = n - i >= W ? __mmask16(0xFFFF) : first(n - i);
    const __m512i vz = _mm512_maskz_loadu_epi32(k, z + i);
    const __m512 v = fake16(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, inv + i), bound16(qmin, vz),
                            bound16(qmax, vz), _mm512_maskz_loadu_ps(k, s + i));
    _mm512_mask_storeu_ps(y + i, k, v);
  }
}

// ---- spans: elements [i0, i0 + n) of a row; x / codes / y point at element i0 -------

PARE_TARGET_AVX512BW inline void quantize_span(const float* x, std::size_t i0, std::size_t n, const row_qparams& p,
                                               std::uint8_t* codes) noexcept {
  const std::size_t G = p.group;
  if (G == 1) return quantize_elementwise(x, n, p.inv_scale + i0, p.zero + i0, p.qmin, p.qmax, codes);
  if (G < W) {
    alignas(64) float inv[row_block];
    alignas(64) std::int32_t z[row_block];
    for (std::size_t b = 0; b < n; b += row_block) {
      const std::size_t len = std::min(row_block, n - b);
      kernels::detail::expand_params(p, i0 + b, len, inv, nullptr, z);
      quantize_elementwise(x + b, len, inv, z, p.qmin, p.qmax, codes + b);
    }
    return;
  }
  std::size_t g = i0 / G;
  for (std::size_t i = 0, len = std::min(n, G - i0 % G); i < n; i += len, len = std::min(n - i, G), ++g)
    quantize_segment(x + i, len, p.inv_scale[g], p.zero[g], p.qmin, p.qmax, codes + i);
}

template <bool Signed, bool Stream>
PARE_TARGET_AVX512BW inline void dequantize_span(const std::uint8_t* codes, std::size_t i0, std::size_t n,
                                                 const row_qparams& p, float* y) noexcept {
  const std::size_t G = p.group;
  if (G == 1) return dequantize_elementwise<Signed>(codes, n, p.scale + i0, p.zero + i0, y);
  if (G < W) {
    alignas(64) float s[row_block];
    alignas(64) std::int32_t z[row_block];
    for (std::size_t b = 0; b < n; b += row_block) {
      const std::size_t len = std::min(row_block, n - b);
      kernels::detail::expand_params(p, i0 + b, len, nullptr, s, z);
      dequantize_elementwise<Signed>(codes + b, len, s, z, y + b);
    }
    return;
  }
  std::size_t g = i0 / G;
  for (std::size_t i = 0, len = std::min(n, G - i0 % G); i < n; i += len, len = std::min(n - i, G), ++g)
    dequantize_segment<Signed, Stream>(codes + i, len, p.scale[g], p.zero[g], y + i);
}

// Two codes per byte (element 2k low nibble, 2k+1 high nibble); n codes -> (n + 1) / 2 bytes.
PARE_TARGET_AVX512BW inline void pack_nibbles(const std::uint8_t* codes, std::size_t n, std::uint8_t* packed) noexcept {
  const __m512i low = _mm512_set1_epi16(0x000F);
  for (std::size_t i = 0; i < n; i += 64) {
    const std::size_t m = std::min<std::size_t>(64, n - i);
    const __mmask64 kin = m == 64 ? ~__mmask64(0) : (__mmask64(1) << m) - 1;
    const __mmask32 kout = static_cast<__mmask32>((std::uint64_t(1) << ((m + 1) / 2)) - 1);
    const __m512i w = _mm512_maskz_loadu_epi8(kin, codes + i);
    // low nibble from the even byte, bits 4-7 from the odd byte's low nibble
    const __m512i t = _mm512_ternarylogic_epi32(low, w, _mm512_srli_epi16(w, 4), 0xCA);
    _mm512_mask_cvtepi16_storeu_epi8(packed + i / 2, kout, t);
  }
}

// Inverse of pack_nibbles; signed codes are sign-extended to a byte.
PARE_TARGET_AVX512BW inline void unpack_nibbles(const std::uint8_t* packed, std::size_t n, bool is_signed,
                                                std::uint8_t* codes) noexcept {
  const __m512i low = _mm512_set1_epi16(0x000F), eight = _mm512_set1_epi8(8);
  for (std::size_t i = 0; i < n; i += 64) {
    const std::size_t m = std::min<std::size_t>(64, n - i);
    const __mmask32 kin = static_cast<__mmask32>((std::uint64_t(1) << ((m + 1) / 2)) - 1);
    const __mmask64 kout = m == 64 ? ~__mmask64(0) : (__mmask64(1) << m) - 1;
    const __m512i w = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(kin, packed + i / 2));
    // word = lo nibble | hi nibble << 8
    __m512i t =
        _mm512_ternarylogic_epi32(low, w, _mm512_and_si512(_mm512_slli_epi16(w, 4), _mm512_set1_epi16(0x0F00)), 0xCA);
    if (is_signed) t = _mm512_sub_epi8(_mm512_xor_si512(t, eight), eight);
    _mm512_mask_storeu_epi8(codes + i, kout, t);
  }
}

}  // namespace impl

/// See ref::quantize_row.
PARE_TARGET_AVX512BW inline void quantize_row(const float* x, std::size_t n, const row_qparams& p,
                                              std::uint8_t* codes) noexcept {
  impl::quantize_span(x, 0, n, p, codes);
}

/// See ref::quantize_row_stochastic.
PARE_TARGET_AVX512BW inline void quantize_row_stochastic(const float* x, std::size_t n, const row_qparams& p,
                                                         std::uint32_t key, std::uint32_t col0,
                                                         std::uint8_t* codes) noexcept {
  const std::size_t G = p.group;
  if (G == 1) return impl::stochastic_elementwise(x, n, p.inv_scale, p.zero, p.qmin, p.qmax, key, col0, codes);
  if (G < impl::W) {
    alignas(64) float inv[impl::row_block];
    alignas(64) std::int32_t z[impl::row_block];
    for (std::size_t b = 0; b < n; b += impl::row_block) {
      const std::size_t len = std::min(impl::row_block, n - b);
      kernels::detail::expand_params(p, b, len, inv, nullptr, z);
      impl::stochastic_elementwise(x + b, len, inv, z, p.qmin, p.qmax, key, col0 + std::uint32_t(b), codes + b);
    }
    return;
  }
  for (std::size_t i = 0, g = 0; i < n; i += G, ++g)
    impl::stochastic_segment(x + i, std::min(G, n - i), p.inv_scale[g], p.zero[g], p.qmin, p.qmax, key,
                             col0 + std::uint32_t(i), codes + i);
}

/// See ref::dequantize_row.
PARE_TARGET_AVX512BW inline void dequantize_row(const std::uint8_t* codes, std::size_t n, const row_qparams& p,
                                                bool is_signed, float* y) noexcept {
  if (is_signed)
    impl::dequantize_span<true, false>(codes, 0, n, p, y);
  else
    impl::dequantize_span<false, false>(codes, 0, n, p, y);
}

/// dequantize_row with non-temporal stores for y (same results).
PARE_TARGET_AVX512BW inline void dequantize_row_streaming(const std::uint8_t* codes, std::size_t n,
                                                          const row_qparams& p, bool is_signed, float* y) noexcept {
  if (is_signed)
    impl::dequantize_span<true, true>(codes, 0, n, p, y);
  else
    impl::dequantize_span<false, true>(codes, 0, n, p, y);
  _mm_sfence();
}

namespace impl {
template <bool Stream>
PARE_TARGET_AVX512BW inline void fake_quant_row(const float* x, std::size_t n, const row_qparams& p,
                                                float* y) noexcept {
  const std::size_t G = p.group;
  if (G == 1) return fake_quant_elementwise(x, n, p.inv_scale, p.scale, p.zero, p.qmin, p.qmax, y);
  if (G < W) {
    alignas(64) float inv[row_block], s[row_block];
    alignas(64) std::int32_t z[row_block];
    for (std::size_t b = 0; b < n; b += row_block) {
      const std::size_t len = std::min(row_block, n - b);
      kernels::detail::expand_params(p, b, len, inv, s, z);
      fake_quant_elementwise(x + b, len, inv, s, z, p.qmin, p.qmax, y + b);
    }
    return;
  }
  for (std::size_t i = 0, g = 0; i < n; i += G, ++g)
    fake_quant_segment<Stream>(x + i, std::min(G, n - i), p.inv_scale[g], p.scale[g], p.zero[g], p.qmin, p.qmax, y + i);
}
}  // namespace impl

/// See ref::fake_quant_row.
PARE_TARGET_AVX512BW inline void fake_quant_row(const float* x, std::size_t n, const row_qparams& p,
                                                float* y) noexcept {
  impl::fake_quant_row<false>(x, n, p, y);
}

/// fake_quant_row with non-temporal stores for y (same results).
PARE_TARGET_AVX512BW inline void fake_quant_row_streaming(const float* x, std::size_t n, const row_qparams& p,
                                                          float* y) noexcept {
  impl::fake_quant_row<true>(x, n, p, y);
  _mm_sfence();
}

/// See ref::scan_row. Fast path: vector min/max and a NaN/Inf class test; a row with a
/// non-finite value is rescanned by the reference (it is an error path).
PARE_TARGET_AVX512BW inline row_stats scan_row(const float* x, std::size_t n) noexcept {
  constexpr int nonfinite = 0x01 | 0x08 | 0x10 | 0x80;  // QNaN, +Inf, -Inf, SNaN
  __m512 mn = _mm512_set1_ps(INFINITY), mx = _mm512_set1_ps(-INFINITY);
  __m512 mn2 = mn, mx2 = mx;
  std::size_t i = 0;
  for (; i + 2 * impl::W <= n; i += 2 * impl::W) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + impl::W);
    if (!_mm512_kortestz(_mm512_fpclass_ps_mask(a, nonfinite), _mm512_fpclass_ps_mask(b, nonfinite)))
      return ref::scan_row(x, n);
    mn = _mm512_min_ps(mn, a);
    mx = _mm512_max_ps(mx, a);
    mn2 = _mm512_min_ps(mn2, b);
    mx2 = _mm512_max_ps(mx2, b);
  }
  for (; i < n; i += impl::W) {
    const __mmask16 k = n - i >= impl::W ? __mmask16(0xFFFF) : impl::first(n - i);
    const __m512 a = _mm512_maskz_loadu_ps(k, x + i);
    if (_mm512_mask_fpclass_ps_mask(k, a, nonfinite)) return ref::scan_row(x, n);
    mn = _mm512_mask_min_ps(mn, k, mn, a);
    mx = _mm512_mask_max_ps(mx, k, mx, a);
  }
  row_stats s{_mm512_reduce_min_ps(_mm512_min_ps(mn, mn2)), _mm512_reduce_max_ps(_mm512_max_ps(mx, mx2)), n};
  kernels::detail::settle_signed_zeros(x, n, s);
  return s;
}

/// See ref::quantize_row_int4: codes of a block in L1, then packed.
PARE_TARGET_AVX512BW inline void quantize_row_int4(const float* x, std::size_t n, const row_qparams& p,
                                                   std::uint8_t* packed) noexcept {
  alignas(64) std::uint8_t tmp[impl::row_block];
  for (std::size_t b = 0; b < n; b += impl::row_block) {
    const std::size_t len = std::min(impl::row_block, n - b);
    impl::quantize_span(x + b, b, len, p, tmp);
    impl::pack_nibbles(tmp, len, packed + b / 2);
  }
}

namespace impl {
template <bool Stream>
PARE_TARGET_AVX512BW inline void dequantize_row_int4(const std::uint8_t* packed, std::size_t n, const row_qparams& p,
                                                     bool is_signed, float* y) noexcept {
  alignas(64) std::uint8_t tmp[row_block];
  for (std::size_t b = 0; b < n; b += row_block) {
    const std::size_t len = std::min(row_block, n - b);
    unpack_nibbles(packed + b / 2, len, is_signed, tmp);
    if (is_signed)
      dequantize_span<true, Stream>(tmp, b, len, p, y + b);
    else
      dequantize_span<false, Stream>(tmp, b, len, p, y + b);
  }
}
}  // namespace impl

/// See ref::dequantize_row_int4: nibbles of a block unpacked in L1, then dequantized.
PARE_TARGET_AVX512BW inline void dequantize_row_int4(const std::uint8_t* packed, std::size_t n, const row_qparams& p,
                                                     bool is_signed, float* y) noexcept {
  impl::dequantize_row_int4<false>(packed, n, p, is_signed, y);
}

/// dequantize_row_int4 with non-temporal stores for y (same results).
PARE_TARGET_AVX512BW inline void dequantize_row_int4_streaming(const std::uint8_t* packed, std::size_t n,
                                                               const row_qparams& p, bool is_signed,
                                                               float* y) noexcept {
  impl::dequantize_row_int4<true>(packed, n, p, is_signed, y);
  _mm_sfence();
}

}  // namespace avx512bw
}  // namespace kernels
PARE_NAMESPACE_END

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // PARE_HAS_X86_KERNELS
