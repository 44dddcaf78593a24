// Model-level GPTQ on stories260K: each layer's Hessian comes from the already quantized prefix, its loss is below RTN's, the model beats RTN on held-out text; the recipe step's grammar.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/gptq_linears.hpp"
#include "pare/pipeline/recipe.hpp"
#include "pare_test_support.hpp"
#include "pipeline_test_support.hpp"

using pipeline_test::text_tokens;
using pipeline_test::windows_of;

TEST_CASE("gptq_linears on stories260K: sequential Hessians, loss below RTN on every layer, perplexity below RTN's",
          "[pipeline][gptq][real_data]") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  const auto calib = windows_of(text_tokens(tok, "text/tinystories_val_tail.txt", 4096), 256);
  const std::vector<std::int32_t> eval = text_tokens(tok, "text/tinystories_val_head.txt", 8192);
  const pare::quant_config cfg = pare::quant_config::parse("int4:g32:asym");

  pare::llama_model m = pare::llama_model::from_llama2c(ck);
  std::vector<std::pair<std::size_t, std::size_t>> progress;
  const auto r = pare::gptq_linears(m, cfg, calib, {}, {}, [&](std::size_t d, std::size_t t) { progress.push_back({d, t}); });
  REQUIRE(r.layers.size() == 36);
  REQUIRE(progress.size() == 21);
  CHECK(progress.back() == std::make_pair(std::size_t(21), std::size_t(21)));
  for (const auto& l : r.layers) {
    INFO(l.name);
    CHECK(l.gptq_error < l.rtn_error);
    CHECK(l.dampening_retries == 0);
  }
  std::size_t fallbacks = 0;
  for (const auto& c : r.changes) fallbacks += c.fallback;
  CHECK(fallbacks == 5);  // ffn_down: 172 inputs, per channel

  // True sequential: attn_output's Hessian is that of its input behind the already
  // quantized q/k/v, so its GPTQ loss differs from GPTQ on the fp32 model's Hessian (the
  // weights are the same: attn_output is untouched until its turn).
  {
    pare::calibration_capture::options o;
    o.xtx = true;
    o.channel_stats = false;
    pare::calibration_capture fp(o);
    const pare::llama_model f32 = pare::llama_model::from_llama2c(ck);
    for (const auto& w : calib) {
      pare::llama_session s(f32);
      s.set_observer(&fp);
      std::vector<float> logits;
      s.forward(w.data(), w.size(), logits);
    }
    const auto h32 = pare::solvers::layer_hessian::from_stats(fp.at("blk.0.attn_output.weight"));
    const pare::matrix_view<const float> wo = ck.matrix("blk.0.attn_output.weight");
    const auto g32 = pare::solvers::gptq_quantize(wo, h32, cfg);
    double rep = -1;
    for (const auto& l : r.layers)
      if (l.name == "blk.0.attn_output.weight") rep = l.gptq_error;
    CHECK(rep != Approx(g32.error).epsilon(1e-6));
  }

  pare::llama_model rtn = pare::llama_model::from_llama2c(ck);
  pare::quantize_linears(rtn, cfg);
  const double p_gptq = pare::perplexity(m, eval, nullptr, 512).ppl;
  const double p_rtn = pare::perplexity(rtn, eval, nullptr, 512).ppl;
  const double p_fp = pare::perplexity(pare::llama_model::from_llama2c(ck), eval, nullptr, 512).ppl;
  INFO("fp32 " << p_fp << " gptq " << p_gptq << " rtn " << p_rtn);
  CHECK(p_gptq < p_rtn);
  CHECK(p_gptq > p_fp);
}

TEST_CASE("recipe step gptq: grammar and errors", "[pipeline][gptq]") {
  const pare::recipe_step a = pare::parse_recipe_step("gptq:int4:g32:asym:actorder:damp=0.05:block=64");
  CHECK(a.kind == pare::recipe_step::gptq);
  CHECK(a.gptq_opt.act_order);
  CHECK(a.gptq_opt.hessian.dampening == 0.05);
  CHECK(a.gptq_opt.block_size == 64);
  CHECK(a.cfg.format.bits == 4);
  CHECK(a.cfg.gran.group_size == 32);
  CHECK(a.cfg.scheme == pare::scheme_kind::asymmetric);
  CHECK(a.needs_calibration());
  CHECK_FALSE(a.writes_gguf());
  const pare::recipe_step h = pare::parse_recipe_step("gptq:int4:g64:asym:f16scale:fptarget:damp=0.1");
  CHECK(h.cfg.f16_scale);
  CHECK(h.fp_target);
  CHECK(h.gptq_opt.hessian.dampening == 0.1);
  CHECK(h.cfg.str() == "int4:g64:asym:minmax:rne:f16scale");
  CHECK_FALSE(pare::parse_recipe_step("gptq:int5:g32:asym").cfg.f16_scale);
  const pare::recipe_step b = pare::parse_recipe_step("gptq:int8:per_channel");
  CHECK_FALSE(b.gptq_opt.act_order);
  CHECK(b.gptq_opt.hessian.dampening == 0.01);
  CHECK_THROWS_WITH(pare::parse_recipe_step("gptq:"), Catch::Contains("gptq:<config>"));
  CHECK_THROWS_WITH(pare::parse_recipe_step("gptq:int4:g32:damp=-1"), Catch::Contains("damp="));
  CHECK_THROWS_WITH(pare::parse_recipe_step("gptq:int4:g32:damp=x"), Catch::Contains("damp="));
  CHECK_THROWS_WITH(pare::parse_recipe_step("gptq:int4:g32:block=0"), Catch::Contains("block="));
  CHECK_THROWS_WITH(pare::parse_recipe_step("gptq:int4:g32:stochastic"), Catch::Contains("stochastic"));
  CHECK_THROWS_AS(pare::parse_recipe_step("gptq:int9:g32"), pare::argument_error);
  pare::llama_model m = pare::llama_model::from_llama2c(pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin")));
  CHECK_THROWS_WITH(pare::gptq_linears(m, pare::quant_config::parse("int4:g32"), {}), Catch::Contains("windows"));
}
