// LoRA training on stories260K: a short Adam run (written here) lowers held-out val_tail loss, and QLoRA steps over quantized bases leave the base layers' bytes bit-identical.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../model/model_test_support.hpp"
#include "pare/model/layers/ggml_linear.hpp"
#include "pare/model/layers/lora_linear.hpp"
#include "pare/model/layers/quantized_linear.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/train/lora.hpp"
#include "pare/train/lora_export.hpp"
#include "pare_test_support.hpp"

namespace lora_train_test {

using window = std::vector<std::int32_t>;

/// val_tail's protocol token stream (paragraphs with BOS).
std::vector<std::int32_t> val_tail_tokens() {
  const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), 512);
  std::ifstream in(pare_test::data_path("text/tinystories_val_tail.txt"));
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return pare::protocol_tokens(tok, ss.str());
}

/// Windows of `len` tokens: the training part is the first 80% of the stream, held-out
/// windows are cut from the last 20% (never overlapping the training part).
struct split {
  std::vector<std::int32_t> stream;
  std::size_t cut = 0;
  window train_at(std::size_t start, std::size_t len) const {
    return window(stream.begin() + std::ptrdiff_t(start), stream.begin() + std::ptrdiff_t(start + len));
  }
  std::vector<window> held_out(std::size_t count, std::size_t len) const {
    std::vector<window> w;
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t s = cut + i * len;
      REQUIRE(s + len <= stream.size());
      w.emplace_back(stream.begin() + std::ptrdiff_t(s), stream.begin() + std::ptrdiff_t(s + len));
    }
    return w;
  }
};

split make_split() {
  split s;
  s.stream = val_tail_tokens();
  s.cut = s.stream.size() * 4 / 5;
  return s;
}

/// Mean next-token NLL of the session's forward pass (the inference path, not the
/// training-mode loss), log-softmax in double.
double session_nll(const pare::llama_model& m, const std::vector<window>& ws) {
  double total = 0;
  std::size_t count = 0;
  const std::size_t vocab = m.config.vocab_size;
  for (const window& w : ws) {
    pare::llama_session s(m);
    std::vector<float> logits;
    s.forward(w.data(), w.size(), logits, true);
    for (std::size_t t = 0; t + 1 < w.size(); ++t) {
      const float* l = logits.data() + t * vocab;
      const double mx = *std::max_element(l, l + vocab);
      double z = 0;
      for (std::size_t i = 0; i < vocab; ++i) z += std::exp(double(l[i]) - mx);
      total += std::log(z) - (double(l[w[t + 1]]) - mx);
      ++count;
    }
  }
  return total / double(count);
}

double params_loss(const pare::llama_params<float>& p, const std::vector<window>& ws) {
  double s = 0;
  for (const window& w : ws) s += double(pare::loss_and_grad(p, w, nullptr));
  return s / double(ws.size());
}

/// Adam (Kingma & Ba) with bias correction, written here: the optimizer is not under test.
struct adam {
  double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  int t = 0;
  std::vector<std::vector<double>> m, v;
  void step(std::vector<pare::lora_param<float>>& ps) {
    if (m.empty())
      for (auto& p : ps) {
        m.emplace_back(p.value->size(), 0.0);
        v.emplace_back(p.value->size(), 0.0);
      }
    ++t;
    const double c1 = 1 - std::pow(b1, t), c2 = 1 - std::pow(b2, t);
    for (std::size_t k = 0; k < ps.size(); ++k)
      for (std::size_t i = 0; i < ps[k].value->size(); ++i) {
        const double g = (*ps[k].grad)[i];
        m[k][i] = b1 * m[k][i] + (1 - b1) * g;
        v[k][i] = b2 * v[k][i] + (1 - b2) * g * g;
        (*ps[k].value)[i] -= float(lr * (m[k][i] / c1) / (std::sqrt(v[k][i] / c2) + eps));
      }
  }
};

/// One gradient of the mean loss over a batch of windows into the adapters.
double batch_grad(pare::lora_set<float>& lora, const pare::llama_params<float>& base, pare::llama_params<float>& eff,
                  const std::vector<window>& batch) {
  lora.apply(base, eff);
  pare::llama_params<float> g = eff.zeros_like();
  double loss = 0;
  for (const window& w : batch) loss += double(pare::loss_and_grad(eff, w, &g, true));
  for (auto& [name, v] : g.named())
    for (float& x : *v) x /= float(batch.size());
  lora.backward(g);
  return loss / double(batch.size());
}

}  // namespace lora_train_test

