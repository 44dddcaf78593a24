// Rank policies for low-rank factorization: fixed rank, energy fraction, parameter ratio, and greedy allocation of ranks across layers under one budget.
#pragma once

// A rank-r factorization of a [rows, cols] matrix stores r·(rows + cols) parameters; it
// saves parameters only while r·(rows + cols) < rows·cols (r ≤ max_saving_rank).
//
//   rank_for_energy(s, e)      smallest r with Σ_{i<r} s_i² ≥ e·Σ_i s_i²   (e in (0, 1];
//                              the partial sums are the same running sum, so r ≤ s.size();
//                              an all-zero spectrum gives 0)
//   rank_for_ratio(m, n, ρ)    largest r with r·(m + n) ≤ ρ·m·n, at most min(m, n) (ρ in (0, 1])
//   allocate_ranks(layers, B)  one parameter budget B over several layers, greedy by
//                              marginal energy per parameter (below)
//
// allocate_ranks — greedy by marginal energy per parameter (not water-filling): every layer
// starts at rank 1 (a layer too small to save anything even at rank 1 stays dense), then
// repeatedly the step with the largest gain/cost among all layers is taken if it fits in
// what is left of the budget; a layer whose step does not fit gets no further steps (its
// later steps cost as much or more, and the budget only shrinks). Steps of a layer:
//   rank r → r + 1 (while r < max_saving_rank):  gain s_r²/‖s‖², cost rows + cols
//   max_saving_rank → dense:                     gain Σ_{i≥r} s_i²/‖s‖², cost rows·cols − r·(rows + cols)
// Gains are each layer's own energy fractions, so layers of different scales compare (the
// objective is the sum over layers of the retained energy fraction). Within a layer the
// rank gains are non-increasing, so the greedy order equals the order of the Lagrangian
// (equal marginal gain per parameter) solution; it stops at the first step that does not fit
// per layer rather than solving the integer knapsack exactly. Zero-gain steps are not taken.
// Result invariants: parameters ≤ budget, and every layer that can still gain has a next
// step costing more than budget − parameters.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <queue>
#include <vector>

#include "pare/core/error.hpp"

PARE_NAMESPACE_BEGIN

/// r·(rows + cols): parameters of a rank-r factorization.
constexpr std::size_t lowrank_parameters(std::size_t rows, std::size_t cols, std::size_t r) noexcept {
  return r * (rows + cols);
}
/// True when a rank-r factorization stores fewer parameters than the dense matrix.
constexpr bool lowrank_saves(std::size_t rows, std::size_t cols, std::size_t r) noexcept {
  return r * (rows + cols) < rows * cols;
}
/// The largest r with r·(rows + cols) < rows·cols (0 when even rank 1 saves nothing).
constexpr std::size_t max_saving_rank(std::size_t rows, std::size_t cols) noexcept {
  return rows * cols == 0 ? 0 : (rows * cols - 1) / (rows + cols);
}

/// Σ_{i<r} s_i² / Σ s_i² (1 for an all-zero spectrum).
template <class T>
double energy_fraction(const std::vector<T>& s, std::size_t r) {
  double kept = 0, total = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const double e = double(s[i]) * double(s[i]);
    total += e;
    if (i < r) kept += e;
  }
  return total > 0 ? kept / total : 1.0;
}

/// The smallest r with Σ_{i<r} s_i² ≥ energy·Σ s_i² (s non-increasing, energy in (0, 1]).
template <class T>
std::size_t rank_for_energy(const std::vector<T>& s, double energy) {
  if (!(energy > 0.0 && energy <= 1.0))
    detail::fail<argument_error>("pare::rank_for_energy: argument 'energy': expected a fraction in (0, 1], got ", energy);
  for (std::size_t i = 0; i < s.size(); ++i)
    if (!(std::isfinite(double(s[i])) && s[i] >= T(0)))
      detail::fail<value_error>("pare::rank_for_energy: argument 's': expected finite non-negative values, got ", s[i],
                                " at ", i);
  std::vector<double> cum(s.size() + 1, 0.0);  // cum[r] = Σ_{i<r} s_i²
  for (std::size_t i = 0; i < s.size(); ++i) cum[i + 1] = cum[i] + double(s[i]) * double(s[i]);
  const double target = energy * cum.back();
  for (std::size_t r = 0; r <= s.size(); ++r)
    if (cum[r] >= target) return r;
  return s.size();  // not reached: cum.back() ≥ energy·cum.back()
}

/// The largest r ≤ min(rows, cols) with r·(rows + cols) ≤ ratio·rows·cols (ratio in (0, 1]).
inline std::size_t rank_for_ratio(std::size_t rows, std::size_t cols, double ratio) {
  if (!(ratio > 0.0 && ratio <= 1.0))
    detail::fail<argument_error>("pare::rank_for_ratio: argument 'ratio': expected a fraction in (0, 1], got ", ratio);
  if (rows == 0 || cols == 0) return 0;
  const double cap = ratio * double(rows) * double(cols);
  const double per = double(rows + cols);
  std::size_t r = std::min<std::size_t>(static_cast<std::size_t>(cap / per), std::min(rows, cols));
  while (r > 0 && double(r) * per > cap) --r;
  while (r < std::min(rows, cols) && double(r + 1) * per <= cap) ++r;
  return r;
}

