// ggml formats through pare's API: bad input is rejected before anything is written, strided views, error bounds and type names.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "pare/ggml/quantize.hpp"
#include "pare_test_support.hpp"

using pare::ggml::type;

TEST_CASE("type names parse in any case and round-trip", "[ggml]") {
  std::size_t n = 0;
  const pare::ggml::type_traits* all = pare::ggml::all_types(&n);
  REQUIRE(n == 13);
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(pare::ggml::parse_type(all[i].name) == all[i].id);
    std::string upper = all[i].name;
    for (char& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
    CHECK(pare::ggml::parse_type(upper) == all[i].id);
  }
  CHECK_THROWS_AS(pare::ggml::parse_type("q7_K"), pare::argument_error);
  CHECK_THROWS_WITH(pare::ggml::parse_type("q7_K"), Catch::Contains("q4_K") && Catch::Contains("'q7_K'"));
}

TEST_CASE("bad arguments throw and name the argument", "[ggml]") {
  const std::vector<float> w = pare_test::gaussian(4 * 256, 7);
  const pare::matrix_view<const float> m(w.data(), 4, 256);
  SECTION("row length not a multiple of the block size") {
    const pare::matrix_view<const float> odd(w.data(), 4, 96);
    CHECK_THROWS_AS(pare::ggml::quantize(odd, type::q4_K), pare::argument_error);
    CHECK_THROWS_WITH(pare::ggml::quantize(odd, type::q4_K), Catch::Contains("'cols'") && Catch::Contains("256"));
    const pare::matrix_view<const float> odd32(w.data(), 4, 40);
    CHECK_THROWS_AS(pare::ggml::quantize(odd32, type::q8_0), pare::argument_error);
  }
  SECTION("NaN and Inf") {
    std::vector<float> bad = w;
    bad[300] = std::nanf("");
    CHECK_THROWS_AS(pare::ggml::quantize(pare::matrix_view<const float>(bad.data(), 4, 256), type::q8_0), pare::value_error);
    bad[300] = INFINITY;
    CHECK_THROWS_WITH(pare::ggml::quantize(pare::matrix_view<const float>(bad.data(), 4, 256), type::q6_K),
                      Catch::Contains("(1, 44)"));
  }
  SECTION("importance matrix of the wrong length or with negative weights") {
    CHECK_THROWS_AS(pare::ggml::quantize(m, type::q4_K, std::vector<float>(255, 1.0f)), pare::shape_error);
    std::vector<float> imat(256, 1.0f);
    imat[3] = -1.0f;
    CHECK_THROWS_AS(pare::ggml::quantize(m, type::q4_K, imat), pare::value_error);
  }
  SECTION("block bytes of the wrong size") {
    CHECK_THROWS_AS(pare::ggml::ggml_tensor(type::q4_0, 4, 256, std::vector<std::uint8_t>(4 * 144 - 1)), pare::shape_error);
  }
  SECTION("dequantize into a view of the wrong shape") {
    const pare::ggml::ggml_tensor q = pare::ggml::quantize(m, type::q8_0);
    std::vector<float> out(4 * 255);
    CHECK_THROWS_AS(q.dequantize_into(pare::matrix_view<float>(out.data(), 4, 255)), pare::shape_error);
  }
}

TEST_CASE("strided input and output give the same bytes and values as dense ones", "[ggml]") {
  const std::size_t rows = 5, cols = 256;
  const std::vector<float> w = pare_test::gaussian(rows * cols, 11);
  // Transposed storage: element (i, j) at j * rows + i.
  std::vector<float> wt(rows * cols);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) wt[j * rows + i] = w[i * cols + j];
  for (type t : {type::q4_0, type::q5_1, type::q3_K, type::iq4_nl, type::bf16}) {
    const auto dense = pare::ggml::quantize(pare::matrix_view<const float>(w.data(), rows, cols), t);
    const auto strided = pare::ggml::quantize(pare::matrix_view<const float>(wt.data(), rows, cols, 1, rows), t);
    CHECK(dense.bytes() == strided.bytes());
    std::vector<float> out_t(rows * cols);
    strided.dequantize_into(pare::matrix_view<float>(out_t.data(), rows, cols, 1, rows));
    const std::vector<float> out = dense.dequantize();
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) CHECK(out_t[j * rows + i] == out[i * cols + j]);
  }
}

