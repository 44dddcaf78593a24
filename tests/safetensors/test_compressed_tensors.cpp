// compressed-tensors pack-quantized: hand-computed packed int32 words, round trips of pare quantizations, an independent decoder, configs, errors, stories260K.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "pare/io/compressed_tensors.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/quant/quantize.hpp"
#include "pare_test_support.hpp"
#include "safetensors_test_support.hpp"

namespace {

/// A quantized_tensor built by hand (codes row by row; scales and zero points as given).
pare::quantized_tensor make_q(const std::string& spec, std::size_t rows, std::size_t cols, const std::vector<std::vector<int>>& codes,
                              std::vector<float> scales, std::vector<std::int32_t> zeros) {
  pare::quantized_tensor q;
  q.config = pare::quant_config::parse(spec);
  q.rows = rows;
  q.cols = cols;
  q.codes = pare::aligned_buffer<std::uint8_t>(rows * q.row_bytes());
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j)
      pare::set_code(q.config.format.bits, q.config.format.is_signed, q.codes.data() + i * q.row_bytes(), j, codes[i][j]);
  q.scales = std::move(scales);
  q.zero_points = std::move(zeros);
  return q;
}

/// The raw uint32 words of an I32 tensor.
std::vector<std::uint32_t> words(const pare::safetensors_tensor& t) {
  REQUIRE(t.dtype == pare::safetensors_dtype::i32);
  std::vector<std::uint32_t> w(t.elements());
  std::memcpy(w.data(), t.data, t.bytes);
  return w;
}

std::vector<std::int64_t> i64s(const pare::safetensors_tensor& t) {
  REQUIRE(t.dtype == pare::safetensors_dtype::i64);
  std::vector<std::int64_t> w(t.elements());
  std::memcpy(w.data(), t.data, t.bytes);
  return w;
}

bool per_tensor_cfg(const pare::quant_config& c) { return c.gran.kind == pare::granularity_kind::per_tensor; }

bool same_bits(const xt::xtensor<float, 2>& a, const xt::xtensor<float, 2>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// compressed-tensors' decompression written from its Python (unpack_from_int32 + dequantize),
/// reading the raw tensors of the file: x = (float(u - 2^(B-1)) - float(zp)) * scale.
std::vector<float> ct_reference_decode(const pare::safetensors_file& f, const std::string& prefix, int bits, bool sym,
                                       const std::string& strategy, std::size_t group) {
  const auto shape = i64s(f.tensor(prefix + "weight_shape"));
  const auto out = static_cast<std::size_t>(shape[0]), in = static_cast<std::size_t>(shape[1]);
  const auto packed = words(f.tensor(prefix + "weight_packed"));
  const auto scales = f.read_f32(prefix + "weight_scale");
  const std::size_t pf = 32 / bits, wpr = (in + pf - 1) / pf;
  const std::uint32_t mask = (1u << bits) - 1u;
  const int off = 1 << (bits - 1);
  const std::size_t groups = strategy == "group" ? in / group : 1;
  std::vector<int> zp(strategy == "tensor" ? 1 : out * groups, 0);
  if (!sym) {
    const auto& tz = f.tensor(prefix + "weight_zero_point");
    if (strategy == "tensor") {
      zp[0] = static_cast<std::int8_t>(tz.data[0]);
    } else {
      const auto zw = words(tz);
      for (std::size_t r = 0; r < out; ++r)
        for (std::size_t g = 0; g < groups; ++g)
          zp[r * groups + g] = int((zw[(r / pf) * groups + g] >> (bits * (r % pf))) & mask) - off;
    }
  }
  std::vector<float> x(out * in);
  for (std::size_t r = 0; r < out; ++r)
    for (std::size_t c = 0; c < in; ++c) {
      const int q = int((packed[r * wpr + c / pf] >> (bits * (c % pf))) & mask) - off;
      const std::size_t k = strategy == "tensor" ? 0 : strategy == "channel" ? r : r * groups + c / group;
      x[r * in + c] = (float(q) - float(zp[k])) * scales[k];
    }
  return x;
}

using safetensors_test::bf16_round;

}  // namespace

