// Model-level GPTQ into ggml blocks on stories260K: a GGUF llama.cpp's loader reads, reloaded by pare with the same bytes and perplexity, below ggml's own quantizer; the recipe step's grammar.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "pare/io/gguf.hpp"
#include "pare/model/export_model_gguf.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/gptq_ggml_linears.hpp"
#include "pare/pipeline/recipe.hpp"
#include "pare_test_support.hpp"
#include "pipeline_test_support.hpp"

using pipeline_test::text_tokens;
using pipeline_test::windows_of;

namespace fs = std::filesystem;

TEST_CASE("gptq_linears_ggml on stories260K: ggml's bytes, a GGUF that reloads with the same perplexity, below ggml's quantizer",
          "[pipeline][gptq][ggml][real_data]") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  const auto calib = windows_of(text_tokens(tok, "text/tinystories_val_tail.txt", 4096), 256);
  const std::vector<std::int32_t> eval = text_tokens(tok, "text/tinystories_val_head.txt", 8192);

  for (const char* spec : {"q4_0", "iq4_nl:imatrix"}) {
    INFO(spec);
    const pare::ggml_quant_spec s = pare::ggml_quant_spec::parse(spec);
    pare::llama_model m = pare::llama_model::from_llama2c(ck);
    const auto r = pare::gptq_linears_ggml(m, s, calib);
    REQUIRE(r.layers.size() == 36);
    std::size_t fallbacks = 0;
    for (std::size_t i = 0; i < r.changes.size(); ++i) {
      const auto& c = r.changes[i];
      INFO(c.name);
      if (c.name.find("ffn_down") != std::string::npos) {  // 172 inputs: llama.cpp stores f16, nothing to choose
        CHECK(c.fallback);
        CHECK(c.format == "ggml:f16");
        CHECK(r.layers[i].gptq_error == r.layers[i].rtn_error);
        ++fallbacks;
      } else {
        CHECK(c.format == std::string("gptq ggml:") + pare::ggml::to_string(s.type) + (s.imatrix ? ":imatrix" : ""));
        CHECK(r.layers[i].gptq_error < r.layers[i].rtn_error);  // below ggml's quantizer on the same Hessian
        CHECK(r.layers[i].dampening_retries == 0);
      }
    }
    CHECK(fallbacks == 5);

    // Written as GGUF, the tensors carry the type; pare's loader (ggml's dequantizers,
    // golden-checked in tests/ggml) reads back the same weights and the same perplexity.
    const std::string path = (fs::temp_directory_path() / ("pare_test_gptq_" + std::string(s.imatrix ? "imat" : "plain") + ".gguf")).string();
    pare::write_model_gguf(m, tok, path);
    const pare::gguf_file g = pare::gguf_file::open(path);
    CHECK(g.tensor("blk.0.attn_q.weight").type == static_cast<std::uint32_t>(s.type));
    CHECK(g.tensor("blk.0.ffn_down.weight").type == 1u);  // f16
    const pare::llama_model back = pare::llama_model_from_gguf(g);
    for (const std::string& name : m.linear_names()) {
      INFO(name);
      const auto& a = m.linear(name);
      const auto& b = back.linear(name);
      CHECK(b.format() == std::string("ggml:") + (name.find("ffn_down") != std::string::npos ? "f16" : pare::ggml::to_string(s.type)));
      std::vector<float> wa(a.out_features() * a.in_features()), wb(wa.size());
      a.dense_weights(pare::matrix_view<float>(wa.data(), a.out_features(), a.in_features()));
      b.dense_weights(pare::matrix_view<float>(wb.data(), b.out_features(), b.in_features()));
      CHECK(wa == wb);
    }
    const double p_gptq = pare::perplexity(m, eval, nullptr, 512).ppl;
    CHECK(pare::perplexity(back, eval, nullptr, 512).ppl == Approx(p_gptq).epsilon(1e-9));
    fs::remove(path);

    pare::llama_model rtn = pare::llama_model::from_llama2c(ck);
    const pare::calibration_capture* stats = nullptr;
    pare::calibration_set cal;
    if (s.imatrix) {
      for (const auto& w : calib) cal.tokens.insert(cal.tokens.end(), w.begin(), w.end());
      cal.window = 256;
      stats = &cal.channel_stats(rtn);
    }
    pare::quantize_linears_ggml(rtn, s, {}, stats);
    const double p_rtn = pare::perplexity(rtn, eval, nullptr, 512).ppl;
    const double p_fp = pare::perplexity(pare::llama_model::from_llama2c(ck), eval, nullptr, 512).ppl;
    INFO("fp32 " << p_fp << " gptq " << p_gptq << " ggml " << p_rtn);
    CHECK(p_gptq < p_rtn);
    CHECK(p_gptq > p_fp);
  }
}

TEST_CASE("recipe step gptq:ggml: grammar and errors", "[pipeline][gptq][ggml]") {
  const pare::recipe_step a = pare::parse_recipe_step("gptq:ggml:q4_K:imatrix:actorder:damp=0.05:block=64");
  CHECK(a.kind == pare::recipe_step::gptq_ggml);
  CHECK(a.ggml_spec.type == pare::ggml::type::q4_K);
  CHECK(a.ggml_spec.imatrix);
  CHECK(a.gptq_opt.act_order);
  CHECK(a.gptq_opt.hessian.dampening == 0.05);
  CHECK(a.gptq_opt.block_size == 64);
  CHECK(a.writes_gguf());
  CHECK(a.needs_calibration());
  const pare::recipe_step f = pare::parse_recipe_step("gptq:int4:g32:asym:fptarget:damp=0.1");
  CHECK(f.kind == pare::recipe_step::gptq);
  CHECK(f.fp_target);
  CHECK_FALSE(pare::parse_recipe_step("gptq:int4:g32:asym").fp_target);
  CHECK_THROWS_AS(pare::parse_recipe_step("awq:int4:g32:asym:fptarget"), pare::argument_error);
  const pare::recipe_step b = pare::parse_recipe_step("gptq:ggml:q8_0");
  CHECK_FALSE(b.ggml_spec.imatrix);
  CHECK_FALSE(b.gptq_opt.act_order);
  for (const char* bad : {"gptq:ggml:", "gptq:ggml:f16", "gptq:ggml:q4_9", "gptq:ggml:q4_0:imatrx", "gptq:ggml:q4_0:damp=-1"}) {
    INFO(bad);
    CHECK_THROWS_AS(pare::parse_recipe_step(bad), pare::argument_error);
  }
  // The message names the step and what was expected.
  CHECK_THROWS_WITH(pare::parse_recipe_step("gptq:ggml:f16"), Catch::Contains("gptq:ggml:f16") && Catch::Contains("q4_0"));
}

TEST_CASE("gptq_linears_ggml refuses a type without block parameters before changing the model", "[pipeline][gptq][ggml]") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  pare::llama_model m = pare::llama_model::from_llama2c(ck);
  pare::ggml_quant_spec s;
  s.type = pare::ggml::type::f16;
  CHECK_THROWS_AS(pare::gptq_linears_ggml(m, s, {{1, 2, 3}}), pare::argument_error);
  CHECK_THROWS_AS(pare::gptq_linears_ggml(m, pare::ggml_quant_spec::parse("q4_0"), {}), pare::argument_error);
  CHECK(m.linear("blk.0.attn_q.weight").format() == "f32");
}
