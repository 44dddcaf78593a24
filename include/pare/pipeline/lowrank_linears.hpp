// Model-level low-rank step: replace selected linear layers of a llama_model by factorized_linear under a rank policy (plain / ASVD / whitened SVD).
#pragma once

// lowrank_linears(m, spec, select, calib) factors every selected linear layer W [out, in]
// as A·B (pare/lowrank/activation_aware.hpp) with a rank chosen by the spec's policy and
// replaces it by a factorized_linear. Spec strings (lowrank_spec::parse):
//
//   <policy>[:<method>][:rsvd]
//   policy   rank=<r>      the same rank r ≥ 1 for every layer
//            energy=<e>    per layer the smallest r keeping a fraction e in (0, 1] of Σσ²(W·T)
//            ratio=<ρ>     per layer the largest r with r·(out + in) ≤ ρ·out·in, ρ in (0, 1]
//            budget=<β>    one budget over all selected layers: Σ parameters ≤ β·Σ out·in,
//                          ranks allocated greedily by marginal energy per parameter
//                          (pare::allocate_ranks)
//   method   plain (default) | asvd | asvd=<α> | whiten | whiten=<ridge>
//            (asvd and whiten need calibration statistics: sum |x| resp. XᵀX per layer)
//   rsvd     randomized SVD (oversampling 10, 2 power iterations, seed 0) of only the
//            needed rank; with rank= and ratio= only (energy and budget need the spectrum)
// e.g. "energy=0.9", "energy=0.95:asvd", "energy=0.9:whiten", "rank=16", "ratio=0.5",
// "budget=0.5". A bad spec is an argument_error naming the token.
//
// Energy thresholds are per method: σ(W·T) of a whitened or scaled matrix concentrates its
// energy differently (whitening: in fewer values), so one threshold gives different ranks per
// method; compare methods at equal ranks (plan_lowrank, then set the ranks) or under rank=,
// ratio= or budget=.
//
// A layer whose factorization would not save parameters (r·(out + in) ≥ out·in, including
// any r ≥ min(out, in)) stays as it is; its record says fallback=true and why. With a tied
// classifier, factorizing output.weight also replaces the embedding rows by A·B (one stored
// tensor, as quantize_linears does). Everything is computed before the model is touched:
// an error leaves the model unchanged. plan_lowrank / apply_lowrank split the two steps
// (the plan tells each layer's rank, retained energy and parameters).
// With spec.factor_quant set, the factors are stored quantized (factorized_linear's
// quantized constructor).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <functional>
#include <iomanip>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/strings.hpp"
#include "pare/lowrank/activation_aware.hpp"
#include "pare/lowrank/rank_policy.hpp"
#include "pare/model/calibration.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/model/layers/factorized_linear.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/quant/quant_config.hpp"

PARE_NAMESPACE_BEGIN

struct lowrank_spec {
  enum class policy_kind { rank, energy, ratio, budget };
  policy_kind policy = policy_kind::energy;
  std::size_t rank = 0;  ///< for policy rank
  double value = 0.9;    ///< the fraction for energy / ratio / budget
  lowrank_method method = lowrank_method::plain;
  activation_aware_options options{};     ///< α (asvd), ridge (whiten), randomized SVD settings
  bool randomized = false;                ///< rsvd
  std::optional<quant_config> factor_quant;  ///< store the factors quantized (not part of the string)

