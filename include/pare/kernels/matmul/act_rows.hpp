// Per-call preparation of the integer matmul's activations: fp32 rows quantized into the q / qu / sx / xsum buffers of matmul_acts.
#pragma once

// act_rows::quantize(lo, hi) prepares rows [lo, hi) (any thread, disjoint ranges) as
// activations.hpp and matmul_args.hpp define, into buffers laid out as act_layout says;
// a row with NaN/Inf is recorded (the smallest such row wins, with its first bad column)
// and left unprepared. pare::matmul uses the calling thread's buffers
// (thread_act_buffers, reused across calls); quantized_activations owns its own.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/kernels/matmul/activations.hpp"
#include "pare/kernels/matmul/matmul_args.hpp"
#include "pare/kernels/matmul/packed_weights.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {

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

/// What a set of prepared activation rows holds: m rows of k, row stride ld, q (when
/// signed_rows; else q is sized but not written), qu panels of pu rows (when
/// unsigned_rows), and Σq per group of `group` k (when sums; groups of them).
struct act_layout {
  std::size_t m = 0, k = 0, ld = 0, pu = 1, group = 0, groups = 0;
  bool signed_rows = true, unsigned_rows = false, sums = false;
  float scale = 0;  ///< fixed s_x of every row (static activations, activations.hpp); 0: each row its own

  /// The layout the kernels need for m rows against w.
  static act_layout of(std::size_t m, const packed_weights_base& w, bool unsigned_rows) {
    act_layout l;
    l.m = m;
    l.k = w.k;
    l.ld = (w.kp + 63) / 64 * 64;
    l.pu = m == 1 ? 1 : matmul_act_panel_rows;
    l.group = w.padded_group();
    l.groups = w.groups;
    l.unsigned_rows = unsigned_rows;
    l.sums = w.has_offsets();
    return l;
  }
};

class act_rows {
 public:
  /// Sizes `buf` for the layout.
  act_rows(const matrix_view<const float>& x, const act_layout& layout, matmul_act_buffers& buf)
      : x_(x), l_(layout), buf_(buf), bad_row_(layout.m) {
    const std::size_t mu = (l_.m + l_.pu - 1) / l_.pu * l_.pu;
    if (buf_.q.size() < l_.m * l_.ld) buf_.q = aligned_buffer<std::int8_t>(l_.m * l_.ld);
    if (l_.unsigned_rows && buf_.qu.size() < mu * l_.ld) buf_.qu = aligned_buffer<std::uint8_t>(mu * l_.ld);
    buf_.sx.resize(l_.m);
    if (l_.sums) buf_.xsum.resize(l_.m * l_.groups);
  }

  /// Quantizes rows [lo, hi).
  void quantize(std::size_t lo, std::size_t hi) {
    const std::size_t k = l_.k, ld = l_.ld;  // locals: the byte loops below cannot alias them
    // Without signed rows the codes are quantized as q + 128 into an L1 row and copied
    // from there into the qu panel.
    static thread_local std::vector<float> tmp;
    static thread_local std::vector<std::uint8_t> scratch;
    if (x_.col_stride() != 1) tmp.resize(k);
    if (!l_.signed_rows) scratch.resize(ld);
    const std::int32_t shift = l_.signed_rows ? 0 : 128;
    for (std::size_t r = lo; r < hi; ++r) {
      const float* row = x_.row_ptr(r);
      if (x_.col_stride() != 1) {
        for (std::size_t c = 0; c < k; ++c) tmp[c] = x_(r, c);
        row = tmp.data();
      } else if (k <= nta_max_k) {
        // Rows ahead stream into L2 while this one is quantized; this one then comes to L1
        // read-once. (The quantizing pass is otherwise bound by DRAM latency: about twice
        // as long for x from memory as from cache.)
        const std::size_t ahead = std::max<std::size_t>(1, l2_ahead_floats / k);
        if (r == lo)
          for (std::size_t a = r + 1; a < std::min(hi, r + ahead); ++a) prefetch_row<to_l2>(x_.row_ptr(a), k);
        if (r + ahead < hi) prefetch_row<to_l2>(x_.row_ptr(r + ahead), k);
        prefetch_row<read_once>(row, k);
      }
      std::uint8_t* q = l_.signed_rows ? reinterpret_cast<std::uint8_t*>(buf_.q.data() + r * ld) : scratch.data();
      std::size_t col = 0;
      const float s = l_.scale > 0 ? quantize_activation_row_fixed(row, k, l_.scale, q, shift, &col)
                                   : quantize_activation_row(row, k, q, shift, &col);
      if (s < 0) {
        std::lock_guard<std::mutex> lock(bad_mu_);
        if (r < bad_row_) bad_row_ = r, bad_col_ = col;
        continue;
      }
      std::memset(q + k, shift, ld - k);  // the code of 0
      buf_.sx[r] = s;
      if (l_.unsigned_rows) {
        if (shift)
          to_panel<0>(q, r);
        else
          to_panel<0x80>(q, r);
      }
      if (l_.sums)
        for (std::size_t g = 0; g < l_.groups; ++g) {
          std::int32_t s32 = 0;
          const std::size_t c0 = g * l_.group, c1 = c0 + l_.group;
          if (shift) {
            for (std::size_t c = c0; c < c1; ++c) s32 += q[c];
            s32 -= shift * std::int32_t(l_.group);
          } else {
            for (std::size_t c = c0; c < c1; ++c) s32 += static_cast<std::int8_t>(q[c]);
          }
          buf_.xsum[r * l_.groups + g] = s32;
        }
    }
  }

