// GPTQ against a float64 OBS oracle written here (explicit inverse, Gaussian elimination per column), on random and stories260K Hessians; its loss against RTN's; bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "pare/model/calibration.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/solvers/gptq.hpp"
#include "pare_test_support.hpp"
#include "solver_test_support.hpp"

namespace {

using pare::solvers::layer_hessian;
using solver_test::gauss_jordan_inverse;
using solver_test::random_hessian;

struct gptq_oracle_out {
  std::vector<int> codes;  // rows × k, storage order
  std::vector<float> scales;
  std::vector<std::int32_t> zeros;
};

/// The OBS greedy quantizer of the GPTQ paper (eq. 2–3), one column at a time, in float64:
/// quantize column q, spread its error over the remaining columns F with (H_F⁻¹)_{:,q} /
/// (H_F⁻¹)_qq, then remove q from H_F⁻¹ by one step of Gaussian elimination. Parameters:
/// the group's current weights (dynamic groups) or the original weights (static), chosen by
/// pare::quantize with the same config, as gptq_quantize documents.
gptq_oracle_out gptq_obs_oracle(const std::vector<float>& w, std::size_t rows, std::size_t k, const layer_hessian& h,
                                const pare::quant_config& cfg, bool act_order, double damp) {
  std::vector<std::size_t> order(k);
  std::iota(order.begin(), order.end(), std::size_t(0));
  if (act_order)
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return h.at(a, a) > h.at(b, b); });
  std::vector<double> hh(h.h);
  std::vector<char> dead(k, 0);
  for (std::size_t j = 0; j < k; ++j)
    if (hh[j * k + j] == 0.0) {
      dead[j] = 1;
      hh[j * k + j] = 1.0;
    }
  double md = 0;
  for (std::size_t j = 0; j < k; ++j) md += hh[j * k + j];
  md /= double(k);
  for (std::size_t j = 0; j < k; ++j) hh[j * k + j] += damp * md;
  std::vector<double> hinv = gauss_jordan_inverse(hh, k);  // storage indices throughout
  std::vector<float> w0(w);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < k; ++j)
      if (dead[j]) w0[i * k + j] = 0.0f;
  std::vector<double> ww(w0.begin(), w0.end());
  const bool dynamic = cfg.gran.kind == pare::granularity_kind::per_group && !act_order;
  const std::size_t g = cfg.gran.kind == pare::granularity_kind::per_group ? cfg.gran.group_size : k;
  gptq_oracle_out out;
  out.codes.assign(rows * k, 0);
  if (!dynamic) {
    const pare::quantized_tensor q0 = pare::quantize(pare::matrix_view<const float>(w0.data(), rows, k), cfg);
    out.scales = q0.scales;
    out.zeros = q0.zero_points;
  } else {
    out.scales.assign(rows * (k / g), 0.0f);
    out.zeros.assign(rows * (k / g), 0);
  }
  pare::quant_config row_cfg = cfg;
  row_cfg.gran = pare::granularity::channel(0);
  std::vector<char> done(k, 0);
  for (std::size_t a = 0; a < k; ++a) {
    const std::size_t q = order[a];
    for (std::size_t i = 0; i < rows; ++i) {
      if (dynamic && q % g == 0) {
        std::vector<float> grp(g);
        for (std::size_t t = 0; t < g; ++t) grp[t] = static_cast<float>(ww[i * k + q + t]);
        const pare::quantized_tensor qg = pare::quantize(pare::matrix_view<const float>(grp.data(), 1, g), row_cfg);
        out.scales[i * (k / g) + q / g] = qg.scales[0];
        out.zeros[i * (k / g) + q / g] = qg.zero_points[0];
      }
      const std::size_t pi = pare::param_index_for(cfg.gran, k, i, q);
      const float s = out.scales[pi];
      const int z = out.zeros[pi];
      const float x = static_cast<float>(ww[i * k + q]);
      // Nearest-even rounding of x/s (as float, the format's definition), clamped.
      float v = x * (1.0f / s);
      v = std::min(std::max(v, float(cfg.format.qmin() - z)), float(cfg.format.qmax() - z));
      const int code = int(std::nearbyint(v)) + z;
      out.codes[i * k + q] = code;
      const double e = (ww[i * k + q] - double(float(code - z) * s)) / hinv[q * k + q];
      for (std::size_t j = 0; j < k; ++j)
        if (!done[j] && j != q) ww[i * k + j] -= e * hinv[j * k + q];
    }
    // H_F⁻¹ without q: Gaussian elimination of row/column q.
    const double d = hinv[q * k + q];
    std::vector<double> col(k);
    for (std::size_t j = 0; j < k; ++j) col[j] = hinv[j * k + q];
    for (std::size_t r = 0; r < k; ++r)
      for (std::size_t c = 0; c < k; ++c) hinv[r * k + c] -= col[r] * col[c] / d;
    done[q] = 1;
  }
  return out;
}