TEST_CASE("reconstruction error shrinks with more bits and stays within each format's step", "[ggml]") {
  // A property independent of ggml's bytes: on Gaussian data, the relative RMS error of
  // each format sits below a bound implied by its bit width, and more bits never hurt.
  const std::size_t rows = 16, cols = 512;
  const std::vector<float> w = pare_test::gaussian(rows * cols, 3);
  const pare::matrix_view<const float> m(w.data(), rows, cols);
  auto rel_rms = [&](type t) {
    const std::vector<float> back = pare::ggml::quantize(m, t).dequantize();
    double e = 0, s = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      e += (double(back[i]) - w[i]) * (double(back[i]) - w[i]);
      s += double(w[i]) * w[i];
    }
    return std::sqrt(e / s);
  };
  const double q2 = rel_rms(type::q2_K), q3 = rel_rms(type::q3_K), q4 = rel_rms(type::q4_K), q5 = rel_rms(type::q5_K),
               q6 = rel_rms(type::q6_K), q8 = rel_rms(type::q8_0), f16 = rel_rms(type::f16);
  CHECK(q2 < 0.45);
  CHECK(q3 < q2);
  CHECK(q4 < q3);
  CHECK(q5 < q4);
  CHECK(q6 < q5);
  CHECK(q8 < q6);
  CHECK(f16 < 1e-3);
  CHECK(rel_rms(type::q4_0) < 0.15);
  CHECK(rel_rms(type::q4_1) < 0.15);
  CHECK(rel_rms(type::iq4_nl) < rel_rms(type::q4_0));
  CHECK(rel_rms(type::q5_0) < rel_rms(type::q4_0));
}

TEST_CASE("an all-zero matrix stays exactly zero in every format", "[ggml]") {
  const std::vector<float> z(3 * 256, 0.0f);
  std::size_t n = 0;
  const pare::ggml::type_traits* all = pare::ggml::all_types(&n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::vector<float> back = pare::ggml::quantize(pare::matrix_view<const float>(z.data(), 3, 256), all[i].id).dequantize();
    for (float v : back) CHECK(v == 0.0f);
  }
}

#include "pare/ggml/quantizer.hpp"

TEST_CASE("quantizer<ggml::q4_K> is the compile-time twin of the runtime ggml config", "[ggml][policy]") {
  const std::vector<float> w = pare_test::gaussian(6 * 512, 5);
  const pare::matrix_view<const float> m(w.data(), 6, 512);
  const std::vector<float> imat = pare_test::uniform(512, 6, 0.1, 2.0);
  pare::quantizer<pare::ggml::q4_K> q;
  CHECK(q.config().str() == "ggml:q4_K");
  CHECK(pare::ggml::ggml_config::parse(q.config().str()) == q.config());
  CHECK(q.quantize(m).bytes() == pare::ggml::quantize(m, type::q4_K).bytes());
  CHECK(q.quantize(m, imat).bytes() == pare::ggml::quantize(m, type::q4_K, imat).bytes());
  CHECK(q.quantize(m, imat).bytes() != q.quantize(m).bytes());
  std::vector<float> y(w.size());
  q.fake_quantize(m, pare::matrix_view<float>(y.data(), 6, 512));
  CHECK(y == pare::ggml::quantize(m, type::q4_K).dequantize());
  pare::quantizer<pare::ggml::iq4_nl> qi;
  CHECK(qi(m).format() == type::iq4_nl);
  CHECK_THROWS_AS(pare::ggml::ggml_config::parse("ggml:q9_K"), pare::argument_error);
}
