// Tests of b-bit code packing: hand-written layouts, round trips for every size, accessors, argument errors.
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include "pare/core/dtypes/packed_int.hpp"
#include "pare/core/rng.hpp"

namespace {
using bytes = std::vector<std::uint8_t>;

/// Code bytes of n random codes of the format (two's complement bytes for signed).
bytes random_codes(int bits, bool is_signed, std::size_t n, std::uint64_t seed) {
  pare::splitmix64 g(seed);
  bytes c(n);
  const int lo = is_signed ? -(1 << (bits - 1)) : 0;
  const int span = 1 << bits;
  for (auto& b : c) b = static_cast<std::uint8_t>(lo + int(g.next() % std::uint64_t(span)));
  return c;
}

bytes pack(int bits, const bytes& codes) {
  bytes out(pare::packed_row_bytes(bits, codes.size()), 0xEE);
  pare::pack_codes(bits, codes.data(), codes.size(), out.data());
  return out;
}

bytes unpack(int bits, bool is_signed, const bytes& packed, std::size_t n) {
  bytes out(n, 0xEE);
  pare::unpack_codes(bits, is_signed, packed.data(), n, out.data());
  return out;
}

/// Independent model of the layout: element i at bits [b·i, b·i+b-1] of a little-endian bit stream.
bytes pack_bitstream(int bits, const bytes& codes) {
  bytes out(pare::packed_row_bytes(bits, codes.size()), 0);
  if (bits == 8) return codes;
  for (std::size_t i = 0; i < codes.size(); ++i)
    for (int k = 0; k < bits; ++k)
      if ((codes[i] >> k) & 1) {
        const std::size_t t = std::size_t(bits) * i + std::size_t(k);
        out[t / 8] = static_cast<std::uint8_t>(out[t / 8] | (1u << (t % 8)));
      }
  return out;
}

/// Independent model of unpacking: code i read bit by bit from stream bits [b·i, b·i+b-1],
/// then sign-extended by arithmetic (v - 2^b when bit b-1 is set) for signed formats.
bytes unpack_bitstream(int bits, bool is_signed, const bytes& packed, std::size_t n) {
  bytes out(n);
  for (std::size_t i = 0; i < n; ++i) {
    int v = 0;
    for (int k = 0; k < bits; ++k) {
      const std::size_t t = std::size_t(bits) * i + std::size_t(k);
      v |= ((packed[t / 8] >> (t % 8)) & 1) << k;
    }
    if (is_signed && v >= (1 << (bits - 1))) v -= 1 << bits;
    out[i] = static_cast<std::uint8_t>(v & 0xFF);
  }
  return out;
}

std::vector<std::size_t> sizes() {
  std::vector<std::size_t> s;
  for (std::size_t n = 0; n <= 70; ++n) s.push_back(n);
  for (std::size_t n = 1000; n <= 1003; ++n) s.push_back(n);
  return s;
}
}  // namespace

TEST_CASE("packed_row_bytes per width") {
  CHECK(pare::packed_row_bytes(4, 0) == 0);
  CHECK(pare::packed_row_bytes(4, 1) == 1);
  CHECK(pare::packed_row_bytes(4, 7) == 4);
  CHECK(pare::packed_row_bytes(4, 8) == 4);
  CHECK(pare::packed_row_bytes(2, 1) == 1);
  CHECK(pare::packed_row_bytes(2, 4) == 1);
  CHECK(pare::packed_row_bytes(2, 5) == 2);
  CHECK(pare::packed_row_bytes(3, 1) == 3);
  CHECK(pare::packed_row_bytes(3, 8) == 3);
  CHECK(pare::packed_row_bytes(3, 9) == 6);
  CHECK(pare::packed_row_bytes(3, 0) == 0);
  for (int b = 5; b <= 7; ++b)
    for (std::size_t n = 0; n <= 70; ++n) CHECK(pare::packed_row_bytes(b, n) == (std::size_t(b) * n + 7) / 8);
  CHECK(pare::packed_row_bytes(5, 13) == 9);
  CHECK(pare::packed_row_bytes(6, 13) == 10);
  CHECK(pare::packed_row_bytes(7, 13) == 12);
  CHECK(pare::packed_row_bytes(5, 64) == 40);
  CHECK(pare::packed_row_bytes(8, 13) == 13);
  CHECK(pare::packed_row_bytes(4, 4096) == 2048);
}

