// Unstructured and N:M pruning of a llama_model's linear layers by magnitude or Wanda: masks from pare/prune, pruned weights zeroed in place.
#pragma once

// prune_linears_masked(m, spec, select, calib) scores every selected linear layer with
// |w| ("magnitude") or |w_ij|·‖x_j‖₂ ("wanda", calibration statistics of the layer's input
// required), builds a mask — unstructured at sparsity s with one budget per output row
// (Wanda's comparison group), or N:M along the input dimension — and replaces the layer
// by an fp32 layer with the pruned weights zeroed. Records say the density reached.
// Specs: pare/prune/prune_spec.hpp's matrix granularities with magnitude or wanda, e.g.
// "unstructured:<s>:<magnitude|wanda>[:global]", "nm:<n>:<m>:<magnitude|wanda>",
// "rows:<s>:magnitude" (whole rows zeroed; no compaction).
// The tied classifier (output.weight) is skipped: pruning it would also prune the
// embedding it shares. Everything is checked before the model changes.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/strings.hpp"
#include "pare/model/calibration.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/prune/prune.hpp"
#include "pare/prune/prune_spec.hpp"

PARE_NAMESPACE_BEGIN

/// A matrix pruning spec that prune_linears_masked runs: a prune::prune_spec with a
/// matrix granularity (unstructured, nm, rows, columns) and the criterion magnitude or
/// wanda (taylor would need each layer's gradient).
struct mask_prune_spec : prune::prune_spec {
  mask_prune_spec() = default;
  explicit mask_prune_spec(const prune::prune_spec& p) : prune::prune_spec(p) { check("mask_prune_spec"); }

  static mask_prune_spec parse(const std::string& s) {
    const prune::prune_spec p = prune::prune_spec::parse(s);
    mask_prune_spec out;
    static_cast<prune::prune_spec&>(out) = p;
    out.check(("mask_prune_spec::parse('" + s + "')").c_str());
    return out;
  }

  /// argument_error unless the model pipeline can run it.
  void check(const char* where) const {
    validate(where);
    if (!prune::is_matrix_granularity(granularity))
      detail::fail<argument_error>(where, ": expected unstructured:, nm:, rows: or columns: (a mask per layer), got ",
                                   prune::to_string(granularity));
    if (criterion != prune::criterion_kind::magnitude && criterion != prune::criterion_kind::wanda)
      detail::fail<argument_error>(where, ": expected the criterion magnitude or wanda, got '", prune::to_string(criterion),
                                   "' (taylor needs each layer's gradient)");
  }
};

inline std::vector<layer_change> prune_linears_masked(llama_model& m, const mask_prune_spec& spec,
                                                      const std::function<bool(const std::string&)>& select = {},
                                                      const calibration_capture* calib = nullptr) {
  const char* where = "prune_linears_masked";
  spec.check(where);
  const bool wanda = spec.criterion == prune::criterion_kind::wanda;
  if (wanda && !calib) detail::fail<argument_error>(where, ": criterion 'wanda' needs calibration statistics, got none");
  std::vector<std::pair<std::string, std::unique_ptr<linear_layer>>> built;
  std::vector<layer_change> out;
  for (const std::string& name : m.linear_names()) {
    if (name == "output.weight" && m.tied_classifier) continue;
    if (select && !select(name)) continue;
    const linear_layer& cur = m.linear(name);
    const std::size_t rows = cur.out_features(), cols = cur.in_features();
    std::vector<float> w(rows * cols);
    const matrix_view<float> wv(w.data(), rows, cols);
    cur.dense_weights(wv);
    prune::matrix_context ctx;
    if (wanda) ctx.stats = &calib->at(name);
    const prune::mask mk = prune::prune_matrix(wv, spec, ctx);
    prune::apply(mk, wv);
    layer_change ch{name, detail::concat("f32 density ", mk.density()), "", false, ""};
    auto layer = std::make_unique<dense_linear>(matrix_view<const float>(w.data(), rows, cols));
    ch.backend = "f32";
    built.emplace_back(name, std::move(layer));
    out.push_back(ch);
  }
  for (auto& [name, layer] : built) m.set_linear(name, std::move(layer));
  return out;
}

PARE_NAMESPACE_END
