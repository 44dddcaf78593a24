// Matrix-level linear quantization: pare::quantize, pare::fake_quantize, pare::dequantize (runtime config).
#pragma once

// quantize(w, cfg) validates the config and the data (NaN/Inf → value_error naming the
// position), chooses (scale, zero point) per group with the config's observer and
// pare::params_from_range (under f16scale: params_from_range_f16, the scale rounded to
// half first, pare/quant/half_scale.hpp), and quantizes every row with the dispatched row kernels,
// rows in parallel. Per-row and per-group configs are processed in one pass (a row is
// scanned, its parameters chosen and its codes written while it sits in L1); per-tensor
// and per-column configs take a statistics pass first.
//
// fake_quantize(x, cfg, y) writes y = dequantize(quantize(x)) (nearest-even rounding)
// without materialising codes; it validates all of x before writing y, so on error y is
// unchanged (y may alias x).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <type_traits>
#include <vector>

#include "pare/core/parallel.hpp"
#include "pare/core/rng.hpp"
#include "pare/quant/half_scale.hpp"
#include "pare/quant/quantized_tensor.hpp"

PARE_NAMESPACE_BEGIN

namespace detail {

/// Rows per parallel chunk so that a chunk holds about 64 KiB of floats.
inline std::size_t row_grain(std::size_t cols) { return std::max<std::size_t>(1, 16384 / std::max<std::size_t>(1, cols)); }

/// Records the first non-finite position across threads (smallest (row, col)).
class first_bad_position {
 public:
  void note(std::size_t row, std::size_t col) {
    std::lock_guard<std::mutex> lock(mu_);
    if (row < row_ || (row == row_ && col < col_)) {
      row_ = row;
      col_ = col;
    }
  }
  bool any() const noexcept { return row_ != npos; }
  /// Throws value_error naming the position and the value.
  [[noreturn]] void raise(const char* where, const char* arg, const matrix_view<const float>& m) const {
    fail<value_error>(where, ": argument '", arg, "': expected finite values, got ", m(row_, col_), " at position (",
                      row_, ", ", col_, ")");
  }

 private:
  static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();
  std::mutex mu_;
  std::size_t row_ = npos, col_ = npos;
};

/// A dense copy of `m` when its rows are not contiguous; otherwise `m` itself.
class contiguous_rows {
 public:
  explicit contiguous_rows(matrix_view<const float> m) : view_(m) {
    if (!m.has_contiguous_rows()) {
      copy_.resize(m.rows() * m.cols());
      for (std::size_t i = 0; i < m.rows(); ++i)
        for (std::size_t j = 0; j < m.cols(); ++j) copy_[i * m.cols() + j] = m(i, j);
      view_ = matrix_view<const float>(copy_.data(), m.rows(), m.cols());
    }
  }
  const matrix_view<const float>& view() const noexcept { return view_; }

