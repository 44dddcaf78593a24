// Schedules: cubic sparsity (endpoints, closed form, monotonicity), extend / iterative pruning, one-shot, the L1 soft-threshold step.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "pare/prune/magnitude.hpp"
#include "pare/prune/schedule.hpp"
#include "pare_test_support.hpp"
#include "prune_oracle.hpp"
#include "prune_test_support.hpp"

namespace pp = pare::prune;
using pare::matrix_view;

namespace {
using prune_test::mv;
}  // namespace

TEST_CASE("cubic schedule: endpoints, closed form and monotonicity") {
  pp::cubic_schedule s;
  s.initial_sparsity = 0.1;
  s.final_sparsity = 0.8;
  s.start_step = 10;
  s.num_steps = 10;
  s.interval = 5;
  CHECK(s.end_step() == 60);
  CHECK(s.sparsity_at(0) == 0.1);
  CHECK(s.sparsity_at(10) == 0.1);
  CHECK(s.sparsity_at(60) == 0.8);
  CHECK(s.sparsity_at(1000) == 0.8);
  for (std::size_t t = 10; t <= 60; ++t) {
    const double frac = double(t - 10) / 50.0;
    CHECK(s.sparsity_at(t) == Approx(0.8 + (0.1 - 0.8) * std::pow(1.0 - frac, 3)).epsilon(1e-15));
  }
  CHECK(s.sparsity_at(35) == Approx(0.8 - 0.7 * 0.125));
  double prev = -1.0;
  for (std::size_t t = 0; t <= 80; ++t) {
    const double v = s.sparsity_at(t);
    CHECK(v >= prev);
    if (t > 10 && t <= 60) CHECK(v > prev);  // strictly increasing inside the ramp
    CHECK(v >= 0.1);
    CHECK(v <= 0.8);
    prev = v;
  }
  // Fast early, slow late: the first half of the ramp covers 7/8 of the change.
  CHECK(s.sparsity_at(35) - 0.1 == Approx(0.7 * 0.875));
  CHECK(s.is_pruning_step(10));
  CHECK(s.is_pruning_step(15));
  CHECK(s.is_pruning_step(60));
  CHECK_FALSE(s.is_pruning_step(16));
  CHECK_FALSE(s.is_pruning_step(65));
  CHECK_FALSE(s.is_pruning_step(5));

  pp::cubic_schedule bad = s;
  bad.final_sparsity = 0.05;
  prune_oracle::require_throws<pare::argument_error>([&] { (void)bad.sparsity_at(3); }, {"'final_sparsity'"});
  bad = s;
  bad.final_sparsity = 1.0;
  prune_oracle::require_throws<pare::argument_error>([&] { bad.validate(); }, {"'final_sparsity'"});
  bad = s;
  bad.initial_sparsity = -0.1;
  prune_oracle::require_throws<pare::argument_error>([&] { bad.validate(); }, {"'initial_sparsity'"});
  bad = s;
  bad.num_steps = 0;
  prune_oracle::require_throws<pare::argument_error>([&] { bad.validate(); }, {"'num_steps'"});
  bad = s;
  bad.interval = 0;
  prune_oracle::require_throws<pare::argument_error>([&] { (void)bad.is_pruning_step(1); }, {"'interval'"});
}

TEST_CASE("gradual pruning with the cubic schedule reaches each step's exact count and never un-prunes") {
  const std::size_t r = 20, c = 30, n = r * c;
  const auto w = pare_test::gaussian(n, 9);
  pp::cubic_schedule s;
  s.final_sparsity = 0.9;
  s.num_steps = 8;
  s.interval = 3;
  pp::mask m(r, c);
  std::size_t prev = 0;
  for (std::size_t t = 0; t <= s.end_step(); ++t) {
    if (!s.is_pruning_step(t)) continue;
    // Re-score on changing "weights" each step.
    std::vector<float> sc(n);
    for (std::size_t i = 0; i < n; ++i) sc[i] = std::fabs(w[i]) * float(1 + (i * (t + 1)) % 7);
    const pp::mask next = pp::extend(m, mv(sc, r, c), s.sparsity_at(t), pp::scope::global);
    REQUIRE(next.pruned() == pp::pruned_count(s.sparsity_at(t), n));
    REQUIRE(next.pruned() >= prev);
    for (std::size_t i = 0; i < n; ++i)
      if (!m.data()[i]) REQUIRE(!next.data()[i]);
    prev = next.pruned();
    m = next;
  }
  CHECK(m.pruned() == pp::pruned_count(0.9, n));
}

