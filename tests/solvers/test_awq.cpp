// AWQ's scale and clipping search against explicit float64 output errors computed from the activations themselves (not from XᵀX), and its refusal of bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "pare/solvers/awq.hpp"

namespace {

struct group_data {
  std::size_t n, k;
  std::vector<float> x;  // [n, k]
  pare::linear_input_stats stats;
};

/// Activations with a few salient channels (AWQ's premise), and their statistics.
group_data make_input(std::size_t n, std::size_t k, std::uint32_t seed, float loud = 12.0f) {
  group_data d{n, k, std::vector<float>(n * k), {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t j = 0; j < k; ++j) d.x[t * k + j] = nd(rng) * (j % 17 == 3 ? loud : 1.0f);
  pare::linear_input_options o;
  o.xtx = true;
  o.channel_stats = true;
  d.stats.accumulate(pare::matrix_view<const float>(d.x.data(), n, k), o, "test");
  return d;
}

std::vector<float> random_weights(std::size_t rows, std::size_t k, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> w(rows * k);
  for (float& v : w) v = nd(rng);
  return w;
}

/// ‖X·(W − Ŵ)ᵀ‖² in double from the activations.
double output_error(const group_data& d, const std::vector<float>& w, const std::vector<float>& w_hat, std::size_t rows) {
  double e = 0;
  for (std::size_t t = 0; t < d.n; ++t)
    for (std::size_t r = 0; r < rows; ++r) {
      double y = 0;
      for (std::size_t j = 0; j < d.k; ++j) y += double(d.x[t * d.k + j]) * (double(w[r * d.k + j]) - double(w_hat[r * d.k + j]));
      e += y * y;
    }
  return e;
}

/// Q(W·diag s)·diag s⁻¹ under cfg, written in the test with the public quantizer.
std::vector<float> scaled_round_trip(const std::vector<float>& w, const std::vector<float>& s, std::size_t rows,
                                     std::size_t k, const pare::quant_config& cfg) {
  std::vector<float> a(rows * k), out(rows * k);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < k; ++j) a[r * k + j] = w[r * k + j] * s[j];
  pare::quantize(pare::matrix_view<const float>(a.data(), rows, k), cfg).dequantize_into(pare::matrix_view<float>(out.data(), rows, k));
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < k; ++j) out[r * k + j] /= s[j];
  return out;
}

}  // namespace

TEST_CASE("awq_search_scales: the error it reports is the output error on the activations; the best grid point wins",
          "[solvers][awq]") {
  const std::size_t k = 64, r1 = 24, r2 = 40;
  const auto w1 = random_weights(r1, k, 2), w2 = random_weights(r2, k, 3);
  const pare::quant_config cfg = pare::quant_config::parse("int3:g32:asym");
  const std::vector<pare::matrix_view<const float>> ws{pare::matrix_view<const float>(w1.data(), r1, k),
                                                       pare::matrix_view<const float>(w2.data(), r2, k)};
  pare::solvers::awq_options opt;
  opt.grid = 10;
  std::size_t off_centre = 0;  // cases whose best α is not 0.5 (α and 1 − α must not be confused)
  for (const float loud : {12.0f, 3.0f, 40.0f}) {
    INFO("salient channels x" << loud);
    const group_data d = make_input(300, k, 1, loud);
    const auto res = pare::solvers::awq_search_scales(ws, d.stats, cfg, opt);
    REQUIRE(res.s.size() == k);
    // Oracle: every grid point's scales and error computed in the test from X itself.
    double best = INFINITY, best_alpha = -1, plain = 0;
    std::vector<float> best_s;
    for (std::size_t g = 0; g < opt.grid; ++g) {
      const double alpha = double(g) / double(opt.grid);
      std::vector<float> s(k, 1.0f);
      if (g > 0) {
        std::vector<double> v(k);
        double lo = INFINITY, hi = 0;
        for (std::size_t j = 0; j < k; ++j) {
          double m = 0;
          for (std::size_t t = 0; t < d.n; ++t) m += std::fabs(double(d.x[t * k + j]));
          v[j] = std::pow(std::max(m / double(d.n), 1e-4), alpha);
          lo = std::min(lo, v[j]), hi = std::max(hi, v[j]);
        }
        for (std::size_t j = 0; j < k; ++j) s[j] = float(v[j] / std::sqrt(lo * hi));
      }
      const double e = output_error(d, w1, scaled_round_trip(w1, s, r1, k, cfg), r1) +
                       output_error(d, w2, scaled_round_trip(w2, s, r2, k, cfg), r2);
      if (g == 0) plain = e;
      if (e < best) best = e, best_alpha = alpha, best_s = s;
    }
    CHECK(res.alpha == Approx(best_alpha));
    CHECK(res.error == Approx(best).epsilon(1e-6));
    CHECK(res.error_plain == Approx(plain).epsilon(1e-6));
    CHECK(res.alpha > 0.0);            // salient channels: scaling pays
    CHECK(res.error < 0.9 * plain);
    for (std::size_t j = 0; j < k; ++j) CHECK(res.s[j] == Approx(best_s[j]).epsilon(1e-5));
    off_centre += best_alpha != 0.5;
  }
  CHECK(off_centre > 0);
}

