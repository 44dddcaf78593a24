// AdamW and SGD steps against float64 implementations of torch's update rules written here (several steps, weight decay, bias correction, momentum, Nesterov).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

#include "pare/core/rng.hpp"
#include "pare/train/adamw.hpp"
#include "pare/train/parameter_set.hpp"
#include "pare/train/sgd.hpp"
#include "train_core_test_support.hpp"

namespace optimizers_test {

/// Fresh random gradients for step `step` of every trainable tensor.
inline std::vector<std::vector<double>> fill_grads(pare::parameter_set& ps, std::uint64_t step) {
  std::vector<std::vector<double>> g(ps.size());
  pare::splitmix64 r(1000 + step);
  for (std::size_t i = 0; i < ps.size(); ++i)
    for (float& x : ps.grad(i)) {
      x = float((r.uniform() - 0.5) * (i + 1));
      g[i].push_back(x);
    }
  return g;
}

inline double worst_rel(const pare::parameter_set& ps, const std::vector<std::vector<double>>& ref) {
  double worst = 0;
  for (std::size_t i = 0; i < ps.size(); ++i)
    for (std::size_t k = 0; k < ref[i].size(); ++k)
      worst = std::max(worst, std::fabs(ps.value(i)[k] - ref[i][k]) / std::max(1e-3, std::fabs(ref[i][k])));
  return worst;
}

}  // namespace optimizers_test

TEST_CASE("AdamW: five steps match torch's update rule in float64 (decoupled decay, bias correction, eps outside sqrt)") {
  auto p = train_core_test::tiny_params(7, 5, 3);
  pare::parameter_set ps(p, pare::all_tensors());
  pare::adamw_options o;
  o.beta1 = 0.8;
  o.beta2 = 0.95;
  o.eps = 1e-3;  // large enough to matter
  o.weight_decay = 0.1;
  o.no_decay = pare::name_contains("norm");
  pare::adamw opt(o);
  std::vector<std::vector<double>> w(ps.size()), m(ps.size()), v(ps.size());
  for (std::size_t i = 0; i < ps.size(); ++i) {
    w[i].assign(ps.value(i).begin(), ps.value(i).end());
    m[i].assign(w[i].size(), 0);
    v[i].assign(w[i].size(), 0);
  }
  const double lrs[] = {0.01, 0.02, 0.005, 0.03, 0.01};
  for (int t = 1; t <= 5; ++t) {
    const auto g = optimizers_test::fill_grads(ps, t);
    const double lr = lrs[t - 1];
    opt.step(ps, lr);
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const double wd = ps.name(i) == "output_norm.weight" ? 0.0 : 0.1;
      for (std::size_t k = 0; k < w[i].size(); ++k) {
        w[i][k] -= lr * wd * w[i][k];
        m[i][k] = 0.8 * m[i][k] + 0.2 * g[i][k];
        v[i][k] = 0.95 * v[i][k] + 0.05 * g[i][k] * g[i][k];
        const double mh = m[i][k] / (1 - std::pow(0.8, t)), vh = v[i][k] / (1 - std::pow(0.95, t));
        w[i][k] -= lr * mh / (std::sqrt(vh) + 1e-3);
      }
    }
    INFO("step " << t);
    CHECK(optimizers_test::worst_rel(ps, w) < 2e-5);
  }
  CHECK(opt.steps() == 5);
  // The state is named per tensor and slot, and holds m and v.
  const auto st = opt.state();
  REQUIRE(st.size() == 4);
  CHECK(st[0].first == "token_embd.weight.exp_avg");
  CHECK(st[3].first == "output_norm.weight.exp_avg_sq");
  CHECK((*st[1].second)[3] == Approx(v[0][3]).epsilon(1e-5));
}

