// AWQ (Lin et al. 2023): per-input-channel scales s = mean|x|^α that protect salient channels before quantization, α chosen by grid search on the layers' output error, then a per-group clipping search.
#pragma once

// For a group of linear layers W_1..W_L that read the same input X [n, K]:
//
//   s(α)_j = mean_t |x_tj|^α, divided by sqrt(max s · min s)        (AutoAWQ's normalisation)
//   err(α) = Σ_l ‖X·(W_l − Q(W_l·diag s)·diag s⁻¹)ᵀ‖²  =  Σ_l tr(ΔW_l · XᵀX · ΔW_lᵀ)
//
// over the grid α ∈ {0, 1/G, …, (G−1)/G} (α = 0 is plain rounding: s = 1); the best α wins
// and the caller folds s exactly into the operation before the group (s⁻¹ into an RMSNorm
// gain or the rows of a preceding linear) and W_l·diag s into the layers. Q is
// round-to-nearest under the group's quant_config. The error is the group's output error
// on the calibration data (XᵀX = n·H/2 from the layer Hessian's statistics); AutoAWQ
// measures the output of a larger module (the attention or MLP block around q/k/v or
// gate/up) by running it per grid point, which costs a pass over the calibration data per α.
//
// Clipping (awq_clip): per row and quantization group (per row for per-channel configs),
// the weights are clamped to ±r·max|w| for r ∈ {1, 1 − 1/C·shrink, …, 1 − shrink} and the r
// with the smallest output error δᵀ·H_gg·δ (δ = w − Q(clamp(w)), H_gg the group's block of
// XᵀX) is kept: the returned weights are the clamped ones, for any quantizer to take next.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/quant/quantize.hpp"
#include "pare/stats/linear_input_stats.hpp"

