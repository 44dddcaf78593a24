// bfloat16: the pare::bf16 type, scalar conversions and dispatched row converters.
#pragma once

// Terms
// -----
// bfloat16 is the upper half of an IEEE binary32: sign, the same 8-bit exponent
// (bias 127) and the top 7 bits of the trailing significand:
//
//      15  14              7  6          0
//     +---+-----------------+-------------+
//     | s |   e (8 bits)    |  m (7 bits) |
//     +---+-----------------+-------------+
//
//     e = 0            ±m · 2^-133                 zero and subnormals
//     e = 1..254       ±(128 + m) · 2^(e-134)      normals (largest ≈ 3.3895e38)
//     e = 255, m = 0   ±infinity;   e = 255, m ≠ 0   NaN (quiet when bit 6 is set)
//
// Conversions (normative; every row-converter variant returns the same bits):
//
//   float → bf16   round to nearest, ties to the even significand, on all finite
//                  values including float subnormals (no flush to zero); values that
//                  round beyond the largest bf16 give ±infinity (IEEE overflow);
//                  ±infinity stays ±infinity; a NaN stays a NaN: same sign, quiet bit
//                  set, top 6 payload bits kept ((x >> 16) | 0x0040).
//   bf16 → float   exact: the pattern shifted into the upper half (a signalling NaN
//                  stays signalling, as in every bf16 library).

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "pare/core/dispatch.hpp"
#include "pare/core/dtypes/float_bits.hpp"
#include "pare/core/dtypes/x86/bf16_avx2.hpp"

PARE_NAMESPACE_BEGIN

/// The float value of the bfloat16 pattern h (exact).
inline float bf16_to_float(std::uint16_t h) noexcept { return detail::bits_to_float(std::uint32_t(h) << 16); }

/// The bfloat16 pattern nearest to f (ties to even; overflow to ±inf; NaN stays a quiet NaN).
inline std::uint16_t float_to_bf16(float f) noexcept {
  const std::uint32_t x = detail::float_to_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x0040u);
  // Add half a bf16 ulp minus one plus the kept lsb (ties to even); a carry moves into
  // the exponent (and from the largest finite value into infinity) as it should. The
  // sum stays below 2^32: the largest non-NaN pattern is 0xFF800000.
  return static_cast<std::uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

/// A bfloat16 value. Trivially copyable, two bytes, same layout as its bit pattern;
/// converts to and from float only explicitly.
class bf16 {
 public:
  bf16() = default;
  /// Nearest bfloat16 to f (see float_to_bf16).
  explicit bf16(float f) noexcept : bits_(float_to_bf16(f)) {}
  /// The value with bit pattern b.
  static constexpr bf16 from_bits(std::uint16_t b) noexcept { return bf16(b, raw_tag{}); }
  /// The bit pattern.
  constexpr std::uint16_t bits() const noexcept { return bits_; }
  /// The exact float value.
  explicit operator float() const noexcept { return bf16_to_float(bits_); }

 private:
  struct raw_tag {};
  constexpr bf16(std::uint16_t b, raw_tag) noexcept : bits_(b) {}
  std::uint16_t bits_;
};

static_assert(sizeof(bf16) == 2 && alignof(bf16) == alignof(std::uint16_t), "pare::bf16 must be two bytes");
static_assert(std::is_trivially_copyable_v<bf16> && std::is_standard_layout_v<bf16>,
              "pare::bf16 must be trivially copyable");

namespace kernels {
namespace ref {
/// dst[i] = bf16_to_float(src[i]) for i < n. Any n, no alignment, no overlap.
inline void bf16_to_float_row(const std::uint16_t* src, float* dst, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_to_float(src[i]);
}
/// dst[i] = float_to_bf16(src[i]) for i < n. Any n, no alignment, no overlap.
inline void float_to_bf16_row(const float* src, std::uint16_t* dst, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = float_to_bf16(src[i]);
}
}  // namespace ref
}  // namespace kernels

/// dst[i] = bf16_to_float(src[i]) for i < n, on the best enabled ISA.
/// Any n (0 included); no alignment needed; src and dst must not overlap.
inline void convert_bf16_to_float(const std::uint16_t* src, float* dst, std::size_t n) {
  using fn_t = void (*)(const std::uint16_t*, float*, std::size_t);
  static const dispatcher<fn_t> d{{
#if PARE_HAS_X86_KERNELS
      {isa::avx2, &kernels::avx2::bf16_to_float_row},
#endif
      {isa::scalar, &kernels::ref::bf16_to_float_row}}};
  d.pick()(src, dst, n);
}

/// dst[i] = float_to_bf16(src[i]) for i < n, on the best enabled ISA.
/// Any n (0 included); no alignment needed; src and dst must not overlap.
inline void convert_float_to_bf16(const float* src, std::uint16_t* dst, std::size_t n) {
  using fn_t = void (*)(const float*, std::uint16_t*, std::size_t);
  static const dispatcher<fn_t> d{{
#if PARE_HAS_X86_KERNELS
      {isa::avx2, &kernels::avx2::float_to_bf16_row},
#endif
      {isa::scalar, &kernels::ref::float_to_bf16_row}}};
  d.pick()(src, dst, n);
}

PARE_NAMESPACE_END
