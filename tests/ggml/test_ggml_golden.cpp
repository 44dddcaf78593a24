// ggml block formats against ggml's own output: every .q byte for byte and every .deq.f32 bit for bit (../shared/data/ggml-golden).
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "pare/ggml/quantize.hpp"
#include "pare_test_support.hpp"

namespace {

std::vector<float> floats_of(const std::vector<char>& bytes) {
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

std::string golden(const std::string& name) { return pare_test::data_path("ggml-golden/" + name); }

struct golden_set {
  nlohmann::json manifest;
  std::size_t rows = 0, cols = 0;
  std::vector<float> input, imatrix;
  golden_set() {
    const std::vector<char> m = pare_test::read_file(golden("manifest.json"));
    manifest = nlohmann::json::parse(m.begin(), m.end());
    rows = manifest["rows"].get<std::size_t>();
    cols = manifest["cols"].get<std::size_t>();
    input = floats_of(pare_test::read_file(golden("input.f32")));
    imatrix = floats_of(pare_test::read_file(golden("imatrix.f32")));
  }
};

const golden_set& goldens() {
  static const golden_set g;
  return g;
}

/// "row r, block b, byte k" of the first differing byte, or empty.
std::string first_byte_diff(const std::vector<std::uint8_t>& got, const std::vector<char>& want, std::size_t row_bytes,
                            std::size_t type_size) {
  if (got.size() != want.size()) return "sizes differ: " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    if (got[i] != static_cast<std::uint8_t>(want[i])) {
      std::ostringstream os;
      os << "row " << i / row_bytes << " (kind " << (i / row_bytes) % 16 << "), block " << (i % row_bytes) / type_size
         << ", byte " << (i % row_bytes) % type_size << ": got " << int(got[i]) << ", ggml "
         << int(static_cast<std::uint8_t>(want[i]));
      return os.str();
    }
  return {};
}

std::string first_bit_diff(const std::vector<float>& got, const std::vector<float>& want, std::size_t cols) {
  if (got.size() != want.size()) return "sizes differ";
  for (std::size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], 4) != 0) {
      std::ostringstream os;
      os.precision(9);
      os << "element (" << i / cols << ", " << i % cols << "): got " << got[i] << ", ggml " << want[i];
      return os.str();
    }
  return {};
}

}  // namespace

TEST_CASE("every golden type: quantize byte-exact, dequantize bit-exact", "[ggml][golden]") {
  const golden_set& g = goldens();
  REQUIRE(g.input.size() == g.rows * g.cols);
  REQUIRE(g.imatrix.size() == g.cols);
  const pare::matrix_view<const float> w(g.input.data(), g.rows, g.cols);
  std::size_t checked = 0;
  for (const auto& entry : g.manifest["types"]) {
    const std::string name = entry["name"].get<std::string>();
    const bool with_imatrix = entry["imatrix"].get<bool>();
    const auto files = entry["files"];
    DYNAMIC_SECTION(name << (with_imatrix ? " with imatrix" : "")) {
      const pare::ggml::type t = pare::ggml::parse_type(name);
      const pare::ggml::type_traits& tr = pare::ggml::traits(t);
      CHECK(static_cast<std::uint32_t>(t) == entry["ggml_type"].get<std::uint32_t>());
      CHECK(tr.block_size == entry["block_size"].get<std::size_t>());
      CHECK(tr.type_size == entry["type_size"].get<std::size_t>());
      CHECK(pare::ggml::row_bytes(t, g.cols) == entry["row_bytes"].get<std::size_t>());

      const std::vector<char> want_q = pare_test::read_file(golden(files[0].get<std::string>()));
      const std::vector<float> want_deq = floats_of(pare_test::read_file(golden(files[1].get<std::string>())));
      const pare::ggml::ggml_tensor q = pare::ggml::quantize(w, t, with_imatrix ? g.imatrix : std::vector<float>{});
      INFO(name << (with_imatrix ? " (imatrix)" : ""));
      CHECK(first_byte_diff(q.bytes(), want_q, tr.type_size * (g.cols / tr.block_size), tr.type_size) == "");

      // ggml's bytes through pare's dequantizer must give ggml's floats.
      std::vector<std::uint8_t> ggml_bytes(want_q.begin(), want_q.end());
      const pare::ggml::ggml_tensor theirs(t, g.rows, g.cols, std::move(ggml_bytes));
      CHECK(first_bit_diff(theirs.dequantize(), want_deq, g.cols) == "");
      ++checked;
    }
  }
  CHECK(checked > 0);
}

TEST_CASE("the golden set covers every supported type", "[ggml][golden]") {
  const golden_set& g = goldens();
  std::size_t n = 0;
  const pare::ggml::type_traits* all = pare::ggml::all_types(&n);
  for (std::size_t i = 0; i < n; ++i) {
    bool plain = false, imat = false;
    for (const auto& entry : g.manifest["types"])
      if (entry["name"].get<std::string>() == all[i].name) (entry["imatrix"].get<bool>() ? imat : plain) = true;
    INFO(all[i].name);
    CHECK(plain);
  }
}