TEST_CASE("compressed-tensors: hand-computed int4 / int8 packed words, zero points and shapes") {
  SECTION("int4 per-channel symmetric: u = q + 8, element j at bits 4(j % 8) of word j / 8") {
    const auto q = make_q("int4:per_channel:sym", 2, 10,
                          {{-8, -7, -6, -5, -4, -3, -2, -1, 0, 1}, {7, 7, 7, 7, 7, 7, 7, 7, -1, 3}}, {0.5f, 2.0f}, {0, 0});
    pare::safetensors_writer w;
    pare::write_pack_quantized(w, "layer.weight", q);
    const auto f = pare::safetensors_file::from_bytes(w.to_bytes());
    CHECK(f.tensors().size() == 3);  // symmetric: no weight_zero_point
    CHECK_FALSE(f.has("layer.weight_zero_point"));
    const auto& tp = f.tensor("layer.weight_packed");
    CHECK(tp.shape == std::vector<std::uint64_t>{2, 2});
    CHECK(words(tp) == std::vector<std::uint32_t>{0x76543210u, 0x00000098u, 0xFFFFFFFFu, 0x000000B7u});
    const auto& ts = f.tensor("layer.weight_scale");
    CHECK(ts.dtype == pare::safetensors_dtype::f32);
    CHECK(ts.shape == std::vector<std::uint64_t>{2, 1});
    CHECK(f.read_f32("layer.weight_scale")[1] == 2.0f);
    CHECK(i64s(f.tensor("layer.weight_shape")) == std::vector<std::int64_t>{2, 10});
    const auto r = pare::read_pack_quantized(f, "layer.weight", pare::ct_weight_args{4, true, pare::granularity::channel()});
    CHECK(r.code(0, 0) == -8);
    CHECK(r.code(1, 9) == 3);
    CHECK(r.value(1, 8) == -2.0f);
    CHECK(same_bits(r.dequantize(), q.dequantize()));
  }
  SECTION("int4 g5 asymmetric: zero points packed down the columns, 8 rows per word") {
    std::vector<std::vector<int>> codes(9, std::vector<int>(10, 0));
    codes[8] = {1, 2, 3, 4, 5, 6, 7, -8, -1, 0};
    std::vector<std::int32_t> zeros;
    for (int r = 0; r < 9; ++r) zeros.push_back(r - 4), zeros.push_back(7);
    const auto q = make_q("int4:g5:asym", 9, 10, codes, std::vector<float>(18, 0.25f), zeros);
    pare::safetensors_writer w;
    pare::write_pack_quantized(w, "weight", q, pare::safetensors_dtype::f16);  // a bare "weight": no prefix
    const auto f = pare::safetensors_file::from_bytes(w.to_bytes());
    const auto& tz = f.tensor("weight_zero_point");
    CHECK(tz.shape == std::vector<std::uint64_t>{2, 2});
    // column 0: u = r - 4 + 8 = 4..12 → 0xBA987654 and, for row 8, 0xC; column 1: u = 15 everywhere.
    CHECK(words(tz) == std::vector<std::uint32_t>{0xBA987654u, 0xFFFFFFFFu, 0x0000000Cu, 0x0000000Fu});
    const auto wp = words(f.tensor("weight_packed"));
    REQUIRE(wp.size() == 18);
    CHECK(wp[0] == 0x88888888u);
    CHECK(wp[1] == 0x00000088u);
    CHECK(wp[16] == 0x0FEDCBA9u);  // row 8: u = 9, 10, ..., 15, 0
    CHECK(wp[17] == 0x00000087u);                                  // u = 7, 8
    CHECK(f.tensor("weight_scale").dtype == pare::safetensors_dtype::f16);
    CHECK(f.tensor("weight_scale").shape == std::vector<std::uint64_t>{9, 2});
    const auto r = pare::read_pack_quantized(f, "weight", pare::ct_weight_args{4, false, pare::granularity::group(5)});
    CHECK(r.zero_points == q.zero_points);
    CHECK(same_bits(r.dequantize(), q.dequantize()));  // 0.25 is exact in F16
  }
  SECTION("int8 per-tensor asymmetric: 4 codes per word, an unpacked I8 zero point") {
    const auto q = make_q("int8:per_tensor:asym", 1, 5, {{-128, -1, 0, 127, 5}}, {0.125f}, {-3});
    pare::safetensors_writer w;
    pare::write_pack_quantized(w, "m.weight", q);
    const auto f = pare::safetensors_file::from_bytes(w.to_bytes());
    CHECK(words(f.tensor("m.weight_packed")) == std::vector<std::uint32_t>{0xFF807F00u, 0x00000085u});
    const auto& tz = f.tensor("m.weight_zero_point");
    CHECK(tz.dtype == pare::safetensors_dtype::i8);
    CHECK(tz.shape == std::vector<std::uint64_t>{1});
    CHECK(static_cast<std::int8_t>(tz.data[0]) == -3);
    CHECK(f.tensor("m.weight_scale").shape == std::vector<std::uint64_t>{1});
    const auto r = pare::read_pack_quantized(f, "m.weight", pare::ct_weight_args{8, false, pare::granularity::tensor()});
    CHECK(r.value(0, 0) == -125.0f * 0.125f);
    CHECK(same_bits(r.dequantize(), q.dequantize()));
  }
  SECTION("uint4: the stored value is pare's unsigned code; zero point z - 8 in compressed-tensors terms") {
    const auto q = make_q("uint4:g5:asym", 1, 10, {{0, 1, 2, 3, 4, 5, 6, 7, 8, 15}}, {1.0f, 0.5f}, {3, 12});
    pare::safetensors_writer w;
    pare::write_pack_quantized(w, "u.weight", q);
    const auto f = pare::safetensors_file::from_bytes(w.to_bytes());
    CHECK(words(f.tensor("u.weight_packed")) == std::vector<std::uint32_t>{0x76543210u, 0x000000F8u});
    CHECK(words(f.tensor("u.weight_zero_point")) == std::vector<std::uint32_t>{0x3u, 0xCu});
    const auto r = pare::read_pack_quantized(f, "u.weight", pare::ct_weight_args{4, false, pare::granularity::group(5)});
    CHECK(r.config.format.is_signed);
    CHECK(r.code(0, 9) == 7);
    CHECK(r.zero_points == std::vector<std::int32_t>{-5, 4});
    CHECK(same_bits(r.dequantize(), q.dequantize()));
  }
}

