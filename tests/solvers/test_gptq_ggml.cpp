// GPTQ into ggml block formats against a float64 OBS oracle written here (bytes equal), its loss against ggml's round-to-nearest on random and stories260K Hessians, diagonal Hessians against the golden quantizer, bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "pare/ggml/gptq.hpp"
#include "pare/ggml/quantize.hpp"
#include "pare/model/calibration.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare_test_support.hpp"
#include "solver_test_support.hpp"

namespace {

using pare::ggml::type;
using pare::solvers::layer_hessian;

const type all_block_types[] = {type::q4_0, type::q4_1, type::q5_0, type::q5_1, type::q8_0, type::iq4_nl,
                                type::q2_K, type::q3_K, type::q4_K, type::q5_K, type::q6_K};

int block_of(type t) { return int(pare::ggml::traits(t).block_size); }
std::size_t bytes_of(type t) { return pare::ggml::traits(t).type_size; }

/// How many codes element values can take (2^bits).
int code_count(type t) {
  switch (t) {
    case type::q8_0: return 256;
    case type::q5_0: case type::q5_1: case type::q5_K: return 32;
    case type::q2_K: return 4;
    case type::q3_K: return 8;
    case type::q6_K: return 64;
    default: return 16;
  }
}

/// Writes `width` bits of v at bit `shift` of byte b.
void put_bits(std::uint8_t& b, int shift, int width, int v) {
  const int mask = ((1 << width) - 1) << shift;
  b = static_cast<std::uint8_t>((b & ~mask) | ((v << shift) & mask));
}

/// Sets element e's code in one block, written from the layouts in ggml/types.hpp and
/// ggml/k_quants.hpp (element by element as the dequantizers read them). Codes count
/// upwards with the value: Q8_0's code c is the int8 c − 128.
void oracle_set_code(type t, std::uint8_t* y, int e, int c) {
  auto nibble = [&](std::uint8_t* qs) { put_bits(qs[e % 16], e < 16 ? 0 : 4, 4, c); };
  auto fifth_bit = [&](std::uint8_t* qh) { put_bits(qh[e / 8], e % 8, 1, c >> 4); };
  const int h = e / 128, s = (e % 128) / 32, l = e % 32;
  switch (t) {
    case type::q8_0: y[2 + e] = static_cast<std::uint8_t>(static_cast<std::int8_t>(c - 128)); return;
    case type::q4_0: case type::iq4_nl: nibble(y + 2); return;
    case type::q4_1: nibble(y + 4); return;
    case type::q5_0: nibble(y + 6); fifth_bit(y + 2); return;
    case type::q5_1: nibble(y + 8); fifth_bit(y + 4); return;
    case type::q2_K: put_bits(y[16 + 32 * h + l], 2 * s, 2, c); return;
    case type::q3_K:
      put_bits(y[32 + 32 * h + l], 2 * s, 2, c & 3);
      put_bits(y[e % 32], e / 32, 1, c >> 2);
      return;
    case type::q4_K: put_bits(y[16 + 32 * (e / 64) + l], 4 * ((e / 32) % 2), 4, c); return;
    case type::q5_K:
      put_bits(y[48 + 32 * (e / 64) + l], 4 * ((e / 32) % 2), 4, c & 15);
      put_bits(y[16 + l], e / 32, 1, c >> 4);
      return;
    case type::q6_K:
      put_bits(y[64 * h + l + (s % 2 ? 32 : 0)], s < 2 ? 0 : 4, 4, c & 15);
      put_bits(y[128 + 32 * h + l], 2 * s, 2, c >> 4);
      return;
    default: FAIL("no code layout for " << pare::ggml::to_string(t));
  }
}

/// The code stored for element e: the one whose writing leaves the block unchanged.
int oracle_get_code(type t, const std::uint8_t* y, int e) {
  const std::size_t n = bytes_of(t);
  std::vector<std::uint8_t> c(y, y + n);
  for (int code = 0; code < code_count(t); ++code) {
    oracle_set_code(t, c.data(), e, code);
    if (std::equal(c.begin(), c.end(), y)) return code;
    std::copy(y, y + n, c.begin());
  }
  FAIL("no code of element " << e << " reproduces the block");
  return -1;
}

/// Sets every code of a block to 0 (what is left are the parameters).
void clear_codes(type t, std::uint8_t* y) {
  for (int e = 0; e < block_of(t); ++e) oracle_set_code(t, y, e, 0);
}

/// Element e's value in block y when its code is c, by pare's golden dequantizer.
float value_with_code(type t, const std::uint8_t* y, int e, int c) {
  std::vector<std::uint8_t> b(y, y + bytes_of(t));
  oracle_set_code(t, b.data(), e, c);
  std::vector<float> out(std::size_t(block_of(t)));
  pare::ggml::dequantize_row(t, b.data(), out.data(), out.size());
  return out[std::size_t(e)];
}

/// Nearest representable value of element e to x under the block's parameters, found by
/// dequantizing the block with every code; ties keep the stored code, else the smallest.
int oracle_nearest(type t, const std::uint8_t* y, int e, double x, float* value) {
  int best = oracle_get_code(t, y, e);
  float bv = value_with_code(t, y, e, best);
  for (int c = 0; c < code_count(t); ++c) {
    const float v = value_with_code(t, y, e, c);
    if (std::fabs(x - double(v)) < std::fabs(x - double(bv))) {
      best = c;
      bv = v;
    }
  }
  *value = bv;
  return best;
}

bool uses_row_sigma2(type t) { return t == type::q4_0 || t == type::q4_1 || t == type::q5_0 || t == type::q5_1; }

/// The OBS greedy quantizer one column at a time in float64 (GPTQ paper, eq. 2–3): quantize
/// column q to the nearest value its block allows, spread the error over the columns not
/// yet done with (H_F⁻¹)_{:,q} / (H_F⁻¹)_qq, remove q from H_F⁻¹ by Gaussian elimination.
/// Block parameters: ggml's quantizer on the block's current weights when the walk reaches
/// its first column (storage order), or on the original rows up front (act_order). For the
/// formats whose importance weighting takes σ² over the whole row, the block is quantized
/// by gptq_ggml's block helper with the original row's σ² (checked against the golden
/// row quantizer by the diagonal-Hessian test).
std::vector<std::uint8_t> ggml_obs_oracle(const std::vector<float>& w, std::size_t rows, std::size_t k,
                                          const layer_hessian& h, type t, bool act_order, const float* imatrix) {
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
  for (std::size_t j = 0; j < k; ++j) hh[j * k + j] += 0.01 * md;
  std::vector<double> hinv = solver_test::gauss_jordan_inverse(hh, k);
  std::vector<float> w0(w);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < k; ++j)
      if (dead[j]) w0[i * k + j] = 0.0f;
  std::vector<double> ww(w0.begin(), w0.end());
  const std::size_t g = std::size_t(block_of(t)), rb = pare::ggml::row_bytes(t, k), kb = bytes_of(t);
  std::vector<std::uint8_t> out(rows * rb, 0);
  if (act_order)
    for (std::size_t i = 0; i < rows; ++i) pare::ggml::quantize_row(t, &w0[i * k], &out[i * rb], k, imatrix);
  const pare::solvers::detail::gptq_ggml::codec* codec = pare::solvers::detail::gptq_ggml::find_codec(t);
  REQUIRE(codec);
  std::vector<char> done(k, 0);
  for (std::size_t a = 0; a < k; ++a) {
    const std::size_t q = order[a];
    for (std::size_t i = 0; i < rows; ++i) {
      std::uint8_t* blk = &out[i * rb + (q / g) * kb];
      if (!act_order && q % g == 0) {
        std::vector<float> xb(g);
        for (std::size_t t2 = 0; t2 < g; ++t2) xb[t2] = static_cast<float>(ww[i * k + q + t2]);
        const float* qw = imatrix ? imatrix + q : nullptr;
        if (qw && uses_row_sigma2(t))
          pare::solvers::detail::gptq_ggml::quantize_block(*codec, xb.data(), blk, qw,
                                                     pare::ggml::detail::row_sigma2(&w0[i * k], k));
        else
          pare::ggml::quantize_row(t, xb.data(), blk, g, qw);
      }
      float v = 0;
      oracle_set_code(t, blk, int(q % g), oracle_nearest(t, blk, int(q % g), ww[i * k + q], &v));
      const double e = (ww[i * k + q] - double(v)) / hinv[q * k + q];
      for (std::size_t j = 0; j < k; ++j)
        if (!done[j] && j != q) ww[i * k + j] -= e * hinv[j * k + q];
    }
    const double d = hinv[q * k + q];
    std::vector<double> col(k);
    for (std::size_t j = 0; j < k; ++j) col[j] = hinv[j * k + q];
    for (std::size_t r = 0; r < k; ++r)
      for (std::size_t c = 0; c < k; ++c) hinv[r * k + c] -= col[r] * col[c] / d;
    done[q] = 1;
  }
  return out;
}

