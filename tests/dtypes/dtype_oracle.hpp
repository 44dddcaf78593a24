// Float64 oracles for the element-type tests (ldexp values, nearest-even by candidates) and a row-converter ISA check.
#pragma once

// Nothing here looks at float bit patterns or shares code with pare's converters: a
// format is described by its significand width M and exponent bias, values are built
// with std::ldexp, and rounding compares the two neighbouring grid points in double.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>

#include "pare/core/isa.hpp"
#include "pare/core/rng.hpp"

namespace dtype_oracle {

/// An IEEE-like binary format: M trailing significand bits, exponent bias, largest
/// finite value. Its smallest normal exponent is 1 - bias.
struct format {
  int mant_bits;
  int bias;
  double max_finite;
};

inline constexpr format fp16{10, 15, 65504.0};
inline constexpr format bf16{7, 127, 255.0 * 0x1p120};  // (2 - 2^-7) · 2^127
inline constexpr format e4m3{3, 7, 448.0};
inline constexpr format e5m2{2, 15, 57344.0};

/// The value of a finite code with exponent field e and significand field m (sign aside).
inline double value_of_fields(const format& f, int e, int m) {
  const int M = f.mant_bits;
  return e == 0 ? std::ldexp(double(m), 1 - f.bias - M) : std::ldexp(double((1 << M) + m), e - f.bias - M);
}

/// ax >= 0 (finite) rounded to nearest, ties to even, on the format's grid with the
/// exponent unbounded above (subnormal spacing below 2^(1-bias)).
inline double round_nearest_even(const format& f, double ax) {
  if (ax == 0) return 0;
  const int emin = 1 - f.bias;
  const int e = std::max(std::ilogb(ax), emin);
  const double q = std::ldexp(1.0, e - f.mant_bits);  // grid spacing around ax
  const double k = std::floor(ax / q);                // ax / q is exact (power-of-two scaling)
  const double lo = k * q, hi = (k + 1) * q;
  const double dlo = ax - lo, dhi = hi - ax;          // exact: ax has at most 24 significant bits
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return std::fmod(k, 2.0) == 0.0 ? lo : hi;          // tie: the even multiple of q has the even significand
}

/// Exponent and significand fields of r (>= 0, on the grid, <= max_finite), packed as e << M | m.
inline std::uint32_t fields_of_value(const format& f, double r) {
  if (r == 0) return 0;
  const int M = f.mant_bits;
  const int e = std::ilogb(r);
  if (e < 1 - f.bias) return static_cast<std::uint32_t>(std::ldexp(r, f.bias - 1 + M));  // subnormal: m units
  const double m = std::ldexp(r, M - e) - double(1 << M);
  return static_cast<std::uint32_t>(e + f.bias) << M | static_cast<std::uint32_t>(m);
}

/// How a reference encoder treats results beyond max_finite and infinite inputs.
struct overflow_codes {
  std::uint32_t overflow;  // magnitude code for finite values rounding beyond max_finite
  std::uint32_t infinity;  // magnitude code for ±inf
};

/// Reference encoding of a non-NaN float: the sign bit at `sign_bit`, the magnitude as
/// nearest-even fields, or the overflow/infinity code.
inline std::uint32_t encode(const format& f, float x, unsigned sign_bit, overflow_codes oc) {
  const std::uint32_t sign = std::signbit(x) ? (1u << sign_bit) : 0u;
  const double ax = std::fabs(double(x));
  if (std::isinf(ax)) return sign | oc.infinity;
  const double r = round_nearest_even(f, ax);
  if (r > f.max_finite) return sign | oc.overflow;
  return sign | fields_of_value(f, r);
}

/// Float inputs that probe every rounding decision of a format whose positive finite
/// values are `values` (ascending): each value and each midpoint between neighbours
/// (including the one above the largest value, the overflow threshold), each with its
/// float neighbours on both sides, in both signs.
inline std::vector<float> boundary_cases(const std::vector<double>& values, double next_above_max) {
  std::vector<double> anchors(values);
  for (std::size_t i = 0; i + 1 < values.size(); ++i) anchors.push_back(0.5 * (values[i] + values[i + 1]));
  anchors.push_back(0.5 * (values.back() + next_above_max));
  std::vector<float> out;
  out.reserve(anchors.size() * 6);
  const float inf = std::numeric_limits<float>::infinity();
  for (double a : anchors) {
    const float x = static_cast<float>(a);
    if (double(x) != a) continue;  // not a float: the caller checks counts where it matters
    for (float y : {x, std::nextafter(x, 0.0f), std::nextafter(x, inf)}) {
      out.push_back(y);
      out.push_back(-y);
    }
  }
  return out;
}

/// n random float bit patterns (uniform over all 2^32, NaNs included), reproducible by seed.
inline std::vector<float> random_bit_patterns(std::size_t n, std::uint64_t seed) {
  pare::splitmix64 g(seed);
  std::vector<float> out(n);
  for (auto& x : out) {
    const std::uint32_t u = static_cast<std::uint32_t>(g.next() >> 32);
    std::memcpy(&x, &u, sizeof x);
  }
  return out;
}

/// n random floats with binary32 exponent field in [elo, ehi], random sign and significand.
inline std::vector<float> random_in_exponents(std::size_t n, std::uint64_t seed, int elo, int ehi) {
  pare::splitmix64 g(seed);
  std::vector<float> out(n);
  const std::uint64_t span = std::uint64_t(ehi - elo + 1);
  for (auto& x : out) {
    const std::uint64_t r = g.next();
    const std::uint32_t e = static_cast<std::uint32_t>(elo + int((r >> 40) % span));
    const std::uint32_t sign = static_cast<std::uint32_t>(r >> 63) << 31;
    const std::uint32_t u = sign | (e << 23) | (static_cast<std::uint32_t>(r) & 0x7FFFFFu);
    std::memcpy(&x, &u, sizeof x);
  }
  return out;
}

inline std::uint32_t bits_of(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

inline float float_of(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

/// The variant a dispatched fp16/bf16 row converter reports when `level` is the best enabled ISA.
inline pare::isa expected_row_variant(pare::isa level) {
#if PARE_HAS_X86_KERNELS
  if (level == pare::isa::avx2 || level == pare::isa::avx512bw || level == pare::isa::avx512vnni)
    return pare::isa::avx2;
#endif
  (void)level;
  return pare::isa::scalar;
}

/// For every ISA level this machine has: the dispatched row converters `to_float(src, dst, n)`
/// and `from_float(src, dst, n)` return exactly the bits of the scalar `dec` / `enc` on all of
/// `hs` and `xs`, report the expected variant, and for sizes 0..40 at offsets 0..3 write
/// exactly n elements (guards around the output stay untouched).
template <class ToFloat, class FromFloat, class Dec, class Enc>
void check_row_converters(const std::vector<std::uint16_t>& hs, const std::vector<float>& xs, ToFloat to_float,
                          FromFloat from_float, Dec dec, Enc enc) {
  pare::for_each_isa(pare::detected_isas(), [&](pare::isa level) {
    pare::set_enabled_isas(pare::with_lower_levels(level));
    INFO("best enabled ISA " << pare::to_string(level));

    std::vector<float> f(hs.size());
    to_float(hs.data(), f.data(), hs.size());
    CHECK(pare::last_used_isa() == expected_row_variant(level));
    std::size_t bad = 0;
    for (std::size_t i = 0; i < hs.size(); ++i) bad += bits_of(f[i]) != bits_of(dec(hs[i]));
    CHECK(bad == 0);

    std::vector<std::uint16_t> h(xs.size());
    from_float(xs.data(), h.data(), xs.size());
    CHECK(pare::last_used_isa() == expected_row_variant(level));
    bad = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) bad += h[i] != enc(xs[i]);
    CHECK(bad == 0);

    const float fguard = -7.0f;
    const std::uint16_t hguard = 0xABCD;
    for (std::size_t off = 0; off < 4; ++off) {
      for (std::size_t n = 0; n <= 40; ++n) {
        const std::uint16_t* hsrc = hs.data() + 1000 + off;
        const float* xsrc = xs.data() + 3 * off;
        std::vector<float> fo(n + off + 2, fguard);
        std::vector<std::uint16_t> ho(n + off + 2, hguard);
        to_float(hsrc, fo.data() + off, n);
        from_float(xsrc, ho.data() + off, n);
        bool ok = true;
        for (std::size_t i = 0; i < off; ++i) ok = ok && fo[i] == fguard && ho[i] == hguard;
        for (std::size_t i = 0; i < n; ++i)
          ok = ok && bits_of(fo[off + i]) == bits_of(dec(hsrc[i])) && ho[off + i] == enc(xsrc[i]);
        for (std::size_t i = off + n; i < off + n + 2; ++i) ok = ok && fo[i] == fguard && ho[i] == hguard;
        if (!ok) FAIL_CHECK("n = " << n << ", offset " << off);
      }
    }
  });
  pare::reset_enabled_isas();
}

}  // namespace dtype_oracle