TEST_CASE("LoRA r=8 on every linear of stories260K: 40 Adam steps on val_tail lower the held-out val_tail loss", "[lora]") {
  namespace t = lora_train_test;
  const t::split data = t::make_split();
  const std::size_t len = 128;
  const std::vector<t::window> held = data.held_out(16, len);
  pare::llama_model m = model_test::stories260k();
  const auto base = pare::llama_params<float>::from_model(m);
  pare::lora_config cfg;
  cfg.rank = 8;
  cfg.alpha = 16;
  cfg.seed = 2024;
  auto lora = pare::lora_set<float>::create(base, cfg, pare::lora_targets::all_linears());
  auto params = lora.parameters();
  REQUIRE(params.size() == 70);
  auto eff = base;
  const double held_before = t::params_loss(base, held);
  t::adam opt;
  opt.lr = 3e-3;
  pare::splitmix64 pick(7);
  double first = 0, last = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const int steps = 40;
  for (int step = 0; step < steps; ++step) {
    std::vector<t::window> batch;
    for (int b = 0; b < 4; ++b) batch.push_back(data.train_at(pick.next() % (data.cut - len), len));
    const double loss = t::batch_grad(lora, base, eff, batch);
    if (step == 0) first = loss;
    last = loss;
    opt.step(params);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  lora.apply(base, eff);
  const double held_after = t::params_loss(eff, held);
  // The same figure through the inference path of an exported model (attached, merged).
  pare::llama_model attached = model_test::stories260k(), merged = model_test::stories260k();
  pare::attach_lora(attached, lora);
  pare::merge_lora(merged, lora);
  const double sess_base = t::session_nll(m, held), sess_att = t::session_nll(attached, held),
               sess_mrg = t::session_nll(merged, held);
  WARN("LoRA r=8 all linears (" << lora.parameter_count() << " trainable), " << steps << " Adam steps × 4 windows of " << len
       << " tokens in " << secs << " s: batch loss " << first << " → " << last << "; held-out (16 windows) loss "
       << held_before << " → " << held_after << " (training-mode), session " << sess_base << " → attached " << sess_att
       << ", merged " << sess_mrg);
  CHECK(held_after < held_before - 0.01);
  CHECK(sess_att < sess_base - 0.01);
  CHECK(sess_att == Approx(held_after).epsilon(1e-4));
  CHECK(sess_mrg == Approx(sess_att).epsilon(1e-5));
  CHECK(sess_base == Approx(held_before).epsilon(1e-4));
}

TEST_CASE("QLoRA: gradient steps over quantized bases leave the base layers bit-identical; the adapters lower the loss", "[lora]") {
  namespace t = lora_train_test;
  const t::split data = t::make_split();
  pare::llama_model m = model_test::stories260k();
  // Quantized bases: ggml q4_0 for 64-input layers, pare int4 per channel for ffn_down (172 inputs).
  for (const std::string& name : m.linear_names()) {
    if (name == "output.weight") continue;
    const pare::linear_layer& cur = m.linear(name);
    std::vector<float> w(cur.out_features() * cur.in_features());
    cur.dense_weights(pare::matrix_view<float>(w.data(), cur.out_features(), cur.in_features()));
    const pare::matrix_view<const float> wv(w.data(), cur.out_features(), cur.in_features());
    if (cur.in_features() % 32 == 0) m.set_linear(name, std::make_unique<pare::ggml_linear>(wv, pare::ggml::type::q4_0));
    else m.set_linear(name, std::make_unique<pare::quantized_linear>(wv, pare::quant_config::parse("int4:per_channel")));
  }
  // Snapshot of every base layer's stored bytes.
  struct snapshot {
    std::string name, format;
    std::vector<std::uint8_t> bytes;
    std::vector<float> scales;
    std::vector<std::int32_t> zeros;
  };
  auto take = [](const pare::linear_layer& l, const std::string& name) {
    snapshot s{name, l.format(), {}, {}, {}};
    if (const auto* g = dynamic_cast<const pare::ggml_linear*>(&l)) s.bytes = g->tensor().bytes();
    else if (const auto* q = dynamic_cast<const pare::quantized_linear*>(&l)) {
      const pare::quantized_tensor qt = q->tensor();
      s.bytes.assign(qt.codes.data(), qt.codes.data() + qt.codes.size());
      s.scales = qt.scales;
      s.zeros = qt.zero_points;
    }
    return s;
  };
  std::vector<snapshot> before;
  for (const std::string& name : m.linear_names())
    if (name != "output.weight") before.push_back(take(m.linear(name), name));
  REQUIRE(before.size() == 35);
  CHECK(before[0].format == "ggml:q4_0");
  CHECK(before[5].format.find("int4") == 0);
  CHECK(!before[0].bytes.empty());
  CHECK(!before[5].bytes.empty());

  const auto base = pare::llama_params<float>::from_model(m);  // the dequantized frozen base
  pare::lora_config cfg;
  cfg.rank = 8;
  cfg.alpha = 16;
  auto lora = pare::lora_set<float>::create(base, cfg, pare::lora_targets::all_linears());
  pare::attach_lora(m, lora);  // B = 0: the model computes what it did
  const std::size_t len = 96;
  const std::vector<t::window> train{data.train_at(1000, len), data.train_at(5000, len), data.train_at(9000, len)};
  const double sess_before = t::session_nll(m, train);
  auto eff = base;
  auto params = lora.parameters();
  double first = 0, last = 0;
  for (int step = 0; step < 15; ++step) {
    const double loss = t::batch_grad(lora, base, eff, train);
    if (step == 0) first = loss;
    last = loss;
    for (auto& p : params)
      for (std::size_t i = 0; i < p.value->size(); ++i) (*p.value)[i] -= 0.05f * (*p.grad)[i];  // plain SGD
    pare::attach_lora(m, lora);  // the model's lora_linear layers take the new adapters
  }
  lora.apply(base, eff);
  const double sess_after = t::session_nll(m, train), params_after = t::params_loss(eff, train);
  WARN("QLoRA (q4_0 / int4 bases, r=8, 15 SGD steps): training-mode loss " << first << " → " << last << "; session NLL "
       << sess_before << " → " << sess_after << " (params at W_eff: " << params_after << ")");
  CHECK(sess_after < sess_before - 0.01);
  // The session runs int8-quantized activations through the base kernels: close, not equal.
  CHECK(sess_after == Approx(params_after).epsilon(2e-2));
  for (const snapshot& s : before) {
    INFO(s.name);
    const auto* l = dynamic_cast<const pare::lora_linear*>(&m.linear(s.name));
    REQUIRE(l != nullptr);
    CHECK(l->format() == s.format + "+lora:r=8");
    const snapshot now = take(l->base(), s.name);
    CHECK(now.format == s.format);
    CHECK(now.bytes == s.bytes);
    CHECK(now.scales == s.scales);
    CHECK(now.zeros == s.zeros);
  }
  // Resuming from the model: the frozen base and the adapters come back exactly.
  auto resumed = pare::lora_base_params<float>(m);
  auto base_copy = base;
  const auto rn = resumed.named(), bn = base_copy.named();
  REQUIRE(rn.size() == bn.size());
  for (std::size_t i = 0; i < rn.size(); ++i) {
    INFO(rn[i].first);
    CHECK(*rn[i].second == *bn[i].second);
  }
  const auto back = pare::lora_from_model<float>(m);
  REQUIRE(back.size() == lora.size());
  CHECK(back.config().rank == 8);
  CHECK(back.config().alpha == 16.0);
  for (std::size_t n = 0; n < back.size(); ++n) {
    INFO(lora.adapters()[n].name);
    CHECK(back.adapters()[n].name == lora.adapters()[n].name);
    CHECK(back.adapters()[n].a == lora.adapters()[n].a);
    CHECK(back.adapters()[n].b == lora.adapters()[n].b);
    CHECK(back.adapters()[n].scale == lora.adapters()[n].scale);
  }
  CHECK_THROWS_AS(pare::lora_from_model<float>(model_test::stories260k()), pare::argument_error);
  // Merge and re-quantize: each layer back in its base's format (q4_0 / int4 per channel).
  const auto rec = pare::merge_lora_requantize(m, lora);
  for (std::size_t n = 0; n < rec.size(); ++n) CHECK(rec[n].format == before[n].format);
  CHECK(dynamic_cast<const pare::ggml_linear*>(&m.linear("blk.0.attn_q.weight")) != nullptr);
  const double sess_requant = t::session_nll(m, train);
  WARN("QLoRA merged and re-quantized: session NLL " << sess_requant);
  CHECK(sess_requant < sess_before);
}
