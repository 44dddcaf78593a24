// Observer storage: exact values up to a limit, then a fixed-size histogram that grows by merging bin pairs.
#pragma once

// streaming_histogram: B bins of equal width w starting at `origin`, covering
// [origin, origin + B·w]. A value v falls in bin floor((v - origin) / w), clamped to
// [0, B-1] (so the upper edge belongs to the last bin). The first data fixes origin and
// w from its [min, max], with margins of (max - min)·2^-41 so that no extreme sits on an
// edge. When later data falls outside, the width doubles and adjacent bin pairs merge
// (as PyTorch's HistogramObserver grows its range), extending the range to the right,
// or to the left with the old range becoming the upper half (B even). Bin edges of the
// grown histogram are edges of the old one, so growing loses resolution but never
// misplaces mass: the counts equal those of binning all the data at the end (up to
// rounding of a value lying exactly on an inner edge). A histogram whose data so far is
// one repeated value has w = 0 (a point mass at `origin`); the next distinct value
// re-bins that mass exactly.
// An `absolute` histogram bins |v| with the origin pinned at 0 (the KL observer's).
//
// sample_store: what percentile, mse and kl keep. It stores the values themselves while
// at most `exact_limit` have been observed (exact mode) and then moves them, for good,
// into a streaming_histogram (histogram mode). It always knows the exact count, min and max.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "pare/stats/observers/observer.hpp"

PARE_NAMESPACE_BEGIN
namespace detail {

class streaming_histogram {
 public:
  /// Empty histogram of `bins` bins (bins ≥ 1; left growth needs an even count). The
  /// first cover() or add() places it.
  void start(std::size_t bins) {
    counts_.assign(bins, 0.0);
    origin_ = 0.0;
    width_ = 0.0;
    total_ = 0.0;
    placed_ = false;
  }

  std::size_t bins() const noexcept { return counts_.size(); }
  double origin() const noexcept { return origin_; }
  /// Bin width; 0 while all data equals origin().
  double width() const noexcept { return width_; }
  double total() const noexcept { return total_; }
  const std::vector<double>& counts() const noexcept { return counts_; }
  /// Upper edge of the last bin.
  double top() const noexcept { return origin_ + static_cast<double>(bins()) * width_; }

  /// Bin of v (clamped to the histogram).
  std::size_t bin_of(double v) const noexcept {
    if (width_ == 0.0) return 0;
    const double f = (v - origin_) / width_;
    if (!(f > 0.0)) return 0;
    return std::min(static_cast<std::size_t>(f), bins() - 1);
  }

  /// Adds n values (|x| when `absolute`), growing the range to hold them.
  void add(const float* x, std::size_t n, bool absolute) {
    if (n == 0) return;
    double lo = INFINITY, hi = -INFINITY;
    for (std::size_t i = 0; i < n; ++i) {
      const double v = absolute ? std::fabs(double(x[i])) : double(x[i]);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    if (absolute) lo = 0.0;
    cover(lo, hi, absolute);
    if (width_ == 0.0) {
      counts_[0] += static_cast<double>(n);
    } else {
      for (std::size_t i = 0; i < n; ++i) counts_[bin_of(absolute ? std::fabs(double(x[i])) : double(x[i]))] += 1.0;
    }
    total_ += static_cast<double>(n);
  }

  /// Grows the range (never shrinks) so that it contains [lo, hi] (lo = 0 when absolute).
  void cover(double lo, double hi, bool absolute) {
    if (!placed_) {
      place(lo, hi, absolute);
      placed_ = true;
      return;
    }
    if (width_ == 0.0) {  // point mass at origin_: re-bin it exactly
      if (lo >= origin_ && hi <= origin_) return;
      const double point = origin_;
      std::fill(counts_.begin(), counts_.end(), 0.0);
      place(std::min(lo, point), std::max(hi, point), absolute);
      counts_[bin_of(point)] = total_;
      return;
    }
    while (lo < origin_) grow_left();
    while (hi > top()) grow_right();
  }

 private:
  /// Places [lo, hi] a hair inside the bins (margins of (hi - lo)·2^-41; none below an
  /// absolute histogram's 0), so that no observed extreme sits on an outer edge, which a
  /// later merge could move it across.
  void place(double lo, double hi, bool absolute) noexcept {
    const double margin = (hi - lo) * 0x1p-41;
    origin_ = absolute ? 0.0 : lo - margin;
    width_ = (hi + margin - origin_) / static_cast<double>(bins());
  }

  /// Doubles the width keeping the origin: old bins 2k, 2k+1 become new bin k.
  void grow_right() {
    const std::size_t b = bins();
    for (std::size_t k = 0; k < b; ++k) {
      double c = 0.0;
      if (2 * k < b) c += counts_[2 * k];
      if (2 * k + 1 < b) c += counts_[2 * k + 1];
      counts_[k] = c;  // reads indices ≥ k only: in place is safe
    }
    width_ *= 2.0;
  }

  /// Doubles the width moving the origin down by B·w: old bins 2k, 2k+1 become new
  /// bin B/2 + k (the old range is the upper half of the new one).
  void grow_left() {
    const std::size_t b = bins(), h = b / 2;
    std::vector<double> merged(b, 0.0);
    for (std::size_t k = 0; k < h; ++k) merged[h + k] = counts_[2 * k] + counts_[2 * k + 1];
    counts_.swap(merged);
    origin_ -= static_cast<double>(b) * width_;
    width_ *= 2.0;
  }

  std::vector<double> counts_;
  double origin_ = 0.0;
  double width_ = 0.0;
  double total_ = 0.0;
  bool placed_ = false;  // origin and width are set
};

/// The mass ≤ v of a streaming_histogram read as uniform within each bin, and its inverse.
class histogram_cdf {
 public:
  explicit histogram_cdf(const streaming_histogram& h) : h_(h), prefix_(h.bins() + 1, 0.0) {
    for (std::size_t i = 0; i < h.bins(); ++i) prefix_[i + 1] = prefix_[i] + h.counts()[i];
  }

