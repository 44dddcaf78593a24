// ggml blocks in pare's canonical weight_source form: every value bit-identical to ggml's dequantization, and the integer kernels on them.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "pare/ggml/weight_source.hpp"
#include "pare/kernels/matmul/matmul_int.hpp"
#include "pare_test_support.hpp"

using pare::ggml::type;

namespace {
std::vector<float> golden_input(std::size_t& rows, std::size_t& cols) {
  const std::vector<char> b = pare_test::read_file(pare_test::data_path("ggml-golden/input.f32"));
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  rows = 64;
  cols = 512;
  return v;
}
}  // namespace

TEST_CASE("to_weight_source reproduces every dequantized value bit for bit", "[ggml][pack]") {
  std::size_t rows = 0, cols = 0;
  const std::vector<float> w = golden_input(rows, cols);  // includes all-zero, constant, tiny and huge rows
  const std::vector<float> imat(cols, 1.0f);
  for (type t : {type::q8_0, type::q5_0, type::q5_1, type::iq4_nl, type::q5_K, type::q6_K, type::q4_0, type::q4_1,
                 type::q4_K, type::q2_K, type::q3_K}) {
    for (bool with_imatrix : {false, true}) {
      INFO(pare::ggml::to_string(t) << (with_imatrix ? " imatrix" : ""));
      const auto q = pare::ggml::quantize(pare::matrix_view<const float>(w.data(), rows, cols), t,
                                          with_imatrix ? imat : std::vector<float>{});
      const std::vector<float> deq = q.dequantize();
      pare::owned_weight_source src;
      pare::ggml::to_weight_source(q, src);
      CHECK(src.view.bits == pare::ggml::weight_source_bits(t));
      CHECK(src.view.group == pare::ggml::weight_source_group(t));
      src.view.validate("test");
      std::size_t mismatches = 0;
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j) {
          const float v = src.view.value(i, j), d = deq[i * cols + j];
          if (!(v == d)) ++mismatches;
        }
      CHECK(mismatches == 0);
    }
  }
  const auto f = pare::ggml::quantize(pare::matrix_view<const float>(w.data(), rows, cols), type::f16);
  pare::owned_weight_source src;
  CHECK_THROWS_AS(pare::ggml::to_weight_source(f, src), pare::unsupported_error);
}

TEST_CASE("packed ggml weights in the integer kernels match a float64 product of the dequantized weights", "[ggml][pack]") {
  const std::size_t n = 40, k = 512, m = 3;
  const std::vector<float> w = pare_test::gaussian(n * k, 21, 0.05);
  const std::vector<float> x = pare_test::gaussian(m * k, 22);
  for (type t : {type::q8_0, type::q4_0, type::q4_1, type::q4_K, type::q6_K, type::iq4_nl, type::q3_K}) {
    INFO(pare::ggml::to_string(t));
    const auto q = pare::ggml::quantize(pare::matrix_view<const float>(w.data(), n, k), t);
    const std::vector<float> deq = q.dequantize();
    pare::owned_weight_source src;
    pare::ggml::to_weight_source(q, src);
    std::vector<float> y(m * n);
    const pare::matrix_view<const float> xv(x.data(), m, k);
    const pare::matrix_view<float> yv(y.data(), m, n);
    if (src.view.bits == 8) pare::matmul(xv, pare::pack_int8(src.view), yv);
    else pare::matmul(xv, pare::pack_int4(src.view), yv);
    for (std::size_t i = 0; i < m; ++i) {
      double amax = 0;
      for (std::size_t j = 0; j < k; ++j) amax = std::max(amax, std::fabs(double(x[i * k + j])));
      for (std::size_t r = 0; r < n; ++r) {
        double ref = 0, wabs = 0;
        for (std::size_t j = 0; j < k; ++j) {
          ref += double(x[i * k + j]) * double(deq[r * k + j]);
          wabs += std::fabs(double(deq[r * k + j]));
        }
        // Activations are quantized per row to int8 (step amax/127): error <= step/2 · Σ|w| plus float rounding.
        CHECK(std::fabs(double(y[i * n + r]) - ref) <= 0.5 * amax / 127.0 * wabs * 1.001 + 1e-5);
      }
    }
  }
}
