// fp16 scale storage (quant_config f16scale): a group's scale rounded to IEEE half before its codes are chosen.
#pragma once

// Rule (normative). Under f16scale every (scale, zero point) is chosen as without it by
// params_from_range, then:
//   1. the scale s becomes h = the nearest binary16 to s (ties to even, pare::float_to_fp16),
//      except that s below the smallest normal half 2^-14 (≈ 6.1035e-5) becomes 2^-14:
//      such groups hold values under 2^-14 · max|q - z| in magnitude and lose at most
//      2^-15 per element, instead of a subnormal or zero scale;
//   2. a scale whose half rounding overflows (s ≥ 65520, i.e. |h| would exceed 65504) is
//      refused with argument_error: the weights' range is too wide for fp16 scales;
//   3. asymmetric schemes recompute the zero point from h, as params_from_range does
//      from s: z = clamp(qmin − round(min(lo, 0) / h), qmin, qmax).
// The codes are then chosen against h itself (the kernels multiply by 1/h), so they are
// the nearest codes for the stored scale, and dequantization with the stored half value
// is exact: the float scale held in memory *is* that half value.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "pare/core/affine.hpp"
#include "pare/core/dtypes/fp16.hpp"
#include "pare/core/error.hpp"

PARE_NAMESPACE_BEGIN

/// The smallest scale f16scale stores: the smallest normal binary16, 2^-14.
inline constexpr float min_f16_scale = 6.103515625e-05f;
/// The largest finite binary16.
inline constexpr float max_f16_scale = 65504.0f;

/// Rounds a scale to the half pare stores (rules 1 and 2 above). `where` names the caller.
inline float round_scale_to_f16(const char* where, float s) {
  if (!(s >= min_f16_scale)) return min_f16_scale;  // also NaN (params_from_range never gives one)
  const float h = fp16_to_float(float_to_fp16(s));
  if (!std::isfinite(h))
    detail::fail<argument_error>(where, ": argument 'cfg': f16scale expected every scale at most ", max_f16_scale,
                                 " after rounding to fp16, got ", s, " (the weights' range is too wide for fp16 scales)");
  return h;
}

/// params_from_range(lo, hi, fmt, scheme) with its scale stored as a half (rules 1..3 above).
inline qparams params_from_range_f16(const char* where, double lo, double hi, int_format fmt, scheme_kind scheme) {
  qparams p = params_from_range(lo, hi, fmt, scheme);
  p.scale = round_scale_to_f16(where, p.scale);
  if (scheme == scheme_kind::asymmetric) {
    const double l = std::min(lo, 0.0), h = std::max(hi, 0.0);
    if (h > l) {
      const double z = fmt.qmin() - std::nearbyint(l / static_cast<double>(p.scale));
      p.zero_point = static_cast<std::int32_t>(std::clamp(z, double(fmt.qmin()), double(fmt.qmax())));
    }
  }
  return p;
}

PARE_NAMESPACE_END
