// LoRA adapter set: gradients against float64 central finite differences on stories260K, W_eff against a float64 loop, PEFT init, B = 0 identity, bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../model/model_test_support.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/train/lora.hpp"
#include "pare/train/lora_export.hpp"
#include "pare_test_support.hpp"

namespace lora_test {

const std::vector<std::int32_t> tokens{1, 403, 407, 261, 378, 11, 300, 42, 7, 450, 499, 259};

/// The test's own W + s·B·A in double for one adapter, written into eff.
void weff_oracle(const pare::llama_params<double>& base, pare::llama_params<double>& eff,
                 const pare::lora_adapter<double>& a) {
  const std::vector<double>& w = const_cast<pare::llama_params<double>&>(base).at(a.name);
  std::vector<double>& e = eff.at(a.name);
  for (std::size_t i = 0; i < a.out; ++i)
    for (std::size_t j = 0; j < a.in; ++j) {
      double s = 0;
      for (std::size_t k = 0; k < a.rank; ++k) s += a.b[i * a.rank + k] * a.a[k * a.in + j];
      e[i * a.in + j] = w[i * a.in + j] + a.scale * s;
    }
}

double loss_with(const pare::llama_params<double>& base, pare::llama_params<double>& eff,
                 const pare::lora_set<double>& lora) {
  for (const auto& a : lora.adapters()) weff_oracle(base, eff, a);
  return pare::loss_and_grad(eff, tokens, nullptr);
}

std::vector<float> logits_of(const pare::llama_model& m) {
  pare::llama_session s(m);
  std::vector<float> l;
  s.forward(tokens.data(), tokens.size(), l, true);
  return l;
}

}  // namespace lora_test

TEST_CASE("LoRA adapter gradients match float64 central finite differences on stories260K", "[lora]") {
  const pare::llama_model m = model_test::stories260k();
  const auto base = pare::llama_params<double>::from_model(m);
  pare::lora_config cfg;
  cfg.rank = 4;
  cfg.alpha = 6;  // s = 1.5
  cfg.seed = 7;
  auto lora = pare::lora_set<double>::create(base, cfg, pare::lora_targets::all_linears());
  REQUIRE(lora.size() == 5 * 7);
  // B nonzero, so ∂L/∂A is not identically zero.
  std::uint64_t seed = 100;
  for (auto& a : lora.adapters()) {
    const auto g = pare_test::gaussian(a.b.size(), ++seed, 0.05);
    a.b.assign(g.begin(), g.end());
  }
  auto eff = lora.merged(base);
  pare::llama_params<double> grad;
  pare::loss_and_grad(eff, lora_test::tokens, &grad);
  lora.backward(grad);

  pare::llama_params<double> scratch = base;
  pare::splitmix64 pick(31);
  double worst = 0;
  std::size_t checked = 0;
  for (auto& a : lora.adapters()) {
    for (int which = 0; which < 2; ++which) {
      std::vector<double>& v = which == 0 ? a.a : a.b;
      const std::vector<double>& g = which == 0 ? a.grad_a : a.grad_b;
      std::vector<std::size_t> idx{static_cast<std::size_t>(
          std::max_element(g.begin(), g.end(), [](double x, double y) { return std::fabs(x) < std::fabs(y); }) - g.begin())};
      for (int r = 0; r < 2; ++r) idx.push_back(pick.next() % v.size());
      for (std::size_t i : idx) {
        const double v0 = v[i], h = 1e-5 * std::max(1.0, std::fabs(v0));
        v[i] = v0 + h;
        const double lp = lora_test::loss_with(base, scratch, lora);
        v[i] = v0 - h;
        const double lm = lora_test::loss_with(base, scratch, lora);
        v[i] = v0;
        const double fd = (lp - lm) / (2 * h), an = g[i];
        INFO(a.name << (which == 0 ? ".lora_a[" : ".lora_b[") << i << "]: analytic " << an << ", finite difference " << fd);
        CHECK(std::fabs(fd - an) <= 1e-8 + 1e-5 * std::fabs(an));
        worst = std::max(worst, std::fabs(fd - an));
        ++checked;
      }
    }
  }
  CHECK(checked == 35 * 2 * 3);
  WARN("LoRA gradient entries checked: " << checked << ", worst |fd - analytic| " << worst);
  // The gradients are not trivially zero (so the comparison above can fail).
  double norm_a = 0, norm_b = 0;
  for (const auto& a : lora.adapters()) {
    for (double x : a.grad_a) norm_a += x * x;
    for (double x : a.grad_b) norm_b += x * x;
  }
  CHECK(norm_a > 1e-6);
  CHECK(norm_b > 1e-6);
}

