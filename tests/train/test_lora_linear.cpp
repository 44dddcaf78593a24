// lora_linear and the LoRA exports: forward and dense weights against float64 loops over dense / pare-quantized / ggml bases; merged vs attached logits; re-quantization in the base's format; bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../model/model_test_support.hpp"
#include "pare/ggml/quantize.hpp"
#include "pare/model/layers/factorized_linear.hpp"
#include "pare/model/layers/ggml_linear.hpp"
#include "pare/model/layers/lora_linear.hpp"
#include "pare/model/layers/quantized_linear.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/quant/quantize.hpp"
#include "pare/train/lora.hpp"
#include "pare/train/lora_export.hpp"
#include "pare_test_support.hpp"

namespace lora_linear_test {

using mv = pare::matrix_view<const float>;

std::vector<float> dense_of(const pare::linear_layer& l) {
  std::vector<float> w(l.out_features() * l.in_features());
  l.dense_weights(pare::matrix_view<float>(w.data(), l.out_features(), l.in_features()));
  return w;
}

/// base kinds: 0 dense, 1 pare int4:g32, 2 ggml q4_0, 3 ggml q8_0, 4 pare int8 per channel.
std::unique_ptr<pare::linear_layer> make_base(int kind, const std::vector<float>& w, std::size_t out, std::size_t in) {
  const mv wv(w.data(), out, in);
  switch (kind) {
    case 1: return std::make_unique<pare::quantized_linear>(wv, pare::quant_config::parse("int4:g32"));
    case 2: return std::make_unique<pare::ggml_linear>(wv, pare::ggml::type::q4_0);
    case 3: return std::make_unique<pare::ggml_linear>(wv, pare::ggml::type::q8_0);
    case 4: return std::make_unique<pare::quantized_linear>(wv, pare::quant_config::parse("int8:per_channel:sym"));
    default: return std::make_unique<pare::dense_linear>(wv);
  }
}

std::vector<float> logits_of(const pare::llama_model& m, const std::vector<std::int32_t>& toks) {
  pare::llama_session s(m);
  std::vector<float> l;
  s.forward(toks.data(), toks.size(), l, true);
  return l;
}

const std::vector<std::int32_t> toks{1, 403, 407, 261, 378, 11, 300, 42, 7, 450, 499, 259, 33, 97, 120, 5};

/// A lora_set over stories260K's linears with B drawn at σ.
pare::lora_set<float> trained_like(const pare::llama_params<float>& base, double sigma, std::uint64_t seed) {
  pare::lora_config cfg;
  cfg.rank = 4;
  cfg.alpha = 8;
  cfg.seed = seed;
  auto lora = pare::lora_set<float>::create(base, cfg, pare::lora_targets::all_linears());
  for (auto& a : lora.adapters()) a.b = pare_test::gaussian(a.b.size(), ++seed, sigma);
  return lora;
}

std::vector<float> deq(const pare::quantized_tensor& q) {
  std::vector<float> w(q.rows * q.cols);
  q.dequantize_into(pare::matrix_view<float>(w.data(), q.rows, q.cols));
  return w;
}

/// The test's own dense(base) + s·B·A, the sum over k in double, rounded once.
std::vector<float> weff(const std::vector<float>& w, const pare::lora_adapter<float>& a) {
  std::vector<float> e(w.size());
  for (std::size_t i = 0; i < a.out; ++i)
    for (std::size_t j = 0; j < a.in; ++j) {
      double s = 0;
      for (std::size_t k = 0; k < a.rank; ++k) s += double(a.b[i * a.rank + k]) * double(a.a[k * a.in + j]);
      e[i * a.in + j] = static_cast<float>(double(w[i * a.in + j]) + double(a.scale) * s);
    }
  return e;
}

}  // namespace lora_linear_test

