// Model-level AWQ on stories260K: folded scales leave the fp32 model's logits unchanged, a quantized layer folded into keeps its codes, and AWQ beats round to nearest on held-out text.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/awq_linears.hpp"
#include "pare/pipeline/recipe.hpp"
#include "pare_test_support.hpp"
#include "pipeline_test_support.hpp"

namespace {

using pipeline_test::logits_of;
using pipeline_test::rel_diff;
using pipeline_test::text_tokens;
using pipeline_test::windows_of;

std::vector<float> random_scales(std::size_t k, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> s(k);
  for (float& v : s) v = std::exp(u(rng));  // 0.14 .. 7.4
  return s;
}

}  // namespace

TEST_CASE("awq_fold: scales folded into norms and preceding linears leave the fp32 logits unchanged",
          "[pipeline][awq][real_data]") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  const auto t = text_tokens(tok, "text/tinystories_val_tail.txt", 256);
  const pare::llama_model ref = pare::llama_model::from_llama2c(ck);
  const auto want = logits_of(ref, t);
  pare::llama_model m = pare::llama_model::from_llama2c(ck);
  std::mt19937 rng(11);
  for (std::size_t l = 0; l < m.blocks.size(); ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    pare::awq_fold(m, p + "attn_q.weight", random_scales(64, rng));
    pare::awq_fold(m, p + "ffn_up.weight", random_scales(64, rng));
    pare::awq_fold(m, p + "ffn_down.weight", random_scales(m.blocks[l].w2->in_features(), rng));
    // Grouped-query attention: attn_output's input columns cannot fold into attn_v's rows.
    CHECK_THROWS_AS(pare::awq_fold(m, p + "attn_output.weight", random_scales(64, rng)), pare::argument_error);
  }
  CHECK_THROWS_AS(pare::awq_fold(m, "output.weight", random_scales(64, rng)), pare::argument_error);
  CHECK_THROWS_AS(pare::awq_fold(m, "blk.0.attn_q.weight", random_scales(63, rng)), pare::shape_error);
  std::vector<float> bad(64, 1.0f);
  bad[3] = 0.0f;
  CHECK_THROWS_AS(pare::awq_fold(m, "blk.0.attn_q.weight", bad), pare::value_error);
  const auto got = logits_of(m, t);
  CHECK(rel_diff(got, want) < 1e-4);
  // The check can fail: scales folded on one side only change the logits.
  pare::llama_model broken = pare::llama_model::from_llama2c(ck);
  for (float& g : broken.blocks[0].ffn_norm) g *= 1.5f;
  CHECK(rel_diff(logits_of(broken, t), want) > 1e-2);
}

TEST_CASE("awq_fold into a quantized ffn_up divides its row scales and keeps its codes", "[pipeline][awq][real_data]") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  const auto t = text_tokens(tok, "text/tinystories_val_tail.txt", 256);
  pare::llama_model m = pare::llama_model::from_llama2c(ck);
  pare::quantize_linears(m, pare::quant_config::parse("int4:g32:asym"), [](const std::string& n) { return n == "blk.2.ffn_up.weight"; });
  const auto want = logits_of(m, t);
  const auto* before = dynamic_cast<const pare::quantized_linear*>(&m.linear("blk.2.ffn_up.weight"));
  REQUIRE(before);
  const pare::quantized_tensor q0 = before->tensor();
  std::mt19937 rng(12);
  const auto s = random_scales(m.blocks[2].w2->in_features(), rng);
  pare::awq_fold(m, "blk.2.ffn_down.weight", s);
  const auto* after = dynamic_cast<const pare::quantized_linear*>(&m.linear("blk.2.ffn_up.weight"));
  REQUIRE(after);
  const pare::quantized_tensor q1 = after->tensor();
  CHECK(after->format() == "int4:g32:asym:minmax:rne");
  for (std::size_t i = 0; i < q0.rows; ++i)
    for (std::size_t j = 0; j < q0.cols; ++j) REQUIRE(q1.code(i, j) == q0.code(i, j));
  CHECK(q1.scales[5 * 2 + 1] == q0.scales[5 * 2 + 1] / s[5]);  // row 5, group 1
  CHECK(rel_diff(logits_of(m, t), want) < 1e-4);
}

TEST_CASE("awq_linears on stories260K: beats round to nearest on held-out text; the recipe steps",
          "[pipeline][awq][real_data]") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  const auto calib = windows_of(text_tokens(tok, "text/tinystories_val_tail.txt", 8192), 256);
  const auto eval = text_tokens(tok, "text/tinystories_val_head.txt", 8192);
  const pare::quant_config cfg = pare::quant_config::parse("int3:g32:asym");

  pare::llama_model rtn = pare::llama_model::from_llama2c(ck);
  pare::quantize_linears(rtn, cfg);
  pare::llama_model awq = pare::llama_model::from_llama2c(ck);
  const auto r = pare::awq_linears(awq, cfg, calib);
  REQUIRE(r.groups.size() == 21);
  std::size_t scaled = 0;
  for (const auto& g : r.groups) {
    INFO(g.group);
    CHECK(g.error <= g.error_plain);
    scaled += g.alpha > 0;
    if (g.group.find("attn_output") != std::string::npos || g.group == "output.weight") CHECK(g.folded_into.empty());
  }
  CHECK(scaled >= 10);
  const double p_rtn = pare::perplexity(rtn, eval).ppl, p_awq = pare::perplexity(awq, eval).ppl;
  INFO("RTN " << p_rtn << " AWQ " << p_awq);
  CHECK(p_awq < p_rtn);

  const auto st = pare::parse_recipe_step("awq+gptq:int4:g32:asym:grid=10:noclip:actorder");
  CHECK(st.kind == pare::recipe_step::awq);
  CHECK(st.awq_opt.gptq);
  CHECK(st.awq_opt.gptq_opt.act_order);
  CHECK_FALSE(st.awq_opt.clip);
  CHECK(st.awq_opt.awq.grid == 10);
  CHECK(pare::parse_recipe_step("awq:int4:g128:asym").awq_opt.gptq == false);
  CHECK_THROWS_AS(pare::parse_recipe_step("awq:int4:g32:asym:actorder"), pare::argument_error);  // GPTQ's option
  CHECK_THROWS_AS(pare::parse_recipe_step("awq:int4:g32:asym:grid=0"), pare::argument_error);
  CHECK_THROWS_AS(pare::parse_recipe_step("awq:"), pare::argument_error);
  CHECK_THROWS_AS(pare::parse_recipe_step("awq:int4:g32:stochastic"), pare::argument_error);
}
