// Tests of Quant-Noise: block sampling (binomial / exact counts, uniformity, seeds), forward against fake_quant_forward and a float64 oracle, backward against float64 references, errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "pare/quant/quant_noise.hpp"
#include "pare_test_support.hpp"
#include "quant_oracle.hpp"

namespace quant_noise_test {
inline std::uint32_t bits_of(float v) {
  std::uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

/// Parameter entry of element (i, j) by the documented layout (pare/quant/quantized_tensor.hpp).
inline std::size_t entry(const pare::granularity& g, std::size_t cols, std::size_t i, std::size_t j) {
  switch (g.kind) {
    case pare::granularity_kind::per_tensor: return 0;
    case pare::granularity_kind::per_channel: return g.axis == 0 ? i : j;
    case pare::granularity_kind::per_group: return i * (cols / g.group_size) + j / g.group_size;
  }
  return 0;
}

inline pare::quant_noise_config config(double p, std::size_t block, pare::quant_noise_sampling s, std::uint64_t seed) {
  pare::quant_noise_config c;
  c.p = p;
  c.block_cols = block;
  c.sampling = s;
  c.seed = seed;
  return c;
}
}  // namespace quant_noise_test

TEST_CASE("Quant-Noise forward: noised blocks are fake_quant_forward's values exactly, the others the input exactly") {
  namespace qt = quant_noise_test;
  const std::size_t rows = 9, cols = 96;
  const auto x = pare_test::gaussian(rows * cols, 51, 1.0);
  const pare::matrix_view<const float> m(x.data(), rows, cols);
  for (const char* spec : {"int4:g32:asym", "int8:per_channel:sym", "uint4:per_tensor:asym", "int3:per_channel=1:sym"}) {
    auto p = pare::fake_quant_params::from_data(m, pare::quant_config::parse(spec));
    for (auto& s : p.scales) s *= 0.8f;  // learned-looking scales: some values clip
    for (std::size_t block : {std::size_t(1), std::size_t(8), std::size_t(48), pare::quant_noise_config::whole_row}) {
      for (auto sampling : {pare::quant_noise_sampling::bernoulli, pare::quant_noise_sampling::exact_count}) {
        INFO(spec << " block " << block << " sampling " << int(sampling));
        const auto mask = pare::quant_noise_sample(rows, cols, qt::config(0.4, block, sampling, 7), 3);
        const std::size_t width = block == pare::quant_noise_config::whole_row ? cols : block;
        REQUIRE(mask.block_cols == width);
        REQUIRE(mask.noised.size() == rows * (cols / width));
        std::vector<float> y(rows * cols, -1.0f), fq(rows * cols);
        pare::quant_noise_forward(m, p, mask, pare::matrix_view<float>(y.data(), rows, cols));
        pare::fake_quant_forward(m, p, pare::matrix_view<float>(fq.data(), rows, cols));
        // in place, and from a strided (column-reversed) view
        std::vector<float> inplace = x;
        pare::quant_noise_forward(pare::matrix_view<const float>(inplace.data(), rows, cols), p, mask,
                                  pare::matrix_view<float>(inplace.data(), rows, cols));
        std::vector<float> rev(rows * cols), yrev(rows * cols);
        for (std::size_t i = 0; i < rows; ++i)
          for (std::size_t j = 0; j < cols; ++j) rev[i * cols + (cols - 1 - j)] = x[i * cols + j];
        const pare::matrix_view<const float> strided(rev.data() + cols - 1, rows, cols, std::ptrdiff_t(cols), -1);
        pare::quant_noise_forward(strided, p, mask, pare::matrix_view<float>(yrev.data(), rows, cols));
        std::size_t noised = 0, changed = 0;
        for (std::size_t i = 0; i < rows; ++i)
          for (std::size_t j = 0; j < cols; ++j) {
            const std::size_t e = i * cols + j;
            const bool on = mask.noised[i * (cols / width) + j / width] != 0;
            REQUIRE(mask.element(i, j) == on);
            const std::size_t k = qt::entry(p.gran, cols, i, j);
            const oracle::params op{double(p.scales[k]), long(p.zero_points[k])};
            const float expect =
                on ? float(oracle::affine_value(oracle::affine_code(x[e], op, p.format.bits, p.format.is_signed), op)) : x[e];
            INFO("(" << i << ", " << j << ") noised " << on);
            REQUIRE(qt::bits_of(y[e]) == qt::bits_of(expect));
            REQUIRE(qt::bits_of(y[e]) == qt::bits_of(on ? fq[e] : x[e]));
            REQUIRE(qt::bits_of(inplace[e]) == qt::bits_of(y[e]));
            REQUIRE(qt::bits_of(yrev[e]) == qt::bits_of(y[e]));
            noised += on;
            changed += y[e] != x[e];
          }
        CHECK(noised > 0);
        CHECK(noised < rows * cols);
        CHECK(changed > 0);
      }
    }
  }
}

TEST_CASE("Quant-Noise with p = 0 is the identity and with p = 1 plain fake quantization, forward and backward") {
  namespace qt = quant_noise_test;
  const std::size_t rows = 6, cols = 64;
  const auto x = pare_test::gaussian(rows * cols, 61, 1.0);
  const auto gy = pare_test::gaussian(rows * cols, 62, 1.0);
  const pare::matrix_view<const float> m(x.data(), rows, cols), gm(gy.data(), rows, cols);
  auto p = pare::fake_quant_params::from_data(m, pare::quant_config::parse("int4:g16:asym"));
  for (auto& s : p.scales) s *= 0.7f;
  for (auto sampling : {pare::quant_noise_sampling::bernoulli, pare::quant_noise_sampling::exact_count}) {
    for (std::uint64_t step = 0; step < 5; ++step) {
      const auto none = pare::quant_noise_sample(rows, cols, qt::config(0.0, 8, sampling, 1), step);
      const auto all = pare::quant_noise_sample(rows, cols, qt::config(1.0, 8, sampling, 1), step);
      CHECK(none.count() == 0);
      CHECK(all.count() == rows * cols / 8);
      std::vector<float> y0(rows * cols), y1(rows * cols), fq(rows * cols);
      pare::quant_noise_forward(m, p, none, pare::matrix_view<float>(y0.data(), rows, cols));
      pare::quant_noise_forward(m, p, all, pare::matrix_view<float>(y1.data(), rows, cols));
      pare::fake_quant_forward(m, p, pare::matrix_view<float>(fq.data(), rows, cols));
      for (std::size_t e = 0; e < rows * cols; ++e) {
        REQUIRE(qt::bits_of(y0[e]) == qt::bits_of(x[e]));
        REQUIRE(qt::bits_of(y1[e]) == qt::bits_of(fq[e]));
      }
      const auto g0 = pare::quant_noise_backward(m, gm, p, none, 0.5f);
      const auto g1 = pare::quant_noise_backward(m, gm, p, all, 0.5f);
      const auto gf = pare::fake_quant_backward(m, gm, p, 0.5f);
      CHECK(g0.grad_x == gy);
      for (float v : g0.grad_scale) CHECK(v == 0.0f);
      for (float v : g0.grad_zero_point) CHECK(v == 0.0f);
      CHECK(g1.grad_x == gf.grad_x);
      CHECK(g1.grad_scale == gf.grad_scale);
      CHECK(g1.grad_zero_point == gf.grad_zero_point);
    }
  }
}

TEST_CASE("Quant-Noise Bernoulli sampling: counts binomial, every block equally likely, steps independent") {
  namespace qt = quant_noise_test;
  // One large mask per p: the count lies within 5 sigma of n·p.
  for (double p : {0.05, 0.3, 0.5, 0.9}) {
    const std::size_t rows = 64, cols = 512;
    const auto mask = pare::quant_noise_sample(rows, cols, qt::config(p, 8, pare::quant_noise_sampling::bernoulli, 11), 0);
    const double n = double(rows * cols / 8), mean = n * p, sd = std::sqrt(n * p * (1 - p));
    INFO("p " << p << " count " << mask.count() << " expected " << mean << " ± " << sd);
    CHECK(std::fabs(double(mask.count()) - mean) < 5 * sd);
  }
  // Over many steps: per-block frequencies pass a chi-square test (no block or column
  // position favoured), and two consecutive steps overlap as independent draws would.
  const std::size_t rows = 16, cols = 128, steps = 200;
  const double p = 0.25;
  const std::size_t nb = rows * cols / 8;
  std::vector<double> hits(nb, 0.0);
  double both = 0, total = 0;
  std::vector<std::uint8_t> prev;
  for (std::size_t t = 0; t < steps; ++t) {
    const auto mask = pare::quant_noise_sample(rows, cols, qt::config(p, 8, pare::quant_noise_sampling::bernoulli, 99), t);
    for (std::size_t b = 0; b < nb; ++b) {
      hits[b] += mask.noised[b];
      total += mask.noised[b];
      if (!prev.empty()) both += mask.noised[b] && prev[b];
    }
    prev = mask.noised;
  }
  const double expect = steps * p, var = steps * p * (1 - p);
  double chi2 = 0;
  for (double h : hits) chi2 += (h - expect) * (h - expect) / var;
  const double df = double(nb), chi_sd = std::sqrt(2.0 * df);
  INFO("chi2 " << chi2 << " for " << df << " blocks");
  CHECK(std::fabs(chi2 - df) < 5 * chi_sd);
  const double n_all = double(steps * nb);
  CHECK(std::fabs(total - n_all * p) < 5 * std::sqrt(n_all * p * (1 - p)));
  const double n_pairs = double((steps - 1) * nb);
  CHECK(std::fabs(both - n_pairs * p * p) < 5 * std::sqrt(n_pairs * p * p * (1 - p * p)));
}

TEST_CASE("Quant-Noise exact-count sampling: round(p·blocks) blocks, every block equally likely") {
  namespace qt = quant_noise_test;
  for (std::size_t rows : {1, 3, 7}) {
    for (std::size_t cols : {8, 24, 40}) {
      for (double p : {0.0, 0.1, 0.25, 0.5, 0.77, 1.0}) {
        for (std::size_t block : {std::size_t(4), std::size_t(8), pare::quant_noise_config::whole_row}) {
          const std::size_t width = block == pare::quant_noise_config::whole_row ? cols : block;
          if (cols % width) continue;
          const std::size_t n = rows * (cols / width);
          const auto mask = pare::quant_noise_sample(rows, cols, qt::config(p, block, pare::quant_noise_sampling::exact_count, 4), 17);
          INFO("rows " << rows << " cols " << cols << " p " << p << " block " << width);
          CHECK(mask.count() == std::size_t(std::llround(std::floor(p * double(n) + 0.5))));
        }
      }
    }
  }
  // Frequencies over steps: uniform over block positions (chi-square), so not always the same blocks.
  const std::size_t rows = 8, cols = 64, steps = 300;
  const std::size_t nb = rows * cols / 8;
  const double p = 0.2;
  const std::size_t k = std::size_t(std::floor(p * double(nb) + 0.5));
  std::vector<double> hits(nb, 0.0);
  for (std::size_t t = 0; t < steps; ++t) {
    const auto mask = pare::quant_noise_sample(rows, cols, qt::config(p, 8, pare::quant_noise_sampling::exact_count, 5), t);
    REQUIRE(mask.count() == k);
    for (std::size_t b = 0; b < nb; ++b) hits[b] += mask.noised[b];
  }
  const double q = double(k) / double(nb), expect = steps * q, var = steps * q * (1 - q);
  double chi2 = 0;
  for (double h : hits) chi2 += (h - expect) * (h - expect) / var;
  INFO("chi2 " << chi2);
  // Without-replacement draws make the counts slightly negatively correlated; the bound holds a fortiori.
  CHECK(std::fabs(chi2 - double(nb)) < 5 * std::sqrt(2.0 * double(nb)));
}

TEST_CASE("Quant-Noise masks are reproducible from (seed, step) and differ across steps and seeds") {
  namespace qt = quant_noise_test;
  for (auto sampling : {pare::quant_noise_sampling::bernoulli, pare::quant_noise_sampling::exact_count}) {
    const auto c = qt::config(0.5, 4, sampling, 123);
    const auto a = pare::quant_noise_sample(12, 64, c, 8);
    const auto b = pare::quant_noise_sample(12, 64, c, 8);
    CHECK(a.noised == b.noised);
    CHECK(pare::quant_noise_sample(12, 64, c, 9).noised != a.noised);
    CHECK(pare::quant_noise_sample(12, 64, qt::config(0.5, 4, sampling, 124), 8).noised != a.noised);
  }
}

TEST_CASE("Quant-Noise backward: STE and parameter gradients on noised elements only, against float64 references") {
  namespace qt = quant_noise_test;
  const std::size_t rows = 5, cols = 64;
  const auto x = pare_test::gaussian(rows * cols, 71, 1.0);
  const auto gy = pare_test::gaussian(rows * cols, 72, 1.0);
  const pare::matrix_view<const float> m(x.data(), rows, cols), gm(gy.data(), rows, cols);
  for (const char* spec : {"int4:g16:asym", "int8:per_channel:sym", "uint3:per_tensor:asym"}) {
    for (auto range : {pare::fake_quant_range::pytorch, pare::fake_quant_range::lsq}) {
      INFO(spec << " range " << pare::to_string(range));
      auto p = pare::fake_quant_params::from_data(m, pare::quant_config::parse(spec));
      p.range = range;
      for (auto& s : p.scales) s *= 0.6f;
      const auto mask = pare::quant_noise_sample(rows, cols, qt::config(0.5, 8, pare::quant_noise_sampling::bernoulli, 3), 1);
      const float gscale = 0.25f;
      const auto g = pare::quant_noise_backward(m, gm, p, mask, gscale);
      std::vector<double> ref_s(p.scales.size(), 0.0), ref_z(p.scales.size(), 0.0);
      std::size_t blocked = 0;
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j) {
          const std::size_t e = i * cols + j;
          if (!mask.element(i, j)) {
            REQUIRE(g.grad_x[e] == gy[e]);
            continue;
          }
          const std::size_t k = qt::entry(p.gran, cols, i, j);
          const double s = p.scales[k], v = double(x[e] * (1.0f / p.scales[k]));
          const double lo = p.format.qmin() - p.zero_points[k], hi = p.format.qmax() - p.zero_points[k];
          const double t = range == pare::fake_quant_range::pytorch ? oracle::rne(v) : v;
          const bool in = t >= lo && t <= hi;
          blocked += !in;
          REQUIRE(g.grad_x[e] == (in ? gy[e] : 0.0f));
          ref_s[k] += gy[e] * (in ? oracle::rne(v) - v : (t < lo ? lo : hi));
          ref_z[k] += in ? 0.0 : -gy[e] * s;
        }
      CHECK(blocked > 0);
      for (std::size_t k = 0; k < ref_s.size(); ++k) {
        INFO("entry " << k);
        CHECK(g.grad_scale[k] == Approx(gscale * ref_s[k]).margin(1e-4));
        CHECK(g.grad_zero_point[k] == Approx(gscale * ref_z[k]).margin(1e-5));
      }
    }
  }
}

