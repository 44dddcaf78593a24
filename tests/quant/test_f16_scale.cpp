// Tests of f16scale (scales stored as IEEE half) and of storage sizes with bit-stream-packed 5..7-bit codes, against a float64 oracle.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "pare/core/dtypes/fp16.hpp"
#include "pare/quant/half_scale.hpp"
#include "pare/quant/quantize.hpp"
#include "pare_test_support.hpp"
#include "quant_oracle.hpp"

namespace {

/// The nearest binary16 to f by a brute-force search over all finite halves (independent
/// of pare's converter): ties to the even bit pattern.
double nearest_half(double f) {
  double best = 0, dist = -1;
  unsigned best_bits = 0;
  for (unsigned b = 0; b < 0x7C00u; ++b) {  // positive finite halves
    const int e = int(b >> 10), m = int(b & 0x3FFu);
    const double v = e == 0 ? std::ldexp(double(m), -24) : std::ldexp(double(1024 + m), e - 25);
    const double d = std::fabs(v - f);
    if (dist < 0 || d < dist || (d == dist && (b & 1u) == 0 && (best_bits & 1u) != 0)) {
      best = v;
      dist = d;
      best_bits = b;
    }
  }
  return best;
}

/// The oracle's parameters of one group under f16scale: the float scale of oracle::from_range
/// rounded to the nearest half (raised to 2^-14 below it), the zero point recomputed from it.
oracle::params f16_params(const std::vector<float>& g, int bits, bool sgn, bool sym) {
  double lo = g[0], hi = g[0];
  for (float v : g) lo = std::min(lo, double(v)), hi = std::max(hi, double(v));
  oracle::params p = oracle::from_range(lo, hi, bits, sgn, sym);
  p.scale = p.scale < std::ldexp(1.0, -14) ? std::ldexp(1.0, -14) : nearest_half(p.scale);
  const double l = std::min(lo, 0.0), h = std::max(hi, 0.0);
  if (!sym && h > l)
    p.zero = long(std::clamp(double(oracle::qmin(bits, sgn)) - oracle::rne(l / p.scale), double(oracle::qmin(bits, sgn)),
                             double(oracle::qmax(bits, sgn))));
  return p;
}

}  // namespace

TEST_CASE("f16scale parses, prints canonically and round-trips; it may appear once") {
  const pare::quant_config c = pare::quant_config::parse("int4:g64:asym:f16scale");
  CHECK(c.f16_scale);
  CHECK(c.scale_bytes() == 2);
  CHECK(c.str() == "int4:g64:asym:minmax:rne:f16scale");
  CHECK(pare::quant_config::parse(c.str()).str() == c.str());
  CHECK(pare::quant_config::parse("int5:f16scale:g32").f16_scale);
  CHECK_FALSE(pare::quant_config::parse("int4:g64:asym").f16_scale);
  CHECK(pare::quant_config::parse("int4:g64:asym").scale_bytes() == 4);
  CHECK(pare::quant_config::parse("int4:g64:asym").str() == "int4:g64:asym:minmax:rne");
  CHECK_THROWS_WITH(pare::quant_config::parse("int4:f16scale:f16scale"), Catch::Contains("repeats"));
  CHECK_THROWS_WITH(pare::quant_config::parse("int4:f16"), Catch::Contains("f16scale"));
}

