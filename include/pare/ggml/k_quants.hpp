// ggml's 256-element super-block formats Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: quantize one row (with or without an importance matrix) and dequantize.
#pragma once

// Layouts (ggml-common.h; QK_K = 256; all byte offsets within one block):
//   Q2_K  84 B: scales[16] @0 (low nibble: scale, high nibble: min of each 16-element
//         sub-block), qs[64] @16 (2-bit levels), d @80, dmin @82.
//         x = d·sc·q − dmin·m. Element 128·h + 32·s + l lives in qs[32·h + l] bits 2s..2s+1.
//   Q3_K  110 B: hmask[32] @0, qs[64] @32, scales[12] @96 (16 six-bit scales, offset 32),
//         d @108. x = d·(sc − 32)·(q − 4·(1 − hbit)); qs as Q2_K, the high bit of element
//         e in hmask[e % 32] bit e / 32.
//   Q4_K  144 B: d @0, dmin @2, scales[12] @4 (8 six-bit scales and 8 six-bit mins of the
//         32-element sub-blocks, packed as get_scale_min below), qs[128] @16: sub-blocks
//         2p and 2p+1 share qs[32p..32p+32) as low and high nibbles. x = d·sc·q − dmin·m.
//   Q5_K  176 B: d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48; the fifth bit of
//         element 32·s + l is qh[l] bit s.
//   Q6_K  210 B: ql[128] @0, qh[64] @128, scales[16] (int8) @192, d @208.
//         x = d·sc·(q − 32); element 128·h + 32·s + l: low nibble in ql[64·h + l + 32·(s & 1)]
//         (s < 2: low half of the byte, else high), top two bits in qh[32·h + l] bits 2s..2s+1.
// Without an importance matrix these follow ggml's quantize_row_*_ref; with one, ggml's
// quantize_row_*_impl (σ² and weights per super-block, scales of scales by weighted fits).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pare/ggml/detail/block_bytes.hpp"
#include "pare/ggml/detail/scale_search.hpp"

