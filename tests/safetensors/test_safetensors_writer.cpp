// safetensors writer: the reference layout byte for byte, round trips of every dtype, input validation, stories260K through safetensors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

#include "pare/core/rng.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/io/safetensors.hpp"
#include "pare/io/safetensors_writer.hpp"
#include "pare_test_support.hpp"
#include "safetensors_test_support.hpp"

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("pare_st_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::vector<std::uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), {});
}

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint64_t seed) {
  pare::splitmix64 g(seed);
  std::vector<std::uint8_t> b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(g.next() >> 56);
  return b;
}

using safetensors_test::bf16_round;

}  // namespace

TEST_CASE("safetensors writer: the layout of the reference implementation, byte for byte") {
  pare::safetensors_writer w;
  const float b[2] = {1.0f, 2.0f};
  const std::uint16_t a = 0x3C00;
  const std::int64_t c = 7;
  const std::uint8_t z[3] = {1, 2, 3};
  w.add("z", pare::safetensors_dtype::u8, {3}, z, 3);
  w.add_f32("b", {2}, b, 2);
  w.add("a", pare::safetensors_dtype::f16, {1}, &a, 2);
  w.add("c", pare::safetensors_dtype::i64, {}, &c, 8);
  w.set_metadata("format", "pt");
  // Widest dtype first (I64, F32, F16, U8), then by name; compact JSON padded with spaces to 8.
  std::string header =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"c\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
      "\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[16,18]},"
      "\"z\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[18,21]}}";
  while (header.size() % 8) header += ' ';
  std::vector<std::uint8_t> want;
  for (int k = 0; k < 8; ++k) want.push_back(static_cast<std::uint8_t>(std::uint64_t(header.size()) >> (8 * k)));
  want.insert(want.end(), header.begin(), header.end());
  const std::uint8_t data[21] = {7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3F, 0, 0, 0, 0x40, 0x00, 0x3C, 1, 2, 3};
  want.insert(want.end(), data, data + 21);
  CHECK(w.header() == header);
  CHECK(w.to_bytes() == want);
  const std::string path = temp_path("layout.safetensors");
  w.write(path);
  CHECK(read_all(path) == want);
  std::filesystem::remove(path);
  // Without metadata there is no "__metadata__"; an empty file is "{}" and 6 spaces.
  pare::safetensors_writer e;
  CHECK(e.header() == "{}      ");
  const auto eb = e.to_bytes();
  CHECK(eb.size() == 16);
  CHECK(pare::safetensors_file::from_bytes(eb).tensors().empty());
}

TEST_CASE("safetensors writer: every dtype round-trips byte for byte, shapes and metadata included") {
  pare::safetensors_writer w;
  std::vector<std::vector<std::uint8_t>> data;
  for (std::size_t k = 0; k < pare::safetensors_dtype_count; ++k) {
    const auto dt = static_cast<pare::safetensors_dtype>(k);
    data.push_back(random_bytes(3 * 5 * pare::safetensors_dtype_size(dt), 100 + k));
    if (dt == pare::safetensors_dtype::boolean)
      for (auto& x : data.back()) x &= 1;
    w.add(std::string("t.") + pare::to_string(dt), dt, {3, 5}, data.back().data(), data.back().size());
  }
  const std::uint8_t one = 9;
  w.add("scalar", pare::safetensors_dtype::u8, {}, &one, 1);
  w.add("empty", pare::safetensors_dtype::f32, {4, 0, 2}, nullptr, 0);
  w.set_metadata("note", "quotes \" backslash \\ newline \n unicode \xc3\xa9");
  w.set_metadata("format", "pt");
  const std::string path = temp_path("dtypes.safetensors");
  w.write(path);
  const auto f = pare::safetensors_file::open(path);
  CHECK(f.tensors().size() == pare::safetensors_dtype_count + 2);
  CHECK(f.metadata() == w.metadata());
  for (std::size_t k = 0; k < pare::safetensors_dtype_count; ++k) {
    const auto dt = static_cast<pare::safetensors_dtype>(k);
    const auto& t = f.tensor(std::string("t.") + pare::to_string(dt));
    INFO(pare::to_string(dt));
    CHECK(t.dtype == dt);
    CHECK(t.shape == std::vector<std::uint64_t>{3, 5});
    REQUIRE(t.bytes == data[k].size());
    CHECK(std::memcmp(t.data, data[k].data(), t.bytes) == 0);
    // The reference order puts every tensor at a multiple of its element size.
    CHECK((f.data_offset() + t.begin) % pare::safetensors_dtype_size(dt) == 0);
  }
  CHECK(f.tensor("scalar").rank() == 0);
  CHECK(f.tensor("scalar").data[0] == 9);
  CHECK(f.tensor("empty").shape == std::vector<std::uint64_t>{4, 0, 2});
  // F32 data lies 4-byte aligned in the mapping: the zero-copy view works.
  CHECK(f.f32_view("t.F32").rows() == 3);
  std::filesystem::remove(path);
}

