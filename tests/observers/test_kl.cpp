// Tests of kl_observer against a dense float64 re-implementation of the TensorRT/MXNet entropy search.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "observer_oracle.hpp"
#include "observers_test_support.hpp"
#include "pare/stats/observers.hpp"
#include "pare_test_support.hpp"

namespace {

using observers_test::asym;
using observers_test::sym;

/// The candidate index behind threshold t (t = min((i + 0.5)·w, max|x|)).
std::size_t index_of(double t, double w, std::size_t bins) {
  if (t >= w * double(bins) * (1 - 1e-6)) return bins;
  return static_cast<std::size_t>(std::lround(t / w - 0.5));
}

struct reference {
  std::vector<double> kl;  // kl[i] for i in [first, bins], +inf elsewhere
  std::size_t argmin;
};

reference dense_search(const std::vector<double>& h, std::size_t levels) {
  const std::size_t bins = h.size();
  reference r{std::vector<double>(bins + 1, std::numeric_limits<double>::infinity()), bins};
  double best = std::numeric_limits<double>::infinity();
  for (std::size_t i = std::min(levels, bins); i <= bins; ++i) {
    r.kl[i] = obs_oracle::kl_at(h, i, levels);
    if (r.kl[i] < best) {
      best = r.kl[i];
      r.argmin = i;
    }
  }
  return r;
}

}  // namespace

TEST_CASE("kl_observer: Gaussian data with huge outliers clips well below max|x| at the float64 KL minimum") {
  const std::size_t n = 20000;
  const auto x = obs_oracle::gaussian_with_outliers(n, 31, 6, 40.0);
  double amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(double(v)));
  for (std::size_t bins : {512u, 2048u}) {
    double w;
    const auto h = obs_oracle::abs_histogram(x, bins, w);
    for (int bits : {8, 6, 4, 3, 2}) {
      const pare::int_format fmt{bits, true};
      const auto r = pare::observe_range(pare::kl_observer{int(bins)}, x.data(), n, fmt, sym);
      const std::size_t levels = std::size_t(1) << (bits - 1);
      const reference ref = dense_search(h, levels);
      const std::size_t i = index_of(r.hi, w, bins);
      INFO("bins " << bins << " bits " << bits << " threshold " << r.hi << " max|x| " << amax << " index " << i
                   << " reference argmin " << ref.argmin);
      CHECK(r.lo == -r.hi);
      CHECK(r.hi < 0.5 * amax);
      CHECK(r.hi == static_cast<float>(std::min((double(i) + 0.5) * w, amax)));
      CHECK(ref.kl[i] <= ref.kl[bins]);
      CHECK(ref.kl[i] <= ref.kl[ref.argmin] * (1 + 1e-9) + 1e-15);  // the global minimum
      CHECK(i == ref.argmin);
    }
  }
}

TEST_CASE("kl_observer agrees with the dense search on heavy-tailed and small data") {
  std::uint64_t seed = 60;
  for (std::size_t n : {1u, 2u, 5u, 17u, 128u, 3000u}) {
    const auto x = obs_oracle::student_t3(n, seed++);
    for (int bits : {2, 4, 8}) {
      double w;
      const std::size_t bins = 256;
      const auto h = obs_oracle::abs_histogram(x, bins, w);
      const auto r = pare::observe_range(pare::kl_observer{int(bins)}, x.data(), n, pare::int_format{bits, true}, sym);
      const reference ref = dense_search(h, std::size_t(1) << (bits - 1));
      const std::size_t i = index_of(r.hi, w, bins);
      INFO("n " << n << " bits " << bits << " index " << i << " reference " << ref.argmin);
      CHECK(ref.kl[i] <= ref.kl[ref.argmin] * (1 + 1e-9) + 1e-15);
    }
  }
}

