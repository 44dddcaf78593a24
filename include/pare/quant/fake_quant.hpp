// Fake quantization for QAT: forward with given (learned) parameters, STE/LSQ backward under PyTorch's or LSQ's range test, export to the stored format.
#pragma once

// Forward:  y = s · (clamp(nearbyint(v), qmin - z, qmax - z)),  v = x · (1/s)
//           (the same arithmetic as pare/core/affine.hpp and the row kernels; nearbyint
//           rounds half to even, as PyTorch's kernels do: its forward equals
//           torch.fake_quantize_per_{tensor,channel}_affine bit for bit).
// Backward, per element, with lo = qmin - z and hi = qmax - z. Which elements are
// "inside" the clip range is a run-time choice, fake_quant_params::range:
//   fake_quant_range::pytorch (default): the ROUNDED code: inside iff lo ≤ nearbyint(v) ≤ hi,
//           i.e. qmin ≤ nearbyint(v) + z ≤ qmax — the mask of torch.fake_quantize_*_affine
//           and the branch of torch._fake_quantize_learnable_*_affine. A value up to half
//           a step beyond the range rounds onto the edge code and is inside.
//   fake_quant_range::lsq: the UNROUNDED value (LSQ paper): inside iff lo ≤ v ≤ hi; the
//           half steps just beyond the range are outside.
// With that classification:
//   straight-through estimator (Bengio et al. 2013): ∂y/∂x = 1 inside, 0 outside.
//   scale (LSQ, Esser et al. 2020, "Learned Step Size Quantization"):
//           ∂y/∂s = nearbyint(v) − v inside, lo below, hi above
//   zero point (z treated as continuous, rounding passed straight through):
//           ∂y/∂z = 0 inside, −s outside (PyTorch's learnable kernels: the same).
// Gradients of a group's scale and zero point are sums over the group's elements (in
// double) multiplied by `grad_scale` — PyTorch's grad_factor (LSQ recommends
// lsq_grad_scale(n, Qp) = 1/√(n·Qp)). Arithmetic per element: under lsq in double,
// (nearbyint(v) − v)·dy; under pytorch in float as torch's portable CPU kernel does it,
// bit for bit: ((dy·(y − x))·(1/s))·grad_scale inside (y the forward output),
// (dy·lo)·grad_scale or (dy·hi)·grad_scale and ((−dy)·s)·grad_scale outside; only the
// summation (double here, float there) differs. (torch's AVX2 / AVX-512 builds of the
// same kernels contract these expressions into FMAs: last-bit differences, and their
// learnable backward then rounds z + x·(1/s) unrounded, so exact float ties of
// x·(1/s) may go either way there. The fixtures are made with ATEN_CPU_CAPABILITY=default.)
// Under lsq these are the exact gradients of the surrogate s·clamp(v, lo, hi) + sg(s·(nearbyint(v) − v))
// where sg() stops gradients; tests check them by finite differences of that surrogate.
// Under pytorch the x-mask equals torch.fake_quantize_*_affine's and the scale and zero
// point gradients equal torch._fake_quantize_learnable_*_affine's (tests: fixtures from
// torch 1.13 in tests/quant/data/), with two deviations of torch 1.13, where pare keeps
// to its forward instead:
//   - its learnable backward forms the code as nearbyint(z + x·(1/s)) (zero point added
//     before rounding) while its forward uses nearbyint(x·(1/s)) + z; on an exact tie
//     v = k + ½ with z odd the two differ by one code, so torch's backward treats a
//     forward-inside edge value as clipped (or the reverse) and its scale gradient has the
//     opposite sign of ½ (some later torch kernels, CUDA and XPU, add z after rounding);
//   - its per-tensor learnable backward reads the zero point as int(z + 0.5), i.e. z + 1
//     when z < 0.
// Quantization export: fake_quant_export(w, p) stores w with the learned parameters in
// pare's quantized format; its dequantize() equals fake_quant_forward(w, p) bit for bit.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pare/quant/quantize.hpp"

PARE_NAMESPACE_BEGIN

/// Which elements the backward pass counts as inside the clip range (see the essay above).
enum class fake_quant_range {
  pytorch,  ///< the rounded code nearbyint(x·(1/s)) + z in [qmin, qmax] (PyTorch; the default)
  lsq,      ///< the unrounded x·(1/s) in [qmin − z, qmax − z] (the LSQ paper)
};

/// "pytorch" or "lsq".
inline const char* to_string(fake_quant_range r) noexcept { return r == fake_quant_range::lsq ? "lsq" : "pytorch"; }

