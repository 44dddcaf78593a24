// Fake quantization for quantization-aware training: forward with given (learned) parameters, STE and LSQ backward.
#pragma once

// Forward:  y = s · (clamp(nearbyint(v), qmin - z, qmax - z)),  v = x · (1/s)
//           (the same arithmetic as pare/core/affine.hpp and the row kernels).
// Backward, per element, with lo = qmin - z and hi = qmax - z:
//   straight-through estimator (Bengio et al. 2013): ∂y/∂x = 1 if lo ≤ v ≤ hi, else 0.
//   LSQ scale gradient (Esser et al. 2020, "Learned Step Size Quantization"):
//           ∂y/∂s = nearbyint(v) − v  inside, lo below, hi above
//   zero-point gradient (z treated as continuous, rounding passed straight through):
//           ∂y/∂z = 0 inside, −s outside.
// Gradients of a group's scale and zero point are sums over the group's elements,
// multiplied by `grad_scale` (LSQ recommends lsq_grad_scale(n, Qp) = 1/√(n·Qp)).
// These are the exact gradients of the surrogate s·clamp(v, lo, hi) + sg(s·(nearbyint(v) − v))
// where sg() stops gradients; tests check them by finite differences of that surrogate.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pare/quant/quantize.hpp"

PARE_NAMESPACE_BEGIN

/// Learnable fake-quant parameters of a rows × cols matrix. Entries are laid out as in
/// quantized_tensor (see pare/quant/quantized_tensor.hpp).
struct fake_quant_params {
  int_format format{8, true};
  granularity gran = granularity::channel(0);
  std::size_t rows = 0, cols = 0;
  std::vector<float> scales;
  std::vector<std::int32_t> zero_points;

  /// Initial parameters chosen from x by cfg's observer (as quantize() would).
  static fake_quant_params from_data(matrix_view<const float> x, const quant_config& cfg) {
    detail::check_config_for("fake_quant_params::from_data", cfg, x.cols());
    fake_quant_params p;
    p.format = cfg.format;
    p.gran = cfg.gran;
    p.rows = x.rows();
    p.cols = x.cols();
    const detail::contiguous_rows src(x);
    detail::visit_observer(cfg.observer, [&](const auto& obs) {
      detail::choose_params("fake_quant_params::from_data", "x", src.view(), cfg, obs, p.scales, p.zero_points);
    });
    return p;
  }

  /// Throws unless the parameters fit a rows × cols matrix and scales are finite and > 0.
  void validate(const char* where, std::size_t r, std::size_t c) const {
    format.validate(where);
    if (r != rows || c != cols)
      detail::fail<shape_error>(where, ": parameters are for shape ", shape_t{rows, cols}, ", got data of shape ",
                                shape_t{r, c});
    quant_config cfg;
    cfg.format = format;
    cfg.gran = gran;
    detail::check_config_for(where, cfg, cols);
    const std::size_t n = param_count_for(gran, rows, cols);
    if (scales.size() != n || zero_points.size() != n)
      detail::fail<shape_error>(where, ": expected ", n, " scales and zero points, got ", scales.size(), " and ",
                                zero_points.size());
    for (std::size_t k = 0; k < n; ++k) {
      if (!(std::isfinite(scales[k]) && scales[k] > 0.0f))
        detail::fail<argument_error>(where, ": argument 'scales': expected finite values > 0, got ", scales[k],
                                     " at index ", k);
      if (zero_points[k] < format.qmin() || zero_points[k] > format.qmax())
        detail::fail<argument_error>(where, ": argument 'zero_points': expected values in [", format.qmin(), ", ",
                                     format.qmax(), "], got ", zero_points[k], " at index ", k);
    }
  }

  /// Parameter index of element (i, j).
  std::size_t index(std::size_t i, std::size_t j) const { return param_index_for(gran, cols, i, j); }
  /// Elements that share one parameter entry.
  std::size_t group_elements() const {
    switch (gran.kind) {
      case granularity_kind::per_tensor: return rows * cols;
      case granularity_kind::per_channel: return gran.axis == 0 ? cols : rows;
      case granularity_kind::per_group: return gran.group_size;
    }
    return 1;
  }
};

/// LSQ's gradient scale 1/√(n·Qp) for n elements per scale and Qp positive levels.
inline float lsq_grad_scale(std::size_t n, int qp) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(n) * static_cast<double>(qp)));
}