double loss_of(const std::vector<float>& w, std::size_t rows, std::size_t k, const pare::quantized_tensor& q,
               const layer_hessian& h);

/// Every code and parameter of gptq_quantize equals the oracle's.
void check_gptq_against_oracle(const std::vector<float>& w, std::size_t rows, std::size_t k, const layer_hessian& h,
                               const std::string& spec, bool act_order, std::size_t block) {
  INFO(spec << (act_order ? " act_order" : "") << " block " << block);
  const pare::quant_config cfg = pare::quant_config::parse(spec);
  pare::solvers::gptq_options opt;
  opt.act_order = act_order;
  opt.block_size = block;
  const auto res = pare::solvers::gptq_quantize(pare::matrix_view<const float>(w.data(), rows, k), h, cfg, opt);
  REQUIRE(res.dampening_retries == 0);
  const gptq_oracle_out o = gptq_obs_oracle(w, rows, k, h, cfg, act_order, 0.01);
  std::size_t mismatched = 0;
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < k; ++j) mismatched += res.weight.code(i, j) != o.codes[i * k + j];
  CHECK(mismatched == 0);
  // The loss GPTQ reports (OBS's identity) is the loss of what it returns.
  CHECK(res.error == Approx(loss_of(w, rows, k, res.weight, h)).epsilon(1e-7));
  {  // the library's hessian_error (the model-level report uses it) against the plain loops
    const auto d = res.weight.dequantize();
    CHECK(pare::solvers::hessian_error(pare::matrix_view<const float>(w.data(), rows, k),
                                       pare::matrix_view<const float>(d.data(), rows, k), h) ==
          Approx(loss_of(w, rows, k, res.weight, h)).epsilon(1e-9));
  }
  REQUIRE(res.weight.scales.size() == o.scales.size());
  for (std::size_t t = 0; t < o.scales.size(); ++t) {
    CHECK(res.weight.scales[t] == o.scales[t]);
    CHECK(res.weight.zero_points[t] == o.zeros[t]);
  }
}

pare::quantized_tensor rtn(const std::vector<float>& w, std::size_t rows, std::size_t k, const std::string& spec) {
  return pare::quantize(pare::matrix_view<const float>(w.data(), rows, k), pare::quant_config::parse(spec));
}

double loss_of(const std::vector<float>& w, std::size_t rows, std::size_t k, const pare::quantized_tensor& q,
               const layer_hessian& h) {
  const auto d = q.dequantize();  // the loss by plain float64 loops, not the library's hessian_error
  return solver_test::hessian_loss(w, std::vector<float>(d.begin(), d.end()), rows, k, h);
}

}  // namespace

TEST_CASE("GPTQ's lazy-batch solve equals a float64 column-at-a-time OBS oracle on random Hessians", "[solvers][gptq]") {
  const std::size_t rows = 24, k = 96;
  const layer_hessian h = random_hessian(400, k, 11);
  const std::vector<float> w = pare_test::gaussian(rows * k, 12, 0.05);
  for (const char* spec : {"int4:g32:asym", "int4:g32:sym", "int3:g16:asym", "int8:per_channel", "int2:g32:asym",
                           "int4:per_channel:asym:mse", "uint4:g32:asym", "int6:g48:asym", "int5:g32:asym:f16scale",
                           "int4:per_channel:sym:f16scale", "int7:g16:asym"}) {
    for (std::size_t block : {std::size_t(128), std::size_t(32), std::size_t(5)}) check_gptq_against_oracle(w, rows, k, h, spec, false, block);
    check_gptq_against_oracle(w, rows, k, h, spec, true, 32);
  }
}

