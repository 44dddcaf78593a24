// Asymmetric calibration (gptq / sparsegpt ...:fptarget) on stories260K: measured on full forward passes, each layer's output error against the uncompressed model, ‖W·X − Ŵ·X̃‖², falls below the plain solver's.
#include <catch2/catch.hpp>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "pare/model/load.hpp"
#include "pare/pipeline/gptq_ggml_linears.hpp"
#include "pare/pipeline/gptq_linears.hpp"
#include "pare/pipeline/recipe.hpp"
#include "pare/pipeline/sparsegpt_linears.hpp"
#include "pare_test_support.hpp"
#include "pipeline_test_support.hpp"

namespace fptarget_test {

/// Every linear layer's input rows over full forward passes of the windows, in order.
class row_capture final : public pare::llama_session::linear_observer {
 public:
  std::map<std::string, std::vector<float>> rows;
  void on_linear_input(const std::string& name, const pare::matrix_view<const float>& x) override {
    std::vector<float>& r = rows[name];
    for (std::size_t i = 0; i < x.rows(); ++i)
      for (std::size_t k = 0; k < x.cols(); ++k) r.push_back(x(i, k));
  }
};

row_capture capture(const pare::llama_model& m, const std::vector<std::vector<std::int32_t>>& windows) {
  row_capture c;
  for (const auto& w : windows) {
    pare::llama_session s(m);
    s.set_observer(&c);
    std::vector<float> logits;
    s.forward(w.data(), w.size(), logits, true);
  }
  return c;
}

/// Σ over rows of ‖W·x − Ŵ·x̃‖² in float64 (plain loops): the uncompressed layer on the
/// uncompressed model's inputs against the compressed layer on the compressed model's.
double output_error(const std::vector<float>& w, const std::vector<float>& x, const std::vector<float>& wq,
                    const std::vector<float>& xq, std::size_t in) {
  const std::size_t out = w.size() / in, n = x.size() / in;
  double e = 0;
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t o = 0; o < out; ++o) {
      double a = 0, b = 0;
      for (std::size_t k = 0; k < in; ++k) {
        a += double(w[o * in + k]) * x[t * in + k];
        b += double(wq[o * in + k]) * xq[t * in + k];
      }
      e += (a - b) * (a - b);
    }
  return e;
}

}  // namespace fptarget_test

TEST_CASE("fptarget on stories260K: layer outputs closer to the uncompressed model's than without, GPTQ (pare, ggml) and SparseGPT",
          "[pipeline][gptq][fptarget][real_data]") {
  using namespace fptarget_test;
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  const auto calib = pipeline_test::windows_of(pipeline_test::text_tokens(tok, "text/tinystories_val_tail.txt", 2048), 256);
  const pare::llama_model fp = pare::llama_model::from_llama2c(ck);
  const row_capture x_fp = capture(fp, calib);

  for (const char* method : {"gptq:int4:g32:asym", "gptq:ggml:q4_0", "sparsegpt:0.5:per_row"}) {
    INFO(method);
    const bool ggml = std::string(method) == "gptq:ggml:q4_0";
    pare::llama_model plain = pare::llama_model::from_llama2c(ck), fitted = pare::llama_model::from_llama2c(ck);
    const pare::llama_model ref = pare::dense_copy(fitted);
    // The tied classifier stays fp32: quantizing it would also change the embedding rows,
    // i.e. every layer's input after calibration, and X̃ here must be what calibration saw.
    const auto select = [](const std::string& name) { return name != "output.weight"; };
    if (ggml) {
      const pare::ggml_quant_spec s = pare::ggml_quant_spec::parse("q4_0");
      pare::gptq_linears_ggml(plain, s, calib, {}, select);
      pare::gptq_linears_ggml(fitted, s, calib, {}, select, {}, &ref);
    } else if (std::string(method).rfind("sparsegpt", 0) == 0) {
      pare::sparsegpt_linears_options o;
      o.prune.sparsity = 0.5;
      o.prune.per_row = true;
      pare::sparsegpt_linears(plain, o, calib, select);
      pare::sparsegpt_linears(fitted, o, calib, select, {}, &ref);
    } else {
      const pare::quant_config c = pare::quant_config::parse("int4:g32:asym");
      pare::gptq_linears(plain, c, calib, {}, select);
      pare::gptq_linears(fitted, c, calib, {}, select, {}, &ref);
    }
    const row_capture x_plain = capture(plain, calib), x_fitted = capture(fitted, calib);
    double sum_plain = 0, sum_fitted = 0;
    std::size_t better = 0, compared = 0;
    for (const std::string& name : fp.linear_names()) {
      INFO(name);
      if (name == "output.weight" || (ggml && name.find("ffn_down") != std::string::npos)) continue;  // fp32 / f16 fallback
      const std::size_t in = fp.linear(name).in_features();
      const std::vector<float> w = pipeline_test::dense(fp.linear(name));
      const double e_plain = output_error(w, x_fp.rows.at(name), pipeline_test::dense(plain.linear(name)), x_plain.rows.at(name), in);
      const double e_fitted = output_error(w, x_fp.rows.at(name), pipeline_test::dense(fitted.linear(name)), x_fitted.rows.at(name), in);
      if (name.rfind("blk.0.attn_", 0) == 0 && name != "blk.0.attn_output.weight") {
        // Nothing before them is compressed: X̃ = X, the target is W itself, the same solve.
        CHECK(e_plain > 0);
        CHECK(e_fitted == Approx(e_plain).epsilon(1e-6));
        continue;
      }
      ++compared;
      sum_plain += e_plain;
      sum_fitted += e_fitted;
      if (e_fitted < e_plain) ++better;
    }
    INFO("output error, sum over layers: plain " << sum_plain << " fptarget " << sum_fitted << "; better on " << better
                                                 << " of " << compared);
    CHECK(sum_fitted < 0.9 * sum_plain);
    CHECK(better >= compared * 3 / 4);
  }
}

TEST_CASE("recipe steps gptq:ggml:<type>:fptarget and sparsegpt:...:fptarget", "[pipeline][gptq][ggml][fptarget]") {
  const pare::recipe_step a = pare::parse_recipe_step("gptq:ggml:q4_0:fptarget:damp=0.1");
  CHECK(a.kind == pare::recipe_step::gptq_ggml);
  CHECK(a.ggml_spec.type == pare::ggml::type::q4_0);
  CHECK(a.fp_target);
  CHECK(a.gptq_opt.hessian.dampening == 0.1);
  CHECK_FALSE(pare::parse_recipe_step("gptq:ggml:q4_0").fp_target);
  CHECK_THROWS_AS(pare::parse_recipe_step("gptq:ggml:fptarget"), pare::argument_error);  // no type
  const pare::recipe_step b = pare::parse_recipe_step("sparsegpt:0.5:per_row:fptarget");
  CHECK(b.kind == pare::recipe_step::sparsegpt);
  CHECK(b.fp_target);
  CHECK(b.sparsegpt_opt.prune.per_row);
  CHECK_FALSE(b.sparsegpt_opt.quantize);
  CHECK(pare::parse_recipe_step("sparsegpt:2:4:int4:g32:asym:fptarget").fp_target);
  CHECK_FALSE(pare::parse_recipe_step("sparsegpt:2:4").fp_target);
}
