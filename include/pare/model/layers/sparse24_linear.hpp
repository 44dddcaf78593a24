// sparse24_linear: a linear layer whose weights are 2:4 sparse, stored as packed_sparse24 and run on the 2:4 sparse kernels.
#pragma once

// Half the fp32 values plus 2-bit positions (2.125 bytes per dense weight,
// pare/kernels/sparse/sparse24.hpp); forward() is the dispatched 2:4 kernel, the scalar
// definition's result bit for bit on every ISA.

#include <cstdint>
#include <string>

#include "pare/kernels/sparse/sparse24.hpp"
#include "pare/model/layers/linear.hpp"

PARE_NAMESPACE_BEGIN

class sparse24_linear final : public linear_layer {
 public:
  /// Keeps exactly the entries of w [out, in] flagged in keep (1 = kept; exactly 2 of
  /// every 4 consecutive inputs of a row). argument_error / shape_error otherwise.
  sparse24_linear(const matrix_view<const float>& w, const matrix_view<const std::uint8_t>& keep)
      : packed_(pack_sparse24(w, keep)) {}

  std::size_t in_features() const noexcept override { return packed_.k; }
  std::size_t out_features() const noexcept override { return packed_.n; }
  std::string format() const override { return "f32 2:4 sparse"; }
  std::size_t storage_bytes() const noexcept override { return packed_.storage_bytes(); }
  void dense_weights(const matrix_view<float>& w) const override { packed_.unpack(w); }
  void forward(const matrix_view<const float>& x, const matrix_view<float>& y) const override {
    check_forward_shapes("sparse24_linear::forward", x, y);
    matmul(x, packed_, y);
  }
  const packed_sparse24& packed() const noexcept { return packed_; }

 private:
  packed_sparse24 packed_;
};

PARE_NAMESPACE_END
