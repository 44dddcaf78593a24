// The scale searches behind ggml's quantizers (weighted least-squares fits of a block scale and min), in ggml's float arithmetic.
#pragma once

// These are the algorithms of ggml-quants.c (make_qx_quants, make_q3_quants,
// make_qkx2_quants, make_qkx3_quants, make_qp_quants, best_index_int8, nearest_int),
// written for pare. Their results feed bytes that must equal ggml's, so every
// expression keeps ggml's operand order and float roundings (see exact_float.hpp).
//
//   symmetric_fit     L ∈ [0, 2·nmax): x ≈ s·(L − nmax). Tries the scale −nmax/max and, for
//                     rmse_type ≥ 1, 18 nearby scales −(nmax + 0.1·is)/max, keeping the
//                     weighted least-squares optimum s = Σw·x·l / Σw·l².
//   symmetric_fit_iterative   the same start, then up to 5 coordinate-descent sweeps moving single
//                     levels (weights x², q3_K's reference quantizer).
//   affine_fit        L ∈ [0, nmax]: x ≈ s·L − m with m ≥ 0; grid of nstep+1 candidate
//                     scales (rmin + rdelta·is + nmax)/(max − min), each refitted by
//                     2×2 weighted least squares; the `clamped` variant (qkx3) guards the
//                     level computation against inf/NaN.
//   unsigned_fit      L ∈ [0, nmax]: x ≈ s·L for non-negative x (the K formats' scales of
//                     scales), grid of 8 scales then coordinate descent.
//   nearest_index     index of the closest codebook value (ties to the upper value).

#include <cmath>
#include <cstdint>
#include <cstring>

#include "pare/core/config.hpp"
#include "pare/ggml/detail/exact_float.hpp"