/// Learnable fake-quant parameters of a rows × cols matrix. Entries are laid out as in
/// quantized_tensor (see pare/quant/quantized_tensor.hpp).
struct fake_quant_params {
  int_format format{8, true};
  granularity gran = granularity::channel(0);
  std::size_t rows = 0, cols = 0;
  std::vector<float> scales;
  std::vector<std::int32_t> zero_points;
  /// The backward pass's clip-range test; the forward pass does not depend on it.
  fake_quant_range range = fake_quant_range::pytorch;

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
    if (range != fake_quant_range::pytorch && range != fake_quant_range::lsq)
      detail::fail<argument_error>(where, ": argument 'range': expected fake_quant_range::pytorch or ::lsq, got ",
                                   static_cast<int>(range));
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

namespace detail {
/// Backward pass of fake quantization applied to the elements that noised_row(i, flags)
/// marks (it writes cols flags of row i, nonzero = fake-quantized), identity elsewhere
/// (grad_x = grad_y, no parameter gradient). Validates everything before computing.
template <class NoisedRow>
fake_quant_grads fake_quant_backward_where(const char* where, matrix_view<const float> x, matrix_view<const float> grad_y,
                                           const fake_quant_params& p, float grad_scale, const NoisedRow& noised_row) {
  check_same_shape(concat(where, ": argument 'grad_y'").c_str(), x.shape(), grad_y.shape());
  p.validate(where, x.rows(), x.cols());
  if (!std::isfinite(grad_scale))
    fail<argument_error>(where, ": argument 'grad_scale': expected a finite value, got ", grad_scale);
  const bool torch_rule = p.range == fake_quant_range::pytorch;
  const std::size_t rows = x.rows(), cols = x.cols(), np = p.scales.size();
  const contiguous_rows xs(x), gys(grad_y);
  std::vector<std::size_t> first_bad(rows, cols);  // per row, written by that row's task
  parallel_for(0, rows, row_grain(cols), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i)
      first_bad[i] = std::min(kernels::scan_row(xs.view().row_ptr(i), cols).first_nonfinite,
                              kernels::scan_row(gys.view().row_ptr(i), cols).first_nonfinite);
  });
  for (std::size_t i = 0; i < rows; ++i)
    if (first_bad[i] != cols)
      fail<value_error>(where, ": expected finite x and grad_y, got x = ", x(i, first_bad[i]), ", grad_y = ",
                        grad_y(i, first_bad[i]), " at position (", i, ", ", first_bad[i], ")");
  fake_quant_grads g;
  g.grad_x.assign(rows * cols, 0.0f);
  // Rows in parallel with a fixed summation order (results do not depend on the thread
  // count): entries owned by one row (per channel axis 0, per group) are summed by that
  // row's task; shared ones (per tensor, per column) in partial sums per fixed chunk of
  // rows, reduced in chunk order.
  const bool row_local = p.gran.kind == granularity_kind::per_group ||
                         (p.gran.kind == granularity_kind::per_channel && p.gran.axis == 0);
  const bool tensor = p.gran.kind == granularity_kind::per_tensor;
  constexpr std::size_t chunk_rows = 64;
  const std::size_t chunks = row_local ? 1 : std::max<std::size_t>(1, (rows + chunk_rows - 1) / chunk_rows);
  const std::size_t width = tensor ? 1 : np;  // per tensor only entry 0 is used
  std::vector<double> gs(chunks * width, 0.0), gz(chunks * width, 0.0);
  // Elements in runs that share one parameter entry: a group, a row, or (per column) one element.
  const std::size_t run = p.gran.kind == granularity_kind::per_group ? p.gran.group_size
                          : (p.gran.kind == granularity_kind::per_channel && p.gran.axis == 1) ? 1
                                                                                                : std::max<std::size_t>(cols, 1);
  auto rows_task = [&](std::size_t r0, std::size_t r1, double* gsc, double* gzc) {
    std::vector<std::uint8_t> on(cols);
    for (std::size_t i = r0; i < r1; ++i) {
      const float* xr = xs.view().row_ptr(i);
      const float* gr = gys.view().row_ptr(i);
      float* gx = g.grad_x.data() + i * cols;
      noised_row(i, on.data());
      for (std::size_t j0 = 0; j0 < cols; j0 += run) {
        const std::size_t k = p.index(i, j0), kc = tensor ? 0 : k;
        const float s = p.scales[k], inv = inverse_scale(s);
        const int z = p.zero_points[k];
        const float lo = float(p.format.qmin() - z), hi = float(p.format.qmax() - z);
        double ss = 0.0, sz = 0.0;
        for (std::size_t j = j0; j < j0 + run; ++j) {
          const float xv = xr[j], gy = gr[j];
          if (!on[j]) {
            gx[j] = gy;
            continue;
          }
          const float v = xv * inv;
          // pytorch tests the rounded value, lsq the unrounded one (nearbyint is monotone and
          // lo, hi are integers, so both tests agree except within half a step of the range).
          const float t = torch_rule ? std::nearbyint(v) : v;
          if (torch_rule) {
            // Per element in float, as PyTorch's CPU kernel (grad_scale included), summed in double.
            if (t < lo || t > hi) {
              ss += double((gy * (t < lo ? lo : hi)) * grad_scale);
              sz += double(((-gy) * s) * grad_scale);
            } else {
              gx[j] = gy;
              const float y = dequantize_value(static_cast<int>(t) + z, s, z);  // the forward's output
              ss += double(((gy * (y - xv)) * inv) * grad_scale);
            }
          } else if (t < lo) {
            ss += double(gy) * lo;
            sz -= double(gy) * s;
          } else if (t > hi) {
            ss += double(gy) * hi;
            sz -= double(gy) * s;
          } else {
            gx[j] = gy;
            ss += double(gy) * (double(std::nearbyint(v)) - double(v));
          }
        }
        gsc[kc] += ss;
        gzc[kc] += sz;
      }
    }
  };
  if (row_local) {
    parallel_for(0, rows, row_grain(cols), [&](std::size_t lo, std::size_t hi) { rows_task(lo, hi, gs.data(), gz.data()); });
  } else {
    parallel_for(0, chunks, 1, [&](std::size_t c0, std::size_t c1) {
      for (std::size_t c = c0; c < c1; ++c)
        rows_task(c * chunk_rows, std::min(rows, (c + 1) * chunk_rows), gs.data() + c * width, gz.data() + c * width);
    });
    for (std::size_t c = 1; c < chunks; ++c)
      for (std::size_t k = 0; k < width; ++k) {
        gs[k] += gs[c * width + k];
        gz[k] += gz[c * width + k];
      }
  }
  g.grad_scale.assign(np, 0.0f);
  g.grad_zero_point.assign(np, 0.0f);
  const double post = torch_rule ? 1.0 : double(grad_scale);  // pytorch: applied per element above
  for (std::size_t k = 0; k < width && k < np; ++k) {
    g.grad_scale[k] = static_cast<float>(gs[k] * post);
    g.grad_zero_point[k] = static_cast<float>(gz[k] * post);
  }
  return g;
}
}  // namespace detail