TEST_CASE("f16scale: scales are the nearest halves, codes the nearest for them, dequantization exact (float64 oracle)") {
  const std::size_t rows = 9, cols = 96;
  const std::vector<float> w = pare_test::gaussian(rows * cols, 5, 0.07);
  for (int bits = 2; bits <= 8; ++bits)
    for (bool sgn : {true, false})
      for (const char* scheme : {"sym", "asym"})
        for (const char* gran : {"g32", "per_channel", "g96", "per_tensor"}) {
          const std::string spec = std::string(sgn ? "int" : "uint") + std::to_string(bits) + ":" + gran + ":" + scheme + ":f16scale";
          INFO(spec);
          const pare::quant_config cfg = pare::quant_config::parse(spec);
          const pare::quantized_tensor q = pare::quantize(pare::matrix_view<const float>(w.data(), rows, cols), cfg);
          const bool sym = cfg.scheme == pare::scheme_kind::symmetric;
          std::size_t wrong_scale = 0, wrong_zero = 0, wrong_code = 0, wrong_value = 0, ties = 0;
          const auto deq = q.dequantize();
          for (std::size_t i = 0; i < rows; ++i)
            for (std::size_t j = 0; j < cols; ++j) {
              // The elements that share (i, j)'s parameters: [first, last) of w.
              std::size_t first = 0, last = w.size();
              if (cfg.gran.kind == pare::granularity_kind::per_channel) first = i * cols, last = (i + 1) * cols;
              else if (cfg.gran.kind == pare::granularity_kind::per_group) {
                const std::size_t gs = cfg.gran.group_size;
                first = i * cols + j / gs * gs;
                last = first + gs;
              }
              const std::vector<float> g(w.begin() + std::ptrdiff_t(first), w.begin() + std::ptrdiff_t(last));
              const oracle::params p = f16_params(g, bits, sgn, sym);
              const pare::qparams got = q.params_at(i, j);
              wrong_scale += double(got.scale) != p.scale;
              wrong_zero += got.zero_point != p.zero;
              // The nearest code for the stored (half) scale: float64 x / h, rounded, clamped.
              const long want = oracle::code(w[i * cols + j], p, bits, sgn);
              if (q.code(i, j) != want) {
                if (oracle::tie_distance(w[i * cols + j], p) < 1e-5) ++ties;
                else ++wrong_code;
              }
              // Exact dequantization with the half value: (q - z) · h rounded once to float.
              wrong_value += deq(i, j) != float(double(q.code(i, j) - got.zero_point) * p.scale);
            }
          CHECK(wrong_scale == 0);
          CHECK(wrong_zero == 0);
          CHECK(wrong_code == 0);
          CHECK(ties <= 2);
          CHECK(wrong_value == 0);
          for (float s : q.scales) CHECK(double(pare::fp16_to_float(pare::float_to_fp16(s))) == double(s));
        }
}

TEST_CASE("f16scale: fake_quantize uses the same half scales as quantize") {
  const std::size_t rows = 4, cols = 64;
  const std::vector<float> w = pare_test::gaussian(rows * cols, 9, 0.3);
  const pare::quant_config cfg = pare::quant_config::parse("int5:g32:asym:f16scale");
  const pare::quantized_tensor q = pare::quantize(pare::matrix_view<const float>(w.data(), rows, cols), cfg);
  std::vector<float> y(rows * cols);
  pare::fake_quantize(pare::matrix_view<const float>(w.data(), rows, cols), cfg, pare::matrix_view<float>(y.data(), rows, cols));
  const auto d = q.dequantize();
  std::size_t diff = 0;
  for (std::size_t t = 0; t < y.size(); ++t) diff += y[t] != d.data()[t];
  CHECK(diff == 0);
}

TEST_CASE("f16scale: scales below 2^-14 are raised to it, scales beyond fp16 are argument errors") {
  // A group of tiny values: the fp32 scale would be ~1e-8; f16scale stores 2^-14 instead.
  std::vector<float> w(64, 0.0f);
  for (std::size_t j = 0; j < 32; ++j) w[j] = 1e-7f * float(int(j) - 16);
  for (std::size_t j = 32; j < 64; ++j) w[j] = 0.01f * float(int(j) - 48);
  const auto q = pare::quantize(pare::matrix_view<const float>(w.data(), 1, 64), pare::quant_config::parse("int4:g32:asym:f16scale"));
  CHECK(q.scales[0] == pare::min_f16_scale);
  CHECK(q.scales[0] == std::ldexp(1.0f, -14));
  CHECK(q.scales[1] == float(nearest_half(double(q.scales[1]))));
  const auto d = q.dequantize();
  for (std::size_t j = 0; j < 32; ++j) CHECK(std::fabs(d(0, j) - w[j]) <= std::ldexp(1.0f, -15));
  // An all-zero group keeps the fp32 path's scale 1 (a half).
  const std::vector<float> z(32, 0.0f);
  CHECK(pare::quantize(pare::matrix_view<const float>(z.data(), 1, 32), pare::quant_config::parse("int4:g32:sym:f16scale")).scales[0] == 1.0f);
  // Overflow: int4 sym with max 1e6 needs a scale of 1e6/7 > 65504.
  std::vector<float> big(32, 1.0f);
  big[3] = 1e6f;
  const pare::matrix_view<const float> bv(big.data(), 1, 32);
  CHECK_THROWS_AS(pare::quantize(bv, pare::quant_config::parse("int4:g32:sym:f16scale")), pare::argument_error);
  CHECK_THROWS_WITH(pare::quantize(bv, pare::quant_config::parse("int4:per_channel:sym:f16scale")),
                    Catch::Contains("argument 'cfg'") && Catch::Contains("65504") && Catch::Contains("142857"));
  CHECK_NOTHROW(pare::quantize(bv, pare::quant_config::parse("int4:g32:sym")));  // fp32 scales hold it
  // The largest scale that rounds to a finite half is accepted; just past it is not.
  CHECK(pare::round_scale_to_f16("t", 65504.0f) == 65504.0f);
  CHECK(pare::round_scale_to_f16("t", 65519.0f) == 65504.0f);
  CHECK_THROWS_AS(pare::round_scale_to_f16("t", 65520.0f), pare::argument_error);
  CHECK(pare::round_scale_to_f16("t", 1e-30f) == pare::min_f16_scale);
  CHECK(pare::round_scale_to_f16("t", 0.1f) == float(nearest_half(0.1)));
}

