// Tests of pare::quantize / dequantize / fake_quantize against a float64 oracle, over bits × scheme × granularity × observer.
#include <catch2/catch.hpp>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "pare/quant/quantize.hpp"
#include "pare_test_support.hpp"
#include "quant_oracle.hpp"

namespace {

struct case_t {
  std::size_t rows, cols;
  pare::quant_config cfg;
};

/// Values of one quantization group of element (i, j), in row-major order.
std::vector<float> group_values(const std::vector<float>& w, std::size_t rows, std::size_t cols,
                                const pare::granularity& g, std::size_t i, std::size_t j) {
  std::vector<float> v;
  switch (g.kind) {
    case pare::granularity_kind::per_tensor: return w;
    case pare::granularity_kind::per_channel:
      if (g.axis == 0) return std::vector<float>(w.begin() + i * cols, w.begin() + (i + 1) * cols);
      for (std::size_t r = 0; r < rows; ++r) v.push_back(w[r * cols + j]);
      return v;
    case pare::granularity_kind::per_group: {
      const std::size_t g0 = (j / g.group_size) * g.group_size;
      return std::vector<float>(w.begin() + i * cols + g0, w.begin() + i * cols + g0 + g.group_size);
    }
  }
  return v;
}

/// Checks every code, scale and zero point of `qt` against the float64 oracle; the
/// observer's range for each group is taken from pare::observe_range (observers have
/// their own oracle tests), everything after it is recomputed in float64.
/// `tie_budget`: how many codes may differ by one at a rounding tie (random data rarely
/// lands within 1e-5 of a tie; the edge-case matrix does so on purpose).
void check_against_oracle(const std::vector<float>& w, const case_t& c, const pare::quantized_tensor& qt,
                          std::size_t tie_budget = std::size_t(-1)) {
  if (tie_budget == std::size_t(-1)) tie_budget = c.rows * c.cols / 100 + 1;
  const int bits = c.cfg.format.bits;
  const bool sgn = c.cfg.format.is_signed;
  const bool sym = c.cfg.scheme == pare::scheme_kind::symmetric;
  REQUIRE(qt.rows == c.rows);
  REQUIRE(qt.cols == c.cols);
  std::size_t ties = 0;
  for (std::size_t i = 0; i < c.rows; ++i) {
    for (std::size_t j = 0; j < c.cols; ++j) {
      const std::vector<float> gv = group_values(w, c.rows, c.cols, c.cfg.gran, i, j);
      pare::observed_range r{0.0f, 0.0f};
      std::visit([&](const auto& obs) { r = pare::observe_range(obs, gv.data(), gv.size(), c.cfg.format, c.cfg.scheme); },
                 c.cfg.observer.variant());
      const oracle::params op = oracle::from_range(r.lo, r.hi, bits, sgn, sym);
      const pare::qparams got = qt.params_at(i, j);
      INFO("cfg " << c.cfg.str() << " shape [" << c.rows << ", " << c.cols << "] at (" << i << ", " << j << ")");
      REQUIRE(double(got.scale) == op.scale);
      REQUIRE(long(got.zero_point) == op.zero);
      const double x = w[i * c.cols + j];
      const long want = oracle::code(x, op, bits, sgn);
      const long q = qt.code(i, j);
      if (q != want) {
        // x·(1/s) in float may land on the other side of a tie than x/s in float64.
        REQUIRE(std::labs(q - want) == 1);
        REQUIRE(oracle::tie_distance(x, op) < 1e-5);
        ++ties;
      }
      // Round-trip bound inside the clip range.
      const double lo = double(oracle::qmin(bits, sgn) - op.zero) * op.scale;
      const double hi = double(oracle::qmax(bits, sgn) - op.zero) * op.scale;
      const double deq = qt.value(i, j);
      REQUIRE(deq == double(float(q - got.zero_point) * got.scale));
      if (x >= lo && x <= hi) REQUIRE(std::fabs(x - deq) <= op.scale * 0.5 * (1 + 1e-6) + 1e-30);
    }
  }
  CHECK(ties <= tie_budget);
}

std::vector<pare::granularity> granularities_for(std::size_t cols) {
  std::vector<pare::granularity> g{pare::granularity::tensor(), pare::granularity::channel(0),
                                   pare::granularity::channel(1)};
  for (std::size_t gs : {1u, 2u, 4u, 8u, 16u, 32u})
    if (cols % gs == 0) g.push_back(pare::granularity::group(gs));
  return g;
}

}  // namespace

