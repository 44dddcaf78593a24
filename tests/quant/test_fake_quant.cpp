// Tests of QAT fake quantization: forward against the documented formula with given parameters (float64 oracle); STE and LSQ gradients vs float64 and finite differences.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "pare/quant/fake_quant.hpp"
#include "pare_test_support.hpp"
#include "quant_oracle.hpp"

namespace {
/// The surrogate whose exact gradient STE/LSQ are (see fake_quant.hpp), in float64:
/// f(x, s, z) = s·clamp(x/s, qmin - z, qmax - z) + c, with c = s0·(round(v0) − v0) frozen at the base point.
double surrogate(double x, double s, double z, int qmin, int qmax, double frozen) {
  const double v = x / s;
  return s * std::clamp(v, qmin - z, qmax - z) + frozen;
}

/// Parameter entry of element (i, j) by the documented layout (pare/quant/quantized_tensor.hpp):
/// per tensor 0; per channel axis 0 i, axis 1 j; per group G i·(cols/G) + j/G.
std::size_t entry(const pare::granularity& g, std::size_t cols, std::size_t i, std::size_t j) {
  switch (g.kind) {
    case pare::granularity_kind::per_tensor: return 0;
    case pare::granularity_kind::per_channel: return g.axis == 0 ? i : j;
    case pare::granularity_kind::per_group: return i * (cols / g.group_size) + j / g.group_size;
  }
  return 0;
}
}  // namespace

TEST_CASE("fake_quant_forward is the documented s·clamp(nearbyint(x·(1/s)), qmin−z, qmax−z) with the given parameters") {
  const std::size_t rows = 6, cols = 96;
  const auto x = pare_test::gaussian(rows * cols, 3);
  const pare::matrix_view<const float> m(x.data(), rows, cols);
  for (const char* spec : {"int8:per_channel:sym", "uint4:g32:asym", "int3:per_tensor:asym", "int4:per_channel=1:sym",
                           "int2:g8:asym", "uint6:g16:sym"}) {
    INFO(spec);
    const auto cfg = pare::quant_config::parse(spec);
    const auto p0 = pare::fake_quant_params::from_data(m, cfg);
    // From the data (as quantize() would choose them), then parameters no observer would
    // choose: scales shrunk or grown per entry, zero points moved (learned parameters).
    auto p1 = p0;
    pare::splitmix64 g(17);
    for (std::size_t k = 0; k < p1.scales.size(); ++k) {
      p1.scales[k] *= float(0.3 + 1.4 * g.uniform());
      p1.zero_points[k] = std::clamp(p1.zero_points[k] + int(g.next() % 5) - 2, p1.format.qmin(), p1.format.qmax());
    }
    const int bits = p0.format.bits;
    const bool sgn = p0.format.is_signed;
    const pare::fake_quant_params* params[] = {&p0, &p1};
    for (const pare::fake_quant_params* p : params) {
      std::vector<float> y(rows * cols);
      pare::fake_quant_forward(m, *p, pare::matrix_view<float>(y.data(), rows, cols));
      std::vector<float> inplace = x;  // y may alias x
      pare::fake_quant_forward(pare::matrix_view<const float>(inplace.data(), rows, cols), *p,
                               pare::matrix_view<float>(inplace.data(), rows, cols));
      std::size_t clipped = 0;
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j) {
          const std::size_t k = entry(cfg.gran, cols, i, j);
          const oracle::params op{double(p->scales[k]), long(p->zero_points[k])};
          const long q = oracle::affine_code(x[i * cols + j], op, bits, sgn);
          clipped += q == oracle::qmin(bits, sgn) || q == oracle::qmax(bits, sgn);
          INFO("(" << i << ", " << j << ") entry " << k << " s " << op.scale << " z " << op.zero);
          REQUIRE(y[i * cols + j] == oracle::affine_value(q, op));
          REQUIRE(inplace[i * cols + j] == y[i * cols + j]);
        }
      CHECK(clipped > 0);  // both ends of the grid are exercised
    }
    // With the parameters from the data it is also quantize() followed by dequantize().
    const auto d = pare::quantize(m, cfg).dequantize();
    std::vector<float> y(rows * cols);
    pare::fake_quant_forward(m, p0, pare::matrix_view<float>(y.data(), rows, cols));
    for (std::size_t k = 0; k < y.size(); ++k) REQUIRE(y[k] == d.data()[k]);
  }
}

