// Independent activation statistics for the model-level pruning tests: records every linear layer's raw inputs during a forward pass and recomputes per-channel statistics (and XᵀX) in float64, plus a ranking oracle for double scores.
#pragma once

// The library's calibration_capture accumulates sums; the recorder here keeps the raw
// input rows instead (the run is short), so that a test can recompute ‖x_j‖₂, mean |x_j|
// and XᵀX itself and predict which weights or neurons a criterion
// keeps. It forwards every call to an optional second observer, so one forward pass feeds
// both the library's capture and the oracle.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "pare/model/llama_session.hpp"

namespace prune_oracle {

/// Records each layer's input rows (name → rows × in_features, row-major), forwarding to `next`.
class input_recorder final : public pare::llama_session::linear_observer {
 public:
  explicit input_recorder(pare::llama_session::linear_observer* next = nullptr) : next_(next) {}

  void on_linear_input(const std::string& name, const pare::matrix_view<const float>& x) override {
    layer& l = layers_[name];
    l.cols = x.cols();
    for (std::size_t r = 0; r < x.rows(); ++r)
      for (std::size_t c = 0; c < x.cols(); ++c) l.values.push_back(x(r, c));
    if (next_) next_->on_linear_input(name, x);
  }
  void on_residual(std::size_t block, bool before_ffn, const pare::matrix_view<const float>& x) override {
    if (next_) next_->on_residual(block, before_ffn, x);
  }

  /// Tokens seen by layer `name` (0 if never seen).
  std::size_t tokens(const std::string& name) const {
    const auto it = layers_.find(name);
    return it == layers_.end() || it->second.cols == 0 ? 0 : it->second.values.size() / it->second.cols;
  }
  /// Σ_t x_tj² per input channel, float64, tokens in order.
  std::vector<double> sum_sq(const std::string& name) const {
    return reduce(name, [](double a, double v) { return a + v * v; });
  }
  /// Σ_t |x_tj| per input channel, float64.
  std::vector<double> sum_abs(const std::string& name) const {
    return reduce(name, [](double a, double v) { return a + std::fabs(v); });
  }
  /// XᵀX [in_features, in_features] (row-major), float64, tokens in order.
  std::vector<double> gram(const std::string& name) const {
    const layer& l = layers_.at(name);
    const std::size_t k = l.cols, n = tokens(name);
    std::vector<double> g(k * k, 0.0);
    for (std::size_t t = 0; t < n; ++t) {
      const float* x = l.values.data() + t * k;
      for (std::size_t a = 0; a < k; ++a)
        for (std::size_t b = 0; b < k; ++b) g[a * k + b] += double(x[a]) * double(x[b]);
    }
    return g;
  }

 private:
  struct layer {
    std::size_t cols = 0;
    std::vector<float> values;
  };
  template <class F>
  std::vector<double> reduce(const std::string& name, F f) const {
    const layer& l = layers_.at(name);
    std::vector<double> out(l.cols, 0.0);
    for (std::size_t i = 0; i < l.values.size(); ++i) out[i % l.cols] = f(out[i % l.cols], double(l.values[i]));
    return out;
  }
  pare::llama_session::linear_observer* next_;
  std::map<std::string, layer> layers_;
};

/// Indices (ascending) of the `keep` highest scores: a full sort by (score descending,
/// index ascending) — the ranking of pare/prune/scores.hpp, equal scores keep the lower index.
inline std::vector<std::size_t> top_indices(const std::vector<double>& s, std::size_t keep) {
  std::vector<std::size_t> order(s.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return s[a] != s[b] ? s[a] > s[b] : a < b; });
  order.resize(std::min(keep, order.size()));
  std::sort(order.begin(), order.end());
  return order;
}

/// Pruned flags for a group of scores: the `k` lowest (ties: the higher index goes first).
inline std::vector<bool> pruned_lowest(const std::vector<double>& s, std::size_t k) {
  std::vector<bool> pruned(s.size(), true);
  for (std::size_t i : top_indices(s, s.size() - std::min(k, s.size()))) pruned[i] = false;
  return pruned;
}

}  // namespace prune_oracle
