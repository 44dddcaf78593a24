// int8 / int4 matmul: exact integer sums on every ISA vs an int64 oracle, fp32 vs float64, shapes, strides, packing, errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "pare/kernels/matmul/matmul_int.hpp"
#include "pare/quant/kernel_weights.hpp"
#include "pare/quant/quantize.hpp"
#include "pare_test_support.hpp"

namespace {

struct rng {
  std::uint64_t s;
  std::uint64_t next() { return s = s * 6364136223846793005ULL + 1442695040888963407ULL, s >> 33; }
  int in(int lo, int hi) { return lo + int(next() % std::uint64_t(hi - lo + 1)); }
};

/// Canonical weights with random codes, scales and (optionally) offsets.
struct weights {
  std::vector<std::int8_t> c8;
  std::vector<std::uint8_t> c4;
  std::vector<float> scales, offsets;
  pare::weight_source src;
  weights(int bits, std::size_t n, std::size_t k, std::size_t group, bool unit, bool with_offsets, std::uint64_t seed) {
    rng r{seed};
    const std::size_t ng = n * (k / group);
    if (bits == 8) {
      c8.resize(n * k);
      for (auto& c : c8) c = static_cast<std::int8_t>(r.in(-128, 127));
    } else {
      c4.resize(n * k);
      for (auto& c : c4) c = static_cast<std::uint8_t>(r.in(0, 15));
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

template <class F>
void for_each_variant(F&& f) {
  pare::for_each_isa(pare::detected_isas(), [&](pare::isa level) {
    if (level == pare::isa::sse4_1) return;  // no int matmul variant of its own
#if !PARE_HAS_NEON_DOT_KERNELS
    if (level == pare::isa::neon_dot) return;  // not compiled (compiler without dotprod intrinsics)
#endif
    pare::set_enabled_isas(pare::with_lower_levels(level));
    f(level);
  });
  pare::reset_enabled_isas();
}

/// y = x·Wᵀ through pare::matmul with the packed form of `w`.
std::vector<float> run(const weights& w, const std::vector<float>& x, std::size_t m) {
  std::vector<float> y(m * w.src.n, -1.0f);
  const pare::matrix_view<const float> xv(x.data(), m, w.src.k);
  const pare::matrix_view<float> yv(y.data(), m, w.src.n);
  if (w.src.bits == 8) pare::matmul(xv, pare::pack_int8(w.src), yv);
  else pare::matmul(xv, pare::pack_int4(w.src), yv);
  return y;
}

}  // namespace

TEST_CASE("integer sums are exact on every ISA (int64 oracle)") {
  // Integer activations with max |x| = 127 quantize to themselves (s_x = 1); unit scales
  // and integer offsets make y an integer that fp32 holds exactly (|y| < 2^24).
  for (int bits : {8, 4})
    for (bool offs : {false, true})
      for (std::size_t group : {std::size_t(32), std::size_t(0)}) {
        const std::size_t n = 37, k = 192, m = 13, g = group ? group : k;
        const weights w(bits, n, k, g, true, offs, 11 + bits);
        rng r{5};
        std::vector<float> x(m * k);
        for (std::size_t i = 0; i < m; ++i)
          for (std::size_t j = 0; j < k; ++j) x[i * k + j] = j == i % k ? (i % 2 ? -127.0f : 127.0f) : float(r.in(-127, 127));
        for_each_variant([&](pare::isa level) {
          INFO("bits " << bits << " offsets " << offs << " group " << g << " isa " << pare::to_string(level));
          const auto y = run(w, x, m);
          CHECK(pare::last_used_isa() == level);
          std::size_t wrong = 0;
          for (std::size_t i = 0; i < m; ++i)
            for (std::size_t o = 0; o < n; ++o) {
              std::int64_t want = 0;
              for (std::size_t j = 0; j < k; ++j) {
                want += std::int64_t(x[i * k + j]) * w.code(o, j);
                if (offs) want += std::int64_t(x[i * k + j]) * std::int64_t(w.offsets[o * (k / g) + j / g]);
              }
              wrong += y[i * n + o] != float(want);
            }
          CHECK(wrong == 0);
        });
      }
}

TEST_CASE("integer sums stay exact across K-blocks, row chunks and panel tails on every ISA") {
  // K beyond one K-block of the x86 GEMM kernels (4096 k), groups that K-blocks cut
  // (int8 G = 96, int4 G = 40), per-channel weights whose sums carry over K-blocks, row
  // counts around the 8-row micro-tiles and 64-row chunks, 4 or 5 tiles (panels of 2 and
  // 2, or 3 and 2), and 12 tiles (whole GEMV panels of 8 int8 / 6 int4
  // tiles, then a 4-tile tail for int8). Integer data: y must equal the int64 oracle.
  struct shape { int bits; std::size_t n, k, group; bool offs; };
  const shape shapes[] = {{8, 80, 4300, 4300, false}, {8, 50, 4224, 96, true}, {8, 33, 1100, 1100, true},
                          {8, 181, 640, 640, false},  {4, 80, 4168, 4168, true},  {4, 50, 4400, 40, false},
                          {4, 64, 2048, 128, true},   {4, 181, 640, 128, true}};
  for (const shape& s : shapes) {
    const weights w(s.bits, s.n, s.k, s.group, true, s.offs, 3 + s.n + s.k);
    for (std::size_t m : {std::size_t(1), std::size_t(7), std::size_t(9), std::size_t(23), std::size_t(64),
                          std::size_t(65), std::size_t(130)}) {
      rng r{m * 31 + s.k};
      std::vector<float> x(m * s.k);
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < s.k; ++j) x[i * s.k + j] = j == i % s.k ? 127.0f : float(r.in(-9, 9));
      std::vector<std::int64_t> want(m * s.n, 0);
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t o = 0; o < s.n; ++o)
          for (std::size_t j = 0; j < s.k; ++j) {
            const std::int64_t xv = std::int64_t(x[i * s.k + j]);
            want[i * s.n + o] += xv * w.code(o, j);
            if (s.offs) want[i * s.n + o] += xv * std::int64_t(w.offsets[o * (s.k / s.group) + j / s.group]);
          }
      for_each_variant([&](pare::isa level) {
        INFO("bits " << s.bits << " n " << s.n << " k " << s.k << " group " << s.group << " m " << m << " isa "
                     << pare::to_string(level));
        const auto y = run(w, x, m);
        CHECK(pare::last_used_isa() == level);
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < m * s.n; ++i) wrong += y[i] != float(want[i]);
        CHECK(wrong == 0);
      });
    }
  }
}

