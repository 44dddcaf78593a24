// Tests of bfloat16 conversions: exhaustive decode, encode against a float64 oracle, row converters per ISA.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>

#include "dtype_oracle.hpp"
#include "pare/core/dtypes/bf16.hpp"

namespace {
using namespace dtype_oracle;

double bf16_reference_value(std::uint16_t h) {
  const bool neg = (h & 0x8000u) != 0;
  const int e = (h >> 7) & 0xFF, m = h & 0x7F;
  double v;
  if (e == 255)
    v = m == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  else
    v = value_of_fields(dtype_oracle::bf16, e, m);
  return neg ? -v : v;
}

std::uint16_t bf16_reference_encode(float x) {
  return static_cast<std::uint16_t>(encode(dtype_oracle::bf16, x, 15, {0x7F80u, 0x7F80u}));
}

bool is_nan_bf16(std::uint16_t h) { return (h & 0x7F80u) == 0x7F80u && (h & 0x7Fu) != 0; }

std::size_t bf16_encode_mismatches(const std::vector<float>& xs) {
  std::size_t bad = 0;
  for (float x : xs) {
    if (std::isnan(x)) continue;
    const std::uint16_t got = pare::float_to_bf16(x), want = bf16_reference_encode(x);
    if (got != want && ++bad <= 5)
      FAIL_CHECK("float_to_bf16(" << x << " = 0x" << std::hex << bits_of(x) << ") = 0x" << got << ", oracle 0x"
                                << want);
  }
  return bad;
}

std::vector<double> bf16_positive_values() {
  std::vector<double> v;
  for (std::uint32_t h = 0; h < 0x7F80u; ++h) v.push_back(bf16_reference_value(static_cast<std::uint16_t>(h)));
  return v;
}
}  // namespace

TEST_CASE("bf16 decode: all 65536 patterns match the ldexp reference") {
  std::size_t bad = 0;
  for (std::uint32_t u = 0; u < 65536u; ++u) {
    const std::uint16_t h = static_cast<std::uint16_t>(u);
    const float got = pare::bf16_to_float(h);
    const double want = bf16_reference_value(h);
    const bool ok = std::isnan(want) ? (std::isnan(got) && bits_of(got) == u << 16)  // NaNs widen unchanged
                                     : (double(got) == want && std::signbit(got) == std::signbit(want));
    if (!ok && ++bad <= 5) FAIL_CHECK("bf16_to_float(0x" << std::hex << u << ") = " << got << ", reference " << want);
  }
  CHECK(bad == 0);
  CHECK(pare::bf16_to_float(0x3F80) == 1.0f);
  CHECK(pare::bf16_to_float(0xC049) == -3.140625f);
  CHECK(pare::bf16_to_float(0x7F7F) == 255.0f * 0x1p120f);
  CHECK(pare::bf16_to_float(0x0001) == 0x1p-133f);
  CHECK(std::signbit(pare::bf16_to_float(0x8000)));
}

TEST_CASE("bf16 round trip: encode(decode(h)) == h for every non-NaN pattern and NaNs come back quieted") {
  std::size_t bad = 0;
  for (std::uint32_t u = 0; u < 65536u; ++u) {
    const std::uint16_t h = static_cast<std::uint16_t>(u);
    const std::uint16_t back = pare::float_to_bf16(pare::bf16_to_float(h));
    const std::uint16_t want = is_nan_bf16(h) ? static_cast<std::uint16_t>(h | 0x0040u) : h;
    if (back != want && ++bad <= 5) FAIL_CHECK("0x" << std::hex << u << " came back as 0x" << back);
  }
  CHECK(bad == 0);
}

TEST_CASE("bf16 encode: every midpoint between neighbours (subnormals and overflow included) against the oracle") {
  const std::vector<double> values = bf16_positive_values();
  const std::vector<float> xs = boundary_cases(values, 0x1p128);
  CHECK(xs.size() == (2 * values.size()) * 6);  // every value and midpoint is a float
  CHECK(bf16_encode_mismatches(xs) == 0);
}

