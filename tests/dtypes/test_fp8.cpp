// Tests of fp8 E4M3 / E5M2 conversions: exhaustive decode, encode against a float64 oracle in both modes.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>

#include "dtype_oracle.hpp"
#include "pare/core/dtypes/fp8.hpp"

namespace {
using namespace dtype_oracle;
constexpr double inf64 = std::numeric_limits<double>::infinity();
constexpr double nan64 = std::numeric_limits<double>::quiet_NaN();

double e4m3_reference_value(std::uint8_t c) {
  const bool neg = (c & 0x80u) != 0;
  const int e = (c >> 3) & 0xF, m = c & 0x7;
  const double v = (e == 15 && m == 7) ? nan64 : value_of_fields(dtype_oracle::e4m3, e, m);
  return neg ? -v : v;
}

double e5m2_reference_value(std::uint8_t c) {
  const bool neg = (c & 0x80u) != 0;
  const int e = (c >> 2) & 0x1F, m = c & 0x3;
  const double v = e == 31 ? (m == 0 ? inf64 : nan64) : value_of_fields(dtype_oracle::e5m2, e, m);
  return neg ? -v : v;
}

// Overflow codes: saturating → the largest finite code; otherwise NaN (E4M3) / infinity (E5M2).
std::uint8_t e4m3_reference_encode(float x, bool saturate) {
  const std::uint32_t o = saturate ? 0x7Eu : 0x7Fu;
  return static_cast<std::uint8_t>(encode(dtype_oracle::e4m3, x, 7, {o, o}));
}
std::uint8_t e5m2_reference_encode(float x, bool saturate) {
  const std::uint32_t o = saturate ? 0x7Bu : 0x7Cu;
  return static_cast<std::uint8_t>(encode(dtype_oracle::e5m2, x, 7, {o, o}));
}

template <class Impl, class Ref>
std::size_t encode_mismatches(const std::vector<float>& xs, Impl impl, Ref ref, const char* name) {
  std::size_t bad = 0;
  for (bool sat : {true, false}) {
    for (float x : xs) {
      if (std::isnan(x)) continue;
      const unsigned got = impl(x, sat), want = ref(x, sat);
      if (got != want && ++bad <= 5)
        FAIL_CHECK(name << "(" << x << " = 0x" << std::hex << bits_of(x) << ", saturate=" << sat << ") = 0x" << got
                        << ", oracle 0x" << want);
    }
  }
  return bad;
}

template <class Ref>
std::vector<double> positive_values(Ref ref, std::uint8_t last) {
  std::vector<double> v;
  for (unsigned c = 0; c <= last; ++c) v.push_back(ref(static_cast<std::uint8_t>(c)));
  return v;
}

/// Boundary cases, random patterns over everything, and dense random floats around the format's range.
std::vector<float> encode_inputs(const std::vector<double>& values, double next_above_max, int elo, int ehi,
                                 std::uint64_t seed) {
  std::vector<float> xs = boundary_cases(values, next_above_max);
  for (float x : random_bit_patterns(1 << 18, seed)) xs.push_back(x);
  for (float x : random_in_exponents(1 << 20, seed + 1, elo, ehi)) xs.push_back(x);
  const float inf = std::numeric_limits<float>::infinity();
  for (float x : {0.0f, inf, std::numeric_limits<float>::max(), std::numeric_limits<float>::min(),
                  std::numeric_limits<float>::denorm_min(), 1e10f, 1e-10f}) {
    xs.push_back(x);
    xs.push_back(-x);
  }
  return xs;
}
}  // namespace

