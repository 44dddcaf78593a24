// quantized_tensor: the value a quantizer returns (packed codes, scales, zero points, shape, group size).
#pragma once

// Layout (normative):
//   codes        rows × row_bytes() bytes; row i starts at codes.data() + i * row_bytes().
//                Within a row the codes are packed as in pare/core/dtypes/packed_int.hpp
//                (4-bit: element 2k in the low nibble of byte k; 2-, 3-, 5-, 6-, 7-bit
//                likewise as a little-endian bit stream; 8-bit: one byte each, two's
//                complement for signed formats).
//   scales,      one entry per quantization group, row-major over groups (float in memory;
//                under f16scale every entry is exactly a binary16 value and is stored in 2 bytes):
//   zero_points    per_tensor: 1; per_channel axis 0: rows; axis 1: cols;
//                  per_group G: rows × (cols / G), entry [i * (cols / G) + j / G].
// Weight matrices are [out_features, in_features]; groups run along in_features.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/dtypes/packed_int.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/kernels/quantize_row.hpp"
#include "pare/quant/quant_config.hpp"

#if __has_include(<xtensor/containers/xtensor.hpp>)
#include <xtensor/containers/xtensor.hpp>
#else
#include <xtensor/xtensor.hpp>
#endif

PARE_NAMESPACE_BEGIN

namespace detail {
/// Whether a matrix-level kernel writing `bytes` should use non-temporal (streaming)
/// stores: outputs of 8 MiB or more are unlikely to be read back from cache.
inline bool is_large_output(std::size_t bytes) noexcept { return bytes >= (std::size_t(8) << 20); }
}  // namespace detail

/// Parameter entries per row (per_channel axis 1 has one per column, shared by all rows).
inline std::size_t groups_per_row_for(const granularity& g, std::size_t cols) {
  switch (g.kind) {
    case granularity_kind::per_tensor: return 1;
    case granularity_kind::per_channel: return g.axis == 0 ? 1 : cols;
    case granularity_kind::per_group: return cols / g.group_size;
  }
  return 1;
}

/// Index into the scales/zero points of element (i, j) of a matrix with `cols` columns.
inline std::size_t param_index_for(const granularity& g, std::size_t cols, std::size_t i, std::size_t j) {
  switch (g.kind) {
    case granularity_kind::per_tensor: return 0;
    case granularity_kind::per_channel: return g.axis == 0 ? i : j;
    case granularity_kind::per_group: return i * (cols / g.group_size) + j / g.group_size;
  }
  return 0;
}

/// Number of (scale, zero point) entries of a rows × cols matrix.
inline std::size_t param_count_for(const granularity& g, std::size_t rows, std::size_t cols) {
  if (g.kind == granularity_kind::per_tensor) return 1;
  return g.kind == granularity_kind::per_channel && g.axis == 1 ? cols : rows * groups_per_row_for(g, cols);
}

/// The row kernels' parameters for row i (pointers into the parameter arrays).
inline kernels::row_qparams row_params_for(const int_format& fmt, const granularity& g, std::size_t cols, std::size_t i,
                                           const float* scales, const float* inv, const std::int32_t* zeros) {
  kernels::row_qparams p;
  const std::size_t k = g.kind == granularity_kind::per_channel && g.axis == 1 ? 0 : param_index_for(g, cols, i, 0);
  p.scale = scales + k;
  p.inv_scale = inv + k;
  p.zero = zeros + k;
  p.qmin = fmt.qmin();
  p.qmax = fmt.qmax();
  switch (g.kind) {
    case granularity_kind::per_tensor: p.group = cols; break;
    case granularity_kind::per_channel: p.group = g.axis == 0 ? cols : 1; break;
    case granularity_kind::per_group: p.group = g.group_size; break;
  }
  if (p.group == 0) p.group = 1;
  return p;
}

/// A quantized matrix. Owns its codes and parameters; copyable and movable.
class quantized_tensor {
 public:
  quant_config config;
  std::size_t rows = 0;
  std::size_t cols = 0;
  aligned_buffer<std::uint8_t> codes;
  std::vector<float> scales;
  std::vector<std::int32_t> zero_points;

