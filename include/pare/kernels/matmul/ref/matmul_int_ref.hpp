// Scalar reference of the int8 / int4 matmul kernels: defines their results (exact int32 group sums, then fp32).
#pragma once

// For output (m, i) and weight group g (padded k of per-channel weights belong to g = 0):
//   acc  = Σ_{k∈g} q[m][k] · code[i][k]              int32, exact
//   part = part + (scale[i,g] · float(acc) + offset[i,g] · float(xsum[m][g]))   fp32, g in order
//   y[m][i] = sx[m] · part
// Vector variants must produce the same acc exactly; their float part may differ by
// rounding (fused multiply-add, order), which the tests bound.

#include <cstddef>
#include <cstdint>

#include "pare/core/isa.hpp"
#include "pare/kernels/matmul/matmul_args.hpp"
#include "pare/kernels/matmul/packed_weights.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {
namespace ref {

template <class Packed>
inline void matmul_int_block(const Packed& w, const matmul_acts& a, const matmul_block& b) noexcept {
  const std::size_t pg = w.padded_group();
  for (std::size_t m = b.m0; m < b.m1; ++m) {
    const std::int8_t* q = a.q + m * a.ld;
    for (std::size_t i = b.t0 * matmul_tile_rows; i < std::min(b.t1 * matmul_tile_rows, w.n); ++i) {
      float part = 0.0f;
      for (std::size_t g = 0; g < w.groups; ++g) {
        std::int32_t acc = 0;
        for (std::size_t k = g * pg; k < (g + 1) * pg; ++k) {
          const int c = k < w.k ? w.code(i, k) : 0;  // padded k of per-channel weights are zero
          acc += std::int32_t(q[k]) * c;
        }
        const float off = w.has_offsets() ? w.offset_at(i, g) * float(a.xsum[m * w.groups + g]) : 0.0f;
        part = part + (w.scale_at(i, g) * float(acc) + off);
      }
      b.y[m * b.ldy + i] = a.sx[m] * part;
    }
  }
}

}  // namespace ref
}  // namespace kernels
PARE_NAMESPACE_END
