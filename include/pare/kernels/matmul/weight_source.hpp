// weight_source: the canonical unpacked form of quantized weights that every matmul packer consumes.
#pragma once

// Semantics (normative for every packer and kernel):
//
//   W[n][k] = scale[n * groups + k / group] * code[n][k] + offset[n * groups + k / group]
//
// with groups = K / group (group divides K; group == K means per output channel).
//   bits == 8: codes are signed int8 in [-128, 127], one byte each (codes8).
//   bits == 4: codes are unsigned in [0, 15], one byte each (codes4, not nibble-packed:
//              packers choose their own nibble layout).
//   offset may be null (all zero). An offset expresses a zero point (offset = -scale * z)
//   or a GGUF "min" (Q4_K: offset = -dmin * m), so pare's quantizer output and ggml
//   blocks (Q8_0, Q4_0, Q4_K) all convert to this form and pack the same way.
// from_quantized() converts a pare::quantized_tensor (int8/uint8 or int4/uint4 formats,
// per_channel axis 0 or per_group) to this form, owning the converted arrays.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/quant/quantized_tensor.hpp"

PARE_NAMESPACE_BEGIN

/// Non-owning view of canonical quantized weights [n out, k in] (see the header comment).
struct weight_source {
  std::size_t n = 0, k = 0, group = 0;
  int bits = 8;                          // 8 or 4
  const std::int8_t* codes8 = nullptr;   // bits == 8: n * k, row-major
  const std::uint8_t* codes4 = nullptr;  // bits == 4: n * k values in [0, 15], row-major
  const float* scales = nullptr;         // n * (k / group)
  const float* offsets = nullptr;        // n * (k / group), or null for zero

  std::size_t groups() const noexcept { return group ? k / group : 0; }

  /// Dequantized W[i][j] in float (the value the kernels multiply by).
  float value(std::size_t i, std::size_t j) const noexcept {
    const std::size_t g = i * groups() + j / group;
    const float c = bits == 8 ? float(codes8[i * k + j]) : float(codes4[i * k + j]);
    return scales[g] * c + (offsets ? offsets[g] : 0.0f);
  }

  /// Throws argument_error / value_error naming `where` unless the fields are consistent:
  /// bits 8 or 4, group in [1, k] dividing k, arrays present, 4-bit codes <= 15,
  /// finite scales and offsets.
  void validate(const char* where) const {
    if (bits != 8 && bits != 4)
      detail::fail<argument_error>(where, ": argument 'bits': expected 8 or 4, got ", bits);
    if (n == 0 || k == 0)
      detail::fail<shape_error>(where, ": expected a non-empty weight matrix, got [", n, ", ", k, "]");
    if (group == 0 || group > k || k % group != 0)
      detail::fail<argument_error>(where, ": argument 'group': expected a divisor of K = ", k, ", got ", group);
    if ((bits == 8 && !codes8) || (bits == 4 && !codes4) || !scales)
      detail::fail<argument_error>(where, ": expected codes and scales, got a null pointer");
    if (bits == 4)
      for (std::size_t i = 0; i < n * k; ++i)
        if (codes4[i] > 15)
          detail::fail<value_error>(where, ": 4-bit code at (", i / k, ", ", i % k, "): expected [0, 15], got ",
                                    int(codes4[i]));
    for (std::size_t i = 0; i < n * groups(); ++i)
      if (!std::isfinite(scales[i]) || (offsets && !std::isfinite(offsets[i])))
        detail::fail<value_error>(where, ": scale/offset of group ", i % groups(), " of row ", i / groups(),
                                  ": expected finite values");
  }
};

/// A weight_source together with the arrays it points to.
struct owned_weight_source {
  std::vector<std::int8_t> codes8;
  std::vector<std::uint8_t> codes4;
  std::vector<float> scales, offsets;
  weight_source view;

  owned_weight_source() = default;
  owned_weight_source(const owned_weight_source&) = delete;
  owned_weight_source& operator=(const owned_weight_source&) = delete;
};

/// Converts pare's quantizer output to the canonical form. Accepts 8-bit (int8 or
/// uint8) and 4-bit (int4 or uint4) formats, per_channel axis 0 or per_group; anything
/// else is an unsupported_error naming the config.
inline void from_quantized(const quantized_tensor& qt, owned_weight_source& out) {
  const char* where = "pare::from_quantized";
  const quant_config& c = qt.config;
  const int bits = c.format.bits;
  if (bits != 8 && bits != 4)
    detail::fail<unsupported_error>(where, ": argument 'qt': expected an 8- or 4-bit format, got ", c.str());
  const bool rows_ok = (c.gran.kind == granularity_kind::per_channel && c.gran.axis == 0) ||
                       c.gran.kind == granularity_kind::per_group;
  if (!rows_ok)
    detail::fail<unsupported_error>(where, ": argument 'qt': expected per_channel (axis 0) or per_group, got ",
                                    c.str());
  const std::size_t n = qt.rows, k = qt.cols;
  const std::size_t group = c.gran.kind == granularity_kind::per_group ? c.gran.group_size : k;
  const std::size_t ng = k / group;
  // 8-bit codes become signed bytes, 4-bit codes unsigned nibbles; the shift moves into the offset.
  const int shift = bits == 8 ? (c.format.is_signed ? 0 : -128) : (c.format.is_signed ? 8 : 0);
  out.codes8.clear();
  out.codes4.clear();
  if (bits == 8) out.codes8.resize(n * k); else out.codes4.resize(n * k);
  out.scales.resize(n * ng);
  out.offsets.resize(n * ng);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < k; ++j) {
      const int q = qt.code(i, j) + shift;
      if (bits == 8) out.codes8[i * k + j] = static_cast<std::int8_t>(q);
      else out.codes4[i * k + j] = static_cast<std::uint8_t>(q);
    }
    for (std::size_t g = 0; g < ng; ++g) {
      const qparams p = qt.params_at(i, g * group);
      out.scales[i * ng + g] = p.scale;
      out.offsets[i * ng + g] = -p.scale * static_cast<float>(p.zero_point + shift);
    }
  }
  out.view = weight_source{n, k, group, bits, bits == 8 ? out.codes8.data() : nullptr,
                           bits == 4 ? out.codes4.data() : nullptr, out.scales.data(), out.offsets.data()};
}

PARE_NAMESPACE_END
