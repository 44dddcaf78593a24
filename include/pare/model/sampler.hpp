// sampler: next-token choice from logits — greedy, or temperature with nucleus (top-p) sampling from a seeded RNG.
#pragma once

// temperature == 0 → greedy (argmax, lowest id on ties). Otherwise probabilities are
// softmax(logits / temperature) in double; with top_p < 1 only the smallest set of most
// likely tokens whose mass reaches top_p is kept (ties broken by lower id) and
// renormalised; a token is drawn with one uniform number from splitmix64(seed) per call,
// so a seed reproduces a generation exactly.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/rng.hpp"

PARE_NAMESPACE_BEGIN

class sampler {
 public:
  sampler(float temperature = 0.0f, float top_p = 1.0f, std::uint64_t seed = 0) : temp_(temperature), top_p_(top_p), rng_(seed) {
    if (!(temperature >= 0.0f) || !std::isfinite(temperature))
      detail::fail<argument_error>("sampler: argument 'temperature': expected a finite value >= 0, got ", temperature);
    if (!(top_p > 0.0f && top_p <= 1.0f))
      detail::fail<argument_error>("sampler: argument 'top_p': expected a value in (0, 1], got ", top_p);
  }

  std::int32_t next(const float* logits, std::size_t vocab) {
    if (vocab == 0) detail::fail<argument_error>("sampler::next: argument 'vocab': expected > 0, got 0");
    if (temp_ == 0.0f) return static_cast<std::int32_t>(std::max_element(logits, logits + vocab) - logits);
    const double mx = *std::max_element(logits, logits + vocab);
    probs_.resize(vocab);
    double z = 0;
    for (std::size_t i = 0; i < vocab; ++i) z += (probs_[i] = std::exp((double(logits[i]) - mx) / double(temp_)));
    order_.resize(vocab);
    std::iota(order_.begin(), order_.end(), 0);
    std::size_t keep = vocab;
    if (top_p_ < 1.0f) {
      std::sort(order_.begin(), order_.end(), [&](std::int32_t a, std::int32_t b) {
        return probs_[a] != probs_[b] ? probs_[a] > probs_[b] : a < b;
      });
      double mass = 0;
      for (keep = 0; keep < vocab;) {
        mass += probs_[order_[keep++]] / z;
        if (mass >= double(top_p_)) break;
      }
    }
    double total = 0;
    for (std::size_t i = 0; i < keep; ++i) total += probs_[order_[i]];
    const double u = rng_.uniform() * total;
    double acc = 0;
    for (std::size_t i = 0; i < keep; ++i) {
      acc += probs_[order_[i]];
      if (u < acc) return order_[i];
    }
    return order_[keep - 1];
  }

 private:
  float temp_, top_p_;
  splitmix64 rng_;
  std::vector<double> probs_;
  std::vector<std::int32_t> order_;
};

PARE_NAMESPACE_END