  /// Parses the grammar above; argument_error naming the bad token.
  static lowrank_spec parse(const std::string& spec) {
    const std::vector<std::string> tok = split(spec, ':');
    lowrank_spec s;
    auto bad = [&](const std::string& what, const std::string& expected, const std::string& got) {
      detail::fail<argument_error>("lowrank_spec::parse('", spec, "'): argument '", what, "': expected ", expected, ", got '",
                                   got, "'");
    };
    const std::string& p = tok[0];
    const std::size_t eq = p.find('=');
    const std::string key = p.substr(0, eq), val = eq == std::string::npos ? std::string() : p.substr(eq + 1);
    if (key == "rank") {
      s.policy = policy_kind::rank;
      if (val.empty() || val.size() > 9 || val.find_first_not_of("0123456789") != std::string::npos || std::stoul(val) == 0)
        bad("rank", "an integer ≥ 1", val);
      s.rank = std::stoul(val);
    } else if (key == "energy" || key == "ratio" || key == "budget") {
      s.policy = key == "energy" ? policy_kind::energy : key == "ratio" ? policy_kind::ratio : policy_kind::budget;
      s.value = number(val);
      if (!(s.value > 0.0 && s.value <= 1.0)) bad(key, "a fraction in (0, 1]", val);
    } else {
      bad("policy", "rank=<r>, energy=<e>, ratio=<ρ> or budget=<β> first", p);
    }
    bool seen_method = false;
    for (std::size_t i = 1; i < tok.size(); ++i) {
      const std::string& t = tok[i];
      const std::size_t e = t.find('=');
      const std::string k = t.substr(0, e), v = e == std::string::npos ? std::string() : t.substr(e + 1);
      if (k == "plain" || k == "asvd" || k == "whiten") {
        if (seen_method) bad("method", "one method", t);
        seen_method = true;
        s.method = k == "plain" ? lowrank_method::plain : k == "asvd" ? lowrank_method::asvd : lowrank_method::whiten;
        if (e != std::string::npos) {
          const double x = number(v);
          if (k == "asvd" && x >= 0.0 && x <= 4.0) s.options.asvd_alpha = x;
          else if (k == "whiten" && x >= 0.0 && x <= 1.0) s.options.ridge = x;
          else bad(k, k == "asvd" ? "asvd or asvd=<α> with α in [0, 4]" : k == "whiten" ? "whiten or whiten=<ridge> with ridge in [0, 1]" : "plain", t);
        }
      } else if (t == "rsvd") {
        if (s.randomized) bad("rsvd", "rsvd at most once", t);
        s.randomized = true;
      } else {
        bad("token", "plain, asvd[=α], whiten[=ridge] or rsvd", t);
      }
    }
    if (s.randomized && (s.policy == policy_kind::energy || s.policy == policy_kind::budget))
      bad("rsvd", "rsvd only with rank= or ratio= (energy and budget need the whole spectrum)", "rsvd");
    return s;
  }

  /// The canonical string (without factor_quant), parsed back to an equal spec.
  std::string str() const {
    std::string s = policy == policy_kind::rank     ? detail::concat("rank=", rank)
                    : policy == policy_kind::energy ? "energy=" + shortest(value)
                    : policy == policy_kind::ratio  ? "ratio=" + shortest(value)
                                                    : "budget=" + shortest(value);
    if (method == lowrank_method::asvd) s += ":asvd=" + shortest(options.asvd_alpha);
    if (method == lowrank_method::whiten) s += options.ridge > 0 ? ":whiten=" + shortest(options.ridge) : std::string(":whiten");
    if (randomized) s += ":rsvd";
    return s;
  }

 private:
  /// The shortest decimal form that reads back as exactly x.
  static std::string shortest(double x) {
    std::string out;
    for (int p = 1; p <= 17; ++p) {
      std::ostringstream os;
      os << std::setprecision(p) << x;
      out = os.str();
      if (std::strtod(out.c_str(), nullptr) == x) break;
    }
    return out;
  }
  static double number(const std::string& v) {
    if (v.empty() || v.find_first_not_of("0123456789.eE+-") != std::string::npos) return std::nan("");
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    return end == v.c_str() + v.size() && std::isfinite(x) ? x : std::nan("");
  }
};

