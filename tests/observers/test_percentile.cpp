// Tests of percentile_observer: exact order statistics vs a sorted float64 reference, and the clipped fraction in both
// modes.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "observer_oracle.hpp"
#include "observers_test_support.hpp"
#include "pare/stats/observers.hpp"
#include "pare_test_support.hpp"

namespace {
const pare::int_format int4{4, true};
using observers_test::asym;
using observers_test::sym;

std::vector<double> to_double(const std::vector<float>& x, bool absolute) {
  std::vector<double> d;
  for (float v : x) d.push_back(absolute ? std::fabs(double(v)) : double(v));
  return d;
}

struct clipped {
  double below, above, outside_abs;  // fractions
};

clipped clipped_fraction(const std::vector<float>& x, pare::observed_range r) {
  std::size_t b = 0, a = 0, o = 0;
  for (float v : x) {
    b += v < r.lo;
    a += v > r.hi;
    o += std::fabs(v) > r.hi;
  }
  const double n = double(x.size());
  return {double(b) / n, double(a) / n, double(o) / n};
}
}  // namespace

TEST_CASE("percentile_observer (exact mode) equals numpy's linear percentile of a sorted float64 copy") {
  std::uint64_t seed = 10;
  for (std::size_t n : {1u, 2u, 3u, 5u, 16u, 17u, 100u, 1001u, 10007u}) {
    const auto x = pare_test::gaussian(n, seed++, 1.5, 0.2);
    for (double p : {50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0, 25.0}) {
      const pare::percentile_observer proto(p);
      const double q = p / 100.0;
      INFO("n " << n << " p " << p);
      const auto ra = pare::observe_range(proto, x.data(), n, int4, asym);
      CHECK(ra.lo == static_cast<float>(obs_oracle::linear_percentile(to_double(x, false), std::min(q, 1 - q))));
      CHECK(ra.hi == static_cast<float>(obs_oracle::linear_percentile(to_double(x, false), std::max(q, 1 - q))));
      const auto rs = pare::observe_range(proto, x.data(), n, int4, sym);
      CHECK(rs.hi == static_cast<float>(obs_oracle::linear_percentile(to_double(x, true), q)));
      CHECK(rs.lo == -rs.hi);
    }
  }
}

TEST_CASE("percentile_observer clips the stated fraction (exact mode, within 1/n)") {
  const std::size_t n = 20011;
  const auto x = pare_test::gaussian(n, 42);
  for (double p : {90.0, 99.0, 99.9, 99.99}) {
    const double f = 1.0 - p / 100.0;
    const auto rs = pare::observe_range(pare::percentile_observer{p}, x.data(), n, int4, sym);
    const auto ra = pare::observe_range(pare::percentile_observer{p}, x.data(), n, int4, asym);
    INFO("p " << p);
    CHECK(std::fabs(clipped_fraction(x, rs).outside_abs - f) <= 1.0 / n + 1e-12);
    CHECK(std::fabs(clipped_fraction(x, ra).below - f) <= 1.0 / n + 1e-12);
    CHECK(std::fabs(clipped_fraction(x, ra).above - f) <= 1.0 / n + 1e-12);
  }
  // p = 100 is the minmax range.
  const auto r = pare::observe_range(pare::percentile_observer{100.0}, x.data(), n, int4, asym);
  CHECK(r.lo == *std::min_element(x.begin(), x.end()));
  CHECK(r.hi == *std::max_element(x.begin(), x.end()));
}

