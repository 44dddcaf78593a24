// factorized_linear: forward equals x·(A·B)ᵀ in float64, quantized factors within the quantization bound, errors leave the model unchanged.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "lowrank_test_support.hpp"
#include "pare/lowrank/svd.hpp"
#include "pare/model/layers/factorized_linear.hpp"

namespace {

/// y_ref = x·(A·B)ᵀ in long double.
std::vector<double> reference(const std::vector<float>& x, std::size_t m, const std::vector<float>& a,
                              const std::vector<float>& b, std::size_t out, std::size_t r, std::size_t in) {
  std::vector<double> y(m * out);
  for (std::size_t t = 0; t < m; ++t)
    for (std::size_t o = 0; o < out; ++o) {
      long double s = 0;
      for (std::size_t j = 0; j < in; ++j) {
        long double w = 0;
        for (std::size_t k = 0; k < r; ++k) w += (long double)a[o * r + k] * b[k * in + j];
        s += w * x[t * in + j];
      }
      y[t * out + o] = double(s);
    }
  return y;
}

}  // namespace

TEST_CASE("factorized_linear: forward and dense weights equal the float64 product") {
  for (auto dims : {std::array<std::size_t, 4>{5, 48, 8, 80}, {17, 172, 30, 64}, {1, 64, 1, 64}, {33, 20, 20, 40}}) {
    const std::size_t m = dims[0], out = dims[1], r = dims[2], in = dims[3];
    const std::vector<float> a = pare_test::gaussian(out * r, 1 + out), b = pare_test::gaussian(r * in, 2 + in),
                             x = pare_test::gaussian(m * in, 3 + m);
    const pare::factorized_linear f(pare::matrix_view<const float>(a.data(), out, r),
                                    pare::matrix_view<const float>(b.data(), r, in));
    CHECK(f.in_features() == in);
    CHECK(f.out_features() == out);
    CHECK(f.rank() == r);
    CHECK(f.format() == "lowrank:r=" + std::to_string(r));
    CHECK(f.storage_bytes() == 4 * r * (in + out));
    CHECK(f.parameters() == r * (in + out));
    const std::vector<double> want = reference(x, m, a, b, out, r, in);
    std::vector<float> y(m * out, -1.0f);
    f.forward(pare::matrix_view<const float>(x.data(), m, in), pare::matrix_view<float>(y.data(), m, out));
    double scale = 0;
    for (double v : want) scale = std::fmax(scale, std::fabs(v));
    for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == Approx(want[i]).margin(2e-6 * scale * std::sqrt(double(in + r))));
    // Twice with fewer rows (scratch reuse), strided output.
    std::vector<float> y2(2 * out * 2, 0.0f);
    f.forward(pare::matrix_view<const float>(x.data(), 1, in), pare::matrix_view<float>(y2.data(), 1, out, 2 * out));
    for (std::size_t o = 0; o < out; ++o) CHECK(y2[o] == y[o]);
    std::vector<float> w(out * in);
    f.dense_weights(pare::matrix_view<float>(w.data(), out, in));
    for (std::size_t o = 0; o < out; ++o)
      for (std::size_t j = 0; j < in; ++j) {
        long double s = 0;
        for (std::size_t k = 0; k < r; ++k) s += (long double)a[o * r + k] * b[k * in + j];
        REQUIRE(w[o * in + j] == Approx(double(s)).margin(1e-6 * (1 + std::fabs(double(s)))));
      }
  }
}