TEST_CASE("e4m3 decode: all 256 codes match the ldexp reference and round-trip") {
  for (unsigned u = 0; u < 256; ++u) {
    const std::uint8_t c = static_cast<std::uint8_t>(u);
    const float got = pare::e4m3_to_float(c);
    const double want = e4m3_reference_value(c);
    INFO("code 0x" << std::hex << u);
    if (std::isnan(want)) {
      CHECK(std::isnan(got));
      CHECK(std::signbit(got) == ((u & 0x80u) != 0));
      CHECK(pare::float_to_e4m3(got) == c);  // NaN → the NaN with the same sign
      CHECK(pare::float_to_e4m3(got, false) == c);
    } else {
      CHECK(double(got) == want);
      CHECK(std::signbit(got) == ((u & 0x80u) != 0));
      CHECK(pare::float_to_e4m3(got, true) == c);
      CHECK(pare::float_to_e4m3(got, false) == c);
    }
  }
  // Only 0x7F and 0xFF are NaN; no infinities.
  int nans = 0;
  for (unsigned u = 0; u < 256; ++u) {
    nans += std::isnan(pare::e4m3_to_float(static_cast<std::uint8_t>(u)));
    CHECK_FALSE(std::isinf(pare::e4m3_to_float(static_cast<std::uint8_t>(u))));
  }
  CHECK(nans == 2);
  CHECK(pare::e4m3_to_float(0x7E) == 448.0f);
  CHECK(pare::e4m3_to_float(0x78) == 256.0f);
  CHECK(pare::e4m3_to_float(0x38) == 1.0f);
  CHECK(pare::e4m3_to_float(0x08) == 0x1p-6f);
  CHECK(pare::e4m3_to_float(0x01) == 0x1p-9f);
  CHECK(pare::e4m3_to_float(0x07) == 7 * 0x1p-9f);
  CHECK(pare::e4m3_to_float(0xFE) == -448.0f);
  CHECK(pare::e4m3_max == 448.0f);
}

TEST_CASE("e5m2 decode: all 256 codes match the ldexp reference and round-trip") {
  for (unsigned u = 0; u < 256; ++u) {
    const std::uint8_t c = static_cast<std::uint8_t>(u);
    const float got = pare::e5m2_to_float(c);
    const double want = e5m2_reference_value(c);
    INFO("code 0x" << std::hex << u);
    if (std::isnan(want)) {
      CHECK(std::isnan(got));
      CHECK(std::signbit(got) == ((u & 0x80u) != 0));
      CHECK(pare::float_to_e5m2(got) == ((u & 0x80u) | 0x7Fu));  // the sign's NaN S.11111.11
    } else {
      CHECK(double(got) == want);
      CHECK(std::signbit(got) == ((u & 0x80u) != 0));
      CHECK(pare::float_to_e5m2(got, false) == c);
      if (!std::isinf(want)) CHECK(pare::float_to_e5m2(got, true) == c);
    }
  }
  CHECK(pare::e5m2_to_float(0x7B) == 57344.0f);
  CHECK(pare::e5m2_to_float(0x7C) == std::numeric_limits<float>::infinity());
  CHECK(pare::e5m2_to_float(0xFC) == -std::numeric_limits<float>::infinity());
  CHECK(pare::e5m2_to_float(0x3C) == 1.0f);
  CHECK(pare::e5m2_to_float(0x04) == 0x1p-14f);
  CHECK(pare::e5m2_to_float(0x01) == 0x1p-16f);
  CHECK(pare::e5m2_to_float(0x03) == 3 * 0x1p-16f);
  CHECK(pare::e5m2_max == 57344.0f);
}

TEST_CASE("e4m3 encode: midpoints, neighbours and dense random floats against the oracle, both modes") {
  const std::vector<double> values = positive_values(e4m3_reference_value, 0x7E);
  const std::vector<float> xs = encode_inputs(values, 480.0, 110, 140, 1801);
  CHECK(encode_mismatches(xs, pare::float_to_e4m3, e4m3_reference_encode, "float_to_e4m3") == 0);
}

TEST_CASE("e5m2 encode: midpoints, neighbours and dense random floats against the oracle, both modes") {
  const std::vector<double> values = positive_values(e5m2_reference_value, 0x7B);
  const std::vector<float> xs = encode_inputs(values, 65536.0, 104, 146, 1811);
  CHECK(encode_mismatches(xs, pare::float_to_e5m2, e5m2_reference_encode, "float_to_e5m2") == 0);
}