/// Gaussian weights with a few outliers.
std::vector<float> weights_with_outliers(std::size_t rows, std::size_t k, std::uint64_t seed) {
  std::vector<float> w = pare_test::gaussian(rows * k, seed, 0.05);
  for (std::size_t t = 7; t < w.size(); t += 97) w[t] *= 8.0f;
  return w;
}

std::vector<float> dequantize(type t, const std::vector<std::uint8_t>& bytes, std::size_t rows, std::size_t k) {
  return pare::ggml::ggml_tensor(t, rows, k, bytes).dequantize();
}

std::vector<float> ggml_rtn(type t, const std::vector<float>& w, std::size_t rows, std::size_t k,
                            const std::vector<float>& imatrix) {
  return pare::ggml::quantize(pare::matrix_view<const float>(w.data(), rows, k), t, imatrix).dequantize();
}

/// The result's loss is what it reports and no more than ggml's round-to-nearest; returns GPTQ / RTN.
double check_loss(const std::vector<float>& w, std::size_t rows, std::size_t k, const layer_hessian& h, type t,
                  const std::vector<float>& imatrix) {
  const auto res = pare::solvers::gptq_quantize_ggml(pare::matrix_view<const float>(w.data(), rows, k), h, t, {},
                                                     imatrix.empty() ? nullptr : imatrix.data());
  REQUIRE(res.blocks.size() == rows * pare::ggml::row_bytes(t, k));
  const double l_gptq = solver_test::hessian_loss(w, dequantize(t, res.blocks, rows, k), rows, k, h);
  const double l_rtn = solver_test::hessian_loss(w, ggml_rtn(t, w, rows, k, imatrix), rows, k, h);
  INFO(pare::ggml::to_string(t) << (imatrix.empty() ? "" : " imatrix") << ": GPTQ " << l_gptq << ", RTN " << l_rtn
                                << ", ratio " << l_gptq / l_rtn);
  CHECK(res.error == Approx(l_gptq).epsilon(1e-7));
  CHECK(l_gptq <= l_rtn);
  return l_gptq / l_rtn;
}

}  // namespace

