// linear_layer: the interface every linear layer of the reference model implements (y = x·Wᵀ), and its fp32 form.
#pragma once

// A model holds its projections as linear_layer objects, so a layer can be swapped for a
// compressed version (int8, int4 groups, ggml blocks, factorized, pruned) without the
// forward pass knowing. forward() takes activations x [M, in] and writes y [M, out];
// it is called with contiguous rows and must not allocate per call in steady state
// beyond scratch it keeps (it may be called concurrently only on distinct objects).

#include <cstddef>
#include <memory>
#include <string>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"

PARE_NAMESPACE_BEGIN

class linear_layer {
 public:
  virtual ~linear_layer() = default;
  virtual std::size_t in_features() const noexcept = 0;
  virtual std::size_t out_features() const noexcept = 0;
  /// y = x·Wᵀ with x [M, in_features], y [M, out_features].
  virtual void forward(const matrix_view<const float>& x, const matrix_view<float>& y) const = 0;
  /// A short description of the storage format, e.g. "f32" or "int4:g32:asym".
  virtual std::string format() const = 0;
  /// Bytes of weight storage (codes, scales, zero points, factors).
  virtual std::size_t storage_bytes() const noexcept = 0;
  /// The weights as a dense fp32 matrix [out, in] (dequantized / multiplied out), for
  /// calibration, analysis and re-compression.
  virtual void dense_weights(const matrix_view<float>& w) const = 0;

 protected:
  void check_forward_shapes(const char* where, const matrix_view<const float>& x, const matrix_view<float>& y) const {
    if (x.cols() != in_features() || y.cols() != out_features() || x.rows() != y.rows())
      detail::fail<shape_error>(where, ": expected x [M, ", in_features(), "] and y [M, ", out_features(),
                                "], got x ", x.shape(), " and y ", y.shape());
  }
};

/// An fp32 linear layer owning its weight matrix [out, in].
class dense_linear final : public linear_layer {
 public:
  dense_linear(std::size_t out, std::size_t in) : out_(out), in_(in), w_(out * in) {}
  /// Copies `w` [out, in] (any strides).
  explicit dense_linear(const matrix_view<const float>& w) : dense_linear(w.rows(), w.cols()) {
    for (std::size_t i = 0; i < out_; ++i)
      for (std::size_t j = 0; j < in_; ++j) w_[i * in_ + j] = w(i, j);
  }

  std::size_t in_features() const noexcept override { return in_; }
  std::size_t out_features() const noexcept override { return out_; }
  std::string format() const override { return "f32"; }
  std::size_t storage_bytes() const noexcept override { return out_ * in_ * sizeof(float); }
  void dense_weights(const matrix_view<float>& w) const override {
    check_same_shape("dense_linear::dense_weights: argument 'w'", shape_t{out_, in_}, w.shape());
    for (std::size_t i = 0; i < out_; ++i)
      for (std::size_t j = 0; j < in_; ++j) w(i, j) = w_[i * in_ + j];
  }
  matrix_view<const float> weights() const noexcept { return {w_.data(), out_, in_}; }
  matrix_view<float> weights() noexcept { return {w_.data(), out_, in_}; }

  void forward(const matrix_view<const float>& x, const matrix_view<float>& y) const override {
    check_forward_shapes("dense_linear::forward", x, y);
    const std::size_t m = x.rows();
    // Reference fp32 product: 4 independent partial sums per dot product.
    // Chunks of at least ~64K multiply-adds: small layers stay on one thread.
    parallel_for(0, out_, std::max<std::size_t>(1, 65536 / std::max<std::size_t>(1, in_ * m)), [&](std::size_t lo, std::size_t hi) {
      for (std::size_t r = 0; r < m; ++r) {
        const float* xr = x.row_ptr(r);
        for (std::size_t n = lo; n < hi; ++n) {
          const float* wr = w_.data() + n * in_;
          float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          std::size_t k = 0;
          for (; k + 4 <= in_; k += 4) {
            s0 += xr[k] * wr[k];
            s1 += xr[k + 1] * wr[k + 1];
            s2 += xr[k + 2] * wr[k + 2];
            s3 += xr[k + 3] * wr[k + 3];
          }
          for (; k < in_; ++k) s0 += xr[k] * wr[k];
          y(r, n) = (s0 + s1) + (s2 + s3);
        }
      }
    });
  }

 private:
  std::size_t out_, in_;
  aligned_buffer<float> w_;
};

PARE_NAMESPACE_END
