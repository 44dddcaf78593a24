// Model-level low-rank step: replace selected linear layers of a llama_model by factorized_linear under a rank policy (plain / ASVD / whitened SVD).
#pragma once

// lowrank_linears(m, spec, select, calib) factors every selected linear layer W [out, in]
// as A·B with a rank chosen by the spec's policy (lowrank_spec grammar:
// pare/lowrank/lowrank_spec.hpp; engine: plan_decomposition, pare/lowrank/decompose.hpp)
// and replaces it by a factorized_linear.
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
#include "pare/lowrank/decompose.hpp"
#include "pare/lowrank/lowrank_spec.hpp"
#include "pare/lowrank/rank_policy.hpp"
#include "pare/model/calibration.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/model/layers/factorized_linear.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/quant/quant_config.hpp"

PARE_NAMESPACE_BEGIN

/// The records of pare/lowrank/decompose.hpp under the names this step has always used.
using lowrank_layer_plan = layer_decomposition;
using lowrank_plan = decomposition_plan;

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

/// Decides ranks and factors every selected layer without touching the model
/// (plan_decomposition over the layers' dense weights and captured statistics).
inline lowrank_plan plan_lowrank(const llama_model& m, const lowrank_spec& spec,
                                 const std::function<bool(const std::string&)>& select = {},
                                 const calibration_capture* calib = nullptr) {
  const char* where = "pare::lowrank_linears";
  std::vector<std::string> names;
  for (const std::string& name : m.linear_names()) {
    if (select && !select(name)) continue;
    if (spec.method != lowrank_method::plain && (!calib || calib->all().find(name) == calib->all().end()))
      detail::fail<argument_error>(where, ": argument 'calib': expected calibration statistics of layer '", name,
                                   "' for method ", to_string(spec.method), ", got ", calib ? "none for it" : "no capture");
    names.push_back(name);
  }
  std::vector<std::vector<float>> weights(names.size());
  std::vector<decompose_input> inputs;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const linear_layer& cur = m.linear(names[i]);
    weights[i].resize(cur.out_features() * cur.in_features());
    const matrix_view<float> wv(weights[i].data(), cur.out_features(), cur.in_features());
    cur.dense_weights(wv);
    inputs.push_back({names[i], matrix_view<const float>(wv),
                      spec.method == lowrank_method::plain ? nullptr : &calib->at(names[i])});
  }
  return plan_decomposition(inputs, spec, where);
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
