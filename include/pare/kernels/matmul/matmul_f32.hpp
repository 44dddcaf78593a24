// fp32 y = x·Wᵀ: packed 16-row tiles and FMA micro-kernels (AVX-512F, AVX2+FMA, NEON, scalar) behind the runtime dispatch.
#pragma once

// packed_f32 stores W [N, K] as [tile][k][16 rows] (padding rows zero), so a micro-kernel
// broadcasts one activation and multiplies-adds a whole tile column. Kernels use
// intrinsics with function target attributes rather than xsimd: xsimd's batch code is
// not target-attributed, so it can only be used for an ISA the whole translation unit
// is compiled for, which a header-only library with runtime dispatch cannot assume.
// Results: each output is Σ_k x[m][k]·W[n][k] accumulated in k order in fp32 (FMA in
// the vector variants, separate multiply and add in the scalar one).

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/dispatch.hpp"
#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/kernels/matmul/arm/matmul_f32_neon.hpp"

#if PARE_HAS_X86_KERNELS
#include <immintrin.h>
#endif

PARE_NAMESPACE_BEGIN

class packed_f32 {
 public:
  std::size_t n = 0, k = 0, tiles = 0;
  aligned_buffer<float> data;  // [tile][k][16]

  float value(std::size_t i, std::size_t j) const noexcept { return data[((i / 16) * k + j) * 16 + i % 16]; }
  std::size_t storage_bytes() const noexcept { return n * k * sizeof(float); }
};

/// Packs rows [r0, r0 + 16) of w into tile memory dst ([k][16], zero padding rows).
inline void pack_f32_tile(const matrix_view<const float>& w, std::size_t r0, float* dst) {
  const std::size_t k = w.cols();
  std::fill(dst, dst + k * 16, 0.0f);
  for (std::size_t r = 0; r < 16 && r0 + r < w.rows(); ++r)
    for (std::size_t j = 0; j < k; ++j) dst[j * 16 + r] = w(r0 + r, j);
}

inline packed_f32 pack_f32(const matrix_view<const float>& w) {
  packed_f32 p;
  p.n = w.rows();
  p.k = w.cols();
  p.tiles = (p.n + 15) / 16;
  p.data = aligned_buffer<float>(p.tiles * p.k * 16);
  parallel_for(0, p.tiles, 4, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t t = lo; t < hi; ++t) pack_f32_tile(w, t * 16, p.data.data() + t * p.k * 16);
  });
  return p;
}

