// Float64 oracle for linear quantization, written from the formulas (independent of pare's code paths).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace oracle {

struct params {
  double scale;  // the float scale pare must produce, held in double
  long zero;
};

inline long qmin(int bits, bool s) { return s ? -(1L << (bits - 1)) : 0; }
inline long qmax(int bits, bool s) { return s ? (1L << (bits - 1)) - 1 : (1L << bits) - 1; }

/// Round half to even in double.
inline double rne(double v) {
  double f = std::floor(v), d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return std::fmod(f, 2.0) == 0.0 ? f : f + 1;
}

/// Scale/zero point from a range [lo, hi] (lo <= hi), float64.
inline params from_range(double lo, double hi, int bits, bool is_signed, bool symmetric) {
  params p{};
  double s;
  if (symmetric) {
    double a = std::max(std::fabs(lo), std::fabs(hi));
    s = a / double((1L << (bits - 1)) - 1);
    p.zero = is_signed ? 0 : (1L << (bits - 1));
  } else {
    double l = std::min(lo, 0.0), h = std::max(hi, 0.0);
    s = (h - l) / double(qmax(bits, is_signed) - qmin(bits, is_signed));
    double sf = double(float(s));
    p.zero = s > 0 ? long(std::clamp(double(qmin(bits, is_signed)) - rne(l / sf), double(qmin(bits, is_signed)),
                                     double(qmax(bits, is_signed))))
                   : 0;
  }
  float f = float(s);
  if (!(f > 0)) f = 1.0f;
  f = std::max(f, 1.17549435e-38f);
  p.scale = double(f);
  // The largest |code - zero| times the scale must stay a finite float.
  const double flt_max = 3.4028234663852886e38;
  const double span = std::max(std::fabs(double(qmax(bits, is_signed) - p.zero)),
                               std::fabs(double(qmin(bits, is_signed) - p.zero)));
  if (span * p.scale > flt_max) {
    float c = float(flt_max / span);
    while (double(c) * span > flt_max) c = std::nextafter(c, 0.0f);
    p.scale = double(c);
  }
  return p;
}

/// The code of x (float64 arithmetic: x / s, round half even, clamp).
inline long code(double x, const params& p, int bits, bool is_signed) {
  double v = x / p.scale;
  long q = long(rne(std::clamp(v, -1e9, 1e9))) + p.zero;
  return std::clamp(q, qmin(bits, is_signed), qmax(bits, is_signed));
}

/// Distance of x / s from the nearest rounding tie (k + 0.5), in units of v.
inline double tie_distance(double x, const params& p) {
  double v = x / p.scale;
  return std::fabs(v - std::floor(v) - 0.5);
}

}  // namespace oracle
