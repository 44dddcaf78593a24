// Packing of b-bit integer codes (b = 2..7 bit-packed; 8 one byte each) into rows of bytes, and back.
#pragma once

// Terms
// -----
// A *code* is the integer q a quantizer produced for one element. A *code byte* holds
// the low 8 bits of q: two's complement for signed formats, so int8_t(code) == q, and
// q itself for unsigned ones. This is the form pare's quantize kernels write.
// Signed b-bit codes lie in [-2^(b-1), 2^(b-1) - 1], unsigned ones in [0, 2^b - 1].
//
// Layout of one packed row (normative):
//
//   4-bit  two codes per byte; element 2k in the LOW nibble of byte k, element 2k+1
//          in the HIGH nibble (the compressed-tensors "pack-quantized" order):
//
//              byte k:  7         4 3         0
//                      +-----------+-----------+
//                      |  q[2k+1]  |   q[2k]   |
//                      +-----------+-----------+
//
//          A signed nibble is the 4-bit two's complement of q in [-8, 7], an unsigned
//          one q in [0, 15]. Codes [1, 2, 3] pack to {0x21, 0x03}; signed [-1, 7] to {0x7F}.
//
//   2-bit  four codes per byte; element 4k+j at bits [2j, 2j+1] of byte k:
//
//              byte k:  7     6 5     4 3     2 1     0
//                      +-------+-------+-------+-------+
//                      |q[4k+3]|q[4k+2]|q[4k+1]| q[4k] |
//                      +-------+-------+-------+-------+
//
//   3-bit  eight codes per three bytes; element 8k+j at bits [3j, 3j+2] of the
//          little-endian 24-bit word w = b[3k] | b[3k+1] << 8 | b[3k+2] << 16:
//
//              w:  23  21 20  18 17  15 14  12 11   9 8    6 5    3 2    0
//                 +------+------+------+------+------+------+------+------+
//                 |  q7  |  q6  |  q5  |  q4  |  q3  |  q2  |  q1  |  q0  |
//                 +------+------+------+------+------+------+------+------+
//                                                              (qj = q[8k+j])
//          so, byte by byte (j:i = bit i of qj; q2 and q5 straddle two bytes):
//
//              bit     :  7   6   5   4   3   2   1   0
//              b[3k]   : 2:1 2:0 1:2 1:1 1:0 0:2 0:1 0:0
//              b[3k+1] : 5:0 4:2 4:1 4:0 3:2 3:1 3:0 2:2
//              b[3k+2] : 7:2 7:1 7:0 6:2 6:1 6:0 5:2 5:1
//
//          Codes 0..7 pack to {0x88, 0xC6, 0xFA}.
//
//   5-, 6-, 7-bit  the same bit stream: element i at stream bits [b·i, b·i + b - 1],
//          low bit first; a code straddles two bytes whenever (b·i) mod 8 > 8 - b.
//          E.g. 5-bit codes [1, 2, 3] pack to {0x41, 0x0C}: stream bits 0..4 = 1,
//          5..9 = 2, 10..14 = 3.
//
//   In all of 2..7 bits, element i occupies bits [b·i, b·i + b - 1] of the row read as
//   a little-endian bit stream (stream bit t is bit t mod 8 of byte t / 8).
//
//   8-bit  one code byte per element, stored unchanged (signed formats: the 8-bit
//          two's complement, i.e. already sign-extended).
//
//   Rows   every row starts on a byte boundary and takes packed_row_bytes(b, n) bytes
//          for n codes: 4-bit ceil(n/2), 2-bit ceil(n/4), 3-bit 3·ceil(n/8), 5-, 6-,
//          7-bit ceil(n·b/8), 8-bit n. Padding bits after the last code are zero.
//
// Packing reads only the low b bits of each code byte (b <= 7); unpacking writes code
// bytes again, sign-extended from bit b-1 for signed formats. The bulk functions
// validate `bits` and nothing per element; get_code/set_code validate their arguments.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pare/core/error.hpp"

