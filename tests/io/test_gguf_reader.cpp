// GGUF reader: a file built by hand from the specification, every metadata type, stories260K, and truncated / corrupted files.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "pare/io/gguf.hpp"
#include "pare/io/llama2c.hpp"
#include "pare_test_support.hpp"

namespace {

/// Little-endian byte builder written from the GGUF specification (independent of pare).
struct builder {
  std::vector<std::uint8_t> b;
  template <class T>
  void put(T v) {
    std::uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    for (std::uint8_t x : tmp) b.push_back(x);
  }
  void str(const std::string& s) {
    put<std::uint64_t>(s.size());
    for (char ch : s) b.push_back(static_cast<std::uint8_t>(ch));
  }
  void pad(std::size_t a) {
    while (b.size() % a) b.push_back(0);
  }
};

/// A small valid GGUF v3: one key of every type (a nested array too), alignment 64,
/// three tensors: f32 [3, 8], q8_0 [2, 32], f16 [4].
std::vector<std::uint8_t> small_gguf() {
  builder g;
  for (char ch : {'G', 'G', 'U', 'F'}) g.put<char>(ch);
  g.put<std::uint32_t>(3);
  g.put<std::uint64_t>(3);   // tensors
  g.put<std::uint64_t>(15);  // keys
  auto key = [&](const std::string& k, std::uint32_t t) { g.str(k), g.put<std::uint32_t>(t); };
  key("u8", 0), g.put<std::uint8_t>(200);
  key("i8", 1), g.put<std::int8_t>(-100);
  key("u16", 2), g.put<std::uint16_t>(60000);
  key("i16", 3), g.put<std::int16_t>(-30000);
  key("u32", 4), g.put<std::uint32_t>(4000000000u);
  key("i32", 5), g.put<std::int32_t>(-2000000000);
  key("f32", 6), g.put<float>(1.5f);
  key("flag", 7), g.put<std::uint8_t>(1);
  key("name", 8), g.str("pare test");
  key("u64", 10), g.put<std::uint64_t>(1ull << 40);
  key("i64", 11), g.put<std::int64_t>(-(1ll << 40));
  key("f64", 12), g.put<double>(-2.25);
  key("words", 9), g.put<std::uint32_t>(8), g.put<std::uint64_t>(2), g.str("a"), g.str("bc");
  key("nested", 9), g.put<std::uint32_t>(9), g.put<std::uint64_t>(2);
  g.put<std::uint32_t>(5), g.put<std::uint64_t>(2), g.put<std::int32_t>(1), g.put<std::int32_t>(2);
  g.put<std::uint32_t>(5), g.put<std::uint64_t>(1), g.put<std::int32_t>(3);
  key("general.alignment", 4), g.put<std::uint32_t>(64);
  auto tensor = [&](const std::string& n, std::vector<std::uint64_t> ne, std::uint32_t type, std::uint64_t off) {
    g.str(n);
    g.put<std::uint32_t>(std::uint32_t(ne.size()));
    for (auto d : ne) g.put<std::uint64_t>(d);
    g.put<std::uint32_t>(type);
    g.put<std::uint64_t>(off);
  };
  tensor("w.f32", {8, 3}, 0, 0);      // 96 bytes
  tensor("w.q8_0", {32, 2}, 8, 128);  // 2 blocks of 34 bytes
  tensor("v.f16", {4}, 1, 256);       // 8 bytes
  g.pad(64);
  const std::size_t data = g.b.size();
  g.b.resize(data + 264, 0);
  for (int i = 0; i < 24; ++i) {
    const float v = float(i) - 3.5f;
    std::memcpy(&g.b[data + 4 * i], &v, 4);
  }
  for (int i = 0; i < 68; ++i) g.b[data + 128 + i] = std::uint8_t(i * 7);
  return g.b;
}

}  // namespace

