// packed_int8 / packed_int4: quantized weights in the tiled layouts the integer matmul kernels read, built from a weight_source.
#pragma once

// Layout (normative for every ISA variant; N is padded to tiles of 16 output rows,
// K to kp = a multiple of 4 (int8) or 8 (int4) with zero codes):
//   int8 codes  [tile][k/4][row 0..15][4 consecutive k]   64 bytes per (tile, quad):
//               byte 4r + j = code[16·tile + r][4q + j] (two's complement);
//               per group and tile, 16 floats each in separate arrays:
//               scale[tile][g][r], offset[tile][g][r] (absent if every offset is 0) and
//               csum[tile][g][r] = Σ_{k∈g} code (int32), which kernels feeding
//               activations as unsigned bytes (q + 128) subtract 128 times.
//   int4        one contiguous stream per tile, group after group:
//               [G/8 blocks of 64 bytes][16 fp32 scales][16 fp32 offsets, if any]
//               where byte 4r + j of block o holds code[16·tile + r][8o + j] in its low
//               nibble and code[16·tile + r][8o + 4 + j] in its high nibble (codes 0..15).
//               Masking the low nibbles of a block gives the int8-style quad block of
//               k = 8o..8o+3, shifting by 4 the one of k = 8o+4..8o+7. Keeping the
//               parameters inside the stream lets a GEMV read each tile sequentially.
//   Padding rows have zero codes, scales and offsets. scales16(t, g) / offsets16(t, g)
//   point at the 16 parameters of a (tile, group) in either format (offsets16: null
//   when there are none).
// Group sizes: G = K (per-channel, any K: the padded k belong to the one group) or G a
// multiple of 4 (int8) / 8 (int4). Anything else is an argument_error from pack_*().

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/kernels/matmul/weight_source.hpp"

PARE_NAMESPACE_BEGIN

/// Rows per tile of the packed layouts.
constexpr std::size_t matmul_tile_rows = 16;

/// K alignment of the packed layouts: 4 (int8 quads) or 8 (int4 octets).
constexpr std::size_t packed_k_align(int bits) noexcept { return bits == 4 ? 8 : 4; }

/// Whether the packers take groups of `group` along K for `bits`-bit codes: K itself
/// (per output channel) or a multiple of packed_k_align(bits). The rule every caller
/// that chooses between the integer kernels and another path consults
/// (pare/quant/kernel_weights.hpp).
constexpr bool packable_group(int bits, std::size_t group, std::size_t k) noexcept {
  return (bits == 8 || bits == 4) && group > 0 && group <= k && k % group == 0 &&
         (group == k || group % packed_k_align(bits) == 0);
}

/// What both packed formats share: shape, groups and per-group parameters.
struct packed_weights_base {
  std::size_t n = 0, k = 0, kp = 0, group = 0, groups = 0, tiles = 0;
  aligned_buffer<float> scale, offset;  // [tile][group][16] (int8; int4 keeps them in its stream)

  bool has_offsets() const noexcept { return offsets_; }
  /// Group size in the padded k (equal to group except per-channel with K % 4 != 0).
  std::size_t padded_group() const noexcept { return groups == 1 ? kp : group; }

 protected:
  bool offsets_ = false;