PARE_NAMESPACE_BEGIN
namespace ggml {
namespace detail {

PARE_GGML_EXACT_BEGIN

/// Blocks whose largest magnitude is below this are all-zero blocks.
constexpr float group_max_eps = 1e-15f;

/// Round to nearest, ties to even, for |v| <= 4194303, by adding 1.5·2^23 and reading the
/// low mantissa bits (ggml's nearest_int, including what it returns out of range).
inline int nearest_int(float v) noexcept {
  PARE_GGML_EXACT
  const float biased = v + 12582912.f;
  std::int32_t bits;
  std::memcpy(&bits, &biased, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

inline int clamp_int(int v, int lo, int hi) noexcept { return v < lo ? lo : (v > hi ? hi : v); }

/// Weight of element i for symmetric_fit when no explicit weights are given.
inline float fit_weight(const float* qw, const float* x, int i, int rmse_type) noexcept {
  PARE_GGML_EXACT
  if (qw) return qw[i];
  if (rmse_type == 1) return x[i] * x[i];
  if (rmse_type == 2) return 1;
  if (rmse_type == 3) return std::fabs(x[i]);
  return std::sqrt(std::fabs(x[i]));
}

/// ggml's make_qx_quants: returns the scale, writes levels L[i] in [0, 2·nmax).
inline float symmetric_fit(int n, int nmax, const float* x, std::int8_t* L, int rmse_type, const float* qw) noexcept {
  PARE_GGML_EXACT
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < group_max_eps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = -nmax / max;
  if (rmse_type == 0) {
    for (int i = 0; i < n; ++i) {
      const int l = nearest_int(iscale * x[i]);
      L[i] = static_cast<std::int8_t>(nmax + clamp_int(l, -nmax, nmax - 1));
    }
    return 1 / iscale;
  }
  bool return_early = false;
  if (rmse_type < 0) {
    rmse_type = -rmse_type;
    return_early = true;
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = clamp_int(l, -nmax, nmax - 1);
    L[i] = static_cast<std::int8_t>(l + nmax);
    const float w = fit_weight(qw, x, i, rmse_type);
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  if (return_early) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = fit_weight(qw, x, i, rmse_type);
      sumlx += w * x[i] * float(l);
      suml2 += w * float(l) * float(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * x[i]);
        L[i] = static_cast<std::int8_t>(nmax + clamp_int(l, -nmax, nmax - 1));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

/// ggml's make_q3_quants (do_rmse = true is the only use): L[i] in [0, 2·nmax).
inline float symmetric_fit_iterative(int n, int nmax, const float* x, std::int8_t* L) noexcept {
  PARE_GGML_EXACT
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < group_max_eps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  const float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<std::int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * float(L[i]);
      if (slx > 0) {
        float sl2 = suml2 - w * float(L[i]) * float(L[i]);
        const int new_l = clamp_int(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
        if (new_l != L[i]) {
          slx += w * x[i] * float(new_l);
          sl2 += w * float(new_l) * float(new_l);
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<std::int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/// ggml's make_qkx2_quants (clamped = false) and make_qkx3_quants (clamped = true; weights
/// may then be null, meaning x²). Returns the scale; *the_min receives m (x ≈ s·L − m).
inline float affine_fit(int n, int nmax, const float* x, const float* weights, std::uint8_t* L, float* the_min,
                        std::uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad, bool clamped) noexcept {
  PARE_GGML_EXACT
  float min = x[0], max = x[0];
  float sum_w = weights ? weights[0] : x[0] * x[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights ? weights[i] : x[i] * x[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (clamped ? max <= min : max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<std::uint8_t>(clamp_int(l, 0, nmax));
    float diff = scale * float(L[i]) + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    const float w = weights ? weights[i] : x[i] * x[i];
    best_error += w * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * float(is) + float(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l;
      if (clamped) {
        const float v = iscale * (x[i] - min);
        l = v > 0 ? nearest_int(v < float(nmax) ? v : float(nmax)) : 0;
      } else {
        l = clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
      }
      Laux[i] = static_cast<std::uint8_t>(l);
      const float w = weights ? weights[i] : x[i] * x[i];
      sum_l += w * float(l);
      sum_l2 += w * float(l) * float(l);
      sum_xl += w * float(l) * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * float(Laux[i]) + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        const float w = weights ? weights[i] : x[i] * x[i];
        cur_error += w * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

/// ggml's make_qp_quants: x >= 0 ≈ s·L, L in [0, nmax], weighted by quant_weights.
inline float unsigned_fit(int n, int nmax, const float* x, std::uint8_t* L, const float* quant_weights) noexcept {
  PARE_GGML_EXACT
  float max = 0;
  for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
  if (max < group_max_eps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = nmax / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<std::uint8_t>(nearest_int(iscale * x[i]));
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * float(L[i]);
    const float w = quant_weights[i];
    best_mse += w * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * float(is) + float(nmax)) / max;
    const float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale_is * x[i]);
      l = l < nmax ? l : nmax;
      const float diff = x[i] - scale_is * float(l);
      const float w = quant_weights[i];
      mse += w * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = l < nmax ? l : nmax;
    L[i] = static_cast<std::uint8_t>(l);
    const float w = quant_weights[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = quant_weights[i];
      float slx = sumlx - w * x[i] * float(L[i]);
      float sl2 = suml2 - w * float(L[i]) * float(L[i]);
      if (slx > 0 && sl2 > 0) {
        int new_l = nearest_int(x[i] * sl2 / slx);
        new_l = new_l < nmax ? new_l : nmax;
        if (new_l != L[i]) {
          slx += w * x[i] * float(new_l);
          sl2 += w * float(new_l) * float(new_l);
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<std::uint8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/// Index of the value in the ascending codebook val[0..n) closest to x (ggml's best_index_int8).
inline int nearest_index(int n, const std::int8_t* val, float x) noexcept {
  PARE_GGML_EXACT
  if (x <= val[0]) return 0;
  if (x >= val[n - 1]) return n - 1;
  int ml = 0, mu = n - 1;
  while (mu - ml > 1) {
    const int mav = (ml + mu) / 2;
    if (x < val[mav]) mu = mav;
    else ml = mav;
  }
  return x - float(val[mu - 1]) < float(val[mu]) - x ? mu - 1 : mu;
}

PARE_GGML_EXACT_END

}  // namespace detail
}  // namespace ggml
PARE_NAMESPACE_END
