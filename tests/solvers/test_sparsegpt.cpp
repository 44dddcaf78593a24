// SparseGPT against a float64 OBS oracle written here (explicit inverses, Gaussian elimination per column), exact sparsity and N:M patterns, its loss against magnitude's and Wanda's on stories260K, bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "pare/model/calibration.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/prune/magnitude.hpp"
#include "pare/prune/mask.hpp"
#include "pare/prune/nm.hpp"
#include "pare/prune/wanda.hpp"
#include "pare/solvers/sparsegpt.hpp"
#include "pare_test_support.hpp"
#include "solver_test_support.hpp"

namespace {

using pare::solvers::layer_hessian;
using solver_test::gauss_jordan_inverse;
using solver_test::random_hessian;
using pare::solvers::sparsegpt_options;
using pare::solvers::sparsegpt_result;

/// H with input `j` never firing (its row and column zero).
layer_hessian kill_input(layer_hessian h, std::size_t j) {
  for (std::size_t t = 0; t < h.n; ++t) h.h[j * h.n + t] = h.h[t * h.n + j] = 0.0;
  return h;
}

/// What the oracle is asked to do (the solver's options, spelled out).
struct spec {
  double sparsity = 0.5;
  std::size_t n = 0, m = 0, block = 128;
  const pare::quant_config* quant = nullptr;
};

struct sparsegpt_oracle_out {
  std::vector<double> w;           // rows × k, the result
  std::vector<std::uint8_t> mask;  // 1 = kept
  std::vector<int> codes;
};

/// The first `count` entries of `cands` (score, flat index) in pare's pruning order: lowest
/// score first, equal scores the higher index first. A full sort (the solver uses nth_element).
std::vector<std::size_t> lowest(std::vector<std::pair<double, std::size_t>> cands, std::size_t count) {
  std::sort(cands.begin(), cands.end(), [](const auto& a, const auto& b) {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  });
  std::vector<std::size_t> out;
  for (std::size_t t = 0; t < std::min(count, cands.size()); ++t) out.push_back(cands[t].second);
  return out;
}

/// SparseGPT as OBS in the paper's words, one column at a time in float64: the saliency of a
/// free weight w_j is w_j² / [(H_F)⁻¹]_jj², F = {j, …, K−1} (taken here by inverting the
/// trailing block of H' explicitly); masks are chosen as sparsegpt.hpp documents (block of
/// all rows, or each row's group of m); the column's error e = (w_j − q_j)/[H_F⁻¹]_jj is spread
/// over the free columns with H_F⁻¹[:, j], then j leaves H_F⁻¹ by one step of Gaussian
/// elimination. Quantization (per_group, dynamic) as gptq's oracle: the group's current
/// weights through pare::quantize with one parameter set per row, values rounded by hand.
sparsegpt_oracle_out sparsegpt_obs_oracle(const std::vector<float>& w, std::size_t rows, std::size_t k,
                                          const layer_hessian& h, const spec& sp, double damp) {
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
  // Saliency denominators: [(H'_F)⁻¹]_jj with F = {j..K−1}, by explicit inversion.
  std::vector<double> dj(k);
  for (std::size_t j = 0; j < k; ++j) {
    const std::size_t nf = k - j;
    std::vector<double> sub(nf * nf);
    for (std::size_t a = 0; a < nf; ++a)
      for (std::size_t b = 0; b < nf; ++b) sub[a * nf + b] = hh[(j + a) * k + (j + b)];
    dj[j] = std::sqrt(gauss_jordan_inverse(sub, nf)[0]);  // U_jj
  }
  std::vector<double> hinv = gauss_jordan_inverse(hh, k);
  sparsegpt_oracle_out out;
  out.w.assign(rows * k, 0.0);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < k; ++j) out.w[i * k + j] = dead[j] ? 0.0 : double(w[i * k + j]);
  out.mask.assign(rows * k, 1);
  out.codes.assign(rows * k, 0);
  std::vector<double>& ww = out.w;
  const double inf = std::numeric_limits<double>::infinity();
  auto sal = [&](std::size_t i, std::size_t j) { return dead[j] ? -inf : ww[i * k + j] * ww[i * k + j] / (dj[j] * dj[j]); };

