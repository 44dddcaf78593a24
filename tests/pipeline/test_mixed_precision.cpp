// Mixed precision on stories260K: the budget is met by pare-compress's own bit count, each layer is stored as reported, the sensitivities match independent computations (perplexity with the layer alone quantized, a plain-loop Hessian loss), no single or paired change beats the allocation; the grammar and its refusals.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/mixed_precision.hpp"
#include "pare/pipeline/recipe.hpp"
#include "pare_test_support.hpp"
#include "pipeline_test_support.hpp"


// The expression throws pare::argument_error, with a message the matcher accepts.
#define CHECK_ARGUMENT_ERROR(expr, matcher) \
  do {                                      \
    CHECK_THROWS_AS(expr, pare::argument_error); \
    CHECK_THROWS_WITH(expr, matcher);       \
  } while (0)

using pipeline_test::text_tokens;
using pipeline_test::windows_of;
using Catch::Contains;

namespace {

struct stories {
  pare::llama2c_checkpoint ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  pare::tokenizer tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  std::vector<std::int32_t> calib_tokens = text_tokens(tok, "text/tinystories_val_tail.txt", 1024);
  std::vector<std::vector<std::int32_t>> calib = windows_of(calib_tokens, 256);
  pare::llama_model fresh() const { return pare::llama_model::from_llama2c(ck); }
};

const stories& data() {
  static const stories s;
  return s;
}

/// Every linear layer's dense weights and the embedding, to compare models exactly.
std::vector<float> all_weights(const pare::llama_model& m) {
  std::vector<float> out(m.token_embd.data(), m.token_embd.data() + m.token_embd.size());
  for (const std::string& n : m.linear_names()) {
    const pare::linear_layer& l = m.linear(n);
    std::vector<float> w(l.out_features() * l.in_features());
    l.dense_weights(pare::matrix_view<float>(w.data(), l.out_features(), l.in_features()));
    out.insert(out.end(), w.begin(), w.end());
  }
  return out;
}

const char* formats3 = "int3:g32:asym/int4:g32:asym/int8";

/// Checks the result against the model: bit count, each layer's stored format and bytes.
void check_against_model(const pare::mixed_precision_result& r, const pare::llama_model& m, double budget, bool gptq) {
  const std::size_t bytes = m.storage_bytes(), weights = m.weight_count();
  const double bpw = 8.0 * double(bytes) / double(weights);  // pare-compress's count
  CHECK(bpw <= budget);
  CHECK(r.bytes == bytes);
  CHECK(r.weights == weights);
  CHECK(r.bits_per_weight == bpw);
  CHECK(r.bytes <= r.budget_bytes);
  CHECK(8.0 * double(r.budget_bytes) / double(weights) <= budget);
  CHECK(8.0 * double(r.budget_bytes + 1) / double(weights) > budget);  // the budget in bytes is the largest that fits
  REQUIRE(r.layers.size() == 36);
  REQUIRE(r.changes.size() == 36);
  for (std::size_t i = 0; i < r.layers.size(); ++i) {
    const auto& l = r.layers[i];
    INFO(l.name);
    const pare::linear_layer& cur = m.linear(l.name);
    CHECK(l.format == (gptq ? "gptq " : "") + cur.format());
    CHECK(r.changes[i].name == l.name);
    CHECK(r.changes[i].format == l.format);
    CHECK(l.bytes == cur.storage_bytes());
    CHECK(l.candidate_bytes[l.choice] == l.bytes);
    CHECK(l.weights == cur.out_features() * cur.in_features());
  }
}

/// Σ chosen cost, and that no single change and no pair of changes that fits the budget
/// lowers it (necessary conditions of optimality, checked by enumeration).
void check_no_better_neighbour(const pare::mixed_precision_result& r, bool ppl) {
  auto cost = [&](std::size_t i, std::size_t f) { return ppl ? r.layers[i].nll_increase[f] : r.layers[i].hessian_error[f]; };
  const std::size_t n = r.layers.size(), nf = r.layers[0].candidate_bytes.size();
  const long spare = long(r.budget_bytes) - long(r.bytes);
  REQUIRE(spare >= 0);
  double scale = 0;
  for (std::size_t i = 0; i < n; ++i) scale += std::fabs(cost(i, r.layers[i].choice));
  const double tol = 1e-12 * scale + 1e-300;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t f = 0; f < nf; ++f) {
      const auto& a = r.layers[i];
      const long db = long(a.candidate_bytes[f]) - long(a.candidate_bytes[a.choice]);
      const double dc = cost(i, f) - cost(i, a.choice);
      if (db <= spare) CHECK(dc >= -tol);
      for (std::size_t j = i + 1; j < n; ++j)
        for (std::size_t g = 0; g < nf; ++g) {
          const auto& b = r.layers[j];
          const long db2 = db + long(b.candidate_bytes[g]) - long(b.candidate_bytes[b.choice]);
          if (db2 <= spare) {
            INFO(a.name << " -> " << f << ", " << b.name << " -> " << g);
            CHECK(dc + cost(j, g) - cost(j, b.choice) >= -tol);
          }
        }
    }
}

}  // namespace

