// Bit casts between float and its IEEE binary32 pattern, shared by the element-type converters.
#pragma once

#include <cstdint>
#include <cstring>

#include "pare/core/config.hpp"

PARE_NAMESPACE_BEGIN
namespace detail {

static_assert(sizeof(float) == 4, "pare: float must be IEEE binary32");

/// The binary32 bit pattern of f (sign bit 31, exponent 30..23, mantissa 22..0).
PARE_ALWAYS_INLINE std::uint32_t float_to_bits(float f) noexcept {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

/// The float whose binary32 bit pattern is u.
PARE_ALWAYS_INLINE float bits_to_float(std::uint32_t u) noexcept {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace detail
PARE_NAMESPACE_END