TEST_CASE("safetensors writer: floats stored as F32, F64, F16, BF16 and FP8 read back as expected") {
  // Values exactly representable in every target come back unchanged.
  const std::vector<float> exact = {0.0f, 1.0f, -2.0f, 0.5f, 1.5f, -0.25f, 3.0f, -6.0f};
  // Random values: F32/F64 exact, BF16 equals round-to-nearest-even computed here, F16 within half an ulp.
  const std::vector<float> rnd = pare_test::gaussian(1000, 77, 3.0);
  pare::safetensors_writer w;
  using D = pare::safetensors_dtype;
  for (D d : {D::f32, D::f64, D::f16, D::bf16, D::f8_e4m3, D::f8_e5m2}) {
    w.add_f32(std::string("exact.") + pare::to_string(d), {2, 4}, exact.data(), exact.size(), d);
    w.add_f32(std::string("rnd.") + pare::to_string(d), {10, 100}, rnd.data(), rnd.size(), d);
  }
  const auto f = pare::safetensors_file::from_bytes(w.to_bytes());
  for (D d : {D::f32, D::f64, D::f16, D::bf16, D::f8_e4m3, D::f8_e5m2}) {
    INFO(pare::to_string(d));
    const auto e = f.read_f32(std::string("exact.") + pare::to_string(d));
    CHECK(std::vector<float>(e.begin(), e.end()) == exact);
    CHECK(f.tensor(std::string("rnd.") + pare::to_string(d)).bytes == 1000 * pare::safetensors_dtype_size(d));
  }
  const auto r32 = f.read_f32("rnd.F32"), r64 = f.read_f32("rnd.F64"), rb = f.read_f32("rnd.BF16"), rh = f.read_f32("rnd.F16");
  std::size_t bad32 = 0, bad64 = 0, badb = 0, badh = 0;
  for (std::size_t i = 0; i < rnd.size(); ++i) {
    bad32 += r32[i] != rnd[i];
    bad64 += r64[i] != rnd[i];
    badb += rb[i] != bf16_round(rnd[i]);
    int ex;
    std::frexp(rnd[i], &ex);
    badh += std::fabs(rh[i] - rnd[i]) > std::max(std::ldexp(1.0f, ex - 12), std::ldexp(1.0f, -25));  // half an ulp
  }
  CHECK(bad32 == 0);
  CHECK(bad64 == 0);
  CHECK(badb == 0);
  CHECK(badh == 0);
  CHECK(f.f32_view("rnd.F32").data() == reinterpret_cast<const float*>(f.tensor("rnd.F32").data));
}