TEST_CASE("e4m3 encode: saturation, non-saturation, ties, subnormals, zeros and NaN") {
  const float inf = std::numeric_limits<float>::infinity();
  // Largest value and the overflow threshold 464 (tie between 448 and the unencodable 480).
  CHECK(pare::float_to_e4m3(448.0f, false) == 0x7E);
  CHECK(pare::float_to_e4m3(464.0f, false) == 0x7E);  // tie → even significand (110) → 448
  CHECK(pare::float_to_e4m3(std::nextafter(464.0f, inf), false) == 0x7F);  // NaN
  CHECK(pare::float_to_e4m3(std::nextafter(464.0f, inf), true) == 0x7E);
  CHECK(pare::float_to_e4m3(-500.0f, false) == 0xFF);
  CHECK(pare::float_to_e4m3(-500.0f, true) == 0xFE);
  CHECK(pare::float_to_e4m3(1e30f, true) == 0x7E);
  CHECK(pare::float_to_e4m3(inf, true) == 0x7E);
  CHECK(pare::float_to_e4m3(-inf, true) == 0xFE);
  CHECK(pare::float_to_e4m3(inf, false) == 0x7F);
  CHECK(pare::float_to_e4m3(-inf, false) == 0xFF);
  CHECK(pare::float_to_e4m3(inf) == 0x7E);  // saturating by default
  // Ties in the normal range: 1 + 1/16 lies between 1 (m=000) and 1.125 (m=001) → 1.
  CHECK(pare::float_to_e4m3(1.0625f) == 0x38);
  CHECK(pare::float_to_e4m3(1.1875f) == 0x3A);  // between 1.125 (001) and 1.25 (010) → 1.25
  // Subnormals (unit 2^-9): half a unit ties to 0, 1.5 units to 2, 2.5 to 2, just above half to 1.
  CHECK(pare::float_to_e4m3(0x1p-10f) == 0x00);
  CHECK(pare::float_to_e4m3(-0x1p-10f) == 0x80);
  CHECK(pare::float_to_e4m3(std::nextafter(0x1p-10f, 1.0f)) == 0x01);
  CHECK(pare::float_to_e4m3(3 * 0x1p-10f) == 0x02);
  CHECK(pare::float_to_e4m3(5 * 0x1p-10f) == 0x02);
  CHECK(pare::float_to_e4m3(15 * 0x1p-10f) == 0x08);  // 7.5 units → 8 = the smallest normal 2^-6
  CHECK(pare::float_to_e4m3(-0.0f) == 0x80);
  CHECK(pare::float_to_e4m3(0.0f) == 0x00);
  for (std::uint32_t u : {0x7FC00000u, 0x7F800001u, 0x7FFFFFFFu}) {
    CHECK(pare::float_to_e4m3(float_of(u), true) == 0x7F);
    CHECK(pare::float_to_e4m3(float_of(u), false) == 0x7F);
    CHECK(pare::float_to_e4m3(float_of(u | 0x80000000u)) == 0xFF);
  }
  const pare::fp8_e4m3 v(-3.0f);
  CHECK(v.bits() == 0xC4);
  CHECK(static_cast<float>(v) == -3.0f);
  CHECK(pare::fp8_e4m3(1000.0f).bits() == 0x7E);
  CHECK(pare::fp8_e4m3(1000.0f, false).bits() == 0x7F);
  CHECK(static_cast<float>(pare::fp8_e4m3::from_bits(0x7E)) == 448.0f);
}

