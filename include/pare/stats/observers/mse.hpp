// mse_observer: the shrunk minmax range whose quantization has the least squared error (GPTQ's grid search).
#pragma once

// Candidates (GPTQ find_params with mse=True, grid = 100, maxshrink = 0.8):
//     α_i = 1 - i / grid,   i = 0, 1, ..., ⌊max_shrink · grid⌋  (at most grid - 1, so α > 0)
// (max_shrink is read with a relative tolerance of 2^-22, so 0.7f · 100 counts as 70.)
// As in GPTQ the range is first widened to contain 0 (lo = min(min, 0), hi = max(max, 0);
// both schemes do that anyway, so α = 1 gives exactly minmax's scale and zero point).
// Candidate i clips to [float(α_i·lo), float(α_i·hi)] (products in double, rounded
// once). Its error is
//     E_i = Σ (x - x')²,  x' = dequantize_value(quantize_value(x, inverse_scale(s), z, ...), s, z)
// with (s, z) = params_from_range(candidate, format, scheme): the same float operations
// the kernels perform (x' is computed as nearbyint(clamp(x·inv_s))·s, which is that
// expression), summed in double. The first candidate with the smallest E wins (a later
// one must be strictly smaller), so the result is never worse than minmax on the
// observed data. The returned range reproduces the winning (s, z) exactly.
//
// Exact mode (at most exact_limit values, default 2^20): E runs over the stored values
// in observation order, in blocks of 64 (eight partial sums each), so the result does
// not depend on how the data was split into batches; a candidate stops after the block
// where it can no longer win. Cost per range(): at most (⌊max_shrink·grid⌋ + 1)·n
// quantize/dequantize pairs (81·n by default; about 6 µs for n = 128 on one core).
// Histogram mode: E is estimated from the 2048 bin centres weighted by their counts
// (see histogram.hpp); min and max stay exact.

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "pare/stats/observers/histogram.hpp"

PARE_NAMESPACE_BEGIN

namespace detail {

/// nearbyint(v) for |v| ≤ 2^22: adding and subtracting 1.5·2^23 rounds to an integer
/// under the default round-to-nearest-even mode (the mode the kernels assume) and, unlike
/// a call to nearbyintf, vectorises. Under -ffast-math (which would fold it) or excess
/// float precision (x87), std::nearbyint.
inline float nearbyint_small(float v) noexcept {
#if defined(__FAST_MATH__) || (defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0)
  return std::nearbyint(v);
#else
  constexpr float magic = 12582912.0f;
  return (v + magic) - magic;
#endif
}

/// Σ w[i]·(x[i] - x'[i])² in double, x' = dequantize_value(quantize_value(x, inverse_scale(s),
/// z, qmin, qmax), s, z), i.e. x' = nearbyint(clamp(x·inv_s, qmin - z, qmax - z))·s with the
/// same float operations (the clamped v is within ±255, so nearbyint_small applies).
/// Eight partial sums keep the double additions independent.
template <bool Weighted>
double round_trip_error(const float* PARE_RESTRICT x, const double* PARE_RESTRICT w, std::size_t n, const qparams& p,
                        int_format fmt) noexcept {
  const float s = p.scale, inv = inverse_scale(p.scale);
  const float lo = float(fmt.qmin() - p.zero_point), hi = float(fmt.qmax() - p.zero_point);
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (std::size_t k = 0; k < 8; ++k) {
      const float v = std::min(std::max(x[i + k] * inv, lo), hi);
      const double e = double(x[i + k]) - double(nearbyint_small(v) * s);
      acc[k] += Weighted ? w[i + k] * e * e : e * e;
    }
  }
  double err = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) {
    const float v = std::min(std::max(x[i] * inv, lo), hi);
    const double e = double(x[i]) - double(nearbyint_small(v) * s);
    err += Weighted ? w[i] * e * e : e * e;
  }
  return err;
}

}  // namespace detail

class mse_observer : public detail::observer_base<mse_observer> {
 public:
  static constexpr const char* name = "mse";
  static constexpr const char* type_name = "mse_observer";
  static constexpr int default_grid = 100;
  static constexpr float default_max_shrink = 0.8f;
  static constexpr std::size_t default_exact_limit = std::size_t(1) << 20;
  static constexpr std::size_t histogram_bins = 2048;