  void init(const weight_source& w, std::size_t k_align, const char* where) {
    w.validate(where);
    if (!packable_group(w.bits, w.group, w.k))
      detail::fail<argument_error>(where, ": argument 'group': expected K or a multiple of ", k_align, ", got ", w.group,
                                   " (K = ", w.k, ")");
    n = w.n;
    k = w.k;
    kp = (w.k + k_align - 1) / k_align * k_align;
    group = w.group;
    groups = w.groups();
    tiles = (n + matmul_tile_rows - 1) / matmul_tile_rows;
    scale = aligned_buffer<float>(tiles * groups * matmul_tile_rows);
    std::fill(scale.data(), scale.data() + scale.size(), 0.0f);
    bool any_offset = false;
    if (w.offsets)
      for (std::size_t i = 0; i < n * groups && !any_offset; ++i) any_offset = w.offsets[i] != 0.0f;
    offsets_ = any_offset;
    if (any_offset) {
      offset = aligned_buffer<float>(scale.size());
      std::fill(offset.data(), offset.data() + offset.size(), 0.0f);
    }
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t at = ((i / matmul_tile_rows) * groups + g) * matmul_tile_rows + i % matmul_tile_rows;
        scale[at] = w.scales[i * groups + g];
        if (any_offset) offset[at] = w.offsets[i * groups + g];
      }
  }
  std::size_t param_bytes() const noexcept {
    return n * groups * sizeof(float) * (has_offsets() ? 2 : 1);
  }
};

class packed_int8 : public packed_weights_base {
 public:
  aligned_buffer<std::int8_t> codes;  // [tile][kp/4][64]
  aligned_buffer<std::int32_t> csum;  // [tile][group][16]

  const float* scales16(std::size_t t, std::size_t g) const noexcept { return scale.data() + (t * groups + g) * 16; }
  const float* offsets16(std::size_t t, std::size_t g) const noexcept {
    return has_offsets() ? offset.data() + (t * groups + g) * 16 : nullptr;
  }
  float scale_at(std::size_t i, std::size_t g) const noexcept { return scales16(i / 16, g)[i % 16]; }
  float offset_at(std::size_t i, std::size_t g) const noexcept {
    return has_offsets() ? offsets16(i / 16, g)[i % 16] : 0.0f;
  }
  /// Codes, scales and offsets as stored for the real rows (padding excluded).
  std::size_t storage_bytes() const noexcept { return n * k + param_bytes(); }
  double bits_per_weight() const noexcept { return 8.0 * double(storage_bytes()) / double(n * k); }
  int code(std::size_t i, std::size_t j) const noexcept {
    return codes[((i / matmul_tile_rows) * (kp / 4) + j / 4) * 64 + (i % matmul_tile_rows) * 4 + j % 4];
  }
  /// The canonical value scale·code + offset of W[i][j].
  float value(std::size_t i, std::size_t j) const noexcept {
    const std::size_t g = j / group;
    return scale_at(i, g) * float(code(i, j)) + offset_at(i, g);
  }
  friend packed_int8 pack_int8(const weight_source& w);
};

class packed_int4 : public packed_weights_base {
 public:
  aligned_buffer<std::uint8_t> codes;  // [tile] streams (see the layout above)
  std::size_t group_bytes = 0, tile_bytes = 0;

  /// The 64-byte block of octet `o` (within group g) of tile t.
  const std::uint8_t* block(std::size_t t, std::size_t g, std::size_t o_in_group) const noexcept {
    return codes.data() + t * tile_bytes + g * group_bytes + o_in_group * 64;
  }
  const float* scales16(std::size_t t, std::size_t g) const noexcept {
    return reinterpret_cast<const float*>(block(t, g, padded_group() / 8));
  }
  const float* offsets16(std::size_t t, std::size_t g) const noexcept {
    return has_offsets() ? scales16(t, g) + 16 : nullptr;
  }
  float scale_at(std::size_t i, std::size_t g) const noexcept { return scales16(i / 16, g)[i % 16]; }
  float offset_at(std::size_t i, std::size_t g) const noexcept {
    return has_offsets() ? offsets16(i / 16, g)[i % 16] : 0.0f;
  }
  /// Nibbles (two per byte), scales and offsets for the real rows.
  std::size_t storage_bytes() const noexcept { return (n * k + 1) / 2 + param_bytes(); }
  double bits_per_weight() const noexcept { return 8.0 * double(storage_bytes()) / double(n * k); }
  int code(std::size_t i, std::size_t j) const noexcept {
    const std::size_t go = padded_group() / 8, o = j / 8;
    const std::uint8_t b = block(i / 16, o / go, o % go)[(i % 16) * 4 + j % 4];
    return (j % 8) < 4 ? (b & 15) : (b >> 4);
  }
  float value(std::size_t i, std::size_t j) const noexcept {
    const std::size_t g = j / group;
    return scale_at(i, g) * float(code(i, j)) + offset_at(i, g);
  }
  friend packed_int4 pack_int4(const weight_source& w);
};

