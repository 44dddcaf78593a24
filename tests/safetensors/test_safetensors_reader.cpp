// safetensors reader: files built by hand from the specification, every dtype, each validation rule, truncations and byte flips.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "pare/io/safetensors.hpp"
#include "pare_test_support.hpp"

namespace {

/// A file from a header typed by hand and a byte buffer: u64 little-endian N, N bytes of JSON, the buffer.
std::vector<std::uint8_t> st_file(const std::string& header, const std::vector<std::uint8_t>& buffer) {
  std::vector<std::uint8_t> f;
  const std::uint64_t n = header.size();
  for (int k = 0; k < 8; ++k) f.push_back(static_cast<std::uint8_t>(n >> (8 * k)));
  for (char c : header) f.push_back(static_cast<std::uint8_t>(c));
  for (std::uint8_t x : buffer) f.push_back(x);
  return f;
}

template <class T>
void put(std::vector<std::uint8_t>& b, T v) {
  std::uint8_t tmp[sizeof(T)];
  std::memcpy(tmp, &v, sizeof(T));
  for (std::uint8_t x : tmp) b.push_back(x);
}

/// A small valid file: metadata, F32 [2, 3], F16 [4], BF16 [2], I64 [] (scalar), U8 [0, 3]
/// (empty), BOOL [3]; the header lists them out of data order and ends in spaces.
std::vector<std::uint8_t> small_file() {
  std::vector<std::uint8_t> buf;
  for (int i = 0; i < 6; ++i) put<float>(buf, 0.5f * float(i) - 1.0f);      // [0, 24)  F32
  for (std::uint16_t h : {0x3C00, 0xC000, 0x3800, 0x7BFF}) put(buf, h);      // [24, 32) F16 1, -2, 0.5, 65504
  for (std::uint16_t h : {0x3F80, 0xC040}) put(buf, h);                      // [32, 36) BF16 1, -3
  put<std::int64_t>(buf, -1234567890123LL);                                  // [36, 44) I64 scalar
  for (std::uint8_t b : {1, 0, 1}) buf.push_back(b);                         // [44, 47) BOOL
  std::string header =
      "{\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
      "\"__metadata__\":{\"format\":\"pt\",\"note\":\"h\\u00e9llo \\\"q\\\"\"},"
      "\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
      "\"c\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[32,36]},"
      "\"flags\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[44,47]},"
      "\"empty\":{\"dtype\":\"U8\",\"shape\":[0,3],\"data_offsets\":[44,44]},"
      "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[36,44]}}   ";
  while ((8 + header.size()) % 8) header += ' ';  // the byte buffer starts 8-byte aligned
  return st_file(header, buf);
}

std::string tensor_json(const std::string& dtype, const std::string& shape, std::uint64_t b, std::uint64_t e) {
  return "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + std::to_string(b) + "," +
         std::to_string(e) + "]}";
}

}  // namespace

