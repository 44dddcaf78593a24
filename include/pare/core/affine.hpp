// The normative affine integer mapping: formats, schemes, qparams from a range, quantize/dequantize of one value.
#pragma once

// Terms (normative; every kernel and quantizer in pare follows these formulas)
// ---------------------------------------------------------------------------
// format    B bits (2..8), signed or unsigned. Codes q lie in [qmin, qmax]:
//             signed:   qmin = -2^(B-1), qmax = 2^(B-1) - 1
//             unsigned: qmin = 0,        qmax = 2^B - 1
// qparams   a scale s > 0 (float) and an integer zero point z in [qmin, qmax].
// quantize  v = x · inv_s, with inv_s = 1.0f / s computed once in float;
//             nearest-even:  q = nearbyint(clamp(v, qmin - z, qmax - z)) + z
//             stochastic:    q = clamp(floor(clamp(v, qmin - z, qmax - z) + u), qmin - z, qmax - z) + z
//           with u uniform in [0, 1) from pare/core/rng.hpp (counter-based, seeded).
//           Clamping before rounding is equivalent to clamping the integer result and
//           keeps huge |x| away from integer overflow.
// dequantize  x' = float(q - z) · s
// scheme    how (s, z) follow from an observed range [lo, hi] (lo ≤ hi):
//   symmetric:  a = max(|lo|, |hi|); s = a / (2^(B-1) - 1);
//               z = 0 (signed format) or 2^(B-1) (unsigned format, the mid code).
//               Code qmin (signed) is never produced: the grid is symmetric around 0.
//   asymmetric: the range is widened to contain 0: lo' = min(lo, 0), hi' = max(hi, 0);
//               s = (hi' - lo') / (qmax - qmin); z = clamp(qmin - nearbyint(lo' / s), qmin, qmax).
//               Zero is exactly representable.
//   Degenerate ranges: if the computed s is 0 (all-zero data), s = 1 and all codes
//   equal z; s is raised to at least FLT_MIN (smallest normal) so that inv_s is finite.
//   The arithmetic of s and z is carried out in double and rounded to float once.
//   Overflow guard: if max(|qmax - z|, |qmin - z|) · s exceeds FLT_MAX (data near ±FLT_MAX),
//   s is lowered to the largest float for which it does not, so every code dequantizes to
//   a finite value; data beyond the narrowed grid clips.
// Round trip inside the clip range [ (qmin - z)·s, (qmax - z)·s ]: |x - x'| ≤ s/2
// (nearest) or < s (stochastic), up to float rounding of the products.

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <string>

#include "pare/core/error.hpp"

PARE_NAMESPACE_BEGIN

/// How scale and zero point follow from a range.
enum class scheme_kind { symmetric, asymmetric };

/// How values are rounded to codes.
enum class rounding_kind { nearest_even, stochastic };

/// A runtime integer format: `bits` in [2, 8], signed or unsigned.
struct int_format {
  int bits = 8;
  bool is_signed = true;

  constexpr int qmin() const noexcept { return is_signed ? -(1 << (bits - 1)) : 0; }
  constexpr int qmax() const noexcept { return is_signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1; }
  /// Positive half-range used by the symmetric scheme: 2^(B-1) - 1.
  constexpr int sym_max() const noexcept { return (1 << (bits - 1)) - 1; }
  /// The symmetric scheme's zero point.
  constexpr int sym_zero() const noexcept { return is_signed ? 0 : (1 << (bits - 1)); }

  /// Throws argument_error unless bits is in [2, 8].
  void validate(const char* where) const {
    if (bits < 2 || bits > 8)
      detail::fail<argument_error>(where, ": argument 'bits': expected an integer in [2, 8], got ", bits);
  }
  friend bool operator==(const int_format& a, const int_format& b) noexcept {
    return a.bits == b.bits && a.is_signed == b.is_signed;
  }
  std::string str() const { return detail::concat(is_signed ? "int" : "uint", bits); }
};

/// Scale and zero point of one quantization group.
struct qparams {
  float scale = 1.0f;
  std::int32_t zero_point = 0;
};

/// (s, z) for the observed range [lo, hi] under `scheme` (see the essay above).
/// Requires finite lo ≤ hi (observers guarantee it).
inline qparams params_from_range(double lo, double hi, int_format fmt, scheme_kind scheme) noexcept {
  qparams p;
  double s;
  if (scheme == scheme_kind::symmetric) {
    const double a = std::max(std::fabs(lo), std::fabs(hi));
    s = a / fmt.sym_max();
    p.zero_point = fmt.sym_zero();
  } else {
    const double l = std::min(lo, 0.0), h = std::max(hi, 0.0);
    s = (h - l) / (fmt.qmax() - fmt.qmin());
    if (s > 0) {
      const double z = fmt.qmin() - std::nearbyint(l / static_cast<double>(static_cast<float>(s)));
      p.zero_point = static_cast<std::int32_t>(std::clamp(z, double(fmt.qmin()), double(fmt.qmax())));
    } else {
      p.zero_point = std::clamp(0, fmt.qmin(), fmt.qmax());
    }
  }
  float sf = static_cast<float>(s);
  if (!(sf > 0.0f)) sf = 1.0f;
  p.scale = std::max(sf, FLT_MIN);
  if (!std::isfinite(p.scale)) p.scale = FLT_MAX;
  // Every code must dequantize to a finite float: near ±FLT_MAX the scale is lowered to
  // the largest float with max|q - z| * scale <= FLT_MAX (values beyond that clip).
  const double span = std::max(std::abs(double(fmt.qmax()) - p.zero_point), std::abs(double(fmt.qmin()) - p.zero_point));
  if (span * double(p.scale) > double(FLT_MAX)) {
    float cap = static_cast<float>(double(FLT_MAX) / span);
    while (double(cap) * span > double(FLT_MAX)) cap = std::nextafter(cap, 0.0f);
    p.scale = cap;
  }
  return p;
}

/// 1.0f / s, the multiplier the kernels use.
inline float inverse_scale(float s) noexcept { return 1.0f / s; }

/// Quantizes one value with nearest-even rounding (the scalar definition).
inline int quantize_value(float x, float inv_s, int z, int qmin, int qmax) noexcept {
  float v = x * inv_s;
  v = std::min(std::max(v, float(qmin - z)), float(qmax - z));
  return static_cast<int>(std::nearbyint(v)) + z;
}

/// Quantizes one value with stochastic rounding, u in [0, 1).
inline int quantize_value_stochastic(float x, float inv_s, int z, int qmin, int qmax, float u) noexcept {
  float v = x * inv_s;
  v = std::min(std::max(v, float(qmin - z)), float(qmax - z));
  float f = std::floor(v + u);
  f = std::min(std::max(f, float(qmin - z)), float(qmax - z));
  return static_cast<int>(f) + z;
}

/// Dequantizes one code.
inline float dequantize_value(int q, float s, int z) noexcept { return static_cast<float>(q - z) * s; }

PARE_NAMESPACE_END
