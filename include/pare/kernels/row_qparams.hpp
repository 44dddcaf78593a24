// Arguments shared by the row kernels (quantize / dequantize / fake-quant of one row of floats).
#pragma once

#include <cstddef>
#include <cstdint>

#include "pare/core/config.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {

/// Per-group quantization parameters of one row. Element i of the row belongs to group
/// i / group; `scale`, `inv_scale` (= 1.0f / scale, see pare/core/affine.hpp) and
/// `zero` hold one entry per group. group == n is per-row (per-channel on axis 0),
/// group == 1 is per-element (per-channel on axis 1), anything else is per-group.
struct row_qparams {
  const float* scale = nullptr;
  const float* inv_scale = nullptr;
  const std::int32_t* zero = nullptr;
  std::size_t group = 1;
  int qmin = -128;
  int qmax = 127;
};

/// Min, max and the index of the first NaN/Inf (n if none) of a row.
struct row_stats {
  float min;
  float max;
  std::size_t first_nonfinite;
};

}  // namespace kernels
PARE_NAMESPACE_END