PARE_NAMESPACE_BEGIN

/// True when `bits` is a code width pare stores (2..8).
constexpr bool is_valid_code_bits(int bits) noexcept { return bits >= 2 && bits <= 8; }

namespace detail {
inline void check_code_bits(const char* fn, int bits) {
  if (!is_valid_code_bits(bits))
    fail<argument_error>(fn, ": argument 'bits': expected an integer in [2, 8], got ", bits);
}

/// The b-bit two's complement value v (0 <= v < 2^b) sign-extended, as a code byte.
constexpr std::uint8_t sign_extend_code(unsigned v, unsigned b) noexcept {
  const unsigned m = 1u << (b - 1u);
  return static_cast<std::uint8_t>((v ^ m) - m);
}

constexpr std::size_t packed_row_bytes_unchecked(int bits, std::size_t n) noexcept {
  switch (bits) {
    case 2: return n / 4 + (n % 4 != 0);
    case 3: return 3 * (n / 8 + (n % 8 != 0));
    case 4: return n / 2 + (n % 2 != 0);
    case 5: case 6: case 7: return (n * std::size_t(bits) + 7) / 8;
    default: return n;
  }
}
}  // namespace detail

/// Bytes of one packed row of n codes of `bits` bits (see the layout above).
inline std::size_t packed_row_bytes(int bits, std::size_t n) {
  detail::check_code_bits("packed_row_bytes", bits);
  return detail::packed_row_bytes_unchecked(bits, n);
}