TEST_CASE("4-bit layout: element 2k in the low nibble, 2k+1 in the high nibble") {
  CHECK(pack(4, {1, 2, 3}) == bytes{0x21, 0x03});
  // Signed int4: -1 → nibble 0xF (low), 7 → 0x7 (high).
  CHECK(pack(4, {0xFF, 0x07}) == bytes{0x7F});
  CHECK(pack(4, {static_cast<std::uint8_t>(-8), static_cast<std::uint8_t>(-1), 0, 5}) == bytes{0xF8, 0x50});
  CHECK(pack(4, {15, 0, 9, 10, 4}) == bytes{0x0F, 0xA9, 0x04});
  CHECK(unpack(4, true, {0x7F}, 2) == bytes{0xFF, 0x07});
  CHECK(unpack(4, false, {0x7F}, 2) == bytes{0x0F, 0x07});
  CHECK(unpack(4, true, {0x8F, 0x08}, 3) == bytes{0xFF, 0xF8, 0xF8});  // -1, -8, -8
  CHECK(unpack(4, false, {0x21, 0x03}, 3) == bytes{1, 2, 3});
}

TEST_CASE("2-bit layout: element 4k+j at bits [2j, 2j+1] of byte k") {
  CHECK(pack(2, {0, 1, 2, 3}) == bytes{0xE4});  // 3<<6 | 2<<4 | 1<<2 | 0
  CHECK(pack(2, {3, 3, 0, 0, 1}) == bytes{0x0F, 0x01});
  // Signed int2: -2 → 0b10, -1 → 0b11, 1 → 0b01.
  CHECK(pack(2, {0xFE, 0xFF, 0x01, 0x00, 0xFF, 0xFE}) == bytes{0x1E, 0x0B});
  CHECK(unpack(2, true, {0x1E, 0x0B}, 6) == bytes{0xFE, 0xFF, 0x01, 0x00, 0xFF, 0xFE});
  CHECK(unpack(2, false, {0xE4}, 4) == bytes{0, 1, 2, 3});
}