  std::size_t ndead = 0;
  for (char c : dead) ndead += c;
  const std::size_t live = k - ndead;
  const std::size_t z_total = pare::prune::pruned_count(sp.sparsity, rows * k);
  const std::size_t z_live = z_total > rows * ndead ? z_total - rows * ndead : 0;
  auto share = [&](std::size_t j) {  // ⌊R · (live columns before j) / live⌋
    std::size_t lb = 0;
    for (std::size_t t = 0; t < j; ++t) lb += !dead[t];
    return live ? z_live * lb / live : std::size_t(0);
  };
  const pare::quant_config* cfg = sp.quant;
  const std::size_t g = cfg && cfg->gran.kind == pare::granularity_kind::per_group ? cfg->gran.group_size : 0;
  std::vector<float> scales;
  std::vector<int> zeros;
  if (cfg) {
    scales.assign(rows, 1.0f);
    zeros.assign(rows, 0);
  }
  pare::quant_config row_cfg;
  if (cfg) {
    row_cfg = *cfg;
    row_cfg.gran = pare::granularity::channel(0);
  }
  std::vector<char> done(k, 0);
  for (std::size_t j = 0; j < k; ++j) {
    if (sp.m == 0 && j % sp.block == 0) {
      const std::size_t j2 = std::min(k, j + sp.block);
      std::vector<std::pair<double, std::size_t>> cands;
      std::size_t dead_here = 0;
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t c = j; c < j2; ++c) cands.emplace_back(sal(i, c), i * k + c);
      for (std::size_t c = j; c < j2; ++c) dead_here += dead[c];
      for (std::size_t f : lowest(cands, rows * dead_here + share(j2) - share(j))) out.mask[f] = 0;
    }
    if (sp.m > 0 && j % sp.m == 0)
      for (std::size_t i = 0; i < rows; ++i) {
        std::vector<std::pair<double, std::size_t>> cands;
        for (std::size_t c = j; c < j + sp.m; ++c) cands.emplace_back(sal(i, c), i * k + c);
        for (std::size_t f : lowest(cands, sp.m - sp.n)) out.mask[f] = 0;
      }
    if (g && j % g == 0)
      for (std::size_t i = 0; i < rows; ++i) {
        std::vector<float> grp(g);
        for (std::size_t t = 0; t < g; ++t) grp[t] = static_cast<float>(ww[i * k + j + t]);
        const pare::quantized_tensor qg = pare::quantize(pare::matrix_view<const float>(grp.data(), 1, g), row_cfg);
        scales[i] = qg.scales[0];
        zeros[i] = qg.zero_points[0];
      }
    const double d = hinv[j * k + j];
    for (std::size_t i = 0; i < rows; ++i) {
      const bool kept = out.mask[i * k + j] != 0;
      double q = kept ? ww[i * k + j] : 0.0;
      if (cfg) {
        const float s = scales[i];
        const int z = zeros[i];
        int code = z;  // zero's code
        if (kept) {
          float v = static_cast<float>(ww[i * k + j]) * (1.0f / s);
          v = std::min(std::max(v, float(cfg->format.qmin() - z)), float(cfg->format.qmax() - z));
          code = int(std::nearbyint(v)) + z;
        }
        out.codes[i * k + j] = code;
        q = double(float(code - z) * s);
      }
      const double e = (ww[i * k + j] - q) / d;
      ww[i * k + j] = q;
      for (std::size_t c = 0; c < k; ++c)
        if (!done[c] && c != j) ww[i * k + c] -= e * hinv[c * k + j];
    }
    // H_F⁻¹ without j: Gaussian elimination of row/column j.
    std::vector<double> col(k);
    for (std::size_t t = 0; t < k; ++t) col[t] = hinv[t * k + j];
    for (std::size_t r = 0; r < k; ++r)
      for (std::size_t c = 0; c < k; ++c) hinv[r * k + c] -= col[r] * col[c] / d;
    done[j] = 1;
  }
  return out;
}

sparsegpt_result run(const std::vector<float>& w, std::size_t rows, std::size_t k, const layer_hessian& h,
                     const spec& sp) {
  sparsegpt_options opt;
  opt.sparsity = sp.sparsity;
  opt.n = sp.n;
  opt.m = sp.m;
  opt.block_size = sp.block;
  opt.quant = sp.quant;
  return pare::solvers::sparsegpt_prune(pare::matrix_view<const float>(w.data(), rows, k), h, opt);
}

std::string describe(const spec& sp) {
  std::ostringstream os;
  if (sp.m) os << sp.n << ":" << sp.m;
  else os << "sparsity " << sp.sparsity;
  os << " block " << sp.block;
  if (sp.quant) os << " + " << sp.quant->str();
  return os.str();
}

