// linear_layer: the interface every linear layer of the reference model implements (y = x·Wᵀ), and its fp32 form.
#pragma once

// A model holds its projections as linear_layer objects, so a layer can be swapped for a
// compressed version (int8, int4 groups, ggml blocks, factorized, pruned) without the
// forward pass knowing. forward() takes activations x [M, in] and writes y [M, out];
// it is called with contiguous rows and must not allocate per call in steady state
// beyond scratch it keeps (it may be called concurrently only on distinct objects).

#include <cmath>
#include <cstddef>
#include <memory>
#include <string>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/kernels/matmul/matmul_f32.hpp"

PARE_NAMESPACE_BEGIN

namespace detail {
/// value_error naming `where`, the argument `what` and the position of m's first NaN/Inf
/// (a layer's factor or adapter matrix, checked before the layer changes).
inline void check_finite_factor(const char* where, const char* what, const matrix_view<const float>& m) {
  for (std::size_t i = 0; i < m.rows(); ++i)
    for (std::size_t j = 0; j < m.cols(); ++j)
      if (!std::isfinite(m(i, j)))
        fail<value_error>(where, ": argument '", what, "': non-finite value ", m(i, j), " at (", i, ", ", j, ")");
}
}  // namespace detail

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

/// An fp32 linear layer owning its weight matrix [out, in], packed for the fp32 kernels.
class dense_linear final : public linear_layer {
 public:
  /// Copies `w` [out, in] (any strides).
  explicit dense_linear(const matrix_view<const float>& w) : packed_(pack_f32(w)) {}

  std::size_t in_features() const noexcept override { return packed_.k; }
  std::size_t out_features() const noexcept override { return packed_.n; }
  std::string format() const override { return "f32"; }
  std::size_t storage_bytes() const noexcept override { return packed_.storage_bytes(); }
  void dense_weights(const matrix_view<float>& w) const override {
    check_same_shape("dense_linear::dense_weights: argument 'w'", shape_t{packed_.n, packed_.k}, w.shape());
    for (std::size_t i = 0; i < packed_.n; ++i)
      for (std::size_t j = 0; j < packed_.k; ++j) w(i, j) = packed_.value(i, j);
  }
  void forward(const matrix_view<const float>& x, const matrix_view<float>& y) const override {
    check_forward_shapes("dense_linear::forward", x, y);
    matmul(x, packed_, y);
  }
  const packed_f32& packed() const noexcept { return packed_; }

 private:
  packed_f32 packed_;
};

PARE_NAMESPACE_END
