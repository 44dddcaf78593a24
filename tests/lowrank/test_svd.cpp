// Exact SVD (LAPACK ?gesdd) against float64 references: known spectra, Eckart–Young, orthonormality, reconstruction, on random and real stories260K weights.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lowrank_test_support.hpp"
#include "pare/lowrank/svd.hpp"

using lowrank_test::dmat;

namespace {

dmat to_dmat(const std::vector<double>& v, std::size_t m, std::size_t n) {
  dmat d(m, n);
  d.v = v;
  return d;
}
template <class T>
dmat u_of(const pare::svd_result<T>& r) {
  dmat d(r.rows, r.rank());
  for (std::size_t i = 0; i < d.v.size(); ++i) d.v[i] = double(r.u[i]);
  return d;
}
template <class T>
dmat v_of(const pare::svd_result<T>& r) {  // V [cols, rank]
  dmat d(r.cols, r.rank());
  for (std::size_t i = 0; i < r.rank(); ++i)
    for (std::size_t j = 0; j < r.cols; ++j) d(j, i) = double(r.vt[i * r.cols + j]);
  return d;
}
/// U_r·diag(s_r)·V_rᵀ by the plain long-double product (not the library's reconstruct).
template <class T>
dmat rank_r(const pare::svd_result<T>& d, std::size_t r) {
  dmat out(d.rows, d.cols);
  for (std::size_t i = 0; i < d.rows; ++i)
    for (std::size_t j = 0; j < d.cols; ++j) {
      long double s = 0;
      for (std::size_t k = 0; k < r; ++k) s += (long double)d.u[i * d.rank() + k] * d.s[k] * d.vt[k * d.cols + j];
      out(i, j) = double(s);
    }
  return out;
}

/// Every property the SVD must have, checked against `a` in float64.
template <class T>
void check_svd(const dmat& a, const pare::svd_result<T>& d, double tol) {
  const std::size_t k = std::min(a.m, a.n);
  REQUIRE(d.rows == a.m);
  REQUIRE(d.cols == a.n);
  REQUIRE(d.rank() == k);
  REQUIRE(d.has_vectors());
  for (std::size_t i = 0; i < k; ++i) {
    CHECK(d.s[i] >= 0);
    if (i) CHECK(d.s[i] <= d.s[i - 1]);
  }
  CHECK(lowrank_test::orthonormality_defect(u_of(d)) < tol);
  CHECK(lowrank_test::orthonormality_defect(v_of(d)) < tol);
  const double norm2 = lowrank_test::frob2(a);
  // Full rank reproduces A; every truncation's squared error is the discarded energy (Eckart–Young).
  for (std::size_t r : {std::size_t(0), std::size_t(1), k / 4, k / 2, k - 1, k}) {
    const double err2 = lowrank_test::diff_frob2(a, rank_r(d, r));
    double tail = 0;
    for (std::size_t i = r; i < k; ++i) tail += double(d.s[i]) * double(d.s[i]);
    INFO("rank " << r << " of " << k << ": error² " << err2 << ", Σ discarded σ² " << tail << ", ‖A‖² " << norm2);
    CHECK(std::fabs(err2 - tail) <= tol * norm2);
    CHECK(std::fabs(d.tail_energy(r) - tail) <= 1e-12 * norm2);
  }
}

}  // namespace

TEST_CASE("svd: a matrix with a known spectrum gives back that spectrum (float64 reference)") {
  // A = U·diag(σ)·Vᵀ built with Gram–Schmidt bases in the test: σ is the independent truth.
  for (auto shape : {std::pair<std::size_t, std::size_t>{60, 40}, {40, 60}, {50, 50}}) {
    const std::size_t k = std::min(shape.first, shape.second);
    std::vector<double> sigma(k);
    for (std::size_t i = 0; i < k; ++i) sigma[i] = 3.0 * std::pow(0.85, double(i)) + (i % 3 == 0 ? 0.01 : 0.0);
    std::sort(sigma.rbegin(), sigma.rend());
    const dmat a = lowrank_test::with_spectrum(shape.first, shape.second, sigma, 17);
    const auto d = pare::svd<double>(pare::matrix_view<const double>(a.v.data(), a.m, a.n));
    for (std::size_t i = 0; i < k; ++i) CHECK(d.s[i] == Approx(sigma[i]).epsilon(1e-12).margin(1e-13));
    check_svd(a, d, 1e-12);
  }
}

TEST_CASE("svd: random Gaussian matrices, double and float against the float64 reference") {
  for (auto shape : {std::pair<std::size_t, std::size_t>{37, 23}, {23, 37}, {64, 64}, {1, 9}, {9, 1}}) {
    const std::size_t m = shape.first, n = shape.second;
    const std::vector<float> g = pare_test::gaussian(m * n, 5 + m);
    dmat a(m, n);
    for (std::size_t i = 0; i < m * n; ++i) a.v[i] = g[i];
    const pare::matrix_view<const float> av(g.data(), m, n);
    INFO("shape " << m << "x" << n);
    const auto d = pare::svd<double>(av);
    check_svd(a, d, 1e-12);
    // Σσ² = ‖A‖²_F, an identity independent of the factorization.
    CHECK(d.energy() == Approx(lowrank_test::frob2(a)).epsilon(1e-13));
    // The float SVD (sgesdd) agrees with the double one to float precision.
    const auto f = pare::svd<float>(av);
    check_svd(a, f, 2e-5);
    for (std::size_t i = 0; i < d.rank(); ++i) CHECK(double(f.s[i]) == Approx(d.s[i]).epsilon(1e-5).margin(1e-5 * d.s[0]));
    // Values-only agrees with the full decomposition.
    const auto s = pare::singular_values<double>(av);
    REQUIRE(s.size() == d.rank());
    for (std::size_t i = 0; i < s.size(); ++i) CHECK(s[i] == Approx(d.s[i]).epsilon(1e-12).margin(1e-12 * d.s[0]));
  }
}

