// Pruning criteria against float64 references: magnitude, row/column norms, attention heads (GQA), Wanda, Taylor, APoZ / mean |activation|.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "pare/model/calibration.hpp"
#include "pare/prune/activation.hpp"
#include "pare/prune/heads.hpp"
#include "pare/prune/magnitude.hpp"
#include "pare/prune/taylor.hpp"
#include "pare/prune/wanda.hpp"
#include "pare_test_support.hpp"
#include "prune_oracle.hpp"
#include "prune_test_support.hpp"

namespace pp = pare::prune;
using pare::matrix_view;

namespace {
using prune_test::mv;
/// |got − want| within a float rounding of want (plus a tiny absolute floor).
bool near_float(float got, double want) { return std::fabs(double(got) - want) <= 1.2e-7 * std::fabs(want) + 1e-30; }
}  // namespace

TEST_CASE("magnitude scores are |w| and accept strided views") {
  const auto w = pare_test::gaussian(7 * 9, 1);
  const pp::score_matrix s = pp::magnitude{}(mv(w, 7, 9));
  REQUIRE(s.rows() == 7);
  REQUIRE(s.cols() == 9);
  for (std::size_t i = 0; i < 7; ++i)
    for (std::size_t j = 0; j < 9; ++j) CHECK(s(i, j) == std::fabs(w[i * 9 + j]));
  const pp::score_matrix t = pp::magnitude{}(mv(w, 7, 9).transposed());
  for (std::size_t i = 0; i < 9; ++i)
    for (std::size_t j = 0; j < 7; ++j) CHECK(t(i, j) == s(j, i));
  std::vector<float> bad = w;
  bad[20] = std::numeric_limits<float>::infinity();
  prune_oracle::require_throws<pare::value_error>([&] { (void)pp::magnitude{}(mv(bad, 7, 9)); }, {"'w'", "(2, 2)"});
}

TEST_CASE("row and column L1 and L2 norms match float64") {
  const std::size_t r = 13, c = 37;
  const auto w = pare_test::gaussian(r * c, 2, 0.3);
  const auto rl1 = pp::row_norms(mv(w, r, c), pp::unit_norm::l1), rl2 = pp::row_norms(mv(w, r, c), pp::unit_norm::l2);
  const auto cl1 = pp::column_norms(mv(w, r, c), pp::unit_norm::l1), cl2 = pp::column_norms(mv(w, r, c), pp::unit_norm::l2);
  REQUIRE(rl1.size() == r);
  REQUIRE(cl2.size() == c);
  for (std::size_t i = 0; i < r; ++i) {
    long double a = 0, q = 0;  // reversed order, long double: an independent evaluation
    for (std::size_t j = c; j-- > 0;) {
      a += std::fabs((long double)w[i * c + j]);
      q += (long double)w[i * c + j] * w[i * c + j];
    }
    CHECK(near_float(rl1[i], double(a)));
    CHECK(near_float(rl2[i], double(std::sqrt(q))));
  }
  for (std::size_t j = 0; j < c; ++j) {
    long double a = 0, q = 0;
    for (std::size_t i = r; i-- > 0;) {
      a += std::fabs((long double)w[i * c + j]);
      q += (long double)w[i * c + j] * w[i * c + j];
    }
    CHECK(near_float(cl1[j], double(a)));
    CHECK(near_float(cl2[j], double(std::sqrt(q))));
  }
  // Column norms of a matrix are the row norms of its transpose.
  CHECK(pp::column_norms(mv(w, r, c).transposed(), pp::unit_norm::l2) == rl2);
}