TEST_CASE("3-bit layout: element 8k+j at bits [3j, 3j+2] of the little-endian 24-bit word of bytes 3k..3k+2") {
  // Codes 0..7: w = 0o76543210 = 0xFAC688 → bytes 0x88, 0xC6, 0xFA.
  CHECK(pack(3, {0, 1, 2, 3, 4, 5, 6, 7}) == bytes{0x88, 0xC6, 0xFA});
  // One code: 5 in bits 0..2 of a 3-byte group, padding zero.
  CHECK(pack(3, {5}) == bytes{0x05, 0x00, 0x00});
  // Code 7 at j = 2 straddles bytes 0 and 1 (bits 6..8); at j = 5 bytes 1 and 2 (bits 15..17).
  CHECK(pack(3, {0, 0, 7}) == bytes{0xC0, 0x01, 0x00});
  CHECK(pack(3, {0, 0, 0, 0, 0, 7}) == bytes{0x00, 0x80, 0x03});
  // Nine codes: a second group holding only element 8.
  CHECK(pack(3, {7, 7, 7, 7, 7, 7, 7, 7, 1}) == bytes{0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x00});
  // Signed int3: -4 → 0b100, -1 → 0b111, 3 → 0b011: w = 3<<6 | 7<<3 | 4 = 0xFC.
  CHECK(pack(3, {0xFC, 0xFF, 0x03}) == bytes{0xFC, 0x00, 0x00});
  CHECK(unpack(3, true, {0xFC, 0x00, 0x00}, 3) == bytes{0xFC, 0xFF, 0x03});
  CHECK(unpack(3, false, {0x88, 0xC6, 0xFA}, 8) == bytes{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("8-bit codes take one byte each, stored unchanged") {
  const bytes c = random_codes(8, true, 37, 108);
  CHECK(pack(8, c) == c);
  CHECK(unpack(8, true, c, c.size()) == c);
}

TEST_CASE("5-, 6-, 7-bit layout: a little-endian bit stream, codes straddling bytes") {
  CHECK(pack(5, {1, 2, 3}) == bytes{0x41, 0x0C});  // 1 at bits 0..4, 2 at 5..9, 3 at 10..14
  CHECK(unpack(5, false, {0x41, 0x0C}, 3) == bytes{1, 2, 3});
  CHECK(pack(5, {31, 31, 31, 31, 31, 31, 31, 31}) == bytes{0xFF, 0xFF, 0xFF, 0xFF, 0xFF});
  CHECK(pack(5, {0, 0, 0, 0, 0, 0, 0, 31}) == bytes{0x00, 0x00, 0x00, 0x00, 0xF8});  // bits 35..39
  CHECK(pack(6, {63, 0, 1, 2}) == bytes{0x3F, 0x10, 0x08});
  CHECK(pack(6, {0, 0x3F}) == bytes{0xC0, 0x0F});  // bits 6..11 straddle
  CHECK(pack(7, {static_cast<std::uint8_t>(-1), static_cast<std::uint8_t>(-64)}) == bytes{0x7F, 0x20});
  CHECK(unpack(7, true, {0x7F, 0x20}, 2) == bytes{0xFF, 0xC0});  // -1, -64 sign-extended from bit 6
  CHECK(unpack(7, false, {0x7F, 0x20}, 2) == bytes{0x7F, 0x40});
  CHECK(unpack(5, true, {0x10}, 1) == bytes{0xF0});  // 0b10000 = -16
  CHECK(unpack(6, true, {0x1F}, 1) == bytes{0x1F});  // 0b011111 = 31
  CHECK(pare::get_code(5, true, bytes{0x41, 0x0C}.data(), 1) == 2);
  CHECK(pare::get_code(7, true, bytes{0x7F, 0x20}.data(), 1) == -64);
}

TEST_CASE("bit-stream oracle: pack, unpack, get_code and set_code for every b in 2..8, n in 0..70") {
  for (int bits = 2; bits <= 8; ++bits) {
    for (bool sgn : {false, true}) {
      for (std::size_t n = 0; n <= 70; ++n) {
        INFO("bits " << bits << (sgn ? " signed" : " unsigned") << ", n " << n);
        const bytes c = random_codes(bits, sgn, n, 4099 * n + std::uint64_t(bits) * 2 + sgn);
        const bytes p = pack(bits, c);
        REQUIRE(p.size() == pare::packed_row_bytes(bits, n));
        CHECK(p == pack_bitstream(bits, c));
        CHECK(unpack(bits, sgn, p, n) == unpack_bitstream(bits, sgn, p, n));
        CHECK(unpack(bits, sgn, p, n) == c);
        // set_code into a zeroed row, back to front, gives the same bytes.
        bytes q(p.size(), 0);
        for (std::size_t t = n; t-- > 0;)
          pare::set_code(bits, sgn, q.data(), t, sgn ? int(static_cast<std::int8_t>(c[t])) : int(c[t]));
        CHECK(q == p);
        bool ok = true;
        for (std::size_t i = 0; i < n; ++i) {
          const int v = sgn ? int(static_cast<std::int8_t>(c[i])) : int(c[i]);
          ok = ok && pare::get_code(bits, sgn, p.data(), i) == v;
        }
        CHECK(ok);
      }
    }
  }
}

TEST_CASE("pack then unpack restores the codes: bits 2..8, signed and unsigned, sizes 0..70 and 1000..1003") {
  for (int bits = 2; bits <= 8; ++bits) {
    for (bool sgn : {false, true}) {
      for (std::size_t n : sizes()) {
        INFO("bits " << bits << (sgn ? " signed" : " unsigned") << ", n " << n);
        const bytes c = random_codes(bits, sgn, n, 7919 * n + std::uint64_t(bits) * 2 + sgn);
        const bytes p = pack(bits, c);
        REQUIRE(p.size() == pare::packed_row_bytes(bits, n));
        CHECK(p == pack_bitstream(bits, c));  // layout per the bit-stream model (padding zero)
        CHECK(unpack(bits, sgn, p, n) == c);
        // get_code agrees with unpack, and sign-extension gives q.
        bool ok = true;
        for (std::size_t i = 0; i < n; ++i) {
          const int q = sgn ? int(static_cast<std::int8_t>(c[i])) : int(c[i]);
          ok = ok && pare::get_code(bits, sgn, p.data(), i) == q;
        }
        CHECK(ok);
      }
    }
  }
}

TEST_CASE("padding bits are zero and packing ignores code bits above the width") {
  for (int bits = 2; bits <= 7; ++bits) {
    for (std::size_t n : sizes()) {
      INFO("bits " << bits << ", n " << n);
      // Garbage above the low `bits` bits must not leak into neighbours or padding.
      bytes c = random_codes(bits, false, n, 31 * n + std::uint64_t(bits));
      bytes dirty(c);
      for (std::size_t i = 0; i < n; ++i) dirty[i] = static_cast<std::uint8_t>(dirty[i] | (0xFFu << bits));
      const bytes p = pack(bits, dirty);
      CHECK(p == pack(bits, c));
      const std::size_t used_bits = std::size_t(bits) * n, total_bits = 8 * p.size();
      bool zero = true;
      for (std::size_t t = used_bits; t < total_bits; ++t) zero = zero && ((p[t / 8] >> (t % 8)) & 1) == 0;
      CHECK(zero);
    }
  }
}

TEST_CASE("set_code writes one element and leaves the others and get_code reads it back") {
  for (int bits = 2; bits <= 8; ++bits) {
    for (bool sgn : {false, true}) {
      const std::size_t n = 37;
      INFO("bits " << bits << (sgn ? " signed" : " unsigned"));
      const bytes c = random_codes(bits, sgn, n, 555 + std::uint64_t(bits));
      const bytes target = random_codes(bits, sgn, n, 777 + std::uint64_t(bits));
      bytes p = pack(bits, c);
      bytes model(c);
      bool ok = true;
      for (std::size_t i = 0; i < n; i += 3) {  // overwrite every third element, check everything each time
        const int q = sgn ? int(static_cast<std::int8_t>(target[i])) : int(target[i]);
        pare::set_code(bits, sgn, p.data(), i, q);
        model[i] = target[i];
        ok = ok && unpack(bits, sgn, p, n) == model && p == pack(bits, model);
        ok = ok && pare::get_code(bits, sgn, p.data(), i) == q;
      }
      CHECK(ok);
    }
  }
  // Extremes of each signed width.
  bytes p(3, 0);
  pare::set_code(3, true, p.data(), 2, -4);
  pare::set_code(3, true, p.data(), 5, 3);
  CHECK(pare::get_code(3, true, p.data(), 2) == -4);
  CHECK(pare::get_code(3, true, p.data(), 5) == 3);
  CHECK(pare::get_code(3, false, p.data(), 2) == 4);
  CHECK(p == bytes{0x00, 0x81, 0x01});  // 0b100 at bits 6..8, 0b011 at bits 15..17
}

TEST_CASE("bits outside [2, 8] and out-of-range codes are argument errors naming the argument") {
  std::uint8_t codes[4] = {0, 1, 2, 3}, out[8] = {};
  for (int bits : {1, 9, 0, -4}) {
    CHECK_THROWS_AS(pare::packed_row_bytes(bits, 4), pare::argument_error);
    CHECK_THROWS_AS(pare::pack_codes(bits, codes, 4, out), pare::argument_error);
    CHECK_THROWS_AS(pare::unpack_codes(bits, true, out, 4, codes), pare::argument_error);
    CHECK_THROWS_AS(pare::get_code(bits, false, out, 0), pare::argument_error);
    CHECK_THROWS_AS(pare::set_code(bits, false, out, 0, 0), pare::argument_error);
  }
  CHECK_THROWS_WITH(pare::pack_codes(1, codes, 4, out), Catch::Contains("'bits'") && Catch::Contains("got 1"));
  CHECK_THROWS_WITH(pare::unpack_codes(9, false, out, 4, codes), Catch::Contains("'bits'") && Catch::Contains("got 9"));
  CHECK_THROWS_AS(pare::set_code(4, true, out, 0, 8), pare::argument_error);
  CHECK_THROWS_AS(pare::set_code(4, true, out, 0, -9), pare::argument_error);
  CHECK_THROWS_AS(pare::set_code(4, false, out, 0, 16), pare::argument_error);
  CHECK_THROWS_AS(pare::set_code(4, false, out, 0, -1), pare::argument_error);
  CHECK_THROWS_WITH(pare::set_code(2, true, out, 0, 2), Catch::Contains("'q'"));
  CHECK_NOTHROW(pare::set_code(8, true, out, 0, -128));
  CHECK_NOTHROW(pare::set_code(8, false, out, 0, 255));
  CHECK(pare::is_valid_code_bits(2));
  CHECK_FALSE(pare::is_valid_code_bits(9));
}

TEST_CASE("int4x2 and uint4x2 hold two nibbles in the packed-row order") {
  constexpr pare::int4x2 s = pare::int4x2::make(-1, 7);
  static_assert(s.byte == 0x7F && s.lo() == -1 && s.hi() == 7, "int4x2 is constexpr");
  for (int lo = -8; lo <= 7; ++lo)
    for (int hi = -8; hi <= 7; ++hi) {
      const pare::int4x2 v = pare::int4x2::make(lo, hi);
      const std::uint8_t codes[2] = {static_cast<std::uint8_t>(lo), static_cast<std::uint8_t>(hi)};
      std::uint8_t packed = 0;
      pare::pack_codes(4, codes, 2, &packed);
      CHECK((v.lo() == lo && v.hi() == hi && v.byte == packed));
    }
  for (unsigned lo = 0; lo < 16; ++lo)
    for (unsigned hi = 0; hi < 16; ++hi) {
      const pare::uint4x2 v = pare::uint4x2::make(lo, hi);
      CHECK((v.lo() == lo && v.hi() == hi && v.byte == (hi << 4 | lo)));
    }
  CHECK(pare::uint4x2::make(1, 2).byte == 0x21);
}
