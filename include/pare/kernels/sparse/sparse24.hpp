// packed_sparse24: 2:4 sparse weights (the 2 kept fp32 values per 4 columns + packed 2-bit positions) and y = x·Wᵀ on them behind the runtime dispatch.
#pragma once

// Storage (normative layout: pare/kernels/sparse/ref/sparse24_ref.hpp). Every group of 4
// consecutive input columns of a row keeps 2 weights: their fp32 values, in column order,
// and their positions in the group, 2 bits each. Per row: K/2 floats + K/8 bytes, i.e.
// 2.125 bytes per weight of the dense matrix instead of 4 (53 %); rows are padded to a
// multiple of 16 values (none for K a multiple of 32) so the kernels read aligned,
// whole 16-value windows.
//
//   pack_sparse24(w)         w must have at most 2 nonzeros in each group of 4 (e.g.
//                            after prune::apply(prune::nm_mask(s, 2, 4), w)); groups with
//                            fewer keep the lowest-column zeros as explicit zeros
//   pack_sparse24(w, keep)   keeps exactly the flagged entries (pare/prune/sparse24.hpp:
//                            from a prune::mask) (it must be exactly 2:4);
//                            w's other entries are ignored (need not be zero)
//   pare::matmul(x, p, y)    y [M, N] = x [M, K] · Wᵀ, any strides; M = 1 is a GEMV,
//                            small M share every decoded window (blocks of up to 4 rows)
//
// Errors: shape_error naming 'w' when K is not a multiple of 4 (both shapes for matmul
// mismatches), value_error naming 'w' and the group for more than 2 nonzeros,
// argument_error naming 'mask' for a group without exactly 2 kept. Results are the
// scalar definition's bit for bit on every ISA (AVX-512, AVX2, scalar; last_used_isa()
// tells which ran); NaN/Inf in x propagate only through kept weights.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/dispatch.hpp"
#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/kernels/sparse/ref/sparse24_ref.hpp"
#include "pare/kernels/sparse/x86/sparse24_avx2.hpp"
#include "pare/kernels/sparse/x86/sparse24_avx512.hpp"

PARE_NAMESPACE_BEGIN

/// 2:4 sparse weights [n, k] in the layout of the header comment.
class packed_sparse24 {
 public:
  std::size_t n = 0, k = 0;
  std::size_t vstride = 0;  ///< floats per row of `values` (k/2 rounded up to 16)
  std::size_t istride = 0;  ///< bytes per row of `idx` (vstride / 4)
  aligned_buffer<float> values;
  aligned_buffer<std::uint8_t> idx;

  /// Position (0..3) in its group of kept value t of row i.
  unsigned position(std::size_t i, std::size_t t) const noexcept {
    return (unsigned(idx[i * istride + t / 4]) >> (2 * (t % 4))) & 3u;
  }
  /// Input column of kept value t of row i.
  std::size_t column(std::size_t i, std::size_t t) const noexcept { return 4 * (t / 2) + position(i, t); }
  /// W[i][j] (0 where nothing is kept).
  float value(std::size_t i, std::size_t j) const noexcept {
    const std::size_t t = 2 * (j / 4);
    if (position(i, t) == j % 4) return values[i * vstride + t];
    if (position(i, t + 1) == j % 4) return values[i * vstride + t + 1];
    return 0.0f;
  }
  /// Bytes the kernels read: values and positions, padding included.
  std::size_t storage_bytes() const noexcept { return values.size() * sizeof(float) + idx.size(); }

  /// The dense matrix (zeros where nothing is kept) into out [n, k]; shape_error otherwise.
  void unpack(const matrix_view<float>& out) const {
    check_same_shape("pare::packed_sparse24::unpack: argument 'out'", shape_t{n, k}, out.shape());
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < k; ++j) out(i, j) = 0.0f;
      for (std::size_t t = 0; t < k / 2; ++t) out(i, column(i, t)) = values[i * vstride + t];
    }
  }

};

namespace detail {
inline void check_sparse24_cols(const char* where, const shape_t& shape) {
  if (shape[1] % 4 != 0)
    fail<shape_error>(where, ": argument 'w': expected a column count (K) that is a multiple of 4, got shape ", shape);
}

inline packed_sparse24 alloc_sparse24(std::size_t n, std::size_t k) {
  packed_sparse24 p;
  p.n = n;
  p.k = k;
  p.vstride = (k / 2 + 15) / 16 * 16;
  p.istride = p.vstride / 4;
  p.values = aligned_buffer<float>(n * p.vstride);
  p.idx = aligned_buffer<std::uint8_t>(n * p.istride);
  return p;
}

/// Stores the group's two kept positions p0 < p1 with their values.
inline void put_group(packed_sparse24& p, std::size_t i, std::size_t g, unsigned p0, unsigned p1, float v0, float v1) {
  const std::size_t t = 2 * g;
  p.values[i * p.vstride + t] = v0;
  p.values[i * p.vstride + t + 1] = v1;
  std::uint8_t& b = p.idx[i * p.istride + t / 4];
  const unsigned sh = 2 * (t % 4);
  b = static_cast<std::uint8_t>(b | (p0 << sh) | (p1 << (sh + 2)));
}
}  // namespace detail