TEST_CASE("LoRA apply writes W + s·B·A (float64 loop) into the adapted tensors only", "[lora]") {
  const pare::llama_model m = model_test::stories260k();
  const auto base = pare::llama_params<double>::from_model(m);
  pare::lora_config cfg;
  cfg.rank = 3;
  cfg.alpha = 5;
  auto lora = pare::lora_set<double>::create(base, cfg, pare::lora_targets::kinds({"attn_q", "attn_v", "ffn_down"}));
  REQUIRE(lora.size() == 15);
  std::uint64_t seed = 5;
  for (auto& a : lora.adapters()) {
    const auto g = pare_test::gaussian(a.b.size(), ++seed, 0.1);
    a.b.assign(g.begin(), g.end());
    CHECK(a.scale == 5.0 / 3.0);
  }
  const auto eff = lora.merged(base);
  auto oracle = base;
  for (const auto& a : lora.adapters()) lora_test::weff_oracle(base, oracle, a);
  auto en = const_cast<pare::llama_params<double>&>(eff).named();
  auto on = oracle.named();
  auto bn = const_cast<pare::llama_params<double>&>(base).named();
  REQUIRE(en.size() == on.size());
  for (std::size_t t = 0; t < en.size(); ++t) {
    INFO(en[t].first);
    const bool adapted = en[t].first.find("attn_q") != std::string::npos || en[t].first.find("attn_v") != std::string::npos ||
                         en[t].first.find("ffn_down") != std::string::npos;
    double diff = 0, moved = 0;
    for (std::size_t i = 0; i < en[t].second->size(); ++i) {
      diff = std::max(diff, std::fabs((*en[t].second)[i] - (*on[t].second)[i]));
      moved = std::max(moved, std::fabs((*en[t].second)[i] - (*bn[t].second)[i]));
    }
    CHECK(diff <= 1e-15);
    if (adapted) CHECK(moved > 1e-3);
    else CHECK(moved == 0.0);
  }
}

