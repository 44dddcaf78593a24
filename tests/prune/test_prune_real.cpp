// Pruning on the real stories260K weights: exact 50 % unstructured and 2:4 densities, Wanda / APoZ from real calibration text, GQA head scores, the 2:4 GEMV.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "pare/io/llama2c.hpp"
#include "pare/model/calibration.hpp"
#include "pare/model/load.hpp"
#include "pare/prune/prune.hpp"
#include "pare_test_support.hpp"

namespace pp = pare::prune;
using pare::matrix_view;

namespace {
const pare::llama2c_checkpoint& checkpoint() {
  static const pare::llama2c_checkpoint ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  return ck;
}

/// Calibration statistics (channel sums only) of the real model over the head of the validation text.
const pare::calibration_capture& calibration() {
  static const pare::calibration_capture cap = [] {
    const pare::llama_model model = pare::llama_model::from_llama2c(checkpoint());
    const pare::tokenizer tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), 512);
    std::ifstream in(pare_test::data_path("text/tinystories_val_head.txt"));
    std::stringstream ss;
    ss << in.rdbuf();
    std::vector<std::int32_t> ids = tok.encode(ss.str().substr(0, 2000));
    if (ids.size() > 256) ids.resize(256);
    pare::calibration_capture::options opt;
    opt.xtx = false;
    pare::calibration_capture c(opt);
    pare::llama_session s(model);
    s.set_observer(&c);
    std::vector<float> logits;
    s.forward(ids.data(), ids.size(), logits);
    return c;
  }();
  return cap;
}
}  // namespace

TEST_CASE("stories260K: 50 % unstructured and 2:4 masks hit their exact densities on every weight matrix") {
  const auto& ck = checkpoint();
  std::size_t checked = 0;
  for (const std::string& name : ck.matrix_names()) {
    const matrix_view<const float> w = ck.tensor(name).as_matrix();
    const pp::score_matrix s = pp::magnitude{}(w);
    INFO(name << " " << w.shape());
    const pp::mask row = pp::unstructured_mask(s, 0.5, pp::scope::per_row);
    const pp::mask glob = pp::unstructured_mask(s, 0.5, pp::scope::global);
    REQUIRE(w.cols() % 2 == 0);
    CHECK(row.density() == 0.5);
    CHECK(glob.density() == 0.5);
    for (std::size_t i = 0; i < w.rows(); ++i) REQUIRE(row.row_count(i) == w.cols() / 2);
    // Global: every kept weight is at least as large as every pruned one.
    float min_kept = std::numeric_limits<float>::infinity(), max_pruned = 0.0f;
    for (std::size_t i = 0; i < w.rows(); ++i)
      for (std::size_t j = 0; j < w.cols(); ++j) {
        if (glob.kept(i, j)) min_kept = std::min(min_kept, s(i, j));
        else max_pruned = std::max(max_pruned, s(i, j));
      }
    CHECK(min_kept >= max_pruned);
    const pp::mask nm = pp::nm_mask(s, 2, 4);
    CHECK(pp::is_nm(nm, 2, 4));
    CHECK(nm.density() == 0.5);
    CHECK(nm.count() * 2 == w.size());
    if (w.cols() % 8 == 0) {  // ffn_down has 172 inputs: 4:8 does not apply
      const pp::mask nm48 = pp::nm_mask(s, 4, 8);
      CHECK(pp::is_nm(nm48, 4, 8));
      CHECK(nm48.density() == 0.5);
    } else {
      CHECK_THROWS_AS(pp::nm_mask(s, 4, 8), pare::shape_error);
    }
    ++checked;
  }
  CHECK(checked == 1 + 5 * 7);  // token_embd + 7 matrices per block
  const matrix_view<const float> gate = ck.tensor("blk.0.ffn_gate.weight").as_matrix();
  CHECK(gate.rows() == 172);
  CHECK(gate.cols() == 64);
  CHECK(pp::unstructured_mask(pp::magnitude{}(gate), 0.5, pp::scope::global).count() == 172 * 32);
}