namespace kernels {
namespace ref {
// Row packers. Contract: any n (0 included), no alignment, codes and packed must not
// overlap; a packer writes exactly packed_row_bytes(b, n) bytes (padding bits zero), an
// unpacker exactly n code bytes. Nothing is validated.

/// 4-bit: packed[k] = (codes[2k] & 15) | codes[2k+1] << 4.
inline void pack_codes4(const std::uint8_t* PARE_RESTRICT codes, std::size_t n,
                        std::uint8_t* PARE_RESTRICT packed) noexcept {
  const std::size_t pairs = n / 2;
  for (std::size_t k = 0; k < pairs; ++k)
    packed[k] = static_cast<std::uint8_t>((codes[2 * k] & 0x0Fu) | (unsigned(codes[2 * k + 1]) << 4));
  if (n % 2 != 0) packed[pairs] = static_cast<std::uint8_t>(codes[n - 1] & 0x0Fu);
}

/// 4-bit: codes[2k] = low nibble, codes[2k+1] = high nibble of packed[k] (sign-extended if Signed).
template <bool Signed>
void unpack_codes4(const std::uint8_t* PARE_RESTRICT packed, std::size_t n,
                   std::uint8_t* PARE_RESTRICT codes) noexcept {
  const std::size_t pairs = n / 2;
  for (std::size_t k = 0; k < pairs; ++k) {
    const unsigned b = packed[k];
    const unsigned lo = b & 0x0Fu, hi = b >> 4;
    codes[2 * k] = Signed ? ::pare::detail::sign_extend_code(lo, 4) : static_cast<std::uint8_t>(lo);
    codes[2 * k + 1] = Signed ? ::pare::detail::sign_extend_code(hi, 4) : static_cast<std::uint8_t>(hi);
  }
  if (n % 2 != 0) {
    const unsigned lo = packed[pairs] & 0x0Fu;
    codes[n - 1] = Signed ? ::pare::detail::sign_extend_code(lo, 4) : static_cast<std::uint8_t>(lo);
  }
}

/// 2-bit: packed[k] = sum over j < 4 of (codes[4k+j] & 3) << 2j.
inline void pack_codes2(const std::uint8_t* PARE_RESTRICT codes, std::size_t n,
                        std::uint8_t* PARE_RESTRICT packed) noexcept {
  const std::size_t quads = n / 4;
  for (std::size_t k = 0; k < quads; ++k) {
    const std::uint8_t* c = codes + 4 * k;
    packed[k] = static_cast<std::uint8_t>((c[0] & 3u) | (c[1] & 3u) << 2 | (c[2] & 3u) << 4 | unsigned(c[3]) << 6);
  }
  if (n % 4 != 0) {
    unsigned b = 0;
    for (std::size_t j = 0; j < n % 4; ++j) b |= (codes[4 * quads + j] & 3u) << (2 * j);
    packed[quads] = static_cast<std::uint8_t>(b);
  }
}

/// 2-bit: codes[4k+j] = bits [2j, 2j+1] of packed[k] (sign-extended if Signed).
template <bool Signed>
void unpack_codes2(const std::uint8_t* PARE_RESTRICT packed, std::size_t n,
                   std::uint8_t* PARE_RESTRICT codes) noexcept {
  const auto code = [](unsigned v) { return Signed ? ::pare::detail::sign_extend_code(v, 2) : static_cast<std::uint8_t>(v); };
  const std::size_t quads = n / 4;
  for (std::size_t k = 0; k < quads; ++k) {
    const unsigned b = packed[k];
    for (unsigned j = 0; j < 4; ++j) codes[4 * k + j] = code((b >> (2 * j)) & 3u);
  }
  for (std::size_t j = 0; j < n % 4; ++j) codes[4 * quads + j] = code((unsigned(packed[quads]) >> (2 * j)) & 3u);
}

/// 3-bit: bytes 3k..3k+2 = the little-endian 24-bit word sum over j < 8 of (codes[8k+j] & 7) << 3j.
inline void pack_codes3(const std::uint8_t* PARE_RESTRICT codes, std::size_t n,
                        std::uint8_t* PARE_RESTRICT packed) noexcept {
  const auto put = [](const std::uint8_t* c, std::uint8_t* out) {
    std::uint32_t w = 0;
    for (unsigned j = 0; j < 8; ++j) w |= std::uint32_t(c[j] & 7u) << (3 * j);
    out[0] = static_cast<std::uint8_t>(w);
    out[1] = static_cast<std::uint8_t>(w >> 8);
    out[2] = static_cast<std::uint8_t>(w >> 16);
  };
  const std::size_t groups = n / 8;
  for (std::size_t k = 0; k < groups; ++k) put(codes + 8 * k, packed + 3 * k);
  if (n % 8 != 0) {
    std::uint8_t tail[8] = {};
    std::memcpy(tail, codes + 8 * groups, n % 8);
    put(tail, packed + 3 * groups);
  }
}

/// 3-bit: codes[8k+j] = bits [3j, 3j+2] of the 24-bit word of bytes 3k..3k+2 (sign-extended if Signed).
template <bool Signed>
void unpack_codes3(const std::uint8_t* PARE_RESTRICT packed, std::size_t n,
                   std::uint8_t* PARE_RESTRICT codes) noexcept {
  const auto code = [](unsigned v) { return Signed ? ::pare::detail::sign_extend_code(v, 3) : static_cast<std::uint8_t>(v); };
  const auto word = [](const std::uint8_t* p) {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16;
  };
  const std::size_t groups = n / 8;
  for (std::size_t k = 0; k < groups; ++k) {
    const std::uint32_t w = word(packed + 3 * k);
    for (unsigned j = 0; j < 8; ++j) codes[8 * k + j] = code((w >> (3 * j)) & 7u);
  }
  if (n % 8 != 0) {
    const std::uint32_t w = word(packed + 3 * groups);
    for (std::size_t j = 0; j < n % 8; ++j) codes[8 * groups + j] = code((w >> (3 * j)) & 7u);
  }
}

/// 5-, 6-, 7-bit (any b in [1, 8] works): the low b bits of codes[i] at stream bits
/// [b·i, b·i + b - 1], low bit first; writes ceil(n·b/8) bytes.
inline void pack_codes_stream(unsigned b, const std::uint8_t* PARE_RESTRICT codes, std::size_t n,
                              std::uint8_t* PARE_RESTRICT packed) noexcept {
  const unsigned mask = (1u << b) - 1u;
  std::uint32_t acc = 0;  // pending stream bits, lowest first; fewer than 8 between codes
  unsigned have = 0;
  std::size_t o = 0;
  for (std::size_t i = 0; i < n; ++i) {
    acc |= std::uint32_t(codes[i] & mask) << have;
    have += b;
    while (have >= 8) {
      packed[o++] = static_cast<std::uint8_t>(acc);
      acc >>= 8;
      have -= 8;
    }
  }
  if (have != 0) packed[o] = static_cast<std::uint8_t>(acc);
}

/// Inverse of pack_codes_stream: codes[i] = stream bits [b·i, b·i + b - 1] (sign-extended
/// from bit b - 1 if Signed); reads ceil(n·b/8) bytes.
template <bool Signed>
void unpack_codes_stream(unsigned b, const std::uint8_t* PARE_RESTRICT packed, std::size_t n,
                         std::uint8_t* PARE_RESTRICT codes) noexcept {
  const unsigned mask = (1u << b) - 1u;
  std::uint32_t acc = 0;
  unsigned have = 0;
  std::size_t p = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (have < b) {
      acc |= std::uint32_t(packed[p++]) << have;
      have += 8;
    }
    const unsigned v = acc & mask;
    acc >>= b;
    have -= b;
    codes[i] = Signed ? ::pare::detail::sign_extend_code(v, b) : static_cast<std::uint8_t>(v);
  }
}
}  // namespace ref
}  // namespace kernels

