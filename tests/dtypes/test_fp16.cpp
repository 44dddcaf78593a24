// Tests of binary16 conversions: exhaustive decode, encode against a float64 oracle, row converters per ISA.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>

#include "dtype_oracle.hpp"
#include "pare/core/dtypes/fp16.hpp"

namespace {
using namespace dtype_oracle;

/// The float64 value of a binary16 pattern from its fields (NaN for NaN patterns).
double fp16_reference_value(std::uint16_t h) {
  const bool neg = (h & 0x8000u) != 0;
  const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
  double v;
  if (e == 31)
    v = m == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  else
    v = value_of_fields(dtype_oracle::fp16, e, m);
  return neg ? -v : v;
}

std::uint16_t fp16_reference_encode(float x) {
  return static_cast<std::uint16_t>(encode(dtype_oracle::fp16, x, 15, {0x7C00u, 0x7C00u}));
}

bool is_nan16(std::uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0; }

/// Counts encode mismatches against the oracle over xs (NaN inputs skipped), reporting the first few.
std::size_t fp16_encode_mismatches(const std::vector<float>& xs) {
  std::size_t bad = 0;
  for (float x : xs) {
    if (std::isnan(x)) continue;
    const std::uint16_t got = pare::float_to_fp16(x), want = fp16_reference_encode(x);
    if (got != want && ++bad <= 5)
      FAIL_CHECK("float_to_fp16(" << x << " = 0x" << std::hex << bits_of(x) << ") = 0x" << got << ", oracle 0x"
                                << want);
  }
  return bad;
}

/// Ascending positive finite binary16 values (0 and subnormals included).
std::vector<double> fp16_positive_values() {
  std::vector<double> v;
  for (std::uint32_t h = 0; h < 0x7C00u; ++h) v.push_back(fp16_reference_value(static_cast<std::uint16_t>(h)));
  return v;
}

}  // namespace

TEST_CASE("fp16 decode: all 65536 patterns match the ldexp reference") {
  std::size_t bad = 0;
  for (std::uint32_t u = 0; u < 65536u; ++u) {
    const std::uint16_t h = static_cast<std::uint16_t>(u);
    const float got = pare::fp16_to_float(h);
    const double want = fp16_reference_value(h);
    bool ok;
    if (std::isnan(want)) {
      // NaN: same sign, quiet, payload moved up (s | 0x7FC00000 | m << 13).
      const std::uint32_t expect = (std::uint32_t(h & 0x8000u) << 16) | 0x7FC00000u | (std::uint32_t(h & 0x3FFu) << 13);
      ok = std::isnan(got) && bits_of(got) == expect;
    } else {
      ok = double(got) == want && std::signbit(got) == std::signbit(want);
    }
    if (!ok && ++bad <= 5) FAIL_CHECK("fp16_to_float(0x" << std::hex << u << ") = " << got << ", reference " << want);
  }
  CHECK(bad == 0);
  // A few values stated by hand.
  CHECK(pare::fp16_to_float(0x3C00) == 1.0f);
  CHECK(pare::fp16_to_float(0xC000) == -2.0f);
  CHECK(pare::fp16_to_float(0x7BFF) == 65504.0f);
  CHECK(pare::fp16_to_float(0x0001) == 0x1p-24f);
  CHECK(pare::fp16_to_float(0x03FF) == 1023 * 0x1p-24f);
  CHECK(pare::fp16_to_float(0x0400) == 0x1p-14f);
  CHECK(pare::fp16_to_float(0x3555) == 0x1.554p-2f);
  CHECK(std::signbit(pare::fp16_to_float(0x8000)));
  CHECK(pare::fp16_to_float(0xFC00) == -std::numeric_limits<float>::infinity());
}

