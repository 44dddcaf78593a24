// Tests of mse_observer: never worse than minmax (float64 error), strictly better on heavy tails, equal to a
// brute-force search.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "observer_oracle.hpp"
#include "pare/stats/observers.hpp"
#include "pare_test_support.hpp"

namespace {

struct dataset {
  std::string name;
  std::vector<float> x;
};

std::vector<dataset> datasets(std::size_t n, std::uint64_t seed) {
  return {{"gaussian", pare_test::gaussian(n, seed)},
          {"student-t3", obs_oracle::student_t3(n, seed + 1)},
          {"gaussian+20sigma outliers",
           obs_oracle::gaussian_with_outliers(n, seed + 2, std::max<std::size_t>(1, n / 200), 20.0)},
          {"uniform", pare_test::uniform(n, seed + 3, -0.7, 1.3)}};
}

/// Candidate count of the documented grid: i = 0 .. floor(max_shrink · grid) (< grid).
int last_candidate(int grid, float max_shrink) {
  int i = 0;
  while (i + 1 < grid && double(i + 1) <= double(max_shrink) * grid + 1e-4) ++i;
  return i;
}

/// Brute-force search over the same α grid, every candidate's error computed in full
/// with pare's scalar quantize/dequantize (the normative definitions), summed in double.
pare::observed_range brute_force(const std::vector<float>& x, int grid, float max_shrink, pare::int_format fmt,
                                 pare::scheme_kind scheme) {
  const float lo = std::min(*std::min_element(x.begin(), x.end()), 0.0f);
  const float hi = std::max(*std::max_element(x.begin(), x.end()), 0.0f);
  pare::observed_range best{lo, hi};
  double best_err = std::numeric_limits<double>::infinity();
  for (int i = 0; i <= last_candidate(grid, max_shrink); ++i) {
    const double a = 1.0 - double(i) / grid;
    const pare::observed_range c{float(a * lo), float(a * hi)};
    const pare::qparams p = pare::params_from_range(c.lo, c.hi, fmt, scheme);
    double err = 0;
    for (float v : x) {
      const int q = pare::quantize_value(v, pare::inverse_scale(p.scale), p.zero_point, fmt.qmin(), fmt.qmax());
      const double d = double(v) - double(pare::dequantize_value(q, p.scale, p.zero_point));
      err += d * d;
    }
    if (err < best_err) {
      best_err = err;
      best = c;
    }
  }
  return best;
}

}  // namespace

TEST_CASE("mse_observer is never worse than minmax in float64 quantization error, and better on heavy tails") {
  std::uint64_t seed = 1000;
  for (const std::size_t n : {128u, 1000u}) {
    for (const auto& d : datasets(n, seed)) {
      for (int bits = 2; bits <= 8; ++bits) {
        for (bool is_signed : {true, false}) {
          for (auto scheme : {pare::scheme_kind::symmetric, pare::scheme_kind::asymmetric}) {
            const bool sym = scheme == pare::scheme_kind::symmetric;
            const pare::int_format fmt{bits, is_signed};
            const auto mm = pare::observe_range(pare::minmax_observer{}, d.x.data(), n, fmt, scheme);
            const auto ms = pare::observe_range(pare::mse_observer{}, d.x.data(), n, fmt, scheme);
            const double e_mm = obs_oracle::sq_error(d.x, mm.lo, mm.hi, bits, is_signed, sym);
            const double e_ms = obs_oracle::sq_error(d.x, ms.lo, ms.hi, bits, is_signed, sym);
            INFO(d.name << " n " << n << " " << fmt.str() << (sym ? " sym" : " asym") << ": minmax " << e_mm << " mse "
                        << e_ms);
            CHECK(e_ms <= e_mm * (1 + 1e-9));
            if (d.name != "uniform" && d.name != "gaussian" && bits == 4) {
              CHECK(e_ms < e_mm);
              if (n >= 1000) CHECK(e_ms < 0.9 * e_mm);  // several outliers: a clear gain
            }
            if (d.name == "gaussian" && bits <= 4 && n == 1000) CHECK(e_ms < e_mm);
          }
        }
      }
    }
    seed += 10;
  }
}

