// Dynamic int8 quantization of activation rows: the on-the-fly step of the integer matmul kernels.
#pragma once

// Semantics (normative for every integer matmul kernel and its tests):
//   each row x[0..K) of the fp32 activations is quantized on its own ("per token"),
//   symmetric int8 with the minmax range:
//     s_x  = params_from_range(min x, max x, int8, symmetric).scale   (max|x| / 127 in double,
//            rounded to float once; 1 for an all-zero row; see pare/core/affine.hpp)
//     q[k] = nearbyint(clamp(x[k] * (1.0f / s_x), -127, 127))          (the symmetric grid;
//            -128 is never used, which keeps the AVX2 sign trick exact)
//   The kernels then compute, for output n and weight group g (weight_source.hpp):
//     acc[g]  = sum over k in g of q[k] * code[n][k]        (exact, int32)
//     xsum[g] = sum over k in g of q[k]                      (exact, int32)
//     y[n]    = s_x * sum over g of (scale[n,g] * acc[g] + offset[n,g] * xsum[g])   (fp32)
// The float part may be evaluated in any order (tests bound it against float64).
// Static activations (matmul_static, W8A8 with a calibrated range): one fixed s_x > 0 for
// every row instead of the row's own, q[k] as above with that s_x (values beyond
// ±127·s_x saturate at ±127).

#include <cstddef>
#include <cstdint>

#include "pare/core/error.hpp"
#include "pare/kernels/quantize_row.hpp"
#include "pare/core/affine.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {

/// Quantizes one activation row of k floats and returns s_x; codes[i] = q[i] + shift as
/// bytes (shift 0: the int8 codes' two's-complement bytes; shift 128: q + 128 in [1, 255],
/// the unsigned form the VNNI kernels read, exact since q is rounded before the shift).
/// Uses the dispatched row kernels (so it updates last_used_isa()). Returns a negative
/// value, writing nothing, if the row holds NaN/Inf; `first_bad` then receives its index.
inline float quantize_activation_row(const float* x, std::size_t k, std::uint8_t* codes, std::int32_t shift,
                                     std::size_t* first_bad) {
  const row_stats st = scan_row(x, k);
  if (st.first_nonfinite != k) {
    if (first_bad) *first_bad = st.first_nonfinite;
    return -1.0f;
  }
  const int_format fmt{8, true};
  const qparams p = params_from_range(k ? st.min : 0.0f, k ? st.max : 0.0f, fmt, scheme_kind::symmetric);
  const float inv = inverse_scale(p.scale);
  const row_qparams rp{&p.scale, &inv, &shift, k ? k : 1, -127 + shift, 127 + shift};
  quantize_row(x, k, rp, codes);
  return p.scale;
}

/// The same with a fixed scale s_x = `scale` (> 0, finite; static activations): returns it,
/// or a negative value as above for a row with NaN/Inf.
inline float quantize_activation_row_fixed(const float* x, std::size_t k, float scale, std::uint8_t* codes,
                                           std::int32_t shift, std::size_t* first_bad) {
  const row_stats st = scan_row(x, k);
  if (st.first_nonfinite != k) {
    if (first_bad) *first_bad = st.first_nonfinite;
    return -1.0f;
  }
  const float inv = inverse_scale(scale);
  const row_qparams rp{&scale, &inv, &shift, k ? k : 1, -127 + shift, 127 + shift};
  quantize_row(x, k, rp, codes);
  return scale;
}

/// The int8 codes q themselves (shift 0).
inline float quantize_activation_row(const float* x, std::size_t k, std::int8_t* codes, std::size_t* first_bad = nullptr) {
  return quantize_activation_row(x, k, reinterpret_cast<std::uint8_t*>(codes), 0, first_bad);
}

}  // namespace kernels
PARE_NAMESPACE_END