/// Backward pass (STE for x, LSQ for the scale, straight-through zero point) under
/// p.range; see the essay above. `grad_scale` (PyTorch's grad_factor) multiplies the
/// scale and zero-point gradients. Throws before computing anything on bad input.
inline fake_quant_grads fake_quant_backward(matrix_view<const float> x, matrix_view<const float> grad_y,
                                            const fake_quant_params& p, float grad_scale = 1.0f) {
  return detail::fake_quant_backward_where("fake_quant_backward", x, grad_y, p, grad_scale,
                                           [&](std::size_t, std::uint8_t* on) { std::fill(on, on + x.cols(), 1); });
}

/// w [out_features, in_features] quantized for real with the learned parameters p (no
/// observer): a quantized_tensor whose codes are nearbyint(clamp(w·(1/s), qmin − z, qmax − z)) + z
/// and whose dequantize() equals fake_quant_forward(w, p) bit for bit. Its config holds
/// p's format and granularity, nearest-even rounding, and the symmetric scheme when every
/// zero point is the format's symmetric one (zero points then need not be stored),
/// asymmetric otherwise. Validates w (finite) and p first.
inline quantized_tensor fake_quant_export(matrix_view<const float> w, const fake_quant_params& p) {
  const char* where = "fake_quant_export";
  p.validate(where, w.rows(), w.cols());
  const detail::contiguous_rows src(w);
  const matrix_view<const float>& wv = src.view();
  for (std::size_t i = 0; i < wv.rows(); ++i) {
    const kernels::row_stats st = kernels::scan_row(wv.row_ptr(i), wv.cols());
    if (st.first_nonfinite != wv.cols())
      detail::fail<value_error>(where, ": argument 'w': expected finite values, got ", wv(i, st.first_nonfinite),
                                " at position (", i, ", ", st.first_nonfinite, ")");
  }
  quantized_tensor qt;
  qt.config.format = p.format;
  qt.config.gran = p.gran;
  qt.config.rounding = rounding_kind::nearest_even;
  const bool sym = std::all_of(p.zero_points.begin(), p.zero_points.end(),
                               [&](std::int32_t z) { return z == p.format.sym_zero(); });
  qt.config.scheme = sym ? scheme_kind::symmetric : scheme_kind::asymmetric;
  qt.rows = wv.rows();
  qt.cols = wv.cols();
  qt.scales = p.scales;
  qt.zero_points = p.zero_points;
  qt.codes = aligned_buffer<std::uint8_t>(qt.rows * qt.row_bytes());
  std::vector<float> inv(p.scales.size());
  for (std::size_t k = 0; k < inv.size(); ++k) inv[k] = inverse_scale(p.scales[k]);
  const std::size_t rb = qt.row_bytes();
  parallel_for(0, qt.rows, detail::row_grain(qt.cols), [&](std::size_t lo, std::size_t hi) {
    std::vector<std::uint8_t> scratch;
    for (std::size_t i = lo; i < hi; ++i)
      detail::quantize_one_row(wv.row_ptr(i), i, qt, inv.data(), scratch, qt.codes.data() + i * rb);
  });
  return qt;
}

PARE_NAMESPACE_END
