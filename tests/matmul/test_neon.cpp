// NEON matmul variants: exact int sums at every tail shape, neon_dot ≡ neon bitwise, fp32 ≡ k-order FMA chain, fallback.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "pare/kernels/matmul/matmul_f32.hpp"
#include "pare/kernels/matmul/matmul_int.hpp"
#include "pare_test_support.hpp"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

// On a CPU without a NEON level (x86) the NEON loops below run only their scalar
// comparison points or nothing; the fp32 chain test also covers the x86 vector variants,
// which promise the same chain.

namespace {

struct rng {
  std::uint64_t s;
  std::uint64_t next() { return s = s * 6364136223846793005ULL + 1442695040888963407ULL, s >> 33; }
  int in(int lo, int hi) { return lo + int(next() % std::uint64_t(hi - lo + 1)); }
};

enum class codes_kind { random, extreme };

/// Canonical weights: codes random or all at the extreme (-128 for int8, 15 for int4),
/// unit or random scales, integer or random offsets (or none).
struct weights {
  std::vector<std::int8_t> c8;
  std::vector<std::uint8_t> c4;
  std::vector<float> scales, offsets;
  pare::weight_source src;
  weights(int bits, std::size_t n, std::size_t k, std::size_t group, bool unit, bool with_offsets, codes_kind kind,
          std::uint64_t seed) {
    rng r{seed};
    const std::size_t ng = n * (k / group);
    if (bits == 8) {
      c8.resize(n * k);
      for (auto& c : c8) c = static_cast<std::int8_t>(kind == codes_kind::extreme ? -128 : r.in(-128, 127));
    } else {
      c4.resize(n * k);
      for (auto& c : c4) c = static_cast<std::uint8_t>(kind == codes_kind::extreme ? 15 : r.in(0, 15));
    }
    scales.resize(ng);
    offsets.resize(ng);
    for (std::size_t i = 0; i < ng; ++i) {
      scales[i] = unit ? 1.0f : 0.001f * float(r.in(1, 40));
      offsets[i] = with_offsets ? (unit ? float(r.in(-3, 3)) : 0.002f * float(r.in(-20, 20))) : 0.0f;
    }
    const float* off = with_offsets ? offsets.data() : nullptr;
    src = bits == 8 ? pare::weight_source::int8(n, k, group, c8.data(), scales.data(), off)
                    : pare::weight_source::uint4(n, k, group, c4.data(), scales.data(), off);
  }
  int code(std::size_t i, std::size_t j) const { return c8.empty() ? int(c4[i * src.k + j]) : int(c8[i * src.k + j]); }
};

/// y = x·Wᵀ with the variant of `level` forced; checks that it ran.
std::vector<float> run_int(const weights& w, const std::vector<float>& x, std::size_t m, pare::isa level) {
  pare::set_enabled_isas(pare::with_lower_levels(level));
  std::vector<float> y(m * w.src.n, -1.0f);
  const pare::matrix_view<const float> xv(x.data(), m, w.src.k);
  const pare::matrix_view<float> yv(y.data(), m, w.src.n);
  if (w.src.bits == 8) pare::matmul(xv, pare::pack_int8(w.src), yv);
  else pare::matmul(xv, pare::pack_int4(w.src), yv);
  CHECK(pare::last_used_isa() == level);
  pare::reset_enabled_isas();
  return y;
}

/// The integer matmul levels to compare on this machine: the NEON ones it has, and scalar.
std::vector<pare::isa> int_levels() {
  std::vector<pare::isa> v;
#if PARE_HAS_NEON_DOT_KERNELS
  if (pare::has(pare::detected_isas(), pare::isa::neon_dot)) v.push_back(pare::isa::neon_dot);
#endif
#if defined(__aarch64__)
  v.push_back(pare::isa::neon);
#endif
  v.push_back(pare::isa::scalar);
  return v;
}

struct shape {
  std::size_t n, k, group;
};
// Tails of the neon_dot loops: int8 groups of 1..5 quads and per-channel K % 4 != 0
// (4 quads per activation load, then 1..3 single quads); int4 groups of 1..3 octets and
// per-channel K % 8 != 0 (2 octets per load, then 1); N below, at and above a tile.
const std::vector<shape> shapes8 = {{1, 4, 4},    {17, 8, 8},   {16, 12, 12},  {15, 16, 16},   {33, 20, 20},  {5, 7, 7},
                         {18, 13, 13}, {3, 60, 12},  {31, 96, 32},  {16, 130, 130}, {9, 258, 258}, {40, 512, 64}};
const std::vector<shape> shapes4 = {{1, 8, 8},    {17, 16, 16}, {16, 24, 24},   {15, 5, 5},  {33, 13, 13},
                         {3, 172, 172}, {9, 96, 32}, {31, 120, 24}, {16, 256, 128}, {40, 512, 64}};

/// Activations with max |x| = 127 in every row: they quantize to themselves (s_x = 1).
std::vector<float> integer_x(std::size_t m, std::size_t k, std::uint64_t seed) {
  rng r{seed};
  std::vector<float> x(m * k);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < k; ++j) x[i * k + j] = j == i % k ? (i % 2 ? -127.0f : 127.0f) : float(r.in(-127, 127));
  return x;
}

}  // namespace