TEST_CASE("compressed-tensors: int5 codes (bit-stream packed in pare, 6 per int32 word) and F16 scales by hand") {
  const auto q = make_q("int5:per_channel:sym:f16scale", 1, 7, {{-16, 15, 0, 1, 2, 3, 4}}, {0.375f}, {0});
  // pare's row: 5-bit codes as a little-endian bit stream, ceil(35 / 8) = 5 bytes
  // (code bits 16, 15, 0, 1, 2, 3, 4 at stream bits 0, 5, 10, ..., 30).
  REQUIRE(q.codes.size() == 5);
  CHECK(std::vector<std::uint8_t>(q.codes.data(), q.codes.data() + 5) == std::vector<std::uint8_t>{0xF0, 0x81, 0x20, 0x06, 0x01});
  CHECK(q.storage_bytes() == 5 + 2);
  pare::safetensors_writer w;
  pare::write_pack_quantized(w, "x.weight", q);
  const auto f = pare::safetensors_file::from_bytes(w.to_bytes());
  // u = q + 16 = 0, 31, 16, 17, 18, 19 | 20 at bits 5(j % 6) of word j / 6.
  CHECK(words(f.tensor("x.weight_packed")) == std::vector<std::uint32_t>{0x2728C3E0u, 20u});
  const auto& ts = f.tensor("x.weight_scale");
  CHECK(ts.dtype == pare::safetensors_dtype::f16);
  std::uint16_t h = 0;
  std::memcpy(&h, ts.data, 2);
  CHECK(h == 0x3600u);  // 0.375 in binary16
  const auto r = pare::read_pack_quantized(f, "x.weight", pare::ct_weight_args{5, true, pare::granularity::channel(0)});
  CHECK(r.config.f16_scale);
  CHECK(r.config.format.bits == 5);
  CHECK(std::memcmp(r.codes.data(), q.codes.data(), 5) == 0);
  CHECK(same_bits(r.dequantize(), q.dequantize()));
}

