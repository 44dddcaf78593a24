// Tests of QAT fake quantization: forward vs a float64 oracle and PyTorch (bit-exact); backward (PyTorch's and LSQ's range tests) vs PyTorch fixtures, float64 references and finite differences; export to the stored format.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "pare/quant/fake_quant.hpp"
#include "pare_test_support.hpp"
#include "quant_oracle.hpp"

namespace fake_quant_test {
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
}  // namespace fake_quant_test

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
          const std::size_t k = fake_quant_test::entry(cfg.gran, cols, i, j);
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

TEST_CASE("Under the LSQ range test, STE and LSQ gradients match float64 references and finite differences of the surrogate") {
  const std::size_t rows = 4, cols = 64;
  auto x = pare_test::gaussian(rows * cols, 9, 1.0);
  const auto gy = pare_test::gaussian(rows * cols, 10, 1.0);
  const pare::matrix_view<const float> m(x.data(), rows, cols);
  for (const char* spec : {"int4:g16:asym", "int8:per_channel:sym", "uint4:per_channel=1:asym", "int3:per_tensor:asym"}) {
    INFO(spec);
    auto cfg = pare::quant_config::parse(spec);
    auto p = pare::fake_quant_params::from_data(m, cfg);
    REQUIRE(p.range == pare::fake_quant_range::pytorch);  // the default
    p.range = pare::fake_quant_range::lsq;
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
        const std::size_t k = fake_quant_test::entry(cfg.gran, cols, i, j);
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
          return fake_quant_test::surrogate(xv, ss, zz, qmin, qmax, fr);
        };
        fd_s[k] += dy * (f(s + hs, z) - f(s - hs, z)) / (2 * hs);
        fd_z[k] += dy * (f(s, z + hz) - f(s, z - hz)) / (2 * hz);
        const double hx = 1e-6;
        if (std::fabs(v - (qmin - z)) > 1e-3 && std::fabs(v - (qmax - z)) > 1e-3) {
          const double dfx = (fake_quant_test::surrogate(xv + hx, s, z, qmin, qmax, 0) -
                              fake_quant_test::surrogate(xv - hx, s, z, qmin, qmax, 0)) /
                             (2 * hx);
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

namespace fake_quant_test {
/// One PyTorch reference case (written by data/make_fake_quant_refs.py; see its header).
struct torch_case {
  const char* name;
  int bits;
  bool is_signed;
  int kind, axis, group, rows, cols;  // kind: 0 per tensor, 1 per channel, 2 per group
  float grad_factor;
  bool op_sums_trusted;
  std::vector<float> scales;
  std::vector<int> zero_points;
  std::vector<float> x, dy, y;
  const char* mask;   // torch.fake_quantize_*_affine's x-gradient is nonzero
  const char* lmask;  // the learnable op's (per element)
  std::vector<float> dscale_e, dzp_e, dscale, dzp;
};

inline const std::vector<torch_case>& torch_cases() {
  static const std::vector<torch_case> cases = {
#include "data/fake_quant_refs.inc"
  };
  return cases;
}

inline std::uint32_t bits_of(float v) {
  std::uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

inline pare::fake_quant_params params_of(const torch_case& c) {
  pare::fake_quant_params p;
  p.format = pare::int_format{c.bits, c.is_signed};
  p.gran = c.kind == 0   ? pare::granularity::tensor()
           : c.kind == 1 ? pare::granularity::channel(c.axis)
                         : pare::granularity::group(std::size_t(c.group));
  p.rows = std::size_t(c.rows);
  p.cols = std::size_t(c.cols);
  p.scales = c.scales;
  p.zero_points.assign(c.zero_points.begin(), c.zero_points.end());
  return p;
}
}  // namespace fake_quant_test

TEST_CASE("fake-quant forward and PyTorch-convention gradients equal torch 1.13's fake_quantize ops") {
  namespace ft = fake_quant_test;
  const auto& cases = ft::torch_cases();
  REQUIRE(cases.size() >= 12);
  std::size_t ties = 0, half_step_outside = 0, divergent_total = 0, sums_compared = 0, lsq_differs = 0;
  for (const ft::torch_case& c : cases) {
    INFO("case " << c.name);
    const std::size_t rows = std::size_t(c.rows), cols = std::size_t(c.cols), n = rows * cols;
    REQUIRE(c.x.size() == n);
    REQUIRE(std::strlen(c.mask) == n);
    const pare::fake_quant_params p = ft::params_of(c);
    const pare::matrix_view<const float> xm(c.x.data(), rows, cols), dym(c.dy.data(), rows, cols);
    const int qmin = p.format.qmin(), qmax = p.format.qmax();

    // Forward: bit for bit.
    std::vector<float> y(n);
    pare::fake_quant_forward(xm, p, pare::matrix_view<float>(y.data(), rows, cols));
    for (std::size_t e = 0; e < n; ++e) {
      INFO("element " << e << " x " << c.x[e]);
      REQUIRE(ft::bits_of(y[e]) == ft::bits_of(c.y[e]));
    }

    // Which elements torch 1.13's learnable kernels treat differently (the essay in
    // fake_quant.hpp): exact ties x·(1/s) = k + ½ with an odd zero point.
    std::vector<char> divergent(n, 0);
    std::vector<char> group_divergent(p.scales.size(), 0);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) {
        const std::size_t e = i * cols + j, k = p.index(i, j);
        const float v = c.x[e] * (1.0f / p.scales[k]);
        const double lo = qmin - p.zero_points[k], hi = qmax - p.zero_points[k];
        const bool tie = double(v) - std::floor(double(v)) == 0.5;
        ties += tie;
        half_step_outside += (v > hi && v < hi + 0.5) || (v < lo && v > lo - 0.5);
        if (tie && p.zero_points[k] % 2 != 0) divergent[e] = group_divergent[k] = 1;
      }

    // Backward, PyTorch's range test (the default): the x mask of the non-learnable op everywhere.
    const pare::fake_quant_grads g = pare::fake_quant_backward(xm, dym, p, c.grad_factor);
    for (std::size_t e = 0; e < n; ++e) {
      INFO("element " << e << " x " << c.x[e]);
      REQUIRE(g.grad_x[e] == (c.mask[e] == '1' ? c.dy[e] : 0.0f));
    }

    // Per element (each element its own parameter entry, as the fixture's learnable
    // per-element call): the learnable op's x mask and scale / zero-point gradients,
    // exactly, wherever its code agrees with the forward's; where not, torch differs.
    pare::fake_quant_params pe;
    pe.format = p.format;
    pe.gran = pare::granularity::channel(1);
    pe.rows = 1;
    pe.cols = n;
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) {
        pe.scales.push_back(p.scales[p.index(i, j)]);
        pe.zero_points.push_back(p.zero_points[p.index(i, j)]);
      }
    const pare::fake_quant_grads ge = pare::fake_quant_backward(pare::matrix_view<const float>(c.x.data(), 1, n),
                                                                pare::matrix_view<const float>(c.dy.data(), 1, n), pe,
                                                                c.grad_factor);
    std::size_t divergent_here = 0;
    for (std::size_t e = 0; e < n; ++e) {
      INFO("element " << e << " x " << c.x[e] << " s " << pe.scales[e] << " z " << pe.zero_points[e]);
      if (divergent[e]) {
        ++divergent_here;
        CHECK(ge.grad_scale[e] != c.dscale_e[e]);  // the documented deviation is real
        continue;
      }
      REQUIRE(ge.grad_x[e] == (c.lmask[e] == '1' ? c.dy[e] : 0.0f));
      REQUIRE(ft::bits_of(ge.grad_scale[e]) == ft::bits_of(c.dscale_e[e]));
      REQUIRE(ge.grad_zero_point[e] == c.dzp_e[e]);
    }
    divergent_total += divergent_here;
    if (std::strstr(c.name, "oddties") != nullptr)
      CHECK(divergent_here > 0);
    else
      CHECK(divergent_here == 0);

    // Group sums: against torch's per-element values summed in float64, and against the
    // learnable op's own sums where they are its forward's (see the fixture script).
    REQUIRE(g.grad_scale.size() == p.scales.size());
    REQUIRE(c.dscale.size() == c.scales.size());
    for (std::size_t k = 0; k < c.scales.size(); ++k) {
      if (group_divergent[k]) continue;
      double ref_s = 0, ref_z = 0, mag_s = 0, mag_z = 0;
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j)
          if (p.index(i, j) == k) {
            ref_s += c.dscale_e[i * cols + j];
            ref_z += c.dzp_e[i * cols + j];
            mag_s += std::fabs(c.dscale_e[i * cols + j]);
            mag_z += std::fabs(c.dzp_e[i * cols + j]);
          }
      INFO("entry " << k);
      CHECK(g.grad_scale[k] == Approx(ref_s).margin(1e-6 * (1 + mag_s)));
      CHECK(g.grad_zero_point[k] == Approx(ref_z).margin(1e-6 * (1 + mag_z)));
      if (c.op_sums_trusted) {
        CHECK(g.grad_scale[k] == Approx(c.dscale[k]).margin(1e-5 * (1 + mag_s)));
        CHECK(g.grad_zero_point[k] == Approx(c.dzp[k]).margin(1e-5 * (1 + mag_z)));
      } else {
        // torch 1.13's per-tensor learnable backward with z < 0 (reads z + 1): not its forward's gradient.
        CHECK(std::fabs(g.grad_scale[k] - c.dscale[k]) > 1e-3 * (1 + mag_s));
      }
      ++sums_compared;
    }

    // LSQ's range test on the same data: the mask is v in [lo, hi] (float64 reference);
    // it differs from PyTorch's exactly on values within half a step beyond the range.
    pare::fake_quant_params pl = p;
    pl.range = pare::fake_quant_range::lsq;
    const pare::fake_quant_grads gl = pare::fake_quant_backward(xm, dym, pl, c.grad_factor);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) {
        const std::size_t e = i * cols + j, k = p.index(i, j);
        const double v = double(c.x[e] * (1.0f / p.scales[k]));
        const bool in = v >= qmin - p.zero_points[k] && v <= qmax - p.zero_points[k];
        REQUIRE(gl.grad_x[e] == (in ? c.dy[e] : 0.0f));
        lsq_differs += (gl.grad_x[e] != g.grad_x[e]);
      }
  }
  CHECK(ties >= 20);
  CHECK(half_step_outside >= 20);
  CHECK(divergent_total >= 4);
  CHECK(sums_compared >= 20);
  CHECK(lsq_differs >= 20);
}