TEST_CASE("mse_observer equals a brute-force search over the same alpha grid") {
  std::uint64_t seed = 2000;
  struct knobs {
    int grid;
    float max_shrink;
  };
  for (const knobs k : {knobs{100, 0.8f}, knobs{37, 0.5f}, knobs{10, 0.95f}, knobs{1, 0.0f}, knobs{200, 0.7f}}) {
    for (const auto& d : datasets(256, seed++)) {
      for (int bits : {2, 3, 4, 6, 8}) {
        for (auto scheme : {pare::scheme_kind::symmetric, pare::scheme_kind::asymmetric}) {
          const pare::int_format fmt{bits, bits % 2 == 0};
          const pare::mse_observer proto(k.grid, k.max_shrink);
          REQUIRE(proto.last_candidate() == last_candidate(k.grid, k.max_shrink));
          const auto got = pare::observe_range(proto, d.x.data(), d.x.size(), fmt, scheme);
          const auto want = brute_force(d.x, k.grid, k.max_shrink, fmt, scheme);
          INFO(d.name << " grid " << k.grid << " max_shrink " << k.max_shrink << " " << fmt.str());
          CHECK(got.lo == want.lo);
          CHECK(got.hi == want.hi);
          // And the chosen range is the float64-best candidate too (up to rounding ties).
          const bool sym = scheme == pare::scheme_kind::symmetric;
          double best = std::numeric_limits<double>::infinity();
          const float lo = std::min(*std::min_element(d.x.begin(), d.x.end()), 0.0f);
          const float hi = std::max(*std::max_element(d.x.begin(), d.x.end()), 0.0f);
          for (int i = 0; i <= last_candidate(k.grid, k.max_shrink); ++i) {
            const double a = 1.0 - double(i) / k.grid;
            best = std::min(best, obs_oracle::sq_error(d.x, float(a * lo), float(a * hi), bits, fmt.is_signed, sym));
          }
          CHECK(obs_oracle::sq_error(d.x, got.lo, got.hi, bits, fmt.is_signed, sym) <= best * (1 + 1e-9));
        }
      }
    }
  }
}

TEST_CASE("mse_observer: alpha = 1 reproduces minmax's parameters, the grid has 81 candidates by default") {
  CHECK(pare::mse_observer{}.last_candidate() == 80);
  CHECK(pare::mse_observer{100, 0.7f}.last_candidate() == 70);
  CHECK(pare::mse_observer{100, 0.99f}.last_candidate() == 99);
  CHECK(pare::mse_observer{3, 0.9f}.last_candidate() == 2);
  // max_shrink = 0: only alpha = 1, i.e. minmax's scale and zero point.
  const auto x = obs_oracle::student_t3(500, 5);
  for (auto scheme : {pare::scheme_kind::symmetric, pare::scheme_kind::asymmetric}) {
    const pare::int_format fmt{3, false};
    const auto r = pare::observe_range(pare::mse_observer{100, 0.0f}, x.data(), x.size(), fmt, scheme);
    const auto m = pare::observe_range(pare::minmax_observer{}, x.data(), x.size(), fmt, scheme);
    const auto pr = pare::params_from_range(r.lo, r.hi, fmt, scheme),
               pm = pare::params_from_range(m.lo, m.hi, fmt, scheme);
    CHECK(pr.scale == pm.scale);
    CHECK(pr.zero_point == pm.zero_point);
  }
}

TEST_CASE("mse_observer streams: batches equal one batch in exact mode, histogram mode stays close") {
  const auto x = obs_oracle::gaussian_with_outliers(30000, 77, 20, 15.0);
  const pare::int_format fmt{4, true};
  for (auto scheme : {pare::scheme_kind::symmetric, pare::scheme_kind::asymmetric}) {
    pare::mse_observer o;
    for (std::size_t i = 0; i < x.size(); i += 4999) o.observe(x.data() + i, std::min<std::size_t>(4999, x.size() - i));
    REQUIRE(o.exact());
    const auto one = pare::observe_range(pare::mse_observer{}, x.data(), x.size(), fmt, scheme);
    CHECK(o.range(fmt, scheme).lo == one.lo);
    CHECK(o.range(fmt, scheme).hi == one.hi);

    pare::mse_observer h(100, 0.8f, 2000);
    for (std::size_t i = 0; i < x.size(); i += 4999) h.observe(x.data() + i, std::min<std::size_t>(4999, x.size() - i));
    REQUIRE_FALSE(h.exact());
    const auto rh = h.range(fmt, scheme);
    const bool sym = scheme == pare::scheme_kind::symmetric;
    const double e_exact = obs_oracle::sq_error(x, one.lo, one.hi, 4, true, sym);
    const double e_hist = obs_oracle::sq_error(x, rh.lo, rh.hi, 4, true, sym);
    const auto mm = pare::observe_range(pare::minmax_observer{}, x.data(), x.size(), fmt, scheme);
    INFO("exact " << e_exact << " histogram " << e_hist);
    CHECK(e_hist <= 1.05 * e_exact);
    CHECK(e_hist < obs_oracle::sq_error(x, mm.lo, mm.hi, 4, true, sym));
  }
}

TEST_CASE("mse_observer validates 'grid' and 'max_shrink'") {
  CHECK_THROWS_WITH(pare::mse_observer(0), Catch::Contains("'grid'") && Catch::Contains("got 0"));
  CHECK_THROWS_AS(pare::mse_observer(-5), pare::argument_error);
  CHECK_THROWS_WITH(pare::mse_observer(100, 1.0f), Catch::Contains("'max_shrink'") && Catch::Contains("[0, 1)"));
  CHECK_THROWS_AS(pare::mse_observer(100, -0.1f), pare::argument_error);
  CHECK_THROWS_AS(pare::mse_observer(100, std::nanf("")), pare::argument_error);
  CHECK_NOTHROW(pare::mse_observer(1, 0.0f));
}
