// Activation-aware low-rank (ASVD, SVD-LLM whitening) on real stories260K activations: output error ‖X·(W − W′)ᵀ‖ against plain SVD at the same rank.
#include <catch2/catch.hpp>

#include <cmath>
#include <iomanip>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "lowrank_test_support.hpp"
#include "pare/lowrank/activation_aware.hpp"

namespace {

/// Every row every linear layer receives (the raw activations X, kept in full).
struct recorder final : pare::llama_session::linear_observer {
  std::map<std::string, std::vector<float>> rows;
  std::map<std::string, std::size_t> width;
  void on_linear_input(const std::string& name, const pare::matrix_view<const float>& x) override {
    width[name] = x.cols();
    for (std::size_t r = 0; r < x.rows(); ++r) rows[name].insert(rows[name].end(), x.row_ptr(r), x.row_ptr(r) + x.cols());
  }
};

const recorder& activations(bool held_out) {
  static const recorder cal = [] {
    recorder r;
    lowrank_test::run_windows(lowrank_test::model(), lowrank_test::first_tokens(1000), &r);
    return r;
  }();
  static const recorder held = [] {
    recorder r;
    const auto t = lowrank_test::first_tokens(2000);
    lowrank_test::run_windows(lowrank_test::model(), std::vector<std::int32_t>(t.begin() + 1000, t.end()), &r);
    return r;
  }();
  return held_out ? held : cal;
}

/// ‖X·Dᵀ‖_F with D = W − W′ [out, in] (double), directly on the recorded rows.
double output_error(const std::vector<float>& x, std::size_t in, const std::vector<double>& d, std::size_t out) {
  const std::size_t n = x.size() / in;
  double s = 0;
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t o = 0; o < out; ++o) {
      double y = 0;
      for (std::size_t j = 0; j < in; ++j) y += d[o * in + j] * double(x[t * in + j]);
      s += y * y;
    }
  return std::sqrt(s);
}

std::vector<double> difference(const pare::matrix_view<const float>& w, const std::vector<double>& approx) {
  std::vector<double> d(w.rows() * w.cols());
  for (std::size_t i = 0; i < w.rows(); ++i)
    for (std::size_t j = 0; j < w.cols(); ++j) d[i * w.cols() + j] = double(w(i, j)) - approx[i * w.cols() + j];
  return d;
}

}  // namespace

TEST_CASE("activation-aware: whitening minimises and ASVD reduces the output error on real activations") {
  const pare::llama_model m = lowrank_test::model();
  const pare::calibration_capture& cal = lowrank_test::calibration();
  const recorder& xs = activations(false);
  const recorder& ho = activations(true);
  double sum_plain = 0, sum_asvd = 0, sum_white = 0, ho_plain = 0, ho_asvd = 0, ho_white = 0;
  std::size_t layers = 0, asvd_wins = 0;
  std::cout << std::fixed << std::setprecision(4)
            << "activation-aware low rank on stories260K, calibration = first 1000 protocol tokens, rank = min(out, in)/4\n"
            << "layer                     rank  ‖X(W−W′)ᵀ‖_F: plain      asvd    whiten   (held-out tokens 1000..2000: plain asvd whiten)\n";
  for (const std::string& name : m.linear_names()) {
    const pare::linear_layer& l = m.linear(name);
    std::vector<float> wbuf(l.out_features() * l.in_features());
    l.dense_weights(pare::matrix_view<float>(wbuf.data(), l.out_features(), l.in_features()));
    const pare::matrix_view<const float> w(wbuf.data(), l.out_features(), l.in_features());
    const std::size_t out = w.rows(), in = w.cols(), r = std::min(out, in) / 4;
    const pare::linear_input_stats& st = cal.at(name);
    REQUIRE(st.tokens == xs.rows.at(name).size() / in);
    const auto plain = pare::lowrank_decompose(w, pare::lowrank_method::plain);
    const auto asvd = pare::lowrank_decompose(w, pare::lowrank_method::asvd, &st);
    const auto white = pare::lowrank_decompose(w, pare::lowrank_method::whiten, &st);
    const auto& x = xs.rows.at(name);
    const double ep = output_error(x, in, difference(w, plain.approximation(r)), out);
    const double ea = output_error(x, in, difference(w, asvd.approximation(r)), out);
    const double ew = output_error(x, in, difference(w, white.approximation(r)), out);
    const auto& xh = ho.rows.at(name);
    const double hp = output_error(xh, in, difference(w, plain.approximation(r)), out);
    const double ha = output_error(xh, in, difference(w, asvd.approximation(r)), out);
    const double hw = output_error(xh, in, difference(w, white.approximation(r)), out);
    std::cout << std::left << std::setw(26) << name << std::right << std::setw(4) << r << std::setw(22) << ep << std::setw(10) << ea
              << std::setw(10) << ew << "   (" << hp << " " << ha << " " << hw << ")\n";
    INFO(name << " rank " << r << ": plain " << ep << ", asvd " << ea << ", whiten " << ew << ", ridge " << white.ridge());
    // Whitening is optimal on the calibration inputs: no rank-r matrix does better than it,
    // in particular not plain SVD, and its error is √(tokens·Σ_{i≥r} σ_i(W·L)²).
    CHECK(ew <= ep * (1 + 1e-9));
    CHECK(ew <= ea * (1 + 1e-9));
    if (white.ridge() == 0)
      CHECK(ew == Approx(std::sqrt(double(st.tokens) * white.svd().tail_energy(r))).epsilon(1e-6));
    // The statistics-based error agrees with the direct one.
    CHECK(pare::calibrated_output_error(st, difference(w, plain.approximation(r)), out) * std::sqrt(double(st.tokens)) ==
          Approx(ep).epsilon(1e-6));
    sum_plain += ep * ep;
    sum_asvd += ea * ea;
    sum_white += ew * ew;
    ho_plain += hp * hp;
    ho_asvd += ha * ha;
    ho_white += hw * hw;
    asvd_wins += ea < ep;
    ++layers;
  }
  std::cout << "total (root of summed squares) over " << layers << " layers: plain " << std::sqrt(sum_plain) << ", asvd "
            << std::sqrt(sum_asvd) << ", whiten " << std::sqrt(sum_white) << "; held-out: plain " << std::sqrt(ho_plain)
            << ", asvd " << std::sqrt(ho_asvd) << ", whiten " << std::sqrt(ho_white) << "; asvd below plain on " << asvd_wins
            << " of " << layers << " layers\n";
  CHECK(layers == 36);
  CHECK(sum_white < sum_plain);
  CHECK(sum_asvd < sum_plain);
  CHECK(ho_white < ho_plain);  // the gain carries over to tokens not used for calibration
  CHECK(ho_asvd < ho_plain);
}