/// Mask, weights (1e-5 of the largest weight) and codes of the solver equal the oracle's;
/// its reported error equals the float64 loss of what it returns.
void check_sparsegpt_against_oracle(const std::vector<float>& w, std::size_t rows, std::size_t k,
                                    const layer_hessian& h, const spec& sp) {
  INFO(describe(sp));
  const sparsegpt_result res = run(w, rows, k, h, sp);
  REQUIRE(res.dampening_retries == 0);
  const sparsegpt_oracle_out o = sparsegpt_obs_oracle(w, rows, k, h, sp, 0.01);
  std::size_t mask_diff = 0, code_diff = 0, w_diff = 0;
  double wmax = 0;
  for (float x : w) wmax = std::max(wmax, double(std::fabs(x)));
  for (std::size_t t = 0; t < rows * k; ++t) {
    mask_diff += res.mask[t] != o.mask[t];
    w_diff += std::fabs(double(res.weight[t]) - o.w[t]) > 1e-5 * wmax;
    if (sp.quant) code_diff += res.quantized->code(t / k, t % k) != o.codes[t];
  }
  CHECK(mask_diff == 0);
  CHECK(w_diff == 0);
  CHECK(code_diff == 0);
  CHECK(res.error == Approx(solver_test::hessian_loss(w, res.weight, rows, k, h)).epsilon(1e-6));
}

pare::prune::mask to_mask(const std::vector<std::uint8_t>& flags, std::size_t rows, std::size_t k) {
  pare::prune::mask m(rows, k, true);
  std::copy(flags.begin(), flags.end(), m.data());
  return m;
}

std::size_t count_zeros(const std::vector<float>& v) {
  return static_cast<std::size_t>(std::count(v.begin(), v.end(), 0.0f));
}

std::size_t count_pruned(const std::vector<std::uint8_t>& m) {
  return static_cast<std::size_t>(std::count(m.begin(), m.end(), std::uint8_t(0)));
}

/// W with the mask's pruned entries zeroed, nothing else changed.
std::vector<float> masked(const std::vector<float>& w, const pare::prune::mask& m) {
  std::vector<float> out(w);
  for (std::size_t t = 0; t < out.size(); ++t)
    if (!m.data()[t]) out[t] = 0.0f;
  return out;
}

}  // namespace

TEST_CASE("SparseGPT's lazy-batch solve equals a float64 column-at-a-time OBS oracle on random Hessians",
          "[solvers][sparsegpt]") {
  const std::size_t rows = 24, k = 96;
  const layer_hessian h = random_hessian(200, k, 21);
  const std::vector<float> w = pare_test::gaussian(rows * k, 22, 0.05);
  const pare::quant_config g32a = pare::quant_config::parse("int4:g32:asym");
  const pare::quant_config g32s = pare::quant_config::parse("int4:g32:sym");
  const pare::quant_config g16a = pare::quant_config::parse("int3:g16:asym");
  for (std::size_t block : {std::size_t(128), std::size_t(32), std::size_t(8)}) {
    check_sparsegpt_against_oracle(w, rows, k, h, spec{0.5, 0, 0, block, nullptr});
    check_sparsegpt_against_oracle(w, rows, k, h, spec{0.5, 2, 4, block, nullptr});
    check_sparsegpt_against_oracle(w, rows, k, h, spec{0.5, 1, 4, block, nullptr});
  }
  check_sparsegpt_against_oracle(w, rows, k, h, spec{0.37, 0, 0, 40, nullptr});  // the last block is partial
  check_sparsegpt_against_oracle(w, rows, k, h, spec{0.9, 0, 0, 24, nullptr});
  check_sparsegpt_against_oracle(w, rows, k, h, spec{0.5, 4, 8, 16, nullptr});
  for (std::size_t block : {std::size_t(128), std::size_t(32)}) {
    check_sparsegpt_against_oracle(w, rows, k, h, spec{0.5, 0, 0, block, &g32a});
    check_sparsegpt_against_oracle(w, rows, k, h, spec{0.5, 2, 4, block, &g32a});
    check_sparsegpt_against_oracle(w, rows, k, h, spec{0.5, 0, 0, block, &g32s});
  }
  check_sparsegpt_against_oracle(w, rows, k, h, spec{0.6, 0, 0, 48, &g16a});
  const pare::quant_config g32h = pare::quant_config::parse("int5:g32:asym:f16scale");
  check_sparsegpt_against_oracle(w, rows, k, h, spec{0.5, 0, 0, 32, &g32h});
}

