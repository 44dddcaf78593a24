// kl_observer: TensorRT entropy calibration, the clip threshold that minimises KL(P‖Q) over a histogram of |x|.
#pragma once

// Histogram: `bins` bins (default 2048) of width w over [0, max|x|], bin of v =
// min(floor(|v| / w), bins - 1) with w = max|x| / bins, built at range() from the stored
// values (exact mode, at most exact_limit values); in histogram mode it is the streaming
// histogram of |x| (histogram.hpp: when max|x| grows, w doubles and bin pairs merge).
//
// Search (TensorRT's calibrator, as in MXNet's _get_optimal_threshold): with
// L = 2^(B-1) quantization levels on one side for a B-bit format (both schemes), for each
// candidate i = L, L+1, ..., bins (only i = bins when bins < L; each bin is then a level):
//   P    = h[0:i] with the outlier mass Σ h[i:] added to P[i-1];
//   Q    = h[0:i] merged into L levels (level k holds bins [k·m, k·m + m) with m = i / L,
//          the last level runs to i), each level's mass spread evenly over the bins
//          where P is non-zero;
//   both are smoothed as MXNet's _smooth_distribution does on counts (eps = 1e-4 to
//   every zero entry, the same total taken evenly from the non-zero ones), normalised,
//   and D_i = KL(P‖Q) = Σ p·log(p / q). Candidates whose smoothing fails (h[0:i]
//   empty, or a non-zero entry would drop to ≤ 0) are skipped.
// The first i with the smallest D_i wins; the threshold is t = min((i + 0.5)·w, max|x|)
// (TensorRT's (i + 0.5)·w, capped at the data so no level is spent beyond it).
//
// Range: symmetric → [-t, t]; asymmetric → [max(min, -t), min(max, t)] with min and max
// of the observed values. All-zero data gives [0, 0].
// Cost per range(): O(bins · k) with k the number of non-empty bins (only those enter
// the sums; the empty ones are added in closed form): a few ms for 2048 bins, whatever
// the data size. KL calibration is meant for per-tensor or per-channel activation
// ranges; per group of 128 weights it costs ~2 ms (2048 bins) or ~0.2 ms (256 bins).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "pare/stats/observers/histogram.hpp"

PARE_NAMESPACE_BEGIN

namespace detail {

/// The winning candidate i of the search described above, for counts h and L levels.
inline std::size_t kl_best_threshold_bin(const std::vector<double>& h, std::size_t levels) {
  const std::size_t nb = h.size();
  std::vector<double> mass(nb + 1, 0.0);        // mass[j]: Σ h[0:j]
  std::vector<std::size_t> nonzero(nb + 1, 0);  // nonzero[j]: #{h[0:j] ≠ 0}
  std::vector<std::size_t> occupied;            // indices of non-empty bins, ascending
  for (std::size_t j = 0; j < nb; ++j) {
    mass[j + 1] = mass[j] + h[j];
    nonzero[j + 1] = nonzero[j] + (h[j] != 0.0);
    if (h[j] != 0.0) occupied.push_back(j);
  }
  const double total = mass[nb];
  const double eps = 1e-4;
  double best = std::numeric_limits<double>::infinity();
  std::size_t best_i = nb;
  for (std::size_t i = std::min(levels, nb); i <= nb; ++i) {
    const double sliced = mass[i];
    if (!(sliced > 0.0)) continue;  // Q would be all zero
    const double outliers = total - sliced;
    const bool extra = outliers > 0.0 && h[i - 1] == 0.0;  // P[i-1] non-zero through the outliers only
    const std::size_t nlev = std::min(levels, i);
    const std::size_t merged = i / nlev;
    const std::size_t last_start = (nlev - 1) * merged;  // bin i-1 is always in the last level
    const double last_mass = sliced - mass[last_start];
    const std::size_t nnz_p = nonzero[i] + (extra ? 1 : 0);
    const std::size_t nnz_q = nnz_p - (extra && last_mass == 0.0 ? 1 : 0);
    const std::size_t nz_p = i - nnz_p, nz_q = i - nnz_q;
    const double eps_p = eps * double(nz_p) / double(nnz_p);
    const double eps_q = eps * double(nz_q) / double(nnz_q);
    // Bins empty in P are empty in Q too: each adds (eps/N)·log((eps/N) / (eps/S)).
    double kl = double(nz_p) * (eps / total) * std::log(sliced / total);
    bool valid = true;
    auto add_term = [&](double p, double q) {
      const double ps = p - eps_p, qs = q > 0.0 ? q - eps_q : eps;
      if (!(ps > 0.0 && qs > 0.0)) {
        valid = false;
        return;
      }
      kl += (ps / total) * std::log((ps / total) / (qs / sliced));
    };
    for (std::size_t t = 0; t < occupied.size() && occupied[t] + 1 < i && valid; ++t) {
      const std::size_t j = occupied[t];
      const std::size_t k = std::min(j / merged, nlev - 1);
      const std::size_t start = k * merged, stop = k == nlev - 1 ? i : start + merged;
      const std::size_t nnz_level = nonzero[stop] - nonzero[start] + (extra && k == nlev - 1 ? 1 : 0);
      add_term(h[j], (mass[stop] - mass[start]) / double(nnz_level));
    }
    const double p_last = h[i - 1] + outliers;
    if (valid && p_last > 0.0) {
      const std::size_t nnz_level = nonzero[i] - nonzero[last_start] + (extra ? 1 : 0);
      add_term(p_last, last_mass > 0.0 ? last_mass / double(nnz_level) : 0.0);
    }
    if (valid && kl < best) {
      best = kl;
      best_i = i;
    }
  }
  return best_i;
}

}  // namespace detail