TEST_CASE("e5m2 encode: saturation, non-saturation, ties, subnormals, zeros and NaN") {
  const float inf = std::numeric_limits<float>::infinity();
  // Largest value 57344; 61440 ties between it (m=11) and 2^16 (even) → overflow.
  CHECK(pare::float_to_e5m2(57344.0f, false) == 0x7B);
  CHECK(pare::float_to_e5m2(std::nextafter(61440.0f, 0.0f), false) == 0x7B);
  CHECK(pare::float_to_e5m2(61440.0f, false) == 0x7C);  // +inf
  CHECK(pare::float_to_e5m2(-61440.0f, false) == 0xFC);
  CHECK(pare::float_to_e5m2(61440.0f, true) == 0x7B);
  CHECK(pare::float_to_e5m2(-1e30f, true) == 0xFB);
  CHECK(pare::float_to_e5m2(inf, false) == 0x7C);
  CHECK(pare::float_to_e5m2(-inf, false) == 0xFC);
  CHECK(pare::float_to_e5m2(inf, true) == 0x7B);
  CHECK(pare::float_to_e5m2(-inf) == 0xFB);  // saturating by default
  CHECK(pare::float_to_e5m2(1.125f) == 0x3C);   // tie between 1 (00) and 1.25 (01) → 1
  CHECK(pare::float_to_e5m2(1.375f) == 0x3E);   // tie between 1.25 (01) and 1.5 (10) → 1.5
  CHECK(pare::float_to_e5m2(0x1p-17f) == 0x00);  // half the smallest subnormal → 0
  CHECK(pare::float_to_e5m2(std::nextafter(0x1p-17f, 1.0f)) == 0x01);
  CHECK(pare::float_to_e5m2(3 * 0x1p-17f) == 0x02);
  CHECK(pare::float_to_e5m2(7 * 0x1p-17f) == 0x04);  // 3.5 units → 4 = the smallest normal 2^-14
  CHECK(pare::float_to_e5m2(-0.0f) == 0x80);
  for (std::uint32_t u : {0x7FC00000u, 0x7F800001u, 0x7FFFFFFFu}) {
    CHECK(pare::float_to_e5m2(float_of(u), true) == 0x7F);
    CHECK(pare::float_to_e5m2(float_of(u), false) == 0x7F);
    CHECK(pare::float_to_e5m2(float_of(u | 0x80000000u)) == 0xFF);
  }
  CHECK(pare::fp8_e5m2(-2.0f).bits() == 0xC0);
  CHECK(pare::fp8_e5m2(1e6f, false).bits() == 0x7C);
  CHECK(static_cast<float>(pare::fp8_e5m2::from_bits(0x7B)) == 57344.0f);
}

TEST_CASE("fp8 row converters equal the scalar conversions") {
  std::vector<float> xs = encode_inputs(positive_values(e4m3_reference_value, 0x7E), 480.0, 110, 140, 1821);
  xs.resize(50003);
  std::vector<std::uint8_t> codes(xs.size());
  for (bool sat : {true, false}) {
    pare::convert_float_to_e4m3(xs.data(), codes.data(), xs.size(), sat);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) bad += codes[i] != pare::float_to_e4m3(xs[i], sat);
    CHECK(bad == 0);
    pare::convert_float_to_e5m2(xs.data(), codes.data(), xs.size(), sat);
    bad = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) bad += codes[i] != pare::float_to_e5m2(xs[i], sat);
    CHECK(bad == 0);
  }
  std::vector<std::uint8_t> all(256);
  for (unsigned u = 0; u < 256; ++u) all[u] = static_cast<std::uint8_t>(u);
  std::vector<float> f(256);
  pare::convert_e4m3_to_float(all.data(), f.data(), 256);
  for (unsigned u = 0; u < 256; ++u)
    CHECK(bits_of(f[u]) == bits_of(pare::e4m3_to_float(static_cast<std::uint8_t>(u))));
  pare::convert_e5m2_to_float(all.data(), f.data(), 256);
  for (unsigned u = 0; u < 256; ++u)
    CHECK(bits_of(f[u]) == bits_of(pare::e5m2_to_float(static_cast<std::uint8_t>(u))));
  pare::convert_float_to_e4m3(nullptr, nullptr, 0);  // n = 0 touches nothing
}

TEST_CASE("fp8 encode: all 2^32 floats against the oracle, both formats and modes", "[.][exhaustive]") {
  std::size_t bad = 0;
  std::uint32_t u = 0;
  do {
    const float x = float_of(u);
    if (!std::isnan(x)) {
      for (bool sat : {true, false}) {
        const unsigned a = pare::float_to_e4m3(x, sat), b = e4m3_reference_encode(x, sat);
        const unsigned c = pare::float_to_e5m2(x, sat), d = e5m2_reference_encode(x, sat);
        if ((a != b || c != d) && ++bad <= 5)
          FAIL_CHECK("0x" << std::hex << u << " sat=" << sat << ": e4m3 0x" << a << " vs 0x" << b << ", e5m2 0x" << c
                          << " vs 0x" << d);
      }
    }
  } while (++u != 0);
  CHECK(bad == 0);
}
