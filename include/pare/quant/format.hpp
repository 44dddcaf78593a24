// Compile-time integer format policies: int_bits<B> (signed) and uint_bits<B> (unsigned), B in [2, 8].
#pragma once

#include <type_traits>

#include "pare/core/affine.hpp"

PARE_NAMESPACE_BEGIN

/// B-bit integer codes. Signed codes lie in [-2^(B-1), 2^(B-1)-1], unsigned in [0, 2^B-1]
/// (see pare/core/affine.hpp). 2- to 7-bit codes are stored bit-packed (see
/// pare/core/dtypes/packed_int.hpp); 8-bit codes take one byte each.
template <int B, bool Signed = true>
struct int_bits {
  static_assert(B >= 2 && B <= 8, "pare::int_bits<B>: template argument 'B' must be in [2, 8]");
  static constexpr int bits = B;
  static constexpr bool is_signed = Signed;
  static constexpr int_format format() noexcept { return int_format{B, Signed}; }
};

/// Unsigned B-bit codes.
template <int B>
using uint_bits = int_bits<B, false>;

template <class T>
struct is_format : std::false_type {};
template <int B, bool S>
struct is_format<int_bits<B, S>> : std::true_type {};
template <class T>
inline constexpr bool is_format_v = is_format<T>::value;

PARE_NAMESPACE_END
