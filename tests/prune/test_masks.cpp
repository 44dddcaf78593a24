// Unstructured (per-row / global), N:M and structured masks: exact counts, ranking against a full-sort oracle, apply, bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "pare/prune/mask.hpp"
#include "pare/prune/nm.hpp"
#include "pare/prune/scores.hpp"
#include "pare_test_support.hpp"
#include "prune_oracle.hpp"
#include "prune_test_support.hpp"

namespace pp = pare::prune;
using pare::matrix_view;

namespace {
using prune_test::mv;
}  // namespace

TEST_CASE("pruned_count is the documented floor with decimal sparsities counting as written") {
  CHECK(pp::pruned_count(0.0, 10) == 0);
  CHECK(pp::pruned_count(0.5, 7) == 3);
  CHECK(pp::pruned_count(0.5, 8) == 4);
  CHECK(pp::pruned_count(0.29, 100) == 29);  // 0.29 * 100 == 28.999999999999996 in binary
  CHECK(pp::pruned_count(0.57, 100) == 57);  // 56.99999999999999
  CHECK(pp::pruned_count(0.7, 10) == 7);
  CHECK(pp::pruned_count(0.999999, 3) == 2);
  CHECK(pp::pruned_count(std::nextafter(1.0, 0.0), 1000) == 999);  // never everything
  CHECK(pp::pruned_count(0.9, 1) == 0);
  CHECK(pp::pruned_count(0.5, 0) == 0);
  for (double bad : {-0.01, 1.0, 1.5, std::numeric_limits<double>::quiet_NaN()})
    prune_oracle::require_throws<pare::argument_error>([&] { (void)pp::pruned_count(bad, 10); }, {"'sparsity'", "[0, 1)"});
}

TEST_CASE("per-row unstructured masks prune exactly floor(s*cols) per row in oracle order") {
  for (std::size_t cols : {1u, 4u, 13u, 64u})
    for (std::size_t rows : {1u, 7u})
      for (double s : {0.0, 0.1, 0.25, 0.29, 0.5, 0.75, 0.9, 0.999}) {
        const auto sc = prune_oracle::tied_scores(rows * cols, 100 + rows * cols);
        const pp::mask m = pp::unstructured_mask(mv(sc, rows, cols), s, pp::scope::per_row);
        const std::size_t k = pp::pruned_count(s, cols);
        INFO("rows " << rows << " cols " << cols << " s " << s);
        REQUIRE(m.count() == rows * (cols - k));
        for (std::size_t i = 0; i < rows; ++i) {
          REQUIRE(m.row_count(i) == cols - k);
          const std::vector<float> row(sc.begin() + long(i * cols), sc.begin() + long((i + 1) * cols));
          const auto keep = prune_oracle::keep_by_sort(row, k);
          for (std::size_t j = 0; j < cols; ++j) REQUIRE(m.kept(i, j) == bool(keep[j]));
        }
        CHECK(m.density() == double(cols - k) / double(cols));
      }
}

TEST_CASE("global unstructured masks prune exactly floor(s*n) in oracle order") {
  for (std::size_t rows : {1u, 5u, 33u})
    for (std::size_t cols : {3u, 16u, 50u})
      for (double s : {0.0, 0.3, 0.5, 0.8, 0.97}) {
        const std::size_t n = rows * cols;
        const auto sc = prune_oracle::tied_scores(n, 7 + n, 9);
        const pp::mask m = pp::unstructured_mask(mv(sc, rows, cols), s, pp::scope::global);
        const std::size_t k = pp::pruned_count(s, n);
        const auto keep = prune_oracle::keep_by_sort(sc, k);
        INFO("rows " << rows << " cols " << cols << " s " << s);
        REQUIRE(m.pruned() == k);
        for (std::size_t i = 0; i < n; ++i) REQUIRE(m.data()[i] == keep[i]);
      }
  // Continuous scores: the same with a single threshold (no ties).
  const auto g = pare_test::gaussian(300 * 70, 5);
  const pp::mask m = pp::unstructured_mask(mv(g, 300, 70), 0.5, pp::scope::global);
  CHECK(m.count() == 300 * 70 / 2);
  const auto keep = prune_oracle::keep_by_sort(g, 300 * 70 / 2);
  for (std::size_t i = 0; i < g.size(); ++i) REQUIRE(m.data()[i] == keep[i]);
}

TEST_CASE("global and per-row thresholds differ as they should") {
  // Row 0 holds large scores, row 1 small ones.
  const std::vector<float> s{10, 11, 12, 13, 1, 2, 3, 4};
  const pp::mask g = pp::unstructured_mask(mv(s, 2, 4), 0.5, pp::scope::global);
  const pp::mask r = pp::unstructured_mask(mv(s, 2, 4), 0.5, pp::scope::per_row);
  CHECK(g.row_count(0) == 4);
  CHECK(g.row_count(1) == 0);
  CHECK(r.row_count(0) == 2);
  CHECK(r.row_count(1) == 2);
  CHECK(r.kept(0, 2));
  CHECK(r.kept(0, 3));
  CHECK_FALSE(r.kept(0, 0));
  CHECK(r.kept(1, 3));
  CHECK(g.count() == r.count());
}