TEST_CASE("compressed-tensors: pare quantizations round-trip bit for bit and match an independent decoder") {
  const std::size_t rows = 37, cols = 96;  // 37 rows: the packed zero points end in a partial word
  const auto data = pare_test::gaussian(rows * cols, 2024, 0.05);
  const pare::matrix_view<const float> m(data.data(), rows, cols);
  for (const char* spec : {"int4:g32:sym", "int4:g32:asym", "int8:per_channel:sym", "uint4:g32:asym",
                           "int8:per_tensor:asym", "int4:per_channel:asym", "int3:g16:asym", "int2:g16:sym",
                           "int5:g32:asym:mse", "uint8:g32:sym", "int4:per_tensor:sym", "int5:g32:asym:f16scale",
                           "int6:g16:sym:f16scale", "int7:per_channel:asym", "uint5:g48:asym:f16scale",
                           "int4:g32:asym:f16scale", "int5:per_tensor:asym:f16scale"}) {
    INFO(spec);
    const auto cfg = pare::quant_config::parse(spec);
    const auto q = pare::quantize(m, cfg);
    const std::string name = "model.layers.3.mlp.down_proj.weight";
    pare::safetensors_writer w;
    pare::write_pack_quantized(w, name, q);
    pare::set_compressed_tensors_config(w, pare::compressed_tensors_config(cfg));
    const auto f = pare::safetensors_file::from_bytes(w.to_bytes());
    CHECK(f.metadata().at("format") == "pt");
    const auto r = pare::read_pack_quantized(f, name);  // arguments from __metadata__
    const auto want = q.dequantize();
    CHECK(same_bits(r.dequantize(), want));
    CHECK(r.config.scheme == cfg.scheme);
    CHECK(r.config.gran == cfg.gran);
    // f16scale: F16 weight_scale (exact), read back as f16scale with the same stored size.
    CHECK(f.tensor(name.substr(0, name.size() - 6) + "weight_scale").dtype ==
          (cfg.f16_scale ? pare::safetensors_dtype::f16 : pare::safetensors_dtype::f32));
    CHECK(r.config.f16_scale == cfg.f16_scale);
    if (cfg.format.is_signed && !per_tensor_cfg(cfg)) CHECK(r.storage_bytes() == q.storage_bytes());
    // pare keeps one (scale, zero point) per row for per_tensor, of which only the first counts.
    const bool per_tensor = cfg.gran.kind == pare::granularity_kind::per_tensor;
    REQUIRE(r.scales.size() == q.scales.size());
    CHECK((per_tensor ? r.scales[0] == q.scales[0] : r.scales == q.scales));
    if (cfg.format.is_signed) {
      CHECK((per_tensor ? r.zero_points[0] == q.zero_points[0] : r.zero_points == q.zero_points));
      CHECK(std::memcmp(r.codes.data(), q.codes.data(), q.codes.size()) == 0);
    }
    const std::string strategy = cfg.gran.kind == pare::granularity_kind::per_group     ? "group"
                                 : cfg.gran.kind == pare::granularity_kind::per_channel ? "channel"
                                                                                        : "tensor";
    const auto ref = ct_reference_decode(f, "model.layers.3.mlp.down_proj.", cfg.format.bits,
                                         cfg.scheme == pare::scheme_kind::symmetric, strategy, cfg.gran.group_size);
    CHECK(std::memcmp(ref.data(), want.data(), ref.size() * sizeof(float)) == 0);
    // BF16 scales: the read-back dequantizes with the scales rounded to bfloat16.
    pare::safetensors_writer wb;
    pare::write_pack_quantized(wb, name, q, pare::safetensors_dtype::bf16);
    const auto fb = pare::safetensors_file::from_bytes(wb.to_bytes());
    auto qb = q;
    for (float& s : qb.scales) s = bf16_round(s);
    const auto rb = pare::read_pack_quantized(fb, name, pare::compressed_tensors_args_for(pare::compressed_tensors_config(cfg), name));
    CHECK(same_bits(rb.dequantize(), qb.dequantize()));
  }
}