TEST_CASE("SparseGPT: a dead input is zeroed and counts towards the sparsity; the oracle agrees", "[solvers][sparsegpt]") {
  const std::size_t rows = 12, k = 64;
  const layer_hessian h = kill_input(kill_input(random_hessian(200, k, 31), 5), 40);
  const std::vector<float> w = pare_test::gaussian(rows * k, 32, 0.1);
  const pare::quant_config g16 = pare::quant_config::parse("int4:g16:asym");
  check_sparsegpt_against_oracle(w, rows, k, h, spec{0.5, 0, 0, 16, nullptr});
  check_sparsegpt_against_oracle(w, rows, k, h, spec{0.5, 2, 4, 16, nullptr});
  check_sparsegpt_against_oracle(w, rows, k, h, spec{0.3, 0, 0, 32, &g16});
  const sparsegpt_result res = run(w, rows, k, h, spec{0.5, 0, 0, 16, nullptr});
  CHECK(res.dead_columns == 2);
  for (std::size_t i = 0; i < rows; ++i) {
    CHECK(res.weight[i * k + 5] == 0.0f);
    CHECK(res.weight[i * k + 40] == 0.0f);
    CHECK(res.mask[i * k + 5] == 0);
  }
  CHECK(count_pruned(res.mask) == rows * k / 2);
  CHECK(count_zeros(res.weight) == rows * k / 2);
  // More dead entries than the sparsity asks for: exactly the dead ones are pruned.
  const sparsegpt_result r1 = run(w, rows, k, h, spec{0.01, 0, 0, 16, nullptr});
  CHECK(count_pruned(r1.mask) == 2 * rows);
  // N:M: dead inputs are pruned first, the pattern stays exact.
  const sparsegpt_result r2 = run(w, rows, k, h, spec{0.5, 3, 4, 16, nullptr});
  CHECK(pare::prune::is_nm(to_mask(r2.mask, rows, k), 3, 4));
  CHECK(r2.mask[5] == 0);
  CHECK(r2.mask[40] == 0);
}

TEST_CASE("SparseGPT prunes exactly floor(sparsity * rows * K) weights, and exact N:M patterns", "[solvers][sparsegpt]") {
  const std::size_t rows = 24;
  for (std::size_t k : {std::size_t(96), std::size_t(100)}) {
    const layer_hessian h = random_hessian(300, k, 40 + k);
    const std::vector<float> w = pare_test::gaussian(rows * k, 41, 0.05);
    const std::size_t total = rows * k;
    for (std::size_t pct : {0, 1, 10, 30, 37, 50, 77, 90, 99})
      for (std::size_t block : {std::size_t(128), std::size_t(32), std::size_t(7), std::size_t(1)}) {
        INFO("K " << k << " sparsity " << pct << "% block " << block);
        const sparsegpt_result res = run(w, rows, k, h, spec{double(pct) / 100.0, 0, 0, block, nullptr});
        const std::size_t expect = total * pct / 100;  // ⌊s·rows·K⌋, exact for these sizes
        CHECK(count_pruned(res.mask) == expect);
        CHECK(count_zeros(res.weight) == expect);  // random kept weights are never exactly zero
        for (std::size_t t = 0; t < total; ++t)
          if (!res.mask[t]) REQUIRE(res.weight[t] == 0.0f);
      }
    for (auto nm : {std::make_pair(2, 4), std::make_pair(1, 4), std::make_pair(4, 4), std::make_pair(3, 4)})
      for (std::size_t block : {std::size_t(128), std::size_t(4), std::size_t(20)}) {
        const std::size_t n = std::size_t(nm.first), m = std::size_t(nm.second);
        INFO("K " << k << " " << n << ":" << m << " block " << block);
        const sparsegpt_result res = run(w, rows, k, h, spec{0.5, n, m, block, nullptr});
        CHECK(pare::prune::is_nm(to_mask(res.mask, rows, k), n, m));
        CHECK(pare::prune::is_nm_sparse(pare::matrix_view<const float>(res.weight.data(), rows, k), n, m));
        CHECK(count_zeros(res.weight) == total / m * (m - n));
      }
  }
  // 8:16 on a wider matrix, with int4 g32 quantization of the survivors.
  const std::size_t k = 128;
  const layer_hessian h = random_hessian(300, k, 50);
  const std::vector<float> w = pare_test::gaussian(rows * k, 51, 0.05);
  const pare::quant_config cfg = pare::quant_config::parse("int4:g32:asym");
  const sparsegpt_result res = run(w, rows, k, h, spec{0.5, 8, 16, 64, &cfg});
  CHECK(pare::prune::is_nm(to_mask(res.mask, rows, k), 8, 16));
  CHECK(pare::prune::is_nm_sparse(pare::matrix_view<const float>(res.weight.data(), rows, k), 8, 16));
}