TEST_CASE("kl_observer keeps nearly the whole range of uniform data") {
  const auto x = pare_test::uniform(50000, 8, -2.0, 2.0);
  double amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(double(v)));
  for (int bits : {8, 4}) {
    const auto r = pare::observe_range(pare::kl_observer{}, x.data(), x.size(), pare::int_format{bits, true}, sym);
    INFO("bits " << bits << " threshold " << r.hi << " max " << amax);
    CHECK(r.hi >= 0.9 * amax);
    CHECK(r.hi <= amax);
  }
}

TEST_CASE("kl_observer: the asymmetric range is [max(min, -t), min(max, t)]") {
  auto x = obs_oracle::gaussian_with_outliers(10000, 12, 4, 30.0);
  for (auto& v : x) v = v + 2.0f;  // skewed: min ~ -2, max ~ 32
  const float mn = *std::min_element(x.begin(), x.end()), mx = *std::max_element(x.begin(), x.end());
  const pare::int_format fmt{8, false};
  const auto rs = pare::observe_range(pare::kl_observer{}, x.data(), x.size(), fmt, sym);
  const auto ra = pare::observe_range(pare::kl_observer{}, x.data(), x.size(), fmt, asym);
  const float t = rs.hi;
  CHECK(ra.lo == std::max(mn, -t));
  CHECK(ra.hi == std::min(mx, t));
  // Post-ReLU style data: lo is the minimum.
  std::vector<float> relu(x);
  for (auto& v : relu) v = std::max(v - 2.0f, 0.0f);
  const auto rr = pare::observe_range(pare::kl_observer{}, relu.data(), relu.size(), fmt, asym);
  CHECK(rr.lo == 0.0f);
  CHECK(rr.hi > 0.0f);
}

TEST_CASE("kl_observer streams: batches equal one batch in exact mode, histogram mode stays close") {
  const auto x = obs_oracle::gaussian_with_outliers(40000, 5, 10, 25.0);
  const pare::int_format fmt{8, true};
  pare::kl_observer o;
  for (std::size_t i = 0; i < x.size(); i += 3001) o.observe(x.data() + i, std::min<std::size_t>(3001, x.size() - i));
  const auto one = pare::observe_range(pare::kl_observer{}, x.data(), x.size(), fmt, sym);
  CHECK(o.range(fmt, sym).hi == one.hi);
  // Histogram mode: batches of growing spread force the |x| histogram to merge bins.
  pare::kl_observer h(2048, 1000);
  for (std::size_t i = 0; i < x.size(); i += 3001) h.observe(x.data() + i, std::min<std::size_t>(3001, x.size() - i));
  REQUIRE_FALSE(h.exact());
  // KL thresholds depend on the bin grid (here about twice as coarse after growing), so
  // compare what matters: the float64 KL, on the exact histogram, at both thresholds.
  double w;
  const auto hist = obs_oracle::abs_histogram(x, 2048, w);
  const float th = h.range(fmt, sym).hi;
  const double kl_exact = obs_oracle::kl_at(hist, index_of(one.hi, w, 2048), 128);
  const double kl_hist = obs_oracle::kl_at(hist, index_of(th, w, 2048), 128);
  INFO("exact " << one.hi << " (KL " << kl_exact << ") histogram " << th << " (KL " << kl_hist << ")");
  CHECK(std::fabs(th - one.hi) <= 0.15 * one.hi);
  CHECK(kl_hist <= 1.25 * kl_exact);
  CHECK(kl_hist < 0.5 * obs_oracle::kl_at(hist, 2048, 128));
}

TEST_CASE("kl_observer validates 'bins'") {
  CHECK_THROWS_WITH(pare::kl_observer(0), Catch::Contains("'bins'") && Catch::Contains("got 0"));
  CHECK_THROWS_AS(pare::kl_observer((1 << 24) + 1), pare::argument_error);
  CHECK_NOTHROW(pare::kl_observer(1));
  const float v[3] = {1.0f, -2.0f, 0.5f};
  const auto r = pare::observe_range(pare::kl_observer{1}, v, 3, pare::int_format{8, true}, sym);
  CHECK(r.hi == 2.0f);
}
