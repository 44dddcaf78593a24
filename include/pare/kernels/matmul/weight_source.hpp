// weight_source: the canonical form of quantized weights that every matmul packer consumes, read in place from the producer's code bytes.
#pragma once

// Semantics (normative for every packer and kernel):
//
//   W[n][k] = scale[n * groups + k / group] * code[n][k] + offset[n * groups + k / group]
//
// with groups = K / group (group divides K; group == K means per output channel).
//   bits == 8: codes are signed int8 in [-128, 127].
//   bits == 4: codes are unsigned in [0, 15].
//   offset may be null (all zero). An offset expresses a zero point (offset = -scale * z)
//   or a GGUF "min" (Q4_K: offset = -dmin * m), so pare's quantizer output and ggml
//   blocks (Q8_0, Q4_0, Q4_K) all convert to this form and pack the same way.
// Where the codes are (no copy: packers read the producer's bytes):
//   row i starts at codes + i * row_bytes; within a row, code j is
//     one byte per code (nibbles == false)  byte j
//     two codes per byte (nibbles == true, bits == 4 only)  the low nibble of byte j / 2
//         for even j, the high nibble for odd j (pare/core/dtypes/packed_int.hpp's order)
//   and the stored value is XORed with `flip` before use: 0x80 turns unsigned 8-bit codes
//   q into the signed q - 128, 0x8 turns signed 4-bit two's complement nibbles v into the
//   unsigned v + 8 (the offset then carries the shift; pare/quant/kernel_weights.hpp).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pare/core/error.hpp"

PARE_NAMESPACE_BEGIN

/// Non-owning view of canonical quantized weights [n out, k in] (see the header comment).
struct weight_source {
  std::size_t n = 0, k = 0, group = 0;
  int bits = 8;                          // 8 or 4
  const std::uint8_t* codes = nullptr;   // row i at codes + i * row_bytes
  std::size_t row_bytes = 0;             // bytes from one row to the next
  bool nibbles = false;                  // bits == 4: two codes per byte
  std::uint8_t flip = 0;                 // XORed into every stored code
  const float* scales = nullptr;         // n * (k / group)
  const float* offsets = nullptr;        // n * (k / group), or null for zero

  /// Signed 8-bit codes, one byte each, rows of k bytes.
  static weight_source int8(std::size_t n, std::size_t k, std::size_t group, const std::int8_t* codes,
                            const float* scales, const float* offsets = nullptr) {
    return weight_source{n, k, group, 8, reinterpret_cast<const std::uint8_t*>(codes), k, false, 0, scales, offsets};
  }
  /// Unsigned 4-bit codes in [0, 15], one byte each, rows of k bytes.
  static weight_source uint4(std::size_t n, std::size_t k, std::size_t group, const std::uint8_t* codes,
                             const float* scales, const float* offsets = nullptr) {
    return weight_source{n, k, group, 4, codes, k, false, 0, scales, offsets};
  }

  std::size_t groups() const noexcept { return group ? k / group : 0; }

  /// code[i][j]: int8 for bits == 8, [0, 15] for bits == 4.
  int code(std::size_t i, std::size_t j) const noexcept {
    const std::uint8_t* row = codes + i * row_bytes;
    if (bits == 8) return int(static_cast<std::int8_t>(row[j] ^ flip));
    const std::uint8_t b = nibbles ? std::uint8_t(row[j / 2] >> (4 * (j % 2))) : row[j];
    return int((b ^ flip) & 15u);
  }

  /// Dequantized W[i][j] in float (the value the kernels multiply by).
  float value(std::size_t i, std::size_t j) const noexcept {
    const std::size_t g = i * groups() + j / group;
    return scales[g] * float(code(i, j)) + (offsets ? offsets[g] : 0.0f);
  }

  /// Throws argument_error / value_error naming `where` unless the fields are consistent:
  /// bits 8 or 4, group in [1, k] dividing k, codes and scales present, rows long
  /// enough, one-byte 4-bit codes <= 15, finite scales and offsets.
  void validate(const char* where) const {
    if (bits != 8 && bits != 4)
      detail::fail<argument_error>(where, ": argument 'bits': expected 8 or 4, got ", bits);
    if (n == 0 || k == 0)
      detail::fail<shape_error>(where, ": expected a non-empty weight matrix, got [", n, ", ", k, "]");
    if (group == 0 || group > k || k % group != 0)
      detail::fail<argument_error>(where, ": argument 'group': expected a divisor of K = ", k, ", got ", group);
    if (!codes || !scales) detail::fail<argument_error>(where, ": expected codes and scales, got a null pointer");
    if (nibbles && bits != 4) detail::fail<argument_error>(where, ": argument 'nibbles': expected only with bits 4");
    const std::size_t need = nibbles ? (k + 1) / 2 : k;
    if (row_bytes < need)
      detail::fail<argument_error>(where, ": argument 'row_bytes': expected at least ", need, " for K = ", k, ", got ",
                                   row_bytes);
    if (bits == 4 && !nibbles)
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < k; ++j)
          if (((codes[i * row_bytes + j] ^ flip) & 0xF0u) != 0)
            detail::fail<value_error>(where, ": 4-bit code at (", i, ", ", j, "): expected [0, 15], got ",
                                      int(codes[i * row_bytes + j] ^ flip));
    for (std::size_t i = 0; i < n * groups(); ++i)
      if (!std::isfinite(scales[i]) || (offsets && !std::isfinite(offsets[i])))
        detail::fail<value_error>(where, ": scale/offset of group ", i % groups(), " of row ", i / groups(),
                                  ": expected finite values");
  }
};

/// A weight_source with the arrays it points to, for producers that convert codes or
/// parameters (ggml blocks, pare's quantizer output with zero points as offsets).
struct owned_weight_source {
  std::vector<std::uint8_t> codes;
  std::vector<float> scales, offsets;
  weight_source view;

  owned_weight_source() = default;
  owned_weight_source(const owned_weight_source&) = delete;
  owned_weight_source& operator=(const owned_weight_source&) = delete;
};

PARE_NAMESPACE_END