TEST_CASE("compressed-tensors: quantization_config JSON and choosing a layer's config group") {
  const auto c = pare::compressed_tensors_config(pare::quant_config::parse("int4:g128:sym"));
  CHECK(c["quant_method"] == "compressed-tensors");
  CHECK(c["format"] == "pack-quantized");
  CHECK(c["quantization_status"] == "compressed");
  CHECK(c["ignore"] == nlohmann::json::array({"lm_head"}));
  const auto& wt = c["config_groups"]["group_0"]["weights"];
  CHECK(c["config_groups"]["group_0"]["targets"] == nlohmann::json::array({"Linear"}));
  CHECK(wt["num_bits"] == 4);
  CHECK(wt["type"] == "int");
  CHECK(wt["symmetric"] == true);
  CHECK(wt["strategy"] == "group");
  CHECK(wt["group_size"] == 128);
  CHECK(wt["dynamic"] == false);
  CHECK(wt["actorder"].is_null());
  const auto ch = pare::compressed_tensors_weight_args(pare::quant_config::parse("int8:per_channel:asym"));
  CHECK(ch["strategy"] == "channel");
  CHECK(ch["group_size"].is_null());
  CHECK(ch["symmetric"] == false);
  CHECK_THROWS_AS(pare::compressed_tensors_weight_args(pare::quant_config::parse("int4:per_channel=1")), pare::unsupported_error);

  const auto multi = pare::compressed_tensors_config(
      {{pare::quant_config::parse("int8:per_channel:sym"), {"re:.*down_proj$"}},
       {pare::quant_config::parse("int4:g32:asym"), {"Linear"}},
       {pare::quant_config::parse("int2:g16:sym"), {"model.layers.0.mlp.down_proj"}}},
      {"lm_head", "re:.*gate$"});
  const auto a = pare::compressed_tensors_args_for(multi, "model.layers.1.mlp.down_proj.weight");
  CHECK(a.num_bits == 8);
  CHECK(a.gran == pare::granularity::channel());
  const auto b = pare::compressed_tensors_args_for(multi, "model.layers.1.self_attn.q_proj.weight");
  CHECK(b.num_bits == 4);
  CHECK_FALSE(b.symmetric);
  CHECK(b.gran == pare::granularity::group(32));
  CHECK(pare::compressed_tensors_args_for(multi, "model.layers.0.mlp.down_proj.weight").num_bits == 2);  // name beats regex
  CHECK_THROWS_WITH(pare::compressed_tensors_args_for(multi, "lm_head.weight"), Catch::Contains("ignore"));
  CHECK_THROWS_AS(pare::compressed_tensors_args_for(multi, "model.layers.0.mlp.gate.weight"), pare::argument_error);
  // What QuantizationArgs infers when fields are left out; what pare cannot represent.
  CHECK(pare::parse_ct_weight_args(nlohmann::json{{"num_bits", 4}, {"group_size", -1}}).gran == pare::granularity::channel());
  CHECK(pare::parse_ct_weight_args(nlohmann::json{{"num_bits", 4}}).gran == pare::granularity::tensor());
  CHECK(pare::parse_ct_weight_args(nlohmann::json::object()).num_bits == 8);
  CHECK_THROWS_AS(pare::parse_ct_weight_args(nlohmann::json{{"type", "float"}}), pare::unsupported_error);
  CHECK_THROWS_AS(pare::parse_ct_weight_args(nlohmann::json{{"strategy", "block"}}), pare::unsupported_error);
  CHECK_THROWS_AS(pare::parse_ct_weight_args(nlohmann::json{{"strategy", "group"}}), pare::format_error);
  CHECK_THROWS_AS(pare::parse_ct_weight_args(nlohmann::json{{"num_bits", "4"}}), pare::format_error);
  CHECK_THROWS_AS(pare::parse_ct_weight_args(nlohmann::json{{"strategy", "group"}, {"group_size", 32}, {"actorder", "group"}}),
                  pare::unsupported_error);
  nlohmann::json other = c;
  other["format"] = "int-quantized";
  CHECK_THROWS_WITH(pare::compressed_tensors_args_for(other, "x.weight"), Catch::Contains("pack-quantized"));
}