TEST_CASE("quantize matches the float64 oracle for every bits x scheme x granularity x observer") {
  const std::vector<std::string> observers{"minmax", "ema", "percentile=99", "mse=20", "kl=256"};
  std::uint64_t seed = 1;
  for (int bits = 2; bits <= 8; ++bits) {
    for (bool sgn : {true, false}) {
      for (bool sym : {true, false}) {
        for (const auto& obs : observers) {
          const std::size_t rows = 5, cols = 32;
          const std::vector<float> w = pare_test::gaussian(rows * cols, seed++, 0.7, sym ? 0.0 : 0.3);
          for (const auto& g : granularities_for(cols)) {
            case_t c{rows, cols, pare::quant_config{}};
            c.cfg.format = pare::int_format{bits, sgn};
            c.cfg.scheme = sym ? pare::scheme_kind::symmetric : pare::scheme_kind::asymmetric;
            c.cfg.gran = g;
            c.cfg.observer = pare::parse_observer(obs);
            const auto qt = pare::quantize(pare::matrix_view<const float>(w.data(), rows, cols), c.cfg);
            check_against_oracle(w, c, qt);
          }
        }
      }
    }
  }
}

TEST_CASE("quantize handles sizes 1-17 and powers of two +-1 on every path") {
  std::uint64_t seed = 100;
  std::vector<std::size_t> sizes;
  for (std::size_t n = 1; n <= 17; ++n) sizes.push_back(n);
  for (std::size_t p : {32u, 64u, 128u, 256u}) {
    sizes.push_back(p - 1);
    sizes.push_back(p);
    sizes.push_back(p + 1);
  }
  for (std::size_t cols : sizes) {
    for (std::size_t rows : {1u, 3u}) {
      for (const char* spec : {"int8:per_channel:sym", "uint4:per_channel:asym", "int3:per_tensor:asym",
                               "int2:per_channel=1:sym", "int4:g1:asym", "int5:per_channel:asym"}) {
        case_t c{rows, cols, pare::quant_config::parse(spec)};
        const std::vector<float> w = pare_test::uniform(rows * cols, seed++, -2.0, 3.0);
        check_against_oracle(w, c, pare::quantize(pare::matrix_view<const float>(w.data(), rows, cols), c.cfg));
      }
    }
  }
}

TEST_CASE("edge cases: all-zero group, constant group, +-max, ties") {
  const std::size_t cols = 16;
  std::vector<float> w(4 * cols, 0.0f);
  for (std::size_t j = 0; j < cols; ++j) {
    w[1 * cols + j] = 2.5f;                                  // constant row
    w[2 * cols + j] = (j % 2 ? 1.0f : -1.0f) * FLT_MAX;      // +-max
    w[3 * cols + j] = float(j) - 7.5f;                       // ties at k + 0.5 with scale 1 (symmetric int5: 15/15)
  }
  for (const char* spec : {"int8:per_channel:sym", "int8:per_channel:asym", "uint4:g8:asym", "int4:g8:sym",
                           "int5:per_channel:sym", "int2:per_channel:asym"}) {
    const auto cfg = pare::quant_config::parse(spec);
    const auto qt = pare::quantize(pare::matrix_view<const float>(w.data(), 4, cols), cfg);
    check_against_oracle(w, case_t{4, cols, cfg}, qt, cols);
    for (std::size_t j = 0; j < cols; ++j) {
      CHECK(qt.value(0, j) == 0.0f);  // all-zero row dequantizes to exactly 0
      CHECK(std::isfinite(qt.value(2, j)));
    }
    if (cfg.scheme == pare::scheme_kind::symmetric && cfg.format.bits >= 4)
      for (std::size_t j = 0; j < cols; ++j) CHECK(qt.value(1, j) == Approx(2.5f).epsilon(1e-6));
  }
  // With scale exactly 1 (int5 symmetric, max |x| = 15) ties round to even.
  std::vector<float> t{15.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f};
  const auto qt = pare::quantize(pare::matrix_view<const float>(t.data(), 1, t.size()), pare::quant_config::parse("int5:per_channel:sym"));
  REQUIRE(qt.scales[0] == 1.0f);
  const int want[] = {15, 0, 2, 2, 0, -2, -2, 4};
  for (std::size_t j = 0; j < t.size(); ++j) CHECK(qt.code(0, j) == want[j]);
}

