// ggml's IQ4_NL: 32-element blocks of 4-bit indices into a fixed non-uniform codebook, one fp16 scale; quantize (optionally with an importance matrix) and dequantize.
#pragma once

// Block (18 B): d:f16, qs:u8[16]; element j is d·kvalues[index], index in the low nibble
// of qs[j] for j < 16 and the high nibble of qs[j − 16] otherwise. The codebook kvalues
// is ggml's kvalues_iq4nl. Quantization follows ggml's quantize_iq4_nl (the path
// ggml_quantize_chunk takes, with or without importance): weights imatrix[j]·sqrt(σ² + x_j²)
// with σ² = 2·mean(x²) over the block, or x_j² without importance; start from
// d = −max/kvalues[0] and try 15 scales (itry + kvalues[0])/max, keeping the weighted
// least-squares optimum; then store fp16(d) and re-pick every index with 1/d.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pare/ggml/detail/block_bytes.hpp"
#include "pare/ggml/detail/scale_search.hpp"

PARE_NAMESPACE_BEGIN
namespace ggml {

/// ggml's kvalues_iq4nl.
inline const std::int8_t* iq4nl_codebook() noexcept {
  static const std::int8_t values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  return values;
}

PARE_GGML_EXACT_BEGIN

inline void quantize_row_iq4_nl(const float* x, std::uint8_t* y, std::size_t cols, const float* imatrix) noexcept {
  PARE_GGML_EXACT
  const std::int8_t* values = iq4nl_codebook();
  const int ntry = 7;
  for (std::size_t b = 0; b < cols / 32; ++b, x += 32, y += 18) {
    float sigma2 = 0;
    for (int j = 0; j < 32; ++j) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / 32;
    float weight[32];
    if (imatrix) {
      const float* qw = imatrix + 32 * b;
      for (int j = 0; j < 32; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + x[j] * x[j]);
    } else {
      for (int j = 0; j < 32; ++j) weight[j] = x[j] * x[j];
    }
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    float scale = 0;
    if (!(amax < detail::group_max_eps)) {
      float d = -max / float(values[0]);
      float id = 1 / d;
      float sumqx = 0, sumq2 = 0;
      for (int j = 0; j < 32; ++j) {
        const int l = detail::nearest_index(16, values, id * x[j]);
        const float q = values[l];
        const float w = weight[j];
        sumqx += w * q * x[j];
        sumq2 += w * q * q;
      }
      d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
      float best = d * sumqx;
      for (int itry = -ntry; itry <= ntry; ++itry) {
        id = float(itry + values[0]) / max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < 32; ++j) {
          const int l = detail::nearest_index(16, values, id * x[j]);
          const float q = values[l];
          const float w = weight[j];
          sumqx += w * q * x[j];
          sumq2 += w * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
          d = sumqx / sumq2;
          best = d * sumqx;
        }
      }
      scale = d;
    }
    detail::store_f16(y, scale);
    const float id = scale != 0 ? 1 / scale : 0;
    std::uint8_t L[32];
    for (int j = 0; j < 32; ++j) L[j] = static_cast<std::uint8_t>(detail::nearest_index(16, values, id * x[j]));
    for (int j = 0; j < 16; ++j) y[2 + j] = static_cast<std::uint8_t>(L[j] | (L[j + 16] << 4));
  }
}

inline void dequantize_row_iq4_nl(const std::uint8_t* y, float* x, std::size_t cols) noexcept {
  PARE_GGML_EXACT
  const std::int8_t* values = iq4nl_codebook();
  for (std::size_t b = 0; b < cols / 32; ++b, x += 32, y += 18) {
    const float d = detail::load_f16(y);
    for (int j = 0; j < 16; ++j) {
      x[j] = d * float(values[y[2 + j] & 0xF]);
      x[j + 16] = d * float(values[y[2 + j] >> 4]);
    }
  }
}

PARE_GGML_EXACT_END

}  // namespace ggml
PARE_NAMESPACE_END