TEST_CASE("stories260K: 2:4 packed ffn weights multiply like the pruned dense weights") {
  const auto& ck = checkpoint();
  for (const char* name : {"blk.0.ffn_gate.weight", "blk.3.ffn_down.weight", "blk.1.attn_q.weight"}) {
    const matrix_view<const float> w = ck.tensor(name).as_matrix();
    const std::size_t n = w.rows(), k = w.cols();
    const pp::mask m = pp::nm_mask(pp::magnitude{}(w), 2, 4);
    const pare::packed_sparse24 p = pare::pack_sparse24(w, m);
    std::vector<float> dense(n * k);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < k; ++j) dense[i * k + j] = w(i, j);
    pp::apply(m, matrix_view<float>(dense.data(), n, k));
    std::vector<float> back(n * k);
    p.unpack(matrix_view<float>(back.data(), n, k));
    CHECK(back == dense);
    const std::size_t rows = 3;
    const std::vector<float> x = pare_test::gaussian(rows * k, 8);
    std::vector<float> y(rows * n);
    pare::matmul(matrix_view<const float>(x.data(), rows, k), p, matrix_view<float>(y.data(), rows, n));
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t o = 0; o < n; ++o) {
        double s = 0, a = 0;
        for (std::size_t j = 0; j < k; ++j) {
          s += double(x[r * k + j]) * dense[o * k + j];
          a += std::fabs(double(x[r * k + j]) * dense[o * k + j]);
        }
        INFO(name << " (" << r << ", " << o << ")");
        REQUIRE(std::fabs(y[r * n + o] - s) <= 2.0 * double((k / 2 + 15) / 16 + 4) * 0x1p-24 * a);
      }
  }
}

TEST_CASE("stories260K: Wanda and APoZ from real calibration text") {
  const auto& ck = checkpoint();
  const auto& cap = calibration();
  const auto& st = cap.at("blk.0.ffn_gate.weight");
  CHECK(st.in_features == 64);
  CHECK(st.tokens >= 100);
  const matrix_view<const float> w = ck.tensor("blk.0.ffn_gate.weight").as_matrix();
  const pp::score_matrix s = pp::wanda(st)(w);
  for (std::size_t i = 0; i < w.rows(); ++i)
    for (std::size_t j = 0; j < w.cols(); ++j)
      REQUIRE(s(i, j) == float(std::fabs(double(w(i, j))) * std::sqrt(st.sum_sq[j])));
  const pp::mask m = pp::unstructured_mask(s, 0.5, pp::scope::per_row);
  CHECK(m.density() == 0.5);
  // Wanda differs from plain magnitude on real activations (the channel norms are not flat).
  CHECK(m != pp::unstructured_mask(pp::magnitude{}(w), 0.5, pp::scope::per_row));

  // APoZ on the SwiGLU outputs: 172 neurons, fractions in [0, 1], keep-list for shrink_ffn.
  const auto& down = cap.at("blk.0.ffn_down.weight");
  const pp::score_vector a = pp::apoz(down);
  REQUIRE(a.size() == 172);
  for (float v : a) {
    CHECK(v >= 0.0f);
    CHECK(v <= 1.0f);
  }
  const auto keep = pp::keep_at_sparsity(pp::network_trimming{}(down), 0.25);
  CHECK(keep.size() == 172 - 43);
  CHECK(std::is_sorted(keep.begin(), keep.end()));
  const auto keep_abs = pp::keep_at_sparsity(pp::network_trimming{pp::activation_metric::mean_abs}(down), 0.25);
  CHECK(keep_abs.size() == 129);
}

TEST_CASE("stories260K: GQA head scores and kv-head masks on block 0") {
  const auto& ck = checkpoint();
  const auto q = ck.tensor("blk.0.attn_q.weight").as_matrix(), k = ck.tensor("blk.0.attn_k.weight").as_matrix();
  const auto v = ck.tensor("blk.0.attn_v.weight").as_matrix(), o = ck.tensor("blk.0.attn_output.weight").as_matrix();
  const pp::head_scores hs = pp::attention_head_scores(q, k, v, o, 8, 4, pp::unit_norm::l2);
  REQUIRE(hs.query.size() == 8);
  REQUIRE(hs.kv.size() == 4);
  // Each kv unit's squared norm is its k/v rows plus its two query heads.
  for (std::size_t g = 0; g < 4; ++g) {
    double kv2 = 0;
    for (std::size_t r = g * 8; r < g * 8 + 8; ++r)
      for (std::size_t j = 0; j < 64; ++j) kv2 += double(k(r, j)) * k(r, j) + double(v(r, j)) * v(r, j);
    const double want = std::sqrt(kv2 + double(hs.query[2 * g]) * hs.query[2 * g] + double(hs.query[2 * g + 1]) * hs.query[2 * g + 1]);
    CHECK(hs.kv[g] == Approx(want).epsilon(1e-6));
  }
  const auto keep = pp::keep_top(hs.kv, 2);
  const pp::attention_masks m = pp::kv_head_masks(pp::attention_layout::of(q, k, v, o, 8, 4), keep);
  CHECK(m.q.density() == 0.5);
  CHECK(m.k.density() == 0.5);
  CHECK(m.v.density() == 0.5);
  CHECK(m.o.density() == 0.5);
}