TEST_CASE("GPTQ-ggml's lazy-batch solve writes the bytes of a float64 column-at-a-time OBS oracle, every block format",
          "[solvers][gptq_ggml]") {
  const std::size_t rows = 16, k = 256;
  const layer_hessian h = solver_test::random_hessian(600, k, 21, 0.7, 11, 4, 5.0);
  const std::vector<float> w = weights_with_outliers(rows, k, 22);
  const std::vector<float> imatrix = pare_test::uniform(k, 23, 0.1, 2.0);
  for (type t : all_block_types) {
    struct variant {
      std::size_t block;
      bool act_order, imatrix;
    };
    for (const variant v : {variant{128, false, false}, variant{5, false, false}, variant{1024, false, true},
                            variant{64, true, false}, variant{256, true, true}}) {
      INFO(pare::ggml::to_string(t) << " block " << v.block << (v.act_order ? " act_order" : "")
                                    << (v.imatrix ? " imatrix" : ""));
      pare::solvers::gptq_options opt;
      opt.block_size = v.block;
      opt.act_order = v.act_order;
      const float* qw = v.imatrix ? imatrix.data() : nullptr;
      const auto res =
          pare::solvers::gptq_quantize_ggml(pare::matrix_view<const float>(w.data(), rows, k), h, t, opt, qw);
      REQUIRE(res.dampening_retries == 0);
      const std::vector<std::uint8_t> o = ggml_obs_oracle(w, rows, k, h, t, v.act_order, qw);
      REQUIRE(res.blocks.size() == o.size());
      std::size_t differ = 0;
      for (std::size_t b = 0; b < o.size(); ++b) differ += res.blocks[b] != o[b];
      CHECK(differ == 0);
      CHECK(res.error == Approx(solver_test::hessian_loss(w, dequantize(t, res.blocks, rows, k), rows, k, h)).epsilon(1e-7));
    }
  }
}