TEST_CASE("fp32 outputs against a float64 oracle of the activation-quantized product, all shapes and ISAs") {
  const std::size_t ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 32, 33, 128};
  struct shape { std::size_t n, k, group; };
  const shape shapes8[] = {{1, 32, 32}, {3, 96, 32}, {17, 160, 32}, {33, 7, 7}, {65, 129, 129}, {16, 4096, 128}, {15, 64, 4}};
  const shape shapes4[] = {{1, 32, 32}, {3, 96, 32}, {17, 192, 64}, {33, 384, 128}, {65, 64, 8}, {16, 4096, 128}, {5, 172, 172}};
  for (int bits : {8, 4})
    for (const shape& s : bits == 8 ? shapes8 : shapes4)
      for (std::size_t m : ms) {
        if (s.k >= 4096 && m > 17) continue;  // keep the float64 oracle quick
        const weights w(bits, s.n, s.k, s.group, false, bits == 4 || s.n % 2 == 1, 100 + s.n * 7 + m);
        const std::vector<float> x = pare_test::gaussian(m * s.k, 3 + m);
        // Oracle: the same activation codes and scale, everything after in float64.
        std::vector<double> want(m * s.n);
        std::vector<double> bound(m * s.n);
        for (std::size_t i = 0; i < m; ++i) {
          std::vector<std::int8_t> q(s.k);
          const double sx = pare::kernels::quantize_activation_row(x.data() + i * s.k, s.k, q.data());
          for (std::size_t o = 0; o < s.n; ++o) {
            double acc = 0, mag = 0;
            for (std::size_t j = 0; j < s.k; ++j) {
              const double wv = double(w.src.value(o, j)) * q[j] * sx;
              acc += wv;
              mag = std::max(mag, std::fabs(wv));
            }
            want[i * s.n + o] = acc;
            // The c·ε·max|x|·√K, with max|x| read as the largest product term
            // and c = 16 (c = 4 fails on a few outputs: the group-wise float sums).
            bound[i * s.n + o] = 16.0 * 0x1p-24 * mag * std::sqrt(double(s.k));
          }
        }
        for_each_variant([&](pare::isa level) {
          const auto y = run(w, x, m);
          INFO("bits " << bits << " n " << s.n << " k " << s.k << " g " << s.group << " m " << m << " isa "
                       << pare::to_string(level));
          REQUIRE(pare::last_used_isa() == level);
          double mean = 0, worst = 0, mean_bound = 0;
          for (std::size_t i = 0; i < m * s.n; ++i) {
            const double d = double(y[i]) - want[i];
            mean += d;
            mean_bound += bound[i];
            worst = std::max(worst, std::fabs(d) / (bound[i] + 1e-30));
          }
          CHECK(worst <= 1.0);
          // No systematic bias: the mean error is a small fraction of the per-element bound.
          CHECK(std::fabs(mean) <= 0.05 * mean_bound);
        });
      }
}