/// Packs a weight with at most 2 nonzeros per group of 4 columns (see the header comment).
inline packed_sparse24 pack_sparse24(const matrix_view<const float>& w) {
  const char* where = "pare::pack_sparse24";
  detail::check_sparse24_cols(where, w.shape());
  const std::size_t n = w.rows(), k = w.cols();
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < k; j += 4) {
      int nz = 0;
      for (std::size_t q = 0; q < 4; ++q) nz += !(w(i, j + q) == 0.0f);
      if (nz > 2)
        detail::fail<value_error>(where, ": argument 'w': expected at most 2 nonzeros in every group of 4 columns, got ",
                                  nz, " in row ", i, " columns ", j, "..", j + 3);
    }
  packed_sparse24 p = detail::alloc_sparse24(n, k);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t g = 0; g < k / 4; ++g) {
      unsigned pos[2];
      int c = 0;
      for (unsigned q = 0; q < 4 && c < 2; ++q)
        if (!(w(i, 4 * g + q) == 0.0f)) pos[c++] = q;
      for (unsigned q = 0; q < 4 && c < 2; ++q)  // fill with the lowest zero columns
        if (w(i, 4 * g + q) == 0.0f && (c == 0 || pos[0] != q)) pos[c++] = q;
      if (pos[0] > pos[1]) std::swap(pos[0], pos[1]);
      detail::put_group(p, i, g, pos[0], pos[1], w(i, 4 * g + pos[0]), w(i, 4 * g + pos[1]));
    }
  return p;
}

/// Packs the entries of w whose keep flag (1 keep, 0 prune; [out, in] like w) is set;
/// the flags must be exactly 2:4 (see the header comment). pare/prune/sparse24.hpp takes
/// a prune::mask.
inline packed_sparse24 pack_sparse24(const matrix_view<const float>& w, const matrix_view<const std::uint8_t>& m) {
  const char* where = "pare::pack_sparse24";
  detail::check_sparse24_cols(where, w.shape());
  check_same_shape("pare::pack_sparse24: arguments 'w' and 'mask'", w.shape(), m.shape());
  const std::size_t n = w.rows(), k = w.cols();
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < k; j += 4) {
      const int kept = (m(i, j) != 0) + (m(i, j + 1) != 0) + (m(i, j + 2) != 0) + (m(i, j + 3) != 0);
      if (kept != 2)
        detail::fail<argument_error>(where, ": argument 'mask': expected exactly 2 kept entries in every group of 4 "
                                     "columns, got ", kept, " in row ", i, " columns ", j, "..", j + 3);
    }
  packed_sparse24 p = detail::alloc_sparse24(n, k);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t g = 0; g < k / 4; ++g) {
      unsigned pos[2];
      int c = 0;
      for (unsigned q = 0; q < 4; ++q)
        if (m(i, 4 * g + q) != 0) pos[c++] = q;
      detail::put_group(p, i, g, pos[0], pos[1], w(i, 4 * g + pos[0]), w(i, 4 * g + pos[1]));
    }
  return p;
}

namespace kernels {
/// The variants of the 2:4 block kernel, best first.
inline const dispatcher<sparse24_block_fn>& sparse24_dispatch() {
  static const dispatcher<sparse24_block_fn> d{{
#if PARE_HAS_X86_KERNELS
      {isa::avx512bw, &avx512_sp24::sparse24_block},
      {isa::avx2, &avx2_sp24::sparse24_block},
#endif
      {isa::scalar, &ref::sparse24_block}}};
  return d;
}
}  // namespace kernels

/// y = x·Wᵀ with 2:4 sparse weights (see the header comment). shape_error (both shapes)
/// on mismatch; nothing is written then.
inline void matmul(const matrix_view<const float>& x, const packed_sparse24& w, const matrix_view<float>& y) {
  if (x.cols() != w.k || y.rows() != x.rows() || y.cols() != w.n)
    detail::fail<shape_error>("pare::matmul(sparse24): expected x [M, ", w.k, "] and y [M, ", w.n, "] for weights [",
                              w.n, ", ", w.k, "], got x ", x.shape(), " and y ", y.shape());
  const std::size_t m = x.rows();
  if (m == 0 || w.n == 0) return;
  // x with unit column stride (a copy otherwise); y directly when its rows are contiguous.
  std::vector<float> xcopy;
  const float* xp = x.row_ptr(0);
  std::size_t ldx = m > 1 ? static_cast<std::size_t>(x.row_stride()) : w.k;
  if (x.col_stride() != 1 || (m > 1 && x.row_stride() < static_cast<std::ptrdiff_t>(w.k))) {
    xcopy.resize(m * w.k);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < w.k; ++j) xcopy[i * w.k + j] = x(i, j);
    xp = xcopy.data();
    ldx = w.k;
  }
  const bool direct = y.col_stride() == 1 && (m == 1 || y.row_stride() >= static_cast<std::ptrdiff_t>(w.n));
  std::vector<float> scratch(direct ? 0 : m * w.n);
  float* out = direct ? y.row_ptr(0) : scratch.data();
  const std::size_t ldy = direct && m > 1 ? static_cast<std::size_t>(y.row_stride()) : w.n;
  const kernels::sparse24_block_fn fn = kernels::sparse24_dispatch().pick();
  // Threads split the output rows; chunks of at least ~256K multiply-adds.
  const std::size_t grain = std::max<std::size_t>(4, (std::size_t(1) << 18) / std::max<std::size_t>(1, m * (w.k / 2)));
  parallel_for(0, w.n, grain, [&](std::size_t lo, std::size_t hi) {
    fn(kernels::sparse24_block_args{w.values.data(), w.idx.data(), w.vstride, w.istride, w.k, xp, ldx, m, lo, hi, out,
                                    ldy});
  });
  if (!direct)
    for (std::size_t r = 0; r < m; ++r)
      for (std::size_t c = 0; c < w.n; ++c) y(r, c) = scratch[r * w.n + c];
}

PARE_NAMESPACE_END