TEST_CASE("safetensors writer: bad input throws before anything is stored or written") {
  pare::safetensors_writer w;
  const float x[4] = {1, 2, 3, 4};
  w.add_f32("x", {2, 2}, x, 4);
  using D = pare::safetensors_dtype;
  CHECK_THROWS_WITH(w.add_f32("x", {4}, x, 4), Catch::Contains("'x' added twice"));
  CHECK_THROWS_WITH(w.add("y", D::f32, {3}, x, 16), Catch::Contains("need 12 bytes, got 16"));
  CHECK_THROWS_WITH(w.add_f32("y", {2, 3}, x, 4), Catch::Contains("6 elements"));
  CHECK_THROWS_AS(w.add_f32("y", {4}, x, 4, D::i32), pare::argument_error);
  CHECK_THROWS_AS(w.add("", D::u8, {0}, nullptr, 0), pare::argument_error);
  CHECK_THROWS_AS(w.add("__metadata__", D::u8, {0}, nullptr, 0), pare::argument_error);
  CHECK_THROWS_AS(w.add("bad\xff", D::u8, {0}, nullptr, 0), pare::argument_error);  // not UTF-8
  CHECK_THROWS_AS(w.add("y", D::u8, {1ull << 62, 1ull << 62}, x, 16), pare::argument_error);
  CHECK_THROWS_AS(w.add("y", D::u8, {4}, nullptr, 4), pare::argument_error);
  CHECK_THROWS_AS(w.set_metadata("k", "\xc3"), pare::argument_error);
  CHECK(w.size() == 1);
  CHECK(w.metadata().empty());
  const auto f = pare::safetensors_file::from_bytes(w.to_bytes());
  REQUIRE(f.tensors().size() == 1);
  CHECK(f.f32_view("x")(1, 0) == 3.0f);
  // An unwritable destination is an io_error and leaves nothing behind.
  const std::string dir = temp_path("no_such_dir");
  CHECK_THROWS_AS(w.write(dir + "/out.safetensors"), pare::io_error);
  CHECK_FALSE(std::filesystem::exists(dir));
}

TEST_CASE("safetensors writer: stories260K through safetensors is bit-identical (F32) and BF16-rounded (BF16)") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  pare::safetensors_writer w32, w16;
  std::uint64_t total = 0;
  for (const std::string& name : ck.tensor_names()) {
    const auto t = ck.tensor(name);
    std::vector<std::uint64_t> shape(t.shape().begin(), t.shape().begin() + t.rank());
    w32.add_view(name, pare::safetensors_dtype::f32, shape, t.data(), t.size() * 4);  // no copy
    w16.add_f32(name, shape, t.data(), t.size(), pare::safetensors_dtype::bf16);
    total += t.size() * 4;
  }
  w32.set_metadata("format", "pt");
  const std::string p32 = temp_path("stories_f32.safetensors"), p16 = temp_path("stories_bf16.safetensors");
  w32.write(p32);
  w16.write(p16);
  const auto f = pare::safetensors_file::open(p32);
  const auto g = pare::safetensors_file::open(p16);
  CHECK(std::filesystem::file_size(p32) == f.data_offset() + total);
  CHECK(f.tensors().size() == ck.tensor_names().size());
  std::size_t diff32 = 0, diff16 = 0, compared = 0;
  for (const std::string& name : ck.tensor_names()) {
    const auto t = ck.tensor(name);
    const auto v = f.f32_view(name);  // zero-copy view into the mapped file
    REQUIRE(v.size() == t.size());
    diff32 += std::memcmp(v.data(), t.data(), t.size() * 4) != 0;
    const auto b = g.read_f32(name);
    for (std::size_t i = 0; i < t.size(); ++i) diff16 += b[i] != bf16_round(t.data()[i]);
    compared += t.size();
    if (t.rank() == 2) {
      CHECK(v.rows() == t.shape()[0]);
      CHECK(v.cols() == t.shape()[1]);
    }
  }
  CHECK(diff32 == 0);
  CHECK(diff16 == 0);
  CHECK(compared == total / 4);
  std::filesystem::remove(p32);
  std::filesystem::remove(p16);
}
