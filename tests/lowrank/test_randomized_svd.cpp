// Randomized SVD (Halko–Martinsson–Tropp) against known spectra σ_i = decay^i: accuracy, orthonormality, seeded determinism.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "lowrank_test_support.hpp"
#include "pare/lowrank/randomized_svd.hpp"

using lowrank_test::dmat;

namespace {

struct case_data {
  dmat a;
  std::vector<double> sigma;
};

case_data decaying(std::size_t m, std::size_t n, double decay, std::uint64_t seed) {
  case_data c;
  const std::size_t k = std::min(m, n);
  for (std::size_t i = 0; i < k; ++i) c.sigma.push_back(std::pow(decay, double(i)));
  c.a = lowrank_test::with_spectrum(m, n, c.sigma, seed);
  return c;
}

dmat product_of(const pare::svd_result<double>& r) {
  dmat out(r.rows, r.cols);
  for (std::size_t i = 0; i < r.rows; ++i)
    for (std::size_t j = 0; j < r.cols; ++j) {
      long double s = 0;
      for (std::size_t k = 0; k < r.rank(); ++k) s += (long double)r.u[i * r.rank() + k] * r.s[k] * r.vt[k * r.cols + j];
      out(i, j) = double(s);
    }
  return out;
}

}  // namespace

TEST_CASE("randomized svd: within tolerance of the exact SVD on decaying spectra") {
  // Stated tolerance: with p = 10 and q = 2, on σ_i = decay^i (decay ≤ 0.9), the top-k values
  // within 1e-4 relative and the error ‖A − A_k‖_F within 0.1 % of the optimal √Σ_{i≥k} σ_i².
  for (double decay : {0.5, 0.8, 0.9}) {
    const std::size_t m = 160, n = 120, k = 15;
    const case_data c = decaying(m, n, decay, 7);
    const auto r = pare::randomized_svd<double>(pare::matrix_view<const double>(c.a.v.data(), m, n), k, {10, 2, 42});
    REQUIRE(r.rank() == k);
    REQUIRE(r.has_vectors());
    INFO("decay " << decay);
    for (std::size_t i = 0; i < k; ++i) CHECK(r.s[i] == Approx(c.sigma[i]).epsilon(1e-4));
    double opt2 = 0;
    for (std::size_t i = k; i < c.sigma.size(); ++i) opt2 += c.sigma[i] * c.sigma[i];
    const double err = std::sqrt(lowrank_test::diff_frob2(c.a, product_of(r)));
    WARN("decay " << decay << ": randomized rank-" << k << " error " << err << ", optimal " << std::sqrt(opt2));
    CHECK(err <= 1.001 * std::sqrt(opt2));
    CHECK(err >= std::sqrt(opt2) * (1 - 1e-9));  // cannot beat Eckart–Young
    // The closed form for a projection SVD agrees with the direct error.
    CHECK(pare::projection_error(r, lowrank_test::frob2(c.a)) == Approx(err).epsilon(1e-6));
    CHECK(lowrank_test::orthonormality_defect([&] {
            dmat u(m, k);
            u.v = r.u;
            return u;
          }()) < 1e-12);
    CHECK(lowrank_test::orthonormality_defect([&] {
            dmat v(n, k);
            for (std::size_t i = 0; i < k; ++i)
              for (std::size_t j = 0; j < n; ++j) v(j, i) = r.vt[i * n + j];
            return v;
          }()) < 1e-12);
  }
}

TEST_CASE("randomized svd: power iterations help on a slowly decaying spectrum, float matches double") {
  const std::size_t m = 200, n = 150, k = 10;
  const case_data c = decaying(m, n, 0.97, 11);
  const pare::matrix_view<const double> a(c.a.v.data(), m, n);
  double opt2 = 0;
  for (std::size_t i = k; i < c.sigma.size(); ++i) opt2 += c.sigma[i] * c.sigma[i];
  const double norm2 = lowrank_test::frob2(c.a);
  const double e0 = pare::projection_error(pare::randomized_svd<double>(a, k, {5, 0, 1}), norm2);
  const double e3 = pare::projection_error(pare::randomized_svd<double>(a, k, {5, 3, 1}), norm2);
  WARN("decay 0.97, rank 10: error without power iterations " << e0 << ", with 3 " << e3 << ", optimal " << std::sqrt(opt2));
  CHECK(e3 < e0);
  CHECK(e3 <= 1.02 * std::sqrt(opt2));
  // Float input and float arithmetic (sgemm, sgeqrf, sgesdd) agree with double to float precision.
  std::vector<float> af(c.a.v.begin(), c.a.v.end());
  const auto rf = pare::randomized_svd<float>(pare::matrix_view<const float>(af.data(), m, n), k, {5, 3, 1});
  const auto rd = pare::randomized_svd<double>(a, k, {5, 3, 1});
  for (std::size_t i = 0; i < k; ++i) CHECK(double(rf.s[i]) == Approx(rd.s[i]).epsilon(1e-4));
}

TEST_CASE("randomized svd: the same seed gives identical results, another seed a different sketch") {
  const std::size_t m = 90, n = 70, k = 8;
  const case_data c = decaying(m, n, 0.6, 3);
  const pare::matrix_view<const double> a(c.a.v.data(), m, n);
  const auto r1 = pare::randomized_svd<double>(a, k, {4, 1, 123});
  const auto r2 = pare::randomized_svd<double>(a, k, {4, 1, 123});
  const auto r3 = pare::randomized_svd<double>(a, k, {4, 1, 124});
  CHECK(r1.s == r2.s);
  CHECK(r1.u == r2.u);
  CHECK(r1.vt == r2.vt);
  CHECK(r1.s != r3.s);  // a different Gaussian sketch rounds differently
  for (std::size_t i = 0; i < k; ++i) CHECK(r3.s[i] == Approx(c.sigma[i]).epsilon(1e-3));  // both near the truth
  for (std::size_t i = 0; i < k; ++i) CHECK(r1.s[i] == Approx(c.sigma[i]).epsilon(1e-3));
}

TEST_CASE("randomized svd: rank = min(m, n) and large oversampling are exact, bad input throws") {
  const std::size_t m = 20, n = 12;
  const std::vector<float> g = pare_test::gaussian(m * n, 8);
  const pare::matrix_view<const float> a(g.data(), m, n);
  const auto full = pare::randomized_svd<double>(a, n, {100, 0, 0});
  const auto exact = pare::svd<double>(a);
  for (std::size_t i = 0; i < n; ++i) CHECK(full.s[i] == Approx(exact.s[i]).epsilon(1e-12));
  CHECK_THROWS_AS(pare::randomized_svd<double>(a, 0), pare::argument_error);
  CHECK_THROWS_AS(pare::randomized_svd<double>(a, 13), pare::argument_error);
  CHECK_THROWS_AS(pare::randomized_svd<double>(pare::matrix_view<const float>(g.data(), 0, 3), 1), pare::shape_error);
  std::vector<float> bad = g;
  bad[7] = INFINITY;
  CHECK_THROWS_AS(pare::randomized_svd<float>(pare::matrix_view<const float>(bad.data(), m, n), 3), pare::value_error);
}