TEST_CASE("LoRA init: B = 0, A ~ U(-1/sqrt(in), 1/sqrt(in)) keyed by (seed, tensor); B = 0 leaves logits bit-identical", "[lora]") {
  pare::llama_model m = model_test::stories260k();
  const auto base = pare::llama_params<float>::from_model(m);
  pare::lora_config cfg;
  cfg.rank = 8;
  cfg.alpha = 16;
  cfg.seed = 42;
  const auto lora = pare::lora_set<float>::create(base, cfg, pare::lora_targets::all_linears());
  REQUIRE(lora.size() == 35);
  // stories260K: dim 64, 8 heads, 4 KV heads (kv_dim 32), hidden 172, 5 blocks.
  CHECK(lora.parameter_count() == 5 * 8 * ((64 + 64) + 2 * (32 + 64) + (64 + 64) + 3 * (64 + 172)));
  double sum = 0, sum2 = 0;
  std::size_t n = 0;
  for (const auto& a : lora.adapters()) {
    INFO(a.name);
    CHECK(a.scale == 2.0f);
    CHECK(std::all_of(a.b.begin(), a.b.end(), [](float x) { return x == 0.0f; }));
    const double bound = 1.0 / std::sqrt(double(a.in));
    CHECK(std::all_of(a.a.begin(), a.a.end(), [&](float x) { return std::fabs(double(x)) <= bound; }));
    for (float x : a.a) {
      sum += x / bound;
      sum2 += (x / bound) * (x / bound);
      ++n;
    }
  }
  // U(-1, 1) after dividing by the bound: mean 0, variance 1/3 (n ≈ 36k draws).
  CHECK(std::fabs(sum / double(n)) < 0.02);
  CHECK(std::fabs(sum2 / double(n) - 1.0 / 3.0) < 0.01);
  // The same tensor gets the same A whatever else is selected; another seed gives another A.
  const auto only_q = pare::lora_set<float>::create(base, cfg, std::vector<std::string>{"blk.2.attn_q.weight"});
  CHECK(only_q.at("blk.2.attn_q.weight").a == lora.at("blk.2.attn_q.weight").a);
  pare::lora_config other = cfg;
  other.seed = 43;
  const auto reseeded = pare::lora_set<float>::create(base, other, std::vector<std::string>{"blk.2.attn_q.weight"});
  CHECK(reseeded.at("blk.2.attn_q.weight").a != lora.at("blk.2.attn_q.weight").a);
  CHECK(lora.at("blk.2.attn_q.weight").a != lora.at("blk.2.attn_k.weight").a);

  // B = 0: W_eff is W bit for bit, and so is the training loss.
  const auto eff = lora.merged(base);
  CHECK(pare::loss_and_grad(eff, lora_test::tokens, nullptr) == pare::loss_and_grad(base, lora_test::tokens, nullptr));
  const std::vector<float> ref = lora_test::logits_of(m);
  {  // attached as lora_linear layers: the session's logits are bit-identical
    pare::llama_model ma = model_test::stories260k();
    pare::attach_lora(ma, lora);
    CHECK(ma.linear("blk.0.attn_q.weight").format() == "f32+lora:r=8");
    CHECK(lora_test::logits_of(ma) == ref);
  }
  {  // merged into the dense weights: bit-identical too
    pare::llama_model mm = model_test::stories260k();
    pare::merge_lora(mm, lora);
    CHECK(lora_test::logits_of(mm) == ref);
  }
}

