// Distillation through the logits entry: distillation_loss's gradient against a float64 KD loss and backward written here; KD training of a damaged stories260K toward the original lowers KL on held-out windows.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "pare/core/rng.hpp"
#include "pare/distill/kd_loss.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/train/adamw.hpp"
#include "pare/train/distillation.hpp"
#include "pare/train/parameter_set.hpp"
#include "pare/train/trainer.hpp"
#include "pare/train/window_sampler.hpp"
#include "train_core_test_support.hpp"

namespace distillation_test {

/// stories260K's parameters with blk.2.ffn_down perturbed by uniform noise of the tensor's RMS.
inline pare::llama_params<float> damaged(const pare::llama_model& m) {
  auto p = pare::llama_params<float>::from_model(m);
  auto& w = p.at("blk.2.ffn_down.weight");
  double ss = 0;
  for (float x : w) ss += double(x) * x;
  const double rms = std::sqrt(ss / double(w.size()));
  pare::splitmix64 r(17);
  for (float& x : w) x += float((2 * r.uniform() - 1) * rms * 1.7);
  return p;
}

inline pare::llama_params<double> to_double(const pare::llama_model& m, pare::llama_params<float>& pf) {
  auto pd = pare::llama_params<double>::from_model(m);
  auto a = pf.named();
  auto b = pd.named();
  for (std::size_t i = 0; i < a.size(); ++i) b[i].second->assign(a[i].second->begin(), a[i].second->end());
  return pd;
}

/// float64 KD loss over rows 0..n−2 (T²·KL(p‖q) + λ·CE, batch mean) and its gradient, from the definitions.
struct kd64 {
  const std::vector<double>& teacher;  // [n × vocab]
  const std::vector<std::int32_t>& tokens;
  double T, lambda;
  double operator()(const pare::matrix_view<const double>& z, const pare::matrix_view<double>& dz) const {
    const std::size_t n = z.rows(), V = z.cols(), B = n - 1;
    double loss = 0;
    auto softmax = [&](auto get, double temp, std::vector<double>& out) {
      double mx = -INFINITY;
      for (std::size_t v = 0; v < V; ++v) mx = std::max(mx, get(v) / temp);
      double s = 0;
      for (std::size_t v = 0; v < V; ++v) s += (out[v] = std::exp(get(v) / temp - mx));
      for (double& x : out) x /= s;
    };
    std::vector<double> p(V), q(V), sm(V);
    for (std::size_t r = 0; r < B; ++r) {
      softmax([&](std::size_t v) { return teacher[r * V + v]; }, T, p);
      softmax([&](std::size_t v) { return z(r, v); }, T, q);
      softmax([&](std::size_t v) { return z(r, v); }, 1.0, sm);
      double kl = 0;
      for (std::size_t v = 0; v < V; ++v) kl += p[v] > 0 ? p[v] * (std::log(p[v]) - std::log(q[v])) : 0;
      const std::size_t y = static_cast<std::size_t>(tokens[r + 1]);
      loss += (T * T * kl - lambda * std::log(sm[y])) / double(B);
      for (std::size_t v = 0; v < V; ++v) dz(r, v) = (T * (q[v] - p[v]) + lambda * (sm[v] - (v == y ? 1.0 : 0.0))) / double(B);
    }
    return loss;
  }
};

/// Mean over windows of KL(teacher ‖ student) per predicted position, float64 from session/pass logits.
inline double held_out_kl(const pare::llama_model& teacher, const pare::llama_params<float>& student,
                          const std::vector<std::vector<std::int32_t>>& windows) {
  pare::llama_session s(teacher);
  pare::llama_pass<float> pass;
  std::vector<float> tl;
  double kl = 0;
  std::size_t rows = 0;
  for (const auto& w : windows) {
    s.reset();
    s.forward(w.data(), w.size(), tl, true);
    pass.forward(student, w);
    const auto sl = pass.logits();
    const std::size_t V = sl.cols();
    for (std::size_t r = 0; r + 1 < w.size(); ++r) {
      double mt = -INFINITY, ms = -INFINITY, zt = 0, zs = 0;
      for (std::size_t v = 0; v < V; ++v) {
        mt = std::max(mt, double(tl[r * V + v]));
        ms = std::max(ms, double(sl(r, v)));
      }
      for (std::size_t v = 0; v < V; ++v) {
        zt += std::exp(double(tl[r * V + v]) - mt);
        zs += std::exp(double(sl(r, v)) - ms);
      }
      for (std::size_t v = 0; v < V; ++v) {
        const double lp = double(tl[r * V + v]) - mt - std::log(zt), lq = double(sl(r, v)) - ms - std::log(zs);
        kl += std::exp(lp) * (lp - lq);
      }
      ++rows;
    }
  }
  return kl / double(rows);
}

}  // namespace distillation_test

