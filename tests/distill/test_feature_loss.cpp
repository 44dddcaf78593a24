// Feature distillation losses (MSE, 1 − cos) and their gradients against float64 formulas and central finite differences.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "pare/distill/feature_loss.hpp"
#include "pare_test_support.hpp"

namespace {

double ref_mse(const std::vector<double>& s, const std::vector<double>& t) {
  double e = 0;
  for (std::size_t i = 0; i < s.size(); ++i) e += (s[i] - t[i]) * (s[i] - t[i]);
  return e / double(s.size());
}

double ref_cos_loss(const std::vector<double>& s, const std::vector<double>& t, std::size_t B, std::size_t D, double eps) {
  double l = 0;
  for (std::size_t r = 0; r < B; ++r) {
    double dot = 0, ss = 0, tt = 0;
    for (std::size_t j = 0; j < D; ++j) {
      dot += s[r * D + j] * t[r * D + j];
      ss += s[r * D + j] * s[r * D + j];
      tt += t[r * D + j] * t[r * D + j];
    }
    l += 1 - dot / (std::max(std::sqrt(ss), eps) * std::max(std::sqrt(tt), eps));
  }
  return l / double(B);
}

template <class Loss>
double central_difference(Loss&& loss, std::vector<double> x, std::size_t i, double h) {
  x[i] += h;
  const double p = loss(x);
  x[i] -= 2 * h;
  return (p - loss(x)) / (2 * h);
}

}  // namespace

TEST_CASE("MSE feature loss and gradient against float64 and finite differences", "[distill][feature]") {
  for (std::size_t D : {1u, 9u, 64u, 300u}) {
    const std::size_t B = 4;
    INFO("D " << D);
    const std::vector<float> s = pare_test::gaussian(B * D, 1 + D), t = pare_test::gaussian(B * D, 2 + D, 1.5, 0.2);
    const std::vector<double> ds = pare_test::to_double(s), dt = pare_test::to_double(t);
    std::vector<float> g(B * D);
    const pare::feature_loss_result r = pare::mse_loss_and_grad(pare::matrix_view<const float>(s.data(), B, D),
                                                                pare::matrix_view<const float>(t.data(), B, D),
                                                                pare::matrix_view<float>(g.data(), B, D));
    CHECK(r.loss == Approx(ref_mse(ds, dt)).epsilon(1e-12));
    CHECK(pare::mse_loss(pare::matrix_view<const float>(s.data(), B, D), pare::matrix_view<const float>(t.data(), B, D)).loss == r.loss);
    for (std::size_t row = 0; row < B; ++row) {
      const std::vector<double> rs(ds.begin() + std::ptrdiff_t(row * D), ds.begin() + std::ptrdiff_t((row + 1) * D));
      const std::vector<double> rt(dt.begin() + std::ptrdiff_t(row * D), dt.begin() + std::ptrdiff_t((row + 1) * D));
      CHECK(r.row_loss[row] == Approx(ref_mse(rs, rt)).epsilon(1e-12));
    }
    for (std::size_t i = 0; i < B * D; ++i) {
      REQUIRE(g[i] == Approx(2 * (ds[i] - dt[i]) / double(B * D)).epsilon(1e-6));
      REQUIRE(g[i] == Approx(central_difference([&](const std::vector<double>& x) { return ref_mse(x, dt); }, ds, i, 1e-5))
                          .margin(1e-8).epsilon(1e-6));
    }
  }
  std::vector<float> g(4);
  const std::vector<float> same{1, 2, 3, 4};
  const auto z = pare::mse_loss_and_grad(pare::matrix_view<const float>(same.data(), 2, 2), pare::matrix_view<const float>(same.data(), 2, 2),
                                         pare::matrix_view<float>(g.data(), 2, 2));
  CHECK(z.loss == 0.0);
  for (float v : g) CHECK(v == 0.0f);
}

