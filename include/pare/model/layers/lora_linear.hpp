// lora_linear: a linear layer of any kind (dense, pare-quantized, ggml) plus a low-rank adapter, y = base(x) + s·(x·Aᵀ)·Bᵀ.
#pragma once

// LoRA (Hu et al. 2021) kept as an adapter: the base layer stays exactly as stored (its
// bytes and its kernels untouched; QLoRA-style when it is quantized), and the adapter adds
//     y = base(x) + s · B·(A·x)      per row x, A [r, in], B [out, r], s = α / r
// The adapter path runs in fp32 on the fp32 kernels: t = x·Aᵀ [M, r], u = t·Bᵀ [M, out],
// y += s·u. The scratch t, u is kept by the layer (resized when M grows), so forward is
// not reentrant on one object.
//   format()         "<base format>+lora:r=<r>", e.g. "ggml:q4_0+lora:r=8"
//   storage_bytes()  the base's bytes + 4·r·(in + out) (fp32 adapter)
//   dense_weights()  base dense + s·B·A, the product and the sum in double, rounded once
// Errors (nothing is built or changed): argument_error for a null base, rank 0, rank >
// min(out, in), a scale that is not finite and > 0; shape_error when A is not [r, in] or
// B not [out, r]; value_error naming the factor and position of a non-finite value.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/model/layers/linear.hpp"

PARE_NAMESPACE_BEGIN

class lora_linear final : public linear_layer {
 public:
  /// Wraps `base` with A [r, in] and B [out, r] (copied, any strides) and scale s.
  lora_linear(std::unique_ptr<linear_layer> base, const matrix_view<const float>& a, const matrix_view<const float>& b,
              float scale) {
    if (!base) detail::fail<argument_error>("lora_linear: argument 'base': expected a linear layer, got null");
    check(*base, a, b, scale, "lora_linear");
    base_ = std::move(base);
    store(a, b, scale);
  }

  std::size_t in_features() const noexcept override { return base_->in_features(); }
  std::size_t out_features() const noexcept override { return base_->out_features(); }
  std::size_t rank() const noexcept { return rank_; }
  float scale() const noexcept { return scale_; }
  /// The wrapped layer (its stored form is untouched by the adapter).
  const linear_layer& base() const noexcept { return *base_; }
  /// Hands the base layer back; the lora_linear is unusable afterwards.
  std::unique_ptr<linear_layer> release_base() noexcept { return std::move(base_); }
  /// A [r, in] and B [out, r], row-major.
  const std::vector<float>& a() const noexcept { return a_; }
  const std::vector<float>& b() const noexcept { return b_; }

  /// Replaces A, B and s (same checks as the constructor; nothing changes on error).
  void set_adapter(const matrix_view<const float>& a, const matrix_view<const float>& b, float scale) {
    check(*base_, a, b, scale, "lora_linear::set_adapter");
    store(a, b, scale);
  }

  std::string format() const override { return base_->format() + "+lora:r=" + std::to_string(rank_); }
  std::size_t storage_bytes() const noexcept override { return base_->storage_bytes() + adapter_bytes(); }
  /// Bytes of the fp32 adapter: 4·r·(in + out).
  std::size_t adapter_bytes() const noexcept { return (a_.size() + b_.size()) * sizeof(float); }
  /// 8·storage_bytes() / (out·in).
  double bits_per_weight() const noexcept {
    return 8.0 * double(storage_bytes()) / double(in_features() * out_features());
  }

  void dense_weights(const matrix_view<float>& w) const override {
    check_same_shape("lora_linear::dense_weights: argument 'w'", shape_t{out_features(), in_features()}, w.shape());
    base_->dense_weights(w);
    const std::size_t out = out_features(), in = in_features(), r = rank_;
    std::vector<double> row(in);
    for (std::size_t i = 0; i < out; ++i) {
      std::fill(row.begin(), row.end(), 0.0);
      for (std::size_t k = 0; k < r; ++k) {
        const double bik = b_[i * r + k];
        const float* ak = a_.data() + k * in;
        for (std::size_t j = 0; j < in; ++j) row[j] += bik * double(ak[j]);
      }
      for (std::size_t j = 0; j < in; ++j) w(i, j) = static_cast<float>(double(w(i, j)) + double(scale_) * row[j]);
    }
  }

  void forward(const matrix_view<const float>& x, const matrix_view<float>& y) const override {
    check_forward_shapes("lora_linear::forward", x, y);
    base_->forward(x, y);
    const std::size_t m = x.rows(), out = out_features();
    if (t_.size() < m * rank_) t_.resize(m * rank_);
    if (u_.size() < m * out) u_.resize(m * out);
    const matrix_view<float> t(t_.data(), m, rank_), u(u_.data(), m, out);
    a_layer_->forward(x, t);
    b_layer_->forward(matrix_view<const float>(t), u);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < out; ++j) y(i, j) += scale_ * u(i, j);
  }

 private:
  static void check(const linear_layer& base, const matrix_view<const float>& a, const matrix_view<const float>& b,
                    float scale, const char* where) {
    const std::size_t out = base.out_features(), in = base.in_features(), r = a.rows();
    if (a.cols() != in || b.rows() != out || b.cols() != r)
      detail::fail<shape_error>(where, ": arguments 'a' and 'b': expected a [r, ", in, "] and b [", out,
                                ", r] for a base layer [", out, ", ", in, "], got a ", a.shape(), " and b ", b.shape());
    if (r == 0 || r > std::min(out, in))
      detail::fail<argument_error>(where, ": argument 'rank': expected 1 ≤ rank ≤ min(out, in) = ", std::min(out, in),
                                   ", got ", r);
    if (!(std::isfinite(scale) && scale > 0.0f))
      detail::fail<argument_error>(where, ": argument 'scale': expected a finite value > 0, got ", scale);
    detail::check_finite_factor(where, "a", a);
    detail::check_finite_factor(where, "b", b);
  }
  void store(const matrix_view<const float>& a, const matrix_view<const float>& b, float scale) {
    std::vector<float> av(a.rows() * a.cols()), bv(b.rows() * b.cols());
    for (std::size_t i = 0; i < a.rows(); ++i)
      for (std::size_t j = 0; j < a.cols(); ++j) av[i * a.cols() + j] = a(i, j);
    for (std::size_t i = 0; i < b.rows(); ++i)
      for (std::size_t j = 0; j < b.cols(); ++j) bv[i * b.cols() + j] = b(i, j);
    auto al = std::make_unique<dense_linear>(matrix_view<const float>(av.data(), a.rows(), a.cols()));
    auto bl = std::make_unique<dense_linear>(matrix_view<const float>(bv.data(), b.rows(), b.cols()));
    // Nothing above changes *this; from here on nothing throws.
    rank_ = a.rows();
    scale_ = scale;
    a_ = std::move(av);
    b_ = std::move(bv);
    a_layer_ = std::move(al);
    b_layer_ = std::move(bl);
  }

  std::unique_ptr<linear_layer> base_;
  std::size_t rank_ = 0;
  float scale_ = 1.0f;
  std::vector<float> a_, b_;                 // A [r, in], B [out, r]
  std::unique_ptr<dense_linear> a_layer_;    // in → r
  std::unique_ptr<dense_linear> b_layer_;    // r → out
  mutable std::vector<float> t_, u_;
};

PARE_NAMESPACE_END