TEST_CASE("extend prunes the least important kept entries, per row or globally") {
  const std::vector<float> sc{5, 1, 4, 2, 3, 6, 0, 7};
  pp::mask m(2, 4);
  m.set(0, 3, false);  // already pruned, whatever its score
  const pp::mask g = pp::extend(m, mv(sc, 2, 4), 0.5, pp::scope::global);
  CHECK(g.pruned() == 4);
  CHECK_FALSE(g.kept(0, 3));
  CHECK_FALSE(g.kept(1, 2));  // 0
  CHECK_FALSE(g.kept(0, 1));  // 1
  CHECK_FALSE(g.kept(1, 0));  // 3
  const pp::mask pr = pp::extend(m, mv(sc, 2, 4), 0.5, pp::scope::per_row);
  CHECK(pr.row_count(0) == 2);
  CHECK(pr.row_count(1) == 2);
  CHECK_FALSE(pr.kept(0, 1));
  const pp::mask one = pp::extend(m, mv(sc, 2, 4), 0.5, pp::scope::global, 1);
  CHECK(one.pruned() == 2);
  CHECK_FALSE(one.kept(1, 2));
  CHECK(pp::extend(g, mv(sc, 2, 4), 0.25, pp::scope::global) == g);  // past the target: unchanged
  prune_oracle::require_throws<pare::shape_error>([&] { (void)pp::extend(m, mv(sc, 4, 2), 0.5, pp::scope::global); },
                                                  {"'current'", "'scores'"});
}

TEST_CASE("iterative pruning removes k per step, re-scoring between steps") {
  const std::size_t r = 10, c = 10, n = r * c;
  const auto w = pare_test::gaussian(n, 17);
  const pp::score_matrix fixed = pp::magnitude{}(mv(w, r, c));
  // Fixed scores: the iterative result equals the one-shot mask.
  std::size_t steps = 0;
  const pp::mask it = pp::iterative_prune(pp::mask(r, c), 0.6, 7, pp::scope::global,
                                          [&](const pp::mask&) { return fixed; }, &steps);
  CHECK(steps == 9);  // ceil(60 / 7)
  CHECK(it == pp::unstructured_mask(pp::magnitude{}(mv(w, r, c)).view(), 0.6, pp::scope::global));
  CHECK(it == pp::unstructured_mask(fixed, 0.6, pp::scope::global));

  // Changing scores: every step prunes exactly min(k, remaining) of the then-kept entries,
  // the least important by that step's scores (checked by a full-sort oracle).
  std::vector<pp::mask> seen;
  std::vector<std::vector<float>> given;
  const pp::mask res = pp::iterative_prune(pp::mask(r, c), 0.55, 10, pp::scope::global, [&](const pp::mask& cur) {
    seen.push_back(cur);
    std::vector<float> s(n);
    for (std::size_t i = 0; i < n; ++i) s[i] = float((i * 37 + seen.size() * 11) % 23);
    given.push_back(s);
    pp::score_matrix m(r, c);
    m.values() = s;
    return m;
  });
  REQUIRE(seen.size() == 6);  // 55 = 5 * 10 + 5
  CHECK(res.pruned() == 55);
  for (std::size_t st = 0; st < seen.size(); ++st) {
    const pp::mask& before = seen[st];
    const pp::mask& after = st + 1 < seen.size() ? seen[st + 1] : res;
    const std::size_t k = std::min<std::size_t>(10, 55 - before.pruned());
    REQUIRE(after.pruned() - before.pruned() == k);
    std::vector<float> kept_scores;
    std::vector<std::size_t> where;
    for (std::size_t i = 0; i < n; ++i)
      if (before.data()[i]) {
        kept_scores.push_back(given[st][i]);
        where.push_back(i);
      }
    const auto keep = prune_oracle::keep_by_sort(kept_scores, k);
    for (std::size_t t = 0; t < where.size(); ++t) REQUIRE(bool(after.data()[where[t]]) == bool(keep[t]));
  }

  // Per row: every row reaches floor(s * cols), at most k per row per step.
  std::size_t prow = 0;
  const pp::mask pr = pp::iterative_prune(pp::mask(r, c), 0.5, 2, pp::scope::per_row,
                                          [&](const pp::mask&) { return fixed.view(); }, &prow);
  CHECK(prow == 3);
  for (std::size_t i = 0; i < r; ++i) CHECK(pr.row_count(i) == 5);
  CHECK(pr == pp::unstructured_mask(fixed, 0.5, pp::scope::per_row));
}