  mse_observer() = default;

  /// grid ≥ 1 steps per unit of α; max_shrink in [0, 1) bounds the shrink (α ≥ 1 - max_shrink).
  explicit mse_observer(int grid, float max_shrink = default_max_shrink, std::size_t exact_limit = default_exact_limit)
      : grid_(grid), max_shrink_(max_shrink), exact_limit_(exact_limit) {
    if (grid < 1) detail::fail<argument_error>("mse_observer: argument 'grid': expected an integer >= 1, got ", grid);
    if (!(max_shrink >= 0.0f && max_shrink < 1.0f))
      detail::fail<argument_error>("mse_observer: argument 'max_shrink': expected a value in [0, 1), got ", max_shrink);
  }

  int grid() const noexcept { return grid_; }
  float max_shrink() const noexcept { return max_shrink_; }
  std::size_t exact_limit() const noexcept { return exact_limit_; }
  std::size_t count() const noexcept { return store_.count(); }
  bool exact() const noexcept { return store_.exact(); }

  /// Largest candidate index i (α = 1 - i/grid).
  int last_candidate() const noexcept {
    const double steps = std::floor(double(max_shrink_) * grid_ * (1.0 + 0x1p-22));
    return static_cast<int>(std::min(steps, double(grid_ - 1)));
  }

  void reset() noexcept { store_.clear(); }

  observed_range range(int_format fmt, scheme_kind scheme) const {
    check_range_call(store_.count() > 0, fmt);
    const float lo0 = std::min(store_.min(), 0.0f), hi0 = std::max(store_.max(), 0.0f);
    const double lo = lo0, hi = hi0;
    observed_range best{lo0, hi0};
    double best_err = std::numeric_limits<double>::infinity();
    std::vector<float> centres;
    std::vector<double> weights;
    if (!store_.exact()) histogram_points(centres, weights);
    const int last = last_candidate();
    for (int i = 0; i <= last; ++i) {
      const double a = 1.0 - double(i) / grid_;
      const observed_range c{static_cast<float>(a * lo), static_cast<float>(a * hi)};
      const qparams p = params_from_range(c.lo, c.hi, fmt, scheme);
      const double err = store_.exact()
                             ? error(store_.values().data(), nullptr, store_.values().size(), p, fmt, best_err)
                             : error(centres.data(), weights.data(), centres.size(), p, fmt, best_err);
      if (err < best_err) {
        best_err = err;
        best = c;
      }
    }
    return best;
  }

 private:
  friend class detail::observer_base<mse_observer>;
  void accumulate(const float* x, std::size_t n) { store_.add(x, n, exact_limit_, histogram_bins); }

  /// Σ w·(x - x')² (w = 1 when weights is null), see detail::round_trip_error; returns
  /// early, with a partial sum ≥ bound, once the sum can no longer end below `bound`.
  static double error(const float* x, const double* w, std::size_t n, const qparams& p, int_format fmt, double bound) {
    double err = 0.0;
    constexpr std::size_t block = 64;
    for (std::size_t i0 = 0; i0 < n && err < bound; i0 += block) {
      const std::size_t m = std::min(block, n - i0);
      err += w ? detail::round_trip_error<true>(x + i0, w + i0, m, p, fmt)
               : detail::round_trip_error<false>(x + i0, nullptr, m, p, fmt);
    }
    return err;
  }

  /// Centres and counts of the non-empty histogram bins.
  void histogram_points(std::vector<float>& centres, std::vector<double>& weights) const {
    const detail::streaming_histogram& h = store_.histogram();
    for (std::size_t b = 0; b < h.bins(); ++b) {
      if (h.counts()[b] == 0.0) continue;
      const double c = h.width() == 0.0 ? h.origin() : h.origin() + (double(b) + 0.5) * h.width();
      centres.push_back(std::clamp(static_cast<float>(c), store_.min(), store_.max()));
      weights.push_back(h.counts()[b]);
    }
  }

  int grid_ = default_grid;
  float max_shrink_ = default_max_shrink;
  std::size_t exact_limit_ = default_exact_limit;
  detail::sample_store store_;
};

PARE_NAMESPACE_END
