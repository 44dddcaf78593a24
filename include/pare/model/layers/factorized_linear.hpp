// factorized_linear: a linear layer stored as two low-rank factors, y = (x·Bᵀ)·Aᵀ with A [out, r], B [r, in], optionally quantized.
#pragma once

// W ≈ A·B with A [out, r] and B [r, in] (from pare/lowrank/: SVD, ASVD, whitening). The
// forward pass is two linear layers in a row: t = x·Bᵀ [M, r] then y = t·Aᵀ [M, out], each
// the fp32 kernel (pare::matmul over packed_f32), or, when built with a quant_config, two
// quantized_linear layers (their int8 / int4 kernels where the config allows; a per-group
// config whose group does not divide a factor's input width — r for A — falls back to per
// output channel for that factor, as quantize_linears does). The scratch t is kept by the
// layer (resized when M grows), so forward is not reentrant on one object.
//   format()         "lowrank:r=<r>" (fp32 factors), "lowrank:r=<r>:<config>" (quantized;
//                    "lowrank:r=<r>:B=<config>:A=<config>" when the factors differ)
//   storage_bytes()  4·r·(in + out) for fp32 factors, else the two quantized tensors' bytes
//   dense_weights()  A·B (of the dequantized factors), accumulated in double
// Errors (nothing is built): shape_error when A's columns ≠ B's rows, argument_error for
// rank 0 or rank > min(out, in), value_error naming the factor and position of a
// non-finite value.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/model/layers/linear.hpp"
#include "pare/model/layers/quantized_linear.hpp"
#include "pare/quant/quant_config.hpp"

PARE_NAMESPACE_BEGIN

class factorized_linear final : public linear_layer {
 public:
  /// fp32 factors: copies a [out, r] and b [r, in] (any strides).
  factorized_linear(const matrix_view<const float>& a, const matrix_view<const float>& b) {
    check("factorized_linear", a, b);
    rank_ = b.rows();
    second_ = std::make_unique<dense_linear>(a);
    first_ = std::make_unique<dense_linear>(b);
  }
  /// Quantized factors: B and A are each stored as a quantized_linear under `cfg`.
  factorized_linear(const matrix_view<const float>& a, const matrix_view<const float>& b, const quant_config& cfg) {
    check("factorized_linear", a, b);
    cfg.validate("factorized_linear: argument 'cfg'");
    rank_ = b.rows();
    auto qb = std::make_unique<quantized_linear>(b, for_width(cfg, b.cols()));
    auto qa = std::make_unique<quantized_linear>(a, for_width(cfg, a.cols()));
    quantized_ = true;
    first_ = std::move(qb);
    second_ = std::move(qa);
  }

  std::size_t in_features() const noexcept override { return first_->in_features(); }
  std::size_t out_features() const noexcept override { return second_->out_features(); }
  std::size_t rank() const noexcept { return rank_; }
  bool quantized_factors() const noexcept { return quantized_; }
  /// The factor layers: B (in → r) and A (r → out).
  const linear_layer& factor_b() const noexcept { return *first_; }
  const linear_layer& factor_a() const noexcept { return *second_; }

  std::string format() const override {
    std::string f = "lowrank:r=" + std::to_string(rank_);
    if (!quantized_) return f;
    const std::string fb = first_->format(), fa = second_->format();
    return fb == fa ? f + ":" + fb : f + ":B=" + fb + ":A=" + fa;
  }
  /// "f32 x2" or the two quantized layers' backends ("int8 kernel x2", "B: …, A: …").
  std::string backend() const {
    if (!quantized_) return "f32 x2";
    const std::string bb = static_cast<const quantized_linear&>(*first_).backend();
    const std::string ba = static_cast<const quantized_linear&>(*second_).backend();
    return bb == ba ? bb + " x2" : "B: " + bb + ", A: " + ba;
  }
  std::size_t storage_bytes() const noexcept override { return first_->storage_bytes() + second_->storage_bytes(); }
  /// Parameters stored: r·(in + out).
  std::size_t parameters() const noexcept { return rank_ * (in_features() + out_features()); }

  void dense_weights(const matrix_view<float>& w) const override {
    check_same_shape("factorized_linear::dense_weights: argument 'w'", shape_t{out_features(), in_features()}, w.shape());
    const std::size_t out = out_features(), in = in_features(), r = rank_;
    std::vector<float> a(out * r), b(r * in);
    second_->dense_weights(matrix_view<float>(a.data(), out, r));
    first_->dense_weights(matrix_view<float>(b.data(), r, in));
    std::vector<double> row(in);
    for (std::size_t i = 0; i < out; ++i) {
      std::fill(row.begin(), row.end(), 0.0);
      for (std::size_t k = 0; k < r; ++k) {
        const double aik = a[i * r + k];
        const float* bk = b.data() + k * in;
        for (std::size_t j = 0; j < in; ++j) row[j] += aik * double(bk[j]);
      }
      for (std::size_t j = 0; j < in; ++j) w(i, j) = static_cast<float>(row[j]);
    }
  }

  void forward(const matrix_view<const float>& x, const matrix_view<float>& y) const override {
    check_forward_shapes("factorized_linear::forward", x, y);
    const std::size_t m = x.rows();
    if (scratch_.size() < m * rank_) scratch_.resize(m * rank_);
    const matrix_view<float> t(scratch_.data(), m, rank_);
    first_->forward(x, t);
    second_->forward(matrix_view<const float>(t), y);
  }

 private:
  static void check(const char* where, const matrix_view<const float>& a, const matrix_view<const float>& b) {
    if (a.cols() != b.rows())
      detail::fail<shape_error>(where, ": arguments 'a' and 'b': expected a [out, r] and b [r, in], got a ", a.shape(),
                                " and b ", b.shape());
    const std::size_t r = b.rows(), out = a.rows(), in = b.cols();
    if (out == 0 || in == 0)
      detail::fail<shape_error>(where, ": arguments 'a' and 'b': expected non-empty factors, got a ", a.shape(), " and b ",
                                b.shape());
    if (r == 0 || r > std::min(out, in))
      detail::fail<argument_error>(where, ": argument 'rank': expected 1 ≤ rank ≤ min(out, in) = ", std::min(out, in),
                                   ", got ", r);
    detail::check_finite_factor(where, "a", a);
    detail::check_finite_factor(where, "b", b);
  }
  /// cfg for a factor with `width` inputs: per output channel when a group does not divide it.
  static quant_config for_width(const quant_config& cfg, std::size_t width) {
    quant_config c = cfg;
    if (c.gran.kind == granularity_kind::per_group && width % c.gran.group_size != 0) c.gran = granularity::channel(0);
    return c;
  }

  std::size_t rank_ = 0;
  bool quantized_ = false;
  std::unique_ptr<linear_layer> first_;   // B: in → r
  std::unique_ptr<linear_layer> second_;  // A: r → out
  mutable std::vector<float> scratch_;
};

PARE_NAMESPACE_END
