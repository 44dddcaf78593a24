// Weighted averaging of N checkpoints or models of one architecture (model soups, WARM).
#pragma once

// weighted_average(cks, weights, normalize) computes, element by element in float64 and
// rounded once to float,
//
//     normalize = true  (default):   θ = Σᵢ wᵢ·θᵢ / Σᵢ wᵢ      weights >= 0, Σ wᵢ > 0
//     normalize = false:             θ = Σᵢ wᵢ·θᵢ              any finite weights
//     weights empty:                 θ = Σᵢ θᵢ / N             (the uniform soup, either way)
//
// Uniform soups (Wortsman et al. 2022) and weight-averaged reward models (WARM, Ramé et
// al. 2024) are the normalized form; the unnormalized form is a plain linear
// combination (for example extrapolation with weights 1.5 and −0.5). Averaging a
// checkpoint with itself returns it bit for bit: (w·a + w·a) / (2w) and N·a / N are exact
// or round back to a. The checkpoints must be compatible (checkpoint.hpp); errors name
// the tensor, the weight or the checkpoint, and nothing is changed.
//
// Over whole llama_models: weighted_average_into (pare/pipeline/merge_models.hpp).

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "pare/merge/checkpoint.hpp"

PARE_NAMESPACE_BEGIN

namespace detail {
inline std::vector<double> average_weights(const char* where, std::size_t n, const std::vector<double>& weights,
                                           bool normalize, double& divisor) {
  if (n == 0) fail<argument_error>(where, ": argument 'checkpoints': expected at least one, got none");
  if (weights.empty()) {
    divisor = double(n);
    return std::vector<double>(n, 1.0);
  }
  if (weights.size() != n)
    fail<argument_error>(where, ": argument 'weights': expected ", n, " weights (one per checkpoint) or none, got ",
                         weights.size());
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(weights[i]))
      fail<argument_error>(where, ": argument 'weights': expected finite weights, got ", weights[i], " at index ", i);
    if (normalize && weights[i] < 0)
      fail<argument_error>(where, ": argument 'weights': expected weights >= 0 when normalizing, got ", weights[i],
                           " at index ", i);
    sum += weights[i];
  }
  if (normalize && !(sum > 0))
    fail<argument_error>(where, ": argument 'weights': expected a positive sum when normalizing, got ", sum);
  divisor = normalize ? sum : 1.0;
  return weights;
}

inline checkpoint weighted_average_impl(const char* where, const std::vector<const checkpoint*>& cks,
                                        const std::vector<double>& weights, bool normalize) {
  double divisor = 1;
  const std::vector<double> w = average_weights(where, cks.size(), weights, normalize, divisor);
  check_compatible(where, cks);
  checkpoint out;
  std::vector<double> acc;
  for (const auto& [name, t0] : *cks[0]) {
    const std::size_t n = t0.values.size();
    acc.assign(n, 0.0);
    for (std::size_t i = 0; i < cks.size(); ++i) {
      const float* x = cks[i]->at(name).values.data();
      const double wi = w[i];
      for (std::size_t e = 0; e < n; ++e) acc[e] += wi * double(x[e]);
    }
    std::vector<float> v(n);
    for (std::size_t e = 0; e < n; ++e) v[e] = static_cast<float>(acc[e] / divisor);
    out.emplace(name, checkpoint_tensor(t0.shape, std::move(v)));
  }
  return out;
}
}  // namespace detail

/// The weighted average of compatible checkpoints (see above).
inline checkpoint weighted_average(const std::vector<const checkpoint*>& checkpoints, const std::vector<double>& weights = {},
                                   bool normalize = true) {
  return detail::weighted_average_impl("weighted_average", checkpoints, weights, normalize);
}

PARE_NAMESPACE_END
