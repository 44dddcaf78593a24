// asymmetric_target against the float64 normal equations of min ‖W·X − Ŵ·X̃‖², its fixed point W when X̃ = X, and its refusals.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "pare/solvers/asymmetric_target.hpp"
#include "solver_test_support.hpp"

namespace {

struct problem {
  std::size_t rows = 6, k = 10, t = 64;
  std::vector<float> w;
  std::vector<double> x, xq;  // [t, k]: the reference's and the compressed model's inputs
  std::vector<double> p, g;

  explicit problem(double noise, unsigned seed = 7) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> n01(0.0, 1.0);
    w.resize(rows * k);
    for (auto& v : w) v = static_cast<float>(n01(rng));
    x.resize(t * k);
    xq.resize(t * k);
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = n01(rng) * (1.0 + double(i % k));  // channels of different scale
      xq[i] = x[i] + noise * n01(rng);
    }
    p.assign(k * k, 0.0);
    g.assign(k * k, 0.0);
    for (std::size_t s = 0; s < t; ++s)
      for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < k; ++j) {
          p[i * k + j] += x[s * k + i] * xq[s * k + j];
          g[i * k + j] += xq[s * k + i] * xq[s * k + j];
        }
  }
  /// ‖W·X − Ŵ·X̃‖² in float64.
  double loss(const std::vector<float>& w_hat) const {
    double e = 0;
    for (std::size_t s = 0; s < t; ++s)
      for (std::size_t r = 0; r < rows; ++r) {
        double a = 0;
        for (std::size_t j = 0; j < k; ++j) a += double(w[r * k + j]) * x[s * k + j] - double(w_hat[r * k + j]) * xq[s * k + j];
        e += a * a;
      }
    return e;
  }
};

}  // namespace

TEST_CASE("asymmetric_target solves the normal equations of ||W X - W' X~|| (float64 Gauss-Jordan oracle)", "[solvers][gptaq]") {
  const problem pr(0.3);
  const std::vector<float> got =
      pare::solvers::asymmetric_target(pare::matrix_view<const float>(pr.w.data(), pr.rows, pr.k), pr.p, pr.g, 0.0);
  // Oracle: W* = W·P·G⁻¹ with G inverted by Gauss-Jordan in the test.
  const std::vector<double> gi = solver_test::gauss_jordan_inverse(pr.g, pr.k);
  std::vector<float> want(pr.rows * pr.k);
  for (std::size_t r = 0; r < pr.rows; ++r)
    for (std::size_t j = 0; j < pr.k; ++j) {
      double acc = 0;
      for (std::size_t a = 0; a < pr.k; ++a)
        for (std::size_t b = 0; b < pr.k; ++b) acc += double(pr.w[r * pr.k + a]) * pr.p[a * pr.k + b] * gi[b * pr.k + j];
      want[r * pr.k + j] = static_cast<float>(acc);
    }
  for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-4).epsilon(1e-4));
  // It is the minimiser: W itself and small perturbations of W' do worse.
  const double best = pr.loss(got);
  CHECK(best < pr.loss(pr.w));
  std::mt19937 rng(3);
  std::normal_distribution<float> small(0.0f, 1e-2f);
  for (int trial = 0; trial < 10; ++trial) {
    std::vector<float> q = got;
    for (auto& v : q) v += small(rng);
    CHECK(pr.loss(q) > best);
  }
}

TEST_CASE("asymmetric_target keeps W when the inputs agree, whatever the dampening, and shrinks towards W, not 0", "[solvers][gptaq]") {
  const problem same(0.0);
  for (double damp : {0.0, 0.01, 0.1, 10.0}) {
    const auto got = pare::solvers::asymmetric_target(pare::matrix_view<const float>(same.w.data(), same.rows, same.k), same.p,
                                                      same.g, damp);
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(same.w[i]).margin(1e-5));
  }
  // Heavy dampening moves W' back to W.
  const problem pr(0.5);
  const auto far = pare::solvers::asymmetric_target(pare::matrix_view<const float>(pr.w.data(), pr.rows, pr.k), pr.p, pr.g, 1e6);
  for (std::size_t i = 0; i < far.size(); ++i) CHECK(far[i] == Approx(pr.w[i]).margin(1e-3));
}

TEST_CASE("asymmetric_target refuses mismatched sizes, bad dampening and a singular G", "[solvers][gptaq]") {
  const problem pr(0.3);
  const pare::matrix_view<const float> wv(pr.w.data(), pr.rows, pr.k);
  CHECK_THROWS_AS(pare::solvers::asymmetric_target(wv, std::vector<double>(pr.k * pr.k - 1), pr.g, 0.0), pare::shape_error);
  CHECK_THROWS_AS(pare::solvers::asymmetric_target(wv, pr.p, pr.g, -1.0), pare::value_error);
  CHECK_THROWS_AS(pare::solvers::asymmetric_target(wv, pr.p, pr.g, std::nan("")), pare::value_error);
  std::vector<double> singular(pr.k * pr.k, 0.0);
  singular[0] = 1.0;
  CHECK_THROWS_WITH(pare::solvers::asymmetric_target(wv, pr.p, singular, 0.0), Catch::Contains("positive definite"));
}
