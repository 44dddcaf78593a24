// y = x·Wᵀ with packed int8 / int4 weights: validation, on-the-fly activation quantization, threads, runtime ISA dispatch.
#pragma once

// pare::matmul(x, w, y): x [M, K] fp32 (any strides), w packed_int8 or packed_int4 [N, K],
// y [M, N] fp32 (any strides). Activations are quantized per row as activations.hpp
// defines; each ISA variant computes the exact int32 group sums of
// ref/matmul_int_ref.hpp. M = 1 runs as a GEMV, larger M as a GEMM (register
// micro-tiles of several rows × a panel of 16-output tiles, all rows swept over a panel
// while its weights stay in cache; see the ISA kernels). One parallel region: the threads
// quantize the rows, then take tasks of whole panels from a shared counter (for many
// rows, the last panels in blocks of 64 rows).
// Errors (nothing is written to y): shape_error for K or N mismatches (both shapes
// printed), value_error for NaN/Inf in x (position named).
// matmul_static(x, w, s_x, y): the same int8 product with static activations, one fixed
// scale s_x for every row (activations.hpp); argument_error unless s_x is finite, normal, > 0.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <thread>
#include <type_traits>
#include <vector>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/dispatch.hpp"
#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/kernels/matmul/act_rows.hpp"
#include "pare/kernels/matmul/quantized_activations.hpp"
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

/// The shared driver: rows == nullptr means the activations are already prepared (given);
/// kv is the kernel the activations were laid out for.
template <class Packed>
void run_matmul_int(const Packed& w, const kernel_variant<matmul_block_fn<Packed>>& kv, act_rows* rows,
                    const matmul_acts& given, std::size_t m, const matrix_view<float>& y, const char* where) {
  // Output: y itself when its rows are contiguous, else a scratch matrix copied afterwards.
  const bool direct = y.col_stride() == 1 && y.row_stride() >= static_cast<std::ptrdiff_t>(w.n);
  std::vector<float> scratch(direct ? 0 : m * w.n);
  float* out = direct ? y.row_ptr(0) : scratch.data();
  const std::size_t ldy = direct ? static_cast<std::size_t>(y.row_stride()) : w.n;
  const matmul_block_fn<Packed> fn = kv.fn;
  const std::size_t nthreads = std::max<std::size_t>(1, num_threads());
  // Tiles per task: see below; at least 6 and the tiles of 256K multiply-adds.
  const std::size_t grain = (std::size_t(1) << 18) / std::max<std::size_t>(1, m * w.kp * 16);
  const std::size_t min_task = std::max<std::size_t>(6, (grain + 5) / 6 * 6);
  if (nthreads == 1 || (w.tiles <= min_task && m * w.k < 65536)) {
    if (rows) rows->quantize(0, m);
    if (!rows || !rows->bad()) fn(w, rows ? rows->acts() : given, matmul_block{0, m, 0, w.tiles, out, ldy});
  } else {
    // One parallel region. The threads first take chunks of rows to quantize from a
    // counter and wait until every taken chunk is done (a thread waits only for chunks
    // that running threads hold, so an executor running the tasks one after another
    // still works); then they take tasks of output tiles from a second counter (a
    // thread slowed down by another process leaves its share to the others), guided:
    // each task is about 1/(2·threads) of the tiles left, a multiple of 24 tiles (whole
    // panels of every kernel's width: 1, 2, 3, 4, 6 or 8 tiles), down to min_task at the
    // end, so the threads finish within a small task of each other.
    const std::size_t row_chunk = std::min(act_rows::chunk_rows(w.k), (m + nthreads - 1) / nthreads);
    // When m has two row blocks of tail_rows or more, the last tiles (from t_end, a
    // multiple of 24, at least 2·threads·tail_unit of them) go in tasks of tail_unit
    // tiles × tail_rows rows instead, so the threads finish within a short task of each
    // other (at M = 512, K = 4096 a 6-tile task of all rows is 0.5 ms of one core's work).
    constexpr std::size_t tail_unit = 6, tail_rows = 64;
    const std::size_t row_blocks = m >= 2 * tail_rows ? (m + tail_rows - 1) / tail_rows : 1;
    const std::size_t min_tail = 2 * nthreads * tail_unit;
    const std::size_t t_end = row_blocks == 1 ? w.tiles : w.tiles > min_tail ? (w.tiles - min_tail) / 24 * 24 : 0;
    const std::size_t tail_tasks = (w.tiles - t_end + tail_unit - 1) / tail_unit * row_blocks;
    std::atomic<std::size_t> next_row{rows ? 0 : m}, rows_done{rows ? 0 : m}, next{0}, next_tail{0};
    parallel_for(0, nthreads, 1, [&](std::size_t, std::size_t) {
      for (std::size_t r0 = next_row.fetch_add(row_chunk); r0 < m; r0 = next_row.fetch_add(row_chunk)) {
        const std::size_t r1 = std::min(m, r0 + row_chunk);
        struct count_done {  // counts the chunk as done even if quantize throws
          std::atomic<std::size_t>& done;
          std::size_t n;
          ~count_done() { done.fetch_add(n, std::memory_order_release); }
        } counted{rows_done, r1 - r0};
        rows->quantize(r0, r1);
      }
      while (rows_done.load(std::memory_order_acquire) < m) std::this_thread::yield();
      if (rows && rows->bad()) return;
      const matmul_acts acts = rows ? rows->acts() : given;
      for (std::size_t t0 = next.load(std::memory_order_relaxed); t0 < t_end;) {
        const std::size_t size = std::min(t_end - t0, std::max(min_task, (t_end - t0) / (2 * nthreads) / 24 * 24));
        if (!next.compare_exchange_weak(t0, t0 + size, std::memory_order_relaxed)) continue;  // t0 reloaded
        fn(w, acts, matmul_block{0, m, t0, t0 + size, out, ldy});
        t0 = next.load(std::memory_order_relaxed);
      }
      for (std::size_t u = next_tail.fetch_add(1); u < tail_tasks; u = next_tail.fetch_add(1)) {
        const std::size_t t = t_end + u / row_blocks * tail_unit, r = u % row_blocks * tail_rows;
        fn(w, acts, matmul_block{r, std::min(m, r + tail_rows), t, std::min(w.tiles, t + tail_unit), out, ldy});
      }
    });
  }
  // The rows were quantized by dispatched row kernels too: record the matmul kernel's
  // level last, for last_used_isa() on this thread.
  pare::detail::last_isa = kv.level;
  if (rows) rows->fail_if_bad(where);
  if (!direct)
    for (std::size_t r = 0; r < m; ++r)
      for (std::size_t c = 0; c < w.n; ++c) y(r, c) = scratch[r * w.n + c];
}