TEST_CASE("GPTQ-ggml: a dead input is zeroed and the oracle still agrees", "[solvers][gptq_ggml]") {
  const std::size_t rows = 8, k = 64;
  layer_hessian h = solver_test::random_hessian(300, k, 31, 0.7, 11, 4, 5.0);
  for (std::size_t j = 0; j < k; ++j) h.h[9 * k + j] = h.h[j * k + 9] = 0.0;
  const std::vector<float> w = weights_with_outliers(rows, k, 32);
  for (type t : {type::q4_0, type::q5_1, type::iq4_nl}) {
    INFO(pare::ggml::to_string(t));
    const auto res = pare::solvers::gptq_quantize_ggml(pare::matrix_view<const float>(w.data(), rows, k), h, t);
    CHECK(res.dead_columns == 1);
    CHECK(res.blocks == ggml_obs_oracle(w, rows, k, h, t, false, nullptr));
    CHECK(res.error == Approx(solver_test::hessian_loss(w, dequantize(t, res.blocks, rows, k), rows, k, h)).epsilon(1e-7));
  }
}

TEST_CASE("GPTQ-ggml: the reported loss is the dequantized blocks' loss and below ggml's round-to-nearest (random)",
          "[solvers][gptq_ggml]") {
  const std::size_t rows = 32, k = 512;
  const layer_hessian h = solver_test::random_hessian(1500, k, 41, 0.7, 11, 4, 5.0);
  const std::vector<float> w = weights_with_outliers(rows, k, 42);
  std::vector<float> imatrix(k);
  for (std::size_t j = 0; j < k; ++j) imatrix[j] = float(h.at(j, j) / 2);  // llama.cpp's imatrix: mean x² per input
  for (type t : all_block_types) {
    CHECK(check_loss(w, rows, k, h, t, {}) < 1.0);
    CHECK(check_loss(w, rows, k, h, t, imatrix) < 1.0);
  }
}

TEST_CASE("GPTQ-ggml on stories260K: the reported loss is the blocks' loss and below ggml's RTN on every linear layer",
          "[solvers][gptq_ggml][real_data]") {
  for (const char* f : {"models/stories260K.bin", "models/tok512.bin", "text/tinystories_val_tail.txt"})
    if (!std::ifstream(pare_test::data_path(f)).good()) {
      WARN("skipped: " << pare_test::data_path(f) << " is missing (set PARE_DATA_DIR)");
      return;
    }
  const solver_test::real_calibration rc;
  // Only K = 64 layers (wq, wk, wv, wo, w1, w3) fit the 32-element blocks; w2 has K = 172
  // and no layer fits the 256-element K formats.
  for (type t : {type::q4_0, type::q4_1, type::q5_0, type::q5_1, type::q8_0, type::iq4_nl}) {
    for (bool with_imatrix : {false, true}) {
      double sum_gptq_over_rtn = 0, worst = 0;
      std::size_t layers = 0;
      for (const std::string& name : rc.m.linear_names()) {
        if (name == "output.weight") continue;
        const pare::matrix_view<const float> wv = rc.ck.matrix(name);
        const std::size_t rows = wv.rows(), k = wv.cols();
        if (k % 32 != 0) continue;
        INFO(name);
        const std::vector<float> w = rc.weights(name);
        const layer_hessian h = layer_hessian::from_stats(rc.cal.at(name));
        std::vector<float> imatrix;
        if (with_imatrix)
          for (std::size_t j = 0; j < k; ++j) imatrix.push_back(float(h.at(j, j) / 2));
        const double ratio = check_loss(w, rows, k, h, t, imatrix);
        sum_gptq_over_rtn += ratio;
        worst = std::max(worst, ratio);
        ++layers;
      }
      INFO(pare::ggml::to_string(t) << (with_imatrix ? " imatrix" : "") << ": mean GPTQ/RTN loss over " << layers
                                    << " layers " << sum_gptq_over_rtn / double(layers) << ", worst " << worst);
      CHECK(layers == 30);
      CHECK(worst <= 1.0);
    }
  }
}