  /// Packed bytes of one row.
  std::size_t row_bytes() const { return packed_row_bytes(config.format.bits, cols); }
  shape_t shape() const { return shape_t{rows, cols}; }
  std::size_t groups_per_row() const { return groups_per_row_for(config.gran, cols); }
  /// Index into scales/zero_points of element (i, j).
  std::size_t param_index(std::size_t i, std::size_t j) const { return param_index_for(config.gran, cols, i, j); }
  /// The (scale, zero point) that element (i, j) uses.
  qparams params_at(std::size_t i, std::size_t j) const {
    const std::size_t k = param_index(i, j);
    return qparams{scales[k], zero_points[k]};
  }
  /// The integer code q of element (i, j).
  int code(std::size_t i, std::size_t j) const {
    return get_code(config.format.bits, config.format.is_signed, codes.data() + i * row_bytes(), j);
  }
  /// The dequantized value of element (i, j).
  float value(std::size_t i, std::size_t j) const {
    const qparams p = params_at(i, j);
    return dequantize_value(code(i, j), p.scale, p.zero_point);
  }

  /// Bytes as pare stores them: codes + scales (config.scale_bytes() each: 4 for float32,
  /// 2 under f16scale) + zero points (one byte each, asymmetric schemes only; symmetric
  /// zero points are implied by the format).
  std::size_t storage_bytes() const {
    std::size_t b = rows * row_bytes() + scales.size() * config.scale_bytes();
    if (config.scheme == scheme_kind::asymmetric) b += zero_points.size();
    return b;
  }
  /// Stored bits per weight, scales and zero points included.
  double bits_per_weight() const {
    return rows * cols == 0 ? 0.0 : 8.0 * static_cast<double>(storage_bytes()) / static_cast<double>(rows * cols);
  }

  /// Writes the dequantized matrix into `out` (same shape; any strides).
  void dequantize_into(matrix_view<float> out) const;

  /// The dequantized matrix.
  xt::xtensor<float, 2> dequantize() const {
    xt::xtensor<float, 2> out = xt::empty<float>({rows, cols});
    dequantize_into(matrix_view<float>(out.data(), rows, cols));
    return out;
  }

  /// Row parameters for the kernels, with inverse scales taken from `inv` (indexed like scales).
  kernels::row_qparams row_params(std::size_t i, const float* inv) const {
    return row_params_for(config.format, config.gran, cols, i, scales.data(), inv, zero_points.data());
  }
};

inline void quantized_tensor::dequantize_into(matrix_view<float> out) const {
  check_same_shape("quantized_tensor::dequantize_into: argument 'out'", shape(), out.shape());
  const int bits = config.format.bits;
  const bool sgn = config.format.is_signed;
  const std::size_t rb = row_bytes();
  const bool direct = out.has_contiguous_rows();
  const bool stream = direct && detail::is_large_output(rows * cols * sizeof(float));
  parallel_for(0, rows, std::max<std::size_t>(1, 16384 / std::max<std::size_t>(1, cols)), [&](std::size_t lo, std::size_t hi) {
    std::vector<std::uint8_t> unpacked(bits == 4 || bits == 8 ? 0 : cols);
    std::vector<float> tmp(direct ? 0 : cols);
    for (std::size_t i = lo; i < hi; ++i) {
      const kernels::row_qparams p = row_params(i, scales.data());  // inv unused by dequantize
      float* dst = direct ? out.row_ptr(i) : tmp.data();
      const std::uint8_t* src = codes.data() + i * rb;
      if (bits == 4) {
        if (stream) kernels::dequantize_row_int4_streaming(src, cols, p, sgn, dst);
        else kernels::dequantize_row_int4(src, cols, p, sgn, dst);
      } else if (bits == 8) {  // one code byte per element
        if (stream) kernels::dequantize_row_streaming(src, cols, p, sgn, dst);
        else kernels::dequantize_row(src, cols, p, sgn, dst);
      } else {
        unpack_codes(bits, sgn, src, cols, unpacked.data());
        kernels::dequantize_row(unpacked.data(), cols, p, sgn, dst);
      }
      if (!direct)
        for (std::size_t j = 0; j < cols; ++j) out(i, j) = tmp[j];
    }
  });
}

PARE_NAMESPACE_END