PARE_NAMESPACE_BEGIN
namespace solvers {

struct awq_options {
  std::size_t grid = 20;         ///< α candidates 0, 1/grid, …, (grid−1)/grid
  std::size_t clip_grid = 20;    ///< clipping ratios tried
  double max_shrink = 0.5;       ///< smallest clipping ratio 1 − max_shrink
};

struct awq_scales {
  std::vector<float> s;       ///< [K] per-input-channel scales (all 1 when α = 0 wins)
  double alpha = 0;           ///< the chosen α
  double error = 0;           ///< the group's output error at α
  double error_plain = 0;     ///< the same at α = 0 (round to nearest without scales)
};

namespace detail {

/// Σ over rows of δᵣᵀ·G·δᵣ for δ = a − b ([rows, K]), G = XᵀX (K × K, row-major), in double.
inline double quadratic_error(const float* a, const float* b, std::size_t rows, std::size_t k, const double* g) {
  std::vector<double> part(rows, 0.0);
  parallel_for(0, rows, 1, [&](std::size_t lo, std::size_t hi) {
    std::vector<double> d(k);
    for (std::size_t r = lo; r < hi; ++r) {
      for (std::size_t j = 0; j < k; ++j) d[j] = double(a[r * k + j]) - double(b[r * k + j]);
      double acc = 0;
      for (std::size_t i = 0; i < k; ++i) {
        if (d[i] == 0.0) continue;
        double row = 0;
        for (std::size_t j = 0; j < k; ++j) row += g[i * k + j] * d[j];
        acc += d[i] * row;
      }
      part[r] = acc;
    }
  });
  double s = 0;
  for (double v : part) s += v;
  return s;
}

/// Q(a): a [rows, k] quantized under cfg (round to nearest) and dequantized.
inline std::vector<float> round_trip(const float* a, std::size_t rows, std::size_t k, const quant_config& cfg) {
  std::vector<float> out(rows * k);
  quantize(matrix_view<const float>(a, rows, k), cfg).dequantize_into(matrix_view<float>(out.data(), rows, k));
  return out;
}

inline void check_group_input(const char* where, const linear_input_stats& in, std::size_t k) {
  if (in.in_features != k || in.tokens == 0 || in.xtx.size() != k * k || in.sum_abs.size() != k)
    pare::detail::fail<argument_error>(where, ": argument 'input': expected XᵀX and channel statistics of ", k,
                                       " inputs over at least one token, got ", in.in_features, " inputs, ", in.tokens,
                                       " tokens", in.xtx.empty() ? ", no XᵀX" : "",
                                       in.sum_abs.empty() ? ", no channel statistics" : "");
}

inline void check_finite(const char* where, const matrix_view<const float>& w) {
  for (std::size_t i = 0; i < w.rows(); ++i)
    for (std::size_t j = 0; j < w.cols(); ++j)
      if (!std::isfinite(w(i, j)))
        pare::detail::fail<value_error>(where, ": argument 'w': expected finite values, got ", w(i, j), " at (", i, ", ",
                                        j, ")");
}

}  // namespace detail

/// The scales of AWQ for layers `w` (each [rows_l, K]) reading one input with statistics
/// `input` (XᵀX and channel statistics), quantized under `cfg`. shape_error when a layer's
/// column count differs from the input's or the group size does not divide it;
/// argument_error for statistics without XᵀX or channel sums, or grid 0; value_error for
/// NaN/Inf weights.
inline awq_scales awq_search_scales(const std::vector<matrix_view<const float>>& w, const linear_input_stats& input,
                                    const quant_config& cfg, const awq_options& opt = {}) {
  const char* where = "pare::solvers::awq_search_scales";
  cfg.validate(where);
  if (w.empty()) pare::detail::fail<argument_error>(where, ": argument 'w': expected at least one layer, got none");
  const std::size_t k = input.in_features;
  detail::check_group_input(where, input, k);
  if (opt.grid == 0) pare::detail::fail<argument_error>(where, ": argument 'grid': expected at least 1, got 0");
  for (const auto& l : w) {
    if (l.cols() != k)
      pare::detail::fail<shape_error>(where, ": argument 'w': expected layers of ", k, " columns (the input's width), got ",
                                      l.shape());
    pare::detail::check_config_for(where, cfg, k);
    detail::check_finite(where, l);
  }
  std::vector<double> mean(k);
  for (std::size_t j = 0; j < k; ++j) mean[j] = input.mean_abs(j);

  std::vector<std::vector<float>> orig(w.size());
  for (std::size_t l = 0; l < w.size(); ++l) {
    orig[l].resize(w[l].rows() * k);
    for (std::size_t i = 0; i < w[l].rows(); ++i)
      for (std::size_t j = 0; j < k; ++j) orig[l][i * k + j] = w[l](i, j);
  }
  auto scales_at = [&](double alpha) {
    std::vector<float> s(k, 1.0f);
    if (alpha == 0.0) return s;
    double lo = std::numeric_limits<double>::infinity(), hi = 0;
    std::vector<double> v(k);
    for (std::size_t j = 0; j < k; ++j) {
      v[j] = std::pow(std::max(mean[j], 1e-4), alpha);
      lo = std::min(lo, v[j]), hi = std::max(hi, v[j]);
    }
    const double norm = std::sqrt(lo * hi);
    for (std::size_t j = 0; j < k; ++j) s[j] = static_cast<float>(v[j] / norm);
    return s;
  };
  auto error_at = [&](const std::vector<float>& s) {
    double e = 0;
    for (std::size_t l = 0; l < w.size(); ++l) {
      const std::size_t rows = w[l].rows();
      std::vector<float> scaled(rows * k);
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < k; ++j) scaled[i * k + j] = orig[l][i * k + j] * s[j];
      std::vector<float> back = detail::round_trip(scaled.data(), rows, k, cfg);
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < k; ++j) back[i * k + j] /= s[j];
      e += detail::quadratic_error(orig[l].data(), back.data(), rows, k, input.xtx.data());
    }
    return e;
  };
  awq_scales best;
  best.s = scales_at(0.0);
  best.error = best.error_plain = error_at(best.s);
  for (std::size_t g = 1; g < opt.grid; ++g) {
    const double alpha = double(g) / double(opt.grid);
    std::vector<float> s = scales_at(alpha);
    const double e = error_at(s);
    if (e < best.error) best.error = e, best.alpha = alpha, best.s = std::move(s);
  }
  return best;
}