TEST_CASE("Quant-Noise rejects bad p, block sizes, masks and inputs, changing nothing") {
  namespace qt = quant_noise_test;
  const std::size_t rows = 4, cols = 32;
  auto x = pare_test::gaussian(rows * cols, 81);
  const auto gy = pare_test::gaussian(rows * cols, 82);
  const pare::matrix_view<const float> m(x.data(), rows, cols), gm(gy.data(), rows, cols);
  const auto p = pare::fake_quant_params::from_data(m, pare::quant_config::parse("int8:per_channel:sym"));
  const auto ber = pare::quant_noise_sampling::bernoulli;
  for (double bad : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN()})
    CHECK_THROWS_WITH(pare::quant_noise_sample(rows, cols, qt::config(bad, 8, ber, 0), 0),
                      Catch::Contains("quant_noise_sample") && Catch::Contains("'p'") && Catch::Contains("[0, 1]"));
  CHECK_THROWS_WITH(pare::quant_noise_sample(rows, cols, qt::config(0.5, 0, ber, 0), 0),
                    Catch::Contains("'block_cols'") && Catch::Contains("got 0"));
  CHECK_THROWS_WITH(pare::quant_noise_sample(rows, cols, qt::config(0.5, 5, ber, 0), 0),
                    Catch::Contains("'block_cols'") && Catch::Contains("divisor of the 32") && Catch::Contains("got 5"));
  CHECK_THROWS_AS(pare::quant_noise_sample(rows, cols, qt::config(0.5, 8, static_cast<pare::quant_noise_sampling>(9), 0), 0),
                  pare::argument_error);
  const auto mask = pare::quant_noise_sample(rows, cols, qt::config(0.5, 8, ber, 0), 0);
  std::vector<float> y(rows * cols, 3.0f);
  const pare::matrix_view<float> ym(y.data(), rows, cols);
  const auto other = pare::quant_noise_sample(rows + 1, cols, qt::config(0.5, 8, ber, 0), 0);
  CHECK_THROWS_WITH(pare::quant_noise_forward(m, p, other, ym), Catch::Contains("quant_noise_forward") && Catch::Contains("'mask'"));
  CHECK_THROWS_AS(pare::quant_noise_backward(m, gm, p, other), pare::shape_error);
  auto broken = mask;
  broken.noised.pop_back();
  CHECK_THROWS_AS(pare::quant_noise_forward(m, p, broken, ym), pare::shape_error);
  broken = mask;
  broken.block_cols = 5;
  CHECK_THROWS_WITH(pare::quant_noise_backward(m, gm, p, broken), Catch::Contains("quant_noise_backward") && Catch::Contains("'mask'"));
  CHECK_THROWS_AS(pare::quant_noise_forward(m, p, mask, pare::matrix_view<float>(y.data(), cols, rows)), pare::shape_error);
  auto badp = p;
  badp.scales[2] = -1.0f;
  CHECK_THROWS_WITH(pare::quant_noise_forward(m, badp, mask, ym), Catch::Contains("'scales'"));
  x[2 * cols + 9] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(pare::quant_noise_forward(m, p, mask, ym), Catch::Contains("'x'") && Catch::Contains("(2, 9)"));
  CHECK_THROWS_WITH(pare::quant_noise_backward(m, gm, p, mask), Catch::Contains("(2, 9)"));
  for (float v : y) REQUIRE(v == 3.0f);
}