TEST_CASE("fp16 round trip: encode(decode(h)) == h for every non-NaN pattern and NaNs come back quieted") {
  std::size_t bad = 0;
  for (std::uint32_t u = 0; u < 65536u; ++u) {
    const std::uint16_t h = static_cast<std::uint16_t>(u);
    const std::uint16_t back = pare::float_to_fp16(pare::fp16_to_float(h));
    const std::uint16_t want = is_nan16(h) ? static_cast<std::uint16_t>(h | 0x0200u) : h;
    if (back != want && ++bad <= 5) FAIL_CHECK("0x" << std::hex << u << " came back as 0x" << back);
  }
  CHECK(bad == 0);
}

TEST_CASE("fp16 encode: every midpoint between neighbours and its float neighbours, against the oracle") {
  const std::vector<double> values = fp16_positive_values();
  const std::vector<float> xs = boundary_cases(values, 65536.0);
  // Every value and midpoint is a float (binary16 needs 12 bits for a midpoint).
  CHECK(xs.size() == (2 * values.size()) * 6);
  CHECK(fp16_encode_mismatches(xs) == 0);
}

TEST_CASE("fp16 encode: random float bit patterns over the whole range and the binary16 range") {
  CHECK(fp16_encode_mismatches(random_bit_patterns(1 << 20, 1601)) == 0);
  // binary32 exponents 100..144: from below half the smallest subnormal to past overflow.
  CHECK(fp16_encode_mismatches(random_in_exponents(1 << 21, 1602, 100, 144)) == 0);
  // The top 16 bits (sign, exponent, 7 significand bits) exhaustively, 4 random low parts each.
  pare::splitmix64 g(1603);
  std::vector<float> xs;
  xs.reserve(65536 * 4);
  for (std::uint32_t top = 0; top < 65536u; ++top)
    for (int r = 0; r < 4; ++r) xs.push_back(float_of(top << 16 | static_cast<std::uint32_t>(g.next() & 0xFFFFu)));
  CHECK(fp16_encode_mismatches(xs) == 0);
}

TEST_CASE("fp16 encode: overflow threshold, subnormal ties, zeros and infinities") {
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(pare::float_to_fp16(65504.0f) == 0x7BFF);
  CHECK(pare::float_to_fp16(std::nextafter(65520.0f, 0.0f)) == 0x7BFF);  // 65519.996
  CHECK(pare::float_to_fp16(65520.0f) == 0x7C00);                         // tie → even → overflow
  CHECK(pare::float_to_fp16(-65520.0f) == 0xFC00);
  CHECK(pare::float_to_fp16(65536.0f) == 0x7C00);
  CHECK(pare::float_to_fp16(std::numeric_limits<float>::max()) == 0x7C00);
  CHECK(pare::float_to_fp16(inf) == 0x7C00);
  CHECK(pare::float_to_fp16(-inf) == 0xFC00);
  CHECK(pare::float_to_fp16(0.0f) == 0x0000);
  CHECK(pare::float_to_fp16(-0.0f) == 0x8000);
  CHECK(pare::float_to_fp16(0x1p-25f) == 0x0000);                            // tie between 0 and 2^-24 → 0
  CHECK(pare::float_to_fp16(-0x1p-25f) == 0x8000);
  CHECK(pare::float_to_fp16(std::nextafter(0x1p-25f, 1.0f)) == 0x0001);
  CHECK(pare::float_to_fp16(3 * 0x1p-25f) == 0x0002);                        // 1.5 units → even 2
  CHECK(pare::float_to_fp16(5 * 0x1p-25f) == 0x0002);                        // 2.5 units → even 2
  CHECK(pare::float_to_fp16(std::numeric_limits<float>::denorm_min()) == 0x0000);
  CHECK(pare::float_to_fp16(-std::numeric_limits<float>::min()) == 0x8000);
  CHECK(pare::float_to_fp16(0x1p-14f - 0x1p-25f) == 0x0400);                 // 1023.5 units → 1024: the smallest normal
  CHECK(pare::float_to_fp16(1.0f + 0x1p-11f) == 0x3C00);                     // tie → even
  CHECK(pare::float_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3C02);
}