TEST_CASE("bf16 encode: random float bit patterns against the oracle") {
  CHECK(bf16_encode_mismatches(random_bit_patterns(1 << 21, 1701)) == 0);
  // Float subnormals and the smallest normals; then near overflow.
  CHECK(bf16_encode_mismatches(random_in_exponents(1 << 20, 1702, 0, 2)) == 0);
  CHECK(bf16_encode_mismatches(random_in_exponents(1 << 20, 1703, 250, 254)) == 0);
  // Ties: low 16 bits exactly 0x8000 for every top half (odd and even kept lsb).
  std::vector<float> ties;
  for (std::uint32_t top = 0; top < 65536u; ++top) ties.push_back(float_of(top << 16 | 0x8000u));
  CHECK(bf16_encode_mismatches(ties) == 0);
}

TEST_CASE("bf16 encode: hand-checked values, overflow, zeros, NaN") {
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(pare::float_to_bf16(1.0f) == 0x3F80);
  CHECK(pare::float_to_bf16(float_of(0x3F808000u)) == 0x3F80);  // tie, even kept
  CHECK(pare::float_to_bf16(float_of(0x3F818000u)) == 0x3F82);  // tie, odd kept → up
  CHECK(pare::float_to_bf16(float_of(0x3F808001u)) == 0x3F81);
  CHECK(pare::float_to_bf16(std::numeric_limits<float>::max()) == 0x7F80);  // rounds past 0x7F7F
  CHECK(pare::float_to_bf16(float_of(0x7F7F7FFFu)) == 0x7F7F);
  CHECK(pare::float_to_bf16(float_of(0x7F7F8000u)) == 0x7F80);              // tie at the top → even = inf
  CHECK(pare::float_to_bf16(-inf) == 0xFF80);
  CHECK(pare::float_to_bf16(-0.0f) == 0x8000);
  CHECK(pare::float_to_bf16(std::numeric_limits<float>::denorm_min()) == 0x0000);
  CHECK(pare::float_to_bf16(float_of(0x00008001u)) == 0x0001);  // float subnormal, above the tie
  for (std::uint32_t u : {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFF800001u, 0x7FA00000u, 0x7FFFFFFFu}) {
    const std::uint16_t h = pare::float_to_bf16(float_of(u));
    INFO("input 0x" << std::hex << u << " → 0x" << h);
    CHECK(is_nan_bf16(h));
    CHECK((h & 0x8000u) == ((u >> 16) & 0x8000u));
    CHECK((h & 0x0040u) != 0);
    CHECK((h & 0x003Fu) == ((u >> 16) & 0x003Fu));
  }
  const pare::bf16 b(3.140625f);
  CHECK(b.bits() == 0x4049);
  CHECK(static_cast<float>(pare::bf16::from_bits(0x4049)) == 3.140625f);
}

TEST_CASE("bf16 row converters: every enabled ISA gives the scalar bits, any size and misaligned pointers") {
  // Decoding: all 65536 patterns. Encoding: boundary cases, random patterns (NaNs included), specials.
  std::vector<std::uint16_t> hs(65536);
  for (std::uint32_t u = 0; u < 65536u; ++u) hs[u] = static_cast<std::uint16_t>(u);
  std::vector<float> xs = boundary_cases(bf16_positive_values(), 0x1p128);
  for (float x : random_bit_patterns(1 << 16, 1704)) xs.push_back(x);
  for (std::uint32_t u : {0x7F800000u, 0xFF800000u, 0x7F800001u, 0xFFA00000u, 0x7FFFFFFFu, 0x7F7F8000u, 0x80000000u})
    xs.push_back(float_of(u));
  check_row_converters(hs, xs, pare::convert_bf16_to_float, pare::convert_float_to_bf16, pare::bf16_to_float,
                       pare::float_to_bf16);
}

TEST_CASE("bf16 encode: all 2^32 floats against the oracle", "[.][exhaustive]") {
  std::size_t bad = 0;
  std::uint32_t u = 0;
  do {
    const float x = float_of(u);
    if (!std::isnan(x)) {
      const std::uint16_t got = pare::float_to_bf16(x), want = bf16_reference_encode(x);
      if (got != want && ++bad <= 5) FAIL_CHECK("0x" << std::hex << u << ": 0x" << got << " vs 0x" << want);
    }
  } while (++u != 0);
  CHECK(bad == 0);
}