TEST_CASE("GPTQ-ggml with a diagonal Hessian is nearest rounding under ggml's own parameters",
          "[solvers][gptq_ggml]") {
  // With H diagonal, U is diagonal and no error propagates: every block's parameters are
  // those of ggml's quantizer on the original weights (compared byte for byte with the
  // golden quantize_row), and each code is the nearest value under them. ggml picks its
  // codes with the scale before fp16 rounding (32-element formats), so there a code may
  // differ from ggml's, and only where it is strictly closer; the K formats' codes come
  // from the stored scales in ggml too, and all their bytes are ggml's.
  const std::size_t rows = 12, k = 512;
  std::vector<float> w = weights_with_outliers(rows, k, 51);
  // Degenerate blocks, where every code gives the same value and ggml's code is kept: all
  // zero (d = 0) and constant (Q4_1's d = 0, m = x; zero sub-block scales in K formats).
  std::fill(w.begin() + 2 * k, w.begin() + 2 * k + 256, 0.0f);
  std::fill(w.begin() + 5 * k + 256, w.begin() + 6 * k, 0.3f);
  const std::vector<float> imatrix = pare_test::uniform(k, 52, 0.1, 2.0);
  std::vector<double> eye(k * k, 0.0), diag(k * k, 0.0);
  const std::vector<float> dv = pare_test::uniform(k, 53, 0.5, 3.0);
  for (std::size_t j = 0; j < k; ++j) {
    eye[j * k + j] = 2.5;
    diag[j * k + j] = dv[j];
  }
  const layer_hessian h_eye = layer_hessian::from_matrix(k, eye), h_diag = layer_hessian::from_matrix(k, diag);
  for (type t : all_block_types) {
    for (bool with_imatrix : {false, true}) {
      for (bool act_order : {false, true}) {
        const layer_hessian& h = act_order ? h_diag : h_eye;
        INFO(pare::ggml::to_string(t) << (with_imatrix ? " imatrix" : "") << (act_order ? " act_order" : ""));
        const std::vector<float> qw = with_imatrix ? imatrix : std::vector<float>{};
        pare::solvers::gptq_options opt;
        opt.act_order = act_order;
        const auto res = pare::solvers::gptq_quantize_ggml(pare::matrix_view<const float>(w.data(), rows, k), h, t, opt,
                                                           with_imatrix ? imatrix.data() : nullptr);
        const auto gold = pare::ggml::quantize(pare::matrix_view<const float>(w.data(), rows, k), t, qw);
        const std::size_t kb = bytes_of(t), nblocks = rows * k / std::size_t(block_of(t));
        std::size_t params_differ = 0, codes_differ = 0, not_closer = 0;
        for (std::size_t b = 0; b < nblocks; ++b) {
          std::vector<std::uint8_t> ours(&res.blocks[b * kb], &res.blocks[b * kb] + kb);
          std::vector<std::uint8_t> theirs(&gold.bytes()[b * kb], &gold.bytes()[b * kb] + kb);
          for (int e = 0; e < block_of(t); ++e) {
            const int c_ours = oracle_get_code(t, ours.data(), e), c_gold = oracle_get_code(t, theirs.data(), e);
            if (c_ours == c_gold) continue;
            ++codes_differ;
            const double x = w[b * std::size_t(block_of(t)) + std::size_t(e)];
            not_closer += !(std::fabs(x - value_with_code(t, theirs.data(), e, c_ours)) <
                            std::fabs(x - value_with_code(t, theirs.data(), e, c_gold)));
          }
          clear_codes(t, ours.data());
          clear_codes(t, theirs.data());
          params_differ += ours != theirs;
        }
        INFO(codes_differ << " of " << rows * k << " codes differ from ggml's (strictly closer)");
        CHECK(params_differ == 0);
        CHECK(not_closer == 0);
        CHECK(codes_differ * 50 < rows * k);
        if (block_of(t) == 256) CHECK(res.blocks == gold.bytes());  // K formats requantize with the stored scales
        CHECK(res.error <= solver_test::hessian_loss(w, gold.dequantize(), rows, k, h) * (1 + 1e-9));
      }
    }
  }
}