TEST_CASE("ties keep the lower index and infinities rank normally") {
  const std::vector<float> eq(8, 1.0f);
  const pp::mask m = pp::unstructured_mask(mv(eq, 2, 4), 0.5, pp::scope::per_row);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(m.kept(i, 0));
    CHECK(m.kept(i, 1));
    CHECK_FALSE(m.kept(i, 2));
    CHECK_FALSE(m.kept(i, 3));
  }
  const pp::mask g = pp::unstructured_mask(mv(eq, 2, 4), 0.25, pp::scope::global);
  CHECK_FALSE(g.kept(1, 2));
  CHECK_FALSE(g.kept(1, 3));
  CHECK(g.kept(1, 1));
  // -0 and +0 are equal scores; +inf is kept, -inf pruned first.
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> z{-0.0f, 0.0f, inf, -inf};
  const pp::mask zm = pp::unstructured_mask(mv(z, 1, 4), 0.5, pp::scope::per_row);
  CHECK(zm.kept(0, 2));
  CHECK(zm.kept(0, 0));
  CHECK_FALSE(zm.kept(0, 1));
  CHECK_FALSE(zm.kept(0, 3));
}

TEST_CASE("strided score views give the same masks as contiguous copies") {
  const auto sc = pare_test::gaussian(12 * 9, 11);
  const matrix_view<const float> t = mv(sc, 12, 9).transposed();  // 9 x 12, strided
  std::vector<float> dense(9 * 12);
  for (std::size_t i = 0; i < 9; ++i)
    for (std::size_t j = 0; j < 12; ++j) dense[i * 12 + j] = t(i, j);
  for (auto scp : {pp::scope::per_row, pp::scope::global})
    CHECK(pp::unstructured_mask(t, 0.4, scp) == pp::unstructured_mask(mv(dense, 9, 12), 0.4, scp));
  CHECK(pp::nm_mask(t, 2, 4) == pp::nm_mask(mv(dense, 9, 12), 2, 4));
}

TEST_CASE("unstructured masks reject bad sparsity and NaN scores") {
  std::vector<float> s = pare_test::gaussian(12, 1);
  for (double bad : {-0.5, 1.0, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()})
    prune_oracle::require_throws<pare::argument_error>(
        [&] { (void)pp::unstructured_mask(mv(s, 3, 4), bad, pp::scope::per_row); }, {"pare::prune::unstructured_mask", "'sparsity'"});
  s[6] = std::numeric_limits<float>::quiet_NaN();
  prune_oracle::require_throws<pare::value_error>([&] { (void)pp::unstructured_mask(mv(s, 3, 4), 0.5, pp::scope::global); },
                                                  {"'scores'", "NaN at (1, 2)"});
}

TEST_CASE("N:M masks keep exactly N of every M consecutive inputs in oracle order") {
  struct nm_case {
    std::size_t n, m;
  };
  for (nm_case c : {nm_case{2, 4}, nm_case{4, 8}, nm_case{1, 4}, nm_case{3, 7}, nm_case{1, 2}, nm_case{5, 5}, nm_case{1, 1}})
    for (std::size_t rows : {1u, 6u}) {
      const std::size_t cols = c.m * 5;
      const auto sc = prune_oracle::tied_scores(rows * cols, c.n * 13 + c.m, 3);
      const pp::mask msk = pp::nm_mask(mv(sc, rows, cols), c.n, c.m);
      INFO(c.n << ":" << c.m << " rows " << rows);
      REQUIRE(pp::is_nm(msk, c.n, c.m));
      REQUIRE(msk.count() * c.m == msk.size() * c.n);
      CHECK(msk.density() == double(c.n) / double(c.m));
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t g = 0; g < cols; g += c.m) {
          std::size_t kept = 0;
          for (std::size_t j = 0; j < c.m; ++j) kept += msk.kept(i, g + j);
          REQUIRE(kept == c.n);
          const std::vector<float> grp(sc.begin() + long(i * cols + g), sc.begin() + long(i * cols + g + c.m));
          const auto keep = prune_oracle::keep_by_sort(grp, c.m - c.n);
          for (std::size_t j = 0; j < c.m; ++j) REQUIRE(msk.kept(i, g + j) == bool(keep[j]));
        }
    }
}

TEST_CASE("N:M checks on masks and weights") {
  const auto w0 = pare_test::gaussian(4 * 8, 3);
  std::vector<float> w = w0;
  const pp::mask m = pp::nm_mask(mv(w, 4, 8), 2, 4);
  CHECK(pp::is_nm(m, 2, 4));
  CHECK_FALSE(pp::is_nm(m, 1, 4));
  CHECK_FALSE(pp::is_nm(m, 2, 3));  // columns not a multiple of 3
  CHECK_FALSE(pp::is_nm_sparse(mv(w, 4, 8), 2, 4));
  pp::apply(m, matrix_view<float>(w.data(), 4, 8));
  CHECK(pp::is_nm_sparse(mv(w, 4, 8), 2, 4));
  CHECK(pp::is_nm_sparse(mv(w, 4, 8), 4, 8));
  CHECK(pp::nonzero_mask(mv(w, 4, 8)) == m);
  pp::mask broken = m;
  broken.set(0, 0, !broken.kept(0, 0));
  CHECK_FALSE(pp::is_nm(broken, 2, 4));
}