TEST_CASE("gguf: a hand-built file reads back every metadata type and tensor") {
  const auto bytes = small_gguf();
  const auto g = pare::gguf_file::from_bytes(bytes.data(), bytes.size());
  CHECK(g.version() == 3);
  CHECK(g.alignment() == 64);
  CHECK(g.get<int>("u8") == 200);
  CHECK(g.get<int>("i8") == -100);
  CHECK(g.get<int>("u16") == 60000);
  CHECK(g.get<int>("i16") == -30000);
  CHECK(g.get<std::uint32_t>("u32") == 4000000000u);
  CHECK(g.get<std::int32_t>("i32") == -2000000000);
  CHECK(g.get<float>("f32") == 1.5f);
  CHECK(g.get<bool>("flag"));
  CHECK(g.get<std::string>("name") == "pare test");
  CHECK(g.get<std::uint64_t>("u64") == (1ull << 40));
  CHECK(g.get<std::int64_t>("i64") == -(1ll << 40));
  CHECK(g.get<double>("f64") == -2.25);
  CHECK(g.get<std::vector<std::string>>("words") == std::vector<std::string>{"a", "bc"});
  CHECK(g.get<std::vector<std::vector<int>>>("nested") == std::vector<std::vector<int>>{{1, 2}, {3}});
  CHECK_THROWS_WITH(g.get<int>("u32"), Catch::Contains("'u32'"));          // does not fit
  CHECK_THROWS_WITH(g.get<std::string>("f32"), Catch::Contains("float32"));  // wrong type
  CHECK_THROWS_AS(g.get<int>("missing"), pare::argument_error);
  REQUIRE(g.tensors().size() == 3);
  const auto m = g.f32_matrix("w.f32");
  CHECK(m.rows() == 3);
  CHECK(m.cols() == 8);
  CHECK(m(2, 7) == 23.0f - 3.5f);
  const auto& q = g.tensor("w.q8_0");
  CHECK(q.bytes == 68);
  CHECK(q.data[5] == 35);
  CHECK(g.tensor("v.f16").rows() == 1);
  CHECK_THROWS_AS(g.f32_matrix("w.q8_0"), pare::unsupported_error);
}

TEST_CASE("gguf: every truncation and byte flip of the header ends in a pare::error or a valid file, never a crash") {
  const auto bytes = small_gguf();
  const auto good = pare::gguf_file::from_bytes(bytes.data(), bytes.size());
  const std::size_t header = good.data_offset();
  std::size_t errors = 0;
  for (std::size_t n = 0; n < bytes.size(); ++n) {  // every truncation (the last tensor ends at the file's end)
    try {
      (void)pare::gguf_file::from_bytes(bytes.data(), n);
      FAIL("truncated at " << n << " bytes but accepted");
    } catch (const pare::error&) {
      ++errors;
    }
  }
  CHECK(errors == bytes.size());
  std::size_t rejected = 0, accepted = 0;
  for (std::size_t at = 0; at < header; ++at)
    for (std::uint8_t pattern : {std::uint8_t(0x01), std::uint8_t(0x80), std::uint8_t(0xFF)}) {
      std::vector<std::uint8_t> bad = bytes;
      bad[at] ^= pattern;
      try {
        const auto g = pare::gguf_file::from_bytes(bad.data(), bad.size());
        for (const auto& t : g.tensors()) REQUIRE(t.data + t.bytes <= g.file().data() + g.file().size());
        ++accepted;
      } catch (const pare::error&) {
        ++rejected;
      }
    }
  INFO("flips rejected " << rejected << ", accepted " << accepted);
  CHECK(rejected > accepted);
  // Specific rules, each named in the message.
  auto with = [&](std::size_t at, std::vector<std::uint8_t> patch) {
    std::vector<std::uint8_t> b = bytes;
    for (std::size_t i = 0; i < patch.size(); ++i) b[at + i] = patch[i];
    return b;
  };
  const auto v1 = with(4, {1, 0, 0, 0});
  CHECK_THROWS_AS(pare::gguf_file::from_bytes(v1.data(), v1.size()), pare::unsupported_error);
  const auto magic = with(0, {'G', 'G', 'U', 'X'});
  CHECK_THROWS_WITH(pare::gguf_file::from_bytes(magic.data(), magic.size()), Catch::Contains("magic"));
  const auto many = with(8, {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0});
  CHECK_THROWS_WITH(pare::gguf_file::from_bytes(many.data(), many.size()), Catch::Contains("tensor_count"));
}

