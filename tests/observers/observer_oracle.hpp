// Float64 oracles for the observer tests: affine params, quantization error, percentiles, the KL search, test data.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "pare/core/rng.hpp"
#include "pare_test_support.hpp"

namespace obs_oracle {

/// Scale and zero point of the affine essay (pare/core/affine.hpp), written out in double.
struct params {
  double scale;
  long zero;
  long qmin, qmax;
};

inline params from_range(double lo, double hi, int bits, bool is_signed, bool symmetric) {
  params p{};
  p.qmin = is_signed ? -(1L << (bits - 1)) : 0;
  p.qmax = is_signed ? (1L << (bits - 1)) - 1 : (1L << bits) - 1;
  double s;
  if (symmetric) {
    s = std::max(std::fabs(lo), std::fabs(hi)) / double((1L << (bits - 1)) - 1);
    p.zero = is_signed ? 0 : (1L << (bits - 1));
  } else {
    const double l = std::min(lo, 0.0), h = std::max(hi, 0.0);
    s = (h - l) / double(p.qmax - p.qmin);
    p.zero = s > 0 ? std::clamp(p.qmin - static_cast<long>(std::nearbyint(l / double(float(s)))), p.qmin, p.qmax)
                   : std::clamp(0L, p.qmin, p.qmax);
  }
  float sf = static_cast<float>(s);
  if (!(sf > 0)) sf = 1.0f;
  p.scale = std::max(sf, FLT_MIN);
  return p;
}

/// x after quantize (x / s rounded half-even, clamped) and dequantize, all in double.
inline double round_trip(double x, const params& p) {
  const double q = std::clamp(std::nearbyint(x / p.scale) + double(p.zero), double(p.qmin), double(p.qmax));
  return (q - double(p.zero)) * p.scale;
}

/// Σ (x - round_trip(x))² in double.
inline double sq_error(const std::vector<float>& x, double lo, double hi, int bits, bool is_signed, bool symmetric) {
  const params p = from_range(lo, hi, bits, is_signed, symmetric);
  double e = 0;
  for (float v : x) {
    const double d = double(v) - round_trip(v, p);
    e += d * d;
  }
  return e;
}

/// numpy's "linear" percentile (q in [0, 1]) from a fully sorted copy.
inline double linear_percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * double(v.size() - 1);
  const std::size_t k = std::min(static_cast<std::size_t>(std::floor(pos)), v.size() - 1);
  const double f = pos - double(k);
  if (k + 1 >= v.size() || f == 0.0) return v[k];
  return v[k] + f * (v[k + 1] - v[k]);
}

/// Histogram of |x|: bins of width max|x| / bins, bin = min(floor(|x| / w), bins - 1).
inline std::vector<double> abs_histogram(const std::vector<float>& x, std::size_t bins, double& width) {
  double amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(double(v)));
  width = amax / double(bins);
  std::vector<double> h(bins, 0.0);
  for (float v : x) h[std::min(static_cast<std::size_t>(std::fabs(double(v)) / width), bins - 1)] += 1;
  return h;
}

/// MXNet's _smooth_distribution on counts; false when it fails.
inline bool smooth(std::vector<double>& d) {
  const double eps = 1e-4;
  std::size_t zeros = 0;
  for (double v : d) zeros += v == 0;
  const std::size_t nonzeros = d.size() - zeros;
  if (nonzeros == 0) return false;
  const double eps1 = eps * double(zeros) / double(nonzeros);
  for (double& v : d) v = v == 0 ? eps : v - eps1;
  for (double v : d)
    if (v <= 0) return false;
  return true;
}

/// KL(P‖Q) of threshold candidate i with `levels` levels, written densely after MXNet's
/// _get_optimal_threshold; +inf when smoothing fails.
inline double kl_at(const std::vector<double>& h, std::size_t i, std::size_t levels) {
  std::vector<double> sliced(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(i));
  std::vector<double> p = sliced;
  for (std::size_t j = i; j < h.size(); ++j) p[i - 1] += h[j];
  const std::size_t nlev = std::min(levels, i);
  const std::size_t merged = i / nlev;
  std::vector<double> q(i, 0.0);
  for (std::size_t k = 0; k < nlev; ++k) {
    const std::size_t start = k * merged, stop = k == nlev - 1 ? i : start + merged;
    double m = 0;
    std::size_t nz = 0;
    for (std::size_t j = start; j < stop; ++j) {
      m += sliced[j];
      nz += p[j] != 0;
    }
    if (nz)
      for (std::size_t j = start; j < stop; ++j) q[j] = p[j] != 0 ? m / double(nz) : 0.0;
  }
  if (!smooth(p) || !smooth(q)) return std::numeric_limits<double>::infinity();
  double sp = 0, sq = 0;
  for (std::size_t j = 0; j < i; ++j) {
    sp += p[j];
    sq += q[j];
  }
  double kl = 0;
  for (std::size_t j = 0; j < i; ++j) kl += (p[j] / sp) * std::log((p[j] / sp) / (q[j] / sq));
  return kl;
}

/// Heavy-tailed data: Student-t with 3 degrees of freedom (Gaussian / sqrt(chi² / 3)).
inline std::vector<float> student_t3(std::size_t n, std::uint64_t seed) {
  const std::vector<float> g = pare_test::gaussian(n * 4, seed);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double chi2 =
        double(g[4 * i + 1]) * g[4 * i + 1] + double(g[4 * i + 2]) * g[4 * i + 2] + double(g[4 * i + 3]) * g[4 * i + 3];
    v[i] = static_cast<float>(g[4 * i] / std::sqrt(chi2 / 3.0 + 1e-12));
  }
  return v;
}

/// Gaussian data with `k` outliers of ±`mag`·σ spread through it.
inline std::vector<float> gaussian_with_outliers(std::size_t n, std::uint64_t seed, std::size_t k, double mag) {
  std::vector<float> v = pare_test::gaussian(n, seed);
  for (std::size_t j = 0; j < k && j < n; ++j)
    v[(j * 7919 + 13) % n] = static_cast<float>((j % 2 ? -mag : mag) * (1 + 0.01 * j));
  return v;
}

}  // namespace obs_oracle
