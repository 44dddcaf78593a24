// SmoothQuant (Xiao et al. 2022): per-input-channel smoothing scales s_j = max|X_j|^α / max|W_:,j|^(1−α) that move activation outliers into the weights before W8A8 quantization.
#pragma once

// For a group of linear layers W_1..W_L [rows_l, K] that read the same input X [n, K]:
//
//   a_j = max_t |x_tj|                          (linear_input_stats::max_abs, calibration)
//   w_j = max(max_l max_i |W_l[i, j]|, ε)       (every row of every layer of the group)
//   s_j = max(a_j^α / w_j^(1−α), ε)             ε = min_value (1e-5, as the paper's code)
//
// α ∈ [0, 1] is the migration strength: α = 1 moves the whole activation range into the
// weights, α = 0 the whole weight range into the activations. The caller folds s exactly
// into the operation before the group (x' = x / s: s⁻¹ into an RMSNorm gain or the rows of
// the preceding linear) and W_l·diag s into the layers (pare/pipeline/smoothquant_linears.hpp),
// so max|x'_j| = a_j / s_j = a_j^(1−α)·w_j^(1−α) and max|W'_:,j| = a_j^α·w_j^α: both ranges
// become the same geometric mix, channel by channel. No search, no error measure: the scales
// are a closed form of the two maxima. Computed in double, returned as float.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/stats/linear_input_stats.hpp"

PARE_NAMESPACE_BEGIN
namespace solvers {

struct smoothquant_options {
  double alpha = 0.5;       ///< migration strength α ∈ [0, 1]
  double min_value = 1e-5;  ///< ε: floor of the weight maxima and of the scales (> 0)
};

/// argument_error naming 'alpha' / 'min_value' unless α ∈ [0, 1] and ε is finite and > 0.
inline void check_smoothquant_options(const char* where, const smoothquant_options& opt) {
  if (!(opt.alpha >= 0.0 && opt.alpha <= 1.0))
    pare::detail::fail<argument_error>(where, ": argument 'alpha': expected a migration strength in [0, 1], got ",
                                       opt.alpha);
  if (!(opt.min_value > 0.0 && std::isfinite(opt.min_value)))
    pare::detail::fail<argument_error>(where, ": argument 'min_value': expected a finite floor > 0, got ", opt.min_value);
}

/// The SmoothQuant scales of layers `w` (each [rows_l, K]) reading one input whose
/// per-channel maxima max|x_j| are `act_max` [K] (see the header comment). argument_error
/// for no layers or bad options; shape_error when a layer's columns differ from K;
/// value_error for NaN/Inf weights or an activation maximum that is not finite and ≥ 0.
inline std::vector<float> smoothquant_scales(const std::vector<matrix_view<const float>>& w,
                                             const std::vector<double>& act_max, const smoothquant_options& opt = {}) {
  const char* where = "pare::solvers::smoothquant_scales";
  check_smoothquant_options(where, opt);
  if (w.empty()) pare::detail::fail<argument_error>(where, ": argument 'w': expected at least one layer, got none");
  const std::size_t k = act_max.size();
  std::vector<double> wmax(k, 0.0);
  for (const auto& l : w) {
    if (l.cols() != k)
      pare::detail::fail<shape_error>(where, ": argument 'w': expected layers of ", k,
                                      " columns (the input's width), got ", l.shape());
    for (std::size_t i = 0; i < l.rows(); ++i)
      for (std::size_t j = 0; j < k; ++j) {
        const float v = l(i, j);
        if (!std::isfinite(v))
          pare::detail::fail<value_error>(where, ": argument 'w': expected finite values, got ", v, " at (", i, ", ", j, ")");
        wmax[j] = std::max(wmax[j], double(std::fabs(v)));
      }
  }
  for (std::size_t j = 0; j < k; ++j)
    if (!(act_max[j] >= 0.0 && std::isfinite(act_max[j])))
      pare::detail::fail<value_error>(where, ": argument 'act_max': expected finite maxima >= 0, got ", act_max[j],
                                      " at input channel ", j);
  std::vector<float> s(k);
  for (std::size_t j = 0; j < k; ++j) {
    const double v = std::pow(act_max[j], opt.alpha) / std::pow(std::max(wmax[j], opt.min_value), 1.0 - opt.alpha);
    s[j] = static_cast<float>(std::max(v, opt.min_value));
  }
  return s;
}

/// The same from a layer's captured statistics (max_abs, captured with channel_stats);
/// argument_error when `input` has no maxima of K channels over at least one token.
inline std::vector<float> smoothquant_scales(const std::vector<matrix_view<const float>>& w,
                                             const linear_input_stats& input, const smoothquant_options& opt = {}) {
  if (input.tokens == 0 || input.max_abs.size() != input.in_features || input.in_features == 0)
    pare::detail::fail<argument_error>("pare::solvers::smoothquant_scales: argument 'input': expected per-channel maxima "
                                       "(channel_stats) over at least one token, got ", input.max_abs.size(),
                                       " maxima of ", input.in_features, " inputs over ", input.tokens, " tokens");
  return smoothquant_scales(w, input.max_abs, opt);
}

}  // namespace solvers
PARE_NAMESPACE_END
