// LoRA adapters stepped by pare's optimizers through a parameter_set of external tensors: AdamW's update against a float64 rule, clipping's norm, training lowers the loss, misuse refused.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "../model/model_test_support.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/train/adamw.hpp"
#include "pare/train/checkpoint.hpp"
#include "pare/train/grad_clip.hpp"
#include "pare/train/lora.hpp"
#include "pare/train/sgd.hpp"
#include "pare/train/window_sampler.hpp"

namespace lora_optimizer_test {

const std::vector<std::int32_t> tokens{1, 403, 407, 261, 378, 11, 300, 42, 7, 450, 499, 259, 301, 17, 88, 260};

struct fixture {
  pare::llama_params<float> base = pare::llama_params<float>::from_model(model_test::stories260k());
  pare::lora_set<float> lora;
  fixture() {
    pare::lora_config cfg;
    cfg.rank = 4;
    cfg.alpha = 8;
    cfg.seed = 3;
    lora = pare::lora_set<float>::create(base, cfg, pare::lora_targets::kinds({"attn_q", "ffn_up"}));
  }
  /// Training loss at W_eff; adapter gradients filled.
  float loss_and_adapter_grads() {
    pare::llama_params<float> eff = base;
    lora.apply(base, eff);
    pare::llama_params<float> g;
    const float l = pare::loss_and_grad(eff, tokens, &g);
    lora.backward(g);
    return l;
  }
};

}  // namespace lora_optimizer_test

TEST_CASE("lora_parameter_set: the adapters' own vectors, named <tensor>.lora_a / .lora_b") {
  lora_optimizer_test::fixture f;
  pare::parameter_set ps = pare::lora_parameter_set(f.lora);
  const auto params = f.lora.parameters();
  REQUIRE(ps.size() == params.size());
  REQUIRE(ps.size() == 2 * 5 * 2);  // 5 blocks × {attn_q, ffn_up} × {A, B}
  std::size_t count = 0;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    CHECK(ps.name(i) == params[i].name);
    CHECK(&ps.value(i) == params[i].value);
    CHECK(&ps.grad(i) == params[i].grad);
    count += params[i].value->size();
  }
  CHECK(ps.count() == count);
  CHECK(ps.count() == f.lora.parameter_count());
  CHECK_FALSE(ps.has_params());
  CHECK_THROWS_AS(ps.params(), pare::unsupported_error);
  CHECK_THROWS_AS(ps.gradients(), pare::unsupported_error);
}

TEST_CASE("AdamW over LoRA adapters: two steps equal torch's rule in float64, the base never moves") {
  lora_optimizer_test::fixture f;
  const pare::llama_params<float> base0 = f.base;
  // Make B nonzero so both A's and B's gradients are nonzero.
  for (auto& p : f.lora.parameters())
    if (p.name.find("lora_b") != std::string::npos)
      for (std::size_t i = 0; i < p.value->size(); ++i) (*p.value)[i] = 0.01f * float(int(i % 7) - 3);
  pare::parameter_set ps = pare::lora_parameter_set(f.lora);
  const double lr[2] = {1e-3, 5e-4}, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.05;
  pare::adamw_options o;
  o.weight_decay = wd;
  pare::adamw opt(o);
  // float64 oracle state per tensor
  std::vector<std::vector<double>> p64, m64, v64;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    p64.emplace_back(ps.value(i).begin(), ps.value(i).end());
    m64.emplace_back(ps.value(i).size(), 0.0);
    v64.emplace_back(ps.value(i).size(), 0.0);
  }
  for (int step = 0; step < 2; ++step) {
    f.loss_and_adapter_grads();
    // The oracle starts from the float values the optimizer holds and uses the same gradients.
    for (std::size_t i = 0; i < ps.size(); ++i)
      for (std::size_t j = 0; j < ps.value(i).size(); ++j) {
        const double g = ps.grad(i)[j], t = step + 1;
        double& p = p64[i][j];
        p = double(ps.value(i)[j]);
        p *= 1 - lr[step] * wd;
        m64[i][j] = b1 * m64[i][j] + (1 - b1) * g;
        v64[i][j] = b2 * v64[i][j] + (1 - b2) * g * g;
        const double mh = m64[i][j] / (1 - std::pow(b1, t)), vh = v64[i][j] / (1 - std::pow(b2, t));
        p -= lr[step] * mh / (std::sqrt(vh) + eps);
      }
    opt.step(ps, lr[step]);
    double worst = 0;
    std::size_t moved = 0;
    for (std::size_t i = 0; i < ps.size(); ++i)
      for (std::size_t j = 0; j < ps.value(i).size(); ++j) {
        worst = std::max(worst, std::fabs(double(ps.value(i)[j]) - p64[i][j]));
        moved += ps.grad(i)[j] != 0.0f;
      }
    INFO("step " << step << ": worst |float − float64| " << worst);
    CHECK(worst <= 1e-6);
    CHECK(moved > ps.count() / 2);
  }
  auto a = f.base.named();
  auto b = const_cast<pare::llama_params<float>&>(base0).named();
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(*a[i].second == *b[i].second);
}

