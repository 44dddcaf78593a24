// plan_decomposition: the low-rank engine — ranks by a rank policy, factors by a method — over named matrices and their calibration statistics, shared by decomposer<...> and the model pipeline.
#pragma once

// For every input W [out, in] (with the statistics of its inputs for asvd / whiten):
// ranks that depend on the shape only (rank=, ratio=) are known first, and a layer whose
// factorization would not save parameters (r·(out + in) ≥ out·in, any r ≥ min(out, in))
// stays dense with the reason recorded; the others are factored (pare/lowrank/
// activation_aware.hpp, exact or randomized SVD); energy= takes per layer the smallest
// rank keeping the fraction of Σσ²(W·T); budget= allocates ranks over all inputs
// (allocate_ranks). Each layer records rank, retained energy and parameters; the
// decomposition gives the factors of any rank (layer.decomposition.factors(rank)).
// Energy thresholds are per method (σ of a whitened or scaled matrix concentrates its
// energy differently), so compare methods at equal ranks. Errors: argument_error naming the
// spec field or 'stats'; nothing is returned half-done.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/lowrank/activation_aware.hpp"
#include "pare/lowrank/lowrank_spec.hpp"
#include "pare/lowrank/rank_policy.hpp"
#include "pare/stats/linear_input_stats.hpp"

PARE_NAMESPACE_BEGIN

/// One matrix to decompose: its name (for messages and records), weights and input statistics.
struct decompose_input {
  std::string name;
  matrix_view<const float> w;                  ///< [out, in]
  const linear_input_stats* stats = nullptr;  ///< needed by asvd and whiten
};

/// One layer of a plan.
struct layer_decomposition {
  std::string name;
  std::size_t rows = 0, cols = 0;
  std::size_t rank = 0;        ///< chosen rank (for a dense layer: what the policy asked for)
  bool dense = false;          ///< stays as it is
  std::string reason;          ///< why it stays dense
  double energy = 1.0;         ///< retained fraction of Σσ²(W·T) (1 when dense)
  std::size_t parameters = 0;  ///< rank·(rows + cols), or rows·cols when dense
  lowrank_decomposition decomposition;  ///< empty for layers skipped before factoring
};

struct decomposition_plan {
  lowrank_spec spec;
  std::vector<layer_decomposition> layers;
  std::size_t parameters_before = 0;  ///< Σ rows·cols of the selected layers
  std::size_t parameters_after = 0;   ///< Σ parameters of the selected layers after the step
};

