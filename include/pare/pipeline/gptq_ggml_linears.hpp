// Model-level GPTQ into llama.cpp's block formats: every selected linear layer becomes a ggml_linear whose blocks GPTQ chose, calibrated block by block behind the layers already quantized.
#pragma once

// gptq_linears_ggml(m, spec, windows, opt, select, progress) is gptq_linears
// (pare/pipeline/gptq_linears.hpp) with pare::solvers::gptq_quantize_ggml
// (pare/ggml/gptq.hpp) as the solver: each layer's bytes are exactly ggml's block layout
// for the type, so the model exports as a GGUF that llama.cpp (and pare's loader) reads,
// and every block dequantizes with the golden-checked dequantizers.
//
// Fallbacks are llama.cpp's (ggml_fallback_type, as quantize_linears_ggml): a layer whose
// input width the type's block does not divide is stored in the fallback type, by GPTQ
// when that type has block parameters (e.g. q4_K -> q5_0 on 32-multiples), else as f16
// (no rounding to choose: the record says "f16, not GPTQ"). With spec.imatrix the
// importance weights are llama.cpp's imatrix, the mean of x_k² over the calibration rows
// the layer sees (the diagonal of its XᵀX / tokens, i.e. behind the quantized prefix).
// A tied classifier's embedding rows follow output.weight (llama_model::set_linear).
// With `reference` (gptq:ggml:<type>:fptarget) each layer is fitted to the reference's
// outputs on the reference's inputs, as gptq_linears does: GPTQ of
// solvers::asymmetric_target(W, P, G, λ).

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/progress.hpp"
#include "pare/ggml/gptq.hpp"
#include "pare/model/layers/ggml_linear.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/pipeline/ggml_quantize_linears.hpp"
#include "pare/pipeline/gptq_linears.hpp"
#include "pare/pipeline/sequential_linears.hpp"

PARE_NAMESPACE_BEGIN

/// GPTQ of every selected linear layer into ggml blocks of spec.type (with llama.cpp's
/// fallbacks), calibrated on `windows`. Per-layer Hessian losses of GPTQ and of ggml's own
/// quantizer (same type, same importance weights) are returned in `layers`. argument_error
/// for no windows or a type without block parameters (f16, bf16); the errors of
/// gptq_quantize_ggml otherwise (the model is then partly quantized: callers that need
/// all-or-nothing work on a copy, as pare-compress does).
inline gptq_linears_result gptq_linears_ggml(llama_model& m, const ggml_quant_spec& spec,
                                             const std::vector<std::vector<std::int32_t>>& windows,
                                             const solvers::gptq_options& opt = {},
                                             const std::function<bool(const std::string&)>& select = {},
                                             const progress_callback& progress = {},
                                             const llama_model* reference = nullptr) {
  const char* where = "pare::gptq_linears_ggml";
  if (windows.empty()) detail::fail<argument_error>(where, ": argument 'windows': expected calibration windows, got none");
  if (!solvers::detail::gptq_ggml::find_codec(spec.type))
    detail::fail<argument_error>(where, ": argument 'spec': expected a ggml block format (",
                                 solvers::detail::gptq_ggml::supported_names(), "), got ", ggml::to_string(spec.type));
  gptq_linears_result out;
  linear_input_options stats;
  stats.xtx = true;
  stats.channel_stats = false;
  auto solve = [&](llama_model& mm, const std::vector<std::string>& names, const linear_input_stats& input,
                   const std::vector<double>* cross) {
    const solvers::layer_hessian h = solvers::layer_hessian::from_stats(input);
    std::vector<float> imat;
    if (spec.imatrix) {
      imat.resize(input.in_features);
      for (std::size_t k = 0; k < imat.size(); ++k)
        imat[k] = static_cast<float>(input.xtx[k * input.in_features + k] / double(input.tokens));
    }
    for (const std::string& name : names) {
      const linear_layer& cur = mm.linear(name);
      const std::size_t rows = cur.out_features(), cols = cur.in_features();
      const ggml::type t = ggml_fallback_type(spec.type, cols);
      layer_change ch{name, "", "", t != spec.type, ""};
      if (ch.fallback)
        ch.reason = detail::concat("in_features ", cols, " is not a multiple of the ", ggml::to_string(spec.type),
                                   " block (", ggml::traits(spec.type).block_size, ")");
      std::vector<float> w(rows * cols);
      cur.dense_weights(matrix_view<float>(w.data(), rows, cols));
      if (cross)  // fit the reference's outputs: GPTQ of W·P·G⁻¹ (solvers/asymmetric_target.hpp)
        w = solvers::asymmetric_target(matrix_view<const float>(w.data(), rows, cols), *cross, input.xtx,
                                       opt.hessian.dampening);
      const matrix_view<const float> wv(w.data(), rows, cols);
      const bool use_imat = spec.imatrix && ggml::traits(t).uses_imatrix;
      const std::vector<float> no_imat;
      const ggml::ggml_tensor plain = ggml::quantize(wv, t, use_imat ? imat : no_imat);
      gptq_layer_report rep{name, 0.0, 0.0, 0, 0};
      {
        const std::vector<float> d = plain.dequantize();
        rep.rtn_error = solvers::hessian_error(wv, matrix_view<const float>(d.data(), rows, cols), h);
      }
      std::unique_ptr<ggml_linear> q;
      if (solvers::detail::gptq_ggml::find_codec(t)) {
        solvers::gptq_ggml_result r = solvers::gptq_quantize_ggml(wv, h, t, opt, use_imat ? imat.data() : nullptr);
        rep.gptq_error = r.error;
        rep.dampening_retries = r.dampening_retries;
        rep.dead_columns = r.dead_columns;
        if (r.dampening_retries > 0)
          ch.add_reason(detail::concat("Hessian not positive definite: dampening raised to ", r.dampening, " x mean diag"));
        q = std::make_unique<ggml_linear>(ggml::ggml_tensor(t, rows, cols, std::move(r.blocks)));
        ch.format = "gptq " + q->format();
      } else {
        rep.gptq_error = rep.rtn_error;
        q = std::make_unique<ggml_linear>(plain);
        ch.format = q->format();
        ch.add_reason(detail::concat(ggml::to_string(t), " has no codes to choose: stored as ggml's ", ggml::to_string(t)));
      }
      if (use_imat) ch.format += ":imatrix";
      ch.backend = q->backend();
      mm.set_linear(name, std::move(q));
      out.changes.push_back(ch);
      out.layers.push_back(rep);
    }
  };
  sequential_linears_maybe_to_reference(m, reference, windows, stats, solve, select, progress);
  return out;
}

PARE_NAMESPACE_END
