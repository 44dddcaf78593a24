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
    std::vector<float> tmp(x_.col_stride() == 1 ? 0 : k);
    // Without signed rows the codes go to an L1 row on their way into the qu panel.
    std::vector<std::int8_t> scratch(l_.signed_rows ? 0 : ld);
    for (std::size_t r = lo; r < hi; ++r) {
      const float* row = x_.row_ptr(r);
      if (!tmp.empty()) {
        for (std::size_t c = 0; c < k; ++c) tmp[c] = x_(r, c);
        row = tmp.data();
      } else if (k <= nta_max_k) {
        prefetch_once(row, k);
      }
      std::int8_t* q = l_.signed_rows ? buf_.q.data() + r * ld : scratch.data();
      std::size_t col = 0;
      const float s = quantize_activation_row(row, k, q, &col);
      if (s < 0) {
        std::lock_guard<std::mutex> lock(bad_mu_);
        if (r < bad_row_) bad_row_ = r, bad_col_ = col;
        continue;
      }
      std::memset(q + k, 0, ld - k);
      buf_.sx[r] = s;
      if (l_.unsigned_rows) to_panel(q, r);
      if (l_.sums)
        for (std::size_t g = 0; g < l_.groups; ++g) {
          std::int32_t s32 = 0;
          for (std::size_t c = g * l_.group; c < (g + 1) * l_.group; ++c) s32 += q[c];
          buf_.xsum[r * l_.groups + g] = s32;
        }
    }
  }

  /// Rows per chunk when threads share the quantization (~16K values).
  static std::size_t chunk_rows(std::size_t k) { return std::max<std::size_t>(1, 16384 / std::max<std::size_t>(1, k)); }

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
  /// Requests the row's lines as read-once (non-temporal where the CPU has it): the
  /// matmul reads x once, so a large x does not evict the weights from the shared cache.
  static void prefetch_once(const float* row, std::size_t k) noexcept {
#if defined(__GNUC__) || defined(__clang__)
    for (std::size_t c = 0; c < k; c += 16) __builtin_prefetch(row + c, 0, 0);
#else
    (void)row, (void)k;
#endif
  }

  /// Row r's ld codes as q + 128 (a flipped sign bit) into its qu panel (64 k per slot).
  void to_panel(const std::int8_t* src, std::size_t r) {
    const std::size_t ld = l_.ld, pu = l_.pu;
    std::uint8_t* qu = buf_.qu.data() + r / pu * pu * ld + r % pu * 64;
    for (std::size_t c = 0; c < ld; c += 64)
      for (std::size_t i = 0; i < 64; i += 8) {
        std::uint64_t v;
        std::memcpy(&v, src + c + i, 8);
        v ^= 0x8080808080808080ull;
        std::memcpy(qu + c * pu + i, &v, 8);
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