TEST_CASE("LoRA bad input: clear errors, nothing built or changed", "[lora]") {
  const pare::llama_model m = model_test::stories260k();
  const auto base = pare::llama_params<float>::from_model(m);
  const auto all = pare::lora_targets::all_linears();
  pare::lora_config cfg;
  cfg.rank = 0;
  CHECK_THROWS_AS(pare::lora_set<float>::create(base, cfg, all), pare::argument_error);
  CHECK_THROWS_WITH(pare::lora_set<float>::create(base, cfg, all), Catch::Contains("'rank'") && Catch::Contains("got 0"));
  cfg.rank = 33;  // > min(out, in) = 32 of attn_k [32, 64]
  CHECK_THROWS_WITH(pare::lora_set<float>::create(base, cfg, all), Catch::Contains("'rank'") &&
                    Catch::Contains("min(out, in) = 32") && Catch::Contains("attn_k") && Catch::Contains("got 33"));
  CHECK_NOTHROW(pare::lora_set<float>::create(base, pare::lora_config{32, 1.0, 0}, all));
  CHECK_NOTHROW(pare::lora_set<float>::create(base, pare::lora_config{64, 1.0, 0}, pare::lora_targets::kinds({"attn_q"})));
  for (double alpha : {0.0, -1.0, std::nan(""), double(INFINITY)}) {
    pare::lora_config c;
    c.alpha = alpha;
    INFO(alpha);
    CHECK_THROWS_AS(pare::lora_set<float>::create(base, c, all), pare::argument_error);
    CHECK_THROWS_WITH(pare::lora_set<float>::create(base, c, all), Catch::Contains("'alpha'"));
  }
  const pare::lora_config ok;
  CHECK_THROWS_WITH(pare::lora_set<float>::create(base, ok, std::vector<std::string>{"blk.0.attn_x.weight"}),
                    Catch::Contains("'names'") && Catch::Contains("blk.0.attn_x.weight"));
  CHECK_THROWS_AS(pare::lora_set<float>::create(base, ok, std::vector<std::string>{"blk.5.attn_q.weight"}),
                  pare::argument_error);
  CHECK_THROWS_AS(pare::lora_set<float>::create(base, ok, std::vector<std::string>{"token_embd.weight"}),
                  pare::argument_error);
  CHECK_THROWS_AS(pare::lora_set<float>::create(base, ok, std::vector<std::string>{"output.weight"}),
                  pare::unsupported_error);  // stories260K's classifier is tied
  CHECK_THROWS_AS(pare::lora_set<float>::create(base, ok, std::vector<std::string>{"blk.0.attn_q.weight", "blk.0.attn_q.weight"}),
                  pare::argument_error);
  CHECK_THROWS_WITH(pare::lora_targets::kinds({"attn_z"}), Catch::Contains("'attn_z'"));
  CHECK_THROWS_WITH(pare::lora_set<float>::create(base, ok, [](const std::string&) { return false; }),
                    Catch::Contains("'select'"));

  // Shape mismatch: params of another shape (a narrower FFN in block 1).
  auto lora = pare::lora_set<float>::create(base, ok, pare::lora_targets::kinds({"ffn_up"}));
  auto other = base;
  other.blocks[1].hidden = 100;
  other.blocks[1].w3.resize(100 * 64);
  auto eff = base;
  const auto before = eff.blocks[0].w3;
  lora.at("blk.0.ffn_up.weight").b.assign(lora.at("blk.0.ffn_up.weight").b.size(), 0.5f);
  CHECK_THROWS_AS(lora.apply(other, eff), pare::shape_error);
  CHECK_THROWS_WITH(lora.apply(other, eff), Catch::Contains("blk.1.ffn_up.weight") && Catch::Contains("[172, 64]"));
  CHECK(eff.blocks[0].w3 == before);  // nothing written (block 0 comes before the bad block)
  CHECK_THROWS_AS(lora.backward(other), pare::shape_error);
  CHECK_THROWS_AS(lora.at("blk.0.attn_q.weight"), pare::argument_error);

  // from_adapters: duplicates, bad shapes, bad scale.
  auto two = lora.adapters();
  CHECK(pare::lora_set<float>::from_adapters(ok, two).size() == 5);
  two.push_back(two.front());
  CHECK_THROWS_WITH(pare::lora_set<float>::from_adapters(ok, two), Catch::Contains("listed twice"));
  auto shp = lora.adapters();
  shp[2].a.pop_back();
  CHECK_THROWS_AS(pare::lora_set<float>::from_adapters(ok, shp), pare::shape_error);
  auto sc = lora.adapters();
  sc[1].scale = -1.0f;
  CHECK_THROWS_WITH(pare::lora_set<float>::from_adapters(ok, sc), Catch::Contains("scale"));
  CHECK_THROWS_AS(pare::lora_set<float>::from_adapters(ok, {}), pare::argument_error);

  // Exports: a non-finite adapter value, a model of another shape; the model is unchanged.
  pare::llama_model mm = model_test::stories260k();
  auto bad = lora;
  bad.at("blk.3.ffn_up.weight").a[7] = NAN;
  CHECK_THROWS_AS(pare::attach_lora(mm, bad), pare::value_error);
  CHECK_THROWS_AS(pare::merge_lora(mm, bad), pare::value_error);
  CHECK(mm.linear("blk.0.ffn_up.weight").format() == "f32");
  std::vector<float> w0(172 * 64), w1(172 * 64);
  m.linear("blk.0.ffn_up.weight").dense_weights(pare::matrix_view<float>(w0.data(), 172, 64));
  mm.linear("blk.0.ffn_up.weight").dense_weights(pare::matrix_view<float>(w1.data(), 172, 64));
  CHECK(w0 == w1);
}