TEST_CASE("NEON int8/int4 kernels: exact integer sums for every tail, row block and tile shape (int64 oracle)") {
  const std::size_t ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13};
  for (int bits : {8, 4})
    for (const shape& s : bits == 8 ? shapes8 : shapes4)
      for (bool offs : {false, true})
        for (std::size_t m : ms) {
          const weights w(bits, s.n, s.k, s.group, true, offs, codes_kind::random, 7 * s.n + s.k + m);
          const std::vector<float> x = integer_x(m, s.k, 3 + m + s.k);
          // y is an integer below 2^24 in magnitude: fp32 holds it exactly.
          std::vector<float> want(m * s.n);
          for (std::size_t i = 0; i < m; ++i)
            for (std::size_t o = 0; o < s.n; ++o) {
              std::int64_t acc = 0;
              for (std::size_t j = 0; j < s.k; ++j) {
                acc += std::int64_t(x[i * s.k + j]) * w.code(o, j);
                if (offs)
                  acc += std::int64_t(x[i * s.k + j]) * std::int64_t(w.offsets[o * (s.k / s.group) + j / s.group]);
              }
              want[i * s.n + o] = float(acc);
            }
          for (pare::isa level : int_levels()) {
            INFO("bits " << bits << " n " << s.n << " k " << s.k << " g " << s.group << " offsets " << offs << " m "
                         << m << " isa " << pare::to_string(level));
            const auto y = run_int(w, x, m, level);
            std::size_t wrong = 0;
            for (std::size_t i = 0; i < m * s.n; ++i) wrong += y[i] != want[i];
            CHECK(wrong == 0);
          }
        }
}

TEST_CASE("NEON int8/int4 kernels: extreme codes and activations, long per-channel rows, exact") {
  // int8: code -128 against ±127 (|product| 16256, the largest the format allows; K = 1028
  // keeps |sum| < 2^24); int4: code 15 against ±127. Signs alternate by row. Per-channel
  // groups: one group of the whole row.
  for (int bits : {8, 4})
    for (std::size_t m : {std::size_t(1), std::size_t(4), std::size_t(7)}) {
      const std::size_t n = 19, k = bits == 8 ? 1028 : 1012;  // 257 quads / 127 octets: tails
      const weights w(bits, n, k, k, true, false, codes_kind::extreme, 1);
      std::vector<float> x(m * k);
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < k; ++j) x[i * k + j] = i % 2 ? -127.0f : 127.0f;
      for (pare::isa level : int_levels()) {
        INFO("bits " << bits << " m " << m << " isa " << pare::to_string(level));
        const auto y = run_int(w, x, m, level);
        for (std::size_t i = 0; i < m; ++i) {
          const std::int64_t want = std::int64_t(k) * (i % 2 ? -127 : 127) * (bits == 8 ? -128 : 15);
          for (std::size_t o = 0; o < n; ++o) REQUIRE(y[i * n + o] == float(want));
        }
      }
    }
}

TEST_CASE("neon_dot and neon give bit-identical fp32 outputs with real scales and offsets") {
  if (!pare::has(pare::detected_isas(), pare::isa::neon_dot)) {
    SUCCEED("this CPU has no dotprod: nothing to compare");
    return;
  }
#if PARE_HAS_NEON_DOT_KERNELS
  // Exact integer sums and the same float epilogue (arm/matmul_int_neon_dotprod.hpp).
  for (int bits : {8, 4})
    for (const shape& s : bits == 8 ? shapes8 : shapes4)
      for (std::size_t m : {std::size_t(1), std::size_t(3), std::size_t(6), std::size_t(17)}) {
        const weights w(bits, s.n, s.k, s.group, false, bits == 4 || s.n % 2 == 1, codes_kind::random, s.k + m);
        const std::vector<float> x = pare_test::gaussian(m * s.k, 11 + m);
        INFO("bits " << bits << " n " << s.n << " k " << s.k << " g " << s.group << " m " << m);
        CHECK(run_int(w, x, m, pare::isa::neon_dot) == run_int(w, x, m, pare::isa::neon));
      }
#endif
}