TEST_CASE("strided and misaligned x and y give the same results as contiguous ones") {
  const weights w(4, 40, 256, 32, false, true, 9);
  const auto p = pare::pack_int4(w.src);
  const std::size_t m = 6, k = 256, n = 40;
  const std::vector<float> x = pare_test::gaussian(m * k, 1);
  std::vector<float> y(m * n);
  pare::matmul(pare::matrix_view<const float>(x.data(), m, k), p, pare::matrix_view<float>(y.data(), m, n));
  // x with a row stride of k + 3 starting one float in (misaligned), y transposed (column stride n... rows strided).
  std::vector<float> xs(1 + m * (k + 3), 0.0f), ys(1 + m * (n + 5), 7.0f), yt(n * m);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < k; ++j) xs[1 + i * (k + 3) + j] = x[i * k + j];
  pare::matmul(pare::matrix_view<const float>(xs.data() + 1, m, k, k + 3), p,
               pare::matrix_view<float>(ys.data() + 1, m, n, n + 5));
  pare::matmul(pare::matrix_view<const float>(x.data(), m, k), p, pare::matrix_view<float>(yt.data(), m, n, 1, m));
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t o = 0; o < n; ++o) {
      REQUIRE(ys[1 + i * (n + 5) + o] == y[i * n + o]);
      REQUIRE(yt[o * m + i] == y[i * n + o]);
    }
  CHECK(ys[1 + n] == 7.0f);  // padding between rows untouched
  // Column-strided x (every other float of a wider buffer).
  std::vector<float> xc(m * k * 2);
  for (std::size_t i = 0; i < m * k; ++i) xc[2 * i] = x[i];
  std::vector<float> y2(m * n);
  pare::matmul(pare::matrix_view<const float>(xc.data(), m, k, 2 * k, 2), p, pare::matrix_view<float>(y2.data(), m, n));
  CHECK(y2 == y);
}

