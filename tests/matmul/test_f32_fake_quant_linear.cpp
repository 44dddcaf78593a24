// fp32 matmul against float64 on every ISA and shape; fused fake-quant linear equals matmul of the fake-quantized weights bit for bit.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "pare/kernels/matmul/matmul_f32.hpp"
#include "pare/quant/fake_quant_linear.hpp"
#include "pare/quant/quantize.hpp"
#include "pare_test_support.hpp"

namespace {
template <class F>
void for_each_variant(F&& f) {
  pare::for_each_isa(pare::detected_isas(), [&](pare::isa level) {
    if (level != pare::isa::scalar && level != pare::isa::avx2 && level != pare::isa::avx512bw &&
        level != pare::isa::neon)
      return;
    pare::set_enabled_isas(pare::with_lower_levels(level));
    f(level);
  });
  pare::reset_enabled_isas();
}
}  // namespace

TEST_CASE("fp32 matmul matches float64 within c·eps·sum|x·w| on every ISA and shape") {
  const std::size_t ms[] = {1, 2, 3, 5, 6, 7, 8, 11, 12, 13, 16, 17, 32, 33, 128};
  const std::size_t ns[] = {1, 15, 16, 17, 33, 70};
  const std::size_t ks[] = {1, 7, 64, 301};
  for (std::size_t m : ms)
    for (std::size_t n : ns)
      for (std::size_t k : ks) {
        const auto x = pare_test::gaussian(m * k, 10 + m), w = pare_test::gaussian(n * k, 20 + n);
        for_each_variant([&](pare::isa level) {
          std::vector<float> y(m * n);
          pare::matmul(pare::matrix_view<const float>(x.data(), m, k), pare::matrix_view<const float>(w.data(), n, k),
                       pare::matrix_view<float>(y.data(), m, n));
          REQUIRE(pare::last_used_isa() == level);
          double mean = 0, mean_bound = 0;
          for (std::size_t i = 0; i < m; ++i)
            for (std::size_t o = 0; o < n; ++o) {
              double s = 0, a = 0;
              for (std::size_t j = 0; j < k; ++j) {
                s += double(x[i * k + j]) * w[o * k + j];
                a += std::fabs(double(x[i * k + j]) * w[o * k + j]);
              }
              const double bound = 2.0 * double(k) * 0x1p-24 * a + 1e-30;  // recursive summation bound
              INFO("m " << m << " n " << n << " k " << k << " isa " << pare::to_string(level));
              REQUIRE(std::fabs(y[i * n + o] - s) <= bound);
              mean += y[i * n + o] - s;
              mean_bound += bound;
            }
          // No systematic bias: unbiased rounding errors sum like √count, a bias like count.
          CHECK(std::fabs(mean) <= mean_bound / std::sqrt(double(m * n)) + 1e-30);
        });
      }
}

TEST_CASE("fp32 matmul: strided and misaligned views, errors") {
  const std::size_t m = 5, n = 21, k = 19;
  const auto x = pare_test::gaussian(m * k, 1), w = pare_test::gaussian(n * k, 2);
  std::vector<float> y(m * n);
  pare::matmul(pare::matrix_view<const float>(x.data(), m, k), pare::matrix_view<const float>(w.data(), n, k),
               pare::matrix_view<float>(y.data(), m, n));
  std::vector<float> xs(1 + m * (k + 2)), wt(k * n), yt(n * m);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < k; ++j) xs[1 + i * (k + 2) + j] = x[i * k + j];
  for (std::size_t o = 0; o < n; ++o)
    for (std::size_t j = 0; j < k; ++j) wt[j * n + o] = w[o * k + j];  // W given transposed in memory
  pare::matmul(pare::matrix_view<const float>(xs.data() + 1, m, k, k + 2),
               pare::matrix_view<const float>(wt.data(), n, k, 1, n), pare::matrix_view<float>(yt.data(), m, n, 1, m));
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t o = 0; o < n; ++o) REQUIRE(yt[o * m + i] == y[i * n + o]);
  CHECK_THROWS_AS(pare::matmul(pare::matrix_view<const float>(x.data(), m, k - 1),
                               pare::matrix_view<const float>(w.data(), n, k), pare::matrix_view<float>(y.data(), m, n)),
                  pare::shape_error);
}

TEST_CASE("fused fake-quant linear equals matmul of fake_quantize(W) bit for bit, learned parameters, errors") {
  const std::size_t m = 9, n = 37, k = 128;
  const auto x = pare_test::gaussian(m * k, 3), w = pare_test::gaussian(n * k, 4);
  const pare::matrix_view<const float> xv(x.data(), m, k), wv(w.data(), n, k);
  for (const char* spec : {"int8:per_channel:sym", "int4:g32:asym", "int3:g64:sym:mse", "uint4:per_tensor:asym",
                           "int4:per_channel=1:sym"}) {
    INFO(spec);
    const auto cfg = pare::quant_config::parse(spec);
    for_each_variant([&](pare::isa) {
      std::vector<float> fq(n * k), want(m * n), got(m * n);
      pare::fake_quantize(wv, cfg, pare::matrix_view<float>(fq.data(), n, k));
      pare::matmul(xv, pare::matrix_view<const float>(fq.data(), n, k), pare::matrix_view<float>(want.data(), m, n));
      pare::fake_quant_linear(xv, wv, cfg, pare::matrix_view<float>(got.data(), m, n));
      CHECK(got == want);
    });
  }
  // Learned (changed) scales: the same identity with fake_quant_forward.
  auto p = pare::fake_quant_params::from_data(wv, pare::quant_config::parse("int4:g32:sym"));
  for (float& s : p.scales) s *= 0.8f;
  std::vector<float> fq(n * k), want(m * n), got(m * n, 5.0f);
  pare::fake_quant_forward(wv, p, pare::matrix_view<float>(fq.data(), n, k));
  pare::matmul(xv, pare::matrix_view<const float>(fq.data(), n, k), pare::matrix_view<float>(want.data(), m, n));
  pare::fake_quant_linear(xv, wv, p, pare::matrix_view<float>(got.data(), m, n));
  CHECK(got == want);
  // Errors write nothing.
  std::vector<float> bad = w, y(m * n, 5.0f);
  bad[3 * k + 7] = INFINITY;
  CHECK_THROWS_WITH(pare::fake_quant_linear(xv, pare::matrix_view<const float>(bad.data(), n, k), p,
                                            pare::matrix_view<float>(y.data(), m, n)),
                    Catch::Contains("(3, 7)"));
  CHECK_THROWS_AS(pare::fake_quant_linear(xv, pare::matrix_view<const float>(w.data(), n - 1, k), p,
                                          pare::matrix_view<float>(y.data(), m, n - 1)),
                  pare::error);
  for (float v : y) REQUIRE(v == 5.0f);
}
