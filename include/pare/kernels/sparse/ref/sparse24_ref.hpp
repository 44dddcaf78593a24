// 2:4 sparse GEMV/GEMM block arguments and the scalar kernel that defines the result every ISA variant reproduces bit for bit.
#pragma once

// Layout read by every variant (built by pare::pack_sparse24, pare/kernels/sparse/sparse24.hpp):
//   values   row r at values + r·vstride: the 2 kept weights of each group of 4 input
//            columns, group after group (value t of the row belongs to group t / 2),
//            zero-padded to vstride (a multiple of 16 floats; 64-byte aligned rows)
//   idx      row r at idx + r·istride (istride = vstride / 4 bytes): the position in its
//            group (0..3) of value t in bits 2·(t mod 4) .. 2·(t mod 4) + 1 of byte t / 4,
//            so the 16 values of window w (columns 32w .. 32w + 31) have their positions
//            in the little-endian 32-bit word at byte 4w; padding positions are 0
//   value t multiplies x[4·(t / 2) + position(t)]
// Result (normative): y[m][r] = tree16(acc) where, over the row's values t = 0, 1, ...,
//   acc[t mod 16] = fma(value_t, x[m][column_t], acc[t mod 16])   (acc starts at +0)
// and tree16 adds pairwise: a[i] += a[i + 8] (i < 8), a[i] += a[i + 4], a[i] += a[i + 2],
// a[0] + a[1]. The AVX-512 lanes are exactly acc; AVX2 holds lanes 0-7 and 8-15 in two
// registers. Each variant therefore equals this scalar code bit for bit.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "pare/core/config.hpp"

// Full unrolling of the vector kernels' small register-block loops (rows × activation
// rows), so accumulators stay in registers at -O2 as well as at -O3.
#if defined(__clang__)
#define PARE_SP24_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define PARE_SP24_UNROLL _Pragma("GCC unroll 16")
#else
#define PARE_SP24_UNROLL
#endif

PARE_NAMESPACE_BEGIN
namespace kernels {

/// One call: output rows [r0, r1) for all m rows of x.
struct sparse24_block_args {
  const float* values;
  const std::uint8_t* idx;
  std::size_t vstride, istride, k;  // k: input columns (multiple of 4)
  const float* x;
  std::size_t ldx, m;
  std::size_t r0, r1;
  float* y;
  std::size_t ldy;
};

using sparse24_block_fn = void (*)(const sparse24_block_args&) noexcept;

namespace ref {

/// The pairwise tree sum of 16 lanes (see the header comment).
inline float sparse24_tree16(float* a) noexcept {
  for (int h = 8; h >= 1; h /= 2)
    for (int i = 0; i < h; ++i) a[i] = a[i] + a[i + h];
  return a[0];
}

inline void sparse24_block(const sparse24_block_args& a) noexcept {
  const std::size_t nv = a.k / 2;
  for (std::size_t r = a.r0; r < a.r1; ++r) {
    const float* v = a.values + r * a.vstride;
    const std::uint8_t* ix = a.idx + r * a.istride;
    for (std::size_t m = 0; m < a.m; ++m) {
      const float* x = a.x + m * a.ldx;
      float acc[16] = {};
      for (std::size_t t = 0; t < nv; ++t) {
        const unsigned pos = (unsigned(ix[t >> 2]) >> (2 * (t & 3))) & 3u;
        acc[t & 15] = std::fma(v[t], x[4 * (t >> 1) + pos], acc[t & 15]);
      }
      a.y[m * a.ldy + r] = sparse24_tree16(acc);
    }
  }
}

}  // namespace ref
}  // namespace kernels
PARE_NAMESPACE_END