TEST_CASE("awq_clip: each (row, group) takes the clipping ratio with the least output error on the activations",
          "[solvers][awq]") {
  const std::size_t k = 64, rows = 6;
  const group_data d = make_input(200, k, 4);
  auto w = random_weights(rows, k, 5);
  w[1 * k + 7] = 0.9f;  // an outlier: clipping it should pay
  const pare::quant_config cfg = pare::quant_config::parse("int3:g32:sym");
  pare::solvers::awq_options opt;
  opt.clip_grid = 10;
  const auto got = pare::solvers::awq_clip(pare::matrix_view<const float>(w.data(), rows, k), d.stats, cfg, opt);
  REQUIRE(got.size() == w.size());
  pare::quant_config one = cfg;
  one.gran = pare::granularity::channel(0);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c0 = 0; c0 < k; c0 += 32) {
      float mx = 0;
      for (std::size_t t = 0; t < 32; ++t) mx = std::max(mx, std::fabs(w[r * k + c0 + t]));
      double best = INFINITY;
      float best_lim = 0;
      for (std::size_t c = 0; c < opt.clip_grid; ++c) {
        const float lim = mx * float(1.0 - opt.max_shrink * double(c) / double(opt.clip_grid));
        std::vector<float> cur(32), q(32);
        for (std::size_t t = 0; t < 32; ++t) cur[t] = std::clamp(w[r * k + c0 + t], -lim, lim);
        pare::quantize(pare::matrix_view<const float>(cur.data(), 1, 32), one).dequantize_into(pare::matrix_view<float>(q.data(), 1, 32));
        // output error of this group alone: X restricted to the group's columns
        double e = 0;
        for (std::size_t t = 0; t < d.n; ++t) {
          double y = 0;
          for (std::size_t j = 0; j < 32; ++j) y += double(d.x[t * k + c0 + j]) * (double(w[r * k + c0 + j]) - double(q[j]));
          e += y * y;
        }
        if (e < best * (1 - 1e-9)) best = e, best_lim = lim;
      }
      for (std::size_t t = 0; t < 32; ++t) {
        INFO("row " << r << " column " << c0 + t);
        CHECK(got[r * k + c0 + t] == std::clamp(w[r * k + c0 + t], -best_lim, best_lim));
      }
    }
  CHECK(std::fabs(got[1 * k + 7]) < 0.9f);  // the outlier was clipped
}

TEST_CASE("awq: bad input is refused with the argument named and nothing changed", "[solvers][awq]") {
  const std::size_t k = 64;
  const group_data d = make_input(50, k, 6);
  auto w = random_weights(4, k, 7);
  const auto before = w;
  const pare::quant_config cfg = pare::quant_config::parse("int4:g32:asym");
  using pare::matrix_view;
  CHECK_THROWS_AS(pare::solvers::awq_search_scales({}, d.stats, cfg), pare::argument_error);
  CHECK_THROWS_AS(pare::solvers::awq_search_scales({matrix_view<const float>(w.data(), 8, 32)}, d.stats, cfg), pare::shape_error);
  pare::linear_input_stats no_xtx = pare::linear_input_stats{};
  no_xtx.in_features = k;
  CHECK_THROWS_AS(pare::solvers::awq_search_scales({matrix_view<const float>(w.data(), 4, k)}, no_xtx, cfg), pare::argument_error);
  w[5] = NAN;
  CHECK_THROWS_AS(pare::solvers::awq_search_scales({matrix_view<const float>(w.data(), 4, k)}, d.stats, cfg), pare::value_error);
  CHECK_THROWS_AS(pare::solvers::awq_clip(matrix_view<const float>(w.data(), 4, k), d.stats, cfg), pare::value_error);
  w[5] = before[5];
  pare::solvers::awq_options bad;
  bad.grid = 0;
  CHECK_THROWS_AS(pare::solvers::awq_search_scales({matrix_view<const float>(w.data(), 4, k)}, d.stats, cfg, bad), pare::argument_error);
  bad.grid = 20;
  bad.max_shrink = 1.0;
  CHECK_THROWS_AS(pare::solvers::awq_clip(matrix_view<const float>(w.data(), 4, k), d.stats, cfg, bad), pare::argument_error);
  CHECK_THROWS_AS(pare::solvers::awq_clip(matrix_view<const float>(w.data(), 4, k), d.stats, pare::quant_config::parse("int4:g48:asym")),
                  pare::error);
  CHECK(w == before);
}
