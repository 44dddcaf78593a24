// Rounding policies: nearest_even (default) and seeded stochastic rounding.
#pragma once

#include <type_traits>

#include "pare/core/affine.hpp"

PARE_NAMESPACE_BEGIN

/// Round half to even (IEEE default).
struct nearest_even {
  static constexpr rounding_kind kind = rounding_kind::nearest_even;
};

/// floor(v + u), u uniform in [0, 1) from the counter-based generator of pare/core/rng.hpp
/// keyed by (seed, row, column): unbiased, reproducible for a seed on every ISA and thread count.
/// The seed is a runtime knob of the quantizer object.
struct stochastic {
  static constexpr rounding_kind kind = rounding_kind::stochastic;
};

template <class T>
inline constexpr bool is_rounding_v = std::is_same_v<T, nearest_even> || std::is_same_v<T, stochastic>;

PARE_NAMESPACE_END