TEST_CASE("attention head scores sum a head's rows of wq wk wv and columns of wo with GQA groups") {
  struct cfg {
    std::size_t dim, heads, kv, d;
  };
  for (cfg g : {cfg{24, 6, 2, 4}, cfg{16, 4, 4, 4}, cfg{12, 3, 1, 5}}) {
    const std::size_t qrows = g.heads * g.d, kvrows = g.kv * g.d;
    const auto wq = pare_test::gaussian(qrows * g.dim, 10), wk = pare_test::gaussian(kvrows * g.dim, 11);
    const auto wv = pare_test::gaussian(kvrows * g.dim, 12), wo = pare_test::gaussian(g.dim * qrows, 13);
    for (pp::unit_norm norm : {pp::unit_norm::l1, pp::unit_norm::l2}) {
      const pp::head_scores hs = pp::attention_head_scores(mv(wq, qrows, g.dim), mv(wk, kvrows, g.dim),
                                                           mv(wv, kvrows, g.dim), mv(wo, g.dim, qrows), g.heads, g.kv, norm);
      REQUIRE(hs.query.size() == g.heads);
      REQUIRE(hs.kv.size() == g.kv);
      auto term = [&](double v) { return norm == pp::unit_norm::l1 ? std::fabs(v) : v * v; };
      auto fin = [&](double s) { return norm == pp::unit_norm::l1 ? s : std::sqrt(s); };
      // Reference: scan every weight once and credit it to the unit that owns it.
      std::vector<double> q(g.heads, 0.0), kv(g.kv, 0.0);
      const std::size_t per_kv = g.heads / g.kv;
      for (std::size_t idx = 0; idx < wq.size(); ++idx) {
        const std::size_t head = (idx / g.dim) / g.d;
        q[head] += term(wq[idx]);
        kv[head / per_kv] += term(wq[idx]);
      }
      for (std::size_t idx = 0; idx < wo.size(); ++idx) {
        const std::size_t head = (idx % qrows) / g.d;
        q[head] += term(wo[idx]);
        kv[head / per_kv] += term(wo[idx]);
      }
      for (std::size_t idx = 0; idx < wk.size(); ++idx) kv[(idx / g.dim) / g.d] += term(wk[idx]) + term(wv[idx]);
      for (std::size_t h = 0; h < g.heads; ++h) CHECK(near_float(hs.query[h], fin(q[h])));
      for (std::size_t k = 0; k < g.kv; ++k) CHECK(near_float(hs.kv[k], fin(kv[k])));
    }
  }
}

TEST_CASE("head masks cover a kv head's group of query heads") {
  const pp::attention_layout l = pp::attention_layout::make(8, 4, 2, 2);  // dim 8, 4 q heads of size 2, 2 kv heads
  CHECK(l.group() == 2);
  CHECK(l.kv_head_of(3) == 1);
  const pp::attention_masks m = pp::kv_head_masks(l, {1});
  CHECK(m.q.rows() == 8);
  CHECK(m.q.cols() == 8);
  CHECK(m.k.rows() == 4);
  CHECK(m.o.rows() == 8);
  CHECK(m.o.cols() == 8);
  for (std::size_t r = 0; r < 8; ++r) CHECK(m.q.row_count(r) == (r >= 4 ? 8u : 0u));  // q heads 2, 3
  for (std::size_t c = 0; c < 8; ++c) CHECK(m.o.col_count(c) == (c >= 4 ? 8u : 0u));
  for (std::size_t r = 0; r < 4; ++r) {
    CHECK(m.k.row_count(r) == (r >= 2 ? 8u : 0u));
    CHECK(m.v.row_count(r) == (r >= 2 ? 8u : 0u));
  }
  const pp::attention_masks qm = pp::query_head_masks(l, {0, 3});
  CHECK(qm.k.count() == qm.k.size());
  CHECK(qm.q.row_count(1) == 8);
  CHECK(qm.q.row_count(2) == 0);
  CHECK(qm.o.col_count(7) == 8);
  prune_oracle::require_throws<pare::argument_error>([&] { (void)pp::kv_head_masks(l, {2}); }, {"'keep_kv'"});
  prune_oracle::require_throws<pare::argument_error>([&] { (void)pp::query_head_masks(l, {0, 0}); }, {"'keep_query'"});
}

