// quantized_linear: a linear layer stored as pare-quantized weights, run on pare's integer kernels where they apply.
#pragma once

// The stored form is the quantizer's quantized_tensor (codes, scales, zero points). The
// forward pass uses, in order of preference:
//   "int8 kernel"   packed int8 weights, activations quantized per row (8-bit formats,
//                   per-channel or per-group)
//   "int4 kernel"   packed int4 weights (4-bit formats, per-group with a group the kernel takes)
//   "f32 (dequantized)"  the dequantized weights with the fp32 product (any other format:
//                   2/3/5/6/7 bits, per-tensor, per-channel on the input axis …)
// backend() names the one in use. storage_bytes() is the quantized storage either way.

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pare/kernels/matmul/matmul_int.hpp"
#include "pare/kernels/matmul/weight_source.hpp"
#include "pare/model/linear.hpp"
#include "pare/quant/quantize.hpp"
#include "pare/quant/quantized_tensor.hpp"

PARE_NAMESPACE_BEGIN

class quantized_linear final : public linear_layer {
 public:
  explicit quantized_linear(quantized_tensor qt) : qt_(std::move(qt)) {
    const quant_config& c = qt_.config;
    const bool rows = (c.gran.kind == granularity_kind::per_channel && c.gran.axis == 0) ||
                      c.gran.kind == granularity_kind::per_group;
    const std::size_t g = c.gran.kind == granularity_kind::per_group ? c.gran.group_size : qt_.cols;
    if (rows && c.format.bits == 8 && (g == qt_.cols || g % 4 == 0)) {
      owned_weight_source src;
      from_quantized(qt_, src);
      int8_ = std::make_unique<packed_int8>(pack_int8(src.view));
    } else if (rows && c.format.bits == 4 && (g == qt_.cols || g % 8 == 0)) {
      owned_weight_source src;
      from_quantized(qt_, src);
      int4_ = std::make_unique<packed_int4>(pack_int4(src.view));
    } else {
      std::vector<float> w(qt_.rows * qt_.cols);
      qt_.dequantize_into(matrix_view<float>(w.data(), qt_.rows, qt_.cols));
      dense_ = std::make_unique<dense_linear>(matrix_view<const float>(w.data(), qt_.rows, qt_.cols));
    }
  }
  /// Quantizes `w` [out, in] under `cfg`.
  quantized_linear(const matrix_view<const float>& w, const quant_config& cfg) : quantized_linear(quantize(w, cfg)) {}

  std::size_t in_features() const noexcept override { return qt_.cols; }
  std::size_t out_features() const noexcept override { return qt_.rows; }
  std::string format() const override { return qt_.config.str(); }
  std::size_t storage_bytes() const noexcept override { return qt_.storage_bytes(); }
  void dense_weights(const matrix_view<float>& w) const override { qt_.dequantize_into(w); }
  void forward(const matrix_view<const float>& x, const matrix_view<float>& y) const override {
    check_forward_shapes("quantized_linear::forward", x, y);
    if (int8_) matmul(x, *int8_, y);
    else if (int4_) matmul(x, *int4_, y);
    else dense_->forward(x, y);
  }
  /// "int8 kernel", "int4 kernel" or "f32 (dequantized)".
  std::string backend() const { return int8_ ? "int8 kernel" : int4_ ? "int4 kernel" : "f32 (dequantized)"; }
  const quantized_tensor& tensor() const noexcept { return qt_; }

 private:
  quantized_tensor qt_;
  std::unique_ptr<packed_int8> int8_;
  std::unique_ptr<packed_int4> int4_;
  std::unique_ptr<dense_linear> dense_;
};

PARE_NAMESPACE_END