TEST_CASE("PyTorch's range test on random data: rounded code in range, scale gradient against float64") {
  const std::size_t rows = 5, cols = 48;
  const auto x = pare_test::gaussian(rows * cols, 21, 1.0);
  const auto gy = pare_test::gaussian(rows * cols, 22, 1.0);
  const pare::matrix_view<const float> m(x.data(), rows, cols);
  std::size_t rounded_in_unrounded_out = 0;
  for (const char* spec : {"int4:g16:asym", "int8:per_channel:sym", "uint4:per_channel=1:asym", "int2:per_tensor:asym"}) {
    INFO(spec);
    auto p = pare::fake_quant_params::from_data(m, pare::quant_config::parse(spec));
    for (auto& s : p.scales) s *= 0.6f;
    const auto g = pare::fake_quant_backward(m, pare::matrix_view<const float>(gy.data(), rows, cols), p, 0.75f);
    std::vector<double> ref_s(p.scales.size(), 0.0), ref_z(p.scales.size(), 0.0);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) {
        const std::size_t e = i * cols + j, k = fake_quant_test::entry(p.gran, cols, i, j);
        const double s = p.scales[k], v = double(x[e] * (1.0f / p.scales[k]));
        const long q = long(oracle::rne(v)) + p.zero_points[k];
        const bool in = q >= p.format.qmin() && q <= p.format.qmax();
        rounded_in_unrounded_out += in && (v < p.format.qmin() - p.zero_points[k] || v > p.format.qmax() - p.zero_points[k]);
        REQUIRE(g.grad_x[e] == (in ? gy[e] : 0.0f));
        ref_s[k] += gy[e] * (in ? oracle::rne(v) - v : double(q < p.format.qmin() ? p.format.qmin() : p.format.qmax()) - p.zero_points[k]);
        ref_z[k] += in ? 0.0 : -gy[e] * s;
      }
    for (std::size_t k = 0; k < ref_s.size(); ++k) {
      INFO("entry " << k);
      CHECK(g.grad_scale[k] == Approx(0.75 * ref_s[k]).margin(1e-4));
      CHECK(g.grad_zero_point[k] == Approx(0.75 * ref_z[k]).margin(1e-5));
    }
  }
  CHECK(rounded_in_unrounded_out > 0);
}

