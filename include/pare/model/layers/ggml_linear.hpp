// ggml_linear: a linear layer stored in one of llama.cpp's block formats (bytes as in a GGUF file), run on pare's integer kernels.
#pragma once

// The stored form is the ggml_tensor (exactly the GGUF tensor bytes). The forward pass:
//   "int8 kernel"  formats with 8-bit codes (q8_0, q5_0, q5_1, q5_K, q6_K, iq4_nl)
//   "int4 kernel"  formats with 4-bit codes (q4_0, q4_1, q4_K, q2_K, q3_K)
//   "f32 (dequantized)"  f16 and bf16
// through ggml::to_weight_source (exact dequantized values; activations are quantized
// per row to int8 by the integer kernels). format() is "ggml:<type>".

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pare/ggml/quantize.hpp"
#include "pare/ggml/weight_source.hpp"
#include "pare/kernels/matmul/matmul_int.hpp"
#include "pare/model/layers/linear.hpp"

PARE_NAMESPACE_BEGIN

class ggml_linear final : public linear_layer {
 public:
  explicit ggml_linear(ggml::ggml_tensor q) : q_(std::move(q)) {
    const int bits = ggml::weight_source_bits(q_.format());
    if (bits) {
      owned_weight_source src;
      ggml::to_weight_source(q_, src);
      if (bits == 8) int8_ = std::make_unique<packed_int8>(pack_int8(src.view));
      else int4_ = std::make_unique<packed_int4>(pack_int4(src.view));
    } else {
      const std::vector<float> w = q_.dequantize();
      dense_ = std::make_unique<dense_linear>(matrix_view<const float>(w.data(), q_.rows(), q_.cols()));
    }
  }
  /// Quantizes w [out, in] to `t` (imatrix: ggml importance weights per input column, or empty).
  ggml_linear(const matrix_view<const float>& w, ggml::type t, const std::vector<float>& imatrix = {})
      : ggml_linear(ggml::quantize(w, t, imatrix)) {}

  std::size_t in_features() const noexcept override { return q_.cols(); }
  std::size_t out_features() const noexcept override { return q_.rows(); }
  std::string format() const override { return std::string("ggml:") + ggml::to_string(q_.format()); }
  std::size_t storage_bytes() const noexcept override { return q_.bytes().size(); }
  void dense_weights(const matrix_view<float>& w) const override { q_.dequantize_into(w); }
  void forward(const matrix_view<const float>& x, const matrix_view<float>& y) const override {
    check_forward_shapes("ggml_linear::forward", x, y);
    if (int8_) matmul(x, *int8_, y);
    else if (int4_) matmul(x, *int4_, y);
    else dense_->forward(x, y);
  }
  std::string backend() const { return int8_ ? "int8 kernel" : int4_ ? "int4 kernel" : "f32 (dequantized)"; }
  const ggml::ggml_tensor& tensor() const noexcept { return q_; }

 private:
  ggml::ggml_tensor q_;
  std::unique_ptr<packed_int8> int8_;
  std::unique_ptr<packed_int4> int4_;
  std::unique_ptr<dense_linear> dense_;
};

PARE_NAMESPACE_END