TEST_CASE("safetensors: a hand-built file reads back its metadata, shapes and values") {
  const auto bytes = small_file();
  const auto f = pare::safetensors_file::from_bytes(bytes);
  CHECK(f.header_size() == bytes.size() - 8 - 47);
  CHECK(f.data_offset() == bytes.size() - 47);
  CHECK(f.metadata().size() == 2);
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.metadata().at("note") == "h\xc3\xa9llo \"q\"");
  REQUIRE(f.tensors().size() == 6);
  // tensors() is in data order; the empty tensor sorts before the BOOL one at offset 44
  const char* order[] = {"a.weight", "b", "c", "s", "empty", "flags"};
  for (std::size_t k = 0; k < 6; ++k) CHECK(f.tensors()[k].name == order[k]);

  const auto& a = f.tensor("a.weight");
  CHECK(a.dtype == pare::safetensors_dtype::f32);
  CHECK(a.shape == std::vector<std::uint64_t>{2, 3});
  CHECK(a.rows() == 2);
  CHECK(a.cols() == 3);
  CHECK(a.data == f.file().data() + f.data_offset());  // zero-copy
  const auto v = f.f32_view("a.weight");
  CHECK(v.data() == reinterpret_cast<const float*>(a.data));
  CHECK(v(1, 2) == 1.5f);
  CHECK(v(0, 0) == -1.0f);

  const auto b = f.read_f32("b");
  REQUIRE(b.size() == 4);
  CHECK(b[0] == 1.0f);
  CHECK(b[1] == -2.0f);
  CHECK(b[2] == 0.5f);
  CHECK(b[3] == 65504.0f);
  const auto c = f.f32_matrix("c");
  CHECK(c.rows == 1);
  CHECK(c.cols == 2);
  CHECK(c.view()(0, 0) == 1.0f);
  CHECK(c.view()(0, 1) == -3.0f);

  const auto& s = f.tensor("s");
  CHECK(s.rank() == 0);
  CHECK(s.elements() == 1);
  std::int64_t sv;
  std::memcpy(&sv, s.data, 8);
  CHECK(sv == -1234567890123LL);
  CHECK(f.tensor("empty").elements() == 0);
  CHECK(f.tensor("empty").bytes == 0);
  CHECK(f.tensor("flags").span().size == 3);
  CHECK(f.tensor("flags").data[2] == 1);

  CHECK(f.find("missing") == nullptr);
  CHECK_THROWS_AS(f.tensor("missing"), pare::argument_error);
  CHECK_THROWS_AS(f.f32_view("b"), pare::unsupported_error);         // F16 has no zero-copy float view
  CHECK_THROWS_AS(f.read_f32("flags"), pare::unsupported_error);     // not a float dtype
  CHECK_THROWS_WITH(f.read_f32("s"), Catch::Contains("I64"));
}

TEST_CASE("safetensors: every float dtype converts to float32 exactly") {
  std::vector<std::uint8_t> buf;
  put<double>(buf, 0.1);                  // F64 rounds to the nearest float
  put<double>(buf, -3.0e38);
  for (std::uint8_t c : {0x38, 0xC0, 0x7E, 0x01}) buf.push_back(c);  // E4M3: 1, -2, 448, 2^-9
  for (std::uint8_t c : {0x3C, 0xC0, 0x7B, 0x01}) buf.push_back(c);  // E5M2: 1, -2, 57344, 2^-16
  const std::string h = "{\"d\":" + tensor_json("F64", "[2]", 0, 16) + ",\"e4\":" + tensor_json("F8_E4M3", "[4]", 16, 20) +
                        ",\"e5\":" + tensor_json("F8_E5M2", "[2,2]", 20, 24) + "}";
  const auto f = pare::safetensors_file::from_bytes(st_file(h, buf));
  const auto d = f.read_f32("d");
  CHECK(d[0] == 0.1f);
  CHECK(d[1] == -3.0e38f);
  const auto e4 = f.read_f32("e4");
  CHECK(e4[0] == 1.0f);
  CHECK(e4[1] == -2.0f);
  CHECK(e4[2] == 448.0f);
  CHECK(e4[3] == std::ldexp(1.0f, -9));
  const auto e5 = f.f32_matrix("e5");
  CHECK(e5.rows == 2);
  CHECK(e5.view()(0, 0) == 1.0f);
  CHECK(e5.view()(0, 1) == -2.0f);
  CHECK(e5.view()(1, 0) == 57344.0f);
  CHECK(e5.view()(1, 1) == std::ldexp(1.0f, -16));
  // Integer dtypes, U16/U32/U64 included, are accepted with their sizes.
  std::vector<std::uint8_t> ib(2 + 4 + 8 + 2 + 4 + 8 + 1 + 1, 0);
  const std::string ih = "{\"u16\":" + tensor_json("U16", "[1]", 0, 2) + ",\"u32\":" + tensor_json("U32", "[1]", 2, 6) +
                         ",\"u64\":" + tensor_json("U64", "[1]", 6, 14) + ",\"i16\":" + tensor_json("I16", "[1]", 14, 16) +
                         ",\"i32\":" + tensor_json("I32", "[1]", 16, 20) + ",\"i64\":" + tensor_json("I64", "[1]", 20, 28) +
                         ",\"i8\":" + tensor_json("I8", "[1]", 28, 29) + ",\"u8\":" + tensor_json("U8", "[1]", 29, 30) + "}";
  const auto g = pare::safetensors_file::from_bytes(st_file(ih, ib));
  CHECK(g.tensors().size() == 8);
  CHECK(g.tensor("u64").dtype == pare::safetensors_dtype::u64);
  CHECK(g.tensor("i16").bytes == 2);
}