TEST_CASE("factorized_linear: quantized factors stay within the quantization bound") {
  const std::size_t m = 9, out = 64, r = 16, in = 172;
  const std::vector<float> a = pare_test::gaussian(out * r, 21), b = pare_test::gaussian(r * in, 22),
                           x = pare_test::gaussian(m * in, 23);
  const pare::matrix_view<const float> av(a.data(), out, r), bv(b.data(), r, in);
  const pare::factorized_linear q(av, bv, pare::quant_config::parse("int8:per_channel:sym"));
  CHECK(q.quantized_factors());
  CHECK(q.format() == "lowrank:r=16:int8:per_channel:sym:minmax:rne");
  CHECK(q.backend() == "int8 kernel x2");
  CHECK(q.storage_bytes() < 4 * r * (in + out));
  // Bound: symmetric int8 per row moves each entry by at most half a step, max|row|/127/2.
  auto row_bound = [](const std::vector<float>& w, std::size_t rows, std::size_t cols) {
    std::vector<double> e(rows);
    for (std::size_t i = 0; i < rows; ++i) {
      double mx = 0;
      for (std::size_t j = 0; j < cols; ++j) mx = std::fmax(mx, std::fabs(w[i * cols + j]));
      e[i] = mx / 127.0 / 2.0 * (1 + 1e-6);
    }
    return e;
  };
  const std::vector<double> ea = row_bound(a, out, r), eb = row_bound(b, r, in);
  std::vector<float> qa(out * r), qb(r * in);
  q.factor_a().dense_weights(pare::matrix_view<float>(qa.data(), out, r));
  q.factor_b().dense_weights(pare::matrix_view<float>(qb.data(), r, in));
  for (std::size_t i = 0; i < out; ++i)
    for (std::size_t k = 0; k < r; ++k) REQUIRE(std::fabs(qa[i * r + k] - a[i * r + k]) <= ea[i]);
  for (std::size_t k = 0; k < r; ++k)
    for (std::size_t j = 0; j < in; ++j) REQUIRE(std::fabs(qb[k * in + j] - b[k * in + j]) <= eb[k]);
  // The forward pass against the exact float product: bounded by the weight error propagated
  // through both factors (|ΔA·B·x| + |A·ΔB·x| + |ΔA·ΔB·x|) plus the int8 activation rounding of
  // x and of t = x·Bᵀ (half a step of each row's max).
  const std::vector<double> want = reference(x, m, a, b, out, r, in);
  std::vector<float> y(m * out);
  q.forward(pare::matrix_view<const float>(x.data(), m, in), pare::matrix_view<float>(y.data(), m, out));
  for (std::size_t t = 0; t < m; ++t) {
    double xmax = 0, xl1 = 0;
    for (std::size_t j = 0; j < in; ++j) {
      xmax = std::fmax(xmax, std::fabs(x[t * in + j]));
      xl1 += std::fabs(x[t * in + j]);
    }
    // |t_k| ≤ Σ_j |b_kj|·|x_j|; the rounded t̃ = t + δt with |δt_k| ≤ (max|b_k|/254)·‖x‖₁ + ‖b_k‖₁·xmax/254.
    std::vector<double> tb(r), dt(r);
    double tmax = 0;
    for (std::size_t k = 0; k < r; ++k) {
      double s = 0, bl1 = 0;
      for (std::size_t j = 0; j < in; ++j) {
        s += std::fabs(b[k * in + j]) * std::fabs(x[t * in + j]);
        bl1 += std::fabs(b[k * in + j]);
      }
      tb[k] = s;
      dt[k] = eb[k] * xl1 + (bl1 + double(in) * eb[k]) * xmax / 254.0 * (1 + 1e-6);
      tmax = std::fmax(tmax, s + dt[k]);
    }
    for (std::size_t o = 0; o < out; ++o) {
      double bound = 0, al1 = 0;
      for (std::size_t k = 0; k < r; ++k) {
        const double aa = std::fabs(a[o * r + k]) + ea[o];
        bound += aa * dt[k] + ea[o] * tb[k];
        al1 += aa;
      }
      bound = bound * (1 + 1e-5) + al1 * tmax / 254.0 * (1 + 1e-6) + 1e-4;
      REQUIRE(std::fabs(y[t * out + o] - want[t * out + o]) <= bound);
    }
  }
  // A group that does not divide the rank falls back to per channel for A only.
  const std::vector<float> b128 = pare_test::gaussian(r * 128, 24);
  const pare::factorized_linear g(av, pare::matrix_view<const float>(b128.data(), r, 128), pare::quant_config::parse("int4:g32:asym"));
  CHECK(g.format() == "lowrank:r=16:B=int4:g32:asym:minmax:rne:A=int4:per_channel:asym:minmax:rne");
}

