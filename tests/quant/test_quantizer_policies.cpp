// Tests that the compile-time quantizer<...> and the runtime quant_config give identical results, and config parsing.
#include <catch2/catch.hpp>

#include <cstring>

#include "pare/quant/quantizer.hpp"
#include "pare_test_support.hpp"

namespace {
template <class Q>
void check_same_as_runtime(const Q& q, const std::string& spec, const std::vector<float>& w, std::size_t rows,
                           std::size_t cols) {
  INFO(spec);
  const pare::matrix_view<const float> m(w.data(), rows, cols);
  const auto a = q.quantize(m);
  const auto cfg = pare::quant_config::parse(spec);
  CHECK(q.config().str() == cfg.str());
  const auto b = pare::quantize(m, cfg);
  REQUIRE(a.codes.size() == b.codes.size());
  CHECK(std::memcmp(a.codes.data(), b.codes.data(), a.codes.size()) == 0);
  CHECK(a.scales == b.scales);
  CHECK(a.zero_points == b.zero_points);
}
}  // namespace

TEST_CASE("compile-time compositions equal their runtime configs") {
  const std::size_t rows = 12, cols = 256;
  const auto w = pare_test::gaussian(rows * cols, 77, 0.05, 0.01);
  check_same_as_runtime(pare::quantizer<pare::int_bits<8>, pare::per_channel<0>>{}, "int8:per_channel:sym", w, rows, cols);
  check_same_as_runtime(pare::quantizer<pare::int_bits<4>, pare::per_group<128>, pare::asymmetric, pare::mse_observer>{},
                        "int4:g128:asym:mse", w, rows, cols);
  check_same_as_runtime(pare::quantizer<pare::uint_bits<4>, pare::per_group<32>, pare::asymmetric>{}, "uint4:g32:asym", w,
                        rows, cols);
  check_same_as_runtime(pare::quantizer<pare::int_bits<3>, pare::per_tensor, pare::symmetric, pare::percentile_observer>{
                            pare::percentile_observer{99.9}},
                        "int3:per_tensor:sym:percentile=99.9", w, rows, cols);
  check_same_as_runtime(pare::quantizer<pare::int_bits<2>, pare::per_channel<1>, pare::asymmetric, pare::kl_observer>{},
                        "int2:per_channel=1:asym:kl", w, rows, cols);
  check_same_as_runtime(pare::quantizer<pare::int_bits<6>, pare::per_group<64>, pare::symmetric, pare::ema_minmax_observer>{},
                        "int6:g64:sym:ema", w, rows, cols);
  check_same_as_runtime(pare::quantizer<pare::int_bits<4>, pare::per_group<16>, pare::symmetric, pare::minmax_observer,
                                        pare::stochastic>{pare::minmax_observer{}, 42},
                        "int4:g16:sym:stochastic=42", w, rows, cols);
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