/// One layer of a plan.
struct lowrank_layer_plan {
  std::string name;
  std::size_t rows = 0, cols = 0;
  std::size_t rank = 0;        ///< chosen rank (for a dense layer: what the policy asked for)
  bool dense = false;          ///< stays as it is
  std::string reason;          ///< why it stays dense
  double energy = 1.0;         ///< retained fraction of Σσ²(W·T) (1 when dense)
  std::size_t parameters = 0;  ///< rank·(rows + cols), or rows·cols when dense
  lowrank_decomposition decomposition;  ///< empty for layers skipped before factoring
};

struct lowrank_plan {
  lowrank_spec spec;
  std::vector<lowrank_layer_plan> layers;
  std::size_t parameters_before = 0;  ///< Σ rows·cols of the selected layers
  std::size_t parameters_after = 0;   ///< Σ parameters of the selected layers after the step
};

/// Parameters of a model as stored: linear layers as rows·cols, factorized ones as
/// rank·(rows + cols), norms and the embedding; a tied classifier counted once (as the
/// embedding while dense, as its factors once factorized).
inline std::size_t lowrank_parameter_count(const llama_model& m) {
  auto count = [](const linear_layer& l) {
    const auto* f = dynamic_cast<const factorized_linear*>(&l);
    return f ? f->parameters() : l.in_features() * l.out_features();
  };
  std::size_t n = m.output_norm.size();
  for (const llama_block& b : m.blocks) {
    n += b.attn_norm.size() + b.ffn_norm.size();
    for (const auto* p : {&b.wq, &b.wk, &b.wv, &b.wo, &b.w1, &b.w2, &b.w3}) n += count(**p);
  }
  const bool out_factorized = dynamic_cast<const factorized_linear*>(m.output.get()) != nullptr;
  if (m.tied_classifier) return n + (out_factorized ? count(*m.output) : m.token_embd.size());
  return n + m.token_embd.size() + count(*m.output);
}