TEST_CASE("N:M masks reject bad N, M and shapes") {
  const auto s = pare_test::gaussian(3 * 10, 2);
  prune_oracle::require_throws<pare::argument_error>([&] { (void)pp::nm_mask(mv(s, 3, 10), 0, 5); }, {"'n'", "1 <= n <= m = 5", "got 0"});
  prune_oracle::require_throws<pare::argument_error>([&] { (void)pp::nm_mask(mv(s, 3, 10), 6, 5); }, {"'n'", "got 6"});
  prune_oracle::require_throws<pare::argument_error>([&] { (void)pp::nm_mask(mv(s, 3, 10), 1, 0); }, {"'m'"});
  prune_oracle::require_throws<pare::shape_error>([&] { (void)pp::nm_mask(mv(s, 3, 10), 2, 4); },
                                                  {"'scores'", "divisible by m = 4", "[3, 10]"});
  std::vector<float> bad = s;
  bad[11] = std::numeric_limits<float>::quiet_NaN();
  prune_oracle::require_throws<pare::value_error>([&] { (void)pp::nm_mask(mv(bad, 3, 10), 1, 5); }, {"NaN at (1, 1)"});
  pp::mask m(2, 8);
  prune_oracle::require_throws<pare::argument_error>([&] { (void)pp::is_nm(m, 5, 4); }, {"'n'"});
}

TEST_CASE("row and column masks, keep lists and apply") {
  const pp::mask r = pp::row_mask(4, 3, {0, 2});
  CHECK(r.count() == 6);
  CHECK(r.row_count(1) == 0);
  CHECK(r.row_count(2) == 3);
  const pp::mask c = pp::column_mask(4, 3, {1});
  CHECK(c.count() == 4);
  CHECK(c.col_count(1) == 4);
  CHECK(c.col_count(0) == 0);
  CHECK((r & c).count() == 2);
  prune_oracle::require_throws<pare::argument_error>([] { (void)pp::row_mask(4, 3, {4}); }, {"'keep_rows'", "below 4"});
  prune_oracle::require_throws<pare::argument_error>([] { (void)pp::column_mask(4, 3, {1, 1}); }, {"'keep_cols'", "distinct"});

  const auto w0 = pare_test::gaussian(12, 4);
  std::vector<float> w = w0;
  pp::apply(r, matrix_view<float>(w.data(), 4, 3));
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 3; ++j) CHECK(w[i * 3 + j] == (r.kept(i, j) ? w0[i * 3 + j] : 0.0f));
  // A shape mismatch changes nothing.
  std::vector<float> w2 = w0;
  prune_oracle::require_throws<pare::shape_error>([&] { pp::apply(r, matrix_view<float>(w2.data(), 3, 4)); }, {"[4, 3]", "[3, 4]"});
  CHECK(w2 == w0);
  // Strided target: apply to the transpose view of a 3 x 4 buffer.
  std::vector<float> w3 = w0;
  pp::apply(r, matrix_view<float>(w3.data(), 3, 4).transposed());
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 3; ++j) CHECK(w3[j * 4 + i] == (r.kept(i, j) ? w0[j * 4 + i] : 0.0f));

  const std::vector<float> s{3, 1, 3, 2, 0};
  CHECK(pp::keep_top(s, 2) == std::vector<std::size_t>{0, 2});
  CHECK(pp::keep_top(s, 0).empty());
  CHECK(pp::keep_top(s, 5).size() == 5);
  CHECK(pp::keep_at_sparsity(s, 0.5) == std::vector<std::size_t>{0, 2, 3});  // 2 of 5 pruned
  prune_oracle::require_throws<pare::argument_error>([&] { (void)pp::keep_top(s, 6); }, {"'n_keep'", "at most 5"});
  const std::vector<float> eq(6, 0.5f);
  CHECK(pp::keep_top(eq, 3) == std::vector<std::size_t>{0, 1, 2});
  CHECK_THROWS_AS(pp::keep_top({1.0f, std::nanf("")}, 1), pare::value_error);
}

TEST_CASE("mask counts, density and empty masks") {
  pp::mask m(3, 5);
  CHECK(m.count() == 15);
  CHECK(m.density() == 1.0);
  m.set(1, 1, false);
  m.set(2, 4, false);
  CHECK(m.count() == 13);
  CHECK(m.pruned() == 2);
  CHECK(m.sparsity() == Approx(2.0 / 15.0));
  CHECK(pp::mask(0, 4).density() == 1.0);
  CHECK(pp::mask(2, 2, false).count() == 0);
  CHECK_THROWS_AS(m &= pp::mask(5, 3), pare::shape_error);
  CHECK(m.count() == 13);
}
