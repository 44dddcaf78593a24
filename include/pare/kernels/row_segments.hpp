// ISA-independent helpers of the SIMD row kernels: block size, per-element parameter expansion, signed-zero fix-up.
#pragma once

// The SIMD variants walk a row (or a span [i0, i0 + n) of it) in group segments: each
// segment lies inside one group and is processed with broadcast parameters. Groups
// narrower than a vector are expanded to per-element parameters, `row_block` elements
// at a time, into stack buffers. Nothing here uses intrinsics, so ISA-attributed
// functions may call it freely.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pare/kernels/row_qparams.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {
namespace detail {

/// Elements per block of the small-group and int4 paths (even, a multiple of every vector width).
inline constexpr std::size_t row_block = 256;

/// Per-element parameters of row elements [i0, i0 + len), len <= row_block. Each
/// destination may be null (that parameter is then not read from p either).
inline void expand_params(const row_qparams& p, std::size_t i0, std::size_t len, float* inv, float* scale,
                          std::int32_t* zero) noexcept {
  std::size_t g = i0 / p.group, r = i0 % p.group;
  for (std::size_t j = 0; j < len; ++j) {
    if (inv) inv[j] = p.inv_scale[g];
    if (scale) scale[j] = p.scale[g];
    if (zero) zero[j] = p.zero[g];
    if (++r == p.group) {
      r = 0;
      ++g;
    }
  }
}

/// Applies scan_row's signed-zero rule (-0.0 < +0.0) to a min/max found with plain
/// float comparisons over the finite row x[0, n): only a zero result needs the row again.
inline void settle_signed_zeros(const float* x, std::size_t n, row_stats& s) noexcept {
  if (s.min != 0.0f && s.max != 0.0f) return;
  bool neg = false, pos = false;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t b;
    std::memcpy(&b, x + i, sizeof b);
    neg |= b == 0x80000000u;
    pos |= b == 0u;
  }
  if (s.min == 0.0f) s.min = neg ? -0.0f : 0.0f;
  if (s.max == 0.0f) s.max = pos ? 0.0f : -0.0f;
}

}  // namespace detail
}  // namespace kernels
PARE_NAMESPACE_END