TEST_CASE("SparseGPT with H = c·I is magnitude pruning: equals pare::prune's masks, ties included", "[solvers][sparsegpt]") {
  // With a multiple of the identity nothing is propagated (U is diagonal) and every U_jj is
  // equal, so the saliency ranks |w|; one block of all columns is pare's global unstructured
  // mask. Integer-valued weights make ties everywhere: both sides prune the higher index first.
  const std::size_t rows = 10, k = 32;
  std::vector<double> eye(k * k, 0.0);
  for (std::size_t j = 0; j < k; ++j) eye[j * k + j] = 3.0;
  const layer_hessian h = layer_hessian::from_matrix(k, eye);
  std::vector<float> w = pare_test::uniform(rows * k, 90, -3.0, 3.0);
  for (float& x : w) x = std::round(x);
  const pare::prune::score_matrix mag = pare::prune::magnitude{}(pare::matrix_view<const float>(w.data(), rows, k));
  for (std::size_t pct : {10, 25, 50, 90}) {
    INFO(pct << "%");
    const double s = double(pct) / 100.0;
    const sparsegpt_result res = run(w, rows, k, h, spec{s, 0, 0, k, nullptr});
    const pare::prune::mask want = pare::prune::unstructured_mask(mag, s, pare::prune::scope::global);
    CHECK(to_mask(res.mask, rows, k) == want);
    CHECK(res.weight == masked(w, want));
  }
  for (auto nm : {std::make_pair(2, 4), std::make_pair(1, 4), std::make_pair(5, 8)}) {
    const std::size_t n = std::size_t(nm.first), m = std::size_t(nm.second);
    INFO(n << ":" << m);
    const sparsegpt_result res = run(w, rows, k, h, spec{0.5, n, m, 16, nullptr});
    const pare::prune::mask want = pare::prune::nm_mask(mag, n, m);
    CHECK(to_mask(res.mask, rows, k) == want);
    CHECK(res.weight == masked(w, want));
  }
  // All equal: the last entries in row-major order go first.
  const std::vector<float> ones(4 * 8, 1.0f);
  std::vector<double> eye8(64, 0.0);
  for (std::size_t j = 0; j < 8; ++j) eye8[j * 8 + j] = 1.0;
  const sparsegpt_result r = run(ones, 4, 8, layer_hessian::from_matrix(8, eye8), spec{0.5, 0, 0, 8, nullptr});
  for (std::size_t t = 0; t < 32; ++t) CHECK(int(r.mask[t]) == int(t < 16));
}

TEST_CASE("SparseGPT per_row: H = c·I gives pare's per-row magnitude mask; every row prunes exactly floor(s·K)",
          "[solvers][sparsegpt]") {
  const std::size_t rows = 10, k = 32;
  std::vector<double> eye(k * k, 0.0);
  for (std::size_t j = 0; j < k; ++j) eye[j * k + j] = 3.0;
  std::vector<float> w = pare_test::uniform(rows * k, 91, -3.0, 3.0);
  for (float& x : w) x = std::round(x);
  const pare::prune::score_matrix mag = pare::prune::magnitude{}(pare::matrix_view<const float>(w.data(), rows, k));
  sparsegpt_options opt;
  opt.per_row = true;
  for (std::size_t pct : {10, 25, 50, 90}) {
    INFO(pct << "%");
    opt.sparsity = double(pct) / 100.0;
    opt.block_size = k;
    const sparsegpt_result res =
        pare::solvers::sparsegpt_prune(pare::matrix_view<const float>(w.data(), rows, k), layer_hessian::from_matrix(k, eye), opt);
    const pare::prune::mask want = pare::prune::unstructured_mask(mag, opt.sparsity, pare::prune::scope::per_row);
    CHECK(to_mask(res.mask, rows, k) == want);
    CHECK(res.weight == masked(w, want));
  }
  // A real Hessian over several blocks: the count per row is exact.
  const std::size_t n = 200, kk = 96;
  const std::vector<float> x = pare_test::uniform(n * kk, 92, -1.0, 1.0);
  std::vector<double> xtx(kk * kk, 0.0);
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t i = 0; i < kk; ++i)
      for (std::size_t j = 0; j < kk; ++j) xtx[i * kk + j] += 2.0 * double(x[t * kk + i]) * double(x[t * kk + j]) / double(n);
  const std::vector<float> w2 = pare_test::uniform(24 * kk, 93, -1.0, 1.0);
  for (double sp : {0.3, 0.5, 0.7}) {
    opt.sparsity = sp;
    opt.block_size = 32;
    const sparsegpt_result res = pare::solvers::sparsegpt_prune(pare::matrix_view<const float>(w2.data(), 24, kk),
                                                                layer_hessian::from_matrix(kk, xtx), opt);
    for (std::size_t r = 0; r < 24; ++r) {
      std::size_t z = 0;
      for (std::size_t j = 0; j < kk; ++j) z += res.mask[r * kk + j] == 0;
      CHECK(z == std::size_t(std::floor(sp * double(kk) + 1e-12)));
    }
  }
}