/// Packs n code bytes into packed_row_bytes(bits, n) bytes at `out` (layout above;
/// padding bits zero). For bits <= 7 only the low `bits` bits of each code byte are
/// used; for 8 the bytes are copied. `codes` and `out` must not overlap.
/// Throws argument_error if bits is not in [2, 8].
inline void pack_codes(int bits, const std::uint8_t* codes, std::size_t n, std::uint8_t* out) {
  detail::check_code_bits("pack_codes", bits);
  switch (bits) {
    case 2: kernels::ref::pack_codes2(codes, n, out); break;
    case 3: kernels::ref::pack_codes3(codes, n, out); break;
    case 4: kernels::ref::pack_codes4(codes, n, out); break;
    case 5: case 6: case 7: kernels::ref::pack_codes_stream(unsigned(bits), codes, n, out); break;
    default:
      if (n != 0) std::memcpy(out, codes, n);
  }
}

/// Unpacks n codes of a packed row into n code bytes; signed formats are sign-extended
/// so that int8_t(codes[i]) == q. `packed` and `codes` must not overlap.
/// Throws argument_error if bits is not in [2, 8].
inline void unpack_codes(int bits, bool is_signed, const std::uint8_t* packed, std::size_t n, std::uint8_t* codes) {
  detail::check_code_bits("unpack_codes", bits);
  namespace kr = kernels::ref;
  switch (bits) {
    case 2: is_signed ? kr::unpack_codes2<true>(packed, n, codes) : kr::unpack_codes2<false>(packed, n, codes); break;
    case 3: is_signed ? kr::unpack_codes3<true>(packed, n, codes) : kr::unpack_codes3<false>(packed, n, codes); break;
    case 4: is_signed ? kr::unpack_codes4<true>(packed, n, codes) : kr::unpack_codes4<false>(packed, n, codes); break;
    case 5: case 6: case 7:
      is_signed ? kr::unpack_codes_stream<true>(unsigned(bits), packed, n, codes)
                : kr::unpack_codes_stream<false>(unsigned(bits), packed, n, codes);
      break;
    default:
      if (n != 0) std::memcpy(codes, packed, n);
  }
}

