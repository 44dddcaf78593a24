// percentile_observer: clips the stated fraction of the data, from exact order statistics or a histogram.
#pragma once

// With p = percentile and q = p / 100:
//   asymmetric scheme  lo = P(min(q, 1 - q)), hi = P(max(q, 1 - q)) of the values x,
//                      i.e. [P(1 - q), P(q)] for the usual p ≥ 50: a fraction ≈ 1 - q
//                      of the data lies below lo and as much above hi;
//   symmetric scheme   hi = P(q) of |x|, lo = -hi: a fraction ≈ 1 - q has |x| > hi.
// p = 100 gives the minmax range (max |x| for the symmetric scheme).
//
// Exact mode (at most exact_limit values observed, default 2^20): P is numpy's default
// "linear" percentile: with the n values sorted, a = x(k), b = x(k+1) at position
// q·(n - 1) = k + f, P = a + f·(b - a) in double, rounded once to float. Found with
// nth_element on a copy, O(n).
// Histogram mode (more values; 2048 bins, see histogram.hpp): P inverts the histogram's
// cumulative mass read as uniform within bins, at mass q·n; for |x| the mass of
// [-t, t] is solved for t by bisection. The error is within one bin width. Both modes
// clamp the result to the observed [min, max] (resp. max |x|).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "pare/stats/observers/histogram.hpp"

PARE_NAMESPACE_BEGIN

class percentile_observer : public detail::observer_base<percentile_observer> {
 public:
  static constexpr const char* name = "percentile";
  static constexpr const char* type_name = "percentile_observer";
  static constexpr double default_percentile = 99.99;
  static constexpr std::size_t default_exact_limit = std::size_t(1) << 20;
  static constexpr std::size_t histogram_bins = 2048;

  percentile_observer() = default;

  /// percentile in (0, 100]; exact_limit values are stored before switching to a histogram.
  explicit percentile_observer(double percentile, std::size_t exact_limit = default_exact_limit)
      : percentile_(percentile), exact_limit_(exact_limit) {
    if (!(percentile > 0.0 && percentile <= 100.0))
      detail::fail<argument_error>("percentile_observer: argument 'percentile': expected a value in (0, 100], got ",
                                   percentile);
  }

  double percentile() const noexcept { return percentile_; }
  std::size_t exact_limit() const noexcept { return exact_limit_; }
  /// Number of values observed since the last reset.
  std::size_t count() const noexcept { return store_.count(); }
  /// True while every observed value is stored (exact order statistics).
  bool exact() const noexcept { return store_.exact(); }

  void reset() noexcept { store_.clear(); }

  observed_range range(int_format fmt, scheme_kind scheme) const {
    check_range_call(store_.count() > 0, fmt);
    const double q = percentile_ / 100.0;
    if (scheme == scheme_kind::symmetric) {
      const double a =
          std::min(store_.exact() ? exact_abs_percentile(q) : histogram_abs_percentile(q), double(store_.absmax()));
      const float hi = static_cast<float>(a);
      return observed_range{-hi, hi};
    }
    const double ql = std::min(q, 1.0 - q), qh = std::max(q, 1.0 - q);
    double lo, hi;
    if (store_.exact()) {
      std::vector<float> v(store_.values());
      lo = linear_percentile(v, ql);
      hi = linear_percentile(v, qh);
    } else {
      const detail::histogram_cdf cdf(store_.histogram());
      lo = cdf.inverse(ql * cdf.total());
      hi = cdf.inverse(qh * cdf.total());
    }
    lo = std::clamp(lo, double(store_.min()), double(store_.max()));
    hi = std::clamp(hi, lo, double(store_.max()));
    return observed_range{static_cast<float>(lo), static_cast<float>(hi)};
  }

 private:
  friend class detail::observer_base<percentile_observer>;
  void accumulate(const float* x, std::size_t n) { store_.add(x, n, exact_limit_, histogram_bins); }

  /// numpy's "linear" percentile of v at q in [0, 1]; reorders v.
  static double linear_percentile(std::vector<float>& v, double q) {
    const double pos = q * static_cast<double>(v.size() - 1);
    const std::size_t k = std::min(static_cast<std::size_t>(pos), v.size() - 1);
    const double f = pos - static_cast<double>(k);
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    const double a = v[k];
    if (f == 0.0 || k + 1 == v.size()) return a;
    const double b = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(k) + 1, v.end());
    return a + f * (b - a);
  }

  double exact_abs_percentile(double q) const {
    std::vector<float> a(store_.values().size());
    std::transform(store_.values().begin(), store_.values().end(), a.begin(), [](float v) { return std::fabs(v); });
    return linear_percentile(a, q);
  }

  /// Smallest t ≥ 0 with mass(|x| ≤ t) ≥ q·n under the histogram (bisection).
  double histogram_abs_percentile(double q) const {
    const detail::histogram_cdf cdf(store_.histogram());
    const double target = q * cdf.total();
    double lo = 0.0, hi = store_.absmax();
    for (int it = 0; it < 200 && hi - lo > 0.0; ++it) {
      const double mid = 0.5 * (lo + hi);
      if (mid <= lo || mid >= hi) break;
      // mass in [-mid, mid]: cdf(mid) - cdf(-mid), with the point mass at -mid excluded
      // (no atoms in the within-bin-uniform model, except a point-mass histogram).
      if (cdf.at(mid) - cdf.at(std::nextafter(-mid, -INFINITY)) >= target)
        hi = mid;
      else
        lo = mid;
    }
    return hi;
  }

  double percentile_ = default_percentile;
  std::size_t exact_limit_ = default_exact_limit;
  detail::sample_store store_;
};

PARE_NAMESPACE_END