TEST_CASE("non-finite values are rejected with their position, bad configs name the argument") {
  std::vector<float> w = pare_test::gaussian(6 * 8, 7);
  w[3 * 8 + 5] = std::numeric_limits<float>::quiet_NaN();
  w[4 * 8 + 1] = std::numeric_limits<float>::infinity();
  const pare::matrix_view<const float> m(w.data(), 6, 8);
  for (const char* spec : {"int8:per_channel:sym", "int4:g4:asym", "int4:g4:asym:mse", "int8:per_tensor:sym",
                           "int8:per_channel=1:sym", "int8:per_channel:sym:percentile"}) {
    INFO(spec);
    CHECK_THROWS_AS(pare::quantize(m, pare::quant_config::parse(spec)), pare::value_error);
    CHECK_THROWS_WITH(pare::quantize(m, pare::quant_config::parse(spec)), Catch::Contains("(3, 5)"));
  }
  std::vector<float> ok = pare_test::gaussian(4 * 100, 8);
  const pare::matrix_view<const float> mo(ok.data(), 4, 100);
  CHECK_THROWS_AS(pare::quantize(mo, pare::quant_config::parse("int4:g32")), pare::argument_error);
  CHECK_THROWS_WITH(pare::quantize(mo, pare::quant_config::parse("int4:g32")),
                    Catch::Contains("group_size") && Catch::Contains("100") && Catch::Contains("32"));
  pare::quant_config bad;
  bad.format.bits = 9;
  CHECK_THROWS_WITH(pare::quantize(mo, bad), Catch::Contains("'bits'") && Catch::Contains("9"));
  bad.format.bits = 1;
  CHECK_THROWS_AS(pare::quantize(mo, bad), pare::argument_error);
  // fake_quantize writes nothing on error.
  std::vector<float> y(4 * 100, 42.0f);
  CHECK_THROWS_AS(pare::fake_quantize(mo, pare::quant_config::parse("int4:g32"), pare::matrix_view<float>(y.data(), 4, 100)),
                  pare::argument_error);
  std::vector<float> wn = ok;
  wn[250] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(pare::fake_quantize(pare::matrix_view<const float>(wn.data(), 4, 100), pare::quant_config::parse("int4:g4"),
                                      pare::matrix_view<float>(y.data(), 4, 100)),
                  pare::value_error);
  for (float v : y) REQUIRE(v == 42.0f);
  CHECK_THROWS_AS(pare::fake_quantize(mo, pare::quant_config::parse("int8"), pare::matrix_view<float>(y.data(), 5, 80)),
                  pare::shape_error);
}

TEST_CASE("dequantize and fake_quantize agree with the codes, strided inputs and outputs work") {
  const std::size_t rows = 7, cols = 64;
  std::vector<float> big = pare_test::gaussian(rows * 2 * cols, 11);
  // A strided view: every other column of a [7, 128] buffer.
  const pare::matrix_view<const float> strided(big.data(), rows, cols, 2 * cols, 2);
  std::vector<float> dense(rows * cols);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) dense[i * cols + j] = strided(i, j);
  for (const char* spec : {"int8:per_channel:sym", "uint4:g16:asym", "int3:g32:asym:mse", "int2:per_tensor:sym",
                           "int6:per_channel=1:asym"}) {
    const auto cfg = pare::quant_config::parse(spec);
    const auto a = pare::quantize(strided, cfg);
    const auto b = pare::quantize(pare::matrix_view<const float>(dense.data(), rows, cols), cfg);
    REQUIRE(std::memcmp(a.codes.data(), b.codes.data(), a.codes.size()) == 0);
    REQUIRE(a.scales == b.scales);
    const auto d = a.dequantize();
    std::vector<float> fq(rows * 3 * cols, -1.0f);
    pare::matrix_view<float> fqv(fq.data() + 1, rows, cols, 3 * cols, 3);  // strided and misaligned output
    pare::fake_quantize(strided, cfg, fqv);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) {
        REQUIRE(d(i, j) == a.value(i, j));
        REQUIRE(fqv(i, j) == d(i, j));
      }
  }
}

TEST_CASE("stochastic rounding is unbiased, reproducible by seed and independent of the thread count") {
  const std::size_t cols = 64;
  std::vector<float> w = pare_test::uniform(cols, 21, -1.0, 1.0);
  auto cfg = pare::quant_config::parse("int4:per_channel:sym:stochastic=5");
  const auto a = pare::quantize(pare::matrix_view<const float>(w.data(), 1, cols), cfg);
  const auto b = pare::quantize(pare::matrix_view<const float>(w.data(), 1, cols), cfg);
  REQUIRE(std::memcmp(a.codes.data(), b.codes.data(), a.codes.size()) == 0);
  // Mean over many seeds approaches x / s.
  const int trials = 2000;
  std::vector<double> mean(cols, 0.0);
  for (int t = 0; t < trials; ++t) {
    cfg.seed = std::uint64_t(t) + 1000;
    const auto q = pare::quantize(pare::matrix_view<const float>(w.data(), 1, cols), cfg);
    for (std::size_t j = 0; j < cols; ++j) mean[j] += q.value(0, j) / trials;
  }
  const double s = a.scales[0];
  for (std::size_t j = 0; j < cols; ++j) CHECK(std::fabs(mean[j] - w[j]) < 4.0 * s * 0.5 / std::sqrt(double(trials)));
  // One thread vs the pool.
  const std::size_t rows = 300;
  std::vector<float> m = pare_test::gaussian(rows * cols, 22);
  cfg.seed = 9;
  const auto pooled = pare::quantize(pare::matrix_view<const float>(m.data(), rows, cols), cfg);
  pare::thread_pool one(1);
  pare::set_executor(&one);
  const auto single = pare::quantize(pare::matrix_view<const float>(m.data(), rows, cols), cfg);
  pare::set_executor(nullptr);
  REQUIRE(std::memcmp(pooled.codes.data(), single.codes.data(), pooled.codes.size()) == 0);
}

