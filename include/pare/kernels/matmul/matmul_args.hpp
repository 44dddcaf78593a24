// Arguments of the integer matmul kernels: prepared activations and the output block one kernel call computes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pare/core/config.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {

/// Activations quantized per row (activations.hpp), laid out for the kernels:
/// q  [m][ld] int8 codes (padding k are 0), qu [m][ld] the same as unsigned q + 128
/// (padding 128; used by int8 kernels that take unsigned activations), sx [m] scales,
/// xsum [m][groups] Σ q over each weight group (only when the weights have offsets).
struct matmul_acts {
  const std::int8_t* q = nullptr;
  const std::uint8_t* qu = nullptr;
  std::size_t ld = 0;
  const float* sx = nullptr;
  const std::int32_t* xsum = nullptr;
};

/// One kernel call: rows [m0, m1) of the activations against weight tiles [t0, t1);
/// y points at y(0, 0) (rows indexed by absolute m) with row stride ldy (floats);
/// columns ≥ n are not written.
struct matmul_block {
  std::size_t m0, m1, t0, t1;
  float* y;
  std::size_t ldy;
};

}  // namespace kernels
PARE_NAMESPACE_END