TEST_CASE("packing round-trips pare's quantizer output, errors are clear and write nothing") {
  const std::size_t n = 24, k = 256, m = 5;
  const std::vector<float> wf = pare_test::gaussian(n * k, 4);
  const std::vector<float> x = pare_test::gaussian(m * k, 6);
  for (const char* spec : {"int8:per_channel:sym", "int8:g32:sym", "int8:g128:asym", "int4:g32:sym", "int4:g128:asym",
                           "uint4:g64:asym"}) {
    INFO(spec);
    const auto qt = pare::quantize(pare::matrix_view<const float>(wf.data(), n, k), pare::quant_config::parse(spec));
    // The codes are read in place: the view's values are the quantizer's (the shift of
    // uint8 / signed int4 codes moved into the offsets), and the packing gives the codes
    // back exactly.
    pare::kernel_weights kw;
    pare::kernel_weights_of(qt, kw);
    REQUIRE(kw.view.codes == qt.codes.data());
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < k; ++j) REQUIRE(kw.view.value(i, j) == Approx(qt.value(i, j)).margin(1e-6));
    std::vector<float> y(m * n);
    const pare::matrix_view<const float> xv(x.data(), m, k);
    auto check_packed = [&](const auto& p) {
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < k; ++j) REQUIRE(p.value(i, j) == kw.view.value(i, j));
      const pare::quantized_tensor back = pare::unpack_codes(qt, p);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < k; ++j) REQUIRE(back.code(i, j) == qt.code(i, j));
      pare::matmul(xv, p, pare::matrix_view<float>(y.data(), m, n));
    };
    if (kw.view.bits == 8) {
      REQUIRE(pare::int_kernel_for(qt.config, k) == pare::int_kernel::int8);
      check_packed(pare::pack_int8(qt));
    } else {
      REQUIRE(pare::int_kernel_for(qt.config, k) == pare::int_kernel::int4);
      check_packed(pare::pack_int4(qt));
    }
    // Against x·dequantize(W)ᵀ in float64: the only extra error is the activation
    // quantization, at most s_x/2 per element: |Δy| ≤ Σ_j |w_ij|·s_x/2 (+ float rounding).
    for (std::size_t i = 0; i < m; ++i) {
      double amax = 0;
      for (std::size_t j = 0; j < k; ++j) amax = std::max(amax, std::fabs(double(x[i * k + j])));
      const double sx = amax / 127.0;
      for (std::size_t o = 0; o < n; ++o) {
        double want = 0, l1 = 0;
        for (std::size_t j = 0; j < k; ++j) {
          want += double(x[i * k + j]) * qt.value(o, j);
          l1 += std::fabs(qt.value(o, j));
        }
        REQUIRE(std::fabs(y[i * n + o] - want) <= l1 * sx * 0.5 * 1.001 + 1e-5);
      }
    }
  }
  // Which configurations the integer kernels take (K = 96): 8 and 4 bits, per output
  // channel or per group of K or a multiple of 4 (int8) / 8 (int4) along the input axis.
  auto kernel_of = [](const char* spec, std::size_t cols) { return pare::int_kernel_for(pare::quant_config::parse(spec), cols); };
  CHECK(kernel_of("int8:per_channel:sym", 96) == pare::int_kernel::int8);
  CHECK(kernel_of("uint8:g12:asym", 96) == pare::int_kernel::int8);
  CHECK(kernel_of("int8:g6:sym", 96) == pare::int_kernel::none);
  CHECK(kernel_of("int4:g24:sym", 96) == pare::int_kernel::int4);
  CHECK(kernel_of("int4:g12:sym", 96) == pare::int_kernel::none);
  CHECK(kernel_of("int4:per_channel:sym", 93) == pare::int_kernel::int4);
  CHECK(kernel_of("int8:per_tensor:sym", 96) == pare::int_kernel::none);
  CHECK(kernel_of("int8:per_channel=1:sym", 96) == pare::int_kernel::none);
  CHECK(kernel_of("int5:g32:sym", 96) == pare::int_kernel::none);
  CHECK(kernel_of("int3:g32:sym", 96) == pare::int_kernel::none);
  const auto per_tensor = pare::quantize(pare::matrix_view<const float>(wf.data(), n, k), pare::quant_config::parse("int8:per_tensor:sym"));
  CHECK_THROWS_AS(pare::pack_int8(per_tensor), pare::unsupported_error);
  // Errors.
  const weights w8(8, 8, 64, 32, false, false, 1);
  const auto p = pare::pack_int8(w8.src);
  std::vector<float> x2(3 * 64, 1.0f), y2(3 * 8, 42.0f);
  CHECK_THROWS_AS(pare::matmul(pare::matrix_view<const float>(x2.data(), 3, 63), p, pare::matrix_view<float>(y2.data(), 3, 8)),
                  pare::shape_error);
  CHECK_THROWS_WITH(pare::matmul(pare::matrix_view<const float>(x2.data(), 3, 64), p, pare::matrix_view<float>(y2.data(), 3, 7)),
                    Catch::Contains("[3, 7]"));
  x2[2 * 64 + 9] = std::nanf("");
  CHECK_THROWS_WITH(pare::matmul(pare::matrix_view<const float>(x2.data(), 3, 64), p, pare::matrix_view<float>(y2.data(), 3, 8)),
                    Catch::Contains("(2, 9)"));
  for (float v : y2) REQUIRE(v == 42.0f);  // nothing written
  weights bad(4, 4, 96, 12, false, false, 2);  // group 12: not a multiple of 8
  CHECK_THROWS_AS(pare::pack_int4(bad.src), pare::argument_error);
  weights bad8(8, 4, 96, 6, false, false, 2);  // group 6: not a multiple of 4
  CHECK_THROWS_AS(pare::pack_int8(bad8.src), pare::argument_error);
  weights notdiv(4, 4, 96, 64, false, false, 3);  // 64 does not divide 96
  CHECK_THROWS_AS(pare::pack_int4(notdiv.src), pare::argument_error);
  bad.c4[5] = 16;
  bad.src.group = 32;
  CHECK_THROWS_AS(pare::pack_int4(bad.src), pare::value_error);
}

