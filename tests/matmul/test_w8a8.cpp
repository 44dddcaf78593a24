// W8A8 (w8a8_linear, matmul_static): int8 weights × int8 activations, dynamic per token and static per tensor, against a float64 product of int8 codes computed here, on every ISA.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "pare/kernels/matmul/matmul_int.hpp"
#include "pare/model/layers/w8a8_linear.hpp"
#include "pare_test_support.hpp"

namespace {

template <class F>
void for_each_variant(F&& f) {
  pare::for_each_isa(pare::detected_isas(), [&](pare::isa level) {
    if (level == pare::isa::sse4_1) return;  // no int matmul variant of its own
#if !PARE_HAS_NEON_DOT_KERNELS
    if (level == pare::isa::neon_dot) return;
#endif
    pare::set_enabled_isas(pare::with_lower_levels(level));
    f(level);
  });
  pare::reset_enabled_isas();
}

/// Symmetric int8 codes of v with scale s, as activations.hpp and the quantizer define
/// them: nearbyint(clamp(v · (1/s), −127, 127)) (the reciprocal in float, once).
int code_of(float v, float s) {
  const float inv = 1.0f / s;
  return int(std::nearbyint(std::min(std::max(v * inv, -127.0f), 127.0f)));
}

/// s = max|v| / 127 computed in double, rounded to float once (1 for all zero).
float scale_of(const float* v, std::size_t n) {
  double a = 0;
  for (std::size_t i = 0; i < n; ++i) a = std::max(a, std::fabs(double(v[i])));
  const float s = float(a / 127.0);
  return s > 0 ? s : 1.0f;
}

struct oracle_result {
  std::vector<double> y, bound;  // y[m, n] in float64 and a per-entry rounding bound
  std::size_t saturated = 0;     // activation values beyond ±127·s_x
};

/// y = Σ_k (s_x·q_x) (s_w·q_w) in float64 with q_w from the weights' own row scales and q_x
/// per row (static_scale == 0) or with the one static scale.
oracle_result oracle(const std::vector<float>& x, const std::vector<float>& w, std::size_t m, std::size_t n,
                     std::size_t k, float static_scale) {
  oracle_result r;
  r.y.assign(m * n, 0.0);
  r.bound.assign(m * n, 0.0);
  std::vector<int> qw(n * k);
  std::vector<float> sw(n);
  for (std::size_t o = 0; o < n; ++o) {
    sw[o] = scale_of(&w[o * k], k);
    for (std::size_t j = 0; j < k; ++j) qw[o * k + j] = code_of(w[o * k + j], sw[o]);
  }
  std::vector<int> qx(k);
  for (std::size_t i = 0; i < m; ++i) {
    const float sx = static_scale > 0 ? static_scale : scale_of(&x[i * k], k);
    for (std::size_t j = 0; j < k; ++j) {
      qx[j] = code_of(x[i * k + j], sx);
      r.saturated += std::fabs(double(x[i * k + j])) > 127.5 * double(sx);
    }
    for (std::size_t o = 0; o < n; ++o) {
      double acc = 0, mag = 0;
      for (std::size_t j = 0; j < k; ++j) {
        acc += double(qx[j]) * double(qw[o * k + j]);
        mag += std::fabs(double(qx[j]) * double(qw[o * k + j]));
      }
      r.y[i * n + o] = double(sx) * double(sw[o]) * acc;
      // int32 sums are exact; the float part is two or three roundings of s_x·s_w·acc.
      r.bound[i * n + o] = 1e-6 * double(sx) * double(sw[o]) * mag + 1e-30;
    }
  }
  return r;
}

}  // namespace

