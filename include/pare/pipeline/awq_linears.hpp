// Model-level AWQ: block-sequential scale search per group of layers, scales folded exactly into the RMSNorm gain or the linear before the group, clipping search, then round-to-nearest or GPTQ.
#pragma once

// awq_linears(m, cfg, windows, opt, select) runs the block-sequential pipeline
// (pare/pipeline/sequential_linears.hpp). For each group that reads one input:
//   {attn_q, attn_k, attn_v}   s⁻¹ folded into blk.l.attn_norm (the gain)
//   {ffn_gate, ffn_up}         s⁻¹ folded into blk.l.ffn_norm
//   {ffn_down}                 s⁻¹ folded into the rows of ffn_up (silu(g)⊙(u/s) = h/s)
//   {attn_output}              s⁻¹ into the rows of attn_v when every query head has its
//                              own value head; with grouped-query attention one value row
//                              feeds several query heads' columns, so no exact fold exists
//                              and the group is quantized without scales (as AutoAWQ does)
//   output.weight              no scales (a tied classifier shares its matrix with the
//                              embedding); clipping and quantization only
// the scales of pare/solvers/awq.hpp are multiplied into the group's columns (every layer
// of the group, selected or not, so the model's function is unchanged before rounding),
// each selected layer's weights are clipped (awq_clip) and quantized by round to nearest
// or, with opt.gptq, by GPTQ on the Hessian of the scaled input. Layers whose width the
// group size does not divide fall back to the same format per output channel.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/progress.hpp"
#include "pare/model/layers/linear.hpp"
#include "pare/model/layers/quantized_linear.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/pipeline/sequential_linears.hpp"
#include "pare/quant/half_scale.hpp"
#include "pare/solvers/awq.hpp"
#include "pare/solvers/gptq.hpp"

PARE_NAMESPACE_BEGIN

struct awq_linears_options {
  solvers::awq_options awq{};
  bool scale = true;             ///< search and fold scales
  bool clip = true;              ///< clipping search
  bool gptq = false;             ///< GPTQ instead of round to nearest after scaling and clipping
  solvers::gptq_options gptq_opt{};
};

struct awq_layer_report {
  std::string group;          ///< the group's first layer
  std::string folded_into;    ///< where s⁻¹ went ("" when unscaled)
  double alpha = 0, error = 0, error_plain = 0;
};

struct awq_linears_result {
  std::vector<layer_change> changes;
  std::vector<awq_layer_report> groups;
};

namespace detail {

/// The whole group (every layer that reads the input of `first`) and where its scales fold.
struct awq_group {
  std::vector<std::string> names;
  std::string fold;  ///< "attn_norm", "ffn_norm", "ffn_up", "attn_v" or "" (not foldable)
  std::size_t block = 0;
};

inline awq_group awq_group_of(const llama_model& m, const std::string& first) {
  for (std::size_t l = 0; l < m.blocks.size(); ++l) {
    const auto groups = block_linear_groups(l);
    const char* folds[] = {"attn_norm", "attn_v", "ffn_norm", "ffn_up"};
    for (std::size_t g = 0; g < groups.size(); ++g)
      for (const std::string& n : groups[g])
        if (n == first) {
          awq_group out{groups[g], folds[g], l};
          if (g == 1 && m.blocks[l].n_heads != m.blocks[l].n_kv_heads) out.fold.clear();  // GQA
          return out;
        }
  }
  return {{first}, "", 0};
}

inline std::vector<float> awq_dense_of(const linear_layer& l) {
  std::vector<float> w(l.out_features() * l.in_features());
  l.dense_weights(matrix_view<float>(w.data(), l.out_features(), l.in_features()));
  return w;
}

}  // namespace detail

/// Folds per-input-channel scales s of the group that reads `first`'s input: the group's
/// columns are multiplied by s and s⁻¹ goes into the operation before (see above). The
//// model computes the same function up to float rounding; the group's layers become dense
/// fp32, a quantized linear folded into keeps its codes when each row has its own
/// parameters (its row scales are divided), other layers folded into become dense fp32. argument_error when the group cannot be
/// folded (output.weight, attn_output under grouped-query attention), shape_error for s
/// of the wrong size, value_error for a scale that is not finite and positive.
inline void awq_fold(llama_model& m, const std::string& first, const std::vector<float>& s) {
  const char* where = "pare::awq_fold";
  const detail::awq_group g = detail::awq_group_of(m, first);
  if (g.fold.empty())
    detail::fail<argument_error>(where, ": argument 'first': expected a layer whose input scales fold into the operation "
                                        "before it, got '", first, "'");
  const std::size_t k = m.linear(g.names.front()).in_features();
  if (s.size() != k) detail::fail<shape_error>(where, ": argument 's': expected ", k, " scales, got ", s.size());
  for (std::size_t j = 0; j < k; ++j)
    if (!(std::isfinite(s[j]) && s[j] > 0.0f))
      detail::fail<value_error>(where, ": argument 's': expected finite positive scales, got ", s[j], " at ", j);
  for (const std::string& n : g.names) {
    const linear_layer& l = m.linear(n);
    std::vector<float> w = detail::awq_dense_of(l);
    for (std::size_t i = 0; i < l.out_features(); ++i)
      for (std::size_t j = 0; j < k; ++j) w[i * k + j] *= s[j];
    m.set_linear(n, std::make_unique<dense_linear>(matrix_view<const float>(w.data(), l.out_features(), k)));
  }
  llama_block& b = m.blocks[g.block];
  if (g.fold == "attn_norm" || g.fold == "ffn_norm") {
    std::vector<float>& gain = g.fold == "attn_norm" ? b.attn_norm : b.ffn_norm;
    for (std::size_t j = 0; j < k; ++j) gain[j] /= s[j];
    return;
  }
  const std::string prev = "blk." + std::to_string(g.block) + "." + g.fold + ".weight";
  const linear_layer& p = m.linear(prev);
  // A quantized layer before the group (quantized earlier in the sequential pipeline) keeps
  // its codes: its rows' scales are divided instead, exactly, when each row has its own
  // (under f16scale, rounded to half again).
  if (const auto* ql = dynamic_cast<const quantized_linear*>(&p)) {
    quantized_tensor qt = ql->tensor();
    const granularity& gr = qt.config.gran;
    if (gr.kind == granularity_kind::per_group || (gr.kind == granularity_kind::per_channel && gr.axis == 0)) {
      const std::size_t per_row = gr.kind == granularity_kind::per_group ? qt.cols / gr.group_size : 1;
      for (std::size_t i = 0; i < k; ++i)
        for (std::size_t t = 0; t < per_row; ++t) {
          float& sc = qt.scales[i * per_row + t];
          sc /= s[i];
          // f16scale: the divided scale is stored as a half again (the fold is then exact
          // up to that rounding, relative error ≤ 2^-11; the codes are kept).
          if (qt.config.f16_scale) sc = round_scale_to_f16(where, sc);
        }
      m.set_linear(prev, std::make_unique<quantized_linear>(std::move(qt)));
      return;
    }
  }
  std::vector<float> w = detail::awq_dense_of(p);
  const std::size_t cols = p.in_features();
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < cols; ++j) w[i * cols + j] /= s[i];
  m.set_linear(prev, std::make_unique<dense_linear>(matrix_view<const float>(w.data(), k, cols)));
}