/// Decides every layer's rank under `spec` and factors the layers that save parameters.
inline decomposition_plan plan_decomposition(const std::vector<decompose_input>& inputs, const lowrank_spec& spec,
                                             const char* where = "pare::plan_decomposition") {
  decomposition_plan plan;
  plan.spec = spec;
  if (spec.policy == lowrank_spec::policy_kind::rank && spec.rank == 0)
    detail::fail<argument_error>(where, ": argument 'spec': expected rank ≥ 1, got 0");
  if (spec.policy != lowrank_spec::policy_kind::rank && !(spec.value > 0.0 && spec.value <= 1.0))
    detail::fail<argument_error>(where, ": argument 'spec': expected a fraction in (0, 1], got ", spec.value);
  if (spec.randomized && (spec.policy == lowrank_spec::policy_kind::energy || spec.policy == lowrank_spec::policy_kind::budget))
    detail::fail<argument_error>(where, ": argument 'spec': randomized SVD needs policy rank= or ratio=, got ", spec.str());
  for (const decompose_input& in : inputs) {
    layer_decomposition lp;
    lp.name = in.name;
    lp.rows = in.w.rows();
    lp.cols = in.w.cols();
    if (spec.method != lowrank_method::plain && !in.stats)
      detail::fail<argument_error>(where, ": argument 'stats': expected calibration statistics of layer '", in.name,
                                   "' for method ", to_string(spec.method), ", got none");
    plan.layers.push_back(std::move(lp));
  }
  if (plan.layers.empty()) return plan;

  // Ranks that depend on the shape only are known before factoring: skip hopeless layers.
  for (layer_decomposition& lp : plan.layers) {
    const std::size_t mn = std::min(lp.rows, lp.cols);
    if (spec.policy == lowrank_spec::policy_kind::rank) lp.rank = spec.rank;
    else if (spec.policy == lowrank_spec::policy_kind::ratio) lp.rank = rank_for_ratio(lp.rows, lp.cols, spec.value);
    else continue;
    if (lp.rank == 0) {
      lp.dense = true;
      lp.reason = detail::concat("ratio ", spec.value, " leaves no rank r ≥ 1 with r·(", lp.rows, " + ", lp.cols, ") ≤ ",
                                 spec.value, "·", lp.rows, "·", lp.cols);
    } else if (lp.rank > mn) {
      lp.dense = true;
      lp.reason = detail::concat("rank ", lp.rank, " exceeds min(out, in) = ", mn, ": a factorization would not save parameters");
    } else if (!lowrank_saves(lp.rows, lp.cols, lp.rank)) {
      lp.dense = true;
      lp.reason = detail::concat("rank ", lp.rank, ": ", lp.rank, "·(", lp.rows, " + ", lp.cols, ") = ",
                                 lowrank_parameters(lp.rows, lp.cols, lp.rank), " ≥ ", lp.rows, "·", lp.cols, " = ",
                                 lp.rows * lp.cols, " parameters: a factorization would not save parameters");
    }
  }
  for (std::size_t i = 0; i < plan.layers.size(); ++i) {
    layer_decomposition& lp = plan.layers[i];
    if (lp.dense) continue;
    activation_aware_options opt = spec.options;
    opt.randomized_rank = spec.randomized ? lp.rank : 0;
    const linear_input_stats* st = spec.method == lowrank_method::plain ? nullptr : inputs[i].stats;
    lp.decomposition = lowrank_decompose(inputs[i].w, spec.method, st, opt);
  }
  if (spec.policy == lowrank_spec::policy_kind::energy) {
    for (layer_decomposition& lp : plan.layers) {
      lp.rank = std::max<std::size_t>(1, rank_for_energy(lp.decomposition.svd().s, spec.value));
      if (!lowrank_saves(lp.rows, lp.cols, lp.rank)) {
        lp.dense = true;
        lp.reason = detail::concat("energy ", spec.value, " needs rank ", lp.rank, ": ", lp.rank, "·(", lp.rows, " + ", lp.cols,
                                   ") = ", lowrank_parameters(lp.rows, lp.cols, lp.rank), " ≥ ", lp.rows, "·", lp.cols, " = ",
                                   lp.rows * lp.cols, " parameters: a factorization would not save parameters");
      }
    }
  } else if (spec.policy == lowrank_spec::policy_kind::budget) {
    std::vector<rank_allocation_layer> layers;
    std::size_t total = 0;
    for (const layer_decomposition& lp : plan.layers) {
      layers.push_back({lp.rows, lp.cols, lp.decomposition.svd().s});
      total += lp.rows * lp.cols;
    }
    const auto budget = static_cast<std::size_t>(std::floor(spec.value * double(total)));
    const rank_allocation alloc = allocate_ranks(layers, budget);
    for (std::size_t i = 0; i < plan.layers.size(); ++i) {
      layer_decomposition& lp = plan.layers[i];
      lp.rank = alloc.ranks[i];
      if (alloc.dense[i]) {
        lp.dense = true;
        lp.reason = max_saving_rank(lp.rows, lp.cols) == 0
                        ? std::string("no rank saves parameters for this shape")
                        : detail::concat("the budget allocation kept it dense (cheaper than rank > ",
                                         max_saving_rank(lp.rows, lp.cols), ")");
      }
    }
  }
  for (layer_decomposition& lp : plan.layers) {
    plan.parameters_before += lp.rows * lp.cols;
    if (lp.dense) {
      lp.energy = 1.0;
      lp.parameters = lp.rows * lp.cols;
    } else {
      const svd_result<double>& d = lp.decomposition.svd();
      const double kept = d.energy() - d.tail_energy(lp.rank);
      lp.energy = lp.decomposition.total_energy() > 0 ? kept / lp.decomposition.total_energy() : 1.0;
      lp.parameters = lowrank_parameters(lp.rows, lp.cols, lp.rank);
    }
    plan.parameters_after += lp.parameters;
  }
  return plan;
}

PARE_NAMESPACE_END