/// shape_error unless x [m, k] and y fit the weights.
inline void check_shapes(const packed_weights_base& w, std::size_t m, std::size_t k, const matrix_view<float>& y,
                         const char* where) {
  if (k != w.k || y.rows() != m || y.cols() != w.n)
    pare::detail::fail<shape_error>(where, ": expected x [M, ", w.k, "] and y [M, ", w.n, "] for weights [", w.n, ", ", w.k,
                                    "], got x [", m, ", ", k, "] and y ", y.shape());
}

template <class Packed>
void matmul_int(const matrix_view<const float>& x, const Packed& w, const matrix_view<float>& y, const char* where,
                float act_scale = 0) {
  const std::size_t m = x.rows();
  check_shapes(w, m, x.cols(), y, where);
  if (m == 0) return;
  // One choice of kernel for the layout and the call (set_enabled_isas may run meanwhile).
  const kernel_variant<matmul_block_fn<Packed>> kv = matmul_dispatch(static_cast<const Packed*>(nullptr)).choose();
  act_layout layout = act_layout::of(m, w, std::is_same_v<Packed, packed_int8>);
  layout.signed_rows = !layout.unsigned_rows || kv.level != isa::avx512vnni;  // VNNI int8 reads qu only
  layout.scale = act_scale;
  act_rows rows(x, layout, thread_act_buffers());
  run_matmul_int(w, kv, &rows, matmul_acts{}, m, y, where);
}

template <class Packed>
void matmul_int(const quantized_activations& x, const Packed& w, const matrix_view<float>& y, const char* where) {
  const act_layout& l = x.layout();  // from quantize_activations: unsigned rows and group sums always
  check_shapes(w, l.m, l.k, y, where);
  if (w.has_offsets() && (l.group != w.padded_group() || l.groups != w.groups))
    pare::detail::fail<argument_error>(where, ": argument 'x': expected activations quantized for weights with offsets in groups of ",
                                       w.padded_group(), " k (quantize_activations(x, these weights)), got sums over groups of ",
                                       l.group, " k");
  if (l.m == 0) return;
  run_matmul_int(w, matmul_dispatch(static_cast<const Packed*>(nullptr)).choose(), nullptr, x.acts(), l.m, y, where);
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
/// y = x·Wᵀ with int8 weights and static activations: every row quantized with the fixed
/// scale act_scale (see the header comment). argument_error naming 'act_scale' unless it is
/// finite, positive and normal (≥ FLT_MIN, so 1/s_x is finite); otherwise the errors of matmul.
inline void matmul_static(const matrix_view<const float>& x, const packed_int8& w, float act_scale,
                          const matrix_view<float>& y) {
  if (!(std::isfinite(act_scale) && act_scale >= std::numeric_limits<float>::min()))
    detail::fail<argument_error>("pare::matmul_static: argument 'act_scale': expected a finite normal scale > 0, got ",
                                 act_scale);
  kernels::matmul_int(x, w, y, "pare::matmul_static(int8)", act_scale);
}
/// y = x·Wᵀ with activations quantized beforehand (quantize_activations): the same
/// result as matmul(x, w, y) on the fp32 rows, without quantizing them again.
inline void matmul(const quantized_activations& x, const packed_int8& w, const matrix_view<float>& y) {
  kernels::matmul_int(x, w, y, "pare::matmul(int8)");
}
inline void matmul(const quantized_activations& x, const packed_int4& w, const matrix_view<float>& y) {
  kernels::matmul_int(x, w, y, "pare::matmul(int4)");
}

PARE_NAMESPACE_END
