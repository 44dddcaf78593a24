// Tests of minmax_observer and ema_minmax_observer against std::minmax_element and a float64 EMA recurrence.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "observer_oracle.hpp"
#include "observers_test_support.hpp"
#include "pare/stats/observers.hpp"
#include "pare_test_support.hpp"

namespace {
const pare::int_format int8{8, true};
using observers_test::asym;
using observers_test::sym;
}  // namespace

TEST_CASE("minmax_observer equals std::min_element / std::max_element") {
  std::uint64_t seed = 1;
  for (std::size_t n = 1; n <= 17; ++n) {
    const auto x = pare_test::gaussian(n, seed++, 2.0, 0.5);
    const auto r = pare::observe_range(pare::minmax_observer{}, x.data(), n, int8, asym);
    CHECK(r.lo == *std::min_element(x.begin(), x.end()));
    CHECK(r.hi == *std::max_element(x.begin(), x.end()));
    CHECK(pare::observe_range(pare::minmax_observer{}, x.data(), n, int8, sym).lo == r.lo);
  }
  for (std::size_t n : {31u, 32u, 33u, 63u, 64u, 65u, 127u, 128u, 129u, 4096u, 100003u}) {
    const auto x = pare_test::uniform(n, seed++, -3.0, 7.0);
    const auto r = pare::observe_range(pare::minmax_observer{}, x.data(), n, int8, asym);
    CHECK(r.lo == *std::min_element(x.begin(), x.end()));
    CHECK(r.hi == *std::max_element(x.begin(), x.end()));
  }
}

TEST_CASE("minmax_observer streams: batches give the same range as one batch") {
  const auto x = pare_test::gaussian(1000, 7);
  pare::minmax_observer o;
  for (std::size_t i = 0; i < x.size(); i += 77) o.observe(x.data() + i, std::min<std::size_t>(77, x.size() - i));
  const auto one = pare::observe_range(pare::minmax_observer{}, x.data(), x.size(), int8, asym);
  CHECK(o.range(int8, asym).lo == one.lo);
  CHECK(o.range(int8, asym).hi == one.hi);
  o.reset();
  CHECK_THROWS_AS(o.range(int8, asym), pare::error);
}

TEST_CASE("ema_minmax_observer follows the float64 recurrence over several batches") {
  for (float m : {0.01f, 0.1f, 0.5f, 1.0f, 0.0f}) {
    pare::ema_minmax_observer o(m);
    double lo = 0, hi = 0;
    for (int b = 0; b < 12; ++b) {
      const auto x = pare_test::gaussian(64 + 13 * b, 100 + b, 1.0 + 0.3 * b, 0.1 * b);
      const double bmin = *std::min_element(x.begin(), x.end()), bmax = *std::max_element(x.begin(), x.end());
      if (b == 0) {
        lo = bmin;
        hi = bmax;
      } else {
        lo = (1.0 - double(m)) * lo + double(m) * bmin;
        hi = (1.0 - double(m)) * hi + double(m) * bmax;
      }
      o.observe(x.data(), x.size());
      const auto r = o.range(int8, sym);
      INFO("momentum " << m << " batch " << b);
      CHECK(r.lo == Approx(lo).epsilon(1e-6).margin(1e-6));
      CHECK(r.hi == Approx(hi).epsilon(1e-6).margin(1e-6));
      CHECK(r.lo <= r.hi);
    }
  }
}

TEST_CASE("ema_minmax_observer on one batch is minmax, a strided view is one batch") {
  const auto x = pare_test::gaussian(300, 3);
  const auto a = pare::observe_range(pare::ema_minmax_observer{0.3f}, x.data(), x.size(), int8, asym);
  const auto b = pare::observe_range(pare::minmax_observer{}, x.data(), x.size(), int8, asym);
  CHECK(a.lo == b.lo);
  CHECK(a.hi == b.hi);

  // Column 1 of a 100x3 matrix: 100 strided values in one observe() call = one batch
  // (the view is read through a small buffer, in several runs, but updates the EMA once).
  std::vector<float> col;
  for (std::size_t i = 0; i < 100; ++i) col.push_back(x[i * 3 + 1]);
  pare::ema_minmax_observer e(0.5f);
  const float first[2] = {-0.01f, 0.01f};
  e.observe(first, 2);
  e.observe(pare::matrix_view<const float>(x.data(), 100, 3).col(1));
  const double cmin = *std::min_element(col.begin(), col.end()), cmax = *std::max_element(col.begin(), col.end());
  CHECK(e.range(int8, asym).lo == Approx(0.5 * -0.01f + 0.5 * cmin).epsilon(1e-6));
  CHECK(e.range(int8, asym).hi == Approx(0.5 * 0.01f + 0.5 * cmax).epsilon(1e-6));
  // An empty batch changes nothing.
  e.observe(x.data(), 0);
  CHECK(e.range(int8, asym).lo == Approx(0.5 * -0.01f + 0.5 * cmin).epsilon(1e-6));
}

TEST_CASE("ema_minmax_observer rejects a bad momentum by name") {
  CHECK_THROWS_AS(pare::ema_minmax_observer(-0.1f), pare::argument_error);
  CHECK_THROWS_WITH(pare::ema_minmax_observer(1.5f), Catch::Contains("'momentum'") && Catch::Contains("1.5"));
  CHECK_THROWS_WITH(pare::ema_minmax_observer(std::nanf("")), Catch::Contains("'momentum'"));
  CHECK(pare::ema_minmax_observer().momentum() == 0.01f);
}