TEST_CASE("compressed-tensors: bad arguments change nothing, malformed parts are format_errors naming the tensor") {
  const auto data = pare_test::gaussian(8 * 64, 5);
  const auto q = pare::quantize(pare::matrix_view<const float>(data.data(), 8, 64), pare::quant_config::parse("int4:g32:asym"));
  pare::safetensors_writer w;
  CHECK_THROWS_AS(pare::write_pack_quantized(w, "layer.bias", q), pare::argument_error);
  CHECK_THROWS_AS(pare::write_pack_quantized(w, "layerweight", q), pare::argument_error);
  CHECK_THROWS_AS(pare::write_pack_quantized(w, "x.weight", q, pare::safetensors_dtype::i8), pare::argument_error);
  auto col = pare::quantize(pare::matrix_view<const float>(data.data(), 8, 64), pare::quant_config::parse("int4:per_channel=1"));
  CHECK_THROWS_AS(pare::write_pack_quantized(w, "x.weight", col), pare::unsupported_error);
  auto broken = q;
  broken.scales.pop_back();
  CHECK_THROWS_WITH(pare::write_pack_quantized(w, "x.weight", broken), Catch::Contains("inconsistent"));
  CHECK(w.size() == 0);
  w.add("x.weight_scale", pare::safetensors_dtype::u8, {1}, "\x01", 1);
  CHECK_THROWS_WITH(pare::write_pack_quantized(w, "x.weight", q), Catch::Contains("x.weight_scale"));
  CHECK(w.size() == 1);  // nothing of x.weight_packed was added
  pare::write_pack_quantized(w, "y.weight", q);
  const auto f = pare::safetensors_file::from_bytes(w.to_bytes());
  const pare::ct_weight_args asym4{4, false, pare::granularity::group(32)};
  CHECK_THROWS_WITH(pare::read_pack_quantized(f, "z.weight", asym4), Catch::Contains("no tensor 'z.weight_shape'"));
  CHECK_THROWS_WITH(pare::read_pack_quantized(f, "y.weight", pare::ct_weight_args{8, false, pare::granularity::group(32)}),
                    Catch::Contains("y.weight_packed") && Catch::Contains("expected shape [8, 16]"));
  CHECK_THROWS_WITH(pare::read_pack_quantized(f, "y.weight", pare::ct_weight_args{4, false, pare::granularity::group(16)}),
                    Catch::Contains("y.weight_scale") && Catch::Contains("[8, 4]"));
  CHECK_THROWS_WITH(pare::read_pack_quantized(f, "y.weight", pare::ct_weight_args{4, false, pare::granularity::group(24)}),
                    Catch::Contains("does not divide"));
  CHECK_THROWS_AS(pare::read_pack_quantized(f, "y.weight"), pare::format_error);  // no quantization_config in metadata
  // A symmetric checkpoint read as asymmetric lacks its zero points.
  pare::safetensors_writer ws;
  pare::write_pack_quantized(ws, "s.weight", pare::quantize(pare::matrix_view<const float>(data.data(), 8, 64),
                                                            pare::quant_config::parse("int4:g32:sym")));
  const auto fs = pare::safetensors_file::from_bytes(ws.to_bytes());
  CHECK_THROWS_WITH(pare::read_pack_quantized(fs, "s.weight", asym4), Catch::Contains("no tensor 's.weight_zero_point'"));
  // Older compressed-tensors stored asymmetric zero points unpacked as I8 [out, groups]: accepted.
  pare::safetensors_writer wo;
  const auto rq = pare::read_pack_quantized(f, "y.weight", asym4);
  for (const auto& t : f.tensors())
    if (t.name != "y.weight_zero_point") wo.add(t.name, t.dtype, t.shape, t.data, t.bytes);
  std::vector<std::uint8_t> z8;
  for (auto z : q.zero_points) z8.push_back(static_cast<std::uint8_t>(static_cast<std::int8_t>(z)));
  wo.add("y.weight_zero_point", pare::safetensors_dtype::i8, {8, 2}, std::move(z8));
  const auto fo = pare::safetensors_file::from_bytes(wo.to_bytes());
  CHECK(same_bits(pare::read_pack_quantized(fo, "y.weight", asym4).dequantize(), q.dequantize()));
  CHECK(same_bits(rq.dequantize(), q.dequantize()));
}

TEST_CASE("compressed-tensors: every stories260K matrix through pack-quantized safetensors dequantizes bit for bit") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const auto g32 = pare::quant_config::parse("int4:g32:asym:mse");
  const auto chan = pare::quant_config::parse("int8:per_channel:sym");
  std::vector<std::string> g32_layers, chan_layers;
  std::vector<pare::quantized_tensor> qs;
  pare::safetensors_writer w;
  for (const std::string& name : ck.matrix_names()) {
    const auto m = ck.matrix(name);
    const bool grouped = m.cols() % 32 == 0;
    qs.push_back(pare::quantize(m, grouped ? g32 : chan));
    pare::write_pack_quantized(w, name, qs.back(), pare::safetensors_dtype::f32);
    (grouped ? g32_layers : chan_layers).push_back(name.substr(0, name.size() - 7));
  }
  REQUIRE_FALSE(chan_layers.empty());  // the FFN down projection has 172 inputs
  pare::set_compressed_tensors_config(w, pare::compressed_tensors_config({{g32, g32_layers}, {chan, chan_layers}}, {}));
  const std::string path = (std::filesystem::temp_directory_path() / ("pare_ct_stories_" + std::to_string(::getpid()) +
                                                                       ".safetensors")).string();
  w.write(path);
  const auto f = pare::safetensors_file::open(path);
  std::size_t k = 0, identical = 0;
  for (const std::string& name : ck.matrix_names()) {
    const auto r = pare::read_pack_quantized(f, name);
    identical += same_bits(r.dequantize(), qs[k].dequantize());
    CHECK(r.config.format.bits == qs[k].config.format.bits);
    ++k;
  }
  CHECK(identical == ck.matrix_names().size());
  std::filesystem::remove(path);
}