TEST_CASE("GPTQ-ggml: the code layout the oracle writes is the one ggml's dequantizer reads", "[solvers][gptq_ggml]") {
  // Changing one element's code changes that element's dequantized value and no other, and
  // its values rise with the code (when the element's scale is positive).
  const std::vector<float> x = pare_test::gaussian(256, 61);
  for (type t : all_block_types) {
    INFO(pare::ggml::to_string(t));
    const std::size_t g = std::size_t(block_of(t));
    std::vector<std::uint8_t> y(bytes_of(t));
    pare::ggml::quantize_row(t, x.data(), y.data(), g, nullptr);
    std::vector<float> base(g), now(g);
    pare::ggml::dequantize_row(t, y.data(), base.data(), g);
    std::size_t bad = 0;
    for (int e = 0; e < int(g); e += 3) {
      float prev = 0;
      bool monotone = true, increasing = true;
      for (int c = 0; c < code_count(t); ++c) {
        std::vector<std::uint8_t> z(y);
        oracle_set_code(t, z.data(), e, c);
        pare::ggml::dequantize_row(t, z.data(), now.data(), g);
        for (std::size_t j = 0; j < g; ++j) bad += int(j) != e && now[j] != base[j];
        if (c == 1) increasing = now[std::size_t(e)] >= prev;
        if (c > 0) monotone = monotone && (increasing ? now[std::size_t(e)] >= prev : now[std::size_t(e)] <= prev);
        prev = now[std::size_t(e)];
        CHECK(pare::solvers::detail::gptq_ggml::get_code(t, z.data(), e) == c);
      }
      CHECK(monotone);
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("GPTQ-ggml: bad arguments are errors naming what was wrong, and nothing is modified", "[solvers][gptq_ggml]") {
  const std::size_t rows = 4, k = 64;
  const layer_hessian h = solver_test::random_hessian(200, k, 71, 0.7, 11, 4, 5.0);
  std::vector<float> w = weights_with_outliers(rows, k, 72);
  std::vector<float> imatrix = pare_test::uniform(k, 73, 0.1, 1.0);
  const std::vector<float> w_copy = w, im_copy = imatrix;
  const layer_hessian h_copy = h;
  const pare::matrix_view<const float> wv(w.data(), rows, k);
  using pare::solvers::gptq_quantize_ggml;

  CHECK_THROWS_AS(gptq_quantize_ggml(wv, h, type::f16), pare::argument_error);
  CHECK_THROWS_WITH(gptq_quantize_ggml(wv, h, type::bf16), Catch::Contains("'type'") && Catch::Contains("bf16"));
  CHECK_THROWS_WITH(gptq_quantize_ggml(wv, h, static_cast<type>(99)), Catch::Contains("id 99"));
  // K = 64 is no multiple of the K formats' 256; 48 none of 32.
  CHECK_THROWS_AS(gptq_quantize_ggml(wv, h, type::q4_K), pare::shape_error);
  CHECK_THROWS_WITH(gptq_quantize_ggml(wv, h, type::q6_K), Catch::Contains("256") && Catch::Contains("got [4, 64]"));
  const pare::matrix_view<const float> w48(w.data(), rows, 48, 64, 1);
  const layer_hessian h48 = solver_test::random_hessian(200, 48, 74, 0.7, 11, 4, 5.0);
  CHECK_THROWS_AS(gptq_quantize_ggml(w48, h48, type::q4_0), pare::shape_error);
  const layer_hessian h32 = solver_test::random_hessian(200, 32, 75, 0.7, 11, 4, 5.0);
  CHECK_THROWS_WITH(gptq_quantize_ggml(wv, h32, type::q4_0), Catch::Contains("'h'") && Catch::Contains("64 x 64"));
  CHECK_THROWS_AS(gptq_quantize_ggml(pare::matrix_view<const float>(w.data(), 0, k), h, type::q4_0), pare::shape_error);
  pare::solvers::gptq_options opt;
  opt.block_size = 0;
  CHECK_THROWS_WITH(gptq_quantize_ggml(wv, h, type::q4_0, opt), Catch::Contains("block_size"));

  imatrix[5] = -1.0f;
  CHECK_THROWS_WITH(gptq_quantize_ggml(wv, h, type::iq4_nl, {}, imatrix.data()),
                    Catch::Contains("'imatrix'") && Catch::Contains("column 5"));
  imatrix[5] = std::nanf("");
  CHECK_THROWS_AS(gptq_quantize_ggml(wv, h, type::q4_1, {}, imatrix.data()), pare::value_error);
  CHECK(std::isnan(imatrix[5]));
  imatrix[5] = im_copy[5];

  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    std::vector<float> wb(w);
    wb[37] = bad;
    const std::vector<float> wb_copy = wb;
    CHECK_THROWS_WITH(gptq_quantize_ggml(pare::matrix_view<const float>(wb.data(), rows, k), h, type::q8_0),
                      Catch::Contains("'w'") && Catch::Contains("(0, 37)"));
    CHECK(std::equal(wb.begin(), wb.end(), wb_copy.begin(), [](float a, float b) {
      return (std::isnan(a) && std::isnan(b)) || a == b;
    }));
  }
  CHECK(w == w_copy);
  CHECK(imatrix == im_copy);
  CHECK(h.h == h_copy.h);
  try {
    gptq_quantize_ggml(wv, h, type::f16);
  } catch (const pare::error& e) {
    CHECK(std::string(e.what()).find("pare::solvers::gptq_quantize_ggml") != std::string::npos);
  }
}
