// Arguments of the integer matmul kernels: prepared activations and the output block one kernel call computes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pare/core/config.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {

/// Row panel height of matmul_acts::qu for M > 1 (the VNNI GEMM micro-tile's rows).
constexpr std::size_t matmul_act_panel_rows = 8;

/// Activations quantized per row (activations.hpp), laid out for the kernels:
/// q  [m][ld] int8 codes (padding k are 0; left unwritten for a kernel that reads qu
///    only, the VNNI int8 one, when pare::matmul quantizes for it);
/// qu the same as unsigned q + 128 (padding k 128), for int8 kernels that take unsigned
///    activations, in panels of pu rows interleaved by 64 k: row r, k at
///    qu[(r / pu)·pu·ld + (k / 64)·64·pu + (r % pu)·64 + k % 64], so a micro-tile of pu
///    rows reads one contiguous stream (pu = 1: plain rows; rows past m are not written);
/// sx [m] scales, xsum [m][groups] Σ q over each weight group (only when the weights
/// have offsets).
struct matmul_acts {
  const std::int8_t* q = nullptr;
  const std::uint8_t* qu = nullptr;
  std::size_t ld = 0, pu = 1;
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
