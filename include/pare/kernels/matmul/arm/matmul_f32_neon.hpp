// NEON (AArch64) fp32 matmul micro-kernels over packed_f32's [tile][k][16] layout: vfmaq_laneq_f32, k in order.
#pragma once

// A micro-kernel holds MR activation rows × NT tiles × 4 vectors of 4 outputs in
// registers. Per 4 k it loads 4 floats of each activation row once and, for each k,
// the tile column(s) (16 floats per tile), then multiplies-adds with vfmaq_laneq_f32
// (a + w·x[lane], one rounding). Every output is therefore the fused chain
//   acc = fma(x[k], W[n][k], acc)   for k = 0, 1, …, K-1   (acc starting at +0),
// the same chain as the AVX2 / AVX-512 variants of matmul_f32.hpp, so the vector
// variants agree bit for bit; the k tail (K % 4) uses vfmaq_n_f32 (also fused).
// Shapes: (MR, NT) = (4, 1) for several rows (16 accumulators, 4 FMA per weight
// load); (1, 2) when a call has one or two rows (GEMV: 8 independent chains hide the
// FMA latency). Remaining rows run as MR = 3, 2, 1. No alignment is required (vld1 /
// vst1). Advanced SIMD is mandatory on AArch64, so no target attribute is needed.
// Reached only through matmul_f32_dispatch() in pare/kernels/matmul/matmul_f32.hpp.

#include "pare/core/unroll.hpp"
#include "pare/core/config.hpp"
#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>


PARE_NAMESPACE_BEGIN
namespace kernels {
namespace neon_f32 {

/// acc[r][j][v] += W column kk+L of tile j (vector v) · x row r lane L.
template <int L, int MR, int NT>
PARE_ALWAYS_INLINE void fma_lane(float32x4_t (&acc)[MR][NT][4], const float* w, std::size_t k, std::size_t kk,
                                 const float32x4_t (&xv)[MR]) noexcept {
  PARE_UNROLL
  for (int j = 0; j < NT; ++j)
    PARE_UNROLL
    for (int v = 0; v < 4; ++v) {
      const float32x4_t wv = vld1q_f32(w + (j * k + kk + L) * 16 + 4 * v);
      PARE_UNROLL
      for (int r = 0; r < MR; ++r) acc[r][j][v] = vfmaq_laneq_f32(acc[r][j][v], wv, xv[r], L);
    }
}

/// Rows x[0..MR) (row stride ldx) × NT tiles at w → y rows (stride ldy), `cols` valid columns.
template <int MR, int NT>
inline void micro(const float* x, std::size_t ldx, const float* w, std::size_t k, float* y, std::size_t ldy,
                  std::size_t cols) noexcept {
  float32x4_t acc[MR][NT][4];
  PARE_UNROLL
  for (int r = 0; r < MR; ++r)
    PARE_UNROLL
    for (int j = 0; j < NT; ++j)
      PARE_UNROLL
      for (int v = 0; v < 4; ++v) acc[r][j][v] = vdupq_n_f32(0.0f);
  std::size_t kk = 0;
  for (; kk + 4 <= k; kk += 4) {
    float32x4_t xv[MR];
    PARE_UNROLL
    for (int r = 0; r < MR; ++r) xv[r] = vld1q_f32(x + r * ldx + kk);
    fma_lane<0>(acc, w, k, kk, xv);
    fma_lane<1>(acc, w, k, kk, xv);
    fma_lane<2>(acc, w, k, kk, xv);
    fma_lane<3>(acc, w, k, kk, xv);
  }
  for (; kk < k; ++kk)
    PARE_UNROLL
    for (int j = 0; j < NT; ++j)
      PARE_UNROLL
      for (int v = 0; v < 4; ++v) {
        const float32x4_t wv = vld1q_f32(w + (j * k + kk) * 16 + 4 * v);
        PARE_UNROLL
        for (int r = 0; r < MR; ++r) acc[r][j][v] = vfmaq_n_f32(acc[r][j][v], wv, x[r * ldx + kk]);
      }
  PARE_UNROLL
  for (int r = 0; r < MR; ++r) {
    float* yr = y + r * ldy;
    if (cols == std::size_t(NT) * 16) {
      PARE_UNROLL
      for (int j = 0; j < NT; ++j)
        PARE_UNROLL
        for (int v = 0; v < 4; ++v) vst1q_f32(yr + j * 16 + 4 * v, acc[r][j][v]);
    } else {
      float out[NT * 16];
      PARE_UNROLL
      for (int j = 0; j < NT; ++j)
        PARE_UNROLL
        for (int v = 0; v < 4; ++v) vst1q_f32(out + j * 16 + 4 * v, acc[r][j][v]);
      std::copy(out, out + cols, yr);
    }
  }
}

/// Rows [m0, m1) against NT tiles at w: MR rows at a time, then the remainder.
template <int MR, int NT>
inline void rows(const float* x, std::size_t ldx, std::size_t m0, std::size_t m1, const float* w, std::size_t k,
                 float* y, std::size_t ldy, std::size_t cols) noexcept {
  std::size_t m = m0;
  for (; m + MR <= m1; m += MR) micro<MR, NT>(x + m * ldx, ldx, w, k, y + m * ldy, ldy, cols);
  if constexpr (MR > 1)
    if (m < m1) rows<MR - 1, NT>(x, ldx, m, m1, w, k, y, ldy, cols);
}

/// The f32_block_fn of matmul_f32.hpp: rows [m0, m1) of x against `tiles` packed tiles
/// at w → y columns [c0, c0 + 16·tiles), only those < n written.
inline void matmul_f32_block(const float* x, std::size_t ldx, std::size_t m0, std::size_t m1, const float* w,
                             std::size_t k, std::size_t tiles, std::size_t c0, std::size_t n, float* y,
                             std::size_t ldy) noexcept {
  std::size_t t = 0;
  if (m1 - m0 <= 2)
    for (; t + 2 <= tiles; t += 2) {
      const std::size_t c = c0 + t * 16;
      rows<1, 2>(x, ldx, m0, m1, w + t * k * 16, k, y + c, ldy, std::min<std::size_t>(32, n - c));
    }
  for (; t < tiles; ++t) {
    const std::size_t c = c0 + t * 16;
    rows<4, 1>(x, ldx, m0, m1, w + t * k * 16, k, y + c, ldy, std::min<std::size_t>(16, n - c));
  }
}

}  // namespace neon_f32
}  // namespace kernels
PARE_NAMESPACE_END

#endif  // __aarch64__
