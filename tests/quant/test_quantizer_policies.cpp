// Compile-time quantizer<...> compositions and their runtime quant_config strings, each against a float64 oracle of the affine mapping (pare/core/affine.hpp) over groups the test forms itself; config parsing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "pare/quant/quantizer.hpp"
#include "pare_test_support.hpp"
#include "quant_oracle.hpp"

namespace {

/// The method a composition stands for, written out independently of pare's types.
struct method {
  int bits;
  bool is_signed, symmetric;
  char gran;            // 't' per tensor, 'c' per channel (axis below), 'g' per group
  std::size_t axis, g;  // channel axis, group size
  bool minmax;          // the observer is min-max (range computed here); otherwise pare's observer gives the range
  bool stochastic;
  std::uint64_t seed;
};

/// Requires every scale, zero point, packed code and dequantized value of `qt` (from w
/// [rows, cols]) to be what the float64 oracle computes: the group of each element and its
/// parameter index formed here from the documented layout (pare/quant/quantized_tensor.hpp),
/// the group's range (its min and max, or `observer`'s range — observers have their own
/// oracle tests in tests/observers), scale and zero point by oracle::from_range, the code by
/// the normative float arithmetic, read back from the packed bytes by the documented bit layout.
template <class Obs>
void check_affine_oracle(const pare::quantized_tensor& qt, const std::vector<float>& w, std::size_t rows, std::size_t cols,
                         const method& me, const Obs& observer) {
  REQUIRE(qt.rows == rows);
  REQUIRE(qt.cols == cols);
  const std::size_t n_params = me.gran == 't' ? 1 : me.gran == 'c' ? (me.axis == 0 ? rows : cols) : rows * (cols / me.g);
  REQUIRE(qt.scales.size() == n_params);
  REQUIRE(qt.zero_points.size() == n_params);
  const std::size_t row_bytes =
      me.bits == 8 ? cols : me.bits >= 5 ? (cols * std::size_t(me.bits) + 7) / 8  // 5..7: a bit stream
      : me.bits == 4 ? (cols + 1) / 2 : me.bits == 2 ? (cols + 3) / 4 : 3 * ((cols + 7) / 8);
  REQUIRE(qt.codes.size() >= rows * row_bytes);
  // Parameter entry of element (i, j) by the documented layout, and each entry's group.
  auto entry = [&](std::size_t i, std::size_t j) -> std::size_t {
    return me.gran == 't' ? 0 : me.gran == 'c' ? (me.axis == 0 ? i : j) : i * (cols / me.g) + j / me.g;
  };
  std::vector<std::vector<float>> groups(n_params);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) groups[entry(i, j)].push_back(w[i * cols + j]);
  std::vector<oracle::params> op(n_params);
  for (std::size_t k = 0; k < n_params; ++k) {
    const std::vector<float>& grp = groups[k];
    REQUIRE(grp.size() == (me.gran == 't' ? rows * cols : me.gran == 'c' ? (me.axis == 0 ? cols : rows) : me.g));
    double lo, hi;
    if (me.minmax) {
      lo = *std::min_element(grp.begin(), grp.end());
      hi = *std::max_element(grp.begin(), grp.end());
    } else {
      const pare::observed_range r =
          pare::observe_range(observer, grp.data(), grp.size(), pare::int_format{me.bits, me.is_signed},
                              me.symmetric ? pare::scheme_kind::symmetric : pare::scheme_kind::asymmetric);
      lo = r.lo;
      hi = r.hi;
    }
    op[k] = oracle::from_range(lo, hi, me.bits, me.is_signed, me.symmetric);
    INFO("parameter entry " << k << ", range [" << lo << ", " << hi << "]");
    REQUIRE(double(qt.scales[k]) == op[k].scale);
    REQUIRE(long(qt.zero_points[k]) == op[k].zero);
  }
  const auto deq = qt.dequantize();
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) {
      const std::size_t k = entry(i, j);
      const float x = w[i * cols + j];
      const float u = me.stochastic ? pare::counter_uniform(pare::row_key(me.seed, i), std::uint32_t(j)) : 0.0f;
      const long want = oracle::affine_code(x, op[k], me.bits, me.is_signed, me.stochastic, u);
      INFO("element (" << i << ", " << j << ") = " << x << ", parameter entry " << k);
      REQUIRE(oracle::unpack_code(me.bits, me.is_signed, qt.codes.data() + i * row_bytes, j) == want);
      REQUIRE(deq(i, j) == oracle::affine_value(want, op[k]));
    }
}

template <class Q>
void check_policy(const Q& q, const std::string& spec, const method& me, const std::vector<float>& w, std::size_t rows,
                  std::size_t cols) {
  INFO(spec << " on [" << rows << ", " << cols << "]");
  const pare::matrix_view<const float> m(w.data(), rows, cols);
  const auto cfg = pare::quant_config::parse(spec);
  CHECK(q.config().str() == cfg.str());
  {
    INFO("compile-time quantizer");
    check_affine_oracle(q.quantize(m), w, rows, cols, me, q.observer());
  }
  {
    INFO("runtime config");
    check_affine_oracle(pare::quantize(m, cfg), w, rows, cols, me, q.observer());
  }
}

}  // namespace