PARE_NAMESPACE_BEGIN
namespace ggml {

PARE_GGML_EXACT_BEGIN

namespace detail {

constexpr int qk_k = 256;

/// Scale and min j (0..7) of a Q4_K/Q5_K 12-byte scale field (ggml's get_scale_min_k4).
inline void get_scale_min(int j, const std::uint8_t* q, std::uint8_t* sc, std::uint8_t* m) noexcept {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

/// Stores six-bit scale ls and min lm of sub-block j into a 12-byte field (inverse of get_scale_min).
inline void put_scale_min(int j, std::uint8_t ls, std::uint8_t lm, std::uint8_t* q) noexcept {
  if (j < 4) {
    q[j] = ls;
    q[j + 4] = lm;
  } else {
    q[j + 4] = static_cast<std::uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
    q[j - 4] = static_cast<std::uint8_t>(q[j - 4] | ((ls >> 4) << 6));
    q[j - 0] = static_cast<std::uint8_t>(q[j - 0] | ((lm >> 4) << 6));
  }
}

/// Q3_K six-bit scale j (already minus 32) from the 12-byte field.
inline int q3_scale(const std::uint8_t* s, int j) noexcept {
  const int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
  return (low | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

/// Packs 256 two-bit levels into qs[64] (element 128h + 32s + l → qs[32h + l] bits 2s).
inline void pack_2bit(const std::uint8_t* L, std::uint8_t* qs) noexcept {
  for (int j = 0; j < qk_k; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

inline int level_2bit(const std::uint8_t* qs, int e) noexcept {
  return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

/// Requantizes the elements of a min/scale super-block given the stored (rounded) scales.
inline void requantize_affine(const float* x, int sub, int nsub, int nmax, float dall, float dmin,
                              const std::uint8_t* sc, const std::uint8_t* mn, std::uint8_t* L) noexcept {
  PARE_GGML_EXACT
  for (int j = 0; j < nsub; ++j) {
    const float d = dall * float(sc[j]);
    if (d == 0) continue;
    const float dm = dmin * float(mn[j]);
    for (int ii = 0; ii < sub; ++ii) L[sub * j + ii] = static_cast<std::uint8_t>(clamp_int(nearest_int((x[sub * j + ii] + dm) / d), 0, nmax));
  }
}

inline float block_sigma2(const float* x, float factor) noexcept {
  PARE_GGML_EXACT
  float sum_x2 = 0;
  for (int l = 0; l < qk_k; ++l) sum_x2 += x[l] * x[l];
  return factor * sum_x2 / float(qk_k);
}

/// Q4_K/Q5_K packing of 256 levels (bits 4 or 5) into qs (and qh for 5 bits).
inline void pack_q45(const std::uint8_t* L, std::uint8_t* qh, std::uint8_t* ql, int bits) noexcept {
  if (bits == 4) {
    for (int j = 0; j < qk_k; j += 64, ql += 32)
      for (int l = 0; l < 32; ++l) ql[l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    return;
  }
  std::memset(qh, 0, qk_k / 8);
  std::uint8_t m1 = 1, m2 = 2;
  for (int n = 0; n < qk_k; n += 64, ql += 32) {
    for (int j = 0; j < 32; ++j) {
      int l1 = L[n + j];
      if (l1 > 15) {
        l1 -= 16;
        qh[j] = static_cast<std::uint8_t>(qh[j] | m1);
      }
      int l2 = L[n + j + 32];
      if (l2 > 15) {
        l2 -= 16;
        qh[j] = static_cast<std::uint8_t>(qh[j] | m2);
      }
      ql[j] = static_cast<std::uint8_t>(l1 | (l2 << 4));
    }
    m1 = static_cast<std::uint8_t>(m1 << 2);
    m2 = static_cast<std::uint8_t>(m2 << 2);
  }
}

/// One Q4_K (bits 4, 144 B) or Q5_K (bits 5, 176 B) super-block.
inline void quantize_block_q45(const float* x, std::uint8_t* y, const float* qw, int bits) noexcept {
  PARE_GGML_EXACT
  const int nmax = bits == 4 ? 15 : 31;
  std::uint8_t L[qk_k], Laux[32], Ls[8], Lm[8];
  float weights[32], mins[8], scales[8], sw[8];
  std::uint8_t* scale_field = y + 4;
  std::memset(scale_field, 0, 12);
  if (!qw) {
    // ggml's quantize_row_q{4,5}_K_ref.
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
      scales[j] = bits == 4 ? affine_fit(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20, false, false)
                            : affine_fit(32, 31, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.5f, 0.1f, 15, false, false);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; ++j) {
      std::uint8_t ls = static_cast<std::uint8_t>(nearest_int(inv_scale * scales[j]));
      std::uint8_t lm = static_cast<std::uint8_t>(nearest_int(inv_min * mins[j]));
      ls = ls < 63 ? ls : 63;
      lm = lm < 63 ? lm : 63;
      put_scale_min(j, ls, lm, scale_field);
    }
    store_f16(y, max_scale / 63.f);
    store_f16(y + 2, max_min / 63.f);
  } else {
    // ggml's quantize_row_q{4,5}_K_impl.
    const float sigma2 = block_sigma2(x, 2.0f);
    for (int j = 0; j < 8; ++j) {
      for (int l = 0; l < 32; ++l) weights[l] = qw[32 * j + l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
      float sumw = 0;
      for (int l = 0; l < 32; ++l) sumw += weights[l];
      sw[j] = sumw;
      scales[j] = affine_fit(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false, true);
    }
    const float d_block = unsigned_fit(8, 63, scales, Ls, sw);
    const float m_block = unsigned_fit(8, 63, mins, Lm, sw);
    for (int j = 0; j < 8; ++j) {
      const std::uint8_t ls = Ls[j] < 63 ? Ls[j] : 63, lm = Lm[j] < 63 ? Lm[j] : 63;
      put_scale_min(j, ls, lm, scale_field);
    }
    store_f16(y, d_block);
    store_f16(y + 2, m_block);
  }
  std::uint8_t sc[8], mn[8];
  for (int j = 0; j < 8; ++j) get_scale_min(j, scale_field, &sc[j], &mn[j]);
  requantize_affine(x, 32, 8, nmax, load_f16(y), load_f16(y + 2), sc, mn, L);
  pack_q45(L, y + 16, bits == 4 ? y + 16 : y + 48, bits);
}

}  // namespace detail

/// Q2_K: 84-byte super-blocks.
inline void quantize_row_q2_K(const float* x, std::uint8_t* y, std::size_t cols, const float* imatrix) noexcept {
  PARE_GGML_EXACT
  using namespace detail;
  for (std::size_t b = 0; b < cols / qk_k; ++b, x += qk_k, y += 84) {
    std::uint8_t L[qk_k], Laux[16];
    float weights[16], mins[16], scales[16];
    std::uint8_t* sfield = y;
    if (!imatrix) {
      const float q4scale = 15.f;
      float max_scale = 0, max_min = 0;
      for (int j = 0; j < 16; ++j) {
        for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
        scales[j] = affine_fit(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
      }
      if (max_scale > 0) {
        const float iscale = q4scale / max_scale;
        for (int j = 0; j < 16; ++j) sfield[j] = static_cast<std::uint8_t>(nearest_int(iscale * scales[j]));
        store_f16(y + 80, max_scale / q4scale);
      } else {
        for (int j = 0; j < 16; ++j) sfield[j] = 0;
        store_f16(y + 80, 0.f);
      }
      if (max_min > 0) {
        const float iscale = q4scale / max_min;
        for (int j = 0; j < 16; ++j) sfield[j] = static_cast<std::uint8_t>(sfield[j] | (nearest_int(iscale * mins[j]) << 4));
        store_f16(y + 82, max_min / q4scale);
      } else {
        store_f16(y + 82, 0.f);
      }
    } else {
      const float* qw = imatrix + qk_k * b;
      float sw[16] = {};
      std::uint8_t Ls[16], Lm[16];
      const float sigma2 = block_sigma2(x, 1.0f);
      for (int j = 0; j < 16; ++j) {
        for (int l = 0; l < 16; ++l) weights[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
        for (int l = 0; l < 16; ++l) sw[j] += weights[l];
        scales[j] = affine_fit(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false, true);
      }
      const float dm = unsigned_fit(16, 15, scales, Ls, sw);
      const float mm = unsigned_fit(16, 15, mins, Lm, sw);
      store_f16(y + 80, dm);
      store_f16(y + 82, mm);
      for (int j = 0; j < 16; ++j) sfield[j] = static_cast<std::uint8_t>(Ls[j] | (Lm[j] << 4));
    }
    std::uint8_t sc[16], mn[16];
    for (int j = 0; j < 16; ++j) {
      sc[j] = sfield[j] & 0xF;
      mn[j] = sfield[j] >> 4;
    }
    requantize_affine(x, 16, 16, 3, load_f16(y + 80), load_f16(y + 82), sc, mn, L);
    pack_2bit(L, y + 16);
  }
}

inline void dequantize_row_q2_K(const std::uint8_t* y, float* x, std::size_t cols) noexcept {
  PARE_GGML_EXACT
  for (std::size_t b = 0; b < cols / detail::qk_k; ++b, x += detail::qk_k, y += 84) {
    const float d = detail::load_f16(y + 80), dmin = detail::load_f16(y + 82);
    for (int e = 0; e < detail::qk_k; ++e) {
      const int j = (e / 128) * 8 + ((e % 128) / 32) * 2 + (e % 32) / 16;  // scale index of element e
      const std::uint8_t sc = y[j];
      const float dl = d * float(sc & 0xF), ml = dmin * float(sc >> 4);
      x[e] = dl * float(detail::level_2bit(y + 16, e)) - ml;
    }
  }
}

/// Q3_K: 110-byte super-blocks.
inline void quantize_row_q3_K(const float* x, std::uint8_t* y, std::size_t cols, const float* imatrix) noexcept {
  PARE_GGML_EXACT
  using namespace detail;
  for (std::size_t b = 0; b < cols / qk_k; ++b, x += qk_k, y += 110) {
    std::int8_t L[qk_k];
    float scales[16];
    std::uint8_t* sfield = y + 96;
    std::memset(sfield, 0, 12);
    auto put_scale = [sfield](int j, int l) {
      if (j < 8) sfield[j] = static_cast<std::uint8_t>(l & 0xF);
      else sfield[j - 8] = static_cast<std::uint8_t>(sfield[j - 8] | ((l & 0xF) << 4));
      l >>= 4;
      sfield[j % 4 + 8] = static_cast<std::uint8_t>(sfield[j % 4 + 8] | (l << (2 * (j / 4))));
    };
    if (!imatrix) {
      float max_scale = 0, amax = 0;
      for (int j = 0; j < 16; ++j) {
        scales[j] = symmetric_fit_iterative(16, 4, x + 16 * j, L + 16 * j);
        const float scale = std::fabs(scales[j]);
        if (scale > amax) {
          amax = scale;
          max_scale = scales[j];
        }
      }
      if (max_scale != 0) {
        const float iscale = -32.f / max_scale;
        for (int j = 0; j < 16; ++j) {
          std::int8_t l = static_cast<std::int8_t>(nearest_int(iscale * scales[j]));
          l = static_cast<std::int8_t>(clamp_int(l, -32, 31) + 32);
          put_scale(j, l);
        }
        store_f16(y + 108, 1 / iscale);
      } else {
        store_f16(y + 108, 0.f);
      }
    } else {
      const float* qw0 = imatrix + qk_k * b;
      float weight[16], sw[16];
      std::int8_t Ls[16];
      const float sigma2 = block_sigma2(x, 2.0f);
      for (int j = 0; j < 16; ++j) {
        for (int l = 0; l < 16; ++l) weight[l] = qw0[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
        float sumw = 0;
        for (int l = 0; l < 16; ++l) sumw += weight[l];
        sw[j] = sumw;
        scales[j] = symmetric_fit(16, 4, x + 16 * j, L + 16 * j, 1, weight);
      }
      const float d_block = symmetric_fit(16, 32, scales, Ls, 1, sw);
      for (int j = 0; j < 16; ++j) put_scale(j, Ls[j]);
      store_f16(y + 108, d_block);
    }
    const float dall = load_f16(y + 108);
    for (int j = 0; j < 16; ++j) {
      const float d = dall * float(q3_scale(sfield, j));
      if (d == 0) continue;
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] = static_cast<std::int8_t>(clamp_int(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
    }
    std::uint8_t* hmask = y;
    std::memset(hmask, 0, 32);
    std::uint8_t U[qk_k];
    for (int j = 0; j < qk_k; ++j) {
      int l = L[j];
      if (l > 3) {
        hmask[j % 32] = static_cast<std::uint8_t>(hmask[j % 32] | (1u << (j / 32)));
        l -= 4;
      }
      U[j] = static_cast<std::uint8_t>(l);
    }
    pack_2bit(U, y + 32);
  }
}

inline void dequantize_row_q3_K(const std::uint8_t* y, float* x, std::size_t cols) noexcept {
  PARE_GGML_EXACT
  for (std::size_t b = 0; b < cols / detail::qk_k; ++b, x += detail::qk_k, y += 110) {
    const float d_all = detail::load_f16(y + 108);
    for (int e = 0; e < detail::qk_k; ++e) {
      const int j = (e / 128) * 8 + ((e % 128) / 32) * 2 + (e % 32) / 16;
      const float dl = d_all * float(detail::q3_scale(y + 96, j));
      const int hbit = (y[e % 32] >> (e / 32)) & 1;
      x[e] = dl * float(detail::level_2bit(y + 32, e) - (hbit ? 0 : 4));
    }
  }
}

/// Q4_K (144-byte) and Q5_K (176-byte) super-blocks.
inline void quantize_row_q4_K(const float* x, std::uint8_t* y, std::size_t cols, const float* imatrix) noexcept {
  for (std::size_t b = 0; b < cols / detail::qk_k; ++b)
    detail::quantize_block_q45(x + detail::qk_k * b, y + 144 * b, imatrix ? imatrix + detail::qk_k * b : nullptr, 4);
}

inline void quantize_row_q5_K(const float* x, std::uint8_t* y, std::size_t cols, const float* imatrix) noexcept {
  for (std::size_t b = 0; b < cols / detail::qk_k; ++b)
    detail::quantize_block_q45(x + detail::qk_k * b, y + 176 * b, imatrix ? imatrix + detail::qk_k * b : nullptr, 5);
}

inline void dequantize_row_q4_K(const std::uint8_t* y, float* x, std::size_t cols) noexcept {
  PARE_GGML_EXACT
  for (std::size_t b = 0; b < cols / detail::qk_k; ++b, x += detail::qk_k, y += 144) {
    const float d = detail::load_f16(y), min = detail::load_f16(y + 2);
    for (int s = 0; s < 8; ++s) {
      std::uint8_t sc, m;
      detail::get_scale_min(s, y + 4, &sc, &m);
      const float d1 = d * float(sc), m1 = min * float(m);
      const std::uint8_t* q = y + 16 + 32 * (s / 2);
      for (int l = 0; l < 32; ++l) x[32 * s + l] = d1 * float(s % 2 ? q[l] >> 4 : q[l] & 0xF) - m1;
    }
  }
}

inline void dequantize_row_q5_K(const std::uint8_t* y, float* x, std::size_t cols) noexcept {
  PARE_GGML_EXACT
  for (std::size_t b = 0; b < cols / detail::qk_k; ++b, x += detail::qk_k, y += 176) {
    const float d = detail::load_f16(y), min = detail::load_f16(y + 2);
    const std::uint8_t* qh = y + 16;
    for (int s = 0; s < 8; ++s) {
      std::uint8_t sc, m;
      detail::get_scale_min(s, y + 4, &sc, &m);
      const float d1 = d * float(sc), m1 = min * float(m);
      const std::uint8_t* ql = y + 48 + 32 * (s / 2);
      for (int l = 0; l < 32; ++l) {
        const int q = (s % 2 ? ql[l] >> 4 : ql[l] & 0xF) + ((qh[l] >> s) & 1 ? 16 : 0);
        x[32 * s + l] = d1 * float(q) - m1;
      }
    }
  }
}

/// Q6_K: 210-byte super-blocks.
inline void quantize_row_q6_K(const float* x, std::uint8_t* y, std::size_t cols, const float* imatrix) noexcept {
  PARE_GGML_EXACT
  using namespace detail;
  for (std::size_t b = 0; b < cols / qk_k; ++b, x += qk_k, y += 210) {
    std::int8_t L[qk_k];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      const float* qw = imatrix ? imatrix + qk_k * b + 16 * ib : nullptr;
      const float scale = symmetric_fit(16, 32, x + 16 * ib, L + 16 * ib, 1, qw);
      scales[ib] = scale;
      const float abs_scale = std::fabs(scale);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scale;
      }
    }
    if (max_abs_scale < group_max_eps) {
      std::memset(y, 0, 210);
      continue;
    }
    const float iscale = -128.f / max_scale;
    store_f16(y + 208, 1 / iscale);
    std::int8_t* sc = reinterpret_cast<std::int8_t*>(y + 192);
    for (int ib = 0; ib < 16; ++ib) {
      const int l = nearest_int(iscale * scales[ib]);
      sc[ib] = static_cast<std::int8_t>(l < 127 ? l : 127);
    }
    const float dall = load_f16(y + 208);
    for (int j = 0; j < 16; ++j) {
      const float d = dall * float(sc[j]);
      if (d == 0) continue;
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] = static_cast<std::int8_t>(clamp_int(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
    }
    std::uint8_t* ql = y;
    std::uint8_t* qh = y + 128;
    for (int j = 0; j < qk_k; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const int q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
        ql[l + 0] = static_cast<std::uint8_t>(q1 | (q3 << 4));
        ql[l + 32] = static_cast<std::uint8_t>(q2 | (q4 << 4));
        qh[l] = static_cast<std::uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                          ((L[j + l + 96] >> 4) << 6));
      }
    }
  }
}

inline void dequantize_row_q6_K(const std::uint8_t* y, float* x, std::size_t cols) noexcept {
  PARE_GGML_EXACT
  for (std::size_t b = 0; b < cols / detail::qk_k; ++b, x += detail::qk_k, y += 210) {
    const float d = detail::load_f16(y + 208);
    const std::int8_t* sc = reinterpret_cast<const std::int8_t*>(y + 192);
    for (int h = 0; h < 2; ++h) {
      const std::uint8_t* ql = y + 64 * h;
      const std::uint8_t* qh = y + 128 + 32 * h;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        float* out = x + 128 * h;
        out[l + 0] = d * float(sc[8 * h + is + 0]) * float(q1);
        out[l + 32] = d * float(sc[8 * h + is + 2]) * float(q2);
        out[l + 64] = d * float(sc[8 * h + is + 4]) * float(q3);
        out[l + 96] = d * float(sc[8 * h + is + 6]) * float(q4);
      }
    }
  }
}

PARE_GGML_EXACT_END

}  // namespace ggml
PARE_NAMESPACE_END
