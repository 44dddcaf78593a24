// AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019), the update of torch.optim.AdamW.
#pragma once

// Per step t (1-based) and tensor element, with gradient g and learning rate lr:
//
//     p ← p · (1 − lr·λ)                        decoupled weight decay (λ = weight_decay)
//     m ← β₁·m + (1 − β₁)·g
//     v ← β₂·v + (1 − β₂)·g²
//     p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)     (ε outside the square root)
//
// State m ("exp_avg") and v ("exp_avg_sq") are float per tensor; the bias corrections
// are computed in double. Tensors for which options.no_decay(name) holds skip the decay
// (e.g. norms). Elements are independent, so the split over threads changes nothing.

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/train/optimizer.hpp"
#include "pare/train/parameter_set.hpp"

PARE_NAMESPACE_BEGIN

struct adamw_options {
  double beta1 = 0.9, beta2 = 0.999;  ///< in [0, 1)
  double eps = 1e-8;                  ///< > 0
  double weight_decay = 0.01;         ///< λ >= 0 (torch's default)
  tensor_predicate no_decay;          ///< tensors exempt from decay (empty: none)
};

class adamw final : public optimizer {
 public:
  explicit adamw(adamw_options o = {}) : o_(std::move(o)) {
    auto in01 = [](double b) { return b >= 0 && b < 1; };
    if (!in01(o_.beta1)) detail::fail<argument_error>("adamw: argument 'beta1': expected a value in [0, 1), got ", o_.beta1);
    if (!in01(o_.beta2)) detail::fail<argument_error>("adamw: argument 'beta2': expected a value in [0, 1), got ", o_.beta2);
    if (!(o_.eps > 0 && std::isfinite(o_.eps)))
      detail::fail<argument_error>("adamw: argument 'eps': expected a finite value > 0, got ", o_.eps);
    if (!(o_.weight_decay >= 0 && std::isfinite(o_.weight_decay)))
      detail::fail<argument_error>("adamw: argument 'weight_decay': expected a finite value >= 0, got ", o_.weight_decay);
  }
  std::string kind() const override { return "adamw"; }
  std::vector<std::string> slots() const override { return {"exp_avg", "exp_avg_sq"}; }
  const adamw_options& options() const noexcept { return o_; }

  void step(parameter_set& ps, double lr) override {
    check_lr("adamw::step", lr);
    prepare(ps);
    const double t = double(steps() + 1);
    const double bc1 = 1 - std::pow(o_.beta1, t), bc2 = 1 - std::pow(o_.beta2, t);
    const float step_size = static_cast<float>(lr / bc1), inv_bc2_sqrt = static_cast<float>(1 / std::sqrt(bc2));
    const float b1 = float(o_.beta1), b2 = float(o_.beta2), c1 = float(1 - o_.beta1), c2 = float(1 - o_.beta2);
    const float eps = float(o_.eps);
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const bool decay = o_.weight_decay > 0 && !(o_.no_decay && o_.no_decay(ps.name(i)));
      const float keep = decay ? static_cast<float>(1 - lr * o_.weight_decay) : 1.0f;
      float* p = ps.value(i).data();
      const float* g = ps.grad(i).data();
      float* m = slot(i, 0).data();
      float* v = slot(i, 1).data();
      parallel_for(0, ps.value(i).size(), 16384, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t k = lo; k < hi; ++k) {
          m[k] = b1 * m[k] + c1 * g[k];
          v[k] = b2 * v[k] + c2 * (g[k] * g[k]);
          p[k] = p[k] * keep - step_size * (m[k] / (std::sqrt(v[k]) * inv_bc2_sqrt + eps));
        }
      });
    }
    set_steps(steps() + 1);
  }

 private:
  adamw_options o_;
};

PARE_NAMESPACE_END