/// The code q of element i of a packed row (signed formats: in [-2^(bits-1), 2^(bits-1) - 1]).
/// Throws argument_error if bits is not in [2, 8].
inline int get_code(int bits, bool is_signed, const std::uint8_t* packed_row, std::size_t i) {
  detail::check_code_bits("get_code", bits);
  if (bits == 8) return is_signed ? int(static_cast<std::int8_t>(packed_row[i])) : int(packed_row[i]);
  const std::size_t t = std::size_t(bits) * i;  // first bit in the row's little-endian bit stream
  const unsigned shift = unsigned(t % 8);
  unsigned v = unsigned(packed_row[t / 8]) >> shift;
  if (shift + unsigned(bits) > 8) v |= unsigned(packed_row[t / 8 + 1]) << (8 - shift);  // straddling (3, 5..7 bits)
  v &= (1u << bits) - 1u;
  return is_signed ? int(static_cast<std::int8_t>(detail::sign_extend_code(v, unsigned(bits)))) : int(v);
}

/// Stores code q as element i of a packed row, leaving the other elements unchanged.
/// Throws argument_error if bits is not in [2, 8] or q is outside the format's range.
inline void set_code(int bits, bool is_signed, std::uint8_t* packed_row, std::size_t i, int q) {
  detail::check_code_bits("set_code", bits);
  const int lo = is_signed ? -(1 << (bits - 1)) : 0;
  const int hi = is_signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
  if (q < lo || q > hi)
    detail::fail<argument_error>("set_code: argument 'q': expected an integer in [", lo, ", ", hi, "] for ",
                                 is_signed ? "signed " : "unsigned ", bits, "-bit codes, got ", q);
  if (bits == 8) {
    packed_row[i] = static_cast<std::uint8_t>(q & 0xFF);
    return;
  }
  const unsigned mask = (1u << bits) - 1u;
  const unsigned v = unsigned(q) & mask;
  const std::size_t t = std::size_t(bits) * i;
  const unsigned shift = unsigned(t % 8);
  std::uint8_t* p = packed_row + t / 8;
  p[0] = static_cast<std::uint8_t>((p[0] & ~(mask << shift)) | (v << shift));
  if (shift + unsigned(bits) > 8) {  // straddling (3, 5..7 bits): the high part goes into the next byte
    const unsigned spill = 8 - shift;
    p[1] = static_cast<std::uint8_t>((p[1] & ~(mask >> spill)) | (v >> spill));
  }
}

/// Two signed 4-bit codes in one byte, laid out as in a packed row: lo() is the element
/// with the even index (bits 0..3), hi() the odd one (bits 4..7); each in [-8, 7].
struct int4x2 {
  std::uint8_t byte;
  /// Packs the low 4 bits of lo and hi (values outside [-8, 7] wrap).
  static constexpr int4x2 make(int lo, int hi) noexcept {
    return int4x2{static_cast<std::uint8_t>((unsigned(lo) & 0x0Fu) | (unsigned(hi) & 0x0Fu) << 4)};
  }
  constexpr int lo() const noexcept { return int((byte & 0x0Fu) ^ 8u) - 8; }
  constexpr int hi() const noexcept { return int((unsigned(byte) >> 4) ^ 8u) - 8; }
};

/// Two unsigned 4-bit codes in one byte: lo() bits 0..3 (even element), hi() bits 4..7; each in [0, 15].
struct uint4x2 {
  std::uint8_t byte;
  /// Packs the low 4 bits of lo and hi (values outside [0, 15] wrap).
  static constexpr uint4x2 make(unsigned lo, unsigned hi) noexcept {
    return uint4x2{static_cast<std::uint8_t>((lo & 0x0Fu) | (hi & 0x0Fu) << 4)};
  }
  constexpr unsigned lo() const noexcept { return byte & 0x0Fu; }
  constexpr unsigned hi() const noexcept { return unsigned(byte) >> 4; }
};

static_assert(sizeof(int4x2) == 1 && sizeof(uint4x2) == 1, "pare::int4x2 / uint4x2 must be one byte");

PARE_NAMESPACE_END