TEST_CASE("iterative pruning: bad arguments and failing callbacks change nothing") {
  const std::size_t r = 4, c = 4;
  const auto w = pare_test::gaussian(r * c, 3);
  const pp::score_matrix fixed = pp::magnitude{}(mv(w, r, c));
  pp::mask start(r, c);
  start.set(0, 0, false);
  const pp::mask copy = start;
  auto ok = [&](const pp::mask&) { return fixed; };
  prune_oracle::require_throws<pare::argument_error>([&] { (void)pp::iterative_prune(start, 0.5, 0, pp::scope::global, ok); },
                                                     {"'per_step'"});
  prune_oracle::require_throws<pare::argument_error>([&] { (void)pp::iterative_prune(start, 1.0, 2, pp::scope::global, ok); },
                                                     {"'target_sparsity'"});
  prune_oracle::require_throws<pare::shape_error>(
      [&] { (void)pp::iterative_prune(start, 0.5, 2, pp::scope::global, [](const pp::mask&) { return pp::score_matrix(2, 8); }); },
      {"'rescore'", "[4, 4]", "[2, 8]"});
  prune_oracle::require_throws<pare::value_error>(
      [&] {
        (void)pp::iterative_prune(start, 0.5, 2, pp::scope::global, [&](const pp::mask&) {
          pp::score_matrix s = fixed;
          s(1, 2) = std::nanf("");
          return s;
        });
      },
      {"'rescore'", "(1, 2)"});
  CHECK_THROWS_AS(pp::iterative_prune(start, 0.5, 2, pp::scope::global,
                                      [](const pp::mask&) -> pp::score_matrix { throw pare::io_error("callback"); }),
                  pare::io_error);
  CHECK(start == copy);
  std::size_t calls = 7;
  CHECK(pp::iterative_prune(start, 0.05, 3, pp::scope::global, ok, &calls) == start);  // already there
  CHECK(calls == 0);
}

TEST_CASE("soft threshold equals the closed form sign(w)*max(|w| - lambda*lr, 0)") {
  const std::size_t r = 9, c = 21;
  const auto w0 = pare_test::gaussian(r * c, 5, 0.2);
  for (double lambda : {0.0, 0.3, 2.0})
    for (double lr : {0.5, 0.01}) {
      std::vector<float> w = w0;
      const std::size_t zeros = pp::soft_threshold(matrix_view<float>(w.data(), r, c), lambda, lr);
      const double tau = lambda * lr;
      std::size_t expect_zeros = 0;
      for (std::size_t i = 0; i < w.size(); ++i) {
        const double a = std::fabs(double(w0[i]));
        const double want = a > tau ? (w0[i] > 0 ? a - tau : -(a - tau)) : 0.0;
        REQUIRE(w[i] == float(want));
        expect_zeros += float(want) == 0.0f;
        if (w[i] != 0.0f) REQUIRE(std::signbit(w[i]) == std::signbit(w0[i]));
      }
      CHECK(zeros == expect_zeros);
      if (lambda == 0.0) CHECK(w == w0);
    }
  // Strided (transposed) view: the same values.
  std::vector<float> a = w0, b = w0;
  pp::soft_threshold(matrix_view<float>(a.data(), r, c), 1.0, 0.1);
  pp::soft_threshold(matrix_view<float>(b.data(), r, c).transposed(), 1.0, 0.1);
  CHECK(a == b);
}

TEST_CASE("soft threshold rejects bad rates and non-finite weights without changing w") {
  std::vector<float> w = pare_test::gaussian(12, 6);
  const std::vector<float> w0 = w;
  const matrix_view<float> v(w.data(), 3, 4);
  prune_oracle::require_throws<pare::argument_error>([&] { pp::soft_threshold(v, -0.1, 1.0); }, {"'lambda'"});
  prune_oracle::require_throws<pare::argument_error>([&] { pp::soft_threshold(v, 0.1, std::nan("")); }, {"'lr'"});
  prune_oracle::require_throws<pare::argument_error>(
      [&] { pp::soft_threshold(v, std::numeric_limits<double>::infinity(), 1.0); }, {"'lambda'"});
  w[10] = std::numeric_limits<float>::infinity();
  std::vector<float> before = w;
  prune_oracle::require_throws<pare::value_error>([&] { pp::soft_threshold(v, 0.1, 0.1); }, {"'w'", "(2, 2)"});
  CHECK(std::equal(w.begin(), w.end(), before.begin(), [](float x, float y) { return x == y; }));
  w = w0;
  CHECK(w == w0);
}