TEST_CASE("SparseGPT joint with quantization: the quantized tensor dequantizes to the weights, pruned codes are zero",
          "[solvers][sparsegpt]") {
  const std::size_t rows = 16, k = 64;
  const layer_hessian h = random_hessian(200, k, 60);
  const std::vector<float> w = pare_test::gaussian(rows * k, 61, 0.05);
  for (const char* qs : {"int4:g32:asym", "int4:g32:sym", "uint4:g16:sym", "uint3:g32:asym", "int8:per_channel:asym",
                         "int4:per_tensor:sym", "int4:g64:asym:mse", "int5:g32:asym:f16scale", "int6:g16:sym",
                         "uint7:g32:asym:f16scale"}) {
    INFO(qs);
    const pare::quant_config cfg = pare::quant_config::parse(qs);
    for (const spec& sp : {spec{0.5, 0, 0, 64, &cfg}, spec{0.5, 2, 4, 64, &cfg}}) {
      const sparsegpt_result res = run(w, rows, k, h, sp);
      REQUIRE(res.quantized.has_value());
      if (cfg.f16_scale)  // the joint solve's group scales are stored halves
        for (float sc : res.quantized->scales) CHECK(pare::fp16_to_float(pare::float_to_fp16(sc)) == sc);
      const auto deq = res.quantized->dequantize();
      std::size_t diff = 0;
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < k; ++j) {
          diff += deq(i, j) != res.weight[i * k + j];
          if (!res.mask[i * k + j]) {
            CHECK(res.quantized->value(i, j) == 0.0f);
            CHECK(res.quantized->code(i, j) == res.quantized->params_at(i, j).zero_point);
          }
        }
      CHECK(diff == 0);
      CHECK(count_pruned(res.mask) == rows * k / 2);
      CHECK(res.error == Approx(solver_test::hessian_loss(w, res.weight, rows, k, h)).epsilon(1e-6));
    }
  }
}

TEST_CASE("SparseGPT's reported error equals an independent float64 tr(dW H dW^T), damped or not",
          "[solvers][sparsegpt]") {
  const std::size_t rows = 20, k = 48;
  const layer_hessian h = random_hessian(150, k, 70);
  const std::vector<float> w = pare_test::gaussian(rows * k, 71, 0.2);
  for (const spec& sp : {spec{0.5, 0, 0, 16, nullptr}, spec{0.2, 0, 0, 128, nullptr}, spec{0.5, 2, 4, 16, nullptr}}) {
    INFO(describe(sp));
    const sparsegpt_result res = run(w, rows, k, h, sp);
    CHECK(res.error > 0.0);
    CHECK(res.error == Approx(solver_test::hessian_loss(w, res.weight, rows, k, h)).epsilon(1e-7));
    // Pruning without the update (the same mask) costs more.
    CHECK(res.error < solver_test::hessian_loss(w, masked(w, to_mask(res.mask, rows, k)), rows, k, h));
  }
  // Rank 4 (< K): not positive definite without dampening; more is added and reported.
  std::vector<double> low(k * k, 0.0);
  const std::vector<float> v = pare_test::gaussian(4 * k, 72);
  for (std::size_t r = 0; r < 4; ++r)
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t j = 0; j < k; ++j) low[i * k + j] += double(v[r * k + i]) * v[r * k + j];
  const layer_hessian hl = layer_hessian::from_matrix(k, low);
  sparsegpt_options opt;
  opt.hessian.dampening = 0.0;
  const auto r2 = pare::solvers::sparsegpt_prune(pare::matrix_view<const float>(w.data(), rows, k), hl, opt);
  CHECK(r2.dampening_retries >= 1);
  CHECK(r2.dampening > 0.0);
  CHECK(r2.error == Approx(solver_test::hessian_loss(w, r2.weight, rows, k, hl)).epsilon(1e-6).margin(1e-9));
  CHECK(count_pruned(r2.mask) == rows * k / 2);
}