TEST_CASE("the MSE observer is never worse than minmax in quantization MSE") {
  std::uint64_t seed = 300;
  for (int bits : {2, 3, 4, 8}) {
    for (const char* scheme : {"sym", "asym"}) {
      std::vector<float> w = pare_test::gaussian(8 * 128, seed++);
      for (std::size_t k = 0; k < w.size(); k += 97) w[k] *= 12.0f;  // outliers
      const std::string base = "int" + std::to_string(bits) + ":g32:" + scheme;
      const pare::matrix_view<const float> m(w.data(), 8, 128);
      const auto mm = pare::quantize(m, pare::quant_config::parse(base + ":minmax")).dequantize();
      const auto ms = pare::quantize(m, pare::quant_config::parse(base + ":mse")).dequantize();
      double e_mm = 0, e_ms = 0;
      for (std::size_t i = 0; i < w.size(); ++i) {
        e_mm += (double(w[i]) - mm.data()[i]) * (double(w[i]) - mm.data()[i]);
        e_ms += (double(w[i]) - ms.data()[i]) * (double(w[i]) - ms.data()[i]);
      }
      INFO(base << ": minmax " << e_mm << " mse " << e_ms);
      CHECK(e_ms <= e_mm);
      if (bits <= 4) CHECK(e_ms < e_mm);
    }
  }
}

TEST_CASE("storage size and bits per weight count codes, scales and zero points") {
  std::vector<float> w = pare_test::gaussian(16 * 128, 5);
  const pare::matrix_view<const float> m(w.data(), 16, 128);
  const auto q4 = pare::quantize(m, pare::quant_config::parse("uint4:g32:asym"));
  CHECK(q4.row_bytes() == 64);
  CHECK(q4.storage_bytes() == 16 * 64 + 16 * 4 * 4 + 16 * 4);
  CHECK(q4.bits_per_weight() == Approx(4.0 + 32.0 / 32 + 8.0 / 32));
  const auto q8 = pare::quantize(m, pare::quant_config::parse("int8:per_channel:sym"));
  CHECK(q8.bits_per_weight() == Approx(8.0 + 32.0 / 128));
}

TEST_CASE("large matrices (streaming-store path) give the same bytes as row-by-row calls, buffers recycle") {
  const std::size_t rows = 2048, cols = 1024;  // 8 MiB of fp32: the matrix-level calls switch to streaming stores
  const std::vector<float> w = pare_test::gaussian(rows * cols, 31);
  const pare::matrix_view<const float> m(w.data(), rows, cols);
  for (const char* spec : {"int8:per_channel:sym", "int4:g128:asym", "int3:g64:asym"}) {
    INFO(spec);
    const auto cfg = pare::quant_config::parse(spec);
    std::vector<float> y(rows * cols), deq(rows * cols), one(cols);
    pare::fake_quantize(m, cfg, pare::matrix_view<float>(y.data(), rows, cols));
    const pare::quantized_tensor qt = pare::quantize(m, cfg);
    qt.dequantize_into(pare::matrix_view<float>(deq.data(), rows, cols));
    std::size_t fq_diff = 0, deq_diff = 0;
    for (std::size_t i = 0; i < rows; i += 1) {
      // One row at a time is far below the streaming threshold: the cached-store kernels.
      pare::fake_quantize(m.rows_range(i, i + 1), cfg, pare::matrix_view<float>(one.data(), 1, cols));
      fq_diff += std::memcmp(one.data(), y.data() + i * cols, cols * sizeof(float)) != 0;
      for (std::size_t j = 0; j < cols; ++j) deq_diff += deq[i * cols + j] != qt.value(i, j);
    }
    CHECK(fq_diff == 0);
    CHECK(deq_diff == 0);
    // Recycling a previous result's buffers gives the same codes and parameters.
    pare::quantized_tensor again = pare::quantize(m, pare::quant_config::parse("int8:per_channel:asym"));
    const std::uint8_t* old_codes = again.codes.data();
    again = pare::quantize(m, cfg, std::move(again));
    CHECK(again.codes.size() == qt.codes.size());
    CHECK(std::memcmp(again.codes.data(), qt.codes.data(), qt.codes.size()) == 0);
    CHECK(again.scales == qt.scales);
    CHECK(again.zero_points == qt.zero_points);
    if (cfg.format.bits == 8) CHECK(again.codes.data() == old_codes);  // same size: reused, not reallocated
  }
}