TEST_CASE("AdamW: frozen tensors do not move; the first step's size is lr regardless of the gradient's scale") {
  auto p = train_core_test::tiny_params(6, 4, 9);
  const auto embd0 = p.embd;
  pare::parameter_set ps(p, pare::name_contains("output_norm"));
  REQUIRE(ps.size() == 1);
  pare::adamw_options o;
  o.weight_decay = 0;
  o.eps = 1e-12;
  pare::adamw opt(o);
  std::fill(ps.gradients().embd.begin(), ps.gradients().embd.end(), 5.0f);
  const auto before = ps.value(0);
  for (std::size_t k = 0; k < ps.grad(0).size(); ++k) ps.grad(0)[k] = k % 2 ? 1e-3f : -7.0f;
  opt.step(ps, 0.05);
  CHECK(p.embd == embd0);
  // Bias-corrected first step: m̂ = g, v̂ = g², update = lr·sign(g).
  for (std::size_t k = 0; k < before.size(); ++k)
    CHECK(ps.value(0)[k] == Approx(before[k] - 0.05 * (k % 2 ? 1 : -1)).margin(1e-6));
}

TEST_CASE("SGD: momentum, dampening, Nesterov and weight decay match torch's rule in float64 over four steps") {
  struct variant {
    double mu, damp, wd;
    bool nesterov;
  };
  for (const variant var : {variant{0, 0, 0, false}, variant{0, 0, 0.05, false}, variant{0.9, 0, 0.01, false},
                            variant{0.8, 0.3, 0, false}, variant{0.9, 0, 0.02, true}}) {
    auto p = train_core_test::tiny_params(5, 3, 4);
    pare::parameter_set ps(p, pare::all_tensors());
    pare::sgd_options o;
    o.momentum = var.mu;
    o.dampening = var.damp;
    o.weight_decay = var.wd;
    o.nesterov = var.nesterov;
    pare::sgd opt(o);
    std::vector<std::vector<double>> w(ps.size()), b(ps.size());
    for (std::size_t i = 0; i < ps.size(); ++i) {
      w[i].assign(ps.value(i).begin(), ps.value(i).end());
      b[i].assign(w[i].size(), 0);
    }
    for (int t = 1; t <= 4; ++t) {
      const auto g = optimizers_test::fill_grads(ps, t);
      const double lr = 0.1 / t;
      opt.step(ps, lr);
      for (std::size_t i = 0; i < ps.size(); ++i)
        for (std::size_t k = 0; k < w[i].size(); ++k) {
          double d = g[i][k] + var.wd * w[i][k];
          if (var.mu > 0) {
            b[i][k] = t == 1 ? d : var.mu * b[i][k] + (1 - var.damp) * d;
            d = var.nesterov ? d + var.mu * b[i][k] : b[i][k];
          }
          w[i][k] -= lr * d;
        }
      INFO("momentum " << var.mu << " dampening " << var.damp << " wd " << var.wd << " nesterov " << var.nesterov << " step " << t);
      CHECK(optimizers_test::worst_rel(ps, w) < 1e-5);
    }
    CHECK(opt.slots().size() == (var.mu > 0 ? 1u : 0u));
  }
}

TEST_CASE("optimizers reject bad hyperparameters and learning rates, changing nothing") {
  CHECK_THROWS_AS(pare::adamw(pare::adamw_options{1.0, 0.999, 1e-8, 0, {}}), pare::argument_error);
  CHECK_THROWS_AS(pare::adamw(pare::adamw_options{0.9, -0.1, 1e-8, 0, {}}), pare::argument_error);
  CHECK_THROWS_AS(pare::adamw(pare::adamw_options{0.9, 0.999, 0, 0, {}}), pare::argument_error);
  CHECK_THROWS_AS(pare::adamw(pare::adamw_options{0.9, 0.999, 1e-8, -1, {}}), pare::argument_error);
  CHECK_THROWS_AS(pare::sgd(pare::sgd_options{0, 0, 0, true}), pare::argument_error);
  CHECK_THROWS_AS(pare::sgd(pare::sgd_options{0.9, 0.5, 0, true}), pare::argument_error);
  CHECK_THROWS_AS(pare::sgd(pare::sgd_options{1.5, 0, 0, false}), pare::argument_error);
  auto p = train_core_test::tiny_params(5, 3, 4);
  const auto embd0 = p.embd;
  pare::parameter_set ps(p, pare::all_tensors());
  pare::adamw opt;
  CHECK_THROWS_AS(opt.step(ps, -1e-3), pare::argument_error);
  CHECK_THROWS_AS(opt.step(ps, std::nan("")), pare::argument_error);
  CHECK(p.embd == embd0);
  CHECK(opt.steps() == 0);
  CHECK_THROWS_AS(pare::parameter_set(p, pare::name_contains("no such tensor")), pare::argument_error);
}