TEST_CASE("svd: strided input, truncation and the library reconstruction agree with the reference") {
  const std::size_t m = 30, n = 20;
  const std::vector<float> g = pare_test::gaussian(m * n, 99);
  // A transposed view (column stride ≠ 1) of the [n, m] buffer: element (i, j) = g[j·m + i].
  const pare::matrix_view<const float> at(g.data(), m, n, 1, static_cast<std::ptrdiff_t>(m));
  dmat a(m, n);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) a(i, j) = g[j * m + i];
  const auto d = pare::svd<double>(at);
  check_svd(a, d, 1e-12);
  const auto t = d.truncated(5);
  REQUIRE(t.rank() == 5);
  REQUIRE(t.has_vectors());
  const dmat ref = rank_r(d, 5);
  const std::vector<double> rec = t.reconstruct(5);
  CHECK(lowrank_test::diff_frob2(ref, to_dmat(rec, m, n)) < 1e-24 * lowrank_test::frob2(a));
  std::vector<float> recf(m * n);
  d.reconstruct(5, pare::matrix_view<float>(recf.data(), m, n));
  for (std::size_t i = 0; i < m * n; ++i) CHECK(recf[i] == Approx(ref.v[i]).margin(1e-5));
  CHECK_THROWS_AS(d.truncated(21), pare::argument_error);
  // Balanced factors: A·B is the rank-5 truncation, A = U·√s and B = √s·Vᵀ carry equal norms.
  const pare::lowrank_factors f = pare::lowrank_factorize(at, 5);
  REQUIRE(f.a.size() == m * 5);
  REQUIRE(f.b.size() == 5 * n);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::size_t k = 0; k < 5; ++k) s += double(f.a[i * 5 + k]) * f.b[k * n + j];
      REQUIRE(s == Approx(ref(i, j)).margin(2e-5));
    }
  for (std::size_t k = 0; k < 5; ++k) {
    double na = 0, nb = 0;
    for (std::size_t i = 0; i < m; ++i) na += double(f.a[i * 5 + k]) * f.a[i * 5 + k];
    for (std::size_t j = 0; j < n; ++j) nb += double(f.b[k * n + j]) * f.b[k * n + j];
    CHECK(na == Approx(d.s[k]).epsilon(1e-5));
    CHECK(nb == Approx(d.s[k]).epsilon(1e-5));
  }
}

TEST_CASE("svd: real stories260K weights obey Eckart-Young") {
  const auto& ck = lowrank_test::checkpoint();
  for (const char* name : {"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.2.ffn_down.weight", "blk.4.ffn_gate.weight",
                           "token_embd.weight"}) {
    const pare::matrix_view<const float> w = ck.tensor(name).as_matrix();
    dmat a(w.rows(), w.cols());
    for (std::size_t i = 0; i < w.rows(); ++i)
      for (std::size_t j = 0; j < w.cols(); ++j) a(i, j) = w(i, j);
    INFO(name << " " << w.shape());
    const auto d = pare::svd<double>(w);
    check_svd(a, d, 1e-11);
    const auto f = pare::svd<float>(w);
    check_svd(a, f, 5e-5);
    const std::size_t k = d.rank();
    WARN(name << " " << w.rows() << "x" << w.cols() << ": σ_max " << d.s[0] << ", σ_min " << d.s[k - 1]
              << ", relative error at rank " << k / 2 << " = " << std::sqrt(d.tail_energy(k / 2) / d.energy()));
  }
}

TEST_CASE("svd: bad input throws pare errors naming the argument") {
  std::vector<float> w = pare_test::gaussian(12, 3);
  const pare::matrix_view<const float> v(w.data(), 3, 4);
  CHECK_THROWS_AS(pare::svd<double>(pare::matrix_view<const float>(w.data(), 0, 4)), pare::shape_error);
  w[5] = std::nanf("");
  try {
    (void)pare::svd<double>(v);
    FAIL("expected value_error");
  } catch (const pare::value_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("argument 'a'") && Catch::Contains("(1, 1)"));
  }
  w[5] = 1.0f;
  try {
    (void)pare::lowrank_factorize(v, 0);
    FAIL("expected argument_error");
  } catch (const pare::argument_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("argument 'rank'") && Catch::Contains("got 0"));
  }
  CHECK_THROWS_AS(pare::lowrank_factorize(v, 4), pare::argument_error);
  CHECK_NOTHROW(pare::lowrank_factorize(v, 3));
}
