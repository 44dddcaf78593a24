// quantized_linear: a linear layer stored as pare-quantized weights, run on pare's integer kernels where they apply.
#pragma once

// The forward pass uses, as int_kernel_for (pare/quant/kernel_weights.hpp) decides:
//   "int8 kernel"   packed int8 weights, activations quantized per row (8-bit formats,
//                   per-channel or per-group)
//   "int4 kernel"   packed int4 weights (4-bit formats, per-group with a group the kernel takes)
//   "f32 (dequantized)"  the dequantized weights with the fp32 product (any other format:
//                   2/3/5/6/7 bits, per-tensor, per-channel on the input axis …)
// backend() names the one in use. One copy of the codes is kept: the packed weights are
// packed straight from the quantizer's codes, which are then released; tensor() and
// dense_weights() read them back from the packing (exactly). storage_bytes() is the
// quantized storage either way.

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pare/kernels/matmul/matmul_int.hpp"
#include "pare/model/layers/linear.hpp"
#include "pare/quant/kernel_weights.hpp"
#include "pare/quant/quantize.hpp"
#include "pare/quant/quantized_tensor.hpp"

PARE_NAMESPACE_BEGIN

class quantized_linear final : public linear_layer {
 public:
  explicit quantized_linear(quantized_tensor qt) : meta_(std::move(qt)) {
    switch (int_kernel_for(meta_.config, meta_.cols)) {
      case int_kernel::int8: int8_ = std::make_unique<packed_int8>(pack_int8(meta_)); break;
      case int_kernel::int4: int4_ = std::make_unique<packed_int4>(pack_int4(meta_)); break;
      case int_kernel::none: {
        std::vector<float> w(meta_.rows * meta_.cols);
        meta_.dequantize_into(matrix_view<float>(w.data(), meta_.rows, meta_.cols));
        dense_ = std::make_unique<dense_linear>(matrix_view<const float>(w.data(), meta_.rows, meta_.cols));
        return;  // the dense path keeps the codes (its fp32 copy is not the stored form)
      }
    }
    meta_.codes = aligned_buffer<std::uint8_t>();  // the packed weights hold them now
  }
  /// Quantizes `w` [out, in] under `cfg`.
  quantized_linear(const matrix_view<const float>& w, const quant_config& cfg) : quantized_linear(quantize(w, cfg)) {}

  std::size_t in_features() const noexcept override { return meta_.cols; }
  std::size_t out_features() const noexcept override { return meta_.rows; }
  std::string format() const override { return meta_.config.str(); }
  std::size_t storage_bytes() const noexcept override { return meta_.storage_bytes(); }
  void dense_weights(const matrix_view<float>& w) const override { tensor().dequantize_into(w); }
  void forward(const matrix_view<const float>& x, const matrix_view<float>& y) const override {
    check_forward_shapes("quantized_linear::forward", x, y);
    if (int8_) matmul(x, *int8_, y);
    else if (int4_) matmul(x, *int4_, y);
    else dense_->forward(x, y);
  }
  /// "int8 kernel", "int4 kernel" or "f32 (dequantized)".
  std::string backend() const { return int8_ ? "int8 kernel" : int4_ ? "int4 kernel" : "f32 (dequantized)"; }
  /// The quantized weights (codes read back from the packing when a kernel holds them).
  quantized_tensor tensor() const {
    if (int8_) return unpack_codes(meta_, *int8_);
    if (int4_) return unpack_codes(meta_, *int4_);
    return meta_;
  }

 private:
  quantized_tensor meta_;  // config, shape, scales, zero points; codes only on the dense path
  std::unique_ptr<packed_int8> int8_;
  std::unique_ptr<packed_int4> int4_;
  std::unique_ptr<dense_linear> dense_;
};

PARE_NAMESPACE_END
