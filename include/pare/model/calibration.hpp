// calibration_capture: streaming statistics of every linear layer's input over calibration text (XᵀX, mean |x|, ‖x‖₂, APoZ, observers).
#pragma once

// Attach to a llama_session (session.set_observer(&capture)) and run calibration text
// through it; nothing of the activations is kept beyond these accumulators, per layer
// (GGUF name) with in_features = K:
//   tokens                 rows seen
//   xtx   (K × K, double)  Σ xᵀx over rows (GPTQ / SparseGPT Hessian H = 2·XᵀX/n, whitening)
//   sum_abs, sum_sq (K)    Σ|x_k|, Σx_k² → mean_abs(k) (AWQ), l2_norm(k) = √Σx_k² (Wanda)
//   nonpositive (K)        count of x_k ≤ 0 → apoz(k), the fraction of non-positive inputs;
//                          on ffn_down this is the per-neuron APoZ of the SwiGLU output
//   observer (optional)    a pare observer (e.g. "kl", "percentile=99.9") fed with every
//                          batch, for activation-quantization ranges
// Options choose which accumulators run (XᵀX costs K² per row) and which layers.

#include <cmath>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/quant/observers/any_observer.hpp"

PARE_NAMESPACE_BEGIN

struct linear_input_stats {
  std::size_t in_features = 0;
  std::size_t tokens = 0;
  std::vector<double> xtx;  // in × in, row-major (empty unless captured)
  std::vector<double> sum_abs, sum_sq;
  std::vector<std::size_t> nonpositive;
  std::unique_ptr<any_observer> observer;

  double mean_abs(std::size_t k) const { return tokens ? sum_abs.at(k) / double(tokens) : 0.0; }
  double l2_norm(std::size_t k) const { return std::sqrt(sum_sq.at(k)); }
  double apoz(std::size_t k) const { return tokens ? double(nonpositive.at(k)) / double(tokens) : 0.0; }
};

class calibration_capture final : public llama_session::linear_observer {
 public:
  struct options {
    bool xtx = true;                 ///< accumulate XᵀX (K² per row)
    bool channel_stats = true;       ///< sum |x|, sum x², non-positive counts
    std::string observer;            ///< observer spec for activations, empty for none
    std::function<bool(const std::string&)> include;  ///< layers to capture (all if empty)
  };

  calibration_capture() : calibration_capture(options{}) {}
  explicit calibration_capture(options o) : opt_(std::move(o)) {
    if (!opt_.observer.empty()) (void)parse_observer(opt_.observer);  // validates the spec now
  }

  void on_linear_input(const std::string& name, const matrix_view<const float>& x) override {
    if (opt_.include && !opt_.include(name)) return;
    linear_input_stats& s = stats_[name];
    const std::size_t k = x.cols(), n = x.rows();
    if (s.in_features == 0) {
      s.in_features = k;
      if (opt_.xtx) s.xtx.assign(k * k, 0.0);
      if (opt_.channel_stats) {
        s.sum_abs.assign(k, 0.0);
        s.sum_sq.assign(k, 0.0);
        s.nonpositive.assign(k, 0);
      }
      if (!opt_.observer.empty()) s.observer = std::make_unique<any_observer>(parse_observer(opt_.observer));
    } else if (s.in_features != k) {
      detail::fail<shape_error>("calibration_capture: layer '", name, "': expected inputs with ", s.in_features,
                                " columns, got ", k);
    }
    for (std::size_t r = 0; r < n; ++r) {
      const float* row = x.row_ptr(r);
      for (std::size_t c = 0; c < k; ++c)
        if (!std::isfinite(row[c]))
          detail::fail<value_error>("calibration_capture: layer '", name, "': non-finite input at (", r, ", ", c, ")");
    }
    if (opt_.xtx) {
      // Rows of XᵀX split over threads; each entry accumulates in double.
      parallel_for(0, k, std::max<std::size_t>(1, 32768 / std::max<std::size_t>(1, k * n)), [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) {
          double* out = s.xtx.data() + i * k;
          for (std::size_t r = 0; r < n; ++r) {
            const float* row = x.row_ptr(r);
            const double xi = row[i];
            if (xi == 0.0) continue;
            for (std::size_t j = 0; j < k; ++j) out[j] += xi * double(row[j]);
          }
        }
      });
    }
    if (opt_.channel_stats)
      for (std::size_t r = 0; r < n; ++r) {
        const float* row = x.row_ptr(r);
        for (std::size_t c = 0; c < k; ++c) {
          const double v = row[c];
          s.sum_abs[c] += std::fabs(v);
          s.sum_sq[c] += v * v;
          s.nonpositive[c] += v <= 0.0;
        }
      }
    if (s.observer) {
      // One batch per call (streaming observers such as EMA count batches).
      if (n <= 1 || x.row_stride() == static_cast<std::ptrdiff_t>(k)) {
        s.observer->observe(x.row_ptr(0), n * k);
      } else {
        std::vector<float> all(n * k);
        for (std::size_t r = 0; r < n; ++r) std::copy(x.row_ptr(r), x.row_ptr(r) + k, all.data() + r * k);
        s.observer->observe(all.data(), all.size());
      }
    }
    s.tokens += n;
  }

  /// Statistics of layer `name`; argument_error if it was never seen.
  const linear_input_stats& at(const std::string& name) const {
    const auto it = stats_.find(name);
    if (it == stats_.end())
      detail::fail<argument_error>("calibration_capture::at: argument 'name': expected a captured layer, got '", name, "'");
    return it->second;
  }
  const std::map<std::string, linear_input_stats>& all() const noexcept { return stats_; }
  void clear() { stats_.clear(); }

 private:
  options opt_;
  std::map<std::string, linear_input_stats> stats_;
};

PARE_NAMESPACE_END