TEST_CASE("fp16 encode: NaN stays NaN, keeps its sign, is quieted and keeps the top payload bits") {
  for (std::uint32_t u : {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFF800001u, 0x7FA00000u, 0x7FFFFFFFu, 0x7F802000u}) {
    const std::uint16_t h = pare::float_to_fp16(float_of(u));
    INFO("input 0x" << std::hex << u << " → 0x" << h);
    CHECK(is_nan16(h));
    CHECK((h & 0x8000u) == ((u >> 16) & 0x8000u));
    CHECK((h & 0x0200u) != 0);
    CHECK((h & 0x01FFu) == ((u >> 13) & 0x01FFu));
  }
}

TEST_CASE("fp16 type: explicit conversions and bit access") {
  const pare::fp16 one(1.0f);
  CHECK(one.bits() == 0x3C00);
  CHECK(static_cast<float>(one) == 1.0f);
  constexpr pare::fp16 h = pare::fp16::from_bits(0xC400);
  static_assert(h.bits() == 0xC400, "from_bits/bits are constexpr");
  CHECK(static_cast<float>(h) == -4.0f);
  CHECK(pare::fp16(0.1f).bits() == 0x2E66);
  static_assert(!std::is_convertible_v<float, pare::fp16>, "float → fp16 is explicit");
  static_assert(!std::is_convertible_v<pare::fp16, float>, "fp16 → float is explicit");
}

TEST_CASE("fp16 row converters: every enabled ISA gives the scalar bits, any size and misaligned pointers") {
  // Decoding: all 65536 patterns. Encoding: boundary cases, random patterns (NaNs included), specials.
  std::vector<std::uint16_t> hs(65536);
  for (std::uint32_t u = 0; u < 65536u; ++u) hs[u] = static_cast<std::uint16_t>(u);
  std::vector<float> xs = boundary_cases(fp16_positive_values(), 65536.0);
  for (float x : random_bit_patterns(1 << 16, 1604)) xs.push_back(x);
  for (std::uint32_t u : {0x7F800000u, 0xFF800000u, 0x7F800001u, 0xFFA00000u, 0x7FFFFFFFu, 0x00000001u, 0x80000000u})
    xs.push_back(float_of(u));
  check_row_converters(hs, xs, pare::convert_fp16_to_float, pare::convert_float_to_fp16, pare::fp16_to_float,
                       pare::float_to_fp16);
}

TEST_CASE("fp16 encode: all 2^32 floats against the oracle", "[.][exhaustive]") {
  std::size_t bad = 0;
  std::uint32_t u = 0;
  do {
    const float x = float_of(u);
    if (!std::isnan(x)) {
      const std::uint16_t got = pare::float_to_fp16(x), want = fp16_reference_encode(x);
      if (got != want && ++bad <= 5) FAIL_CHECK("0x" << std::hex << u << ": 0x" << got << " vs 0x" << want);
    }
  } while (++u != 0);
  CHECK(bad == 0);
}

// Not run by default: the dispatched row converter (F16C where available) against the scalar
// encoder on all 2^32 floats, NaNs included. About 15 s per ISA level.
TEST_CASE("fp16 row encode: all 2^32 floats on every ISA equal the scalar encoder", "[.][exhaustive]") {
  std::vector<float> xs(1 << 16);
  std::vector<std::uint16_t> hs(xs.size());
  pare::for_each_isa(pare::detected_isas() & (pare::isa::avx2 | pare::isa::scalar), [&](pare::isa level) {
    pare::set_enabled_isas(pare::with_lower_levels(level));
    std::size_t bad = 0;
    for (std::uint32_t hi = 0; hi < 65536u; ++hi) {
      for (std::uint32_t lo = 0; lo < 65536u; ++lo) xs[lo] = float_of(hi << 16 | lo);
      pare::convert_float_to_fp16(xs.data(), hs.data(), xs.size());
      for (std::uint32_t lo = 0; lo < 65536u; ++lo)
        if (hs[lo] != pare::float_to_fp16(xs[lo]) && ++bad <= 5)
          FAIL_CHECK(pare::to_string(level) << ": 0x" << std::hex << (hi << 16 | lo));
    }
    CHECK(bad == 0);
  });
  pare::reset_enabled_isas();
}
