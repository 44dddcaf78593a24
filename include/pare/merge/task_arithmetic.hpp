// Task arithmetic: θ = θ₀ + Σᵢ λᵢ·(θᵢ − θ₀) over checkpoints or models of one architecture.
#pragma once

// Ilharco et al., "Editing Models with Task Arithmetic" (2023). τᵢ = θᵢ − θ₀ is the
// task vector of fine-tuned checkpoint i; adding (λ > 0) or negating (λ < 0) it edits the
// base. Computed per element in float64 and rounded once to float. Terms with λᵢ = 0 are
// skipped, so all-zero λ returns θ₀ bit for bit. `lambdas` holds one value per tuned
// checkpoint, or a single value used for all. Checkpoints must be compatible with the
// base (checkpoint.hpp); errors name the tensor or argument, and nothing is changed.
//
// task_vector(base, tuned) is τ itself (float32, rounded once).
// Over whole llama_models: task_arithmetic_into (pare/pipeline/merge_models.hpp).

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "pare/merge/checkpoint.hpp"

PARE_NAMESPACE_BEGIN

namespace detail {
inline std::vector<double> task_lambdas(const char* where, std::size_t n, const std::vector<double>& lambdas) {
  if (lambdas.size() != n && lambdas.size() != 1)
    fail<argument_error>(where, ": argument 'lambdas': expected ", n, " values (one per tuned checkpoint) or 1, got ",
                         lambdas.size());
  for (std::size_t i = 0; i < lambdas.size(); ++i)
    if (!std::isfinite(lambdas[i]))
      fail<argument_error>(where, ": argument 'lambdas': expected finite values, got ", lambdas[i], " at index ", i);
  return lambdas.size() == n ? lambdas : std::vector<double>(n, lambdas[0]);
}

inline std::vector<const checkpoint*> with_base(const checkpoint& base, const std::vector<const checkpoint*>& tuned) {
  std::vector<const checkpoint*> all{&base};
  all.insert(all.end(), tuned.begin(), tuned.end());
  return all;
}

inline checkpoint task_arithmetic_impl(const char* where, const checkpoint& base, const std::vector<const checkpoint*>& tuned,
                                       const std::vector<double>& lambdas) {
  const std::vector<double> lam = task_lambdas(where, tuned.size(), lambdas);
  check_compatible(where, with_base(base, tuned));
  checkpoint out;
  std::vector<double> acc;
  for (const auto& [name, t0] : base) {
    const std::size_t n = t0.values.size();
    const float* b = t0.values.data();
    acc.assign(b, b + n);
    for (std::size_t i = 0; i < tuned.size(); ++i) {
      if (lam[i] == 0) continue;
      const float* x = tuned[i]->at(name).values.data();
      const double l = lam[i];
      for (std::size_t e = 0; e < n; ++e) acc[e] += l * (double(x[e]) - double(b[e]));
    }
    std::vector<float> v(n);
    for (std::size_t e = 0; e < n; ++e) v[e] = static_cast<float>(acc[e]);
    out.emplace(name, checkpoint_tensor(t0.shape, std::move(v)));
  }
  return out;
}
}  // namespace detail

/// θ₀ + Σᵢ λᵢ·(θᵢ − θ₀) (see above).
inline checkpoint task_arithmetic(const checkpoint& base, const std::vector<const checkpoint*>& tuned,
                                  const std::vector<double>& lambdas) {
  return detail::task_arithmetic_impl("task_arithmetic", base, tuned, lambdas);
}

/// The task vector τ = tuned − base (float32).
inline checkpoint task_vector(const checkpoint& base, const checkpoint& tuned) {
  detail::check_compatible("task_vector", {&base, &tuned});
  checkpoint out;
  for (const auto& [name, t0] : base) {
    const std::vector<float>& x = tuned.at(name).values;
    std::vector<float> v(x.size());
    for (std::size_t e = 0; e < v.size(); ++e) v[e] = static_cast<float>(double(x[e]) - double(t0.values[e]));
    out.emplace(name, checkpoint_tensor(t0.shape, std::move(v)));
  }
  return out;
}

PARE_NAMESPACE_END