TEST_CASE("safetensors: an F32 tensor at an unaligned offset is read by copy, not viewed") {
  std::vector<std::uint8_t> buf = {7};
  put<float>(buf, 2.5f);
  put<float>(buf, -0.25f);
  std::string h = "{\"u\":" + tensor_json("U8", "[1]", 0, 1) + ",\"w\":" + tensor_json("F32", "[2]", 1, 9) + "}";
  while ((8 + h.size()) % 8) h += ' ';  // the buffer is aligned, the F32 tensor at offset 1 is not
  const auto f = pare::safetensors_file::from_bytes(st_file(h, buf));
  CHECK_THROWS_WITH(f.f32_view("w"), Catch::Contains("aligned"));
  const auto w = f.read_f32("w");
  CHECK(w[0] == 2.5f);
  CHECK(w[1] == -0.25f);
}

TEST_CASE("safetensors: each validation rule is a format_error naming the field and a byte offset") {
  const std::vector<std::uint8_t> buf8(8, 0);
  auto load = [](const std::vector<std::uint8_t>& b) { return pare::safetensors_file::from_bytes(b); };
  auto h1 = [&](const std::string& entry) { return st_file("{\"t\":" + entry + "}", buf8); };
  using Catch::Contains;

  // The length prefix.
  CHECK_THROWS_WITH(load({1, 2, 3}), Contains("byte 0") && Contains("header length"));
  {
    auto f = st_file("{}", {});
    f[0] = 200;  // N = 200 > the 2 bytes that follow
    CHECK_THROWS_WITH(load(f), Contains("header length") && Contains("200"));
    f[0] = 0, f[4] = 1;  // N = 2^32 > 100 MB
    CHECK_THROWS_WITH(load(f), Contains("exceeds the limit"));
  }
  // The JSON itself.
  CHECK_THROWS_WITH(load(st_file("[]", {})), Contains("byte 8") && Contains("'{'"));
  CHECK_THROWS_WITH(load(st_file("", {})), Contains("'{'"));
  CHECK_THROWS_WITH(load(st_file("{\"t\":{\"dtype\":\"F32\",}}", buf8)), Contains("malformed JSON") && Contains("byte 28"));  // the '}' at header index 20
  CHECK_THROWS_WITH(load(st_file("{\"\xff\":{}}", {})), Contains("malformed JSON"));  // invalid UTF-8
  CHECK_THROWS_WITH(load(st_file("{}\x01", {})), Contains("malformed JSON"));
  CHECK_THROWS_WITH(load(st_file("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}", {})),
                    Contains("nested deeper"));
  {
    const std::string h = "{\"t\":" + tensor_json("U8", "[8]", 0, 8) + ",\"t\":" + tensor_json("U8", "[0]", 8, 8) + "}";
    const std::string second = "byte " + std::to_string(8 + h.rfind("\"t\"")) + ":";
    CHECK_THROWS_WITH(load(st_file(h, buf8)), Contains("'t' appears twice") && Contains(second));
  }
  CHECK_THROWS_WITH(load(h1("{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}")),
                    Contains("'dtype' appears twice") && Contains("byte 9:"));
  // __metadata__.
  CHECK_THROWS_WITH(load(st_file("{\"__metadata__\":{\"k\":1}}", {})), Contains("__metadata__") && Contains("'k'"));
  CHECK_THROWS_WITH(load(st_file("{\"__metadata__\":[]}", {})), Contains("__metadata__"));
  CHECK(load(st_file("{\"__metadata__\":null}", {})).metadata().empty());
  // Tensor entries.
  CHECK_THROWS_WITH(load(h1("[1]")), Contains("tensor 't'") && Contains("expected an object") && Contains("byte 9"));
  CHECK_THROWS_WITH(load(h1("{\"shape\":[8],\"data_offsets\":[0,8]}")), Contains("missing field 'dtype'"));
  CHECK_THROWS_WITH(load(h1("{\"dtype\":8,\"shape\":[8],\"data_offsets\":[0,8]}")), Contains("'dtype'"));
  CHECK_THROWS_AS(load(h1(tensor_json("F4", "[8]", 0, 8))), pare::unsupported_error);
  CHECK_THROWS_WITH(load(h1(tensor_json("Q4_0", "[8]", 0, 8))), Contains("tensor 't'") && Contains("'Q4_0'"));
  CHECK_THROWS_WITH(load(h1("{\"dtype\":\"U8\",\"data_offsets\":[0,8]}")), Contains("missing field 'shape'"));
  CHECK_THROWS_WITH(load(h1(tensor_json("U8", "8", 0, 8))), Contains("'shape'"));
  CHECK_THROWS_WITH(load(h1(tensor_json("U8", "[-8]", 0, 8))), Contains("'shape'") && Contains("-8"));
  CHECK_THROWS_WITH(load(h1(tensor_json("U8", "[8.0]", 0, 8))), Contains("'shape'"));
  CHECK_THROWS_WITH(load(h1(tensor_json("U8", "[4294967296,4294967296]", 0, 8))), Contains("overflows"));
  CHECK_THROWS_WITH(load(h1(tensor_json("U8", "[18446744073709551615,2]", 0, 8))), Contains("overflows"));
  CHECK_THROWS_WITH(load(h1("{\"dtype\":\"U8\",\"shape\":[8]}")), Contains("missing field 'data_offsets'"));
  CHECK_THROWS_WITH(load(h1("{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8,8]}")), Contains("'data_offsets'"));
  CHECK_THROWS_WITH(load(h1("{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,-8]}")), Contains("'data_offsets'"));
  CHECK_THROWS_WITH(load(h1(tensor_json("U8", "[0]", 8, 0))), Contains("end < begin"));
  CHECK_THROWS_WITH(load(h1(tensor_json("U8", "[16]", 0, 16))), Contains("past the byte buffer"));
  CHECK_THROWS_WITH(load(h1(tensor_json("F32", "[3]", 0, 8))), Contains("hold 8 bytes") && Contains("need 12"));
  CHECK_THROWS_WITH(load(h1(tensor_json("F16", "[4294967296,4]", 0, 8))), Contains("need 34359738368"));
  // The tensors must tile the byte buffer.
  CHECK_THROWS_WITH(load(st_file("{\"x\":" + tensor_json("U8", "[6]", 0, 6) + ",\"y\":" + tensor_json("U8", "[4]", 4, 8) + "}", buf8)),
                    Contains("tensor 'y'") && Contains("overlap tensor 'x'"));
  CHECK_THROWS_WITH(load(st_file("{\"x\":" + tensor_json("U8", "[2]", 0, 2) + ",\"y\":" + tensor_json("U8", "[4]", 4, 8) + "}", buf8)),
                    Contains("tensor 'y'") && Contains("hole [2, 4)"));
  CHECK_THROWS_WITH(load(st_file("{\"x\":" + tensor_json("U8", "[2]", 2, 4) + "}", std::vector<std::uint8_t>(4, 0))),
                    Contains("hole [0, 2)"));
  CHECK_THROWS_WITH(load(st_file("{\"x\":" + tensor_json("U8", "[6]", 0, 6) + "}", buf8)),
                    Contains("2 bytes after the last tensor"));
  CHECK_THROWS_WITH(load(st_file("{}", {0})), Contains("1 bytes after the last tensor"));
  // Identical ranges overlap too.
  CHECK_THROWS_WITH(load(st_file("{\"x\":" + tensor_json("U8", "[8]", 0, 8) + ",\"y\":" + tensor_json("I8", "[8]", 0, 8) + "}", buf8)),
                    Contains("overlap"));
  // Accepted edge cases: no tensors at all; unknown fields in an entry are ignored.
  CHECK(load(st_file("{}", {})).tensors().empty());
  CHECK(load(h1("{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8],\"extra\":{\"z\":[1]}}")).tensors().size() == 1);
  // Everything thrown is a pare::format_error (or unsupported_error for an unknown dtype).
  CHECK_THROWS_AS(load(h1(tensor_json("U8", "[16]", 0, 16))), pare::format_error);
}

