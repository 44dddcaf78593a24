// Real-data test: int8 per-channel and int4 per-group quantization of every matrix of stories260K, relative error reported and bounded.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>

#include "pare/io/llama2c.hpp"
#include "pare/quant/quantize.hpp"
#include "pare_test_support.hpp"

namespace {
/// ‖W − deq(q(W))‖_F / ‖W‖_F in float64.
double relative_error(const pare::matrix_view<const float>& w, const pare::quantized_tensor& q) {
  const auto d = q.dequantize();
  double num = 0, den = 0;
  for (std::size_t i = 0; i < w.rows(); ++i)
    for (std::size_t j = 0; j < w.cols(); ++j) {
      const double e = double(w(i, j)) - double(d(i, j));
      num += e * e;
      den += double(w(i, j)) * double(w(i, j));
    }
  return std::sqrt(num / den);
}

/// The largest group size <= 32 that divides n (stories260K's w2 rows have 172 = 4·43 elements).
std::size_t group_for(std::size_t n) {
  for (std::size_t g : {32u, 16u, 8u, 4u, 2u})
    if (n % g == 0) return g;
  return 1;
}
}  // namespace

TEST_CASE("stories260K: every weight matrix quantizes with bounded relative error") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const auto names = ck.matrix_names();
  REQUIRE(names.size() == 1 + 5 * 7);  // token embedding + 7 matrices per block
  double worst8 = 0, worst4 = 0, sum8 = 0, sum4 = 0;
  std::printf("%-28s %-10s %10s %12s %12s\n", "tensor", "shape", "int8 rel", "int4 group", "int4 rel");
  for (const auto& name : names) {
    const auto w = ck.matrix(name);
    const auto q8 = pare::quantize(w, pare::quant_config::parse("int8:per_channel:sym"));
    const std::size_t g = group_for(w.cols());
    const auto q4 = pare::quantize(w, pare::quant_config::parse("int4:g" + std::to_string(g) + ":asym"));
    const double e8 = relative_error(w, q8), e4 = relative_error(w, q4);
    std::printf("%-28s [%zu,%zu] %10.5f %12zu %12.5f\n", name.c_str(), w.rows(), w.cols(), e8, g, e4);
    INFO(name);
    // int8 per-channel: the error of uniform rounding is about s/√12 per weight; with
    // per-row scales it stays well under 1 % of the weights' norm on this model.
    CHECK(e8 < 0.01);
    // int4: 16 levels per group; ~10 % for Gaussian-like weights.
    CHECK(e4 < 0.15);
    CHECK(e4 > e8);  // fewer bits can only lose precision here
    worst8 = std::max(worst8, e8);
    worst4 = std::max(worst4, e4);
    sum8 += e8;
    sum4 += e4;
  }
  std::printf("mean relative error: int8 per-channel %.5f, int4 per-group %.5f (worst %.5f / %.5f)\n",
              sum8 / names.size(), sum4 / names.size(), worst8, worst4);
}