TEST_CASE("fake_quant_export stores learned parameters in the quantized format; dequantize equals fake_quant_forward") {
  const std::size_t rows = 7, cols = 96;
  const auto x = pare_test::gaussian(rows * cols, 31, 1.0);
  const pare::matrix_view<const float> m(x.data(), rows, cols);
  for (const char* spec : {"int4:g32:asym", "int4:g32:sym", "int8:per_channel:sym", "uint8:per_channel:asym",
                           "int8:per_channel=1:sym", "int3:g16:asym"}) {
    INFO(spec);
    auto p = pare::fake_quant_params::from_data(m, pare::quant_config::parse(spec));
    // learned parameters: scales moved (some values clip), zero points moved
    pare::splitmix64 r(5);
    const bool move_zero = std::string(spec).find("asym") != std::string::npos;
    for (std::size_t k = 0; k < p.scales.size(); ++k) {
      p.scales[k] *= float(0.5 + r.uniform());
      if (move_zero)
        p.zero_points[k] = std::clamp(p.zero_points[k] + int(r.next() % 5) - 2, p.format.qmin(), p.format.qmax());
    }
    const pare::quantized_tensor q = pare::fake_quant_export(m, p);
    CHECK(q.scales == p.scales);
    CHECK(q.zero_points == p.zero_points);
    CHECK(q.config.format == p.format);
    CHECK((q.config.scheme == pare::scheme_kind::asymmetric) == move_zero);
    std::vector<float> y(rows * cols);
    pare::fake_quant_forward(m, p, pare::matrix_view<float>(y.data(), rows, cols));
    const auto d = q.dequantize();
    std::size_t clipped = 0;
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) {
        const std::size_t k = fake_quant_test::entry(p.gran, cols, i, j);
        const long code = oracle::affine_code(x[i * cols + j], oracle::params{double(p.scales[k]), long(p.zero_points[k])},
                                              p.format.bits, p.format.is_signed);
        clipped += code == p.format.qmin() || code == p.format.qmax();
        INFO("(" << i << ", " << j << ")");
        REQUIRE(q.code(i, j) == code);
        REQUIRE(fake_quant_test::bits_of(d(i, j)) == fake_quant_test::bits_of(y[i * cols + j]));
      }
    CHECK(clipped > 0);
  }
  // errors: shape, non-finite weights
  auto p = pare::fake_quant_params::from_data(m, pare::quant_config::parse("int4:g32:asym"));
  CHECK_THROWS_AS(pare::fake_quant_export(pare::matrix_view<const float>(x.data(), rows - 1, cols), p), pare::shape_error);
  auto bad = x;
  bad[3 * cols + 7] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(pare::fake_quant_export(pare::matrix_view<const float>(bad.data(), rows, cols), p),
                    Catch::Contains("fake_quant_export") && Catch::Contains("'w'") && Catch::Contains("(3, 7)"));
}

