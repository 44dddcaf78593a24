// Rank policies: energy threshold is the smallest rank meeting it, ratio bound, and the global budget allocation's invariants.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "pare/core/rng.hpp"
#include "pare/lowrank/rank_policy.hpp"

namespace {

std::vector<double> random_spectrum(std::size_t k, std::uint64_t seed) {
  pare::splitmix64 g(seed);
  std::vector<double> s(k);
  for (double& x : s) x = g.uniform() * (g.uniform() < 0.2 ? 10.0 : 1.0);
  std::sort(s.rbegin(), s.rend());
  return s;
}

/// Σ_{i<r} s_i² ≥ e·Σ s_i², evaluated in long double independently of the library.
bool meets(const std::vector<double>& s, std::size_t r, double e) {
  long double kept = 0, total = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    total += (long double)s[i] * s[i];
    if (i < r) kept += (long double)s[i] * s[i];
  }
  return kept >= e * total * (1 - 1e-15L);
}
bool meets_strictly(const std::vector<double>& s, std::size_t r, double e) {
  long double kept = 0, total = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    total += (long double)s[i] * s[i];
    if (i < r) kept += (long double)s[i] * s[i];
  }
  return kept >= e * total * (1 + 1e-15L);
}

}  // namespace

TEST_CASE("rank_for_energy: the smallest rank meeting the threshold") {
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    const std::vector<double> s = random_spectrum(1 + seed % 40, seed);
    for (double e : {0.01, 0.5, 0.9, 0.95, 0.99, 1.0}) {
      const std::size_t r = pare::rank_for_energy(s, e);
      INFO("seed " << seed << ", energy " << e << ", rank " << r << " of " << s.size());
      REQUIRE(r <= s.size());
      CHECK(meets(s, r, e));
      if (r > 0) CHECK_FALSE(meets_strictly(s, r - 1, e));
      CHECK(pare::energy_fraction(s, r) >= e * (1 - 1e-12));
    }
  }
  // Exact cases: energies 16, 9, 4, 1 (total 30).
  const std::vector<double> s{4, 3, 2, 1};
  CHECK(pare::rank_for_energy(s, 16.0 / 30) == 1);
  CHECK(pare::rank_for_energy(s, 16.0 / 30 + 1e-9) == 2);
  CHECK(pare::rank_for_energy(s, 25.0 / 30) == 2);
  CHECK(pare::rank_for_energy(s, 1.0) == 4);
  CHECK(pare::rank_for_energy(std::vector<double>{1, 0, 0}, 1.0) == 1);
  CHECK(pare::rank_for_energy(std::vector<double>{0, 0}, 0.9) == 0);
  CHECK_THROWS_AS(pare::rank_for_energy(s, 0.0), pare::argument_error);
  CHECK_THROWS_AS(pare::rank_for_energy(s, 1.5), pare::argument_error);
  CHECK_THROWS_AS(pare::rank_for_energy(s, std::nan("")), pare::argument_error);
  CHECK_THROWS_AS(pare::rank_for_energy(std::vector<double>{1, -1}, 0.5), pare::value_error);
}

TEST_CASE("rank_for_ratio: the largest rank within the parameter ratio") {
  for (std::size_t m : {1u, 7u, 64u, 172u, 512u})
    for (std::size_t n : {1u, 32u, 64u, 4096u})
      for (double ratio : {0.05, 0.25, 0.5, 0.75, 1.0}) {
        const std::size_t r = pare::rank_for_ratio(m, n, ratio);
        INFO(m << "x" << n << " ratio " << ratio << " -> " << r);
        CHECK(r <= std::min(m, n));
        CHECK(double(r) * double(m + n) <= ratio * double(m) * double(n));
        if (r < std::min(m, n)) CHECK(double(r + 1) * double(m + n) > ratio * double(m) * double(n));
      }
  CHECK(pare::rank_for_ratio(64, 64, 0.5) == 16);  // 16·128 = 2048 = 0.5·4096
  CHECK(pare::max_saving_rank(64, 64) == 31);      // 31·128 < 4096 = 32·128
  CHECK(pare::lowrank_saves(64, 64, 31));
  CHECK_FALSE(pare::lowrank_saves(64, 64, 32));
  CHECK(pare::max_saving_rank(1, 9) == 0);
  CHECK_THROWS_AS(pare::rank_for_ratio(4, 4, 0.0), pare::argument_error);
  CHECK_THROWS_AS(pare::rank_for_ratio(4, 4, 1.01), pare::argument_error);
}

TEST_CASE("allocate_ranks: budget respected, maximal, and energy goes where it is cheapest") {
  std::vector<pare::rank_allocation_layer> layers;
  const std::pair<std::size_t, std::size_t> shapes[] = {{64, 64}, {32, 64}, {172, 64}, {64, 172}, {512, 64}, {3, 2}};
  std::size_t total = 0;
  for (std::size_t i = 0; i < 6; ++i) {
    pare::rank_allocation_layer l{shapes[i].first, shapes[i].second, random_spectrum(std::min(shapes[i].first, shapes[i].second), 100 + i)};
    total += l.rows * l.cols;
    layers.push_back(l);
  }
  for (double frac : {0.1, 0.3, 0.5, 0.8, 1.0}) {
    const auto budget = static_cast<std::size_t>(frac * double(total));
    const pare::rank_allocation a = pare::allocate_ranks(layers, budget);
    INFO("budget fraction " << frac);
    REQUIRE(a.ranks.size() == layers.size());
    std::size_t used = 0;
    double energy = 0;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const auto& l = layers[i];
      if (a.dense[i]) {
        used += l.rows * l.cols;
        energy += 1.0;
        continue;
      }
      CHECK(a.ranks[i] >= 1);
      CHECK(pare::lowrank_saves(l.rows, l.cols, a.ranks[i]));
      used += a.ranks[i] * (l.rows + l.cols);
      energy += pare::energy_fraction(l.s, a.ranks[i]);
      // Maximal: the layer's next step (one more rank, or dense at the cap) does not fit.
      const std::size_t cap = pare::max_saving_rank(l.rows, l.cols);
      const std::size_t next = a.ranks[i] < cap ? l.rows + l.cols : l.rows * l.cols - cap * (l.rows + l.cols);
      CHECK(next > budget - a.parameters);
    }
    CHECK(used == a.parameters);
    CHECK(a.parameters <= budget);
    CHECK(a.energy == Approx(energy).epsilon(1e-12));
    CHECK(a.dense[5]);  // 3×2: no rank saves anything
  }
  // Two layers of one shape, a steep and a flat spectrum: the steep one needs few ranks to
  // reach most of its energy, so the flat one gets the larger rank under a tight budget.
  std::vector<double> steep(64), flat(64, 1.0);
  for (std::size_t i = 0; i < 64; ++i) steep[i] = std::pow(0.5, double(i));
  const auto a = pare::allocate_ranks({{64, 64, steep}, {64, 64, flat}}, 20 * 128);
  CHECK(a.ranks[0] < a.ranks[1]);
  CHECK(a.ranks[0] + a.ranks[1] == 20);
  CHECK_THROWS_AS(pare::allocate_ranks({{64, 64, flat}}, 127), pare::argument_error);
  CHECK_THROWS_AS(pare::allocate_ranks({{64, 64, std::vector<double>(10, 1.0)}}, 1000), pare::argument_error);
  CHECK_THROWS_AS(pare::allocate_ranks({{2, 2, std::vector<double>{1.0, 2.0}}}, 1000), pare::value_error);
}