TEST_CASE("GPTQ: a dead input is zeroed, and a singular Hessian gets more dampening and says so", "[solvers][gptq]") {
  const std::size_t rows = 8, k = 32;
  layer_hessian h = random_hessian(200, k, 3);
  for (std::size_t j = 0; j < k; ++j) h.h[5 * k + j] = h.h[j * k + 5] = 0.0;  // input 5 never fires
  const std::vector<float> w = pare_test::gaussian(rows * k, 4, 0.1);
  check_gptq_against_oracle(w, rows, k, h, "int4:g16:asym", false, 128);
  const auto res = pare::solvers::gptq_quantize(pare::matrix_view<const float>(w.data(), rows, k), h,
                                                pare::quant_config::parse("int4:g16:asym"));
  CHECK(res.dead_columns == 1);
  for (std::size_t i = 0; i < rows; ++i) CHECK(res.weight.value(i, 5) == 0.0f);

  // Rank 4 (< k): not positive definite without dampening.
  std::vector<double> low(k * k, 0.0);
  const std::vector<float> v = pare_test::gaussian(4 * k, 5);
  for (std::size_t r = 0; r < 4; ++r)
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t j = 0; j < k; ++j) low[i * k + j] += double(v[r * k + i]) * v[r * k + j];
  const layer_hessian hl = layer_hessian::from_matrix(k, low);
  pare::solvers::gptq_options opt;
  opt.hessian.dampening = 0.0;
  const auto r2 = pare::solvers::gptq_quantize(pare::matrix_view<const float>(w.data(), rows, k), hl,
                                               pare::quant_config::parse("int4:g16:asym"), opt);
  CHECK(r2.dampening_retries >= 1);
  CHECK(r2.dampening > 0.0);
  // Its loss is still no worse than rounding to nearest (the problem is degenerate, not wrong).
  CHECK(r2.error <= loss_of(w, rows, k, rtn(w, rows, k, "int4:g16:asym"), hl) * (1 + 1e-9));
}

TEST_CASE("GPTQ on stories260K: equals the oracle on real Hessians and beats RTN's loss on every linear layer",
          "[solvers][gptq][real_data]") {
  const solver_test::real_calibration rc;
  std::size_t layers = 0;
  for (const std::string& name : rc.m.linear_names()) {
    if (name == "output.weight") continue;
    INFO(name);
    const pare::matrix_view<const float> wv = rc.ck.matrix(name);
    const std::size_t rows = wv.rows(), k = wv.cols();
    const std::vector<float> w = rc.weights(name);
    const layer_hessian h = layer_hessian::from_stats(rc.cal.at(name));
    const std::string spec = k % 32 == 0 ? "int4:g32:asym" : "int4:per_channel:asym";
    const auto res = pare::solvers::gptq_quantize(wv, h, pare::quant_config::parse(spec));
    const double l_rtn = loss_of(w, rows, k, rtn(w, rows, k, spec), h);
    CHECK(res.error < l_rtn);
    CHECK(res.error == Approx(loss_of(w, rows, k, res.weight, h)).epsilon(1e-7));
    if (name.rfind("blk.0.", 0) == 0 || name.rfind("blk.4.", 0) == 0) check_gptq_against_oracle(w, rows, k, h, spec, false, 128);
    ++layers;
  }
  CHECK(layers == 35);
}

TEST_CASE("GPTQ: bad arguments are errors naming what was wrong", "[solvers][gptq]") {
  const std::size_t rows = 4, k = 32;
  const layer_hessian h = random_hessian(100, k, 7);
  std::vector<float> w = pare_test::gaussian(rows * k, 8);
  const pare::matrix_view<const float> wv(w.data(), rows, k);
  const layer_hessian small = random_hessian(100, 16, 7);
  CHECK_THROWS_AS(pare::solvers::gptq_quantize(wv, small, pare::quant_config::parse("int4:g16")), pare::shape_error);
  CHECK_THROWS_WITH(pare::solvers::gptq_quantize(wv, h, pare::quant_config::parse("int4:g24")), Catch::Contains("group_size"));
  CHECK_THROWS_WITH(pare::solvers::gptq_quantize(wv, h, pare::quant_config::parse("int4:g16:stochastic")),
                    Catch::Contains("stochastic"));
  pare::solvers::gptq_options opt;
  opt.block_size = 0;
  CHECK_THROWS_WITH(pare::solvers::gptq_quantize(wv, h, pare::quant_config::parse("int4:g16"), opt),
                    Catch::Contains("block_size"));
  opt = {};
  opt.hessian.dampening = -1;
  CHECK_THROWS_WITH(pare::solvers::gptq_quantize(wv, h, pare::quant_config::parse("int4:g16"), opt),
                    Catch::Contains("dampening"));
  w[37] = std::nanf("");
  CHECK_THROWS_AS(pare::solvers::gptq_quantize(wv, h, pare::quant_config::parse("int4:g16")), pare::value_error);
  std::vector<double> asym(16 * 16, 0.0);
  asym[1] = 1.0;
  CHECK_THROWS_WITH(layer_hessian::from_matrix(16, asym), Catch::Contains("symmetric"));
  CHECK_THROWS_AS(layer_hessian::from_stats(pare::linear_input_stats{}), pare::argument_error);
}