TEST_CASE("safetensors: every truncation is an error and every header byte flip loads validly or is an error") {
  const auto bytes = small_file();
  const auto good = pare::safetensors_file::from_bytes(bytes);
  std::size_t errors = 0;
  for (std::size_t n = 0; n < bytes.size(); ++n) {  // through the header and the tensor data
    try {
      (void)pare::safetensors_file::from_bytes(bytes.data(), n);
      FAIL("truncated at " << n << " bytes but accepted");
    } catch (const pare::error&) {
      ++errors;
    }
  }
  CHECK(errors == bytes.size());
  const std::size_t header_end = static_cast<std::size_t>(good.data_offset());
  std::size_t rejected = 0, accepted = 0;
  for (std::size_t at = 0; at < header_end; ++at)
    for (std::uint8_t pattern : {std::uint8_t(0x01), std::uint8_t(0x20), std::uint8_t(0x80), std::uint8_t(0xFF)}) {
      std::vector<std::uint8_t> bad = bytes;
      bad[at] ^= pattern;
      try {
        const auto f = pare::safetensors_file::from_bytes(bad);
        const std::uint8_t* lo = f.file().data() + f.data_offset();
        const std::uint8_t* hi = f.file().data() + f.file().size();
        for (const auto& t : f.tensors()) {
          REQUIRE(t.data >= lo);
          REQUIRE(t.data + t.bytes <= hi);
          REQUIRE(t.bytes == t.elements() * pare::safetensors_dtype_size(t.dtype));
          if (pare::is_float(t.dtype)) (void)f.read_f32(t.name);
        }
        ++accepted;
      } catch (const pare::error&) {
        ++rejected;
      }
    }
  INFO("flips rejected " << rejected << ", accepted " << accepted);
  CHECK(rejected > 3 * accepted);
  CHECK(accepted > 0);  // e.g. a changed letter of a tensor name or of a metadata value
}

TEST_CASE("safetensors: open() maps a file, a missing file is an io_error") {
  const auto bytes = small_file();
  const std::string path =
      (std::filesystem::temp_directory_path() / ("pare_st_reader_" + std::to_string(::getpid()) + ".safetensors")).string();
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  {
    const auto f = pare::safetensors_file::open(path);
    CHECK(f.file().is_mapped());
    CHECK(f.f32_view("a.weight")(1, 1) == 1.0f);
    const auto copy = f;  // copies share the mapping
    CHECK(copy.tensor("b").data == f.tensor("b").data);
    const auto g = pare::safetensors_file::open(path, false);
    CHECK_FALSE(g.file().is_mapped());
    CHECK(g.read_f32("b")[3] == 65504.0f);
  }
  std::filesystem::remove(path);
  CHECK_THROWS_AS(pare::safetensors_file::open(path), pare::io_error);
}