TEST_CASE("mixed precision (Hessian sensitivity, RTN) on stories260K meets 4.5 bits/weight as pare-compress counts it",
          "[pipeline][mixed][real_data]") {
  pare::llama_model m = data().fresh();
  pare::mixed_precision_options opt = pare::mixed_precision_options::parse(std::string("4.5:") + formats3 + ":hessian");
  std::vector<std::pair<std::size_t, std::size_t>> progress;
  const auto r = pare::mixed_precision_linears(m, data().calib, opt, {},
                                               [&](std::size_t d, std::size_t t) { progress.push_back({d, t}); });
  check_against_model(r, m, 4.5, false);
  CHECK(r.exact);
  CHECK(r.sensitivity_windows == 0);
  for (const auto& l : r.layers) CHECK(l.nll_increase.empty());
  REQUIRE(progress.size() == 8);  // 0, five blocks, the classifier, quantization
  CHECK(progress.back() == std::make_pair(std::size_t(7), std::size_t(7)));
  std::size_t kinds[3] = {0, 0, 0};
  for (const auto& l : r.layers) {
    ++kinds[l.choice];
    REQUIRE(l.hessian_error.size() == 3);
    CHECK(l.hessian_error[0] > l.hessian_error[1]);  // 3 bits lose more than 4, 4 more than 8
    CHECK(l.hessian_error[1] > l.hessian_error[2]);
  }
  CHECK(kinds[0] + kinds[1] + kinds[2] == 36);
  CHECK(kinds[0] > 0);  // the budget forces some layers below 4 bits
  check_no_better_neighbour(r, false);
  // A tied classifier's embedding rows are its stored rows.
  const pare::linear_layer& out = m.linear("output.weight");
  std::vector<float> w(out.out_features() * out.in_features());
  out.dense_weights(pare::matrix_view<float>(w.data(), out.out_features(), out.in_features()));
  CHECK(std::equal(w.begin(), w.end(), m.token_embd.data()));
}

