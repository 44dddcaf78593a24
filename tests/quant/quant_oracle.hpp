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

namespace oracle {

/// The code of x by the normative arithmetic of pare/core/affine.hpp, exactly:
/// v = x · inv_s in float with inv_s = 1.0f / s, clamped to [qmin − z, qmax − z], rounded
/// half to even (nearest) or floor(v + u) in float (stochastic, u in [0, 1)), plus z.
inline long affine_code(float x, const params& p, int bits, bool is_signed, bool stochastic = false, float u = 0.0f) {
  const float inv = 1.0f / float(p.scale);
  const float v = x * inv;
  const float lo = float(qmin(bits, is_signed) - p.zero), hi = float(qmax(bits, is_signed) - p.zero);
  const float c = std::min(std::max(v, lo), hi);
  const double r = stochastic ? double(std::min(std::max(std::floor(c + u), lo), hi)) : rne(double(c));
  return long(r) + p.zero;
}

/// x' = float(q − z) · s (the product of a small integer and a float, rounded once).
inline float affine_value(long q, const params& p) { return float(double(q - p.zero) * p.scale); }

/// Code of element j of a packed row by the normative layout of pare/core/dtypes/packed_int.hpp:
/// b <= 7: bits [b·j, b·j + b − 1] of the row read as a little-endian bit stream; 8 bits:
/// one byte per element. Signed codes are sign-extended from bit b − 1.
inline long unpack_code(int bits, bool is_signed, const std::uint8_t* row, std::size_t j) {
  unsigned long u = 0;
  if (bits == 8) {
    u = row[j];
    bits = 8;
  } else {
    for (int t = 0; t < bits; ++t) {
      const std::size_t bit = std::size_t(bits) * j + std::size_t(t);
      u |= static_cast<unsigned long>((row[bit / 8] >> (bit % 8)) & 1u) << t;
    }
  }
  long q = long(u);
  if (is_signed && (u >> (bits - 1)) & 1u) q -= 1L << bits;
  return q;
}

}  // namespace oracle