TEST_CASE("activation-aware: factors reproduce the approximation, ridge for a singular XtX, errors") {
  const auto& ck = lowrank_test::checkpoint();
  const pare::matrix_view<const float> w = ck.tensor("blk.3.attn_v.weight").as_matrix();  // [32, 64]
  // Statistics of 40 tokens that only use 16 of the 64 channels: XᵀX is singular.
  pare::calibration_capture cap;
  std::vector<float> x(40 * 64, 0.0f);
  const std::vector<float> g = pare_test::gaussian(40 * 16, 77);
  for (std::size_t t = 0; t < 40; ++t)
    for (std::size_t j = 0; j < 16; ++j) x[t * 64 + 4 * j] = g[t * 16 + j];
  cap.on_linear_input("v", pare::matrix_view<const float>(x.data(), 40, 64));
  const pare::linear_input_stats& st = cap.at("v");
  const auto white = pare::lowrank_decompose(w, pare::lowrank_method::whiten, &st);
  CHECK(white.ridge() > 0);
  CHECK(white.ridge() <= 1e-3);
  const auto asvd = pare::lowrank_decompose(w, pare::lowrank_method::asvd, &st, {0.5, 0.0, 0, {}});
  for (const auto* d : {&white, &asvd}) {
    const pare::lowrank_factors f = d->factors(6);
    const std::vector<double> ap = d->approximation(6);
    for (std::size_t i = 0; i < 32; ++i)
      for (std::size_t j = 0; j < 64; ++j) {
        double s = 0;
        for (std::size_t k = 0; k < 6; ++k) s += double(f.a[i * 6 + k]) * f.b[k * 64 + j];
        REQUIRE(s == Approx(ap[i * 64 + j]).margin(1e-4 * (1 + std::fabs(ap[i * 64 + j]))));
      }
  }
  // ASVD scales: mean|x|^α, floored at 1e-6 of the largest.
  const std::vector<double> s = pare::asvd_scales(st, 0.5);
  CHECK(s[4] == Approx(std::sqrt(st.sum_abs[4] / 40.0)));
  double mx = 0;
  for (double v : s) mx = std::fmax(mx, v);
  CHECK(s[1] == Approx(1e-6 * mx));
  // Full rank whitened reconstruction gives W back.
  const std::vector<double> full = white.approximation(32);
  for (std::size_t i = 0; i < 32; ++i)
    for (std::size_t j = 0; j < 64; ++j) REQUIRE(full[i * 64 + j] == Approx(w(i, j)).margin(1e-6));
  CHECK_THROWS_AS(pare::lowrank_decompose(w, pare::lowrank_method::whiten, nullptr), pare::argument_error);
  pare::calibration_capture other;
  std::vector<float> x2(3 * 32, 1.0f);
  other.on_linear_input("o", pare::matrix_view<const float>(x2.data(), 3, 32));
  CHECK_THROWS_AS(pare::lowrank_decompose(w, pare::lowrank_method::asvd, &other.at("o")), pare::shape_error);
  CHECK_THROWS_AS(white.factors(0), pare::argument_error);
  CHECK_THROWS_AS(white.factors(33), pare::argument_error);
  pare::calibration_capture::options no_xtx;
  no_xtx.xtx = false;
  pare::calibration_capture cheap(no_xtx);
  cheap.on_linear_input("v", pare::matrix_view<const float>(x.data(), 40, 64));
  try {
    (void)pare::lowrank_decompose(w, pare::lowrank_method::whiten, &cheap.at("v"));
    FAIL("expected argument_error");
  } catch (const pare::argument_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("argument 'stats'"));
  }
}