/// Packs 8-bit canonical weights (see the layout above). Throws argument_error /
/// value_error naming the field for bad input.
inline packed_int8 pack_int8(const weight_source& w) {
  const char* where = "pare::pack_int8";
  if (w.bits != 8) detail::fail<argument_error>(where, ": argument 'w.bits': expected 8, got ", w.bits);
  packed_int8 p;
  p.init(w, packed_k_align(8), where);
  const std::size_t quads = p.kp / 4, T = matmul_tile_rows;
  p.codes = aligned_buffer<std::int8_t>(p.tiles * quads * 64);
  p.csum = aligned_buffer<std::int32_t>(p.tiles * p.groups * T);
  parallel_for(0, p.tiles, 4, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t t = lo; t < hi; ++t) {
      std::int8_t* dst = p.codes.data() + t * quads * 64;
      std::fill(dst, dst + quads * 64, std::int8_t(0));
      std::int32_t* cs = p.csum.data() + t * p.groups * T;
      std::fill(cs, cs + p.groups * T, 0);
      for (std::size_t r = 0; r < T && t * T + r < p.n; ++r)
        for (std::size_t j = 0; j < w.k; ++j) {
          const int c = w.code(t * T + r, j);
          dst[(j / 4) * 64 + r * 4 + j % 4] = static_cast<std::int8_t>(c);
          cs[(j / p.group) * T + r] += c;
        }
    }
  });
  return p;
}

/// Packs 4-bit canonical weights (codes 0..15; see the layout above).
inline packed_int4 pack_int4(const weight_source& w) {
  const char* where = "pare::pack_int4";
  if (w.bits != 4) detail::fail<argument_error>(where, ": argument 'w.bits': expected 4, got ", w.bits);
  packed_int4 p;
  p.init(w, packed_k_align(4), where);
  const std::size_t go = p.padded_group() / 8, T = matmul_tile_rows;
  p.group_bytes = go * 64 + 64 + (p.has_offsets() ? 64 : 0);
  p.tile_bytes = p.groups * p.group_bytes;
  p.codes = aligned_buffer<std::uint8_t>(p.tiles * p.tile_bytes);
  parallel_for(0, p.tiles, 4, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t t = lo; t < hi; ++t) {
      std::uint8_t* tile = p.codes.data() + t * p.tile_bytes;
      std::fill(tile, tile + p.tile_bytes, std::uint8_t(0));
      for (std::size_t r = 0; r < T && t * T + r < p.n; ++r)
        for (std::size_t j = 0; j < w.k; ++j) {
          const unsigned c = unsigned(w.code(t * T + r, j));
          const std::size_t o = j / 8;
          std::uint8_t& b = tile[(o / go) * p.group_bytes + (o % go) * 64 + r * 4 + j % 4];
          b = static_cast<std::uint8_t>((j % 8) < 4 ? (b & 0xF0u) | c : (b & 0x0Fu) | (c << 4));
        }
      for (std::size_t g = 0; g < p.groups; ++g) {
        float* params = reinterpret_cast<float*>(tile + g * p.group_bytes + go * 64);
        std::copy(p.scale.data() + (t * p.groups + g) * T, p.scale.data() + (t * p.groups + g + 1) * T, params);
        if (p.has_offsets())
          std::copy(p.offset.data() + (t * p.groups + g) * T, p.offset.data() + (t * p.groups + g + 1) * T, params + T);
      }
    }
  });
  p.scale = aligned_buffer<float>();  // the stream holds them now
  p.offset = aligned_buffer<float>();
  return p;
}

PARE_NAMESPACE_END