TEST_CASE("mixed precision sensitivities equal a plain-loop Hessian loss and the perplexity of the layer alone quantized",
          "[pipeline][mixed][real_data]") {
  const stories& d = data();
  pare::llama_model m = d.fresh();
  pare::mixed_precision_options opt = pare::mixed_precision_options::parse(std::string("4.6:") + formats3 + ":windows=2");
  const auto r = pare::mixed_precision_linears(m, d.calib, opt);
  check_against_model(r, m, 4.6, false);
  check_no_better_neighbour(r, true);
  CHECK(r.sensitivity_windows == 2);
  CHECK(r.sensitivity_tokens == 2 * 255);
  const pare::llama_model f32 = d.fresh();
  const std::vector<std::int32_t> sub(d.calib_tokens.begin(), d.calib_tokens.begin() + 512);
  const pare::perplexity_result base = pare::perplexity(f32, sub, {}, 256);
  CHECK(r.baseline_nll == Approx(base.nll / double(base.predicted)).epsilon(1e-12));

  // XᵀX of every layer's input over all calibration windows, by whole forward passes.
  pare::calibration_capture::options co;
  co.xtx = true;
  co.channel_stats = false;
  pare::calibration_capture cap(co);
  for (const auto& w : d.calib) {
    pare::llama_session s(f32);
    s.set_observer(&cap);
    std::vector<float> logits;
    s.forward(w.data(), w.size(), logits, true);  // output.weight sees every row
  }
  for (const std::string name : {"blk.0.attn_k.weight", "blk.2.ffn_down.weight", "blk.4.ffn_up.weight", "output.weight"}) {
    INFO(name);
    const auto it = std::find_if(r.layers.begin(), r.layers.end(), [&](const auto& l) { return l.name == name; });
    REQUIRE(it != r.layers.end());
    const pare::matrix_view<const float> wv = std::string(name) == "output.weight" ? d.ck.classifier() : d.ck.matrix(name);
    const std::size_t rows = wv.rows(), k = wv.cols();
    const pare::linear_input_stats& st = cap.at(name);
    for (std::size_t f = 0; f < 3; ++f) {
      pare::layer_change ch;
      const pare::quant_config c = pare::layer_config_for(opt.formats[f], k, ch);
      const pare::quantized_tensor q = pare::quantize(wv, c);
      // Plain loops in float64: tr(ΔW·H·ΔWᵀ), H = 2·XᵀX/n.
      std::vector<double> dw(rows * k);
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t a = 0; a < k; ++a) dw[i * k + a] = double(wv(i, a)) - double(q.value(i, a));
      double loss = 0;
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t a = 0; a < k; ++a)
          for (std::size_t b = 0; b < k; ++b)
            loss += dw[i * k + a] * 2.0 * st.xtx[a * k + b] / double(st.tokens) * dw[i * k + b];
      CHECK(it->hessian_error[f] == Approx(loss).epsilon(1e-9));
      // Perplexity of the calibration subset with this layer alone quantized (set_linear, whole forward).
      pare::llama_model one = d.fresh();
      one.set_linear(name, std::make_unique<pare::quantized_linear>(q));
      const pare::perplexity_result p = pare::perplexity(one, sub, {}, 256);
      CHECK(it->nll_increase[f] == Approx(p.nll / double(p.predicted) - r.baseline_nll).margin(1e-9));
      CHECK(it->candidate_bytes[f] == one.linear(name).storage_bytes());
    }
  }
}

TEST_CASE("mixed precision with GPTQ stores GPTQ layers within the budget", "[pipeline][mixed][gptq][real_data]") {
  pare::llama_model m = data().fresh();
  const auto st = pare::parse_recipe_step(std::string("mixed:4.5:") + formats3 + ":gptq:windows=2");
  CHECK(st.kind == pare::recipe_step::mixed);
  CHECK(st.needs_calibration());
  CHECK(!st.writes_gguf());
  CHECK(st.mixed_opt.gptq);
  pare::calibration_set cal;
  cal.window = 256;
  cal.tokens = data().calib_tokens;
  const auto changes = pare::apply_recipe_step(st, m, {}, cal);
  REQUIRE(changes.size() == 36);
  const double bpw = 8.0 * double(m.storage_bytes()) / double(m.weight_count());
  CHECK(bpw <= 4.5);
  CHECK(bpw > 4.4);  // the allocation spends the budget
  for (const auto& c : changes) {
    INFO(c.name);
    CHECK(c.format == "gptq " + m.linear(c.name).format());
    CHECK_THAT(c.reason, Contains("mixed precision, budget 4.5 bits/weight"));
  }
}