TEST_CASE("cosine feature loss and gradient against float64 and finite differences", "[distill][feature]") {
  for (std::size_t D : {2u, 9u, 64u, 300u}) {
    const std::size_t B = 5;
    INFO("D " << D);
    const std::vector<float> s = pare_test::gaussian(B * D, 10 + D, 2.0, 0.1), t = pare_test::gaussian(B * D, 20 + D);
    const std::vector<double> ds = pare_test::to_double(s), dt = pare_test::to_double(t);
    std::vector<float> g(B * D);
    const auto r = pare::cosine_loss_and_grad(pare::matrix_view<const float>(s.data(), B, D),
                                              pare::matrix_view<const float>(t.data(), B, D), pare::matrix_view<float>(g.data(), B, D));
    CHECK(r.loss == Approx(ref_cos_loss(ds, dt, B, D, 1e-8)).epsilon(1e-12));
    for (std::size_t row = 0; row < B; ++row) {
      CHECK(r.row_loss[row] >= 0.0);
      CHECK(r.row_loss[row] <= 2.0);
    }
    const auto loss = [&](const std::vector<double>& x) { return ref_cos_loss(x, dt, B, D, 1e-8); };
    for (std::size_t i = 0; i < B * D; ++i) REQUIRE(g[i] == Approx(central_difference(loss, ds, i, 1e-6)).margin(1e-8).epsilon(1e-5));
  }
}

TEST_CASE("cosine loss: parallel rows give 0, opposite give 2, zero rows are guarded", "[distill][feature]") {
  const std::vector<float> s{1, 2, 3, 0, 0, 0, 1, 1, 0};
  const std::vector<float> t{2, 4, 6, 1, 2, 3, -1, -1, 0};
  std::vector<float> g(9);
  const auto r = pare::cosine_loss_and_grad(pare::matrix_view<const float>(s.data(), 3, 3), pare::matrix_view<const float>(t.data(), 3, 3),
                                            pare::matrix_view<float>(g.data(), 3, 3));
  CHECK(r.row_loss[0] == Approx(0.0).margin(1e-12));
  CHECK(r.row_loss[1] == Approx(1.0));  // a zero student row: cos 0
  CHECK(r.row_loss[2] == Approx(2.0));
  for (float v : g) CHECK(std::isfinite(v));
  for (std::size_t j = 0; j < 3; ++j) CHECK(g[j] == Approx(0.0).margin(1e-7));  // parallel: stationary
  // Zero student row: the gradient is −t/(eps·‖t‖)/B (n_s = eps is constant there).
  const double nt = std::sqrt(14.0);
  for (std::size_t j = 0; j < 3; ++j) CHECK(g[3 + j] == Approx(-double(t[3 + j]) / (1e-8 * nt) / 3.0).epsilon(1e-6));
  // Large magnitudes are fine (float64 reductions).
  const std::vector<float> big = pare_test::gaussian(64, 30, 1e18), big2 = pare_test::gaussian(64, 31, 1e18);
  std::vector<float> gb(64);
  const auto rb = pare::cosine_loss_and_grad(pare::matrix_view<const float>(big.data(), 2, 32), pare::matrix_view<const float>(big2.data(), 2, 32),
                                             pare::matrix_view<float>(gb.data(), 2, 32));
  CHECK(std::isfinite(rb.loss));
  CHECK(rb.loss == Approx(ref_cos_loss(pare_test::to_double(big), pare_test::to_double(big2), 2, 32, 1e-8)).epsilon(1e-12));
}

TEST_CASE("feature losses reject bad arguments", "[distill][feature]") {
  std::vector<float> s(6, 1.0f), t(6, 2.0f), g(6);
  const pare::matrix_view<const float> sv(s.data(), 2, 3), tv(t.data(), 2, 3);
  CHECK_THROWS_AS(pare::mse_loss(sv, pare::matrix_view<const float>(t.data(), 3, 2)), pare::shape_error);
  CHECK_THROWS_AS(pare::cosine_loss_and_grad(sv, tv, pare::matrix_view<float>(g.data(), 1, 3)), pare::shape_error);
  CHECK_THROWS_AS(pare::cosine_loss(sv, tv, 0.0), pare::argument_error);
  CHECK_THROWS_AS(pare::mse_loss(pare::matrix_view<const float>(s.data(), 0, 3), pare::matrix_view<const float>(t.data(), 0, 3)),
                  pare::shape_error);
  s[4] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(pare::mse_loss(sv, tv), Catch::Contains("student") && Catch::Contains("(1, 1)"));
  CHECK_THROWS_AS(pare::cosine_loss(sv, tv), pare::value_error);
}