TEST_CASE("lora_linear forward and dense weights equal float64 loops over dense, pare-quantized and ggml bases", "[lora]") {
  namespace t = lora_linear_test;
  struct shape {
    std::size_t out, in, r, m;
  };
  std::uint64_t seed = 1000;
  for (int kind = 0; kind < 5; ++kind) {
    const std::vector<shape> shapes =
        kind == 0 ? std::vector<shape>{{1, 1, 1, 1}, {5, 3, 2, 4}, {17, 33, 1, 1}, {16, 64, 8, 7}, {33, 17, 17, 2}, {64, 172, 8, 3}}
                  : std::vector<shape>{{5, 64, 2, 3}, {64, 64, 8, 1}, {17, 128, 16, 5}};
    for (const shape& sh : shapes) {
      INFO("base kind " << kind << ", out " << sh.out << ", in " << sh.in << ", r " << sh.r << ", M " << sh.m);
      const auto w = pare_test::gaussian(sh.out * sh.in, ++seed, 0.5);
      const auto a = pare_test::uniform(sh.r * sh.in, ++seed, -0.3, 0.3);
      const auto b = pare_test::gaussian(sh.out * sh.r, ++seed, 0.2);
      const auto x = pare_test::gaussian(sh.m * sh.in, ++seed);
      const float s = 1.75f;
      auto base = t::make_base(kind, w, sh.out, sh.in);
      const std::vector<float> wb = t::dense_of(*base);
      const std::size_t base_bytes = base->storage_bytes();
      const std::string base_format = base->format();
      std::vector<float> yb(sh.m * sh.out);
      base->forward(t::mv(x.data(), sh.m, sh.in), pare::matrix_view<float>(yb.data(), sh.m, sh.out));
      const pare::lora_linear l(std::move(base), t::mv(a.data(), sh.r, sh.in), t::mv(b.data(), sh.out, sh.r), s);
      CHECK(l.rank() == sh.r);
      CHECK(l.format() == base_format + "+lora:r=" + std::to_string(sh.r));
      CHECK(l.storage_bytes() == base_bytes + 4 * sh.r * (sh.in + sh.out));
      CHECK(l.bits_per_weight() == Approx(8.0 * double(l.storage_bytes()) / double(sh.in * sh.out)));
      std::vector<float> y(sh.m * sh.out);
      l.forward(t::mv(x.data(), sh.m, sh.in), pare::matrix_view<float>(y.data(), sh.m, sh.out));
      double worst_delta = 0, worst_full = 0;
      for (std::size_t i = 0; i < sh.m; ++i)
        for (std::size_t o = 0; o < sh.out; ++o) {
          double wx = 0, wx_abs = 0, lo = 0, lo_abs = 0;
          for (std::size_t j = 0; j < sh.in; ++j) {
            wx += double(wb[o * sh.in + j]) * x[i * sh.in + j];
            wx_abs += std::fabs(double(wb[o * sh.in + j]) * x[i * sh.in + j]);
          }
          for (std::size_t k = 0; k < sh.r; ++k) {
            double ax = 0, ax_abs = 0;
            for (std::size_t j = 0; j < sh.in; ++j) {
              ax += double(a[k * sh.in + j]) * x[i * sh.in + j];
              ax_abs += std::fabs(double(a[k * sh.in + j]) * x[i * sh.in + j]);
            }
            lo += double(s) * b[o * sh.r + k] * ax;
            lo_abs += std::fabs(double(s) * b[o * sh.r + k]) * ax_abs;
          }
          const double got = y[i * sh.out + o];
          // The adapter's contribution: y − base(x) against s·B·A·x (fp32 rounding of the sums).
          const double tol_delta = 1e-6 + 4e-7 * double(sh.in + sh.r) * (lo_abs + std::fabs(double(yb[i * sh.out + o])));
          CHECK(std::fabs((got - yb[i * sh.out + o]) - lo) <= tol_delta);
          worst_delta = std::max(worst_delta, std::fabs((got - yb[i * sh.out + o]) - lo));
          // The whole output against W·x + s·B·A·x: exact fp32 sums for a dense base; the
          // integer kernels quantize x per row to int8 (|error| ≤ max|x|/254 per input).
          double xmax = 0;
          for (std::size_t j = 0; j < sh.in; ++j) xmax = std::max(xmax, std::fabs(double(x[i * sh.in + j])));
          double wrow = 0;
          for (std::size_t j = 0; j < sh.in; ++j) wrow += std::fabs(double(wb[o * sh.in + j]));
          const double tol_full = kind == 0 ? tol_delta + 4e-7 * double(sh.in) * wx_abs : tol_delta + xmax / 254.0 * wrow * 1.01 + 1e-5 * wx_abs;
          CHECK(std::fabs(got - (wx + lo)) <= tol_full);
          worst_full = std::max(worst_full, std::fabs(got - (wx + lo)));
        }
      // dense_weights: dense(base) + s·B·A rounded once from double.
      const std::vector<float> wd = t::dense_of(l);
      for (std::size_t o = 0; o < sh.out; ++o)
        for (std::size_t j = 0; j < sh.in; ++j) {
          double ba = 0;
          for (std::size_t k = 0; k < sh.r; ++k) ba += double(b[o * sh.r + k]) * a[k * sh.in + j];
          const double ref = double(wb[o * sh.in + j]) + double(s) * ba;
          CHECK(std::fabs(double(wd[o * sh.in + j]) - ref) <= 1e-12 + 6e-8 * std::fabs(ref));
        }
      // The base is untouched: its dense weights are those before wrapping.
      CHECK(t::dense_of(l.base()) == wb);
    }
  }
}