 private:
  matrix_view<const float> view_;
  std::vector<float> copy_;
};

/// Checks the config against the matrix shape.
inline void check_config_for(const char* where, const quant_config& cfg, std::size_t cols) {
  cfg.validate(where);
  if (cfg.gran.kind == granularity_kind::per_group && cols % cfg.gran.group_size != 0)
    fail<argument_error>(where, ": argument 'group_size': expected a divisor of the row length ", cols, ", got ",
                         cfg.gran.group_size);
}

template <class Obs>
constexpr bool is_minmax = std::is_same_v<Obs, minmax_observer>;

/// Range of n contiguous values under the observer (minmax via the SIMD scan).
template <class Obs>
observed_range group_range(const Obs& obs, const float* x, std::size_t n, const quant_config& cfg) {
  if constexpr (is_minmax<Obs>) {
    const kernels::row_stats s = kernels::scan_row(x, n);
    return observed_range{s.min, s.max};
  } else {
    return observe_range(obs, x, n, cfg.format, cfg.scheme);
  }
}

/// Computes every (scale, zero point) of `m` into `scales`/`zeros`. Throws value_error
/// on a non-finite value.
template <class Obs>
void choose_params(const char* where, const char* arg, const matrix_view<const float>& m, const quant_config& cfg,
                   const Obs& obs, std::vector<float>& scales, std::vector<std::int32_t>& zeros) {
  const std::size_t rows = m.rows(), cols = m.cols();
  scales.assign(param_count_for(cfg.gran, rows, cols), 1.0f);
  zeros.assign(scales.size(), 0);
  first_bad_position bad;
  auto set = [&](std::size_t k, observed_range r) {
    const qparams p = cfg.f16_scale ? params_from_range_f16(where, r.lo, r.hi, cfg.format, cfg.scheme)
                                    : params_from_range(r.lo, r.hi, cfg.format, cfg.scheme);
    scales[k] = p.scale;
    zeros[k] = p.zero_point;
  };
  auto check_row = [&](std::size_t i) {
    const kernels::row_stats s = kernels::scan_row(m.row_ptr(i), cols);
    if (s.first_nonfinite != cols) bad.note(i, s.first_nonfinite);
    return s;
  };
  switch (cfg.gran.kind) {
    case granularity_kind::per_tensor: {
      std::vector<kernels::row_stats> st(rows);
      parallel_for(0, rows, row_grain(cols), [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) st[i] = check_row(i);
      });
      if (bad.any()) bad.raise(where, arg, m);
      if constexpr (is_minmax<Obs>) {
        observed_range r{0.0f, 0.0f};
        if (rows * cols != 0) {
          r = {st[0].min, st[0].max};
          for (const auto& s : st) r = {std::min(r.lo, s.min), std::max(r.hi, s.max)};
        }
        set(0, r);
      } else {
        Obs o = obs;
        o.reset();
        // The whole tensor is one calibration batch (matters for streaming observers).
        if (m.has_contiguous_rows() && (rows <= 1 || m.row_stride() == static_cast<std::ptrdiff_t>(cols))) {
          if (rows * cols != 0) o.observe(m.row_ptr(0), rows * cols);
        } else {
          std::vector<float> all(rows * cols);
          for (std::size_t i = 0; i < rows; ++i) std::copy(m.row_ptr(i), m.row_ptr(i) + cols, all.data() + i * cols);
          o.observe(all.data(), all.size());
        }
        set(0, rows * cols != 0 ? o.range(cfg.format, cfg.scheme) : observed_range{0.0f, 0.0f});
      }
      break;
    }
    case granularity_kind::per_channel:
      if (cfg.gran.axis == 0) {
        parallel_for(0, rows, row_grain(cols), [&](std::size_t lo, std::size_t hi) {
          for (std::size_t i = lo; i < hi; ++i) {
            const kernels::row_stats s = check_row(i);
            if (s.first_nonfinite != cols) continue;
            if constexpr (is_minmax<Obs>) {
              set(i, cols ? observed_range{s.min, s.max} : observed_range{0.0f, 0.0f});
            } else {
              set(i, cols ? observe_range(obs, m.row_ptr(i), cols, cfg.format, cfg.scheme) : observed_range{0.0f, 0.0f});
            }
          }
        });
        if (bad.any()) bad.raise(where, arg, m);
      } else {
        parallel_for(0, rows, row_grain(cols), [&](std::size_t lo, std::size_t hi) {
          for (std::size_t i = lo; i < hi; ++i) check_row(i);
        });
        if (bad.any()) bad.raise(where, arg, m);
        parallel_for(0, cols, 16, [&](std::size_t lo, std::size_t hi) {
          std::vector<float> col(rows);
          for (std::size_t j = lo; j < hi; ++j) {
            for (std::size_t i = 0; i < rows; ++i) col[i] = m(i, j);
            set(j, rows ? group_range(obs, col.data(), rows, cfg) : observed_range{0.0f, 0.0f});
          }
        });
      }
      break;
    case granularity_kind::per_group: {
      const std::size_t g = cfg.gran.group_size, ng = cols / g;
      parallel_for(0, rows, row_grain(cols), [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) {
          const float* row = m.row_ptr(i);
          if constexpr (!is_minmax<Obs>) {
            const kernels::row_stats s = check_row(i);
            if (s.first_nonfinite != cols) continue;
          }
          for (std::size_t k = 0; k < ng; ++k) {
            if constexpr (is_minmax<Obs>) {
              const kernels::row_stats s = kernels::scan_row(row + k * g, g);
              if (s.first_nonfinite != g) {
                bad.note(i, k * g + s.first_nonfinite);
                break;
              }
              set(i * ng + k, observed_range{s.min, s.max});
            } else {
              set(i * ng + k, group_range(obs, row + k * g, g, cfg));
            }
          }
        }
      });
      if (bad.any()) bad.raise(where, arg, m);
      break;
    }
  }
}

