// linear_input_stats: streaming statistics of one linear layer's inputs (XᵀX, Σ|x|, Σx², max|x|, non-positive counts, an observer), filled batch by batch.
#pragma once

// A method reads these instead of the activations themselves, so it can be tested on a
// matrix and its statistics without a model; pare/model/calibration.hpp fills one per
// linear layer from a forward pass. Per input feature k (K = in_features):
//   tokens                 rows seen
//   xtx   (K × K, double)  Σ xᵀx over rows (GPTQ / SparseGPT Hessian H = 2·XᵀX/n, whitening)
//   sum_abs, sum_sq (K)    Σ|x_k|, Σx_k² → mean_abs(k) (AWQ), l2_norm(k) = √Σx_k² (Wanda)
//   max_abs (K)            max|x_k| (SmoothQuant's scales, static activation ranges)
//   nonpositive (K)        count of x_k ≤ 0 → apoz(k), the fraction of non-positive inputs
//   observer (optional)    a pare observer (e.g. "kl", "percentile=99.9") fed with every
//                          batch, for activation-quantization ranges
// accumulate(x) validates x (shape, finite values) before it changes anything.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/stats/observers/any_observer.hpp"

PARE_NAMESPACE_BEGIN

/// Which accumulators a linear_input_stats runs.
struct linear_input_options {
  bool xtx = true;            ///< accumulate XᵀX (K² per row)
  bool channel_stats = true;  ///< Σ|x|, Σx², max|x|, non-positive counts
  std::string observer;       ///< observer spec for activations, empty for none
};

struct linear_input_stats {
  std::size_t in_features = 0;
  std::size_t tokens = 0;
  std::vector<double> xtx;  // in × in, row-major (empty unless captured)
  std::vector<double> sum_abs, sum_sq, max_abs;
  std::vector<std::size_t> nonpositive;
  std::unique_ptr<any_observer> observer;

  double mean_abs(std::size_t k) const { return tokens ? sum_abs.at(k) / double(tokens) : 0.0; }
  double l2_norm(std::size_t k) const { return std::sqrt(sum_sq.at(k)); }
  double apoz(std::size_t k) const { return tokens ? double(nonpositive.at(k)) / double(tokens) : 0.0; }

  /// Adds the rows of x [n, K] under `opt` (the first batch fixes K and allocates).
  /// shape_error if K differs from earlier batches, value_error naming `name` and the
  /// position of a NaN/Inf; either way nothing changes.
  void accumulate(const matrix_view<const float>& x, const linear_input_options& opt, const std::string& name = "input") {
    const std::size_t k = x.cols(), n = x.rows();
    if (in_features != 0 && in_features != k)
      detail::fail<shape_error>("linear_input_stats: layer '", name, "': expected inputs with ", in_features,
                                " columns, got ", k);
    for (std::size_t r = 0; r < n; ++r) {
      const float* row = x.row_ptr(r);
      for (std::size_t c = 0; c < k; ++c)
        if (!std::isfinite(row[c]))
          detail::fail<value_error>("linear_input_stats: layer '", name, "': non-finite input at (", r, ", ", c, ")");
    }
    if (in_features == 0) {
      in_features = k;
      if (opt.xtx) xtx.assign(k * k, 0.0);
      if (opt.channel_stats) {
        sum_abs.assign(k, 0.0);
        sum_sq.assign(k, 0.0);
        max_abs.assign(k, 0.0);
        nonpositive.assign(k, 0);
      }
      if (!opt.observer.empty()) observer = std::make_unique<any_observer>(parse_observer(opt.observer));
    }
    if (!xtx.empty()) {
      // Rows of XᵀX split over threads; each entry accumulates in double.
      parallel_for(0, k, std::max<std::size_t>(1, 32768 / std::max<std::size_t>(1, k * n)), [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) {
          double* out = xtx.data() + i * k;
          for (std::size_t r = 0; r < n; ++r) {
            const float* row = x.row_ptr(r);
            const double xi = row[i];
            if (xi == 0.0) continue;
            for (std::size_t j = 0; j < k; ++j) out[j] += xi * double(row[j]);
          }
        }
      });
    }
    if (!sum_abs.empty())
      for (std::size_t r = 0; r < n; ++r) {
        const float* row = x.row_ptr(r);
        for (std::size_t c = 0; c < k; ++c) {
          const double v = row[c];
          sum_abs[c] += std::fabs(v);
          max_abs[c] = std::max(max_abs[c], std::fabs(v));
          sum_sq[c] += v * v;
          nonpositive[c] += v <= 0.0;
        }
      }
    if (observer) {
      // One batch per call (streaming observers such as EMA count batches).
      if (n <= 1 || x.row_stride() == static_cast<std::ptrdiff_t>(k)) {
        observer->observe(x.row_ptr(0), n * k);
      } else {
        std::vector<float> all(n * k);
        for (std::size_t r = 0; r < n; ++r) std::copy(x.row_ptr(r), x.row_ptr(r) + k, all.data() + r * k);
        observer->observe(all.data(), all.size());
      }
    }
    tokens += n;
  }
};

PARE_NAMESPACE_END
