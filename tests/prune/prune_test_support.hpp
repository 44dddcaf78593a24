// Shared helper of the pruning tests: a row-major vector seen as an r x c matrix_view.
#pragma once

#include <cstddef>
#include <vector>

#include "pare/core/tensor_view.hpp"

namespace prune_test {

/// The r x c row-major matrix held in v, as a read-only view.
inline pare::matrix_view<const float> mv(const std::vector<float>& v, std::size_t r, std::size_t c) {
  return pare::matrix_view<const float>(v.data(), r, c);
}

}  // namespace prune_test