TEST_CASE("clipping and SGD over LoRA adapters: the norm is the float64 norm of the adapter gradients; training lowers the loss") {
  lora_optimizer_test::fixture f;
  pare::parameter_set ps = pare::lora_parameter_set(f.lora);
  const float l0 = f.loss_and_adapter_grads();
  double s = 0;
  for (auto& p : f.lora.parameters())
    for (float g : *p.grad) s += double(g) * double(g);
  const double norm = pare::clip_grad_norm(ps, 0.5 * std::sqrt(s));
  CHECK(norm == Approx(std::sqrt(s)).epsilon(1e-6));
  double after = 0;
  for (std::size_t i = 0; i < ps.size(); ++i)
    for (float g : ps.grad(i)) after += double(g) * double(g);
  CHECK(std::sqrt(after) == Approx(0.5 * std::sqrt(s)).epsilon(1e-5));
  pare::adamw opt;
  opt.step(ps, 1e-2);
  for (int k = 0; k < 9; ++k) {
    f.loss_and_adapter_grads();
    opt.step(ps, 1e-2);
  }
  const float l1 = f.loss_and_adapter_grads();
  INFO("loss before " << l0 << ", after 10 AdamW steps on the same window " << l1);
  CHECK(l1 < 0.9f * l0);
  ps.zero_grad();
  for (auto& p : f.lora.parameters())
    for (float g : *p.grad) REQUIRE(g == 0.0f);
}

TEST_CASE("parameter_set of external tensors: bad lists and llama_params-only uses are refused") {
  std::vector<float> a(4, 1.0f), ga(4, 0.0f), b(3, 1.0f), gb(2, 0.0f);
  using pare::external_tensor;
  CHECK_THROWS_AS(pare::parameter_set(std::vector<external_tensor>{}), pare::argument_error);
  CHECK_THROWS_AS(pare::parameter_set(std::vector<external_tensor>{{"a", &a, nullptr}}), pare::argument_error);
  CHECK_THROWS_AS(pare::parameter_set(std::vector<external_tensor>{{"b", &b, &gb}}), pare::argument_error);
  CHECK_THROWS_AS(pare::parameter_set(std::vector<external_tensor>{{"a", &a, &ga}, {"a", &a, &ga}}), pare::argument_error);
  pare::parameter_set ps(std::vector<external_tensor>{{"a", &a, &ga}});
  pare::sgd opt;
  std::vector<std::int32_t> toks(64);
  for (std::size_t i = 0; i < toks.size(); ++i) toks[i] = std::int32_t(i % 50);
  const pare::window_sampler data(toks, 8, 1);
  const std::string path = "pare_test_lora_optimizer_ckpt.bin";
  std::remove(path.c_str());
  CHECK_THROWS_AS(pare::save_checkpoint(path, ps, opt, data), pare::unsupported_error);
  std::FILE* fp = std::fopen(path.c_str(), "rb");
  CHECK(fp == nullptr);
  if (fp) std::fclose(fp);
  CHECK(a == std::vector<float>(4, 1.0f));
}