/// Writes the packed codes of row i of `m` into `dst` (row_bytes bytes).
inline void quantize_one_row(const float* x, std::size_t i, const quantized_tensor& qt, const float* inv,
                             std::vector<std::uint8_t>& scratch, std::uint8_t* dst) {
  const quant_config& cfg = qt.config;
  const std::size_t n = qt.cols;
  const int bits = cfg.format.bits;
  const kernels::row_qparams p = qt.row_params(i, inv);
  if (cfg.rounding == rounding_kind::stochastic) {
    scratch.resize(n);
    kernels::quantize_row_stochastic(x, n, p, row_key(cfg.seed, i), 0, scratch.data());
    pack_codes(bits, scratch.data(), n, dst);
  } else if (bits == 4) {
    kernels::quantize_row_int4(x, n, p, dst);
  } else if (bits == 8) {  // one code byte per element
    kernels::quantize_row(x, n, p, dst);
  } else {
    scratch.resize(n);
    kernels::quantize_row(x, n, p, scratch.data());
    pack_codes(bits, scratch.data(), n, dst);
  }
}

template <class Obs>
quantized_tensor quantize_with(matrix_view<const float> w_in, const quant_config& cfg, const Obs& obs,
                               quantized_tensor&& storage) {
  const char* where = "quantize";
  check_config_for(where, cfg, w_in.cols());
  const contiguous_rows rows_src(w_in);
  const matrix_view<const float>& w = rows_src.view();
  quantized_tensor qt = std::move(storage);  // reuses its buffers when they fit
  qt.config = cfg;
  qt.rows = w.rows();
  qt.cols = w.cols();
  if (qt.codes.size() != qt.rows * qt.row_bytes()) qt.codes = aligned_buffer<std::uint8_t>(qt.rows * qt.row_bytes());
  const std::size_t rb = qt.row_bytes();
  const bool fused = cfg.gran.kind == granularity_kind::per_group ||
                     (cfg.gran.kind == granularity_kind::per_channel && cfg.gran.axis == 0);
  if (!fused) {
    choose_params(where, "w", w, cfg, obs, qt.scales, qt.zero_points);
    std::vector<float> inv(qt.scales.size());
    for (std::size_t k = 0; k < inv.size(); ++k) inv[k] = inverse_scale(qt.scales[k]);
    parallel_for(0, qt.rows, row_grain(qt.cols), [&](std::size_t lo, std::size_t hi) {
      std::vector<std::uint8_t> scratch;
      for (std::size_t i = lo; i < hi; ++i) quantize_one_row(w.row_ptr(i), i, qt, inv.data(), scratch, qt.codes.data() + i * rb);
    });
    return qt;
  }
  // Fused: per row, choose its parameters and quantize it while it is in cache.
  const std::size_t npr = qt.groups_per_row();
  qt.scales.assign(qt.rows * npr, 1.0f);
  qt.zero_points.assign(qt.rows * npr, 0);
  std::vector<float> inv(qt.scales.size());
  first_bad_position bad;
  parallel_for(0, qt.rows, row_grain(qt.cols), [&](std::size_t lo, std::size_t hi) {
    std::vector<std::uint8_t> scratch;
    std::vector<float> rs;
    std::vector<std::int32_t> rz;
    for (std::size_t i = lo; i < hi; ++i) {
      const matrix_view<const float> row = w.rows_range(i, i + 1);
      try {
        choose_params(where, "w", row, cfg, obs, rs, rz);
      } catch (const value_error&) {
        const kernels::row_stats s = kernels::scan_row(row.row_ptr(0), qt.cols);
        bad.note(i, s.first_nonfinite);
        continue;
      }
      for (std::size_t k = 0; k < npr; ++k) {
        qt.scales[i * npr + k] = rs[k];
        qt.zero_points[i * npr + k] = rz[k];
        inv[i * npr + k] = inverse_scale(rs[k]);
      }
      quantize_one_row(row.row_ptr(0), i, qt, inv.data(), scratch, qt.codes.data() + i * rb);
    }
  });
  if (bad.any()) bad.raise(where, "w", w);
  return qt;
}