TEST_CASE("SparseGPT on stories260K: equals the oracle on real Hessians, exact sparsity, and a lower loss than "
          "magnitude and Wanda on every linear layer",
          "[solvers][sparsegpt][real_data]") {
  const std::string model_path = pare_test::data_path("models/stories260K.bin");
  if (!std::ifstream(model_path).good()) {
    WARN("skipped: " << model_path << " not found (set PARE_DATA_DIR)");
    return;
  }
  const solver_test::real_calibration rc;
  std::size_t layers = 0;
  double worst_mag[2] = {0, 0}, worst_wanda[2] = {0, 0}, sum_mag[2] = {0, 0}, sum_wanda[2] = {0, 0};
  std::ostringstream table;
  for (const std::string& name : rc.m.linear_names()) {
    if (name == "output.weight") continue;
    INFO(name);
    const pare::matrix_view<const float> wv = rc.ck.matrix(name);
    const std::size_t rows = wv.rows(), k = wv.cols();
    const std::vector<float> w = rc.weights(name);
    const layer_hessian h = layer_hessian::from_stats(rc.cal.at(name));
    // Wanda's ‖x_j‖₂ = √(XᵀX)_jj = √(H_jj·n/2): the constant factor does not change a ranking.
    std::vector<double> norms(k);
    for (std::size_t j = 0; j < k; ++j) norms[j] = std::sqrt(h.at(j, j));
    const pare::prune::score_matrix mag = pare::prune::magnitude{}(wv);
    const pare::prune::score_matrix wan = pare::prune::wanda(norms)(wv);
    table << name << " " << rows << "x" << k;
    for (int mode = 0; mode < 2; ++mode) {
      const spec sp = mode == 0 ? spec{0.5, 0, 0, 128, nullptr} : spec{0.5, 2, 4, 128, nullptr};
      INFO(describe(sp));
      const sparsegpt_result res = run(w, rows, k, h, sp);
      const pare::prune::mask mm = mode == 0 ? pare::prune::unstructured_mask(mag, 0.5, pare::prune::scope::per_row)
                                             : pare::prune::nm_mask(mag, 2, 4);
      const pare::prune::mask mw = mode == 0 ? pare::prune::unstructured_mask(wan, 0.5, pare::prune::scope::per_row)
                                             : pare::prune::nm_mask(wan, 2, 4);
      const double e_sgpt = solver_test::hessian_loss(w, res.weight, rows, k, h);
      const double e_mag = solver_test::hessian_loss(w, masked(w, mm), rows, k, h);
      const double e_wanda = solver_test::hessian_loss(w, masked(w, mw), rows, k, h);
      CHECK(res.error == Approx(e_sgpt).epsilon(1e-6));
      CHECK(e_sgpt < e_mag);
      CHECK(e_sgpt < e_wanda);
      if (mode == 0) {
        CHECK(count_pruned(res.mask) == rows * k / 2);
        CHECK(count_zeros(res.weight) >= rows * k / 2);
      } else {
        CHECK(pare::prune::is_nm(to_mask(res.mask, rows, k), 2, 4));
        CHECK(pare::prune::is_nm_sparse(pare::matrix_view<const float>(res.weight.data(), rows, k), 2, 4));
      }
      const double rm = e_sgpt / e_mag, rw = e_sgpt / e_wanda;
      worst_mag[mode] = std::max(worst_mag[mode], rm);
      worst_wanda[mode] = std::max(worst_wanda[mode], rw);
      sum_mag[mode] += rm;
      sum_wanda[mode] += rw;
      table << (mode == 0 ? "  50%: " : "  2:4: ") << "sgpt/mag " << rm << " sgpt/wanda " << rw;
      if (name.rfind("blk.0.", 0) == 0) check_sparsegpt_against_oracle(w, rows, k, h, sp);
    }
    table << "\n";
    ++layers;
  }
  CHECK(layers == 35);
  WARN("SparseGPT loss ratios per layer (lower is better):\n"
       << table.str() << "50%: mean sgpt/mag " << sum_mag[0] / double(layers) << " (worst " << worst_mag[0]
       << "), mean sgpt/wanda " << sum_wanda[0] / double(layers) << " (worst " << worst_wanda[0] << ")\n"
       << "2:4: mean sgpt/mag " << sum_mag[1] / double(layers) << " (worst " << worst_mag[1] << "), mean sgpt/wanda "
       << sum_wanda[1] / double(layers) << " (worst " << worst_wanda[1] << ")");
}