/// AWQ's clipping search on one layer w [rows, K] under `cfg` with input statistics
/// `input` (XᵀX of the layer's input, already in the scaled space if scales were folded):
/// returns w with each (row, group) clamped to ±r·max|w| at its best ratio r. Errors as
/// awq_search_scales.
inline std::vector<float> awq_clip(const matrix_view<const float>& w, const linear_input_stats& input,
                                   const quant_config& cfg, const awq_options& opt = {}) {
  const char* where = "pare::solvers::awq_clip";
  cfg.validate(where);
  const std::size_t rows = w.rows(), k = w.cols();
  if (input.in_features != k || input.xtx.size() != k * k || input.tokens == 0)
    pare::detail::fail<shape_error>(where, ": argument 'input': expected XᵀX of ", k, " inputs (w's columns), got ",
                                    input.in_features, " inputs", input.xtx.empty() ? " without XᵀX" : "");
  pare::detail::check_config_for(where, cfg, k);
  detail::check_finite(where, w);
  if (opt.clip_grid == 0 || !(opt.max_shrink >= 0.0 && opt.max_shrink < 1.0))
    pare::detail::fail<argument_error>(where, ": arguments 'clip_grid', 'max_shrink': expected clip_grid >= 1 and "
                                              "max_shrink in [0, 1), got ", opt.clip_grid, " and ", opt.max_shrink);
  const std::size_t g = cfg.gran.kind == granularity_kind::per_group ? cfg.gran.group_size : k;
  quant_config one = cfg;  // one (row, group) at a time: a 1 × g matrix per channel
  one.gran = granularity::channel(0);
  std::vector<float> out(rows * k);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < k; ++j) out[i * k + j] = w(i, j);
  const std::size_t groups = k / g;
  parallel_for(0, rows * groups, 1, [&](std::size_t lo, std::size_t hi) {
    std::vector<float> cur(g);
    std::vector<double> gg(g * g);
    for (std::size_t task = lo; task < hi; ++task) {
      const std::size_t r = task / groups, c0 = (task % groups) * g;
      for (std::size_t a = 0; a < g; ++a)
        for (std::size_t b = 0; b < g; ++b) gg[a * g + b] = input.xtx[(c0 + a) * k + c0 + b];
      const float* w0 = out.data() + r * k + c0;
      float mx = 0;
      for (std::size_t t = 0; t < g; ++t) mx = std::max(mx, std::fabs(w0[t]));
      if (mx == 0.0f) continue;
      double best_err = std::numeric_limits<double>::infinity();
      float best_ratio = 1.0f;
      for (std::size_t c = 0; c < opt.clip_grid; ++c) {
        const float ratio = static_cast<float>(1.0 - opt.max_shrink * double(c) / double(opt.clip_grid));
        const float lim = mx * ratio;
        for (std::size_t t = 0; t < g; ++t) cur[t] = std::clamp(w0[t], -lim, lim);
        const std::vector<float> q = detail::round_trip(cur.data(), 1, g, one);
        const double e = detail::quadratic_error(w0, q.data(), 1, g, gg.data());
        if (e < best_err) best_err = e, best_ratio = ratio;
      }
      const float lim = mx * best_ratio;
      float* dst = out.data() + r * k + c0;
      for (std::size_t t = 0; t < g; ++t) dst[t] = std::clamp(dst[t], -lim, lim);
    }
  });
  return out;
}

}  // namespace solvers
PARE_NAMESPACE_END
