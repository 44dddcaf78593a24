// 8-bit floats E4M3 ("E4M3FN") and E5M2 of the OCP 8-bit floating point spec v1.0: types, conversions, rows.
#pragma once

// Terms
// -----
// Both formats keep a sign bit s, a biased exponent e and a trailing significand m:
//
//      7    6        3  2    0              7    6          2  1  0
//     +---+-----------+------+             +---+-------------+-----+
//     | s |  e (4)    | m (3)|  E4M3       | s |    e (5)    |m (2)|  E5M2
//     +---+-----------+------+             +---+-------------+-----+
//
//   E4M3 (bias 7, no infinities; PyTorch float8_e4m3fn, NVIDIA __NV_E4M3)
//     e = 0               ±m · 2^-9                zero, subnormals (smallest 2^-9)
//     e = 1..15           ±(8 + m) · 2^(e-10)      normals 2^-6 .. 448 (S.1111.110)
//     e = 15, m = 7       NaN (S.1111.111: 0x7F and 0xFF are the only NaNs)
//   E5M2 (bias 15, IEEE-like; PyTorch float8_e5m2, NVIDIA __NV_E5M2)
//     e = 0               ±m · 2^-16               zero, subnormals (smallest 2^-16)
//     e = 1..30           ±(4 + m) · 2^(e-17)      normals 2^-14 .. 57344 (S.11110.11)
//     e = 31, m = 0       ±infinity;  e = 31, m ≠ 0: NaN
//
// float → fp8 (normative):
//   * Finite values round to nearest, ties to the even significand, subnormal range
//     included. A value "overflows" when that rounding, done as if the exponent were
//     unbounded, lands beyond the largest finite value: |x| > 464 for E4M3 (464 is the
//     tie between 448 and the unencodable 480 and goes to 448), |x| ≥ 61440 for E5M2
//     (61440 is the tie between 57344 and 2^16 and goes to the even 2^16, i.e. infinity).
//   * saturate = true (default): an overflowing value, and ±infinity, becomes ±max
//     (±448 / ±57344) -- what NVIDIA's __NV_SATFINITE conversion does.
//   * saturate = false: an overflowing value becomes NaN (E4M3, which has no infinity)
//     or ±infinity (E5M2); ±infinity becomes NaN (E4M3) or stays ±infinity (E5M2).
//     This is IEEE overflow under round-to-nearest-even, and reproduces PyTorch's
//     casts to float8_e4m3fn / float8_e5m2 (c10 fp8e4m3fn_from_fp32_value /
//     fp8e5m2_from_fp32_value), which do not saturate.
//   * NaN → the NaN S.1111111 (0x7F or 0xFF) keeping the input's sign, in both modes
//     (as PyTorch; 0x7F is a quiet NaN in E5M2).
//   * -0.0 → 0x80 (negative zero), in both formats.
// fp8 → float is exact; NaNs decode to the quiet float NaN with the code's sign.

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "pare/core/dtypes/float_bits.hpp"

PARE_NAMESPACE_BEGIN

/// The largest finite E4M3 value (S.1111.110).
inline constexpr float e4m3_max = 448.0f;
/// The largest finite E5M2 value (S.11110.11).
inline constexpr float e5m2_max = 57344.0f;

