// Model-level GPTQ: quantizes a llama_model's linear layers in forward order, each from the Hessian of the inputs it sees behind the layers already quantized ("true sequential").
#pragma once

// gptq_linears(m, cfg, windows, opt, select) walks the blocks in order and, inside a
// block, the groups of layers that read the same input, in the order the forward pass
// reaches them:
//   {attn_q, attn_k, attn_v}, {attn_output}, {ffn_gate, ffn_up}, {ffn_down}, then output.weight
// For each group it runs the calibration windows through the model as it is now (every
// earlier group already quantized), accumulates XᵀX of the group's inputs only
// (pare/model/calibration.hpp), and replaces each layer by the quantized_linear of
// pare::solvers::gptq_quantize (pare/solvers/gptq.hpp). Like quantize_linears, a layer whose
// width the group size does not divide falls back to the same format per output channel
// (the change record says so), and a tied classifier's embedding rows follow the
// quantized classifier.
//
// Cost: one forward pass of the calibration windows per group (4 per block + 1); memory:
// the XᵀX of one group's input (K² doubles) beyond the model and one window's activations.
// The per-layer Hessian loss of GPTQ and of round-to-nearest are returned for the report.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/progress.hpp"
#include "pare/model/calibration.hpp"
#include "pare/model/layers/quantized_linear.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/solvers/gptq.hpp"

PARE_NAMESPACE_BEGIN

/// Per-layer outcome of gptq_linears beyond the layer_change.
struct gptq_layer_report {
  std::string name;
  double gptq_error = 0;  ///< tr(ΔW·H·ΔWᵀ) of GPTQ's result
  double rtn_error = 0;   ///< the same for round-to-nearest under the same config
  int dampening_retries = 0;
  std::size_t dead_columns = 0;
};

struct gptq_linears_result {
  std::vector<layer_change> changes;
  std::vector<gptq_layer_report> layers;
};

namespace detail {
/// Groups of layer names that read one input, in forward order.
inline std::vector<std::vector<std::string>> gptq_groups(const llama_model& m) {
  std::vector<std::vector<std::string>> g;
  for (std::size_t l = 0; l < m.blocks.size(); ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    g.push_back({p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"});
    g.push_back({p + "attn_output.weight"});
    g.push_back({p + "ffn_gate.weight", p + "ffn_up.weight"});
    g.push_back({p + "ffn_down.weight"});
  }
  g.push_back({"output.weight"});
  return g;
}
}  // namespace detail

/// GPTQ of every selected linear layer under `cfg`, calibrated on `windows` (token
/// windows of the calibration text, each at most seq_len). argument_error for no windows;
/// the errors of gptq_quantize otherwise (the model is then partly quantized: callers that
/// need all-or-nothing work on a copy, as pare-compress does).
inline gptq_linears_result gptq_linears(llama_model& m, const quant_config& cfg,
                                        const std::vector<std::vector<std::int32_t>>& windows,
                                        const solvers::gptq_options& opt = {},
                                        const std::function<bool(const std::string&)>& select = {},
                                        const progress_callback& progress = {}) {
  const char* where = "pare::gptq_linears";
  if (windows.empty()) detail::fail<argument_error>(where, ": argument 'windows': expected calibration windows, got none");
  cfg.validate(where);
  gptq_linears_result out;
  const auto groups = detail::gptq_groups(m);
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    std::vector<std::string> names;
    for (const std::string& n : groups[gi])
      if (!select || select(n)) names.push_back(n);
    if (names.empty()) continue;
    calibration_capture::options o;
    o.xtx = true;
    o.channel_stats = false;
    const std::string first = names.front();
    o.include = [first](const std::string& n) { return n == first; };  // the group shares its input
    calibration_capture cap(std::move(o));
    for (const auto& w : windows) {
      llama_session s(m);
      s.set_observer(&cap);
      std::vector<float> logits;
      s.forward(w.data(), w.size(), logits);
    }
    const solvers::layer_hessian h = solvers::layer_hessian::from_stats(cap.at(first));
    for (const std::string& name : names) {
      const linear_layer& cur = m.linear(name);
      quant_config c = cfg;
      layer_change ch{name, "", "", false, ""};
      if (c.gran.kind == granularity_kind::per_group && cur.in_features() % c.gran.group_size != 0) {
        ch.fallback = true;
        ch.reason = detail::concat("in_features ", cur.in_features(), " is not a multiple of group ", c.gran.group_size);
        c.gran = granularity::channel(0);
      }
      const std::size_t rows = cur.out_features(), cols = cur.in_features();
      std::vector<float> w(rows * cols);
      cur.dense_weights(matrix_view<float>(w.data(), rows, cols));
      const matrix_view<const float> wv(w.data(), rows, cols);
      solvers::gptq_result r = solvers::gptq_quantize(wv, h, c, opt);
      gptq_layer_report rep{name, r.error, 0.0, r.dampening_retries, r.dead_columns};
      {
        const quantized_tensor q = quantize(wv, c);
        const auto d = q.dequantize();
        rep.rtn_error = solvers::hessian_error(wv, matrix_view<const float>(d.data(), rows, cols), h);
      }
      auto q = std::make_unique<quantized_linear>(std::move(r.weight));
      ch.format = "gptq " + q->format();
      ch.backend = q->backend();
      if (r.dampening_retries > 0)
        ch.reason = detail::concat(ch.reason.empty() ? "" : ch.reason + "; ", "Hessian not positive definite: dampening raised to ",
                                   r.dampening, " x mean diag");
      if (name == "output.weight" && m.tied_classifier)
        q->dense_weights(matrix_view<float>(m.token_embd.data(), rows, cols));
      m.set_linear(name, std::move(q));
      out.changes.push_back(ch);
      out.layers.push_back(rep);
    }
    if (progress) progress(gi + 1, groups.size());
  }
  return out;
}

PARE_NAMESPACE_END
