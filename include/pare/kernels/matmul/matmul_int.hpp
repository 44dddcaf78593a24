// y = x·Wᵀ with packed int8 / int4 weights: validation, on-the-fly activation quantization, threads, runtime ISA dispatch.
#pragma once

// pare::matmul(x, w, y): x [M, K] fp32 (any strides), w packed_int8 or packed_int4 [N, K],
// y [M, N] fp32 (any strides). Activations are quantized per row as activations.hpp
// defines; each ISA variant computes the exact int32 group sums of
// ref/matmul_int_ref.hpp. M = 1 runs as a GEMV, larger M as a GEMM (register
// micro-tiles of several rows × a panel of 16-output tiles, all rows swept over a panel
// while its weights stay in cache; see the ISA kernels). The threads take tasks of whole
// panels from a shared counter.
// Errors (nothing is written to y): shape_error for K or N mismatches (both shapes
// printed), value_error for NaN/Inf in x (position named).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <type_traits>
#include <vector>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/dispatch.hpp"
#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/kernels/matmul/activations.hpp"
#include "pare/kernels/matmul/arm/matmul_int_neon.hpp"
#include "pare/kernels/matmul/arm/matmul_int_neon_dotprod.hpp"
#include "pare/kernels/matmul/matmul_args.hpp"
#include "pare/kernels/matmul/packed_weights.hpp"
#include "pare/kernels/matmul/ref/matmul_int_ref.hpp"
#include "pare/kernels/matmul/x86/matmul_int_avx2.hpp"
#include "pare/kernels/matmul/x86/matmul_int_avx512bw.hpp"
#include "pare/kernels/matmul/x86/matmul_int_avx512vnni.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {

template <class Packed>
using matmul_block_fn = void (*)(const Packed&, const matmul_acts&, const matmul_block&) noexcept;

/// The variants of the int8 / int4 block kernels, best first.
inline const dispatcher<matmul_block_fn<packed_int8>>& matmul_dispatch(const packed_int8*) {
  static const dispatcher<matmul_block_fn<packed_int8>> d{{
#if PARE_HAS_X86_KERNELS
      {isa::avx512vnni, &avx512vnni_mm::matmul_int8_block},
      {isa::avx512bw, &avx512bw_mm::matmul_int8_block},
      {isa::avx2, &avx2_mm::matmul_int8_block},
#endif
#if PARE_HAS_NEON_DOT_KERNELS
      {isa::neon_dot, &neon_dot_mm::matmul_int8_block},
#endif
#if defined(__aarch64__)
      {isa::neon, &neon_mm::matmul_int8_block},
#endif
      {isa::scalar, &ref::matmul_int_block<packed_int8>}}};
  return d;
}
inline const dispatcher<matmul_block_fn<packed_int4>>& matmul_dispatch(const packed_int4*) {
  static const dispatcher<matmul_block_fn<packed_int4>> d{{
#if PARE_HAS_X86_KERNELS
      {isa::avx512vnni, &avx512vnni_mm::matmul_int4_block},
      {isa::avx512bw, &avx512bw_mm::matmul_int4_block},
      {isa::avx2, &avx2_mm::matmul_int4_block},
#endif
#if PARE_HAS_NEON_DOT_KERNELS
      {isa::neon_dot, &neon_dot_mm::matmul_int4_block},
#endif
#if defined(__aarch64__)
      {isa::neon, &neon_mm::matmul_int4_block},
#endif
      {isa::scalar, &ref::matmul_int_block<packed_int4>}}};
  return d;
}

/// Activation buffers, reused by a thread across calls.
struct matmul_act_buffers {
  aligned_buffer<std::int8_t> q;
  aligned_buffer<std::uint8_t> qu;
  std::vector<float> sx;
  std::vector<std::int32_t> xsum;
};
inline matmul_act_buffers& thread_act_buffers() {
  static thread_local matmul_act_buffers b;
  return b;
}

