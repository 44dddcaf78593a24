// Model-level SmoothQuant on stories260K: folding leaves the fp32 logits unchanged and folds the paper's scales (float64 formula here), W8A8 runs every layer on the int8 kernel close to fp32, the recipe steps, and bad input leaves the model unchanged.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/recipe.hpp"
#include "pare/pipeline/smoothquant_linears.hpp"
#include "pare_test_support.hpp"
#include "pipeline_test_support.hpp"

namespace {

using pipeline_test::dense;
using pipeline_test::logits_of;
using pipeline_test::rel_diff;
using pipeline_test::text_tokens;

struct smoothquant_fixture {
  pare::llama2c_checkpoint ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  pare::tokenizer tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  std::vector<std::int32_t> calib = text_tokens(tok, "text/tinystories_val_tail.txt", 4096);

  pare::llama_model model() const { return pare::llama_model::from_llama2c(ck); }
  /// Channel statistics (max|x| per channel) of every linear input of m on the calibration text.
  pare::calibration_capture capture(const pare::llama_model& m) const {
    pare::calibration_capture::options o;
    o.xtx = false;
    pare::calibration_capture cap(o);
    for (std::size_t at = 0; at < calib.size(); at += 512) {
      pare::llama_session s(m);
      s.set_observer(&cap);
      std::vector<float> logits;
      s.forward(calib.data() + at, std::min<std::size_t>(512, calib.size() - at), logits, true);
    }
    return cap;
  }
};

/// The paper's scales in float64: max|x_j|^α / max(max over the layers' rows |W[i, j]|, 1e-5)^(1−α), floor 1e-5.
std::vector<double> oracle_scales(const pare::llama_model& m, const std::vector<std::string>& names,
                                  const std::vector<double>& a, double alpha) {
  const std::size_t k = a.size();
  std::vector<double> wm(k, 0.0), s(k);
  for (const std::string& n : names) {
    const auto w = dense(m.linear(n));
    for (std::size_t t = 0; t < w.size(); ++t) wm[t % k] = std::max(wm[t % k], std::fabs(double(w[t])));
  }
  for (std::size_t j = 0; j < k; ++j)
    s[j] = std::max(std::pow(a[j], alpha) / std::pow(std::max(wm[j], 1e-5), 1.0 - alpha), 1e-5);
  return s;
}

/// Every weight and norm gain of a equals b's, bit for bit.
bool same_model(const pare::llama_model& a, const pare::llama_model& b) {
  for (const std::string& n : a.linear_names())
    if (dense(a.linear(n)) != dense(b.linear(n)) || a.linear(n).format() != b.linear(n).format()) return false;
  for (std::size_t l = 0; l < a.blocks.size(); ++l)
    if (a.blocks[l].attn_norm != b.blocks[l].attn_norm || a.blocks[l].ffn_norm != b.blocks[l].ffn_norm) return false;
  return true;
}

}  // namespace

