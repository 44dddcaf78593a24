// Model-level SparseGPT on stories260K: exact sparsity and N:M patterns, 2:4 layers on the sparse kernel giving the dense pruned layer's outputs, lower perplexity than Wanda at the same sparsity; the recipe step's grammar.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/recipe.hpp"
#include "pare/pipeline/sparsegpt_linears.hpp"
#include "pare_test_support.hpp"
#include "pipeline_test_support.hpp"

namespace {

using pipeline_test::dense;
using pipeline_test::text_tokens;

}  // namespace

TEST_CASE("sparsegpt_linears on stories260K: exact patterns, the 2:4 kernel, perplexity below Wanda's",
          "[pipeline][sparsegpt][real_data]") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  const auto ct = text_tokens(tok, "text/tinystories_val_tail.txt", 8192);
  pare::calibration_set cal;
  cal.tokens = ct;
  cal.window = 256;
  const auto eval = text_tokens(tok, "text/tinystories_val_head.txt", 8192);

  for (const char* step : {"sparsegpt:2:4", "sparsegpt:0.5"}) {
    INFO(step);
    const bool nm = std::string(step) == "sparsegpt:2:4";
    pare::llama_model sg = pare::llama_model::from_llama2c(ck);
    const auto changes = pare::apply_recipe_step(pare::parse_recipe_step(step), sg, {}, cal);
    CHECK(changes.size() == 35);  // every block linear; the tied classifier is skipped
    for (const std::string& name : sg.linear_names()) {
      if (name == "output.weight") continue;
      INFO(name);
      const pare::linear_layer& l = sg.linear(name);
      const auto w = dense(l);
      std::size_t zeros = 0;
      for (float v : w) zeros += v == 0.0f;
      if (nm) {
        REQUIRE(dynamic_cast<const pare::sparse24_linear*>(&l));
        for (std::size_t i = 0; i < l.out_features(); ++i)
          for (std::size_t g = 0; g < l.in_features(); g += 4) {
            int z = 0;
            for (std::size_t t = 0; t < 4; ++t) z += w[i * l.in_features() + g + t] == 0.0f;
            REQUIRE(z >= 2);
          }
        // The sparse kernel computes what the dense pruned matrix computes.
        const pare::dense_linear d(pare::matrix_view<const float>(w.data(), l.out_features(), l.in_features()));
        std::vector<float> x(3 * l.in_features()), y1(3 * l.out_features()), y2(y1.size());
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * float(i));
        l.forward(pare::matrix_view<const float>(x.data(), 3, l.in_features()), pare::matrix_view<float>(y1.data(), 3, l.out_features()));
        d.forward(pare::matrix_view<const float>(x.data(), 3, l.in_features()), pare::matrix_view<float>(y2.data(), 3, l.out_features()));
        for (std::size_t i = 0; i < y1.size(); ++i) REQUIRE(y1[i] == Approx(y2[i]).margin(1e-5));
      } else {
        CHECK(zeros == w.size() / 2);  // ⌊0.5·rows·K⌋ exactly
      }
    }
    pare::llama_model wanda = pare::llama_model::from_llama2c(ck);
    pare::apply_recipe_step(pare::parse_recipe_step(nm ? "prune:nm:2:4:wanda" : "prune:unstructured:0.5:wanda"), wanda, {}, cal);
    const double p_sg = pare::perplexity(sg, eval).ppl, p_wanda = pare::perplexity(wanda, eval).ppl;
    INFO("SparseGPT " << p_sg << " Wanda " << p_wanda);
    CHECK(p_sg < p_wanda);
  }
}

TEST_CASE("sparsegpt recipe step: grammar and refusals", "[pipeline][sparsegpt]") {
  auto st = pare::parse_recipe_step("sparsegpt:2:4");
  CHECK(st.kind == pare::recipe_step::sparsegpt);
  CHECK(st.sparsegpt_opt.prune.n == 2);
  CHECK(st.sparsegpt_opt.prune.m == 4);
  CHECK_FALSE(st.sparsegpt_opt.quantize);
  CHECK_FALSE(st.writes_gguf());  // 2:4 storage has no GGUF type
  st = pare::parse_recipe_step("sparsegpt:0.6:int4:g32:asym:damp=0.05");
  CHECK(st.sparsegpt_opt.prune.sparsity == 0.6);
  CHECK(st.sparsegpt_opt.prune.m == 0);
  CHECK(st.sparsegpt_opt.quantize);
  CHECK(st.sparsegpt_opt.cfg.str() == pare::quant_config::parse("int4:g32:asym").str());
  CHECK(st.sparsegpt_opt.prune.hessian.dampening == 0.05);
  CHECK(pare::parse_recipe_step("sparsegpt:0.5").writes_gguf());
  for (const char* bad : {"sparsegpt:", "sparsegpt:1.0", "sparsegpt:-0.1", "sparsegpt:5:4", "sparsegpt:0:4", "sparsegpt:x",
                          "sparsegpt:0.5:int4:g32:stochastic", "sparsegpt:2:4:block=6", "sparsegpt:0.5:damp=-1"}) {
    INFO(bad);
    CHECK_THROWS_AS(pare::parse_recipe_step(bad), pare::argument_error);
  }
}