class kl_observer : public detail::observer_base<kl_observer> {
 public:
  static constexpr const char* name = "kl";
  static constexpr const char* type_name = "kl_observer";
  static constexpr int default_bins = 2048;
  static constexpr int max_bins = 1 << 24;
  static constexpr std::size_t default_exact_limit = std::size_t(1) << 20;

  kl_observer() = default;

  /// bins in [1, 2^24] histogram bins over [0, max|x|].
  explicit kl_observer(int bins, std::size_t exact_limit = default_exact_limit)
      : bins_(bins), exact_limit_(exact_limit) {
    if (bins < 1 || bins > max_bins)
      detail::fail<argument_error>("kl_observer: argument 'bins': expected an integer in [1, ", max_bins, "], got ",
                                   bins);
  }

  int bins() const noexcept { return bins_; }
  std::size_t exact_limit() const noexcept { return exact_limit_; }
  std::size_t count() const noexcept { return store_.count(); }
  bool exact() const noexcept { return store_.exact(); }

  void reset() noexcept { store_.clear(); }

  observed_range range(int_format fmt, scheme_kind scheme) const {
    check_range_call(store_.count() > 0, fmt);
    const double amax = store_.absmax();
    if (amax == 0.0) return observed_range{0.0f, 0.0f};
    std::vector<double> local;
    double w;
    const std::vector<double>* h;
    if (store_.exact()) {
      local.assign(static_cast<std::size_t>(bins_), 0.0);
      w = amax / double(bins_);
      for (float v : store_.values())
        local[std::min(static_cast<std::size_t>(std::fabs(double(v)) / w), local.size() - 1)] += 1.0;
      h = &local;
    } else {
      w = store_.histogram().width();
      h = &store_.histogram().counts();
    }
    const std::size_t levels = std::size_t(1) << (fmt.bits - 1);
    const std::size_t i = detail::kl_best_threshold_bin(*h, levels);
    const double t = std::min((double(i) + 0.5) * w, amax);
    if (scheme == scheme_kind::symmetric) return observed_range{static_cast<float>(-t), static_cast<float>(t)};
    const double lo = std::max(double(store_.min()), -t);
    const double hi = std::max(std::min(double(store_.max()), t), lo);
    return observed_range{static_cast<float>(lo), static_cast<float>(hi)};
  }

 private:
  friend class detail::observer_base<kl_observer>;
  void accumulate(const float* x, std::size_t n) { store_.add(x, n, exact_limit_, static_cast<std::size_t>(bins_)); }

  int bins_ = default_bins;
  std::size_t exact_limit_ = default_exact_limit;
  detail::sample_store store_{true};
};

PARE_NAMESPACE_END
