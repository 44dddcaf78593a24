// Model surgery (equivalences with zeroed weights) and calibration capture (against recorded raw inputs).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model_test_support.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/model/calibration.hpp"
#include "pare/model/surgery.hpp"
#include "pare_test_support.hpp"

namespace {

using model_test::stories260k;

const std::vector<std::int32_t> surgery_tokens{1, 403, 407, 261, 378, 11, 300, 42, 7, 450, 499, 259, 3, 260, 262, 263};

std::vector<float> logits_of(const pare::llama_model& m) {
  pare::llama_session s(m);
  std::vector<float> out;
  s.forward(surgery_tokens.data(), surgery_tokens.size(), out, true);
  return out;
}

void zero_rows(pare::llama_model& m, const std::string& name, const std::vector<std::size_t>& rows) {
  auto w = pare::get_tensor(m, name);
  for (std::size_t r : rows)
    for (std::size_t j = 0; j < w.shape()[1]; ++j) w(r, j) = 0.0f;
  pare::set_tensor(m, name, pare::matrix_of(w));
}
void zero_cols(pare::llama_model& m, const std::string& name, const std::vector<std::size_t>& cols) {
  auto w = pare::get_tensor(m, name);
  for (std::size_t i = 0; i < w.shape()[0]; ++i)
    for (std::size_t c : cols) w(i, c) = 0.0f;
  pare::set_tensor(m, name, pare::matrix_of(w));
}

struct recorder final : pare::llama_session::linear_observer {
  std::map<std::string, std::vector<std::vector<float>>> rows;
  void on_linear_input(const std::string& name, const pare::matrix_view<const float>& x) override {
    for (std::size_t r = 0; r < x.rows(); ++r) rows[name].emplace_back(x.row_ptr(r), x.row_ptr(r) + x.cols());
  }
};

}  // namespace

TEST_CASE("removing a block equals zeroing its output projections") {
  pare::llama_model a = stories260k(), b = stories260k();
  zero_rows(a, "blk.2.attn_output.weight", [] { std::vector<std::size_t> r(64); for (std::size_t i = 0; i < 64; ++i) r[i] = i; return r; }());
  zero_rows(a, "blk.2.ffn_down.weight", [] { std::vector<std::size_t> r(64); for (std::size_t i = 0; i < 64; ++i) r[i] = i; return r; }());
  pare::remove_blocks(b, {2});
  CHECK(b.blocks.size() == 4);
  CHECK(b.config.n_layers == 4);
  CHECK(logits_of(a) == logits_of(b));
  CHECK_THROWS_AS(pare::remove_blocks(b, {4}), pare::argument_error);
  CHECK_THROWS_AS(pare::remove_blocks(b, {1, 1}), pare::argument_error);
  CHECK(b.blocks.size() == 4);
}

TEST_CASE("shrinking the FFN equals zeroing the dropped neurons' gate/up rows") {
  pare::llama_model a = stories260k(), b = stories260k();
  std::vector<std::size_t> drop{0, 5, 17, 171}, keep;
  for (std::size_t j = 0; j < 172; ++j)
    if (std::find(drop.begin(), drop.end(), j) == drop.end()) keep.push_back(j);
  zero_rows(a, "blk.1.ffn_gate.weight", drop);
  zero_rows(a, "blk.1.ffn_up.weight", drop);
  pare::shrink_ffn(b, 1, keep);
  CHECK(b.blocks[1].w1->out_features() == 168);
  CHECK(b.blocks[1].w2->in_features() == 168);
  const auto la = logits_of(a), lb = logits_of(b);
  REQUIRE(la.size() == lb.size());
  for (std::size_t i = 0; i < la.size(); ++i) REQUIRE(la[i] == Approx(lb[i]).margin(1e-5));
  CHECK_THROWS_AS(pare::shrink_ffn(b, 9, keep), pare::argument_error);
  CHECK_THROWS_AS(pare::shrink_ffn(b, 1, {}), pare::argument_error);
}

TEST_CASE("shrinking key/value heads equals zeroing the group's attention-output columns") {
  pare::llama_model a = stories260k(), b = stories260k();
  // stories260K: 8 query heads, 4 kv heads, head size 8: kv head 1 serves query heads 2 and 3.
  std::vector<std::size_t> cols;
  for (std::size_t i = 2 * 8; i < 4 * 8; ++i) cols.push_back(i);
  zero_cols(a, "blk.3.attn_output.weight", cols);
  pare::shrink_kv_heads(b, 3, {0, 2, 3});
  CHECK(b.blocks[3].n_kv_heads == 3);
  CHECK(b.blocks[3].n_heads == 6);
  CHECK(b.blocks[3].wq->out_features() == 48);
  CHECK(b.blocks[3].wo->in_features() == 48);
  const auto la = logits_of(a), lb = logits_of(b);
  for (std::size_t i = 0; i < la.size(); ++i) REQUIRE(la[i] == Approx(lb[i]).margin(1e-5));
}