/// Decides ranks and factors every selected layer without touching the model.
inline lowrank_plan plan_lowrank(const llama_model& m, const lowrank_spec& spec,
                                 const std::function<bool(const std::string&)>& select = {},
                                 const calibration_capture* calib = nullptr) {
  const char* where = "pare::lowrank_linears";
  lowrank_plan plan;
  plan.spec = spec;
  if (spec.policy == lowrank_spec::policy_kind::rank && spec.rank == 0)
    detail::fail<argument_error>(where, ": argument 'spec': expected rank ≥ 1, got 0");
  if (spec.policy != lowrank_spec::policy_kind::rank && !(spec.value > 0.0 && spec.value <= 1.0))
    detail::fail<argument_error>(where, ": argument 'spec': expected a fraction in (0, 1], got ", spec.value);
  if (spec.randomized && (spec.policy == lowrank_spec::policy_kind::energy || spec.policy == lowrank_spec::policy_kind::budget))
    detail::fail<argument_error>(where, ": argument 'spec': randomized SVD needs policy rank= or ratio=, got ", spec.str());
  for (const std::string& name : m.linear_names()) {
    if (select && !select(name)) continue;
    const linear_layer& cur = m.linear(name);
    lowrank_layer_plan lp;
    lp.name = name;
    lp.rows = cur.out_features();
    lp.cols = cur.in_features();
    if (spec.method != lowrank_method::plain && (!calib || calib->all().find(name) == calib->all().end()))
      detail::fail<argument_error>(where, ": argument 'calib': expected calibration statistics of layer '", name,
                                   "' for method ", to_string(spec.method), ", got ", calib ? "none for it" : "no capture");
    plan.layers.push_back(std::move(lp));
  }
  if (plan.layers.empty()) return plan;

  // Ranks that depend on the shape only are known before factoring: skip hopeless layers.
  for (lowrank_layer_plan& lp : plan.layers) {
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
  for (lowrank_layer_plan& lp : plan.layers) {
    if (lp.dense) continue;
    const linear_layer& cur = m.linear(lp.name);
    std::vector<float> w(lp.rows * lp.cols);
    cur.dense_weights(matrix_view<float>(w.data(), lp.rows, lp.cols));
    activation_aware_options opt = spec.options;
    opt.randomized_rank = spec.randomized ? lp.rank : 0;
    const linear_input_stats* st = spec.method == lowrank_method::plain ? nullptr : &calib->at(lp.name);
    lp.decomposition = lowrank_decompose(matrix_view<const float>(w.data(), lp.rows, lp.cols), spec.method, st, opt);
  }
  if (spec.policy == lowrank_spec::policy_kind::energy) {
    for (lowrank_layer_plan& lp : plan.layers) {
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
    for (const lowrank_layer_plan& lp : plan.layers) {
      layers.push_back({lp.rows, lp.cols, lp.decomposition.svd().s});
      total += lp.rows * lp.cols;
    }
    const auto budget = static_cast<std::size_t>(std::floor(spec.value * double(total)));
    const rank_allocation alloc = allocate_ranks(layers, budget);
    for (std::size_t i = 0; i < plan.layers.size(); ++i) {
      lowrank_layer_plan& lp = plan.layers[i];
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
  for (lowrank_layer_plan& lp : plan.layers) {
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

/// Replaces the plan's factorized layers in `m` (cannot fail for a plan made from `m`).
inline std::vector<layer_change> apply_lowrank(llama_model& m, const lowrank_plan& plan) {
  // Build every layer first, then swap them in: an error leaves m unchanged.
  std::vector<std::unique_ptr<factorized_linear>> built(plan.layers.size());
  for (std::size_t i = 0; i < plan.layers.size(); ++i) {
    const lowrank_layer_plan& lp = plan.layers[i];
    if (lp.dense) continue;
    const linear_layer& cur = m.linear(lp.name);
    if (cur.out_features() != lp.rows || cur.in_features() != lp.cols)
      detail::fail<shape_error>("pare::apply_lowrank: layer '", lp.name, "': expected [", lp.rows, ", ", lp.cols,
                                "] as planned, got [", cur.out_features(), ", ", cur.in_features(), "]");
    const lowrank_factors f = lp.decomposition.factors(lp.rank);
    built[i] = plan.spec.factor_quant ? std::make_unique<factorized_linear>(f.a_view(), f.b_view(), *plan.spec.factor_quant)
                                      : std::make_unique<factorized_linear>(f.a_view(), f.b_view());
  }
  std::vector<layer_change> out;
  for (std::size_t i = 0; i < plan.layers.size(); ++i) {
    const lowrank_layer_plan& lp = plan.layers[i];
    layer_change ch{lp.name, "", "", lp.dense, lp.reason};
    if (lp.dense) {
      ch.format = m.linear(lp.name).format();
      ch.backend = "unchanged";
    } else {
      ch.format = built[i]->format();
      ch.backend = built[i]->backend();
      if (lp.name == "output.weight" && m.tied_classifier)
        built[i]->dense_weights(matrix_view<float>(m.token_embd.data(), lp.rows, lp.cols));
      m.set_linear(lp.name, std::move(built[i]));
    }
    out.push_back(ch);
  }
  return out;
}

/// Factors the selected linear layers of `m` under `spec` (see the top of this file).
inline std::vector<layer_change> lowrank_linears(llama_model& m, const lowrank_spec& spec,
                                                 const std::function<bool(const std::string&)>& select = {},
                                                 const calibration_capture* calib = nullptr) {
  return apply_lowrank(m, plan_lowrank(m, spec, select, calib));
}
inline std::vector<layer_change> lowrank_linears(llama_model& m, const std::string& spec,
                                                 const std::function<bool(const std::string&)>& select = {},
                                                 const calibration_capture* calib = nullptr) {
  return lowrank_linears(m, lowrank_spec::parse(spec), select, calib);
}

PARE_NAMESPACE_END