TEST_CASE("SparseGPT: bad arguments are errors naming what was wrong, and W is untouched", "[solvers][sparsegpt]") {
  const std::size_t rows = 4, k = 32;
  const layer_hessian h = random_hessian(100, k, 80);
  std::vector<float> w = pare_test::gaussian(rows * k, 81);
  const std::vector<float> w_copy = w;
  const pare::matrix_view<const float> wv(w.data(), rows, k);
  auto with = [](auto f) {
    sparsegpt_options o;
    f(o);
    return o;
  };
  const layer_hessian small = random_hessian(100, 16, 7);
  CHECK_THROWS_AS(pare::solvers::sparsegpt_prune(wv, small), pare::shape_error);
  CHECK_THROWS_WITH(pare::solvers::sparsegpt_prune(wv, small), Catch::Contains("'h'") && Catch::Contains("32 x 32"));
  for (double s : {-0.1, 1.0, 1.5, std::nan("")}) {
    INFO(s);
    const auto o = with([&](sparsegpt_options& x) { x.sparsity = s; });
    CHECK_THROWS_AS(pare::solvers::sparsegpt_prune(wv, h, o), pare::argument_error);
    CHECK_THROWS_WITH(pare::solvers::sparsegpt_prune(wv, h, o), Catch::Contains("'sparsity'"));
  }
  // N:M: n kept of m, 1 <= n <= m; m divides K; block a multiple of m.
  const auto n0 = with([](sparsegpt_options& x) { x.n = 0; x.m = 4; });
  CHECK_THROWS_AS(pare::solvers::sparsegpt_prune(wv, h, n0), pare::argument_error);
  CHECK_THROWS_WITH(pare::solvers::sparsegpt_prune(wv, h, n0), Catch::Contains("'n'") && Catch::Contains("got 0"));
  const auto n5 = with([](sparsegpt_options& x) { x.n = 5; x.m = 4; });
  CHECK_THROWS_WITH(pare::solvers::sparsegpt_prune(wv, h, n5), Catch::Contains("'n'") && Catch::Contains("got 5"));
  const auto no_m = with([](sparsegpt_options& x) { x.n = 2; });
  CHECK_THROWS_AS(pare::solvers::sparsegpt_prune(wv, h, no_m), pare::argument_error);
  CHECK_THROWS_WITH(pare::solvers::sparsegpt_prune(wv, h, no_m), Catch::Contains("'m'"));
  const auto m5 = with([](sparsegpt_options& x) { x.n = 2; x.m = 5; x.block_size = 10; });
  CHECK_THROWS_AS(pare::solvers::sparsegpt_prune(wv, h, m5), pare::shape_error);
  CHECK_THROWS_WITH(pare::solvers::sparsegpt_prune(wv, h, m5), Catch::Contains("m = 5") && Catch::Contains("'w'"));
  const auto b6 = with([](sparsegpt_options& x) { x.n = 2; x.m = 4; x.block_size = 6; });
  CHECK_THROWS_AS(pare::solvers::sparsegpt_prune(wv, h, b6), pare::argument_error);
  CHECK_THROWS_WITH(pare::solvers::sparsegpt_prune(wv, h, b6), Catch::Contains("'block_size'") && Catch::Contains("got 6"));
  const auto b0 = with([](sparsegpt_options& x) { x.block_size = 0; });
  CHECK_THROWS_AS(pare::solvers::sparsegpt_prune(wv, h, b0), pare::argument_error);
  CHECK_THROWS_WITH(pare::solvers::sparsegpt_prune(wv, h, b0), Catch::Contains("'block_size'"));
  // Quantization: the group size divides K and the block; nearest rounding only.
  const pare::quant_config g16 = pare::quant_config::parse("int4:g16:asym");
  const pare::quant_config g24 = pare::quant_config::parse("int4:g24:asym");
  const pare::quant_config sto = pare::quant_config::parse("int4:g16:asym:stochastic");
  const auto qb = with([&](sparsegpt_options& x) { x.quant = &g16; x.block_size = 24; });
  CHECK_THROWS_AS(pare::solvers::sparsegpt_prune(wv, h, qb), pare::argument_error);
  CHECK_THROWS_WITH(pare::solvers::sparsegpt_prune(wv, h, qb), Catch::Contains("'block_size'") && Catch::Contains("16"));
  const auto qg = with([&](sparsegpt_options& x) { x.quant = &g24; x.block_size = 24; });
  CHECK_THROWS_WITH(pare::solvers::sparsegpt_prune(wv, h, qg), Catch::Contains("group_size"));
  const auto qs = with([&](sparsegpt_options& x) { x.quant = &sto; });
  CHECK_THROWS_AS(pare::solvers::sparsegpt_prune(wv, h, qs), pare::argument_error);
  CHECK_THROWS_WITH(pare::solvers::sparsegpt_prune(wv, h, qs), Catch::Contains("stochastic"));
  const auto damp = with([](sparsegpt_options& x) { x.hessian.dampening = -1; });
  CHECK_THROWS_AS(pare::solvers::sparsegpt_prune(wv, h, damp), pare::value_error);
  CHECK_THROWS_WITH(pare::solvers::sparsegpt_prune(wv, h, damp), Catch::Contains("dampening"));
  CHECK(w == w_copy);
  for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
    w[37] = bad;
    const std::vector<float> before = w;
    CHECK_THROWS_AS(pare::solvers::sparsegpt_prune(wv, h), pare::value_error);
    CHECK_THROWS_WITH(pare::solvers::sparsegpt_prune(wv, h), Catch::Contains("'w'") && Catch::Contains("(1, 5)"));
    CHECK(std::equal(w.begin(), w.end(), before.begin(), [](float a, float b) {
      return a == b || (std::isnan(a) && std::isnan(b));
    }));
  }
  w = w_copy;
  // A valid call does not modify W either.
  (void)pare::solvers::sparsegpt_prune(wv, h, with([&](sparsegpt_options& x) { x.quant = &g16; x.block_size = 32; }));
  CHECK(w == w_copy);
}
