// Tests of the observers' streaming histogram: growth by merging bin pairs equals direct binning; point masses; the
// CDF.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "pare/stats/observers/histogram.hpp"
#include "pare_test_support.hpp"

namespace {

/// Counts of x binned directly with the histogram's final origin and width.
std::vector<double> direct(const std::vector<float>& x, const pare::detail::streaming_histogram& h, bool absolute) {
  std::vector<double> c(h.bins(), 0.0);
  for (float v : x) c[h.bin_of(absolute ? std::fabs(double(v)) : double(v))] += 1;
  return c;
}

}  // namespace

TEST_CASE("streaming_histogram grows left and right by merging pairs, as if binned at the end") {
  for (bool absolute : {false, true}) {
    pare::detail::streaming_histogram h;
    h.start(2048);
    std::vector<float> all;
    // Batches that widen the range on both sides (by factors up to 40), and one far jump.
    const double spreads[] = {0.3, 0.35, 1.0, 1.1, 4.0, 0.5, 12.0, 3.0};
    const double shifts[] = {0.0, 0.2, -0.5, 0.0, 1.0, 0.0, -3.0, 30.0};
    for (int b = 0; b < 8; ++b) {
      const auto g = pare_test::gaussian(5000, 70 + b, spreads[b], shifts[b]);
      h.add(g.data(), g.size(), absolute);
      all.insert(all.end(), g.begin(), g.end());
      INFO("absolute " << absolute << " batch " << b << " origin " << h.origin() << " width " << h.width());
      REQUIRE(h.total() == double(all.size()));
      const auto want = direct(all, h, absolute);
      std::size_t mismatched = 0;
      for (std::size_t i = 0; i < h.bins(); ++i) mismatched += h.counts()[i] != want[i];
      CHECK(mismatched == 0);
      // The range covers every value.
      for (float v : all) {
        const double a = absolute ? std::fabs(double(v)) : double(v);
        REQUIRE(a >= h.origin());
        REQUIRE(a <= h.top());
      }
    }
    if (absolute) CHECK(h.origin() == 0.0);
  }
}

TEST_CASE("streaming_histogram: a point mass re-bins exactly when a second value arrives") {
  pare::detail::streaming_histogram h;
  h.start(16);
  const std::vector<float> c(10, 2.0f);
  h.add(c.data(), c.size(), false);
  CHECK(h.width() == 0.0);
  CHECK(h.counts()[0] == 10);
  const float more[2] = {2.0f, 2.0f};
  h.add(more, 2, false);
  CHECK(h.width() == 0.0);
  const float other[1] = {-2.0f};
  h.add(other, 1, false);
  CHECK(h.origin() == Approx(-2.0).epsilon(1e-9));
  CHECK(h.width() == Approx(0.25).epsilon(1e-9));
  CHECK(h.counts()[0] == 1);
  CHECK(h.counts()[15] == 12);  // 2.0 is the top edge: last bin
  CHECK(h.total() == 13);
}

TEST_CASE("histogram_cdf: at() and inverse() agree and interpolate within bins") {
  pare::detail::streaming_histogram h;
  h.start(4);
  const float x[8] = {0.1f, 0.2f, 1.5f, 1.6f, 1.7f, 1.8f, 3.9f, 4.0f};
  h.add(x, 8, false);  // origin 0.1, width 0.975
  const pare::detail::histogram_cdf cdf(h);
  CHECK(cdf.total() == 8);
  CHECK(cdf.at(h.origin()) == 0);
  CHECK(cdf.at(h.top()) == 8);
  for (double m : {0.5, 1.0, 2.0, 3.3, 6.0, 7.9}) {
    const double v = cdf.inverse(m);
    CHECK(cdf.at(v) == Approx(m).epsilon(1e-12));
  }
}

TEST_CASE("sample_store keeps values up to exact_limit, then a histogram with exact count, min and max") {
  pare::detail::sample_store s;
  const auto x = pare_test::gaussian(1000, 9);
  s.add(x.data(), 500, 600, 2048);
  CHECK(s.exact());
  CHECK(s.values().size() == 500);
  s.add(x.data() + 500, 100, 600, 2048);
  CHECK(s.exact());
  s.add(x.data() + 600, 400, 600, 2048);
  CHECK_FALSE(s.exact());
  CHECK(s.values().empty());
  CHECK(s.count() == 1000);
  CHECK(s.histogram().total() == 1000);
  CHECK(s.min() == *std::min_element(x.begin(), x.end()));
  CHECK(s.max() == *std::max_element(x.begin(), x.end()));
  s.clear();
  CHECK(s.exact());
  CHECK(s.count() == 0);
}