  /// Rows per chunk when threads share the quantization: about 64K values (long enough
  /// for the prefetch of rows ahead to pay), whole qu panels when that is 8 rows or more
  /// (so two threads never write one panel).
  static std::size_t chunk_rows(std::size_t k) {
    const std::size_t r = std::max<std::size_t>(1, 65536 / std::max<std::size_t>(1, k));
    return r < matmul_act_panel_rows ? r : r / matmul_act_panel_rows * matmul_act_panel_rows;
  }

  /// Whether a row held NaN/Inf (valid once every row has been through quantize).
  bool bad() const {
    std::lock_guard<std::mutex> lock(bad_mu_);
    return bad_row_ != l_.m;
  }
  /// value_error naming the first bad row and column, if there is one.
  void fail_if_bad(const char* where) const {
    if (bad())
      pare::detail::fail<value_error>(where, ": argument 'x': expected finite values, got NaN or Inf at (", bad_row_, ", ",
                                      bad_col_, ")");
  }

  matmul_acts acts() const { return acts_of(l_, buf_); }
  static matmul_acts acts_of(const act_layout& l, const matmul_act_buffers& b) {
    return {b.q.data(), l.unsigned_rows ? b.qu.data() : nullptr, l.ld, l.pu, b.sx.data(),
            l.sums ? b.xsum.data() : nullptr};
  }

 private:
  /// Longest row (floats) prefetched as read-once: 16 KiB, half of a 32 KiB L1, since it
  /// must stay in L1 from the min/max scan through the quantizing pass.
  static constexpr std::size_t nta_max_k = 4096;
  /// Floats of the rows ahead of the current one that are prefetched into L2 (32 KiB).
  static constexpr std::size_t l2_ahead_floats = 8192;
  /// Requests the row's lines with __builtin_prefetch's temporal locality: to_l2 (2: into
  /// L2, not L1) for rows ahead, read_once (0: into L1, non-temporal where the CPU has
  /// it) for the row the scan reads next.
  static constexpr int to_l2 = 2, read_once = 0;
  template <int Locality>
  static void prefetch_row(const float* row, std::size_t k) noexcept {
#if defined(__GNUC__) || defined(__clang__)
    for (std::size_t c = 0; c < k; c += 16) __builtin_prefetch(row + c, 0, Locality);
#else
    (void)row, (void)k;
#endif
  }

  /// Row r's ld code bytes, XORed with Flip (0x80 turns q into q + 128), into its qu
  /// panel (64 k per slot).
  template <std::uint8_t Flip>
  void to_panel(const std::uint8_t* src, std::size_t r) {
    const std::size_t ld = l_.ld, pu = l_.pu;
    std::uint8_t* qu = buf_.qu.data() + r / pu * pu * ld + r % pu * 64;
    for (std::size_t c = 0; c < ld; c += 64) {
      std::uint8_t* dst = qu + c * pu;
      if constexpr (Flip == 0)
        std::memcpy(dst, src + c, 64);
      else
        for (std::size_t i = 0; i < 64; ++i) dst[i] = std::uint8_t(src[c + i] ^ Flip);
    }
  }

  const matrix_view<const float>& x_;
  act_layout l_;
  matmul_act_buffers& buf_;
  mutable std::mutex bad_mu_;
  std::size_t bad_row_, bad_col_ = 0;
};

}  // namespace kernels
PARE_NAMESPACE_END