TEST_CASE("distillation_loss: loss and gradient match a float64 KD loss back-propagated in float64") {
  const pare::llama_model m = train_core_test::stories260k();
  auto student = distillation_test::damaged(m);
  const auto teacher = pare::llama_params<float>::from_model(m);
  const auto& all = train_core_test::val_tail_tokens();
  const std::vector<std::int32_t> w(all.begin() + 3000, all.begin() + 3040);
  pare::kd_options opt;
  opt.temperature = 2.0;
  opt.ce_weight = 0.3;
  const pare::window_loss loss = pare::distillation_loss(pare::teacher_logits(teacher), opt);
  pare::llama_params<float> g;
  const double lf = loss(student, w, &g, false);
  // Oracle: teacher logits and student backward in float64, the KD loss from its definition.
  auto td = pare::llama_params<double>::from_model(m);
  pare::llama_pass<double> tp;
  tp.forward(td, w);
  const std::vector<double> tlog(tp.logits().data(), tp.logits().data() + tp.logits().rows() * tp.logits().cols());
  auto sd = distillation_test::to_double(m, student);
  pare::llama_params<double> gd;
  const double ld = pare::logits_loss_and_grad(sd, w, distillation_test::kd64{tlog, w, 2.0, 0.3}, &gd);
  CHECK(lf == Approx(ld).epsilon(1e-4));
  auto a = g.named();
  auto b = gd.named();
  for (std::size_t i = 0; i < a.size(); ++i) {
    double scale = 0, err = 0;
    for (std::size_t k = 0; k < a[i].second->size(); ++k) {
      scale = std::max(scale, std::fabs((*b[i].second)[k]));
      err = std::max(err, std::fabs((*a[i].second)[k] - (*b[i].second)[k]));
    }
    INFO(a[i].first << ": max |float − float64| " << err << " of " << scale);
    CHECK(scale > 0);
    CHECK(err <= 1e-4 * scale);
  }
  // The model teacher (llama_session) gives the same loss as the params teacher.
  const pare::window_loss loss_m = pare::distillation_loss(pare::teacher_logits(m), opt);
  CHECK(loss_m(student, w, nullptr, false) == Approx(lf).epsilon(1e-4));
  CHECK_THROWS_AS(pare::distillation_loss(pare::teacher_logits_fn{}), pare::argument_error);
}

TEST_CASE("KD from the original stories260K repairs a damaged copy: KL on held-out windows falls") {
  const pare::llama_model m = train_core_test::stories260k();
  auto student = distillation_test::damaged(m);
  const auto& all = train_core_test::val_tail_tokens();
  std::vector<std::vector<std::int32_t>> held;
  for (std::size_t i = 0; i < 6; ++i) held.emplace_back(all.begin() + 20000 + 129 * i, all.begin() + 20000 + 129 * i + 129);
  const double before = distillation_test::held_out_kl(m, student, held);
  pare::parameter_set ps(student, pare::name_contains("blk.2.ffn"));  // heal the damaged block's FFN
  pare::adamw_options ao;
  ao.weight_decay = 0;
  pare::adamw opt(ao);
  pare::window_sampler data(std::vector<std::int32_t>(all.begin(), all.begin() + 12000), 128, 5);
  pare::train_options o;
  o.steps = 20;
  o.max_grad_norm = 1.0;
  o.schedule.peak = 2e-3;
  o.schedule.floor = 2e-4;
  o.schedule.warmup = 2;
  o.schedule.total = 20;
  pare::kd_options kd;
  kd.temperature = 1.0;
  pare::train(ps, opt, data, o, pare::distillation_loss(pare::teacher_logits(m), kd));
  const double after = distillation_test::held_out_kl(m, student, held);
  INFO("held-out KL(teacher ‖ student) " << before << " -> " << after);
  CHECK(before > 0.05);
  CHECK(after < 0.7 * before);
}
