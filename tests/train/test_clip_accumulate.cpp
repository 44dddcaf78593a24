// Global-norm clipping against float64 norms computed here; gradient accumulation over k windows against the float64 gradient of the mean loss.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "pare/core/rng.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/train/grad_clip.hpp"
#include "pare/train/parameter_set.hpp"
#include "pare/train/window_loss.hpp"
#include "train_core_test_support.hpp"

namespace clip_accumulate_test {

inline double norm64(const pare::parameter_set& ps) {
  double s = 0;
  for (std::size_t i = 0; i < ps.size(); ++i)
    for (float g : ps.grad(i)) s += double(g) * g;
  return std::sqrt(s);
}

inline void random_grads(pare::parameter_set& ps, double scale, std::uint64_t seed) {
  pare::splitmix64 r(seed);
  for (auto& [n, v] : ps.gradients().named())
    for (float& x : *v) x = float((r.uniform() - 0.5) * scale);
}

}  // namespace clip_accumulate_test

TEST_CASE("clip_grad_norm: above max_norm the norm becomes max_norm; below, nothing changes; the pre-clip norm is returned") {
  auto p = train_core_test::tiny_params(40, 16, 2);
  pare::parameter_set ps(p, pare::name_contains("token_embd"));  // output_norm is frozen
  clip_accumulate_test::random_grads(ps, 2.0, 8);
  const auto frozen = ps.gradients().out_norm;
  const double n0 = clip_accumulate_test::norm64(ps);
  REQUIRE(n0 > 1.0);
  const auto g0 = ps.grad(0);
  const double ret = pare::clip_grad_norm(ps, 1.0);
  CHECK(ret == Approx(n0).epsilon(1e-12));
  CHECK(clip_accumulate_test::norm64(ps) == Approx(1.0).epsilon(1e-6));
  for (std::size_t k = 0; k < g0.size(); ++k) CHECK(ps.grad(0)[k] == Approx(g0[k] / n0).epsilon(1e-6).margin(1e-9));
  CHECK(ps.gradients().out_norm == frozen);  // frozen gradients neither counted nor scaled
  const auto g1 = ps.grad(0);
  const double ret2 = pare::clip_grad_norm(ps, 10.0);
  CHECK(ret2 == Approx(clip_accumulate_test::norm64(ps)).epsilon(1e-12));
  CHECK(ps.grad(0) == g1);  // below the threshold: bit-identical
  CHECK_THROWS_AS(pare::clip_grad_norm(ps, 0.0), pare::argument_error);
  ps.grad(0)[3] = std::nanf("");
  const auto g2 = ps.grad(0);
  CHECK_THROWS_AS(pare::clip_grad_norm(ps, 1.0), pare::value_error);
  for (std::size_t k = 0; k < g2.size(); ++k)
    if (k != 3) CHECK(ps.grad(0)[k] == g2[k]);
}

TEST_CASE("accumulate_gradients over k windows equals the float64 gradient of the mean loss") {
  const pare::llama_model m = train_core_test::stories260k();
  auto pf = pare::llama_params<float>::from_model(m);
  const auto pd = pare::llama_params<double>::from_model(m);
  const auto& toks = train_core_test::val_tail_tokens();
  std::vector<std::vector<std::int32_t>> windows;
  for (std::size_t w = 0; w < 3; ++w) windows.emplace_back(toks.begin() + 500 + 40 * w, toks.begin() + 500 + 40 * w + 33);
  pare::parameter_set ps(pf, pare::all_tensors());
  const double mean = pare::accumulate_gradients(ps, windows, pare::cross_entropy_loss());
  // Oracle: float64 gradient of (1/k)·Σ loss_k, each window's gradient computed separately and averaged here.
  pare::llama_params<double> sum = pd.zeros_like(), g;
  double loss64 = 0;
  for (const auto& w : windows) {
    loss64 += pare::loss_and_grad(pd, w, &g) / 3;
    auto sn = sum.named(), gn = g.named();
    for (std::size_t i = 0; i < sn.size(); ++i)
      for (std::size_t k = 0; k < sn[i].second->size(); ++k) (*sn[i].second)[k] += (*gn[i].second)[k] / 3;
  }
  CHECK(mean == Approx(loss64).epsilon(1e-5));
  auto an = ps.gradients().named();
  auto on = sum.named();
  for (std::size_t i = 0; i < an.size(); ++i) {
    double scale = 0, err = 0;
    for (std::size_t k = 0; k < an[i].second->size(); ++k) {
      scale = std::max(scale, std::fabs((*on[i].second)[k]));
      err = std::max(err, std::fabs((*an[i].second)[k] - (*on[i].second)[k]));
    }
    INFO(an[i].first << ": max |float − float64| " << err << " of max |g| " << scale);
    CHECK(scale > 0);
    CHECK(err <= 1e-4 * scale);
  }
  // A second call overwrites (does not add to) the previous gradient.
  const auto first = ps.gradients().embd;
  pare::accumulate_gradients(ps, windows, pare::cross_entropy_loss());
  CHECK(ps.gradients().embd == first);
  CHECK_THROWS_AS(pare::accumulate_gradients(ps, {}, pare::cross_entropy_loss()), pare::argument_error);
}