TEST_CASE("storage_bytes: bit-stream codes, 4- or 2-byte scales, 1-byte zero points") {
  const std::size_t rows = 8, cols = 128;
  const std::vector<float> w = pare_test::gaussian(rows * cols, 3, 0.1);
  const pare::matrix_view<const float> wv(w.data(), rows, cols);
  auto q = [&](const char* spec) { return pare::quantize(wv, pare::quant_config::parse(spec)); };
  for (int bits = 2; bits <= 8; ++bits)
    for (bool f16 : {false, true})
      for (bool asym : {false, true}) {
        const std::string spec = "int" + std::to_string(bits) + ":g32:" + (asym ? "asym" : "sym") + (f16 ? ":f16scale" : "");
        INFO(spec);
        const auto t = q(spec.c_str());
        const std::size_t groups = rows * cols / 32;
        const std::size_t code_bytes = bits == 3 ? rows * 3 * ((cols + 7) / 8) : rows * ((cols * std::size_t(bits) + 7) / 8);
        CHECK(t.storage_bytes() == code_bytes + groups * (f16 ? 2 : 4) + (asym ? groups : 0));
        CHECK(t.codes.size() == code_bytes);
      }
  // The figures of issue #18.
  CHECK(q("int4:g64:asym").bits_per_weight() == Approx(4.0 + 32.0 / 64 + 8.0 / 64));  // 4.625
  CHECK(q("int4:g64:asym:f16scale").bits_per_weight() == Approx(4.0 + 16.0 / 64 + 8.0 / 64));  // 4.375
  CHECK(q("int5:g32:asym").bits_per_weight() == Approx(5.0 + 32.0 / 32 + 8.0 / 32));  // 6.25
  CHECK(q("int5:g32:asym:f16scale").bits_per_weight() == Approx(5.0 + 16.0 / 32 + 8.0 / 32));  // 5.75
  CHECK(q("int6:g32:sym").bits_per_weight() == Approx(6.0 + 1.0));
  CHECK(q("int7:per_channel:sym:f16scale").bits_per_weight() == Approx(7.0 + 16.0 / 128));
}

TEST_CASE("5..7-bit tensors: codes, dequantization and the packed bytes agree with the bit-stream oracle") {
  const std::size_t rows = 5, cols = 70;
  const std::vector<float> w = pare_test::gaussian(rows * cols, 17, 0.2);
  for (const char* spec : {"int5:per_channel:asym", "uint5:g10:sym", "int6:g14:asym:f16scale", "uint6:per_tensor:asym",
                           "int7:g35:sym", "uint7:per_channel:asym:f16scale", "int5:g7:asym:stochastic=3"}) {
    INFO(spec);
    const pare::quant_config cfg = pare::quant_config::parse(spec);
    const auto q = pare::quantize(pare::matrix_view<const float>(w.data(), rows, cols), cfg);
    REQUIRE(q.row_bytes() == (cols * std::size_t(cfg.format.bits) + 7) / 8);
    const auto d = q.dequantize();
    std::size_t bad = 0;
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) {
        const long c = oracle::unpack_code(cfg.format.bits, cfg.format.is_signed, q.codes.data() + i * q.row_bytes(), j);
        bad += c != q.code(i, j) || c < cfg.format.qmin() || c > cfg.format.qmax();
        const pare::qparams p = q.params_at(i, j);
        bad += d(i, j) != float(double(c - p.zero_point) * double(p.scale));
        // Round to nearest (not stochastic): the code is within half a step of x / s.
        if (cfg.rounding == pare::rounding_kind::nearest_even) {
          const double v = double(w[i * cols + j]) / double(p.scale) + double(p.zero_point);
          if (v >= cfg.format.qmin() && v <= cfg.format.qmax()) bad += std::fabs(v - double(c)) > 0.5 + 1e-4;
        }
      }
    CHECK(bad == 0);
  }
}
