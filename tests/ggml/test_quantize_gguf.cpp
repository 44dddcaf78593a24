// Streaming GGUF → GGUF quantization of stories260K.gguf: types, fallbacks, untouched tensors and metadata, and agreement with the model-level path.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "pare/io/convert/gguf_quantize.hpp"
#include "pare/model/export_model_gguf.hpp"
#include "pare/pipeline/ggml_quantize_linears.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare_test_support.hpp"

namespace fs = std::filesystem;
using pare::ggml::type;

namespace {
std::string tmp(const std::string& n) { return (fs::temp_directory_path() / ("pare_qgguf_" + n)).string(); }
}  // namespace

TEST_CASE("quantize_gguf converts every 2-D float tensor and copies the rest", "[ggml][gguf]") {
  const pare::gguf_file in = pare::gguf_file::open(pare_test::data_path("models/stories260K.gguf"));
  const std::string out = tmp("q8_0.gguf");
  pare::ggml::gguf_quantize_options opt;
  opt.target = type::q8_0;
  const auto changes = pare::ggml::quantize_gguf(in, out, opt);
  const pare::gguf_file q = pare::gguf_file::open(out);
  REQUIRE(changes.size() == in.tensors().size());
  REQUIRE(q.tensors().size() == in.tensors().size());
  for (std::size_t i = 0; i < in.tensors().size(); ++i) {
    const pare::gguf_tensor& a = in.tensors()[i];
    const pare::gguf_tensor& b = q.tensors()[i];
    INFO(a.name);
    CHECK(a.name == b.name);
    CHECK(a.ne == b.ne);
    if (a.ne.size() != 2) {
      CHECK(b.type == a.type);
      CHECK(std::vector<std::uint8_t>(a.data, a.data + a.bytes) == std::vector<std::uint8_t>(b.data, b.data + b.bytes));
      CHECK_FALSE(changes[i].converted);
      continue;
    }
    const bool fits = a.cols() % 32 == 0;
    CHECK(b.type == (fits ? 8u : 1u));
    CHECK(changes[i].fallback == !fits);
    // Within q8_0 rounding: half a step d = amax/127, plus 127 times d's own fp16 rounding (2^-11 relative).
    const pare::matrix_view<const float> src = in.f32_matrix(a.name);
    const pare::ggml::ggml_tensor t(static_cast<type>(b.type), b.rows(), b.cols(),
                                    std::vector<std::uint8_t>(b.data, b.data + b.bytes));
    const std::vector<float> back = t.dequantize();
    for (std::size_t r = 0; r < b.rows(); ++r) {
      float amax = 0;
      for (std::size_t c = 0; c < b.cols(); ++c) amax = std::max(amax, std::fabs(src(r, c)));
      for (std::size_t c = 0; c < b.cols(); ++c)
        CHECK(std::fabs(back[r * b.cols() + c] - src(r, c)) <= (fits ? amax / 127.0f * 0.57f : std::fabs(src(r, c)) * 1e-3f + 1e-7f));
    }
  }
  // Metadata: every key of the input, plus the quantization version.
  for (const auto& kv : in.metadata()) CHECK(q.has(kv.first));
  CHECK(q.get<std::uint32_t>("general.quantization_version") == 2u);
  // The model loads, and its linears are the bytes the model-level path makes.
  const pare::llama_model m = pare::llama_model_from_gguf(q);
  pare::llama_model ref = pare::llama_model_from_gguf(in);
  pare::quantize_linears_ggml(ref, pare::ggml_quant_spec::parse("q8_0"));
  for (const std::string& name : m.linear_names()) {
    INFO(name);
    CHECK(m.linear(name).format() == ref.linear(name).format());
    std::vector<float> wa(m.linear(name).out_features() * m.linear(name).in_features()), wb(wa.size());
    m.linear(name).dense_weights(pare::matrix_view<float>(wa.data(), m.linear(name).out_features(), m.linear(name).in_features()));
    ref.linear(name).dense_weights(pare::matrix_view<float>(wb.data(), m.linear(name).out_features(), m.linear(name).in_features()));
    CHECK(wa == wb);
  }
  fs::remove(out);
}

TEST_CASE("quantize_gguf: K formats fall back as llama.cpp does, selection and importance matrices", "[ggml][gguf]") {
  const pare::gguf_file in = pare::gguf_file::open(pare_test::data_path("models/stories260K.gguf"));
  const std::string out = tmp("q4_K.gguf");
  pare::ggml::gguf_quantize_options opt;
  opt.target = type::q4_K;
  opt.select = [](const std::string& n) { return n.find("attn_") != std::string::npos; };
  const auto changes = pare::ggml::quantize_gguf(in, out, opt);
  const pare::gguf_file q = pare::gguf_file::open(out);
  for (const auto& t : q.tensors()) {
    INFO(t.name);
    if (t.name.find("attn_") != std::string::npos && t.ne.size() == 2) CHECK(t.type == static_cast<std::uint32_t>(type::q5_0));
    else CHECK(t.type == in.tensor(t.name).type);
  }
  for (const auto& c : changes)
    if (c.converted) {
      CHECK(c.fallback);
      CHECK(c.to == "q5_0");
    }
  fs::remove(out);

  std::map<std::string, std::vector<float>> imat{{"blk.0.attn_q.weight", std::vector<float>(63, 1.0f)}};
  opt.imatrix = &imat;
  const std::string bad = tmp("bad.gguf");
  fs::remove(bad);
  CHECK_THROWS_AS(pare::ggml::quantize_gguf(in, bad, opt), pare::shape_error);
  CHECK_FALSE(fs::exists(bad));
  imat["blk.0.attn_q.weight"] = std::vector<float>(64, 1.0f);
  imat["blk.0.attn_q.weight"][5] = 50.0f;
  opt.target = type::q4_0;
  pare::ggml::quantize_gguf(in, bad, opt);
  const pare::gguf_file qi = pare::gguf_file::open(bad);
  const pare::gguf_tensor& t = qi.tensor("blk.0.attn_q.weight");
  const pare::matrix_view<const float> src = in.f32_matrix("blk.0.attn_q.weight");
  const auto direct = pare::ggml::quantize(src, type::q4_0, imat["blk.0.attn_q.weight"]);
  CHECK(std::vector<std::uint8_t>(t.data, t.data + t.bytes) == direct.bytes());
  CHECK(direct.bytes() != pare::ggml::quantize(src, type::q4_0).bytes());
  fs::remove(bad);
}