TEST_CASE("one to three threads give bit-identical outputs; a NaN row in a parallel call writes nothing") {
  // Large enough for the parallel region (row chunks, guided tile tasks, the wait for
  // every quantized row) and with a panel tail (N = 16 · 37 + 5). M = 150 also runs the
  // last tiles as tasks of 64-row blocks (the last one partial) after whole-row tasks.
  const std::size_t k = 2048;
  for (const auto& [m, n] : {std::pair<std::size_t, std::size_t>{150, 16 * 61 + 5}, {45, 597}}) {
    std::vector<float> x(m * k);
    rng r{77 + m};
    for (auto& v : x) v = 0.01f * float(r.in(-300, 300));
    for (int bits : {8, 4}) {
      const weights w(bits, n, k, 128, false, bits == 4, 5 + bits);
      std::vector<std::vector<float>> ys;
      for (std::size_t threads : {1, 2, 3}) {
        pare::thread_pool pool(threads);
        pare::set_executor(&pool);
        ys.push_back(run(w, x, m));
        pare::set_executor(nullptr);
      }
      for (std::size_t t = 1; t < ys.size(); ++t) {
        INFO("M " << m << " bits " << bits << " threads " << t + 1);
        REQUIRE(ys[t] == ys[0]);
      }
    }
  }
  const std::size_t m = 45, n = 597;
  std::vector<float> x(m * k);
  rng r{77};
  for (auto& v : x) v = 0.01f * float(r.in(-300, 300));
  for (int bits : {8, 4}) {
    const weights w(bits, n, k, 128, false, bits == 4, 5 + bits);
    std::vector<float> xb = x;
    xb[40 * k + 1999] = std::numeric_limits<float>::infinity();
    xb[41 * k + 3] = std::nanf("");
    pare::thread_pool pool(2);
    pare::set_executor(&pool);
    std::vector<float> y(m * n, 42.0f);
    const pare::matrix_view<const float> xv(xb.data(), m, k);
    const pare::matrix_view<float> yv(y.data(), m, n);
    if (bits == 8) CHECK_THROWS_WITH(pare::matmul(xv, pare::pack_int8(w.src), yv), Catch::Contains("(40, 1999)"));
    else CHECK_THROWS_WITH(pare::matmul(xv, pare::pack_int4(w.src), yv), Catch::Contains("(40, 1999)"));
    pare::set_executor(nullptr);
    for (float v : y) REQUIRE(v == 42.0f);
  }
}

TEST_CASE("activations quantized once give bit for bit the fp32-input results, for every weight that fits") {
  const std::size_t n = 83, k = 384;
  for (std::size_t m : {1, 5, 33}) {
    std::vector<float> x(m * k);
    rng r{m};
    for (auto& v : x) v = 0.02f * float(r.in(-200, 200));
    const pare::matrix_view<const float> xv(x.data(), m, k);
    const weights w8(8, n, k, k, false, false, 3), w8g(8, n, k, 64, false, true, 4), w4(4, n, k, 128, false, true, 5),
        w4b(4, n, k, 32, false, false, 6);
    const auto p8 = pare::pack_int8(w8.src), p8g = pare::pack_int8(w8g.src);
    const auto p4 = pare::pack_int4(w4.src), p4b = pare::pack_int4(w4b.src);
    const pare::quantized_activations xa = pare::quantize_activations(xv, p4);  // groups of 128
    REQUIRE(xa.rows() == m);
    REQUIRE(xa.cols() == k);
    for_each_variant([&](pare::isa level) {
      INFO("M " << m << " isa " << pare::to_string(level));
      std::vector<float> a(m * n, -1.0f), b(m * n, -2.0f);
      const pare::matrix_view<float> av(a.data(), m, n), bv(b.data(), m, n);
      pare::matmul(xv, p8, av);
      pare::matmul(xa, p8, bv);
      CHECK(a == b);
      pare::matmul(xv, p4, av);
      pare::matmul(xa, p4, bv);
      CHECK(a == b);
      pare::matmul(xv, p4b, av);  // no offsets: any group size fits
      pare::matmul(xa, p4b, bv);
      CHECK(a == b);
      // Offsets in groups of 64: the sums over groups of 128 do not fit.
      CHECK_THROWS_AS(pare::matmul(xa, p8g, bv), pare::argument_error);
    });
    const weights other(8, n, k + 8, k + 8, false, false, 7);
    std::vector<float> y(m * n);
    CHECK_THROWS_AS(pare::matmul(xa, pare::pack_int8(other.src), pare::matrix_view<float>(y.data(), m, n)),
                    pare::shape_error);
    CHECK_THROWS_AS(pare::matmul(xa, p8, pare::matrix_view<float>(y.data(), m, n - 1)), pare::shape_error);
    x[(m - 1) * k + 7] = std::nanf("");
    CHECK_THROWS_WITH(pare::quantize_activations(xv, p8), Catch::Contains("(" + std::to_string(m - 1) + ", 7)"));
  }
}
