// bit_allocation: the multiple-choice knapsack of mixed precision (one option per layer, least total cost within a size budget), solved exactly by dynamic programming over sizes.
#pragma once

// Items (layers) each offer options (formats) of an integer size (bytes, or any unit) and a
// cost (a sensitivity: a loss increase, smaller is better; any finite sign). allocate()
// picks one option per item minimising Σ cost subject to Σ size ≤ budget.
//
// Method: subtract each item's smallest size (the budget must cover Σ min sizes, else
// argument_error), so every item has a free option; then, with g the gcd of the remaining
// extra sizes, dp[i][c] = least cost of items 0..i within c·g extra units,
//   dp[i][c] = min_j dp[i−1][c − e_ij/g] + cost_ij,
// over c = 0..C (C = the spare budget / g, capped at Σ max extra / g), and the choices are
// read back from the stored argmins. That is exact: every assignment is some path through
// the table. Work items × C × options, memory items × C choices (2 bytes each).
//
// When items × (C + 1) exceeds allocation_options::max_cells, the extra sizes are rounded
// *up* to a coarser unit u (a multiple of g) and the spare budget down: every assignment
// the coarse table allows fits the true budget, so the result is always feasible; it may
// then miss the optimum by what the rounding hides (result.exact = false says so).
// Ties go to the option listed first.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "pare/core/error.hpp"

PARE_NAMESPACE_BEGIN
namespace solvers {

/// One option of an item: its size (integer units, e.g. bytes) and cost (finite).
struct allocation_option {
  std::size_t size = 0;
  double cost = 0;
};

struct allocation_options {
  std::size_t max_cells = std::size_t(1) << 24;  ///< items × grid cells above which the grid is coarsened
};

struct allocation_result {
  std::vector<std::size_t> choice;  ///< per item, the index of its chosen option
  std::size_t size = 0;             ///< Σ sizes of the chosen options (≤ budget)
  double cost = 0;                  ///< Σ costs of the chosen options
  std::size_t min_size = 0;         ///< Σ of each item's smallest size: the least budget that works
  std::size_t unit = 1;             ///< grid unit of the table (the gcd of the extra sizes when exact)
  bool exact = true;                ///< false: the grid was coarsened (feasible, maybe not optimal)
};

/// Σ of each item's smallest option size. argument_error naming 'items' for an item without
/// options or an option with a non-finite cost.
inline std::size_t allocation_min_size(const std::vector<std::vector<allocation_option>>& items) {
  std::size_t total = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].empty())
      pare::detail::fail<argument_error>("pare::solvers::allocate: argument 'items': expected at least one option per item, got none for item ", i);
    std::size_t lo = std::numeric_limits<std::size_t>::max();
    for (std::size_t j = 0; j < items[i].size(); ++j) {
      if (!std::isfinite(items[i][j].cost))
        pare::detail::fail<argument_error>("pare::solvers::allocate: argument 'items': expected finite costs, got ",
                                           items[i][j].cost, " for item ", i, " option ", j);
      lo = std::min(lo, items[i][j].size);
    }
    total += lo;
  }
  return total;
}

/// The least-cost choice of one option per item with Σ size ≤ budget (see above).
/// argument_error naming 'items' (an item without options, more than 65535 options, a
/// non-finite cost) or 'budget' (below Σ of the smallest sizes: it names that minimum).
inline allocation_result allocate(const std::vector<std::vector<allocation_option>>& items, std::size_t budget,
                                  const allocation_options& opt = {}) {
  const char* where = "pare::solvers::allocate";
  allocation_result r;
  r.min_size = allocation_min_size(items);
  if (budget < r.min_size)
    pare::detail::fail<argument_error>(where, ": argument 'budget': expected at least ", r.min_size,
                                       " (every item at its smallest option), got ", budget);
  const std::size_t n = items.size();
  r.choice.assign(n, 0);
  if (n == 0) return r;
  // Extra sizes over each item's smallest option, and their gcd.
  std::vector<std::vector<std::size_t>> extra(n);
  std::size_t g = 0, max_extra_total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (items[i].size() > 65535)
      pare::detail::fail<argument_error>(where, ": argument 'items': expected at most 65535 options per item, got ",
                                         items[i].size(), " for item ", i);
    std::size_t lo = std::numeric_limits<std::size_t>::max(), hi = 0;
    for (const allocation_option& o : items[i]) lo = std::min(lo, o.size);
    for (const allocation_option& o : items[i]) {
      extra[i].push_back(o.size - lo);
      hi = std::max(hi, o.size - lo);
      g = std::gcd(g, o.size - lo);
    }
    max_extra_total += hi;
  }
  const std::size_t spare = std::min(budget - r.min_size, max_extra_total);
  std::size_t unit = std::max<std::size_t>(g, 1);
  r.exact = true;
  if (n * (spare / unit + 1) > opt.max_cells) {
    const std::size_t cells = std::max<std::size_t>(opt.max_cells / n, 2) - 1;  // grid cells per item beyond 0
    const std::size_t k = spare / unit / cells + 1;                              // coarsening factor
    unit *= k;
    r.exact = false;
  }
  r.unit = unit;
  const std::size_t cap = spare / unit;  // spare units (rounded down)
  // Extra sizes in units, rounded up (exact when unit divides them).
  auto units_of = [unit](std::size_t e) { return (e + unit - 1) / unit; };
  std::vector<double> prev(cap + 1, 0.0), cur(cap + 1);
  std::vector<std::uint16_t> arg(n * (cap + 1));
  const double inf = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c <= cap; ++c) {
      double best = inf;
      std::uint16_t bj = 0;
      for (std::size_t j = 0; j < items[i].size(); ++j) {
        const std::size_t e = units_of(extra[i][j]);
        if (e > c) continue;
        const double v = prev[c - e] + items[i][j].cost;
        if (v < best) {
          best = v;
          bj = static_cast<std::uint16_t>(j);
        }
      }
      cur[c] = best;  // finite: each item has an option of extra 0
      arg[i * (cap + 1) + c] = bj;
    }
    std::swap(prev, cur);
  }
  std::size_t c = cap;
  for (std::size_t i = n; i-- > 0;) {
    const std::size_t j = arg[i * (cap + 1) + c];
    r.choice[i] = j;
    c -= units_of(extra[i][j]);
  }
  r.size = 0;
  r.cost = 0;
  for (std::size_t i = 0; i < n; ++i) {
    r.size += items[i][r.choice[i]].size;
    r.cost += items[i][r.choice[i]].cost;
  }
  return r;
}

}  // namespace solvers
PARE_NAMESPACE_END