template <class Packed>
void matmul_int(const matrix_view<const float>& x, const Packed& w, const matrix_view<float>& y, const char* where) {
  constexpr bool is8 = std::is_same_v<Packed, packed_int8>;
  const std::size_t m = x.rows();
  if (x.cols() != w.k || y.rows() != m || y.cols() != w.n)
    pare::detail::fail<shape_error>(where, ": expected x [M, ", w.k, "] and y [M, ", w.n, "] for weights [", w.n, ", ", w.k,
                              "], got x ", x.shape(), " and y ", y.shape());
  if (m == 0) return;
  const std::size_t k = w.k, ld = (w.kp + 63) / 64 * 64;
  matmul_act_buffers& buf = thread_act_buffers();
  if (buf.q.size() < m * ld) buf.q = aligned_buffer<std::int8_t>(m * ld);
  if (is8 && buf.qu.size() < m * ld) buf.qu = aligned_buffer<std::uint8_t>(m * ld);
  buf.sx.resize(m);
  if (w.has_offsets()) buf.xsum.resize(m * w.groups);
  // Quantize the activation rows (parallel); the first NaN/Inf is reported after all rows.
  std::size_t bad_row = m, bad_col = 0;
  std::mutex bad_mu;
  parallel_for(0, m, std::max<std::size_t>(1, 16384 / std::max<std::size_t>(1, k)), [&](std::size_t lo, std::size_t hi) {
    std::vector<float> tmp(x.col_stride() == 1 ? 0 : k);
    for (std::size_t r = lo; r < hi; ++r) {
      const float* row = x.row_ptr(r);
      if (!tmp.empty()) {
        for (std::size_t c = 0; c < k; ++c) tmp[c] = x(r, c);
        row = tmp.data();
      }
      std::int8_t* q = buf.q.data() + r * ld;
      std::size_t col = 0;
      const float s = quantize_activation_row(row, k, q, &col);
      if (s < 0) {
        std::lock_guard<std::mutex> lock(bad_mu);
        if (r < bad_row) bad_row = r, bad_col = col;
        continue;
      }
      std::fill(q + k, q + ld, std::int8_t(0));
      buf.sx[r] = s;
      if (is8) {
        std::uint8_t* qu = buf.qu.data() + r * ld;
        for (std::size_t c = 0; c < ld; ++c) qu[c] = static_cast<std::uint8_t>(q[c] ^ 0x80);
      }
      if (w.has_offsets()) {
        const std::size_t pg = w.padded_group();
        for (std::size_t g = 0; g < w.groups; ++g) {
          std::int32_t s32 = 0;
          for (std::size_t c = g * pg; c < (g + 1) * pg; ++c) s32 += q[c];
          buf.xsum[r * w.groups + g] = s32;
        }
      }
    }
  });
  if (bad_row != m)
    pare::detail::fail<value_error>(where, ": argument 'x': expected finite values, got NaN or Inf at (", bad_row, ", ",
                              bad_col, ")");
  const matmul_acts acts{buf.q.data(), is8 ? buf.qu.data() : nullptr, ld, buf.sx.data(),
                         w.has_offsets() ? buf.xsum.data() : nullptr};
  // Output: y itself when its rows are contiguous, else a scratch matrix copied afterwards.
  const bool direct = y.col_stride() == 1 && y.row_stride() >= static_cast<std::ptrdiff_t>(w.n);
  std::vector<float> scratch(direct ? 0 : m * w.n);
  float* out = direct ? y.row_ptr(0) : scratch.data();
  const std::size_t ldy = direct ? static_cast<std::size_t>(y.row_stride()) : w.n;
  const matmul_block_fn<Packed> fn = matmul_dispatch(static_cast<const Packed*>(nullptr)).pick();
  // Threads take tasks of output tiles from a shared counter (a thread slowed down by
  // another process leaves its share to the others): about 4 tasks per thread, each of
  // ~1M multiply-adds at least and a multiple of 12 tiles (a whole number of panels for
  // every kernel's panel width: 1, 2, 3, 4 or 6 tiles).
  const std::size_t nthreads = std::max<std::size_t>(1, num_threads());
  const std::size_t grain = (std::size_t(1) << 20) / std::max<std::size_t>(1, m * w.kp * 16);
  const std::size_t per_task = (std::max(grain, (w.tiles + 4 * nthreads - 1) / (4 * nthreads)) + 11) / 12 * 12;
  const std::size_t ntasks = (w.tiles + per_task - 1) / per_task;
  std::atomic<std::size_t> next{0};
  parallel_for(0, std::min(nthreads, ntasks), 1, [&](std::size_t, std::size_t) {
    for (std::size_t i = next.fetch_add(1); i < ntasks; i = next.fetch_add(1))
      fn(w, acts, matmul_block{0, m, i * per_task, std::min(w.tiles, (i + 1) * per_task), out, ldy});
  });
  if (!direct)
    for (std::size_t r = 0; r < m; ++r)
      for (std::size_t c = 0; c < w.n; ++c) y(r, c) = scratch[r * w.n + c];
}

}  // namespace kernels

/// y = x·Wᵀ with int8 weights (see the header comment).
inline void matmul(const matrix_view<const float>& x, const packed_int8& w, const matrix_view<float>& y) {
  kernels::matmul_int(x, w, y, "pare::matmul(int8)");
}
/// y = x·Wᵀ with int4 weights (see the header comment).
inline void matmul(const matrix_view<const float>& x, const packed_int4& w, const matrix_view<float>& y) {
  kernels::matmul_int(x, w, y, "pare::matmul(int4)");
}

PARE_NAMESPACE_END