TEST_CASE("fake_quant_backward rejects a bad range test, grad_scale or input") {
  const std::size_t rows = 2, cols = 8;
  auto x = pare_test::gaussian(rows * cols, 41);
  const auto gy = pare_test::gaussian(rows * cols, 42);
  const pare::matrix_view<const float> m(x.data(), rows, cols), gm(gy.data(), rows, cols);
  auto p = pare::fake_quant_params::from_data(m, pare::quant_config::parse("int8:per_channel:sym"));
  auto bad = p;
  bad.range = static_cast<pare::fake_quant_range>(7);
  CHECK_THROWS_WITH(pare::fake_quant_backward(m, gm, bad), Catch::Contains("fake_quant_backward") && Catch::Contains("'range'"));
  CHECK_THROWS_WITH(pare::fake_quant_backward(m, gm, p, std::numeric_limits<float>::infinity()),
                    Catch::Contains("'grad_scale'") && Catch::Contains("inf"));
  CHECK_THROWS_AS(pare::fake_quant_backward(m, pare::matrix_view<const float>(gy.data(), cols, rows), p), pare::shape_error);
  x[9] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(pare::fake_quant_backward(m, gm, p), Catch::Contains("(1, 1)"));
  CHECK(std::string(pare::to_string(pare::fake_quant_range::lsq)) == "lsq");
}