/// One layer for allocate_ranks: its shape and full spectrum (min(rows, cols) values, non-increasing).
struct rank_allocation_layer {
  std::size_t rows = 0, cols = 0;
  std::vector<double> s;
};

struct rank_allocation {
  std::vector<std::size_t> ranks;  ///< per layer; min(rows, cols) for a dense layer
  std::vector<bool> dense;         ///< kept dense (costs rows·cols)
  std::size_t parameters = 0;      ///< Σ r·(rows + cols) over factorized + Σ rows·cols over dense layers
  std::size_t budget = 0;
  double energy = 0;  ///< Σ over layers of the retained energy fraction
};

/// Ranks for `layers` under one parameter budget, greedy by marginal energy per parameter
/// (see the top of this file). argument_error if the budget cannot give every layer rank 1.
inline rank_allocation allocate_ranks(const std::vector<rank_allocation_layer>& layers, std::size_t budget) {
  const char* where = "pare::allocate_ranks";
  const std::size_t n = layers.size();
  rank_allocation out;
  out.ranks.assign(n, 0);
  out.dense.assign(n, false);
  out.budget = budget;
  std::vector<double> total(n, 0.0);
  std::size_t floor_cost = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const rank_allocation_layer& L = layers[i];
    if (L.rows == 0 || L.cols == 0 || L.s.size() != std::min(L.rows, L.cols))
      detail::fail<argument_error>(where, ": argument 'layers': layer ", i, ": expected a non-empty shape and min(rows, cols) = ",
                                   std::min(L.rows, L.cols), " singular values, got shape [", L.rows, ", ", L.cols, "] and ",
                                   L.s.size(), " values");
    for (std::size_t j = 0; j < L.s.size(); ++j) {
      if (!(std::isfinite(L.s[j]) && L.s[j] >= 0.0) || (j > 0 && L.s[j] > L.s[j - 1]))
        detail::fail<value_error>(where, ": argument 'layers': layer ", i,
                                  ": expected finite, non-negative, non-increasing singular values, got ", L.s[j], " at ", j);
      total[i] += L.s[j] * L.s[j];
    }
    if (max_saving_rank(L.rows, L.cols) == 0) {
      out.dense[i] = true;
      out.ranks[i] = std::min(L.rows, L.cols);
      floor_cost += L.rows * L.cols;
    } else {
      out.ranks[i] = 1;
      floor_cost += L.rows + L.cols;
    }
  }
  if (floor_cost > budget)
    detail::fail<argument_error>(where, ": argument 'budget': expected at least ", floor_cost,
                                 " parameters (rank 1 for every layer), got ", budget);
  out.parameters = floor_cost;

  struct step {
    double key;  // gain per parameter
    std::size_t layer, cost;
    double gain;
    bool operator<(const step& o) const { return key < o.key || (key == o.key && layer > o.layer); }
  };
  auto next_step = [&](std::size_t i, step& st) {
    const rank_allocation_layer& L = layers[i];
    if (out.dense[i] || total[i] <= 0.0) return false;
    const std::size_t r = out.ranks[i], cap = max_saving_rank(L.rows, L.cols);
    if (r < cap) {
      st = {0, i, L.rows + L.cols, L.s[r] * L.s[r] / total[i]};
    } else {
      double tail = 0;
      for (std::size_t j = L.s.size(); j-- > r;) tail += L.s[j] * L.s[j];
      st = {0, i, L.rows * L.cols - r * (L.rows + L.cols), tail / total[i]};
    }
    if (!(st.gain > 0.0)) return false;
    st.key = st.gain / double(st.cost);
    return true;
  };
  std::priority_queue<step> heap;
  for (std::size_t i = 0; i < n; ++i) {
    step st{};
    if (next_step(i, st)) heap.push(st);
  }
  while (!heap.empty()) {
    const step st = heap.top();
    heap.pop();
    if (st.cost > budget - out.parameters) continue;  // never fits again: the layer is done
    out.parameters += st.cost;
    const rank_allocation_layer& L = layers[st.layer];
    if (out.ranks[st.layer] < max_saving_rank(L.rows, L.cols)) {
      ++out.ranks[st.layer];
    } else {
      out.dense[st.layer] = true;
      out.ranks[st.layer] = std::min(L.rows, L.cols);
    }
    step nx{};
    if (next_step(st.layer, nx)) heap.push(nx);
  }
  for (std::size_t i = 0; i < n; ++i) {
    double kept = 0;
    for (std::size_t j = 0; j < out.ranks[i]; ++j) kept += layers[i].s[j] * layers[i].s[j];
    out.energy += out.dense[i] || total[i] <= 0.0 ? 1.0 : kept / total[i];
  }
  return out;
}

PARE_NAMESPACE_END