TEST_CASE("percentile_observer clips the stated fraction in histogram mode (within bin resolution)") {
  const std::size_t n = 200000, batch = 10000;
  // Gaussian batches whose spread grows, so the histogram has to grow on both sides.
  std::vector<float> x;
  for (std::size_t b = 0; b < n / batch; ++b) {
    const auto g = pare_test::gaussian(batch, 500 + b, 0.5 + 0.05 * double(b), 0.1);
    x.insert(x.end(), g.begin(), g.end());
  }
  const double mn = *std::min_element(x.begin(), x.end()), mx = *std::max_element(x.begin(), x.end());
  // The grown histogram spans at most 4x the data range: bins are at most this wide.
  const double w = 4.0 * (mx - mn) / 2048.0;
  auto mass_near = [&](double t) {
    std::size_t c = 0;
    for (float v : x) c += std::fabs(double(v) - t) <= w;
    return double(c) / double(n);
  };
  auto mass_near_abs = [&](double t) {
    std::size_t c = 0;
    for (float v : x) c += std::fabs(std::fabs(double(v)) - t) <= w;
    return double(c) / double(n);
  };
  for (double p : {99.0, 99.9, 99.99}) {
    pare::percentile_observer o(p, 5000);
    for (std::size_t i = 0; i < n; i += batch) o.observe(x.data() + i, batch);
    REQUIRE_FALSE(o.exact());
    REQUIRE(o.count() == n);
    const double f = 1.0 - p / 100.0;
    const auto ra = o.range(int4, asym), rs = o.range(int4, sym);
    const clipped ca = clipped_fraction(x, ra), cs = clipped_fraction(x, rs);
    INFO("p " << p << " asym [" << ra.lo << ", " << ra.hi << "] sym " << rs.hi << " bin width <= " << w);
    CHECK(std::fabs(ca.below - f) <= mass_near(ra.lo) + 1.0 / n);
    CHECK(std::fabs(ca.above - f) <= mass_near(ra.hi) + 1.0 / n);
    CHECK(std::fabs(cs.outside_abs - f) <= mass_near_abs(rs.hi) + 1.0 / n);
    // ... and lands within a bin of the exact answer.
    const auto ea = pare::observe_range(pare::percentile_observer{p}, x.data(), n, int4, asym);
    const auto es = pare::observe_range(pare::percentile_observer{p}, x.data(), n, int4, sym);
    CHECK(std::fabs(ra.lo - ea.lo) <= w);
    CHECK(std::fabs(ra.hi - ea.hi) <= w);
    CHECK(std::fabs(rs.hi - es.hi) <= w);
    CHECK(ra.lo >= mn);
    CHECK(ra.hi <= mx);
  }
}

TEST_CASE("percentile_observer streams: batches equal one batch in exact mode") {
  const auto x = pare_test::gaussian(5000, 9);
  pare::percentile_observer o(99.5);
  for (std::size_t i = 0; i < x.size(); i += 333) o.observe(x.data() + i, std::min<std::size_t>(333, x.size() - i));
  REQUIRE(o.exact());
  for (auto s : {sym, asym}) {
    const auto one = pare::observe_range(pare::percentile_observer{99.5}, x.data(), x.size(), int4, s);
    CHECK(o.range(int4, s).lo == one.lo);
    CHECK(o.range(int4, s).hi == one.hi);
  }
}

TEST_CASE("percentile_observer switches to the histogram exactly past exact_limit") {
  const auto x = pare_test::uniform(100, 4);
  pare::percentile_observer o(99.0, 100);
  o.observe(x.data(), 60);
  o.observe(x.data() + 60, 40);
  CHECK(o.exact());
  o.observe(x.data(), 1);
  CHECK_FALSE(o.exact());
  const auto r = o.range(int4, asym);
  CHECK(r.lo <= r.hi);
  CHECK(r.lo >= *std::min_element(x.begin(), x.end()));
  CHECK(r.hi <= *std::max_element(x.begin(), x.end()));
  // exact_limit = 0: a histogram from the first value; constant data stays exact.
  const float c[5] = {2.5f, 2.5f, 2.5f, 2.5f, 2.5f};
  const auto rc = pare::observe_range(pare::percentile_observer{99.0, 0}, c, 5, int4, asym);
  CHECK(rc.lo == 2.5f);
  CHECK(rc.hi == 2.5f);
  CHECK(pare::observe_range(pare::percentile_observer{99.0, 0}, c, 5, int4, sym).hi == 2.5f);
}

TEST_CASE("percentile_observer validates 'percentile'") {
  CHECK_THROWS_WITH(pare::percentile_observer(0.0), Catch::Contains("'percentile'") && Catch::Contains("(0, 100]"));
  CHECK_THROWS_AS(pare::percentile_observer(100.5), pare::argument_error);
  CHECK_THROWS_AS(pare::percentile_observer(-3.0), pare::argument_error);
  CHECK_THROWS_AS(pare::percentile_observer(std::nan("")), pare::argument_error);
  CHECK_NOTHROW(pare::percentile_observer(100.0));
  CHECK_NOTHROW(pare::percentile_observer(1e-9));
}
