// Model-level GPTQ: quantizes a llama_model's linear layers in forward order, each from the Hessian of the inputs it sees behind the layers already quantized ("true sequential").
#pragma once

// gptq_linears(m, cfg, windows, opt, select) runs the block-sequential pipeline of
// pare/pipeline/sequential_linears.hpp: blocks in order, inside a block the groups of
// layers that read one input ({attn_q, attn_k, attn_v}, {attn_output}, {ffn_gate, ffn_up},
// {ffn_down}), then output.weight; each group's XᵀX is accumulated on the activations that
// went through every earlier group as quantized, and each layer is replaced by the
// quantized_linear of pare::solvers::gptq_quantize (pare/solvers/gptq.hpp). Like
// quantize_linears, a layer whose width the group size does not divide falls back to the
// same format per output channel (layer_config_for; the change record says so); a tied
// classifier's embedding rows follow it (llama_model::set_linear).
//
// Cost: about five forward passes of the calibration windows; memory: the residual stream
// of the windows at one block boundary and the XᵀX of one group's input (K² doubles).
// The per-layer Hessian loss of GPTQ and of round-to-nearest are returned for the report.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/progress.hpp"
#include "pare/model/layers/quantized_linear.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/pipeline/sequential_linears.hpp"
#include "pare/solvers/asymmetric_target.hpp"
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

/// With `reference` (a model of the same shape, e.g. dense_copy(m) before the step), each
/// layer is fitted to the reference's outputs on the reference's inputs: GPTQ of
/// solvers::asymmetric_target(W, P, G, λ) (GPTAQ's asymmetric calibration; twice the block
/// passes and held streams); the reported losses are then those against that target.
/// GPTQ of every selected linear layer under `cfg`, calibrated on `windows` (token
/// windows of the calibration text, each at most seq_len). argument_error for no windows;
/// the errors of gptq_quantize otherwise (the model is then partly quantized: callers that
/// need all-or-nothing work on a copy, as pare-compress does).
inline gptq_linears_result gptq_linears(llama_model& m, const quant_config& cfg,
                                        const std::vector<std::vector<std::int32_t>>& windows,
                                        const solvers::gptq_options& opt = {},
                                        const std::function<bool(const std::string&)>& select = {},
                                        const progress_callback& progress = {},
                                        const llama_model* reference = nullptr) {
  const char* where = "pare::gptq_linears";
  if (windows.empty()) detail::fail<argument_error>(where, ": argument 'windows': expected calibration windows, got none");
  cfg.validate(where);
  gptq_linears_result out;
  linear_input_options stats;
  stats.xtx = true;
  stats.channel_stats = false;
  auto solve = [&](llama_model& mm, const std::vector<std::string>& names, const linear_input_stats& input,
                   const std::vector<double>* cross) {
    const solvers::layer_hessian h = solvers::layer_hessian::from_stats(input);
    for (const std::string& name : names) {
      const linear_layer& cur = mm.linear(name);
      layer_change ch{name, "", "", false, ""};
      const quant_config c = layer_config_for(cfg, cur.in_features(), ch);
      const std::size_t rows = cur.out_features(), cols = cur.in_features();
      std::vector<float> w(rows * cols);
      cur.dense_weights(matrix_view<float>(w.data(), rows, cols));
      if (cross)  // fit the reference's outputs: GPTQ of W·P·G⁻¹ (solvers/asymmetric_target.hpp)
        w = solvers::asymmetric_target(matrix_view<const float>(w.data(), rows, cols), *cross, input.xtx,
                                       opt.hessian.dampening);
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
        ch.add_reason(detail::concat("Hessian not positive definite: dampening raised to ", r.dampening, " x mean diag"));
      mm.set_linear(name, std::move(q));
      out.changes.push_back(ch);
      out.layers.push_back(rep);
    }
  };
  sequential_linears_maybe_to_reference(m, reference, windows, stats, solve, select, progress);
  return out;
}

PARE_NAMESPACE_END
