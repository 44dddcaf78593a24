// safetensors file quantization: a model's weights to compressed-tensors pack-quantized and back, with fallbacks, ignore lists and copied tensors.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pare/io/llama2c.hpp"
#include "pare/io/convert/safetensors_quantize.hpp"
#include "pare_test_support.hpp"

namespace fs = std::filesystem;

TEST_CASE("quantize_safetensors writes pack-quantized layers that read back to pare's own dequantization", "[safetensors][quantize]") {
  // A safetensors "model" with HF-style names from stories260K's real weights.
  const pare::llama2c_checkpoint ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  pare::safetensors_writer src;
  src.set_metadata("format", "pt");
  auto add = [&](const std::string& name, const std::string& from) {
    const pare::tensor_view<const float> t = ck.tensor(from);
    std::vector<std::uint64_t> shape(t.shape().begin(), t.shape().end());
    std::vector<float> v(t.size());
    std::size_t i = 0;
    if (t.rank() == 2) for (std::size_t r = 0; r < t.shape()[0]; ++r) for (std::size_t c = 0; c < t.shape()[1]; ++c) v[i++] = t(r, c);
    else for (std::size_t c = 0; c < t.shape()[0]; ++c) v[i++] = t(c);
    src.add_f32(name, shape, v.data(), v.size(), pare::safetensors_dtype::bf16);
  };
  add("model.embed_tokens.weight", "token_embd.weight");
  add("model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight");
  add("model.layers.0.mlp.down_proj.weight", "blk.0.ffn_down.weight");  // 172 inputs: not a multiple of 32
  add("model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight");
  const std::string in_path = (fs::temp_directory_path() / "pare_qst_in.safetensors").string();
  const std::string out_path = (fs::temp_directory_path() / "pare_qst_out.safetensors").string();
  src.write(in_path);
  const pare::safetensors_file in = pare::safetensors_file::open(in_path);

  const pare::quant_config cfg = pare::quant_config::parse("int4:g32:asym");
  const auto changes = pare::quantize_safetensors(in, out_path, cfg);
  const pare::safetensors_file out = pare::safetensors_file::open(out_path);
  // Copied unchanged: embedding and norm.
  for (const char* name : {"model.embed_tokens.weight", "model.layers.0.input_layernorm.weight"}) {
    const auto& a = in.tensor(name);
    const auto& b = out.tensor(name);
    CHECK(std::vector<std::uint8_t>(a.data, a.data + a.bytes) == std::vector<std::uint8_t>(b.data, b.data + b.bytes));
  }
  CHECK_FALSE(out.has("model.layers.0.self_attn.q_proj.weight"));
  CHECK(out.has("model.layers.0.self_attn.q_proj.weight_packed"));
  CHECK(out.tensor("model.layers.0.self_attn.q_proj.weight_scale").dtype == pare::safetensors_dtype::bf16);
  const auto qcfg = nlohmann::json::parse(out.metadata().at("quantization_config"));
  CHECK(qcfg["format"] == "pack-quantized");
  CHECK(qcfg["config_groups"]["group_0"]["weights"]["group_size"] == 32);
  CHECK(qcfg["config_groups"]["group_1"]["targets"][0] == "model.layers.0.mlp.down_proj");
  CHECK(qcfg["config_groups"]["group_1"]["weights"]["strategy"] == "channel");
  // Read back: dequantized values equal pare's dequantization of the same quantization
  // (scales stored in BF16, so the reference uses bf16-rounded scales).
  for (const auto& c : changes) {
    if (!c.converted) continue;
    INFO(c.name);
    const pare::quantized_tensor back = pare::read_pack_quantized(out, c.name);
    const pare::float_matrix m = in.f32_matrix(c.name);
    pare::quantized_tensor ref =
        pare::quantize(pare::matrix_view<const float>(m.values.data(), m.rows, m.cols), pare::quant_config::parse(c.format));
    for (auto& s : ref.scales) s = pare::bf16_to_float(pare::float_to_bf16(s));
    std::vector<float> a(m.rows * m.cols), b(a.size());
    back.dequantize_into(pare::matrix_view<float>(a.data(), m.rows, m.cols));
    ref.dequantize_into(pare::matrix_view<float>(b.data(), m.rows, m.cols));
    CHECK(a == b);
    CHECK(c.bytes_out < c.bytes_in);
  }
  fs::remove(in_path);
  fs::remove(out_path);
}
