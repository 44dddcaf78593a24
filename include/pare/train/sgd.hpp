// SGD with momentum, dampening, Nesterov and L2 weight decay: the update of torch.optim.SGD.
#pragma once

// Per step t (1-based) and tensor element, with gradient g and learning rate lr:
//
//     g ← g + λ·p                                   (λ = weight_decay, coupled, as torch)
//     b ← g                        at t = 1          (μ = momentum > 0; "momentum_buffer")
//     b ← μ·b + (1 − τ)·g          at t > 1          (τ = dampening)
//     d ← g + μ·b  (nesterov)   or   d ← b           (μ = 0: d ← g, no state)
//     p ← p − lr·d
//
// Nesterov requires μ > 0 and τ = 0 (as torch). The gradient buffer is not modified.

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/train/optimizer.hpp"
#include "pare/train/parameter_set.hpp"

PARE_NAMESPACE_BEGIN

struct sgd_options {
  double momentum = 0;      ///< μ in [0, 1]
  double dampening = 0;     ///< τ in [0, 1]
  double weight_decay = 0;  ///< λ >= 0
  bool nesterov = false;
};

class sgd final : public optimizer {
 public:
  explicit sgd(sgd_options o = {}) : o_(o) {
    if (!(o_.momentum >= 0 && o_.momentum <= 1))
      detail::fail<argument_error>("sgd: argument 'momentum': expected a value in [0, 1], got ", o_.momentum);
    if (!(o_.dampening >= 0 && o_.dampening <= 1))
      detail::fail<argument_error>("sgd: argument 'dampening': expected a value in [0, 1], got ", o_.dampening);
    if (!(o_.weight_decay >= 0 && std::isfinite(o_.weight_decay)))
      detail::fail<argument_error>("sgd: argument 'weight_decay': expected a finite value >= 0, got ", o_.weight_decay);
    if (o_.nesterov && (o_.momentum <= 0 || o_.dampening != 0))
      detail::fail<argument_error>("sgd: argument 'nesterov': expected momentum > 0 and dampening 0 with Nesterov, got momentum ",
                                   o_.momentum, " and dampening ", o_.dampening);
  }
  std::string kind() const override { return "sgd"; }
  std::vector<std::string> slots() const override {
    return o_.momentum > 0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{};
  }
  const sgd_options& options() const noexcept { return o_; }

  void step(parameter_set& ps, double lr) override {
    check_lr("sgd::step", lr);
    prepare(ps);
    const bool first = steps() == 0, mom = o_.momentum > 0;
    const float wd = float(o_.weight_decay), mu = float(o_.momentum), damp = float(1 - o_.dampening), lrf = float(lr);
    for (std::size_t i = 0; i < ps.size(); ++i) {
      float* p = ps.value(i).data();
      const float* g = ps.grad(i).data();
      float* b = mom ? slot(i, 0).data() : nullptr;
      parallel_for(0, ps.value(i).size(), 16384, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t k = lo; k < hi; ++k) {
          float d = wd != 0 ? g[k] + wd * p[k] : g[k];
          if (mom) {
            b[k] = first ? d : mu * b[k] + damp * d;
            d = o_.nesterov ? d + mu * b[k] : b[k];
          }
          p[k] -= lrf * d;
        }
      });
    }
    set_steps(steps() + 1);
  }

 private:
  sgd_options o_;
};

PARE_NAMESPACE_END
