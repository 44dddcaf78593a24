// SmoothQuant's scales against a float64 formula written here (several α, outlier channels, zero columns), the captured max|x| against a plain loop, and the refusals of bad α / NaN.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "pare/solvers/smoothquant.hpp"
#include "pare/stats/linear_input_stats.hpp"
#include "pare_test_support.hpp"

namespace {

/// s_j = max(a_j^α / max(max_l,i |W_l[i,j]|, 1e-5)^(1−α), 1e-5), in float64 (the paper's formula).
std::vector<double> oracle(const std::vector<std::vector<float>>& w, const std::vector<std::size_t>& rows,
                           const std::vector<double>& a, double alpha) {
  const std::size_t k = a.size();
  std::vector<double> s(k);
  for (std::size_t j = 0; j < k; ++j) {
    double wm = 0;
    for (std::size_t l = 0; l < w.size(); ++l)
      for (std::size_t i = 0; i < rows[l]; ++i) wm = std::max(wm, std::fabs(double(w[l][i * k + j])));
    s[j] = std::max(std::pow(a[j], alpha) / std::pow(std::max(wm, 1e-5), 1.0 - alpha), 1e-5);
  }
  return s;
}

}  // namespace

TEST_CASE("smoothquant_scales equal the float64 formula over every row of every layer of the group",
          "[solvers][smoothquant]") {
  const std::size_t k = 48;
  const std::vector<std::size_t> rows = {20, 7, 33};  // three layers reading one input (q, k, v)
  std::vector<std::vector<float>> w;
  for (std::size_t l = 0; l < rows.size(); ++l) w.push_back(pare_test::gaussian(rows[l] * k, 40 + l, 0.1));
  // The largest weight of column 5 sits in the second layer, of column 9 in the last row of
  // the third: a max over the first layer only, or over too few rows, misses them.
  w[1][3 * k + 5] = 2.5f;
  w[2][(rows[2] - 1) * k + 9] = -3.0f;
  for (std::size_t l = 0; l < rows.size(); ++l)
    for (std::size_t i = 0; i < rows[l]; ++i) w[l][i * k + 11] = 0.0f;  // a column of zeros: weight floor 1e-5
  std::vector<double> a(k);
  const auto u = pare_test::uniform(k, 7, 0.05, 2.0);
  for (std::size_t j = 0; j < k; ++j) a[j] = u[j];
  a[2] = 60.0;  // outlier channels
  a[17] = 250.0;
  a[20] = 0.0;  // a channel never active: scale floor 1e-5 for α > 0
  std::vector<pare::matrix_view<const float>> views;
  for (std::size_t l = 0; l < rows.size(); ++l) views.emplace_back(w[l].data(), rows[l], k);
  for (double alpha : {0.0, 0.25, 0.5, 0.8, 1.0}) {
    INFO("alpha " << alpha);
    pare::solvers::smoothquant_options opt;
    opt.alpha = alpha;
    const std::vector<float> got = pare::solvers::smoothquant_scales(views, a, opt);
    const std::vector<double> want = oracle(w, rows, a, alpha);
    REQUIRE(got.size() == k);
    for (std::size_t j = 0; j < k; ++j) {
      INFO("channel " << j);
      CHECK(std::fabs(double(got[j]) - want[j]) <= 1e-6 * want[j]);
    }
  }
  // α = 0.5 by hand on channel 17: √250 / √max|W_:,17|.
  double wm = 0;
  for (std::size_t l = 0; l < rows.size(); ++l)
    for (std::size_t i = 0; i < rows[l]; ++i) wm = std::max(wm, std::fabs(double(w[l][i * k + 17])));
  const std::vector<float> half = pare::solvers::smoothquant_scales(views, a);
  CHECK(half[17] == Approx(std::sqrt(250.0) / std::sqrt(wm)).epsilon(1e-6));
}

TEST_CASE("max_abs of linear_input_stats is the per-channel max |x| over every batch; the stats overload uses it",
          "[solvers][smoothquant]") {
  const std::size_t k = 24, n1 = 37, n2 = 5;
  auto x1 = pare_test::gaussian(n1 * k, 1, 1.0);
  auto x2 = pare_test::gaussian(n2 * k, 2, 1.0);
  x1[10 * k + 3] = -40.0f;  // the max of channel 3 is a negative value in the first batch
  x2[4 * k + 7] = 33.0f;    // the max of channel 7 comes with the second batch
  pare::linear_input_stats st;
  pare::linear_input_options o;
  o.xtx = false;
  st.accumulate(pare::matrix_view<const float>(x1.data(), n1, k), o);
  st.accumulate(pare::matrix_view<const float>(x2.data(), n2, k), o);
  REQUIRE(st.max_abs.size() == k);
  std::vector<double> want(k, 0.0);
  for (std::size_t r = 0; r < n1; ++r)
    for (std::size_t j = 0; j < k; ++j) want[j] = std::max(want[j], std::fabs(double(x1[r * k + j])));
  for (std::size_t r = 0; r < n2; ++r)
    for (std::size_t j = 0; j < k; ++j) want[j] = std::max(want[j], std::fabs(double(x2[r * k + j])));
  for (std::size_t j = 0; j < k; ++j) CHECK(st.max_abs[j] == want[j]);
  CHECK(st.max_abs[3] == 40.0);
  CHECK(st.max_abs[7] == 33.0);

  const auto w = pare_test::gaussian(9 * k, 3, 0.2);
  const std::vector<pare::matrix_view<const float>> views{pare::matrix_view<const float>(w.data(), 9, k)};
  pare::solvers::smoothquant_options opt;
  opt.alpha = 0.7;
  const auto got = pare::solvers::smoothquant_scales(views, st, opt);
  const auto ref = oracle({w}, {9}, want, 0.7);
  for (std::size_t j = 0; j < k; ++j) CHECK(std::fabs(double(got[j]) - ref[j]) <= 1e-6 * ref[j]);
}

TEST_CASE("smoothquant_scales refuse α outside [0, 1], NaN α, NaN weights, mismatched shapes and missing maxima",
          "[solvers][smoothquant]") {
  const std::size_t k = 8;
  auto w = pare_test::gaussian(4 * k, 5, 0.3);
  const std::vector<pare::matrix_view<const float>> views{pare::matrix_view<const float>(w.data(), 4, k)};
  const std::vector<double> a(k, 1.0);
  for (double alpha : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    pare::solvers::smoothquant_options opt;
    opt.alpha = alpha;
    try {
      (void)pare::solvers::smoothquant_scales(views, a, opt);
      FAIL("expected an argument_error for alpha " << alpha);
    } catch (const pare::argument_error& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find("argument 'alpha'") != std::string::npos);
      CHECK(msg.find("[0, 1]") != std::string::npos);
      CHECK(msg.find(std::isnan(alpha) ? "nan" : alpha < 0 ? "-0.1" : "1.5") != std::string::npos);
    }
  }
  CHECK_THROWS_AS(pare::solvers::smoothquant_scales(views, std::vector<double>(k + 1, 1.0)), pare::shape_error);
  std::vector<double> bad_a = a;
  bad_a[2] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(pare::solvers::smoothquant_scales(views, bad_a), pare::value_error);
  w[5] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(pare::solvers::smoothquant_scales(views, a), pare::value_error);
  pare::linear_input_stats none;  // nothing captured
  CHECK_THROWS_AS(pare::solvers::smoothquant_scales(views, none), pare::argument_error);
  // argument_error is a pare::error.
  CHECK_THROWS_AS(pare::solvers::smoothquant_scales({}, a), pare::error);
}