TEST_CASE("compile-time compositions and their runtime configs match the float64 affine oracle") {
  for (const auto& shape : {std::pair<std::size_t, std::size_t>{12, 256}, std::pair<std::size_t, std::size_t>{5, 96}}) {
    const std::size_t rows = shape.first, cols = shape.second;
    const auto w = pare_test::gaussian(rows * cols, 77 + cols, 0.05, 0.01);
    check_policy(pare::quantizer<pare::int_bits<8>, pare::per_channel<0>>{}, "int8:per_channel:sym",
                 method{8, true, true, 'c', 0, 0, true, false, 0}, w, rows, cols);
    check_policy(pare::quantizer<pare::int_bits<4>, pare::per_group<32>, pare::asymmetric, pare::mse_observer>{},
                 "int4:g32:asym:mse", method{4, true, false, 'g', 0, 32, false, false, 0}, w, rows, cols);
    check_policy(pare::quantizer<pare::uint_bits<4>, pare::per_group<32>, pare::asymmetric>{}, "uint4:g32:asym",
                 method{4, false, false, 'g', 0, 32, true, false, 0}, w, rows, cols);
    check_policy(pare::quantizer<pare::int_bits<3>, pare::per_tensor, pare::symmetric, pare::percentile_observer>{
                     pare::percentile_observer{99.9}},
                 "int3:per_tensor:sym:percentile=99.9", method{3, true, true, 't', 0, 0, false, false, 0}, w, rows, cols);
    check_policy(pare::quantizer<pare::int_bits<2>, pare::per_channel<1>, pare::asymmetric, pare::kl_observer>{},
                 "int2:per_channel=1:asym:kl", method{2, true, false, 'c', 1, 0, false, false, 0}, w, rows, cols);
    check_policy(pare::quantizer<pare::int_bits<6>, pare::per_group<16>, pare::symmetric, pare::ema_minmax_observer>{},
                 "int6:g16:sym:ema", method{6, true, true, 'g', 0, 16, false, false, 0}, w, rows, cols);
    check_policy(pare::quantizer<pare::int_bits<4>, pare::per_group<16>, pare::symmetric, pare::minmax_observer,
                                 pare::stochastic>{pare::minmax_observer{}, 42},
                 "int4:g16:sym:stochastic=42", method{4, true, true, 'g', 0, 16, true, true, 42}, w, rows, cols);
    check_policy(pare::quantizer<pare::uint_bits<3>, pare::per_group<8>, pare::asymmetric>{}, "uint3:g8:asym",
                 method{3, false, false, 'g', 0, 8, true, false, 0}, w, rows, cols);
    check_policy(pare::quantizer<pare::uint_bits<5>, pare::per_channel<1>, pare::symmetric>{}, "uint5:per_channel=1:sym",
                 method{5, false, true, 'c', 1, 0, true, false, 0}, w, rows, cols);
  }
}

// Per tensor: one scale and one zero point (param_count_for used to give one per row, all but
// the first unused yet counted in storage_bytes).
TEST_CASE("per-tensor quantization stores one scale and zero point, as documented") {
  const std::size_t rows = 12, cols = 256;
  const auto w = pare_test::gaussian(rows * cols, 5, 0.05);
  const auto q = pare::quantize(pare::matrix_view<const float>(w.data(), rows, cols), pare::quant_config::parse("int8:per_tensor:asym"));
  CHECK(q.scales.size() == 1u);
  CHECK(q.zero_points.size() == 1u);
  CHECK(q.storage_bytes() == rows * cols + 4 + 1);  // codes, one float scale, one zero-point byte
}

TEST_CASE("quant_config parses, prints canonically and rejects junk with the token named") {
  const auto c = pare::quant_config::parse("int4:g128:asym:mse");
  CHECK(c.format.bits == 4);
  CHECK(c.format.is_signed);
  CHECK(c.gran.kind == pare::granularity_kind::per_group);
  CHECK(c.gran.group_size == 128);
  CHECK(c.scheme == pare::scheme_kind::asymmetric);
  CHECK(pare::quant_config::parse(c.str()).str() == c.str());
  const auto d = pare::quant_config::parse("uint8");
  CHECK(d.gran.kind == pare::granularity_kind::per_channel);
  CHECK(d.scheme == pare::scheme_kind::symmetric);
  CHECK(pare::quant_config::parse("int4:asym:per_tensor").gran.kind == pare::granularity_kind::per_tensor);
  CHECK_THROWS_WITH(pare::quant_config::parse("int4:g128:fancy"), Catch::Contains("'fancy'"));
  CHECK_THROWS_WITH(pare::quant_config::parse("float4"), Catch::Contains("'float4'"));
  CHECK_THROWS_WITH(pare::quant_config::parse("int9"), Catch::Contains("'bits'") && Catch::Contains("9"));
  CHECK_THROWS_WITH(pare::quant_config::parse("int4:g0"), Catch::Contains("group_size"));
  CHECK_THROWS_WITH(pare::quant_config::parse("int4:sym:asym"), Catch::Contains("repeats"));
  CHECK_THROWS_WITH(pare::quant_config::parse("int4:per_channel=2"), Catch::Contains("'axis'"));
  CHECK_THROWS_AS(pare::quant_config::parse("int4:gx"), pare::argument_error);
}
