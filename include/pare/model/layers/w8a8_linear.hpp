// w8a8_linear: int8 weights per output channel (symmetric) times int8 activations, per token at run time or with one static calibrated scale, on pare's int8 kernels.
#pragma once

// Weights: int8:per_channel:sym (w ≈ scale_i · q_ij, q ∈ [−127, 127]), packed for the int8
// matmul kernels. Activations (pare/kernels/matmul/activations.hpp):
//   dynamic   each row its own s_x = max|x_row| / 127 at run time (per token): the int8
//             kernel's own activation quantization, pare::matmul
//   static    one s_x for every row, fixed at construction from a calibrated range:
//             s_x = act_max / 127 (act_max the largest |x| seen on calibration data);
//             values beyond ±act_max saturate at ±127; pare::matmul_static
// Both run int8 × int8 products with exact int32 sums. The layer is not a GGUF type
// (the model cannot be written as GGUF while it holds one).

#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "pare/core/affine.hpp"
#include "pare/kernels/matmul/matmul_int.hpp"
#include "pare/model/layers/linear.hpp"
#include "pare/quant/kernel_weights.hpp"
#include "pare/quant/quantize.hpp"
#include "pare/quant/quantized_tensor.hpp"

PARE_NAMESPACE_BEGIN

/// How a w8a8_linear quantizes its input rows.
enum class w8a8_activations { dynamic_per_token, static_per_tensor };

inline const char* to_string(w8a8_activations a) noexcept {
  return a == w8a8_activations::dynamic_per_token ? "dynamic" : "static";
}

class w8a8_linear final : public linear_layer {
 public:
  /// The weight config: int8, one scale per output channel, symmetric, min-max, nearest.
  static quant_config weight_config() { return quant_config::parse("int8:per_channel:sym"); }

  /// Quantizes w [out, in] (weight_config()); with static activations `act_max` is the
  /// calibrated max|x| of the input (0: a range of 127, the scale 1, as an all-zero row
  /// gets). argument_error naming 'act_max' unless it is finite and ≥ 0; the quantizer's
  /// errors for w (value_error for NaN/Inf).
  w8a8_linear(const matrix_view<const float>& w, w8a8_activations mode, double act_max = 0)
      : meta_(quantize(w, weight_config())), mode_(mode) {
    if (!(act_max >= 0.0 && std::isfinite(act_max)))
      detail::fail<argument_error>("pare::w8a8_linear: argument 'act_max': expected a finite range >= 0, got ", act_max);
    if (mode_ == w8a8_activations::static_per_tensor) {
      // ≥ FLT_MIN, so 1/s_x is finite; 1 for a zero range
      act_scale_ = params_from_range(-act_max, act_max, int_format{8, true}, scheme_kind::symmetric).scale;
    }
    packed_ = std::make_unique<packed_int8>(pack_int8(meta_));
    meta_.codes = aligned_buffer<std::uint8_t>();  // the packing holds them
  }

  std::size_t in_features() const noexcept override { return meta_.cols; }
  std::size_t out_features() const noexcept override { return meta_.rows; }
  /// "w8a8:dynamic" or "w8a8:static".
  std::string format() const override { return std::string("w8a8:") + to_string(mode_); }
  /// The int8 codes and row scales, plus the static activation scale.
  std::size_t storage_bytes() const noexcept override {
    return meta_.storage_bytes() + (mode_ == w8a8_activations::static_per_tensor ? sizeof(float) : 0);
  }
  void dense_weights(const matrix_view<float>& w) const override { tensor().dequantize_into(w); }
  void forward(const matrix_view<const float>& x, const matrix_view<float>& y) const override {
    check_forward_shapes("w8a8_linear::forward", x, y);
    if (mode_ == w8a8_activations::static_per_tensor) matmul_static(x, *packed_, act_scale_, y);
    else matmul(x, *packed_, y);
  }
  /// "int8 kernel, int8 activations per token" or "... static per tensor".
  std::string backend() const {
    return mode_ == w8a8_activations::static_per_tensor ? "int8 kernel, static int8 activations"
                                                        : "int8 kernel, dynamic int8 activations";
  }
  w8a8_activations activations() const noexcept { return mode_; }
  /// The static s_x (0 with dynamic activations).
  float act_scale() const noexcept { return act_scale_; }
  /// The int8 weights (codes read back from the packing).
  quantized_tensor tensor() const { return unpack_codes(meta_, *packed_); }

 private:
  quantized_tensor meta_;  // config, shape, scales (codes released after packing)
  w8a8_activations mode_;
  float act_scale_ = 0;
  std::unique_ptr<packed_int8> packed_;
};

PARE_NAMESPACE_END