namespace kernels {

/// Rows [m0, m1) of x (row stride ldx) against `tiles` consecutive packed tiles at w
/// (k × 16 floats each) → y columns [c0, c0 + 16·tiles) (only those < n written).
using f32_block_fn = void (*)(const float* x, std::size_t ldx, std::size_t m0, std::size_t m1, const float* w,
                              std::size_t k, std::size_t tiles, std::size_t c0, std::size_t n, float* y,
                              std::size_t ldy) noexcept;

namespace ref {
inline void matmul_f32_block(const float* x, std::size_t ldx, std::size_t m0, std::size_t m1, const float* w,
                             std::size_t k, std::size_t tiles, std::size_t c0, std::size_t n, float* y,
                             std::size_t ldy) noexcept {
  for (std::size_t m = m0; m < m1; ++m)
    for (std::size_t t = 0; t < tiles; ++t)
      for (std::size_t r = 0; r < 16 && c0 + t * 16 + r < n; ++r) {
        float s = 0.0f;
        for (std::size_t j = 0; j < k; ++j) s += x[m * ldx + j] * w[(t * k + j) * 16 + r];
        y[m * ldy + c0 + t * 16 + r] = s;
      }
}
}  // namespace ref

#if PARE_HAS_X86_KERNELS
namespace avx512_f32 {
template <int MR, int NT>
PARE_TARGET_AVX512BW inline void micro(const float* x, std::size_t ldx, std::size_t m, const float* w, std::size_t k,
                                       float* out /* [MR][NT·16] */) noexcept {
  __m512 acc[MR][NT];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NT; ++j) acc[r][j] = _mm512_setzero_ps();
  for (std::size_t kk = 0; kk < k; ++kk) {
    __m512 wv[NT];
    for (int j = 0; j < NT; ++j) wv[j] = _mm512_load_ps(w + (j * k + kk) * 16);
    for (int r = 0; r < MR; ++r) {
      const __m512 xb = _mm512_set1_ps(x[(m + r) * ldx + kk]);
      for (int j = 0; j < NT; ++j) acc[r][j] = _mm512_fmadd_ps(xb, wv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NT; ++j) _mm512_storeu_ps(out + (r * NT + j) * 16, acc[r][j]);
}
template <int NT>
PARE_TARGET_AVX512BW inline void rows(const float* x, std::size_t ldx, std::size_t m0, std::size_t m1, const float* w,
                                      std::size_t k, std::size_t c0, std::size_t n, float* y, std::size_t ldy) noexcept {
  constexpr int MR = NT >= 2 ? 6 : 1;
  alignas(64) float out[6 * NT * 16];
  for (std::size_t m = m0; m < m1; m += MR) {
    const std::size_t mr = std::min<std::size_t>(MR, m1 - m);
    if (mr == MR) micro<MR, NT>(x, ldx, m, w, k, out);
    else for (std::size_t r = 0; r < mr; ++r) micro<1, NT>(x, ldx, m + r, w, k, out + r * NT * 16);
    for (std::size_t r = 0; r < mr; ++r)
      for (int c = 0; c < NT * 16 && c0 + c < n; ++c) y[(m + r) * ldy + c0 + c] = out[r * NT * 16 + c];
  }
}
PARE_TARGET_AVX512BW inline void matmul_f32_block(const float* x, std::size_t ldx, std::size_t m0, std::size_t m1,
                                                  const float* w, std::size_t k, std::size_t tiles, std::size_t c0,
                                                  std::size_t n, float* y, std::size_t ldy) noexcept {
  std::size_t t = 0;
  for (; t + 2 <= tiles; t += 2) rows<2>(x, ldx, m0, m1, w + t * k * 16, k, c0 + t * 16, n, y, ldy);
  for (; t < tiles; ++t) rows<1>(x, ldx, m0, m1, w + t * k * 16, k, c0 + t * 16, n, y, ldy);
}
}  // namespace avx512_f32

namespace avx2_f32 {
PARE_TARGET_AVX2 inline void matmul_f32_block(const float* x, std::size_t ldx, std::size_t m0, std::size_t m1,
                                              const float* w, std::size_t k, std::size_t tiles, std::size_t c0,
                                              std::size_t n, float* y, std::size_t ldy) noexcept {
  alignas(32) float out[4 * 16];
  for (std::size_t t = 0; t < tiles; ++t) {
    const float* wt = w + t * k * 16;
    for (std::size_t m = m0; m < m1; m += 4) {
      const std::size_t mr = std::min<std::size_t>(4, m1 - m);
      __m256 acc[4][2];
      for (auto& a : acc) a[0] = a[1] = _mm256_setzero_ps();
      for (std::size_t kk = 0; kk < k; ++kk) {
        const __m256 w0 = _mm256_load_ps(wt + kk * 16), w1 = _mm256_load_ps(wt + kk * 16 + 8);
        for (std::size_t r = 0; r < mr; ++r) {
          const __m256 xb = _mm256_set1_ps(x[(m + r) * ldx + kk]);
          acc[r][0] = _mm256_fmadd_ps(xb, w0, acc[r][0]);
          acc[r][1] = _mm256_fmadd_ps(xb, w1, acc[r][1]);
        }
      }
      for (std::size_t r = 0; r < mr; ++r) {
        _mm256_store_ps(out + r * 16, acc[r][0]);
        _mm256_store_ps(out + r * 16 + 8, acc[r][1]);
        for (std::size_t c = 0; c < 16 && c0 + t * 16 + c < n; ++c) y[(m + r) * ldy + c0 + t * 16 + c] = out[r * 16 + c];
      }
    }
  }
}
}  // namespace avx2_f32
#endif

inline const dispatcher<f32_block_fn>& matmul_f32_dispatch() {
  static const dispatcher<f32_block_fn> d{{
#if PARE_HAS_X86_KERNELS
      {isa::avx512bw, &avx512_f32::matmul_f32_block},
      {isa::avx2, &avx2_f32::matmul_f32_block},
#endif
#if defined(__aarch64__)
      {isa::neon, &neon_f32::matmul_f32_block},
#endif
      {isa::scalar, &ref::matmul_f32_block}}};
  return d;
}

/// x with unit column stride (a copy when it has another stride).
struct unit_stride_rows {
  std::vector<float> copy;
  const float* data;
  std::size_t ld;
  explicit unit_stride_rows(const matrix_view<const float>& x) {
    if (x.col_stride() == 1 && x.row_stride() >= static_cast<std::ptrdiff_t>(x.cols())) {
      data = x.row_ptr(0);
      ld = x.rows() ? static_cast<std::size_t>(x.row_stride()) : x.cols();
    } else {
      copy.resize(x.rows() * x.cols());
      for (std::size_t i = 0; i < x.rows(); ++i)
        for (std::size_t j = 0; j < x.cols(); ++j) copy[i * x.cols() + j] = x(i, j);
      data = copy.data();
      ld = x.cols();
    }
  }
};

}  // namespace kernels

/// y = x·Wᵀ with fp32 weights packed by pack_f32. shape_error (both shapes) on mismatch.
inline void matmul(const matrix_view<const float>& x, const packed_f32& w, const matrix_view<float>& y) {
  if (x.cols() != w.k || y.rows() != x.rows() || y.cols() != w.n)
    detail::fail<shape_error>("pare::matmul(f32): expected x [M, ", w.k, "] and y [M, ", w.n, "] for weights [", w.n,
                              ", ", w.k, "], got x ", x.shape(), " and y ", y.shape());
  const std::size_t m = x.rows();
  if (m == 0 || w.n == 0) return;
  const kernels::unit_stride_rows xs(x);
  const bool direct = y.col_stride() == 1 && y.row_stride() >= static_cast<std::ptrdiff_t>(w.n);
  std::vector<float> scratch(direct ? 0 : m * w.n);
  float* out = direct ? y.row_ptr(0) : scratch.data();
  const std::size_t ldy = direct ? static_cast<std::size_t>(y.row_stride()) : w.n;
  const kernels::f32_block_fn fn = kernels::matmul_f32_dispatch().pick();
  const std::size_t grain = std::max<std::size_t>(1, (std::size_t(1) << 18) / std::max<std::size_t>(1, m * w.k * 16));
  parallel_for(0, w.tiles, grain, [&](std::size_t lo, std::size_t hi) {
    fn(xs.data, xs.ld, 0, m, w.data.data() + lo * w.k * 16, w.k, hi - lo, lo * 16, w.n, out, ldy);
  });
  if (!direct)
    for (std::size_t r = 0; r < m; ++r)
      for (std::size_t c = 0; c < w.n; ++c) y(r, c) = scratch[r * w.n + c];
}

/// y = x·Wᵀ with W [N, K] fp32 in any layout (packed per call; pack once with pack_f32
/// when W is reused).
inline void matmul(const matrix_view<const float>& x, const matrix_view<const float>& w, const matrix_view<float>& y) {
  if (x.cols() != w.cols())
    detail::fail<shape_error>("pare::matmul(f32): expected x [M, ", w.cols(), "] for weights ", w.shape(), ", got x ",
                              x.shape());
  matmul(x, pack_f32(w), y);
}

PARE_NAMESPACE_END