TEST_CASE("STE and LSQ gradients match float64 references and finite differences of the surrogate") {
  const std::size_t rows = 4, cols = 64;
  auto x = pare_test::gaussian(rows * cols, 9, 1.0);
  const auto gy = pare_test::gaussian(rows * cols, 10, 1.0);
  const pare::matrix_view<const float> m(x.data(), rows, cols);
  for (const char* spec : {"int4:g16:asym", "int8:per_channel:sym", "uint4:per_channel=1:asym", "int3:per_tensor:asym"}) {
    INFO(spec);
    auto cfg = pare::quant_config::parse(spec);
    auto p = pare::fake_quant_params::from_data(m, cfg);
    for (auto& s : p.scales) s *= 0.7f;  // shrink so that some values fall outside the clip range
    const float gscale = 0.5f;
    const auto g = pare::fake_quant_backward(m, pare::matrix_view<const float>(gy.data(), rows, cols), p, gscale);
    const int qmin = p.format.qmin(), qmax = p.format.qmax();
    REQUIRE(g.grad_scale.size() == p.scales.size());
    REQUIRE(g.grad_zero_point.size() == p.scales.size());
    std::vector<double> ref_s(p.scales.size(), 0.0), fd_s(p.scales.size(), 0.0), ref_z(p.scales.size(), 0.0),
        fd_z(p.scales.size(), 0.0);
    std::size_t inside = 0, outside = 0;
    for (std::size_t i = 0; i < rows; ++i) {
      for (std::size_t j = 0; j < cols; ++j) {
        const std::size_t k = entry(cfg.gran, cols, i, j);
        const double s = p.scales[k], z = p.zero_points[k], xv = x[i * cols + j], dy = gy[i * cols + j];
        const double v = double(float(float(xv) * (1.0f / float(s))));
        const bool in = v >= qmin - z && v <= qmax - z;
        (in ? inside : outside)++;
        // float64 reference of STE and LSQ
        REQUIRE(g.grad_x[i * cols + j] == (in ? float(dy) : 0.0f));
        ref_s[k] += dy * (in ? std::nearbyint(v) - v : (v < qmin - z ? qmin - z : qmax - z));
        ref_z[k] += dy * (in ? 0.0 : -s);
        // central differences of the surrogate in s and z (and in x: slope 1 inside, 0 outside)
        const double frozen = in ? s * (std::nearbyint(v) - v) : 0.0;
        const double hs = 1e-6 * s, hz = 1e-6;
        auto f = [&](double ss, double zz) {
          const double fr = in ? ss * (frozen / s) : 0.0;
          return surrogate(xv, ss, zz, qmin, qmax, fr);
        };
        fd_s[k] += dy * (f(s + hs, z) - f(s - hs, z)) / (2 * hs);
        fd_z[k] += dy * (f(s, z + hz) - f(s, z - hz)) / (2 * hz);
        const double hx = 1e-6;
        if (std::fabs(v - (qmin - z)) > 1e-3 && std::fabs(v - (qmax - z)) > 1e-3) {
          const double dfx = (surrogate(xv + hx, s, z, qmin, qmax, 0) - surrogate(xv - hx, s, z, qmin, qmax, 0)) / (2 * hx);
          REQUIRE(dfx == Approx(in ? 1.0 : 0.0).margin(1e-6));
        }
      }
    }
    CHECK(inside > 0);
    CHECK(outside > 0);
    for (std::size_t k = 0; k < ref_s.size(); ++k) {
      INFO("entry " << k);
      CHECK(g.grad_scale[k] == Approx(gscale * ref_s[k]).margin(1e-5));
      CHECK(g.grad_scale[k] == Approx(gscale * fd_s[k]).margin(1e-4));
      CHECK(g.grad_zero_point[k] == Approx(gscale * ref_z[k]).margin(1e-5));
      CHECK(g.grad_zero_point[k] == Approx(gscale * fd_z[k]).margin(1e-4));
    }
  }
  CHECK(pare::lsq_grad_scale(16, 7) == Approx(1.0 / std::sqrt(16.0 * 7.0)));
}

TEST_CASE("fake-quant parameters and inputs are validated before anything is written") {
  const std::size_t rows = 2, cols = 8;
  auto x = pare_test::gaussian(rows * cols, 4);
  const pare::matrix_view<const float> m(x.data(), rows, cols);
  auto p = pare::fake_quant_params::from_data(m, pare::quant_config::parse("int8:per_channel:sym"));
  std::vector<float> y(rows * cols, 5.0f);
  auto bad = p;
  bad.scales[1] = 0.0f;
  CHECK_THROWS_WITH(pare::fake_quant_forward(m, bad, pare::matrix_view<float>(y.data(), rows, cols)),
                    Catch::Contains("'scales'") && Catch::Contains("index 1"));
  bad = p;
  bad.zero_points[0] = 300;
  CHECK_THROWS_AS(pare::fake_quant_forward(m, bad, pare::matrix_view<float>(y.data(), rows, cols)), pare::argument_error);
  x[5] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(pare::fake_quant_forward(m, p, pare::matrix_view<float>(y.data(), rows, cols)), Catch::Contains("(0, 5)"));
  for (float v : y) REQUIRE(v == 5.0f);
  CHECK_THROWS_AS(pare::fake_quant_forward(m, p, pare::matrix_view<float>(y.data(), cols, rows)), pare::shape_error);
}