TEST_CASE("smoothquant fold: the fp32 logits are unchanged and the folded scales are the paper's formula",
          "[pipeline][smoothquant][real_data]") {
  const smoothquant_fixture f;
  const auto t = text_tokens(f.tok, "text/tinystories_val_head.txt", 256);
  const pare::llama_model ref = f.model();
  const auto want = logits_of(ref, t);
  const pare::calibration_capture cap = f.capture(ref);
  for (double alpha : {0.5, 0.85}) {
    INFO("alpha " << alpha);
    pare::llama_model m = f.model();
    pare::smoothquant_linears_options opt;
    opt.sq.alpha = alpha;
    opt.w8a8 = false;
    const auto r = pare::smoothquant_linears(m, cap, opt);
    CHECK(rel_diff(logits_of(m, t), want) < 1e-4);
    REQUIRE(r.groups.size() == 4 * m.blocks.size() + 1);
    for (std::size_t l = 0; l < m.blocks.size(); ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      // q/k/v: the gain divided by s, s over every row of q, k and v.
      const auto sq = oracle_scales(ref, {p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"},
                                    cap.at(p + "attn_q.weight").max_abs, alpha);
      for (std::size_t j = 0; j < sq.size(); ++j)
        REQUIRE(double(m.blocks[l].attn_norm[j]) ==
                Approx(double(ref.blocks[l].attn_norm[j]) / sq[j]).epsilon(2e-6));
      const auto sg = oracle_scales(ref, {p + "ffn_gate.weight", p + "ffn_up.weight"}, cap.at(p + "ffn_gate.weight").max_abs,
                                    alpha);
      for (std::size_t j = 0; j < sg.size(); ++j)
        REQUIRE(double(m.blocks[l].ffn_norm[j]) == Approx(double(ref.blocks[l].ffn_norm[j]) / sg[j]).epsilon(2e-6));
      // ffn_down: its columns multiplied by s (the rows of ffn_up divided by it).
      const auto& a = cap.at(p + "ffn_down.weight").max_abs;
      const auto sd = oracle_scales(ref, {p + "ffn_down.weight"}, a, alpha);
      const auto w0 = dense(ref.linear(p + "ffn_down.weight")), w1 = dense(m.linear(p + "ffn_down.weight"));
      const std::size_t k = sd.size();
      for (std::size_t i = 0; i < w0.size(); ++i)
        REQUIRE(double(w1[i]) == Approx(double(w0[i]) * sd[i % k]).epsilon(2e-6).margin(1e-30));
      // The groups' ranges in the smoothed space: max_j max|x_j| / s_j.
      double smoothed = 0;
      for (std::size_t j = 0; j < k; ++j) smoothed = std::max(smoothed, a[j] / sd[j]);
      CHECK(r.groups[4 * l + 3].range_smoothed == Approx(smoothed).epsilon(1e-5));
      CHECK(r.groups[4 * l + 3].folded_into == "ffn_up");
      CHECK(r.groups[4 * l + 1].folded_into.empty());  // attn_output under grouped-query attention
    }
    CHECK(r.groups.back().folded_into.empty());  // output.weight
  }
}

TEST_CASE("smoothquant W8A8 on stories260K: every layer on the int8 kernel, close to fp32; the recipe steps",
          "[pipeline][smoothquant][real_data]") {
  const smoothquant_fixture f;
  const auto eval = text_tokens(f.tok, "text/tinystories_val_head.txt", 4096);
  const pare::llama_model ref = f.model();
  const pare::calibration_capture cap = f.capture(ref);
  const double fp = pare::perplexity(ref, eval).ppl;
  std::map<std::string, double> ppl;
  for (const char* mode : {"dynamic", "static"})
    for (bool smooth : {false, true}) {
      const std::string key = std::string(smooth ? "sq " : "plain ") + mode;
      INFO(key);
      pare::llama_model m = f.model();
      pare::smoothquant_linears_options opt;
      opt.smooth = smooth;
      opt.activations = std::string(mode) == "static" ? pare::w8a8_activations::static_per_tensor
                                                      : pare::w8a8_activations::dynamic_per_token;
      const auto r = pare::smoothquant_linears(m, cap, opt);
      CHECK(r.changes.size() == m.linear_names().size());
      for (const std::string& n : m.linear_names()) {
        const auto* l = dynamic_cast<const pare::w8a8_linear*>(&m.linear(n));
        REQUIRE(l);
        CHECK(l->format() == std::string("w8a8:") + mode);
      }
      ppl[key] = pare::perplexity(m, eval).ppl;
      UNSCOPED_INFO(key << " ppl " << ppl[key] << " (fp32 " << fp << ")");
    }
  CHECK(ppl["plain dynamic"] < fp * 1.01);
  CHECK(ppl["sq dynamic"] < fp * 1.01);
  CHECK(ppl["sq static"] < fp * 1.02);
  CHECK(ppl["sq static"] < ppl["plain static"]);  // smoothing narrows the static ranges

  // The recipe steps.
  const pare::recipe_step s1 = pare::parse_recipe_step("smoothquant:0.5:w8a8");
  CHECK(s1.kind == pare::recipe_step::smoothquant);
  CHECK(s1.sq_opt.w8a8);
  CHECK(s1.sq_opt.activations == pare::w8a8_activations::dynamic_per_token);
  CHECK(s1.sq_opt.sq.alpha == 0.5);
  CHECK_FALSE(s1.writes_gguf());
  CHECK(s1.needs_calibration());
  const pare::recipe_step s2 = pare::parse_recipe_step("smoothquant:0.8:w8a8:static:nodown");
  CHECK(s2.sq_opt.activations == pare::w8a8_activations::static_per_tensor);
  CHECK_FALSE(s2.sq_opt.smooth_ffn_down);
  const pare::recipe_step s3 = pare::parse_recipe_step("smoothquant:0.5");
  CHECK_FALSE(s3.sq_opt.w8a8);
  CHECK(s3.writes_gguf());  // fold only: the model stays fp32
  const pare::recipe_step s4 = pare::parse_recipe_step("smoothquant:none:w8a8");
  CHECK_FALSE(s4.sq_opt.smooth);
  CHECK_FALSE(s4.needs_calibration());
  pare::calibration_set cal;
  cal.tokens = f.calib;
  pare::llama_model m = f.model();
  const auto ch = pare::apply_recipe_step(s2, m, {}, cal);
  CHECK(ch.size() == m.linear_names().size());
  CHECK(ch.front().backend == "int8 kernel, static int8 activations");
  CHECK(ch.front().reason.find("alpha 0.8 folded into attn_norm") != std::string::npos);
}

TEST_CASE("smoothquant refuses bad α, NaN weights and missing statistics with the model unchanged",
          "[pipeline][smoothquant][real_data]") {
  const smoothquant_fixture f;
  const pare::llama_model ref = f.model();
  const pare::calibration_capture cap = f.capture(ref);
  pare::llama_model m = f.model();
  for (double alpha : {-0.5, 1.01, std::numeric_limits<double>::quiet_NaN()}) {
    pare::smoothquant_linears_options opt;
    opt.sq.alpha = alpha;
    try {
      (void)pare::smoothquant_linears(m, cap, opt);
      FAIL("expected argument_error for alpha " << alpha);
    } catch (const pare::argument_error& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find("argument 'alpha'") != std::string::npos);
      CHECK(msg.find("expected a migration strength in [0, 1]") != std::string::npos);
      CHECK(msg.find(std::isnan(alpha) ? "nan" : alpha < 0 ? "-0.5" : "1.01") != std::string::npos);
    }
    CHECK(same_model(m, ref));
  }
  for (const char* bad : {"smoothquant:1.5:w8a8", "smoothquant:nan", "smoothquant:-0.1", "smoothquant:0.5:static",
                          "smoothquant:none", "smoothquant:", "smoothquant:0.5:w8a8:w8a8", "smoothquant:0.5:w8a8:fast"}) {
    INFO(bad);
    CHECK_THROWS_AS(pare::parse_recipe_step(bad), pare::argument_error);
  }
  try {
    (void)pare::parse_recipe_step("smoothquant:1.5:w8a8");
  } catch (const pare::argument_error& e) {
    CHECK(std::string(e.what()).find("argument 'alpha': expected a migration strength in [0, 1] or 'none', got '1.5'") !=
          std::string::npos);
  }
  // A NaN weight in the last block: found before any fold, so blocks 0-3 stay as they were too.
  {
    auto w = dense(m.linear("blk.4.ffn_down.weight"));
    w[17] = std::numeric_limits<float>::quiet_NaN();
    m.set_linear("blk.4.ffn_down.weight",
                 std::make_unique<pare::dense_linear>(pare::matrix_view<const float>(w.data(), 64, w.size() / 64)));
  }
  CHECK_THROWS_AS(pare::smoothquant_linears(m, cap), pare::value_error);
  CHECK(m.blocks[0].attn_norm == ref.blocks[0].attn_norm);
  CHECK(dense(m.linear("blk.3.ffn_up.weight")) == dense(ref.linear("blk.3.ffn_up.weight")));
  // Static ranges need every selected layer's statistics.
  pare::llama_model m2 = f.model();
  pare::calibration_capture::options o;
  o.xtx = false;
  o.include = [](const std::string& n) { return n != "output.weight"; };
  pare::calibration_capture partial(o);
  {
    pare::llama_session s(m2);
    s.set_observer(&partial);
    std::vector<float> logits;
    s.forward(f.calib.data(), 256, logits, true);
  }
  pare::smoothquant_linears_options st;
  st.activations = pare::w8a8_activations::static_per_tensor;
  CHECK_THROWS_AS(pare::smoothquant_linears(m2, partial, st), pare::argument_error);
  CHECK(same_model(m2, ref));
  // Dynamic W8A8 of output.weight alone needs no statistics of it.
  CHECK_NOTHROW(pare::smoothquant_linears(m2, partial, {}, [](const std::string& n) { return n == "output.weight"; }));
}