TEST_CASE("LoRA on an untied classifier: gradients vs finite differences, attach and merge agree; accumulate adds", "[lora]") {
  pare::llama_model m = model_test::stories260k();
  m.tied_classifier = false;  // output.weight becomes its own tensor (a copy of the embedding)
  const auto base = pare::llama_params<double>::from_model(m);
  REQUIRE(!base.tied);
  pare::lora_config cfg;
  cfg.rank = 2;
  cfg.alpha = 3;
  auto lora = pare::lora_set<double>::create(base, cfg, pare::lora_targets::kinds({"output", "ffn_up"}));
  REQUIRE(lora.size() == 6);
  REQUIRE(lora.adapters().back().name == "output.weight");
  const auto ps = lora.parameters();
  REQUIRE(ps.size() == 12);
  CHECK(ps[0].name == "blk.0.ffn_up.weight.lora_a");
  CHECK(ps[11].name == "output.weight.lora_b");
  std::uint64_t seed = 900;
  for (auto& a : lora.adapters()) {
    const auto g = pare_test::gaussian(a.b.size(), ++seed, 0.05);
    a.b.assign(g.begin(), g.end());
  }
  auto eff = lora.merged(base);
  pare::llama_params<double> grad;
  pare::loss_and_grad(eff, lora_test::tokens, &grad);
  lora.backward(grad);
  auto& out = lora.at("output.weight");
  pare::llama_params<double> scratch = base;
  for (int which = 0; which < 2; ++which)
    for (std::size_t i : which == 0 ? std::vector<std::size_t>{3, 77, 127}  // A [2, 64]
                                    : std::vector<std::size_t>{403 * 2, 259 * 2 + 1, 42 * 2}) {  // B [512, 2]: rows of tokens in the text
      std::vector<double>& v = which == 0 ? out.a : out.b;
      REQUIRE(i < v.size());
      const double an = (which == 0 ? out.grad_a : out.grad_b)[i];
      const double v0 = v[i], h = 1e-5;
      v[i] = v0 + h;
      const double lp = lora_test::loss_with(base, scratch, lora);
      v[i] = v0 - h;
      const double lm = lora_test::loss_with(base, scratch, lora);
      v[i] = v0;
      const double fd = (lp - lm) / (2 * h);
      INFO((which == 0 ? "A[" : "B[") << i << "]: analytic " << an << ", finite difference " << fd);
      CHECK(std::fabs(fd - an) <= 1e-8 + 1e-5 * std::fabs(an));
      CHECK(std::fabs(an) > 1e-7);
    }
  // backward with accumulate adds to what is there.
  const auto ga = out.grad_a, gb = out.grad_b;
  lora.backward(grad, true);
  for (std::size_t i = 0; i < ga.size(); ++i) CHECK(out.grad_a[i] == Approx(2 * ga[i]).epsilon(1e-12).margin(1e-18));
  for (std::size_t i = 0; i < gb.size(); ++i) CHECK(out.grad_b[i] == 2 * gb[i]);
  // Exports into the untied model: attached and merged logits agree, and differ from the base's.
  pare::lora_set<float> lf = pare::lora_set<float>::create(pare::llama_params<float>::from_model(m), cfg,
                                                           pare::lora_targets::kinds({"output"}));
  for (auto& a : lf.adapters()) a.b = pare_test::gaussian(a.b.size(), 5, 0.1);
  pare::llama_model attached = model_test::stories260k(), merged = model_test::stories260k();
  attached.tied_classifier = merged.tied_classifier = false;
  pare::attach_lora(attached, lf);
  pare::merge_lora(merged, lf);
  const auto l0 = lora_test::logits_of(m), la = lora_test::logits_of(attached), lm = lora_test::logits_of(merged);
  double d_am = 0, d_0m = 0;
  for (std::size_t i = 0; i < l0.size(); ++i) {
    d_am = std::max(d_am, std::fabs(double(la[i]) - lm[i]));
    d_0m = std::max(d_0m, std::fabs(double(l0[i]) - lm[i]));
  }
  CHECK(d_am < 1e-4);
  CHECK(d_0m > 1e-2);
  // The tied model refuses an output.weight adapter at export.
  pare::llama_model tied = model_test::stories260k();
  CHECK_THROWS_AS(pare::attach_lora(tied, lf), pare::unsupported_error);
  CHECK(tied.linear("output.weight").format() == "f32");
}