namespace detail {
/// |x| (binary32 pattern a: finite, not NaN) rounded to nearest-even on the grid of an
/// 8-bit float with M significand bits and exponent bias B, the exponent unbounded
/// above. Returns the magnitude code (e << M | m); a value > the largest finite code
/// means overflow.
PARE_ALWAYS_INLINE std::uint32_t fp8_round_magnitude(std::uint32_t a, std::uint32_t M, std::uint32_t B) noexcept {
  const std::uint32_t ef = a >> 23;  // binary32 biased exponent
  if (ef + B > 127u) {
    // Normal result: add half an ulp minus one plus the kept lsb (ties to even), drop
    // 23 - M bits, rebias the exponent from 127 to B. A carry moves into the exponent.
    const std::uint32_t drop = 23u - M;
    const std::uint32_t r = a + ((1u << (drop - 1u)) - 1u) + ((a >> drop) & 1u);
    return (r >> drop) - ((127u - B) << M);
  }
  // Subnormal result: |x| = mf · 2^(ef-150) is mf >> s units of the smallest
  // subnormal 2^(1-B-M), s = 151 - B - M - ef >= 21.
  const std::uint32_t s = 151u - B - M - ef;
  if (s > 24u) return 0;  // |x| < half the smallest subnormal (float subnormals and zero included)
  const std::uint32_t mf = (a & 0x7FFFFFu) | 0x800000u;
  std::uint32_t q = mf >> s;
  const std::uint32_t rest = mf & ((1u << s) - 1u);
  const std::uint32_t half = 1u << (s - 1u);
  if (rest > half || (rest == half && (q & 1u) != 0)) ++q;  // may carry into the smallest normal
  return q;
}
}  // namespace detail

/// The E4M3 code nearest to f (ties to even). Out of range: ±448 if `saturate`, else NaN.
inline std::uint8_t float_to_e4m3(float f, bool saturate = true) noexcept {
  const std::uint32_t x = detail::float_to_bits(f);
  const std::uint32_t sign = (x >> 24) & 0x80u;
  const std::uint32_t a = x & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<std::uint8_t>(sign | 0x7Fu);  // NaN
  const std::uint32_t overflow = saturate ? 0x7Eu : 0x7Fu;
  if (a == 0x7F800000u) return static_cast<std::uint8_t>(sign | overflow);
  const std::uint32_t q = detail::fp8_round_magnitude(a, 3, 7);
  return static_cast<std::uint8_t>(sign | (q > 0x7Eu ? overflow : q));
}

/// The E5M2 code nearest to f (ties to even). Out of range: ±57344 if `saturate`, else ±inf.
inline std::uint8_t float_to_e5m2(float f, bool saturate = true) noexcept {
  const std::uint32_t x = detail::float_to_bits(f);
  const std::uint32_t sign = (x >> 24) & 0x80u;
  const std::uint32_t a = x & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<std::uint8_t>(sign | 0x7Fu);  // NaN
  const std::uint32_t overflow = saturate ? 0x7Bu : 0x7Cu;
  if (a == 0x7F800000u) return static_cast<std::uint8_t>(sign | overflow);
  const std::uint32_t q = detail::fp8_round_magnitude(a, 2, 15);
  return static_cast<std::uint8_t>(sign | (q > 0x7Bu ? overflow : q));
}

/// The float value of the E4M3 code c (exact; 0x7F / 0xFF → NaN).
inline float e4m3_to_float(std::uint8_t c) noexcept {
  const std::uint32_t sign = std::uint32_t(c & 0x80u) << 24;
  const std::uint32_t e = (c >> 3) & 0xFu;
  const std::uint32_t m = c & 0x7u;
  if ((c & 0x7Fu) == 0x7Fu) return detail::bits_to_float(sign | 0x7FC00000u);
  if (e == 0) {
    const float v = static_cast<float>(m) * 0x1p-9f;  // exact
    return sign != 0 ? -v : v;
  }
  return detail::bits_to_float(sign | ((e + 120u) << 23) | (m << 20));
}

/// The float value of the E5M2 code c (exact; e = 31: ±inf or NaN).
inline float e5m2_to_float(std::uint8_t c) noexcept {
  const std::uint32_t sign = std::uint32_t(c & 0x80u) << 24;
  const std::uint32_t e = (c >> 2) & 0x1Fu;
  const std::uint32_t m = c & 0x3u;
  if (e == 0x1Fu) return detail::bits_to_float(sign | (m == 0 ? 0x7F800000u : 0x7FC00000u));
  if (e == 0) {
    const float v = static_cast<float>(m) * 0x1p-16f;  // exact
    return sign != 0 ? -v : v;
  }
  return detail::bits_to_float(sign | ((e + 112u) << 23) | (m << 21));
}