TEST_CASE("tensor names, get/set and errors") {
  pare::llama_model m = stories260k();
  const auto names = pare::tensor_names(m);
  CHECK(names.size() == 1 + 5 * 9 + 1);
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  for (const std::string& n : names) {
    const auto got = pare::get_tensor(m, n);
    const auto want = ck.tensor(n);
    REQUIRE(got.size() == want.size());
    const float* p = &want(0);
    (void)p;
    std::size_t i = 0;
    bool same = true;
    if (want.rank() == 2) {
      for (std::size_t r = 0; r < want.shape()[0]; ++r)
        for (std::size_t c = 0; c < want.shape()[1]; ++c) same = same && got.data()[i++] == want(r, c);
    } else {
      for (std::size_t c = 0; c < want.shape()[0]; ++c) same = same && got.data()[i++] == want(c);
    }
    CHECK(same);
  }
  xt::xtensor<float, 2> wrong = xt::zeros<float>({3, 3});
  CHECK_THROWS_AS(pare::set_tensor(m, "blk.0.attn_q.weight", pare::matrix_of(wrong)), pare::shape_error);
  CHECK_THROWS_AS(pare::get_tensor(m, "blk.9.attn_q.weight"), pare::argument_error);
}

TEST_CASE("calibration capture accumulates X^T X, channel statistics and APoZ of the real inputs") {
  const pare::llama_model m = stories260k();
  recorder rec;
  pare::calibration_capture::options o;
  o.observer = "minmax";
  pare::calibration_capture cap(o);
  struct both final : pare::llama_session::linear_observer {
    recorder* r;
    pare::calibration_capture* c;
    void on_linear_input(const std::string& n, const pare::matrix_view<const float>& x) override {
      r->on_linear_input(n, x);
      c->on_linear_input(n, x);
    }
  } tee;
  tee.r = &rec;
  tee.c = &cap;
  pare::llama_session s(m);
  s.set_observer(&tee);
  std::vector<float> logits;
  s.forward(surgery_tokens.data(), 10, logits);  // a batch, then single tokens
  for (std::size_t t = 10; t < surgery_tokens.size(); ++t) s.forward(&surgery_tokens[t], 1, logits);
  CHECK(cap.all().size() == 5 * 7 + 1);
  for (const char* name : {"blk.0.attn_q.weight", "blk.4.ffn_down.weight", "output.weight"}) {
    INFO(name);
    const auto& st = cap.at(name);
    const auto& X = rec.rows.at(name);
    CHECK(st.tokens == X.size());
    const std::size_t k = st.in_features;
    double worst = 0;
    for (std::size_t i = 0; i < k; ++i) {
      double sa = 0, sq = 0;
      std::size_t np = 0;
      for (const auto& row : X) {
        sa += std::fabs(double(row[i]));
        sq += double(row[i]) * row[i];
        np += row[i] <= 0.0f;
      }
      CHECK(st.mean_abs(i) == Approx(sa / double(X.size())).epsilon(1e-12));
      CHECK(st.l2_norm(i) == Approx(std::sqrt(sq)).epsilon(1e-12));
      CHECK(st.apoz(i) == Approx(double(np) / double(X.size())));
      for (std::size_t j = 0; j < k; ++j) {
        double d = 0;
        for (const auto& row : X) d += double(row[i]) * double(row[j]);
        worst = std::max(worst, std::fabs(d - st.xtx[i * k + j]) / (1e-30 + std::fabs(d) + 1e-12));
      }
    }
    CHECK(worst < 1e-9);
    // The observer saw the same values: its range is their min/max.
    float lo = 1e30f, hi = -1e30f;
    for (const auto& row : X)
      for (float v : row) lo = std::min(lo, v), hi = std::max(hi, v);
    const auto r = st.observer->range(pare::int_format{8, true}, pare::scheme_kind::asymmetric);
    CHECK(r.lo == lo);
    CHECK(r.hi == hi);
  }
  CHECK_THROWS_AS(cap.at("nope"), pare::argument_error);
}