namespace {
/// A GGUF with one tensor of shape `ne` and type `type` at offset 0, and `data` bytes
/// of data.
std::vector<std::uint8_t> one_tensor_gguf(const std::vector<std::uint64_t>& ne, std::uint32_t type, std::size_t data) {
  builder g;
  for (char ch : {'G', 'G', 'U', 'F'}) g.put<char>(ch);
  g.put<std::uint32_t>(3);
  g.put<std::uint64_t>(1);  // tensors
  g.put<std::uint64_t>(0);  // keys
  g.str("w");
  g.put<std::uint32_t>(std::uint32_t(ne.size()));
  for (auto d : ne) g.put<std::uint64_t>(d);
  g.put<std::uint32_t>(type);
  g.put<std::uint64_t>(0);
  g.pad(32);
  g.b.resize(g.b.size() + data, 0);
  return g.b;
}
}  // namespace

TEST_CASE("gguf: shapes whose byte size wraps around 2^64 are refused, never viewed past the file") {
  // f32 [2^31, 2^31]: 2^62 elements × 4 bytes = 2^64, which wrapped to 0 bytes and passed
  // the bounds check (f32_matrix then viewed 2^62 floats of a 96-byte buffer).
  const auto wrap = one_tensor_gguf({std::uint64_t(1) << 31, std::uint64_t(1) << 31}, 0, 32);
  CHECK_THROWS_AS(pare::gguf_file::from_bytes(wrap.data(), wrap.size()), pare::format_error);
  CHECK_THROWS_WITH(pare::gguf_file::from_bytes(wrap.data(), wrap.size()),
                    Catch::Contains("shape of 'w'") && Catch::Contains("4611686018427387904 elements of f32"));
  // Other wrapping products: q8_0 (34-byte blocks) and a 4-D shape at the element limit.
  for (const auto& [ne, type] : std::vector<std::pair<std::vector<std::uint64_t>, std::uint32_t>>{
           {{std::uint64_t(1) << 36, std::uint64_t(1) << 26}, 8},
           {{std::uint64_t(1) << 16, std::uint64_t(1) << 16, std::uint64_t(1) << 16, std::uint64_t(1) << 14}, 0},
           {{~std::uint64_t(0)}, 0},
           {{std::uint64_t(1) << 62, 2}, 0}}) {
    const auto b = one_tensor_gguf(ne, type, 64);
    INFO("ne[0] = " << ne[0] << ", type " << type);
    CHECK_THROWS_AS(pare::gguf_file::from_bytes(b.data(), b.size()), pare::format_error);
  }
  // The largest f32 tensor the file holds is accepted, one element more is not.
  const auto fits = one_tensor_gguf({8, 2}, 0, 64);
  const auto g = pare::gguf_file::from_bytes(fits.data(), fits.size());
  CHECK(g.tensors()[0].bytes == 64);
  CHECK(g.f32_matrix("w").rows() == 2);
  const auto past = one_tensor_gguf({17}, 0, 64);
  CHECK_THROWS_WITH(pare::gguf_file::from_bytes(past.data(), past.size()), Catch::Contains("outside the file"));
}

