// Which quantizer configurations pare's integer matmul kernels run, and packing a quantized_tensor for them straight from its code bytes.
#pragma once

// int_kernel_for(config, cols) is the one rule: an 8-bit format runs on the int8 kernel
// and a 4-bit one on the int4 kernel when its parameters are per output row (per_channel
// axis 0, or per_group along the input axis) in groups the packers take
// (kernels::packable_group: K itself or a multiple of 4 / 8); everything else (2, 3, 5, 6,
// 7 bits, per_tensor, per_channel axis 1, other groups) has no integer kernel.
//
// kernel_weights_of(qt) views qt's codes in place as a weight_source (rows of
// qt.row_bytes(); 4-bit codes as packed nibbles) with the format's shift folded into the
// offsets: int8 codes stay, uint8 codes read as q - 128 (flip 0x80), int4 nibbles as
// q + 8 (flip 0x8), uint4 as q, and offset = -scale · (zero_point + shift), so
// scale · code + offset = scale · (q - zero_point) for every code. pack_int8(qt) /
// pack_int4(qt) pack from that view without an intermediate copy of the codes, and
// unpack_codes(meta, packed) gives the quantized_tensor back (codes exactly; the
// parameters come from `meta`).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pare/core/dtypes/packed_int.hpp"
#include "pare/core/error.hpp"
#include "pare/kernels/matmul/packed_weights.hpp"
#include "pare/kernels/matmul/weight_source.hpp"
#include "pare/quant/quantized_tensor.hpp"

PARE_NAMESPACE_BEGIN

/// The integer matmul kernel a configuration runs on (the bits of its packed codes).
enum class int_kernel { none = 0, int4 = 4, int8 = 8 };

/// The kernel for `cfg` on weights with `cols` input features (see the header comment).
inline int_kernel int_kernel_for(const quant_config& cfg, std::size_t cols) noexcept {
  const int bits = cfg.format.bits;
  if (bits != 8 && bits != 4) return int_kernel::none;
  std::size_t group = 0;
  if (cfg.gran.kind == granularity_kind::per_channel && cfg.gran.axis == 0) group = cols;
  else if (cfg.gran.kind == granularity_kind::per_group) group = cfg.gran.group_size;
  if (!packable_group(bits, group, cols)) return int_kernel::none;
  return bits == 8 ? int_kernel::int8 : int_kernel::int4;
}

/// qt's codes as a weight_source, with the offsets it needs (see the header comment).
struct kernel_weights {
  std::vector<float> offsets;
  weight_source view;

  kernel_weights() = default;
  kernel_weights(const kernel_weights&) = delete;
  kernel_weights& operator=(const kernel_weights&) = delete;
};

namespace detail {
/// The code shift of qt's format in the kernels' form: q + shift is the kernel's code.
inline int kernel_code_shift(const int_format& f) noexcept {
  return f.bits == 8 ? (f.is_signed ? 0 : -128) : (f.is_signed ? 8 : 0);
}
}  // namespace detail

/// Fills `out` with qt's weight_source; unsupported_error naming the config when
/// int_kernel_for(qt.config, qt.cols) is none. `out.view` points into qt and `out`.
inline void kernel_weights_of(const quantized_tensor& qt, kernel_weights& out) {
  const quant_config& c = qt.config;
  if (int_kernel_for(c, qt.cols) == int_kernel::none)
    detail::fail<unsupported_error>("pare::kernel_weights_of: argument 'qt': expected an 8- or 4-bit format per output "
                                    "channel or per group of K or a multiple of 4 (8-bit) / 8 (4-bit), got ", c.str(),
                                    " with K = ", qt.cols);
  const int bits = c.format.bits;
  const int shift = detail::kernel_code_shift(c.format);
  const std::size_t group = c.gran.kind == granularity_kind::per_group ? c.gran.group_size : qt.cols;
  out.offsets.resize(qt.scales.size());
  for (std::size_t g = 0; g < qt.scales.size(); ++g)
    out.offsets[g] = -qt.scales[g] * static_cast<float>(qt.zero_points[g] + shift);
  const std::uint8_t flip = bits == 8 ? (c.format.is_signed ? 0x00 : 0x80) : (c.format.is_signed ? 0x08 : 0x00);
  out.view = weight_source{qt.rows, qt.cols, group, bits, qt.codes.data(), qt.row_bytes(), bits == 4, flip,
                           qt.scales.data(), out.offsets.data()};
}

/// Packs an 8-bit quantized_tensor for the int8 kernels (unsupported_error as kernel_weights_of).
inline packed_int8 pack_int8(const quantized_tensor& qt) {
  kernel_weights kw;
  kernel_weights_of(qt, kw);
  return pack_int8(kw.view);
}

/// Packs a 4-bit quantized_tensor for the int4 kernels (unsupported_error as kernel_weights_of).
inline packed_int4 pack_int4(const quantized_tensor& qt) {
  kernel_weights kw;
  kernel_weights_of(qt, kw);
  return pack_int4(kw.view);
}

/// `meta` (config, shape, scales, zero points) with its codes read back from `p`, the
/// packing of a tensor with that config: the quantized_tensor that was packed.
template <class Packed>
quantized_tensor unpack_codes(const quantized_tensor& meta, const Packed& p) {
  if (p.n != meta.rows || p.k != meta.cols)
    detail::fail<shape_error>("pare::unpack_codes: arguments 'meta' and 'p': expected the same shape, got ", meta.shape(),
                              " and [", p.n, ", ", p.k, "]");
  quantized_tensor out;
  out.config = meta.config;
  out.rows = meta.rows;
  out.cols = meta.cols;
  out.scales = meta.scales;
  out.zero_points = meta.zero_points;
  const std::size_t rb = out.row_bytes();
  out.codes = aligned_buffer<std::uint8_t>(out.rows * rb);
  std::fill(out.codes.data(), out.codes.data() + out.codes.size(), std::uint8_t(0));
  const int shift = detail::kernel_code_shift(out.config.format);
  for (std::size_t i = 0; i < out.rows; ++i)
    for (std::size_t j = 0; j < out.cols; ++j)
      set_code(out.config.format.bits, out.config.format.is_signed, out.codes.data() + i * rb, j, p.code(i, j) - shift);
  return out;
}

PARE_NAMESPACE_END
