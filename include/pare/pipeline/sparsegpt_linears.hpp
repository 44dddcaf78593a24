// Model-level SparseGPT: prunes (and optionally quantizes) a llama_model's linear layers block-sequentially, each from the Hessian of the inputs it sees behind the layers already pruned.
#pragma once

// sparsegpt_linears(m, opt, windows, select) runs the block-sequential pipeline of
// pare/pipeline/sequential_linears.hpp with pare::solvers::sparsegpt_prune
// (pare/solvers/sparsegpt.hpp) as the group solver. Each pruned layer becomes:
//   2:4 (n = 2, m = 4), no quantization   a sparse24_linear (the 2:4 sparse kernels)
//   with opt.quant                        a quantized_linear (zeros are codes of 0.0f)
//   otherwise                             a dense_linear holding the zeros
// A tied classifier is skipped (it is the embedding too), as masked pruning does; with
// quantization a width the group size does not divide falls back to per channel.
// With `reference` (sparsegpt:...:fptarget) each layer is fitted to the reference's
// outputs on the reference's inputs: SparseGPT of solvers::asymmetric_target(W, P, G, λ)
// (pare/pipeline/gptq_linears.hpp does the same for GPTQ).

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/progress.hpp"
#include "pare/model/layers/linear.hpp"
#include "pare/model/layers/quantized_linear.hpp"
#include "pare/model/layers/sparse24_linear.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/pipeline/sequential_linears.hpp"
#include "pare/solvers/asymmetric_target.hpp"
#include "pare/solvers/sparsegpt.hpp"

PARE_NAMESPACE_BEGIN

struct sparsegpt_linears_options {
  solvers::sparsegpt_options prune{};  ///< sparsity or N:M, block size, dampening (its quant pointer is ignored)
  bool quantize = false;               ///< quantize the survivors under `cfg` in the same walk
  quant_config cfg{};
};

struct sparsegpt_layer_report {
  std::string name;
  double error = 0;     ///< tr(ΔW·H·ΔWᵀ)
  double density = 0;   ///< kept fraction
};

struct sparsegpt_linears_result {
  std::vector<layer_change> changes;
  std::vector<sparsegpt_layer_report> layers;
};

/// SparseGPT of every selected linear layer (not a tied classifier), calibrated on
/// `windows`. argument_error for no windows; the solver's errors otherwise (the model is
/// then partly pruned: callers that need all-or-nothing work on a copy).
inline sparsegpt_linears_result sparsegpt_linears(llama_model& m, const sparsegpt_linears_options& opt,
                                                  const std::vector<std::vector<std::int32_t>>& windows,
                                                  const std::function<bool(const std::string&)>& select = {},
                                                  const progress_callback& progress = {},
                                                  const llama_model* reference = nullptr) {
  const char* where = "pare::sparsegpt_linears";
  if (windows.empty()) detail::fail<argument_error>(where, ": argument 'windows': expected calibration windows, got none");
  if (opt.quantize) opt.cfg.validate(where);
  sparsegpt_linears_result out;
  linear_input_options stats;
  stats.xtx = true;
  stats.channel_stats = false;
  const bool two_four = opt.prune.m == 4 && opt.prune.n == 2 && !opt.quantize;
  auto solve = [&](llama_model& mm, const std::vector<std::string>& names, const linear_input_stats& input,
                   const std::vector<double>* cross) {
    const solvers::layer_hessian h = solvers::layer_hessian::from_stats(input);
    for (const std::string& name : names) {
      if (name == "output.weight" && mm.tied_classifier) continue;
      const linear_layer& cur = mm.linear(name);
      const std::size_t rows = cur.out_features(), cols = cur.in_features();
      std::vector<float> w(rows * cols);
      cur.dense_weights(matrix_view<float>(w.data(), rows, cols));
      if (cross)  // fit the reference's outputs (solvers/asymmetric_target.hpp)
        w = solvers::asymmetric_target(matrix_view<const float>(w.data(), rows, cols), *cross, input.xtx,
                                       opt.prune.hessian.dampening);
      layer_change ch{name, "", "", false, ""};
      solvers::sparsegpt_options so = opt.prune;
      quant_config c;
      if (opt.quantize) {
        c = layer_config_for(opt.cfg, cols, ch);
        so.quant = &c;
        if (c.gran.kind == granularity_kind::per_group && so.block_size % c.gran.group_size != 0)
          so.block_size = std::max<std::size_t>(1, so.block_size / c.gran.group_size) * c.gran.group_size;
      } else {
        so.quant = nullptr;
      }
      solvers::sparsegpt_result r = solvers::sparsegpt_prune(matrix_view<const float>(w.data(), rows, cols), h, so);
      std::size_t kept = 0;
      for (std::uint8_t k : r.mask) kept += k;
      const double density = double(kept) / double(rows * cols);
      std::unique_ptr<linear_layer> layer;
      if (r.quantized) {
        auto q = std::make_unique<quantized_linear>(std::move(*r.quantized));
        ch.format = detail::concat("sparsegpt ", q->format(), " density ", density);
        ch.backend = q->backend();
        layer = std::move(q);
      } else if (two_four) {
        layer = std::make_unique<sparse24_linear>(matrix_view<const float>(r.weight.data(), rows, cols),
                                                  matrix_view<const std::uint8_t>(r.mask.data(), rows, cols));
        ch.format = "sparsegpt f32 2:4";
        ch.backend = "2:4 sparse kernel";
      } else {
        layer = std::make_unique<dense_linear>(matrix_view<const float>(r.weight.data(), rows, cols));
        ch.format = detail::concat("sparsegpt f32 density ", density);
        ch.backend = "f32";
      }
      if (r.dampening_retries > 0)
        ch.add_reason(detail::concat("Hessian not positive definite: dampening raised to ", r.dampening, " x mean diag"));
      mm.set_linear(name, std::move(layer));
      out.changes.push_back(ch);
      out.layers.push_back({name, r.error, density});
    }
  };
  sequential_linears_maybe_to_reference(m, reference, windows, stats, solve, select, progress);
  return out;
}

PARE_NAMESPACE_END