TEST_CASE("gguf: stories260K.gguf holds the llama2.c checkpoint's tensors bit for bit") {
  const auto g = pare::gguf_file::open(pare_test::data_path("models/stories260K.gguf"));
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  CHECK(g.get<std::string>("general.architecture") == "llama");
  CHECK(g.get<int>("llama.block_count") == ck.config().n_layers);
  CHECK(g.get<int>("llama.embedding_length") == ck.config().dim);
  CHECK(g.get<std::vector<std::string>>("tokenizer.ggml.tokens").size() == 512);
  std::size_t compared = 0;
  for (const std::string& name : ck.tensor_names()) {
    const auto want = ck.tensor(name);
    const auto got = g.f32_matrix(name);
    REQUIRE(got.rows() * got.cols() == want.size());
    std::size_t diff = 0;
    const float* p = got.row_ptr(0);
    if (want.rank() == 2) {
      for (std::size_t r = 0; r < want.shape()[0]; ++r)
        for (std::size_t c = 0; c < want.shape()[1]; ++c) diff += std::memcmp(p++, &want(r, c), 4) != 0;
    } else {
      for (std::size_t c = 0; c < want.shape()[0]; ++c) diff += std::memcmp(p++, &want(c), 4) != 0;
    }
    CHECK(diff == 0);
    ++compared;
  }
  CHECK(compared == ck.tensor_names().size());
}

#include <filesystem>
#include <fstream>
#include <iterator>

#include "pare/io/gguf_writer.hpp"

namespace {
std::vector<std::uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), {});
}
std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("pare_gguf_" + std::to_string(::getpid()) + "_" + name)).string();
}
}  // namespace

TEST_CASE("gguf writer: reproduces the hand-built file and ggml-org's stories260K.gguf byte for byte") {
  const auto bytes = small_gguf();
  const auto g = pare::gguf_file::from_bytes(bytes.data(), bytes.size());
  const std::string p1 = temp_path("small.gguf");
  pare::copy_gguf(g, p1);
  std::vector<std::uint8_t> padded = bytes;  // the writer also pads after the last tensor
  padded.resize((bytes.size() + 63) / 64 * 64, 0);
  CHECK(read_all(p1) == padded);
  const std::string p2 = temp_path("stories.gguf");
  pare::copy_gguf(pare::gguf_file::open(pare_test::data_path("models/stories260K.gguf")), p2);
  CHECK(read_all(p2) == read_all(pare_test::data_path("models/stories260K.gguf")));
  std::filesystem::remove(p1);
  std::filesystem::remove(p2);
}

TEST_CASE("gguf writer: typed values round-trip, misuse is an error and leaves no file") {
  const std::string path = temp_path("typed.gguf");
  {
    pare::gguf_writer w(path);
    w.set_alignment(16);
    w.set("a.u8", std::uint8_t(7));
    w.set("a.i16", std::int16_t(-7));
    w.set("a.f64", 0.125);
    w.set("a.flag", false);
    w.set("a.list", std::vector<std::int32_t>{4, -5, 6});
    w.set("a.names", std::vector<std::string>{"x", "", "yz"});
    w.add_tensor("t", 0, {4, 2});
    w.write_header();
    const float data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK_THROWS_AS(w.write_tensor("u", data, sizeof data), pare::argument_error);
    CHECK_THROWS_AS(w.write_tensor("t", data, 4), pare::argument_error);
    w.write_tensor("t", data, sizeof data);
    w.finish();
  }
  const auto g = pare::gguf_file::open(path);
  CHECK(g.alignment() == 16);
  CHECK(g.value("a.u8").type == pare::gguf_type::uint8);
  CHECK(g.get<int>("a.i16") == -7);
  CHECK(g.get<double>("a.f64") == 0.125);
  CHECK_FALSE(g.get<bool>("a.flag"));
  CHECK(g.get<std::vector<int>>("a.list") == std::vector<int>{4, -5, 6});
  CHECK(g.get<std::vector<std::string>>("a.names") == std::vector<std::string>{"x", "", "yz"});
  CHECK(g.f32_matrix("t")(1, 3) == 8.0f);
  std::filesystem::remove(path);
  const std::string never = temp_path("never.gguf");
  {
    pare::gguf_writer w(never);
    w.add_tensor("t", 0, {4});
    CHECK_THROWS_AS(w.add_tensor("q", 8, {20}), pare::argument_error);  // 20 not a multiple of 32 (q8_0)
    w.write_header();
    CHECK_THROWS_AS(w.finish(), pare::argument_error);  // t never written
  }
  CHECK_FALSE(std::filesystem::exists(never));
}
