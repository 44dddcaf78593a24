// Shorthands the observer tests share: the two scheme kinds as sym / asym.
#pragma once

#include "pare/core/affine.hpp"

namespace observers_test {

inline constexpr pare::scheme_kind sym = pare::scheme_kind::symmetric;
inline constexpr pare::scheme_kind asym = pare::scheme_kind::asymmetric;

}  // namespace observers_test
