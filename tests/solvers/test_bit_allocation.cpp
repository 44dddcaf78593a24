// Multiple-choice knapsack of mixed precision: the DP's choice equals a brute-force enumeration of every assignment on small random tables, sizes and costs add up, a coarsened grid stays feasible, bad input is refused.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "pare/solvers/bit_allocation.hpp"


// The expression throws pare::argument_error, with a message the matcher accepts.
#define CHECK_ARGUMENT_ERROR(expr, matcher) \
  do {                                      \
    CHECK_THROWS_AS(expr, pare::argument_error); \
    CHECK_THROWS_WITH(expr, matcher);       \
  } while (0)

using pare::solvers::allocation_option;
using table = std::vector<std::vector<allocation_option>>;

namespace {

/// Least Σ cost over every assignment with Σ size ≤ budget, by enumeration (infinity if none).
double brute_force(const table& t, std::size_t budget) {
  double best = std::numeric_limits<double>::infinity();
  std::vector<std::size_t> idx(t.size(), 0);
  for (;;) {
    std::size_t size = 0;
    double cost = 0;
    for (std::size_t i = 0; i < t.size(); ++i) size += t[i][idx[i]].size, cost += t[i][idx[i]].cost;
    if (size <= budget && cost < best) best = cost;
    std::size_t i = 0;
    while (i < t.size() && ++idx[i] == t[i].size()) idx[i++] = 0;
    if (i == t.size()) return best;
  }
}

table random_table(std::mt19937_64& rng, std::size_t items, std::size_t max_options, std::size_t max_size) {
  std::uniform_int_distribution<std::size_t> opts(1, max_options), size(0, max_size);
  std::normal_distribution<double> cost(0.0, 1.0);
  table t(items);
  for (auto& item : t) {
    const std::size_t n = opts(rng);
    for (std::size_t j = 0; j < n; ++j) item.push_back({size(rng) * 4 + 12, cost(rng)});  // sizes share a gcd
  }
  return t;
}

std::size_t sum_sizes(const table& t, bool largest) {
  std::size_t s = 0;
  for (const auto& item : t) {
    std::size_t v = largest ? 0 : std::numeric_limits<std::size_t>::max();
    for (const auto& o : item) v = largest ? std::max(v, o.size) : std::min(v, o.size);
    s += v;
  }
  return s;
}

}  // namespace

TEST_CASE("allocate equals brute force on random tables for every budget from the minimum to past the maximum",
          "[solvers][bit_allocation]") {
  std::mt19937_64 rng(20261205);
  std::size_t cases = 0, binding = 0;
  for (int rep = 0; rep < 300; ++rep) {
    const table t = random_table(rng, 1 + rep % 6, 4, 9);
    const std::size_t lo = sum_sizes(t, false), hi = sum_sizes(t, true);
    for (std::size_t budget = lo; budget <= hi + 5; budget += 1 + (hi - lo) / 7) {
      INFO("rep " << rep << " budget " << budget);
      const auto r = pare::solvers::allocate(t, budget);
      REQUIRE(r.choice.size() == t.size());
      std::size_t size = 0;
      double cost = 0;
      for (std::size_t i = 0; i < t.size(); ++i) {
        REQUIRE(r.choice[i] < t[i].size());
        size += t[i][r.choice[i]].size;
        cost += t[i][r.choice[i]].cost;
      }
      CHECK(r.size == size);
      CHECK(r.size <= budget);
      CHECK(r.cost == Approx(cost).margin(1e-12));
      CHECK(r.min_size == lo);
      CHECK(r.exact);
      CHECK(r.cost == Approx(brute_force(t, budget)).margin(1e-9));
      binding += r.size == budget;
      ++cases;
    }
  }
  CHECK(cases > 1000);
  CHECK(binding > 50);  // many optima use the whole budget: the boundary itself is tested
}

TEST_CASE("allocate with a coarsened grid stays within the budget and is never better than the optimum",
          "[solvers][bit_allocation]") {
  std::mt19937_64 rng(7);
  pare::solvers::allocation_options opt;
  opt.max_cells = 40;  // forces a unit coarser than the gcd
  std::size_t coarse = 0;
  for (int rep = 0; rep < 200; ++rep) {
    const table t = random_table(rng, 2 + rep % 5, 4, 30);
    const std::size_t lo = sum_sizes(t, false), hi = sum_sizes(t, true);
    const std::size_t budget = lo + (hi - lo) * std::size_t(rep % 10) / 10;
    const auto r = pare::solvers::allocate(t, budget, opt);
    CHECK(r.size <= budget);
    CHECK(r.cost >= brute_force(t, budget) - 1e-9);
    coarse += !r.exact;
  }
  CHECK(coarse > 100);
}

TEST_CASE("allocate refuses a budget below the smallest sizes, an item without options and non-finite costs",
          "[solvers][bit_allocation]") {
  const table t{{{10, 1.0}, {20, 0.5}}, {{7, 2.0}, {3, 4.0}}};
  CHECK_ARGUMENT_ERROR(pare::solvers::allocate(t, 12),
                       Catch::Contains("argument 'budget'") && Catch::Contains("at least 13") &&
                           Catch::Contains("got 12"));
  CHECK(pare::solvers::allocate(t, 13).choice == std::vector<std::size_t>{0, 1});
  CHECK(pare::solvers::allocate(t, 17).choice == std::vector<std::size_t>{0, 0});
  CHECK(pare::solvers::allocate(t, 27).choice == std::vector<std::size_t>{1, 0});
  const table empty_item{{{1, 0.0}}, {}};
  CHECK_ARGUMENT_ERROR(pare::solvers::allocate(empty_item, 100),
                       Catch::Contains("argument 'items'") && Catch::Contains("item 1"));
  const table nan_cost{{{1, std::nan("")}}};
  CHECK_ARGUMENT_ERROR(pare::solvers::allocate(nan_cost, 100),
                       Catch::Contains("argument 'items'") && Catch::Contains("finite"));
  CHECK(pare::solvers::allocate(table{}, 0).choice.empty());
}
