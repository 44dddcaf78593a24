// IEEE binary16 ("fp16", half precision): the pare::fp16 type, scalar conversions and dispatched row converters.
#pragma once

// Terms
// -----
// binary16 keeps a sign bit s, a 5-bit biased exponent e (bias 15) and a 10-bit
// trailing significand m:
//
//      15  14         10  9                  0
//     +---+-------------+---------------------+
//     | s |  e (5 bits) |     m (10 bits)     |
//     +---+-------------+---------------------+
//
//     e = 0,  any m   ±m · 2^-24               zero and subnormals (smallest 2^-24 ≈ 5.96e-8)
//     e = 1..30       ±(1024 + m) · 2^(e-25)   normals (smallest 2^-14, largest 65504)
//     e = 31, m = 0   ±infinity
//     e = 31, m ≠ 0   NaN (quiet when bit 9 is set)
//
// Conversions (normative; the scalar functions define them and every row-converter
// variant returns the same bits):
//
//   float → fp16   round to nearest, ties to the even significand (IEEE 754
//                  roundTiesToEven), including results in the subnormal range;
//                  |x| ≥ 65520 (the midpoint between 65504 and 2^16, which has no
//                  encoding) gives ±infinity, as IEEE overflow under that rounding does;
//                  ±infinity stays ±infinity; a NaN stays a NaN: same sign, quiet bit
//                  set, the 9 payload bits below the float's quiet bit kept
//                  (s | 0x7E00 | (float mantissa >> 13)).
//   fp16 → float   exact; a NaN becomes the quiet float NaN with the same sign and
//                  payload (s | 0x7FC00000 | m << 13).
//
// These are exactly the results of the x86 F16C instructions (vcvtps2ph with
// round-to-nearest-even in imm8, vcvtph2ps) under the default floating-point
// environment, so the AVX2 variant of the row converters uses them.

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "pare/core/dispatch.hpp"
#include "pare/core/dtypes/float_bits.hpp"
#include "pare/core/dtypes/x86/fp16_avx2.hpp"

PARE_NAMESPACE_BEGIN

/// The float value of the binary16 pattern h (exact; NaNs are quieted, see above).
inline float fp16_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1Fu;
  const std::uint32_t m = h & 0x3FFu;
  if (e == 0x1Fu) return detail::bits_to_float(sign | 0x7F800000u | (m << 13) | (m != 0 ? 0x00400000u : 0u));
  if (e == 0) {
    const float v = static_cast<float>(m) * 0x1p-24f;  // exact: m < 2^10, result a normal float
    return sign != 0 ? -v : v;
  }
  return detail::bits_to_float(sign | ((e + 112u) << 23) | (m << 13));
}

/// The binary16 pattern nearest to f (ties to even; overflow to ±inf; NaN stays NaN).
inline std::uint16_t float_to_fp16(float f) noexcept {
  const std::uint32_t x = detail::float_to_bits(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t a = x & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu));  // NaN
  if (a >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // |f| >= 65520, or inf
  if (a >= 0x38800000u) {
    // Normal result (|f| >= 2^-14): add half an fp16 ulp minus one, plus the kept lsb
    // (ties to even), then drop 13 bits; a carry moves into the exponent as it should.
    // Subtracting 112 << 23 rebiases the exponent from 127 to 15.
    const std::uint32_t r = a + 0xFFFu + ((a >> 13) & 1u) - (112u << 23);
    return static_cast<std::uint16_t>(sign | (r >> 13));
  }
  // Subnormal or zero result: |f| = mf · 2^(ef - 150) is q = mf >> (126 - ef) units of 2^-24.
  const std::uint32_t ef = a >> 23;
  if (ef < 102) return static_cast<std::uint16_t>(sign);  // |f| < 2^-25: below half the smallest subnormal
  const std::uint32_t mf = (a & 0x7FFFFFu) | 0x800000u;
  const std::uint32_t s = 126u - ef;  // 14..24
  std::uint32_t q = mf >> s;
  const std::uint32_t rest = mf & ((1u << s) - 1u);
  const std::uint32_t half = 1u << (s - 1u);
  if (rest > half || (rest == half && (q & 1u) != 0)) ++q;  // may carry into the smallest normal: still right
  return static_cast<std::uint16_t>(sign | q);
}

/// A binary16 value. Trivially copyable, two bytes, same layout as its bit pattern;
/// converts to and from float only explicitly.
class fp16 {
 public:
  fp16() = default;
  /// Nearest binary16 to f (see float_to_fp16).
  explicit fp16(float f) noexcept : bits_(float_to_fp16(f)) {}
  /// The value with bit pattern b.
  static constexpr fp16 from_bits(std::uint16_t b) noexcept { return fp16(b, raw_tag{}); }
  /// The bit pattern.
  constexpr std::uint16_t bits() const noexcept { return bits_; }
  /// The exact float value.
  explicit operator float() const noexcept { return fp16_to_float(bits_); }

 private:
  struct raw_tag {};
  constexpr fp16(std::uint16_t b, raw_tag) noexcept : bits_(b) {}
  std::uint16_t bits_;
};

static_assert(sizeof(fp16) == 2 && alignof(fp16) == alignof(std::uint16_t), "pare::fp16 must be two bytes");
static_assert(std::is_trivially_copyable_v<fp16> && std::is_standard_layout_v<fp16>,
              "pare::fp16 must be trivially copyable");

namespace kernels {
namespace ref {
/// dst[i] = fp16_to_float(src[i]) for i < n. Any n, no alignment, no overlap.
inline void fp16_to_float_row(const std::uint16_t* src, float* dst, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = fp16_to_float(src[i]);
}
/// dst[i] = float_to_fp16(src[i]) for i < n. Any n, no alignment, no overlap.
inline void float_to_fp16_row(const float* src, std::uint16_t* dst, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = float_to_fp16(src[i]);
}
}  // namespace ref
}  // namespace kernels

/// dst[i] = fp16_to_float(src[i]) for i < n, on the best enabled ISA (F16C with AVX2).
/// Any n (0 included); no alignment needed; src and dst must not overlap.
inline void convert_fp16_to_float(const std::uint16_t* src, float* dst, std::size_t n) {
  using fn_t = void (*)(const std::uint16_t*, float*, std::size_t);
  static const dispatcher<fn_t> d{{
#if PARE_HAS_X86_KERNELS
      {isa::avx2, &kernels::avx2::fp16_to_float_row},
#endif
      {isa::scalar, &kernels::ref::fp16_to_float_row}}};
  d.pick()(src, dst, n);
}

/// dst[i] = float_to_fp16(src[i]) for i < n, on the best enabled ISA (F16C with AVX2).
/// Any n (0 included); no alignment needed; src and dst must not overlap.
inline void convert_float_to_fp16(const float* src, std::uint16_t* dst, std::size_t n) {
  using fn_t = void (*)(const float*, std::uint16_t*, std::size_t);
  static const dispatcher<fn_t> d{{
#if PARE_HAS_X86_KERNELS
      {isa::avx2, &kernels::avx2::float_to_fp16_row},
#endif
      {isa::scalar, &kernels::ref::float_to_fp16_row}}};
  d.pick()(src, dst, n);
}

PARE_NAMESPACE_END