TEST_CASE("lora_linear bad input: clear errors, nothing changed", "[lora]") {
  namespace t = lora_linear_test;
  const auto w = pare_test::gaussian(8 * 6, 3);
  const auto a = pare_test::gaussian(2 * 6, 4), b = pare_test::gaussian(8 * 2, 5);
  auto base = [&] { return std::make_unique<pare::dense_linear>(t::mv(w.data(), 8, 6)); };
  CHECK_THROWS_WITH(pare::lora_linear(nullptr, t::mv(a.data(), 2, 6), t::mv(b.data(), 8, 2), 1.0f),
                    Catch::Contains("'base'") && Catch::Contains("null"));
  CHECK_THROWS_AS(pare::lora_linear(base(), t::mv(a.data(), 2, 5), t::mv(b.data(), 8, 2), 1.0f), pare::shape_error);
  CHECK_THROWS_WITH(pare::lora_linear(base(), t::mv(a.data(), 2, 6), t::mv(b.data(), 7, 2), 1.0f),
                    Catch::Contains("b [8, r]") && Catch::Contains("[7, 2]"));
  CHECK_THROWS_AS(pare::lora_linear(base(), t::mv(a.data(), 2, 6), t::mv(b.data(), 8, 1), 1.0f), pare::shape_error);
  CHECK_THROWS_WITH(pare::lora_linear(base(), t::mv(a.data(), 0, 6), t::mv(b.data(), 8, 0), 1.0f),
                    Catch::Contains("'rank'") && Catch::Contains("got 0"));
  const auto a7 = pare_test::gaussian(7 * 6, 6), b7 = pare_test::gaussian(8 * 7, 7);
  CHECK_THROWS_WITH(pare::lora_linear(base(), t::mv(a7.data(), 7, 6), t::mv(b7.data(), 8, 7), 1.0f),
                    Catch::Contains("min(out, in) = 6") && Catch::Contains("got 7"));
  for (float s : {0.0f, -2.0f, NAN, INFINITY}) {
    INFO(s);
    CHECK_THROWS_WITH(pare::lora_linear(base(), t::mv(a.data(), 2, 6), t::mv(b.data(), 8, 2), s), Catch::Contains("'scale'"));
  }
  auto an = a;
  an[5] = NAN;
  CHECK_THROWS_AS(pare::lora_linear(base(), t::mv(an.data(), 2, 6), t::mv(b.data(), 8, 2), 1.0f), pare::value_error);
  pare::lora_linear l(base(), t::mv(a.data(), 2, 6), t::mv(b.data(), 8, 2), 1.0f);
  const auto before = t::dense_of(l);
  CHECK_THROWS_AS(l.set_adapter(t::mv(an.data(), 2, 6), t::mv(b.data(), 8, 2), 1.0f), pare::value_error);
  CHECK_THROWS_AS(l.set_adapter(t::mv(a.data(), 2, 6), t::mv(b.data(), 8, 2), NAN), pare::argument_error);
  CHECK(t::dense_of(l) == before);
  CHECK(l.a() == a);
  std::vector<float> x(3 * 5), y(3 * 8);
  CHECK_THROWS_AS(l.forward(t::mv(x.data(), 3, 5), pare::matrix_view<float>(y.data(), 3, 8)), pare::shape_error);
}