TEST_CASE("factorized_linear: from an SVD of real weights, and bad input names the argument") {
  const auto& ck = lowrank_test::checkpoint();
  const pare::matrix_view<const float> w = ck.tensor("blk.1.ffn_up.weight").as_matrix();  // [172, 64]
  const pare::lowrank_factors fac = pare::lowrank_factorize(w, 24);
  const pare::factorized_linear f(fac.a_view(), fac.b_view());
  const auto d = pare::svd<double>(w);
  std::vector<float> dw(172 * 64);
  f.dense_weights(pare::matrix_view<float>(dw.data(), 172, 64));
  double err2 = 0;
  for (std::size_t i = 0; i < 172; ++i)
    for (std::size_t j = 0; j < 64; ++j) err2 += std::pow(double(dw[i * 64 + j]) - w(i, j), 2);
  CHECK(err2 == Approx(d.tail_energy(24)).epsilon(1e-4));

  const std::vector<float> a = pare_test::gaussian(8 * 3, 1), b = pare_test::gaussian(3 * 5, 2);
  auto msg = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const pare::error& e) {
      return e.what();
    }
    return "no exception";
  };
  using V = pare::matrix_view<const float>;
  CHECK_THROWS_AS(pare::factorized_linear(V(a.data(), 8, 3), V(b.data(), 2, 5)), pare::shape_error);
  CHECK_THAT(msg([&] { pare::factorized_linear(V(a.data(), 8, 3), V(b.data(), 2, 5)); }), Catch::Contains("'a' and 'b'"));
  CHECK_THROWS_AS(pare::factorized_linear(V(a.data(), 8, 0), V(b.data(), 0, 5)), pare::argument_error);
  CHECK_THAT(msg([&] { pare::factorized_linear(V(a.data(), 8, 0), V(b.data(), 0, 5)); }), Catch::Contains("'rank'"));
  // rank 6 > min(out = 8, in = 2)
  CHECK_THAT(msg([&] { pare::factorized_linear(V(a.data(), 4, 6), V(b.data(), 6, 2)); }),
             Catch::Contains("'rank'") && Catch::Contains("got 6"));
  std::vector<float> nan_b = b;
  nan_b[7] = std::nanf("");
  CHECK_THROWS_AS(pare::factorized_linear(V(a.data(), 8, 3), V(nan_b.data(), 3, 5)), pare::value_error);
  CHECK_THAT(msg([&] { pare::factorized_linear(V(a.data(), 8, 3), V(nan_b.data(), 3, 5)); }),
             Catch::Contains("argument 'b'") && Catch::Contains("(1, 2)"));
  // Wrong forward shapes.
  const pare::factorized_linear ok(V(a.data(), 8, 3), V(b.data(), 3, 5));
  std::vector<float> x(10), y(16);
  CHECK_THROWS_AS(ok.forward(V(x.data(), 2, 4), pare::matrix_view<float>(y.data(), 2, 8)), pare::shape_error);
  // A layer of the wrong shape is refused by the model, which stays as it was.
  pare::llama_model m = lowrank_test::model();
  const std::string before = m.linear("blk.0.attn_q.weight").format();
  CHECK_THROWS_AS(m.set_linear("blk.0.attn_q.weight", std::make_unique<pare::factorized_linear>(V(a.data(), 8, 3), V(b.data(), 3, 5))),
                  pare::shape_error);
  CHECK(m.linear("blk.0.attn_q.weight").format() == before);
}
