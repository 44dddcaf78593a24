// Converts ggml blocks to pare's canonical weight_source (scale·code + offset per group), so GGUF layers pack for pare's int8/int4 matmul kernels.
#pragma once

// Every integer ggml format is an affine code per group, and its dequantized value is
// reproduced exactly (the products below are exact in float: fp16 scales have 11
// significant bits and the integer factors at most 8):
//
//   type    bits group  code                    scale          offset
//   q8_0     8    32    q (int8)                d              0
//   q5_0     8    32    q − 16                  d              0
//   q5_1     8    32    q                       d              m
//   iq4_nl   8    32    kvalues_iq4nl[q]        d              0
//   q5_K     8    32    q                       d·sc           −dmin·m
//   q6_K     8    16    q − 32                  d·sc           0
//   q4_0     4    32    q                       d              −8·d
//   q4_1     4    32    q                       d              m
//   q4_K     4    32    q                       d·sc           −dmin·m
//   q2_K     4    16    q                       d·sc           −dmin·m
//   q3_K     4    16    q + 4·hbit              d·(sc − 32)    −4·d·(sc − 32)
//
// f16 and bf16 are not integer codes: to_weight_source throws unsupported_error for them.
// The conversion goes through the dequantized row: each code is recovered as
// (x − offset)/scale and checked to be an integer in range, so any disagreement with the
// table above is an error rather than a silent change.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pare/ggml/quantize.hpp"
#include "pare/kernels/matmul/weight_source.hpp"

PARE_NAMESPACE_BEGIN
namespace ggml {

/// Code width (8 or 4) and group size of a format in its weight_source form; 0 when it has none (f16, bf16).
inline int weight_source_bits(type t) noexcept {
  switch (t) {
    case type::q8_0: case type::q5_0: case type::q5_1: case type::iq4_nl: case type::q5_K: case type::q6_K: return 8;
    case type::q4_0: case type::q4_1: case type::q4_K: case type::q2_K: case type::q3_K: return 4;
    default: return 0;
  }
}
inline std::size_t weight_source_group(type t) noexcept {
  return (t == type::q6_K || t == type::q2_K || t == type::q3_K) ? 16 : 32;
}

namespace detail {

/// Per-group (scale, offset) of row r, group g, read from the block bytes.
inline void group_params(type t, const std::uint8_t* row, std::size_t g, float* scale, float* offset) {
  switch (t) {
    case type::q8_0: *scale = load_f16(row + 34 * g); *offset = 0; return;
    case type::q5_0: *scale = load_f16(row + 22 * g); *offset = 0; return;
    case type::q5_1: *scale = load_f16(row + 24 * g); *offset = load_f16(row + 24 * g + 2); return;
    case type::iq4_nl: *scale = load_f16(row + 18 * g); *offset = 0; return;
    case type::q4_0: *scale = load_f16(row + 18 * g); *offset = -8.0f * *scale; return;
    case type::q4_1: *scale = load_f16(row + 20 * g); *offset = load_f16(row + 20 * g + 2); return;
    case type::q4_K: case type::q5_K: {
      const std::uint8_t* b = row + (t == type::q4_K ? 144 : 176) * (g / 8);
      std::uint8_t sc, m;
      get_scale_min(int(g % 8), b + 4, &sc, &m);
      *scale = load_f16(b) * float(sc);
      *offset = -(load_f16(b + 2) * float(m));
      return;
    }
    case type::q6_K: {
      const std::uint8_t* b = row + 210 * (g / 16);
      *scale = load_f16(b + 208) * float(static_cast<std::int8_t>(b[192 + g % 16]));
      *offset = 0;
      return;
    }
    case type::q2_K: {
      const std::uint8_t* b = row + 84 * (g / 16);
      const std::uint8_t sc = b[g % 16];
      *scale = load_f16(b + 80) * float(sc & 0xF);
      *offset = -(load_f16(b + 82) * float(sc >> 4));
      return;
    }
    case type::q3_K: {
      const std::uint8_t* b = row + 110 * (g / 16);
      *scale = load_f16(b + 108) * float(q3_scale(b + 96, int(g % 16)));
      *offset = -4.0f * *scale;
      return;
    }
    default: fail_type(t);
  }
}

}  // namespace detail

/// Fills `out` with the canonical form of q (see the table above).
inline void to_weight_source(const ggml_tensor& q, owned_weight_source& out) {
  const char* where = "pare::ggml::to_weight_source";
  const type t = q.format();
  const int bits = weight_source_bits(t);
  if (!bits)
    ::pare::detail::fail<unsupported_error>(where, ": argument 'q': ", to_string(t),
                                            " has no integer codes (expected an integer ggml format)");
  const std::size_t n = q.rows(), k = q.cols(), group = weight_source_group(t), ng = k / group;
  out.codes.assign(n * k, 0);
  out.scales.assign(n * ng, 0.0f);
  out.offsets.assign(n * ng, 0.0f);
  const std::int8_t* iq4 = iq4nl_codebook();
  std::vector<float> x(k);
  for (std::size_t i = 0; i < n; ++i) {
    dequantize_row(t, q.row(i), x.data(), k);
    for (std::size_t g = 0; g < ng; ++g) {
      float s = 0, o = 0;
      detail::group_params(t, q.row(i), g, &s, &o);
      out.scales[i * ng + g] = s;
      out.offsets[i * ng + g] = o;
      for (std::size_t j = g * group; j < (g + 1) * group; ++j) {
        // Recover the code; when the scale is zero every code gives x == offset, take 0.
        const float c = s != 0 ? (x[j] - o) / s : 0.0f;
        long code = std::lround(c);
        if (t == type::iq4_nl) {  // the value, not the index, is the code
          int best = 0;
          for (int v = 1; v < 16; ++v)
            if (std::fabs(float(iq4[v]) - c) < std::fabs(float(iq4[best]) - c)) best = v;
          code = iq4[best];
        }
        const bool in_range = bits == 8 ? (code >= -128 && code <= 127) : (code >= 0 && code <= 15);
        if (!in_range || (s != 0 && s * float(code) + o != x[j]))
          ::pare::detail::fail<format_error>(where, ": ", to_string(t), " element (", i, ", ", j,
                                             "): the block does not decode to an integer code (got ", c, ")");
        out.codes[i * k + j] = static_cast<std::uint8_t>(code);  // int8 as its two's complement byte
      }
    }
  }
  out.view = weight_source{n, k, group, bits, out.codes.data(), k, false, 0, out.scales.data(), out.offsets.data()};
}

}  // namespace ggml
PARE_NAMESPACE_END