TEST_CASE("LoRA merged into dense weights gives the attached lora_linear model's logits to fp32 rounding", "[lora]") {
  namespace t = lora_linear_test;
  const pare::llama_model m0 = model_test::stories260k();
  const auto base = pare::llama_params<float>::from_model(m0);
  const auto lora = t::trained_like(base, 0.05, 77);
  pare::llama_model attached = model_test::stories260k(), merged = model_test::stories260k();
  const auto ra = pare::attach_lora(attached, lora);
  const auto rm = pare::merge_lora(merged, lora);
  REQUIRE(ra.size() == 35);
  REQUIRE(rm.size() == 35);
  CHECK(ra[0].format == "f32+lora:r=4");
  CHECK(rm[0].format == "f32");
  // Merged weights: W + s·B·A (the test's float64 sum, rounded once).
  for (const auto& a : lora.adapters()) {
    INFO(a.name);
    const auto want = t::weff(t::dense_of(m0.linear(a.name)), a);
    const auto got = t::dense_of(merged.linear(a.name));
    REQUIRE(got.size() == want.size());
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::fabs(double(got[i]) - want[i]) / std::max(1e-30, std::fabs(double(want[i]))));
    CHECK(worst <= 1.2e-7);  // at most one rounding apart
  }
  const auto l0 = t::logits_of(m0, t::toks), la = t::logits_of(attached, t::toks), lm = t::logits_of(merged, t::toks);
  double scale = 0, d_am = 0, d_0m = 0;
  for (std::size_t i = 0; i < l0.size(); ++i) {
    scale = std::max(scale, std::fabs(double(l0[i])));
    d_am = std::max(d_am, std::fabs(double(la[i]) - lm[i]));
    d_0m = std::max(d_0m, std::fabs(double(l0[i]) - lm[i]));
  }
  WARN("max |logit| " << scale << "; attached vs merged " << d_am << "; base vs merged " << d_0m);
  CHECK(d_am <= 2e-5 * scale);
  CHECK(d_0m > 1e-2 * scale);  // the adapters do change the model
  // The float64 training loss at the merged weights equals the merged model's params loss.
  const auto eff = lora.merged(base);
  const auto pm = pare::llama_params<float>::from_model(merged);
  CHECK(double(pare::loss_and_grad(eff, t::toks, nullptr)) == Approx(double(pare::loss_and_grad(pm, t::toks, nullptr))).epsilon(1e-6));
}