/// AWQ of every selected linear layer under `cfg`, calibrated on `windows`. argument_error
/// for no windows; the errors of the solvers otherwise (the model is then partly
/// quantized: callers that need all-or-nothing work on a copy).
inline awq_linears_result awq_linears(llama_model& m, const quant_config& cfg,
                                      const std::vector<std::vector<std::int32_t>>& windows,
                                      const awq_linears_options& opt = {},
                                      const std::function<bool(const std::string&)>& select = {},
                                      const progress_callback& progress = {}) {
  const char* where = "pare::awq_linears";
  if (windows.empty()) detail::fail<argument_error>(where, ": argument 'windows': expected calibration windows, got none");
  cfg.validate(where);
  awq_linears_result out;
  linear_input_options stats;
  stats.xtx = true;
  stats.channel_stats = true;
  auto config_for = [&](std::size_t k, layer_change& ch) { return layer_config_for(cfg, k, ch); };
  auto solve = [&](llama_model& mm, const std::vector<std::string>& names, const linear_input_stats& input) {
    const std::size_t k = input.in_features;
    const detail::awq_group g = detail::awq_group_of(mm, names.front());
    layer_change probe{names.front(), "", "", false, ""};
    const quant_config gc = config_for(k, probe);
    awq_layer_report rep{names.front(), "", 0, 0, 0};
    std::vector<float> s(k, 1.0f);
    if (opt.scale && !g.fold.empty()) {
      std::vector<std::vector<float>> ws;
      std::vector<matrix_view<const float>> views;
      for (const std::string& n : names) {
        ws.push_back(detail::awq_dense_of(mm.linear(n)));
        views.emplace_back(ws.back().data(), mm.linear(n).out_features(), k);
      }
      const solvers::awq_scales sc = solvers::awq_search_scales(views, input, gc, opt.awq);
      rep.alpha = sc.alpha, rep.error = sc.error, rep.error_plain = sc.error_plain;
      if (sc.alpha > 0) {
        s = sc.s;
        awq_fold(mm, names.front(), s);
        rep.folded_into = g.fold;
      }
    }
    // The input statistics in the scaled space: x' = x / s, so X'ᵀX' = D⁻¹·XᵀX·D⁻¹.
    linear_input_stats scaled;
    scaled.in_features = k;
    scaled.tokens = input.tokens;
    scaled.xtx = input.xtx;
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t j = 0; j < k; ++j) scaled.xtx[i * k + j] /= double(s[i]) * double(s[j]);
    for (const std::string& name : names) {
      layer_change ch{name, "", "", false, ""};
      const linear_layer& cur = mm.linear(name);
      const std::size_t rows = cur.out_features();
      const quant_config c = config_for(k, ch);
      std::vector<float> w = detail::awq_dense_of(cur);
      if (opt.clip) w = solvers::awq_clip(matrix_view<const float>(w.data(), rows, k), scaled, c, opt.awq);
      const matrix_view<const float> wv(w.data(), rows, k);
      std::unique_ptr<quantized_linear> q;
      if (opt.gptq)
        q = std::make_unique<quantized_linear>(
            solvers::gptq_quantize(wv, solvers::layer_hessian::from_stats(scaled), c, opt.gptq_opt).weight);
      else
        q = std::make_unique<quantized_linear>(quantize(wv, c));
      ch.format = std::string(opt.gptq ? "awq+gptq " : "awq ") + q->format();
      ch.backend = q->backend();
      if (!rep.folded_into.empty())
        ch.add_reason(detail::concat("alpha ", rep.alpha, " folded into ", rep.folded_into));
      mm.set_linear(name, std::move(q));
      out.changes.push_back(ch);
    }
    out.groups.push_back(rep);
  };
  sequential_linears(m, windows, stats, solve, select, progress);
  return out;
}

PARE_NAMESPACE_END