TEST_CASE("fake_quant_backward does not depend on the thread count or on the input strides") {
  const std::size_t rows = 300, cols = 64;  // several fixed 64-row chunks for shared entries
  const auto x = pare_test::gaussian(rows * cols, 91, 1.0);
  const auto gy = pare_test::gaussian(rows * cols, 92, 1.0);
  const pare::matrix_view<const float> m(x.data(), rows, cols), gm(gy.data(), rows, cols);
  // the same matrices behind column-reversed views
  std::vector<float> xr(rows * cols), gr(rows * cols);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) {
      xr[i * cols + cols - 1 - j] = x[i * cols + j];
      gr[i * cols + cols - 1 - j] = gy[i * cols + j];
    }
  const pare::matrix_view<const float> ms(xr.data() + cols - 1, rows, cols, std::ptrdiff_t(cols), -1),
      gs(gr.data() + cols - 1, rows, cols, std::ptrdiff_t(cols), -1);
  for (const char* spec : {"int8:per_tensor:sym", "int4:per_channel=1:asym", "int4:g16:asym", "int8:per_channel:sym"}) {
    for (auto range : {pare::fake_quant_range::pytorch, pare::fake_quant_range::lsq}) {
      INFO(spec << " " << pare::to_string(range));
      auto p = pare::fake_quant_params::from_data(m, pare::quant_config::parse(spec));
      p.range = range;
      for (auto& s : p.scales) s *= 0.7f;
      pare::thread_pool one(1), five(5);
      pare::set_executor(&one);
      const auto g1 = pare::fake_quant_backward(m, gm, p, 0.5f);
      pare::set_executor(&five);
      const auto g5 = pare::fake_quant_backward(m, gm, p, 0.5f);
      const auto g5s = pare::fake_quant_backward(ms, gs, p, 0.5f);
      pare::set_executor(nullptr);
      CHECK(g1.grad_x == g5.grad_x);
      CHECK(g1.grad_scale == g5.grad_scale);
      CHECK(g1.grad_zero_point == g5.grad_zero_point);
      CHECK(g5s.grad_x == g5.grad_x);
      CHECK(g5s.grad_scale == g5.grad_scale);
      CHECK(g5s.grad_zero_point == g5.grad_zero_point);
      // and the shared entries are the float64 sums (per tensor: over all 300 rows)
      double ref = 0;
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j)
          if (p.index(i, j) == 0) {
            const double v = double(x[i * cols + j] * (1.0f / p.scales[0]));
            const double lo = p.format.qmin() - p.zero_points[0], hi = p.format.qmax() - p.zero_points[0];
            const double t = range == pare::fake_quant_range::pytorch ? oracle::rne(v) : v;
            ref += gy[i * cols + j] * (t < lo ? lo : t > hi ? hi : oracle::rne(v) - v);
          }
      CHECK(g1.grad_scale[0] == Approx(0.5 * ref).margin(1e-4));
    }
  }
}