TEST_CASE("mixed precision grammar: options, formats and the refusals naming the argument", "[pipeline][mixed]") {
  const auto o = pare::mixed_precision_options::parse("4.25:int3:g32:asym/int4:g64/int8:per_channel:asym:hessian:gptq:actorder:damp=0.1:windows=5");
  CHECK(o.bits_per_weight == 4.25);
  REQUIRE(o.formats.size() == 3);
  CHECK(o.formats[0].str() == pare::quant_config::parse("int3:g32:asym").str());
  CHECK(o.formats[1].str() == pare::quant_config::parse("int4:g64").str());
  CHECK(o.formats[2].str() == pare::quant_config::parse("int8:per_channel:asym").str());
  CHECK(o.sensitivity == pare::mixed_sensitivity::hessian);
  CHECK(o.gptq);
  CHECK(o.gptq_opt.act_order);
  CHECK(o.gptq_opt.hessian.dampening == 0.1);
  CHECK(o.sensitivity_windows == 5);
  const auto d = pare::mixed_precision_options::parse("6:int8");
  CHECK(d.sensitivity == pare::mixed_sensitivity::ppl);
  CHECK(!d.gptq);
  CHECK(d.sensitivity_windows == 16);

  struct bad_case {
    const char* spec;
    const char* argument;
    const char* got;
  };
  for (const bad_case& b : {bad_case{"abc:int4", "'bits_per_weight'", "got 'abc'"}, bad_case{"nan:int4", "'bits_per_weight'", "got nan"},
                            bad_case{"-1:int4", "'bits_per_weight'", "got -1"}, bad_case{"inf:int4", "'bits_per_weight'", "got inf"},
                            bad_case{"0:int4", "'bits_per_weight'", "got 0"}, bad_case{"4.5", "'formats'", "got none"},
                            bad_case{"4.5:", "'formats'", "got none"}, bad_case{"4.5:gptq", "'formats'", "got none"},
                            bad_case{"4.5:int4//int8", "'formats'", "got an empty one"},
                            bad_case{"4.5:int4/fp5", "'formats'", "got 'fp5'"},
                            bad_case{"4.5:int4:g32/int4:g32", "'formats'", "twice"},
                            bad_case{"4.5:int4:stochastic:gptq", "'formats'", "stochastic"},
                            bad_case{"4.5:int4:windows=-2", "'windows'", "got '-2'"},
                            bad_case{"4.5:int4:actorder", "'gptq'", "got neither"},
                            bad_case{"4.5:int4:ppl:hessian", "'sensitivity'", "got both"}}) {
    INFO(b.spec);
    CHECK_ARGUMENT_ERROR(pare::mixed_precision_options::parse(b.spec),
                         Contains(b.argument) && Contains("expected") && Contains(b.got));
    CHECK_THROWS_AS(pare::parse_recipe_step(std::string("mixed:") + b.spec), pare::argument_error);
  }
}

TEST_CASE("mixed precision refuses an unreachable budget and bad arguments before touching the model",
          "[pipeline][mixed][real_data]") {
  const stories& d = data();
  pare::llama_model m = d.fresh();
  const std::vector<float> before = all_weights(m);
  const std::size_t bytes = m.storage_bytes();
  pare::mixed_precision_options opt = pare::mixed_precision_options::parse(std::string("4.5:") + formats3);
  opt.bits_per_weight = 4.0;  // int3:g32:asym alone is 4.25 bits/weight (ffn_down falls back per channel: 3.23)
  CHECK_ARGUMENT_ERROR(pare::mixed_precision_linears(m, d.calib, opt),
                       Contains("argument 'bits_per_weight'") && Contains("expected at least 4.") && Contains("got 4"));
  opt.bits_per_weight = std::nan("");
  CHECK_ARGUMENT_ERROR(pare::mixed_precision_linears(m, d.calib, opt),
                       Contains("argument 'bits_per_weight'") && Contains("got nan"));
  opt.bits_per_weight = 4.5;
  CHECK_ARGUMENT_ERROR(pare::mixed_precision_linears(m, {}, opt),
                       Contains("argument 'windows'") && Contains("got none"));
  opt.formats.clear();
  CHECK_ARGUMENT_ERROR(pare::mixed_precision_linears(m, d.calib, opt),
                       Contains("argument 'formats'") && Contains("got none"));
  CHECK(m.storage_bytes() == bytes);
  CHECK(all_weights(m) == before);
}