/// y = fake_quant(x; p). Validates x (finite) and p before writing y; y may alias x.
inline void fake_quant_forward(matrix_view<const float> x, const fake_quant_params& p, matrix_view<float> y) {
  const char* where = "fake_quant_forward";
  check_same_shape("fake_quant_forward: argument 'y'", x.shape(), y.shape());
  p.validate(where, x.rows(), x.cols());
  const detail::contiguous_rows src(x);
  const matrix_view<const float>& xv = src.view();
  detail::first_bad_position bad;
  parallel_for(0, xv.rows(), detail::row_grain(xv.cols()), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) {
      const kernels::row_stats s = kernels::scan_row(xv.row_ptr(i), xv.cols());
      if (s.first_nonfinite != xv.cols()) bad.note(i, s.first_nonfinite);
    }
  });
  if (bad.any()) bad.raise(where, "x", xv);
  std::vector<float> inv(p.scales.size());
  for (std::size_t k = 0; k < inv.size(); ++k) inv[k] = inverse_scale(p.scales[k]);
  const bool direct = y.has_contiguous_rows();
  parallel_for(0, xv.rows(), detail::row_grain(xv.cols()), [&](std::size_t lo, std::size_t hi) {
    std::vector<float> tmp(direct ? 0 : xv.cols());
    for (std::size_t i = lo; i < hi; ++i) {
      float* dst = direct ? y.row_ptr(i) : tmp.data();
      kernels::fake_quant_row(xv.row_ptr(i), xv.cols(), row_params_for(p.format, p.gran, p.cols, i, p.scales.data(), inv.data(), p.zero_points.data()), dst);
      if (!direct)
        for (std::size_t j = 0; j < xv.cols(); ++j) y(i, j) = tmp[j];
    }
  });
}

/// Gradients of a fake-quant layer.
struct fake_quant_grads {
  std::vector<float> grad_x;           // rows × cols, row-major
  std::vector<float> grad_scale;       // one per parameter entry
  std::vector<float> grad_zero_point;  // one per parameter entry
};

/// Backward pass (STE for x, LSQ for the scale, straight-through zero point); see the
/// essay above. `grad_scale` multiplies the scale and zero-point gradients.
inline fake_quant_grads fake_quant_backward(matrix_view<const float> x, matrix_view<const float> grad_y,
                                            const fake_quant_params& p, float grad_scale = 1.0f) {
  const char* where = "fake_quant_backward";
  check_same_shape("fake_quant_backward: argument 'grad_y'", x.shape(), grad_y.shape());
  p.validate(where, x.rows(), x.cols());
  fake_quant_grads g;
  g.grad_x.assign(x.rows() * x.cols(), 0.0f);
  std::vector<double> gs(p.scales.size(), 0.0), gz(p.scales.size(), 0.0);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    for (std::size_t j = 0; j < x.cols(); ++j) {
      const float xv = x(i, j), gy = grad_y(i, j);
      if (!std::isfinite(xv) || !std::isfinite(gy))
        detail::fail<value_error>(where, ": expected finite x and grad_y, got x = ", xv, ", grad_y = ", gy,
                                  " at position (", i, ", ", j, ")");
      const std::size_t k = p.index(i, j);
      const float s = p.scales[k];
      const int z = p.zero_points[k];
      const float v = xv * inverse_scale(s);
      const float lo = float(p.format.qmin() - z), hi = float(p.format.qmax() - z);
      if (v < lo) {
        gs[k] += double(gy) * lo;
        gz[k] -= double(gy) * s;
      } else if (v > hi) {
        gs[k] += double(gy) * hi;
        gz[k] -= double(gy) * s;
      } else {
        g.grad_x[i * x.cols() + j] = gy;
        gs[k] += double(gy) * (double(std::nearbyint(v)) - double(v));
      }
    }
  }
  g.grad_scale.resize(gs.size());
  g.grad_zero_point.resize(gz.size());
  for (std::size_t k = 0; k < gs.size(); ++k) {
    g.grad_scale[k] = static_cast<float>(gs[k] * grad_scale);
    g.grad_zero_point[k] = static_cast<float>(gz[k] * grad_scale);
  }
  return g;
}

PARE_NAMESPACE_END