TEST_CASE("w8a8_linear equals the float64 product of its int8 codes, dynamic and static, on every ISA",
          "[matmul][w8a8]") {
  struct shape { std::size_t m, n, k; };
  for (const shape& sh : {shape{1, 37, 64}, shape{13, 40, 172}, shape{70, 33, 96}}) {
    const std::size_t m = sh.m, n = sh.n, k = sh.k;
    auto w = pare_test::gaussian(n * k, 100 + k, 0.1);
    auto x = pare_test::gaussian(m * k, 200 + m, 1.0);
    for (std::size_t i = 0; i < m; ++i) x[i * k + (i * 7) % k] = (i % 2 ? -1.0f : 1.0f) * float(8 + i % 5);  // outliers
    w[3 * k + 1] = 0.9f;
    // Static range: at most 6 (the largest |x| of row 0, capped), so the outliers saturate.
    double act_max = 0;
    for (std::size_t j = 0; j < k; ++j) act_max = std::max(act_max, std::fabs(double(x[j])));
    act_max = std::min(act_max, 6.0);
    for (auto mode : {pare::w8a8_activations::dynamic_per_token, pare::w8a8_activations::static_per_tensor}) {
      const bool stat = mode == pare::w8a8_activations::static_per_tensor;
      const pare::w8a8_linear layer(pare::matrix_view<const float>(w.data(), n, k), mode, act_max);
      CHECK(layer.format() == (stat ? "w8a8:static" : "w8a8:dynamic"));
      const float sx = stat ? float(act_max / 127.0) : 0.0f;
      CHECK(layer.act_scale() == sx);
      const oracle_result want = oracle(x, w, m, n, k, sx);
      if (stat) CHECK(want.saturated > 0);  // the static range really clips
      // The stored weights are the oracle's codes and row scales.
      const pare::quantized_tensor qt = layer.tensor();
      for (std::size_t o = 0; o < n; ++o) {
        REQUIRE(qt.scales[o] == scale_of(&w[o * k], k));
        for (std::size_t j = 0; j < k; ++j) REQUIRE(qt.code(o, j) == code_of(w[o * k + j], qt.scales[o]));
      }
      for_each_variant([&](pare::isa level) {
        INFO("m " << m << " n " << n << " k " << k << " " << pare::to_string(mode) << " isa " << pare::to_string(level));
        std::vector<float> y(m * n, -1.0f);
        layer.forward(pare::matrix_view<const float>(x.data(), m, k), pare::matrix_view<float>(y.data(), m, n));
        CHECK(pare::last_used_isa() == level);
        std::size_t wrong = 0;
        double worst = 0;
        for (std::size_t t = 0; t < m * n; ++t) {
          const double d = std::fabs(double(y[t]) - want.y[t]);
          wrong += d > want.bound[t];
          worst = std::max(worst, d / (want.bound[t] / 1e-6));
        }
        INFO("worst relative error " << worst);
        CHECK(wrong == 0);
      });
    }
  }
}

TEST_CASE("static activations: the fixed scale is used for every row (not each row's own), and bad ranges are refused",
          "[matmul][w8a8]") {
  const std::size_t n = 16, k = 32;
  const auto w = pare_test::gaussian(n * k, 9, 0.2);
  // Row 0 small, row 1 large: per-row scales would differ by 50x from the static one.
  std::vector<float> x(2 * k);
  for (std::size_t j = 0; j < k; ++j) x[j] = 0.01f * float(int(j) - 16), x[k + j] = 0.5f * float(int(j % 9) - 4);
  const pare::w8a8_linear stat(pare::matrix_view<const float>(w.data(), n, k), pare::w8a8_activations::static_per_tensor, 1.0);
  const pare::w8a8_linear dyn(pare::matrix_view<const float>(w.data(), n, k), pare::w8a8_activations::dynamic_per_token);
  std::vector<float> ys(2 * n), yd(2 * n);
  stat.forward(pare::matrix_view<const float>(x.data(), 2, k), pare::matrix_view<float>(ys.data(), 2, n));
  dyn.forward(pare::matrix_view<const float>(x.data(), 2, k), pare::matrix_view<float>(yd.data(), 2, n));
  const auto ws = oracle(x, w, 2, n, k, float(1.0 / 127.0));
  const auto wd = oracle(x, w, 2, n, k, 0.0f);
  std::size_t differ = 0;
  for (std::size_t t = 0; t < 2 * n; ++t) {
    CHECK(std::fabs(double(ys[t]) - ws.y[t]) <= ws.bound[t]);
    CHECK(std::fabs(double(yd[t]) - wd.y[t]) <= wd.bound[t]);
    differ += ys[t] != yd[t];
  }
  CHECK(differ > 0);
  CHECK(ws.saturated > 0);  // row 1 beyond ±1 saturates

  for (double bad : {-1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    try {
      pare::w8a8_linear l(pare::matrix_view<const float>(w.data(), n, k), pare::w8a8_activations::static_per_tensor, bad);
      FAIL("expected argument_error for act_max " << bad);
    } catch (const pare::argument_error& e) {
      CHECK(std::string(e.what()).find("argument 'act_max'") != std::string::npos);
    }
  }
  const pare::packed_int8 p = pare::pack_int8(stat.tensor());
  std::vector<float> y(2 * n, 7.0f);
  for (float bad : {0.0f, -0.5f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::denorm_min()}) {
    CHECK_THROWS_AS(pare::matmul_static(pare::matrix_view<const float>(x.data(), 2, k), p, bad,
                                        pare::matrix_view<float>(y.data(), 2, n)),
                    pare::argument_error);
  }
  CHECK(std::all_of(y.begin(), y.end(), [](float v) { return v == 7.0f; }));  // nothing written
  // NaN in x: value_error naming the position, as the dynamic path.
  x[k + 3] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(stat.forward(pare::matrix_view<const float>(x.data(), 2, k), pare::matrix_view<float>(y.data(), 2, n)),
                  pare::value_error);
}
