// pare::quantized_activations: fp32 activation rows quantized once for several integer matmuls that share them (q/k/v, gate/up).
#pragma once

// quantize_activations(x, like) quantizes the rows of x as pare::matmul(x, w, y) would
// (activations.hpp: per row, symmetric int8) into the kernels' layout for weights
// shaped like `like` (same K; with offsets, the same group size as like). Then
// pare::matmul(xa, w, y) gives bit for bit the result of pare::matmul(x, w, y) for any
// int8 or int4 weights with that K (and, when they have offsets, that group size),
// without quantizing x again. Errors: value_error for NaN/Inf in x (position named,
// nothing built); matmul raises shape_error / argument_error for weights that do not fit.

#include <cstddef>

#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/kernels/matmul/act_rows.hpp"
#include "pare/kernels/matmul/packed_weights.hpp"

PARE_NAMESPACE_BEGIN

class quantized_activations {
 public:
  quantized_activations() = default;
  std::size_t rows() const noexcept { return layout_.m; }
  std::size_t cols() const noexcept { return layout_.k; }
  const kernels::act_layout& layout() const noexcept { return layout_; }
  kernels::matmul_acts acts() const { return kernels::act_rows::acts_of(layout_, buf_); }

  friend quantized_activations quantize_activations(const matrix_view<const float>& x, const packed_weights_base& like);

 private:
  kernels::act_layout layout_;
  kernels::matmul_act_buffers buf_;
};

/// Quantizes x [M, K] for integer matmuls with weights like `like` (K = like.k).
inline quantized_activations quantize_activations(const matrix_view<const float>& x, const packed_weights_base& like) {
  if (x.cols() != like.k)
    detail::fail<shape_error>("pare::quantize_activations: expected x [M, ", like.k, "] for weights [", like.n, ", ",
                              like.k, "], got x ", x.shape());
  quantized_activations out;
  out.layout_ = kernels::act_layout::of(x.rows(), like, true);
  out.layout_.sums = true;  // group sums always: weights with offsets can use them too
  kernels::act_rows rows(x, out.layout_, out.buf_);
  parallel_for(0, x.rows(), kernels::act_rows::chunk_rows(like.k),
               [&](std::size_t lo, std::size_t hi) { rows.quantize(lo, hi); });
  rows.fail_if_bad("pare::quantize_activations");
  return out;
}

PARE_NAMESPACE_END
