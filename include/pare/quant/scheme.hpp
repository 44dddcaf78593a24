// Compile-time scheme policies: symmetric (zero point fixed) and asymmetric (zero point from the range).
#pragma once

#include <type_traits>

#include "pare/core/affine.hpp"

PARE_NAMESPACE_BEGIN

/// Scale from max(|lo|, |hi|); zero point 0 (signed) or the mid code (unsigned).
struct symmetric {
  static constexpr scheme_kind kind = scheme_kind::symmetric;
};

/// Scale and zero point from [min(lo, 0), max(hi, 0)]; zero is exactly representable.
struct asymmetric {
  static constexpr scheme_kind kind = scheme_kind::asymmetric;
};

template <class T>
inline constexpr bool is_scheme_v = std::is_same_v<T, symmetric> || std::is_same_v<T, asymmetric>;

PARE_NAMESPACE_END