/// Calls f(observer) with the concrete observer type held by `a`.
template <class F>
decltype(auto) visit_observer(const any_observer& a, F&& f) {
  return std::visit(std::forward<F>(f), a.variant());
}

}  // namespace detail

/// Quantizes a weight matrix [out_features, in_features] (any strides) under `cfg`.
inline quantized_tensor quantize(matrix_view<const float> w, const quant_config& cfg) {
  return detail::visit_observer(cfg.observer,
                                [&](const auto& obs) { return detail::quantize_with(w, cfg, obs, quantized_tensor{}); });
}

/// The same, recycling the buffers of `storage` (a previous result, consumed whether or
/// not the call succeeds) instead of allocating: `q = quantize(w, cfg, std::move(q));`.
inline quantized_tensor quantize(matrix_view<const float> w, const quant_config& cfg, quantized_tensor&& storage) {
  return detail::visit_observer(
      cfg.observer, [&](const auto& obs) { return detail::quantize_with(w, cfg, obs, std::move(storage)); });
}

/// Quantizes a rank-1 or rank-2 tensor view (rank 1 is one row).
inline quantized_tensor quantize(tensor_view<const float> t, const quant_config& cfg) {
  return quantize(t.as_matrix(), cfg);
}

/// The dequantized matrix of `q`.
inline xt::xtensor<float, 2> dequantize(const quantized_tensor& q) { return q.dequantize(); }

namespace detail {
template <class Obs>
void fake_quantize_with(matrix_view<const float> x_in, const quant_config& cfg, const Obs& obs, matrix_view<float> y) {
  const char* where = "fake_quantize";
  check_same_shape("fake_quantize: argument 'y'", x_in.shape(), y.shape());
  check_config_for(where, cfg, x_in.cols());
  if (cfg.rounding != rounding_kind::nearest_even)
    fail<argument_error>(where, ": argument 'cfg': expected rounding 'rne' (fake quantization is deterministic), got '",
                         cfg.str(), "'");
  const contiguous_rows rows_src(x_in);
  const matrix_view<const float>& x = rows_src.view();
  std::vector<float> scales;
  std::vector<std::int32_t> zeros;
  choose_params(where, "x", x, cfg, obs, scales, zeros);  // validates all of x before y is touched
  std::vector<float> inv(scales.size());
  for (std::size_t k = 0; k < inv.size(); ++k) inv[k] = inverse_scale(scales[k]);
  const bool direct = y.has_contiguous_rows();
  const bool stream = direct && is_large_output(x.rows() * x.cols() * sizeof(float));
  parallel_for(0, x.rows(), row_grain(x.cols()), [&](std::size_t lo, std::size_t hi) {
    std::vector<float> tmp(direct ? 0 : x.cols());
    for (std::size_t i = lo; i < hi; ++i) {
      float* dst = direct ? y.row_ptr(i) : tmp.data();
      const kernels::row_qparams p = row_params_for(cfg.format, cfg.gran, x.cols(), i, scales.data(), inv.data(), zeros.data());
      if (stream)
        kernels::fake_quant_row_streaming(x.row_ptr(i), x.cols(), p, dst);
      else
        kernels::fake_quant_row(x.row_ptr(i), x.cols(), p, dst);
      if (!direct)
        for (std::size_t j = 0; j < x.cols(); ++j) y(i, j) = tmp[j];
    }
  });
}
}  // namespace detail

/// y = dequantize(quantize(x)) under `cfg` (parameters chosen from x by its observer).
inline void fake_quantize(matrix_view<const float> x, const quant_config& cfg, matrix_view<float> y) {
  detail::visit_observer(cfg.observer, [&](const auto& obs) { detail::fake_quantize_with(x, cfg, obs, y); });
}

PARE_NAMESPACE_END