  double total() const noexcept { return prefix_.back(); }

  /// Mass at or below v.
  double at(double v) const noexcept {
    if (h_.width() == 0.0) return v < h_.origin() ? 0.0 : total();
    const double f = (v - h_.origin()) / h_.width();
    if (!(f > 0.0)) return 0.0;
    if (f >= static_cast<double>(h_.bins())) return total();
    const std::size_t i = static_cast<std::size_t>(f);
    return prefix_[i] + (f - static_cast<double>(i)) * h_.counts()[i];
  }

  /// The smallest v with at(v) = m, for 0 ≤ m ≤ total().
  double inverse(double m) const noexcept {
    if (h_.width() == 0.0) return h_.origin();
    const std::size_t b = h_.bins();
    // first bin i with prefix_[i+1] ≥ m and a non-zero count
    std::size_t i =
        static_cast<std::size_t>(std::lower_bound(prefix_.begin() + 1, prefix_.end(), m) - prefix_.begin()) - 1;
    if (i >= b) i = b - 1;
    while (i + 1 < b && h_.counts()[i] == 0.0) ++i;
    const double c = h_.counts()[i];
    const double frac = c > 0.0 ? std::clamp((m - prefix_[i]) / c, 0.0, 1.0) : 0.0;
    return h_.origin() + (static_cast<double>(i) + frac) * h_.width();
  }

 private:
  const streaming_histogram& h_;
  std::vector<double> prefix_;
};

class sample_store {
 public:
  /// `absolute`: the histogram holds |x| (origin pinned at 0).
  explicit sample_store(bool absolute = false) noexcept : absolute_(absolute) {}

  /// Forgets all data (keeps the values' capacity for reuse).
  void clear() noexcept {
    values_.clear();
    hist_ = streaming_histogram();
    exact_ = true;
    count_ = 0;
    mm_ = min_max();
  }

  /// Adds n finite values; switches to a histogram of `bins` bins once more than
  /// `exact_limit` values have been observed.
  void add(const float* x, std::size_t n, std::size_t exact_limit, std::size_t bins) {
    if (n == 0) return;
    min_max run;
    run.add(x, n);
    if (exact_ && values_.size() + n <= exact_limit) {
      values_.insert(values_.end(), x, x + n);
    } else {
      if (exact_) {
        streaming_histogram h;
        h.start(bins);
        min_max all = mm_;
        all.add(run);
        if (absolute_)
          h.cover(0.0, all.absmax(), true);
        else
          h.cover(all.lo, all.hi, false);
        h.add(values_.data(), values_.size(), absolute_);
        hist_ = std::move(h);
        std::vector<float>().swap(values_);
        exact_ = false;
      }
      hist_.add(x, n, absolute_);
    }
    count_ += n;
    mm_.add(run);
  }

  std::size_t count() const noexcept { return count_; }
  bool exact() const noexcept { return exact_; }
  float min() const noexcept { return mm_.lo; }
  float max() const noexcept { return mm_.hi; }
  float absmax() const noexcept { return mm_.absmax(); }
  /// The stored values (exact mode), in observation order.
  const std::vector<float>& values() const noexcept { return values_; }
  /// The histogram (histogram mode).
  const streaming_histogram& histogram() const noexcept { return hist_; }

 private:
  std::vector<float> values_;
  streaming_histogram hist_;
  bool absolute_;
  bool exact_ = true;
  std::size_t count_ = 0;
  min_max mm_;
};

}  // namespace detail
PARE_NAMESPACE_END
