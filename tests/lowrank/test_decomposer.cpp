// decomposer<Method, RankPolicy>: ranks and errors against matrices of known spectrum (Eckart–Young), the runtime twin, budgets, and the statistics a method needs.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "lowrank_test_support.hpp"
#include "pare/lowrank/decomposer.hpp"

namespace lt = lowrank_test;

namespace {
/// A fp32 copy of a float64 matrix.
std::vector<float> to_float(const lt::dmat& a) { return std::vector<float>(a.v.begin(), a.v.end()); }

/// ‖W − A·B‖²_F in long double (independent of BLAS).
double residual2(const lt::dmat& w, const pare::lowrank_factors& f) {
  long double s = 0;
  for (std::size_t i = 0; i < f.out; ++i)
    for (std::size_t j = 0; j < f.in; ++j) {
      long double ab = 0;
      for (std::size_t r = 0; r < f.rank; ++r) ab += (long double)f.a[i * f.rank + r] * f.b[r * f.in + j];
      const long double d = w(i, j) - ab;
      s += d * d;
    }
  return double(s);
}
}  // namespace

TEST_CASE("decomposer: energy and ratio ranks, Eckart–Young errors, runtime twin") {
  const std::size_t m = 48, n = 36;
  std::vector<double> s(n);
  for (std::size_t i = 0; i < n; ++i) s[i] = 10.0 * std::pow(0.8, double(i));
  const lt::dmat w = lt::with_spectrum(m, n, s, 5);
  const std::vector<float> wf = to_float(w);
  const pare::matrix_view<const float> wv(wf.data(), m, n);
  double total = 0;
  for (double v : s) total += v * v;

  SECTION("energy") {
    const pare::decomposer<pare::lowrank::truncated_svd, pare::lowrank::energy> d({}, {0.95});
    const pare::layer_decomposition r = d(wv);
    std::size_t want = 0;
    for (double kept = 0; kept < 0.95 * total; ++want) kept += s[want] * s[want];
    CHECK(r.rank == want);
    REQUIRE_FALSE(r.dense);
    double tail = 0;
    for (std::size_t i = want; i < n; ++i) tail += s[i] * s[i];
    CHECK(r.energy == Approx(1.0 - tail / total).epsilon(1e-5));
    CHECK(residual2(w, r.decomposition.factors(r.rank)) == Approx(tail).epsilon(1e-3));
    CHECK(r.parameters == want * (m + n));
    // The runtime twin: the same ranks and bit-identical factors.
    CHECK(d.spec().str() == "energy=0.95");
    const pare::decomposition_plan p = pare::plan_decomposition({{"w", wv, nullptr}}, pare::lowrank_spec::parse("energy=0.95"));
    CHECK(p.layers[0].rank == r.rank);
    CHECK(p.layers[0].decomposition.factors(r.rank).a == r.decomposition.factors(r.rank).a);
  }
  SECTION("ratio and fixed rank") {
    const pare::decomposer<pare::lowrank::truncated_svd, pare::lowrank::ratio> d({}, {0.5});
    const pare::layer_decomposition r = d(wv);
    CHECK(r.rank == (m * n / 2) / (m + n));  // the largest r with r·(m + n) ≤ 0.5·m·n
    double tail = 0;
    for (std::size_t i = r.rank; i < n; ++i) tail += s[i] * s[i];
    CHECK(residual2(w, r.decomposition.factors(r.rank)) == Approx(tail).epsilon(1e-3));
    const pare::decomposer<pare::lowrank::truncated_svd, pare::lowrank::fixed_rank> big({}, {30});
    const pare::layer_decomposition rb = big(wv);
    CHECK(rb.dense);  // 30·(48 + 36) = 2520 ≥ 48·36 = 1728
    CHECK_THAT(rb.reason, Catch::Contains("would not save parameters"));
    CHECK(big.spec().str() == "rank=30");
  }
  SECTION("randomized SVD of a fixed rank is within a few percent of the optimal error") {
    const pare::decomposer<pare::lowrank::randomized_svd, pare::lowrank::fixed_rank> d({}, {8});
    const pare::layer_decomposition r = d(wv);
    CHECK(r.rank == 8);
    CHECK(d.spec().str() == "rank=8:rsvd");
    double tail = 0;
    for (std::size_t i = 8; i < n; ++i) tail += s[i] * s[i];
    const double e = residual2(w, r.decomposition.factors(8));
    CHECK(e >= tail * (1 - 1e-4));
    CHECK(e <= tail * 1.05);
  }
}

TEST_CASE("decomposer: a budget over several matrices, methods that need statistics") {
  std::vector<double> s1(20), s2(20);
  for (std::size_t i = 0; i < 20; ++i) s1[i] = std::pow(0.5, double(i)), s2[i] = 1.0 / (1.0 + double(i));
  const lt::dmat a = lt::with_spectrum(30, 20, s1, 11), b = lt::with_spectrum(30, 20, s2, 12);
  const std::vector<float> af = to_float(a), bf = to_float(b);
  const pare::decomposer<pare::lowrank::truncated_svd, pare::lowrank::budget> d({}, {0.4});
  const pare::decomposition_plan p =
      d({{"a", pare::matrix_view<const float>(af.data(), 30, 20), nullptr}, {"b", pare::matrix_view<const float>(bf.data(), 30, 20), nullptr}});
  CHECK(p.parameters_after <= std::size_t(0.4 * 2 * 30 * 20));
  // The fast-decaying spectrum needs fewer ranks for the same energy: b gets more.
  CHECK(p.layers[1].rank > p.layers[0].rank);
  CHECK(d.spec().str() == "budget=0.4");

  // ASVD and whitening read the inputs' statistics: without them, an error naming 'stats'.
  const pare::decomposer<pare::lowrank::asvd, pare::lowrank::energy> asvd({0.5}, {0.9});
  CHECK_THROWS_WITH(asvd(pare::matrix_view<const float>(af.data(), 30, 20)), Catch::Contains("'stats'"));
  CHECK(asvd.spec().str() == "energy=0.9:asvd=0.5");
  // With statistics of all-equal channels, ASVD's scaling is uniform: the plain SVD's rank.
  pare::linear_input_stats st;
  st.in_features = 20;
  st.tokens = 4;
  st.sum_abs.assign(20, 8.0);
  st.sum_sq.assign(20, 16.0);
  st.nonpositive.assign(20, 0);
  const pare::decomposer<pare::lowrank::truncated_svd, pare::lowrank::energy> plain({}, {0.9});
  CHECK(asvd(pare::matrix_view<const float>(af.data(), 30, 20), &st).rank ==
        plain(pare::matrix_view<const float>(af.data(), 30, 20)).rank);
  using bad_alpha = pare::decomposer<pare::lowrank::asvd, pare::lowrank::energy>;
  CHECK_THROWS_AS(bad_alpha({9.0}, {0.9}), pare::argument_error);
  using bad_energy = pare::decomposer<pare::lowrank::truncated_svd, pare::lowrank::energy>;
  CHECK_THROWS_AS(bad_energy({}, {1.5}), pare::argument_error);
}