TEST_CASE("ISA selection: neon_dot only when the CPU reports dotprod, else the plain NEON variant") {
  const pare::isa enabled = pare::set_enabled_isas(pare::with_lower_levels(pare::isa::neon_dot));
  const weights w(8, 16, 64, 64, true, false, codes_kind::random, 2);
  std::vector<float> x(64, 1.0f), y(16);
  pare::matmul(pare::matrix_view<const float>(x.data(), 1, 64), pare::pack_int8(w.src),
               pare::matrix_view<float>(y.data(), 1, 16));
  const pare::isa used = pare::last_used_isa();
  pare::reset_enabled_isas();
  INFO("used " << pare::to_string(used));
#if defined(__aarch64__)
  CHECK(pare::has(enabled, pare::isa::neon));
  const bool dot = pare::has(pare::detected_isas(), pare::isa::neon_dot);
#if defined(__linux__) && defined(HWCAP_ASIMDDP)
  CHECK(dot == ((getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0));
#endif
  CHECK(pare::has(enabled, pare::isa::neon_dot) == dot);
  CHECK(used == (dot && PARE_HAS_NEON_DOT_KERNELS ? pare::isa::neon_dot : pare::isa::neon));
#else
  CHECK(!pare::has(enabled, pare::isa::neon_dot));  // never detected off ARM
  CHECK(used != pare::isa::neon_dot);
#endif
}

TEST_CASE("fp32 vector variants equal the k-order FMA chain bit for bit, and float64 within 2·eps·sqrt(K)·sum|x·w|") {
  // matmul_f32.hpp / arm/matmul_f32_neon.hpp: acc = fma(x[k], W[n][k], acc), k = 0..K-1.
  const pare::isa avail = pare::kernels::matmul_f32_dispatch().available();
  const std::size_t ms[] = {1, 2, 3, 4, 5, 7, 8, 9, 17};
  const std::size_t ns[] = {1, 15, 16, 17, 31, 32, 33, 70};
  const std::size_t ks[] = {1, 3, 4, 5, 8, 64, 301};
  std::size_t compared = 0;
  for (pare::isa level : {pare::isa::avx512bw, pare::isa::avx2, pare::isa::neon}) {
    if (!pare::has(avail, level) || !pare::has(pare::detected_isas(), level)) continue;
    pare::set_enabled_isas(pare::with_lower_levels(level));
    for (std::size_t m : ms)
      for (std::size_t n : ns)
        for (std::size_t k : ks) {
          const auto x = pare_test::gaussian(m * k, 10 + m), w = pare_test::gaussian(n * k, 20 + n + k);
          // x with a row stride of k + 1 (unit column stride: the kernel reads it in place).
          std::vector<float> xs(m * (k + 1), 9.0f), y(m * n, -1.0f);
          for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < k; ++j) xs[i * (k + 1) + j] = x[i * k + j];
          pare::matmul(pare::matrix_view<const float>(xs.data(), m, k, k + 1),
                       pare::matrix_view<const float>(w.data(), n, k), pare::matrix_view<float>(y.data(), m, n));
          REQUIRE(pare::last_used_isa() == level);
          std::size_t not_chain = 0, out_of_bound = 0;
          for (std::size_t i = 0; i < m; ++i)
            for (std::size_t o = 0; o < n; ++o) {
              float chain = 0.0f;
              double exact = 0, l1 = 0;
              for (std::size_t j = 0; j < k; ++j) {
                chain = std::fma(x[i * k + j], w[o * k + j], chain);
                exact += double(x[i * k + j]) * w[o * k + j];
                l1 += std::fabs(double(x[i * k + j]) * w[o * k + j]);
              }
              not_chain += y[i * n + o] != chain;
              // c = 2: the √K (probabilistic) form of the recursive-summation bound.
              out_of_bound += std::fabs(y[i * n + o] - exact) > 2.0 * 0x1p-24 * std::sqrt(double(k)) * l1 + 1e-30;
            }
          INFO("m " << m << " n " << n << " k " << k << " isa " << pare::to_string(level));
          CHECK(not_chain == 0);
          CHECK(out_of_bound == 0);
          ++compared;
        }
    pare::reset_enabled_isas();
  }
#if defined(__aarch64__)
  CHECK(compared > 0);  // the NEON fp32 variant ran
#else
  SUCCEED("compared " << compared << " shapes");
#endif
}