/// An E4M3 value: one byte, same layout as its code; converts only explicitly.
class fp8_e4m3 {
 public:
  fp8_e4m3() = default;
  /// Nearest E4M3 to f (see float_to_e4m3).
  explicit fp8_e4m3(float f, bool saturate = true) noexcept : bits_(float_to_e4m3(f, saturate)) {}
  static constexpr fp8_e4m3 from_bits(std::uint8_t b) noexcept { return fp8_e4m3(b, raw_tag{}); }
  constexpr std::uint8_t bits() const noexcept { return bits_; }
  explicit operator float() const noexcept { return e4m3_to_float(bits_); }

 private:
  struct raw_tag {};
  constexpr fp8_e4m3(std::uint8_t b, raw_tag) noexcept : bits_(b) {}
  std::uint8_t bits_;
};

/// An E5M2 value: one byte, same layout as its code; converts only explicitly.
class fp8_e5m2 {
 public:
  fp8_e5m2() = default;
  /// Nearest E5M2 to f (see float_to_e5m2).
  explicit fp8_e5m2(float f, bool saturate = true) noexcept : bits_(float_to_e5m2(f, saturate)) {}
  static constexpr fp8_e5m2 from_bits(std::uint8_t b) noexcept { return fp8_e5m2(b, raw_tag{}); }
  constexpr std::uint8_t bits() const noexcept { return bits_; }
  explicit operator float() const noexcept { return e5m2_to_float(bits_); }

 private:
  struct raw_tag {};
  constexpr fp8_e5m2(std::uint8_t b, raw_tag) noexcept : bits_(b) {}
  std::uint8_t bits_;
};

static_assert(sizeof(fp8_e4m3) == 1 && sizeof(fp8_e5m2) == 1, "pare fp8 types must be one byte");
static_assert(std::is_trivially_copyable_v<fp8_e4m3> && std::is_trivially_copyable_v<fp8_e5m2>,
              "pare fp8 types must be trivially copyable");

// Row converters (portable code, no ISA dispatch; any n, no alignment, no overlap).
// Decoding looks the 256 values up in a table built once from the scalar decoder.

namespace detail {
template <float (*Decode)(std::uint8_t) noexcept>
const float* fp8_decode_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (unsigned c = 0; c < 256; ++c) t[c] = Decode(static_cast<std::uint8_t>(c));
    return t;
  }();
  return table.data();
}
}  // namespace detail

/// dst[i] = e4m3_to_float(src[i]) for i < n.
inline void convert_e4m3_to_float(const std::uint8_t* src, float* dst, std::size_t n) {
  const float* t = detail::fp8_decode_table<e4m3_to_float>();
  for (std::size_t i = 0; i < n; ++i) dst[i] = t[src[i]];
}
/// dst[i] = float_to_e4m3(src[i], saturate) for i < n.
inline void convert_float_to_e4m3(const float* src, std::uint8_t* dst, std::size_t n, bool saturate = true) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = float_to_e4m3(src[i], saturate);
}
/// dst[i] = e5m2_to_float(src[i]) for i < n.
inline void convert_e5m2_to_float(const std::uint8_t* src, float* dst, std::size_t n) {
  const float* t = detail::fp8_decode_table<e5m2_to_float>();
  for (std::size_t i = 0; i < n; ++i) dst[i] = t[src[i]];
}
/// dst[i] = float_to_e5m2(src[i], saturate) for i < n.
inline void convert_float_to_e5m2(const float* src, std::uint8_t* dst, std::size_t n, bool saturate = true) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = float_to_e5m2(src[i], saturate);
}

PARE_NAMESPACE_END