TEST_CASE("head scores reject head counts that do not divide and wrong shapes") {
  const auto a = pare_test::gaussian(24 * 24, 1);
  const auto k8 = pare_test::gaussian(8 * 24, 2);
  const auto q = mv(a, 24, 24), k = mv(k8, 8, 24), o = mv(a, 24, 24);
  prune_oracle::require_throws<pare::argument_error>(
      [&] { (void)pp::attention_head_scores(q, k, k, o, 6, 4, pp::unit_norm::l1); }, {"'n_kv_heads'", "n_heads = 6", "got 4"});
  prune_oracle::require_throws<pare::argument_error>(
      [&] { (void)pp::attention_head_scores(q, k, k, o, 5, 1, pp::unit_norm::l1); }, {"'n_heads'", "24 rows of wq", "got 5"});
  prune_oracle::require_throws<pare::argument_error>(
      [&] { (void)pp::attention_head_scores(q, k, k, o, 0, 1, pp::unit_norm::l1); }, {"'n_heads'"});
  prune_oracle::require_throws<pare::argument_error>(
      [&] { (void)pp::attention_head_scores(q, k, k, o, 6, 0, pp::unit_norm::l1); }, {"'n_kv_heads'"});
  prune_oracle::require_throws<pare::shape_error>(
      [&] { (void)pp::attention_head_scores(q, k, k, o, 6, 1, pp::unit_norm::l1); }, {"'wk'", "[4, 24]", "[8, 24]"});
  prune_oracle::require_throws<pare::shape_error>(
      [&] { (void)pp::attention_head_scores(q, k, k, mv(a, 12, 48), 6, 2, pp::unit_norm::l2); }, {"'wo'"});
  CHECK(pp::attention_head_scores(q, k, k, o, 6, 2, pp::unit_norm::l2).kv.size() == 2);
  prune_oracle::require_throws<pare::argument_error>([] { (void)pp::attention_layout::make(8, 4, 3, 2); }, {"'n_kv_heads'"});
}

TEST_CASE("Wanda scores are |w| times the input-channel L2 norm from calibration capture") {
  const std::size_t t = 40, kin = 12, out = 5;
  const auto x = pare_test::gaussian(t * kin, 21, 1.5);
  pare::calibration_capture::options opt;
  opt.xtx = false;
  pare::calibration_capture cap(opt);
  cap.on_linear_input("layer", mv(x, t / 2, kin));
  cap.on_linear_input("layer", matrix_view<const float>(x.data() + t / 2 * kin, t / 2, kin));
  const auto& st = cap.at("layer");
  const auto w = pare_test::gaussian(out * kin, 22);
  const pp::wanda crit(st);
  const pp::score_matrix s = crit(mv(w, out, kin));
  for (std::size_t j = 0; j < kin; ++j) {
    long double ss = 0;
    for (std::size_t r = t; r-- > 0;) ss += (long double)x[r * kin + j] * x[r * kin + j];
    const double norm = double(std::sqrt(ss));
    CHECK(crit.input_norms()[j] == Approx(norm).epsilon(1e-14));
    for (std::size_t i = 0; i < out; ++i) CHECK(near_float(s(i, j), std::fabs(double(w[i * kin + j])) * norm));
  }
  // Explicit norms give the same scores.
  CHECK(pp::wanda(crit.input_norms())(mv(w, out, kin)).values() == s.values());

  prune_oracle::require_throws<pare::shape_error>([&] { (void)crit(mv(w, kin, out)); }, {"'w'", "12 columns"});
  std::vector<float> bad = w;
  bad[3] = std::nanf("");
  prune_oracle::require_throws<pare::value_error>([&] { (void)crit(mv(bad, out, kin)); }, {"'w'", "(0, 3)"});
  pare::calibration_capture::options no_stats;
  no_stats.xtx = false;
  no_stats.channel_stats = false;
  pare::calibration_capture cap2(no_stats);
  cap2.on_linear_input("layer", mv(x, t, kin));
  prune_oracle::require_throws<pare::argument_error>([&] { (void)pp::wanda(cap2.at("layer")); }, {"'stats'", "channel_stats"});
  prune_oracle::require_throws<pare::value_error>([] { (void)pp::wanda(std::vector<double>{1.0, -2.0}); },
                                                  {"'input_norms'", "index 1"});
}