TEST_CASE("LoRA merged and re-quantized in each base layer's own format; quantized bases refuse a dense merge", "[lora]") {
  namespace t = lora_linear_test;
  pare::llama_model m = model_test::stories260k();
  // Mixed bases: attn_q pare int4:g32, attn_k ggml q4_0, attn_v ggml q8_0, ffn_down pare
  // int8 per channel (172 inputs), the rest dense.
  for (std::size_t l = 0; l < m.blocks.size(); ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    for (auto [name, kind] : std::vector<std::pair<std::string, int>>{{"attn_q", 1}, {"attn_k", 2}, {"attn_v", 3}, {"ffn_down", 4}}) {
      const pare::linear_layer& cur = m.linear(p + name + ".weight");
      m.set_linear(p + name + ".weight", t::make_base(kind, t::dense_of(cur), cur.out_features(), cur.in_features()));
    }
  }
  const auto base = pare::llama_params<float>::from_model(m);
  const auto lora = t::trained_like(base, 0.05, 99);
  std::vector<std::string> formats;
  for (const auto& a : lora.adapters()) formats.push_back(m.linear(a.name).format());

  // A dense merge is refused for quantized bases, and nothing changes.
  CHECK_THROWS_AS(pare::merge_lora(m, lora), pare::unsupported_error);
  CHECK_THROWS_WITH(pare::merge_lora(m, lora), Catch::Contains("blk.0.attn_q.weight") && Catch::Contains("int4"));
  for (std::size_t n = 0; n < formats.size(); ++n) CHECK(m.linear(lora.adapters()[n].name).format() == formats[n]);

  pare::llama_model plain = model_test::stories260k(), attached = model_test::stories260k();
  for (const std::string& name : m.linear_names())
    if (name != "output.weight") {
      plain.set_linear(name, t::make_base(0, t::dense_of(m.linear(name)), m.linear(name).out_features(), m.linear(name).in_features()));
    }
  // Rebuild `attached` with the same quantized bases, then attach the adapters first.
  for (std::size_t l = 0; l < m.blocks.size(); ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    for (auto [name, kind] : std::vector<std::pair<std::string, int>>{{"attn_q", 1}, {"attn_k", 2}, {"attn_v", 3}, {"ffn_down", 4}}) {
      const pare::linear_layer& cur = attached.linear(p + name + ".weight");
      attached.set_linear(p + name + ".weight", t::make_base(kind, t::dense_of(cur), cur.out_features(), cur.in_features()));
    }
  }
  pare::attach_lora(attached, lora);
  const auto again = pare::attach_lora(attached, lora);  // a lora_linear keeps its base and takes the new adapter
  CHECK(again[0].format == "int4:g32:sym:minmax:rne+lora:r=4");
  const auto rec = pare::merge_lora_requantize(m, lora);
  const auto rec_att = pare::merge_lora_requantize(attached, lora);
  REQUIRE(rec.size() == lora.size());
  for (std::size_t n = 0; n < rec.size(); ++n) {
    const auto& a = lora.adapters()[n];
    INFO(a.name << " " << formats[n]);
    CHECK(rec[n].format == formats[n]);
    CHECK(rec_att[n].format == formats[n]);
    // The oracle: the test's W_eff quantized directly with the base's format.
    const auto w = t::weff(t::dense_of(plain.linear(a.name)), a);
    const t::mv wv(w.data(), a.out, a.in);
    std::vector<float> want;
    const std::string kind = a.name.substr(a.name.find('.', 4) + 1);
    if (kind == "attn_q.weight") want = t::deq(pare::quantize(wv, pare::quant_config::parse("int4:g32")));
    else if (kind == "attn_k.weight") want = pare::ggml::quantize(wv, pare::ggml::type::q4_0).dequantize();
    else if (kind == "attn_v.weight") want = pare::ggml::quantize(wv, pare::ggml::type::q8_0).dequantize();
    else if (kind == "ffn_down.weight") want = t::deq(pare::quantize(wv, pare::quant_config::parse("int8:per_channel:sym")));
    else want = w;
    CHECK(t::dense_of(m.linear(a.name)) == want);
    CHECK(t::dense_of(attached.linear(a.name)) == want);  // the adapter in a lora_linear is replaced, not added twice
  }
  // Re-quantizing a factorized base is refused.
  pare::llama_model f = model_test::stories260k();
  const auto fa = pare_test::gaussian(64 * 2, 1), fb = pare_test::gaussian(2 * 64, 2);
  f.set_linear("blk.0.attn_q.weight", std::make_unique<pare::factorized_linear>(t::mv(fa.data(), 64, 2), t::mv(fb.data(), 2, 64)));
  CHECK_THROWS_WITH(pare::merge_lora_requantize(f, lora), Catch::Contains("blk.0.attn_q.weight") && Catch::Contains("lowrank"));
  CHECK(f.linear("blk.0.attn_q.weight").format() == "lowrank:r=2");
  CHECK(f.linear("blk.0.attn_k.weight").format() == "f32");
}
