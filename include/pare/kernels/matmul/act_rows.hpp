// Per-call preparation of the integer matmul's activations: fp32 rows quantized into the q / qu / sx / xsum buffers of matmul_acts.
#pragma once

// act_rows::quantize(lo, hi) prepares rows [lo, hi) (any thread, disjoint ranges) as
// activations.hpp and matmul_args.hpp define; a row with NaN/Inf is recorded (the
// smallest such row wins, with its first bad column) and left unprepared. The buffers
// belong to the calling thread (thread_act_buffers) and are reused across calls.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#include "pare/core/aligned_buffer.hpp"
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

class act_rows {
 public:
  /// Sizes the buffers for x against w; `unsigned_rows` also builds qu (int8 weights).
  act_rows(const matrix_view<const float>& x, const packed_weights_base& w, bool unsigned_rows)
      : x_(x), w_(w), m_(x.rows()), k_(w.k), ld_((w.kp + 63) / 64 * 64),
        pu_(m_ == 1 ? 1 : matmul_act_panel_rows), unsigned_(unsigned_rows), buf_(thread_act_buffers()),
        bad_row_(m_) {
    const std::size_t mu = (m_ + pu_ - 1) / pu_ * pu_;
    if (buf_.q.size() < m_ * ld_) buf_.q = aligned_buffer<std::int8_t>(m_ * ld_);
    if (unsigned_ && buf_.qu.size() < mu * ld_) buf_.qu = aligned_buffer<std::uint8_t>(mu * ld_);
    buf_.sx.resize(m_);
    if (w.has_offsets()) buf_.xsum.resize(m_ * w.groups);
  }

  /// Quantizes rows [lo, hi).
  void quantize(std::size_t lo, std::size_t hi) {
    std::vector<float> tmp(x_.col_stride() == 1 ? 0 : k_);
    const std::size_t ld = ld_, pu = pu_;  // locals: the byte loops below cannot alias them
    for (std::size_t r = lo; r < hi; ++r) {
      const float* row = x_.row_ptr(r);
      if (!tmp.empty()) {
        for (std::size_t c = 0; c < k_; ++c) tmp[c] = x_(r, c);
        row = tmp.data();
      }
      std::int8_t* q = buf_.q.data() + r * ld;
      std::size_t col = 0;
      const float s = quantize_activation_row(row, k_, q, &col);
      if (s < 0) {
        std::lock_guard<std::mutex> lock(bad_mu_);
        if (r < bad_row_) bad_row_ = r, bad_col_ = col;
        continue;
      }
      std::memset(q + k_, 0, ld - k_);
      buf_.sx[r] = s;
      if (unsigned_) {  // q + 128 as unsigned bytes (a flipped sign bit) into the row's qu panel
        std::uint8_t* qu = buf_.qu.data() + r / pu * pu * ld + r % pu * 64;
        for (std::size_t c = 0; c < ld; c += 64)
          for (std::size_t i = 0; i < 64; i += 8) {
            std::uint64_t v;
            std::memcpy(&v, q + c + i, 8);
            v ^= 0x8080808080808080ull;
            std::memcpy(qu + c * pu + i, &v, 8);
          }
      }
      if (w_.has_offsets()) {
        const std::size_t pg = w_.padded_group();
        for (std::size_t g = 0; g < w_.groups; ++g) {
          std::int32_t s32 = 0;
          for (std::size_t c = g * pg; c < (g + 1) * pg; ++c) s32 += q[c];
          buf_.xsum[r * w_.groups + g] = s32;
        }
      }
    }
  }

  /// Whether a row held NaN/Inf (valid once every row has been through quantize).
  bool bad() const {
    std::lock_guard<std::mutex> lock(bad_mu_);
    return bad_row_ != m_;
  }
  std::size_t bad_row() const { return bad_row_; }
  std::size_t bad_col() const { return bad_col_; }

  matmul_acts acts() const {
    return {buf_.q.data(), unsigned_ ? buf_.qu.data() : nullptr, ld_, pu_, buf_.sx.data(),
            w_.has_offsets() ? buf_.xsum.data() : nullptr};
  }

 private:
  const matrix_view<const float>& x_;
  const packed_weights_base& w_;
  std::size_t m_, k_, ld_, pu_;
  bool unsigned_;
  matmul_act_buffers& buf_;
  mutable std::mutex bad_mu_;
  std::size_t bad_row_, bad_col_ = 0;
};

}  // namespace kernels
PARE_NAMESPACE_END