TEST_CASE("Taylor scores are |w*g| for float and double gradients") {
  const std::size_t r = 6, c = 11;
  const auto w = pare_test::gaussian(r * c, 31), gf = pare_test::gaussian(r * c, 32, 1e-3);
  std::vector<double> gd(r * c);
  for (std::size_t i = 0; i < gd.size(); ++i) gd[i] = double(gf[i]) * (1.0 + 1e-9 * double(i));
  const pp::score_matrix sf = pp::taylor(mv(gf, r, c))(mv(w, r, c));
  const pp::score_matrix sd = pp::taylor(matrix_view<const double>(gd.data(), r, c))(mv(w, r, c));
  for (std::size_t i = 0; i < r * c; ++i) {
    CHECK(sf.values()[i] == float(std::fabs(double(w[i]) * double(gf[i]))));  // exact product, one rounding
    CHECK(sd.values()[i] == float(std::fabs(double(w[i]) * gd[i])));
  }
  prune_oracle::require_throws<pare::shape_error>([&] { (void)pp::taylor(mv(gf, c, r))(mv(w, r, c)); }, {"'grad'", "[6, 11]", "[11, 6]"});
  std::vector<float> badg = gf;
  badg[c + 2] = std::numeric_limits<float>::infinity();
  prune_oracle::require_throws<pare::value_error>([&] { (void)pp::taylor(mv(badg, r, c))(mv(w, r, c)); }, {"'grad'", "(1, 2)"});
}

TEST_CASE("APoZ and mean |activation| per neuron from calibration capture") {
  const std::size_t t = 50, kin = 9;
  auto x = pare_test::gaussian(t * kin, 41);
  for (std::size_t r = 0; r < t; ++r) {
    x[r * kin + 0] = std::fabs(x[r * kin + 0]) + 0.1f;  // never <= 0
    x[r * kin + 1] = -std::fabs(x[r * kin + 1]);        // always <= 0
    x[r * kin + 2] = 0.0f;                              // zero counts as non-positive
  }
  pare::calibration_capture::options opt;
  opt.xtx = false;
  pare::calibration_capture cap(opt);
  cap.on_linear_input("blk.0.ffn_down.weight", mv(x, t, kin));
  const auto& st = cap.at("blk.0.ffn_down.weight");
  const pp::score_vector a = pp::apoz(st), m = pp::mean_abs(st);
  const pp::score_vector imp = pp::network_trimming{pp::activation_metric::apoz}(st);
  const pp::score_vector imp2 = pp::network_trimming{pp::activation_metric::mean_abs}(st);
  for (std::size_t j = 0; j < kin; ++j) {
    std::size_t np = 0;
    double sa = 0;
    for (std::size_t r = 0; r < t; ++r) {
      np += x[r * kin + j] <= 0.0f;
      sa += std::fabs(double(x[r * kin + j]));
    }
    CHECK(a[j] == float(double(np) / double(t)));
    CHECK(near_float(m[j], sa / double(t)));
    CHECK(imp[j] == float(1.0 - double(np) / double(t)));
    CHECK(imp2[j] == m[j]);
  }
  CHECK(a[0] == 0.0f);
  CHECK(a[1] == 1.0f);
  CHECK(a[2] == 1.0f);
  // The mostly-dead neurons are the first to go.
  const auto keep = pp::keep_top(imp, kin - 2);
  CHECK(std::find(keep.begin(), keep.end(), 1u) == keep.end());
  CHECK(std::find(keep.begin(), keep.end(), 2u) == keep.end());

  pare::linear_input_stats empty;
  prune_oracle::require_throws<pare::argument_error>([&] { (void)pp::apoz(empty); }, {"'stats'"});
  pare::linear_input_stats zero_tokens;
  zero_tokens.in_features = 2;
  zero_tokens.sum_abs.assign(2, 0.0);
  zero_tokens.sum_sq.assign(2, 0.0);
  zero_tokens.nonpositive.assign(2, 0);
  prune_oracle::require_throws<pare::argument_error>([&] { (void)pp::mean_abs(zero_tokens); }, {"'stats'", "token"});
}
