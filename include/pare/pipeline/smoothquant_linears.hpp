// Model-level SmoothQuant: per-input-channel smoothing scales (pare/solvers/smoothquant.hpp) folded exactly into the RMSNorm gain or the linear before each group, then optionally W8A8 (int8 weights × int8 activations, dynamic per token or static per tensor).
#pragma once

// smoothquant_linears(m, stats, opt, select), for each group of layers that read one input
// (pipeline/sequential_linears.hpp's block_linear_groups), in forward order:
//   {attn_q, attn_k, attn_v}   s⁻¹ folded into blk.l.attn_norm (the gain)
//   {ffn_gate, ffn_up}         s⁻¹ folded into blk.l.ffn_norm
//   {ffn_down}                 s⁻¹ folded into the rows of ffn_up (opt.smooth_ffn_down)
//   {attn_output}              s⁻¹ into the rows of attn_v when every query head has its
//                              own value head; under grouped-query attention no exact fold
//                              exists and the group is not smoothed
//   output.weight              not smoothed (a tied classifier is the embedding)
// The fold is awq_fold (pipeline/awq_linears.hpp), shared with AWQ: the group's columns are
// multiplied by s, every layer of the group (selected or not), so the model computes the
// same function up to float rounding. A group is smoothed when one of its layers is
// selected. With opt.w8a8 every selected layer then becomes a w8a8_linear
// (model/layers/w8a8_linear.hpp); static activations take the range max_j max|x_j| / s_j
// of the layer's (smoothed) input.
//
// Calibration: one capture pass (calibration_capture with channel_stats, max|x| per
// channel) of the model as given, not the block-sequential pipeline. SmoothQuant's scales
// are a closed form of max|x| of the unquantized model (the paper calibrates once on the
// FP16 model), and a fold changes no group's input except its own, by exactly x / s, so
// every group's maxima in the smoothed space follow from the one pass (max|x_j / s_j| =
// max|x_j| / s_j), and so do the static ranges. No group's scales depend on weights that an
// earlier fold changes (q/k/v columns, then attn_output columns, gate/up columns, ffn_down
// columns; ffn_up rows change last), so all scales are computed first, from the model as
// given, which lets every check run before the model changes. One forward pass instead of
// the five of the sequential pipeline; the price is that static ranges do not see the
// int8 error of the layers before (small at 8 bits).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pare/model/calibration.hpp"
#include "pare/model/layers/linear.hpp"
#include "pare/model/layers/w8a8_linear.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/pipeline/awq_linears.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/pipeline/sequential_linears.hpp"
#include "pare/solvers/smoothquant.hpp"

PARE_NAMESPACE_BEGIN

struct smoothquant_linears_options {
  solvers::smoothquant_options sq{};  ///< α and the floor ε
  bool smooth = true;                 ///< compute and fold scales (false: plain W8A8)
  bool smooth_ffn_down = true;        ///< also smooth ffn_down's input (fold into ffn_up rows)
  bool w8a8 = true;                   ///< quantize the selected layers to W8A8 after folding
  w8a8_activations activations = w8a8_activations::dynamic_per_token;
};

struct smoothquant_group_report {
  std::string group;        ///< the group's first layer
  std::string folded_into;  ///< where s⁻¹ went ("" when not smoothed)
  double range = 0;         ///< max|x| of the group's input before smoothing
  double range_smoothed = 0;  ///< the same after (x / s)
};

struct smoothquant_linears_result {
  std::vector<layer_change> changes;
  std::vector<smoothquant_group_report> groups;
};

/// SmoothQuant over every selected linear layer of m with the channel statistics `stats`
/// of m as given (calibration_capture with channel_stats). argument_error for bad options
/// (α outside [0, 1] or NaN, naming 'alpha') or a needed layer missing from `stats`;
/// value_error for NaN/Inf weights. Every check runs before m changes: on an error m is
/// unchanged.
inline smoothquant_linears_result smoothquant_linears(llama_model& m, const calibration_capture& stats,
                                                      const smoothquant_linears_options& opt = {},
                                                      const std::function<bool(const std::string&)>& select = {}) {
  const char* where = "pare::smoothquant_linears";
  solvers::check_smoothquant_options(where, opt.sq);
  auto selected = [&](const std::string& n) { return !select || select(n); };
  auto maxima_of = [&](const std::vector<std::string>& names) -> const linear_input_stats& {
    for (const std::string& n : names) {
      const auto it = stats.all().find(n);
      if (it != stats.all().end() && it->second.tokens > 0 && it->second.max_abs.size() == it->second.in_features)
        return it->second;
    }
    detail::fail<argument_error>(where, ": argument 'stats': expected per-channel maxima (channel_stats) of the input of '",
                                 names.front(), "', got none");
  };

  // 1. Every group's scales and every selected layer's activation range, from m as given.
  struct planned {
    std::vector<std::string> names;
    std::vector<float> s;  // empty: not smoothed
    std::string fold;
    std::size_t block = 0;
  };
  std::vector<planned> plan;
  std::map<std::string, double> range;  // selected layer -> max|x| of its input as it will be
  smoothquant_linears_result out;
  const bool need_range = opt.w8a8 && opt.activations == w8a8_activations::static_per_tensor;
  std::vector<std::vector<std::string>> groups;
  for (std::size_t l = 0; l < m.blocks.size(); ++l)
    for (auto& g : block_linear_groups(l)) groups.push_back(std::move(g));
  groups.push_back({"output.weight"});
  for (const auto& names : groups) {
    if (std::none_of(names.begin(), names.end(), selected)) continue;
    const detail::awq_group g = detail::awq_group_of(m, names.front());
    const bool down = names.front().find("ffn_down") != std::string::npos;
    const bool smooth = opt.smooth && !g.fold.empty() && (opt.smooth_ffn_down || !down);
    planned p{names, {}, smooth ? g.fold : std::string(), g.block};
    smoothquant_group_report rep{names.front(), p.fold, 0, 0};
    if (smooth || need_range) {
      const linear_input_stats& in = maxima_of(names);
      const std::size_t k = m.linear(names.front()).in_features();
      if (in.in_features != k)
        detail::fail<argument_error>(where, ": argument 'stats': expected ", k, " input channels for '", names.front(),
                                     "', got ", in.in_features);
      if (smooth) {
        std::vector<std::vector<float>> ws;
        std::vector<matrix_view<const float>> views;
        ws.reserve(names.size());
        for (const std::string& n : names) {
          ws.push_back(detail::awq_dense_of(m.linear(n)));
          views.emplace_back(ws.back().data(), m.linear(n).out_features(), k);
        }
        p.s = solvers::smoothquant_scales(views, in, opt.sq);
        for (std::size_t j = 0; j < k; ++j)
          if (!std::isfinite(p.s[j]))
            detail::fail<value_error>(where, ": layer '", names.front(), "': scale of input channel ", j,
                                      " overflows float (max|x| ", in.max_abs[j], ")");
      }
      for (std::size_t j = 0; j < k; ++j) {
        rep.range = std::max(rep.range, in.max_abs[j]);
        rep.range_smoothed = std::max(rep.range_smoothed, in.max_abs[j] / (p.s.empty() ? 1.0 : double(p.s[j])));
      }
    }
    for (const std::string& n : names)
      if (selected(n)) range[n] = rep.range_smoothed;
    plan.push_back(std::move(p));
    out.groups.push_back(rep);
  }
  if (opt.w8a8)  // the quantizer would refuse NaN/Inf weights after the folds: check them now
    for (const auto& [name, r] : range) {
      (void)r;
      const linear_layer& l = m.linear(name);
      std::vector<float> w = detail::awq_dense_of(l);
      for (std::size_t i = 0; i < w.size(); ++i)
        if (!std::isfinite(w[i]))
          detail::fail<value_error>(where, ": layer '", name, "': expected finite weights, got ", w[i], " at (",
                                    i / l.in_features(), ", ", i % l.in_features(), ")");
    }

  // 2. The folds (exact), 3. W8A8.
  for (const planned& p : plan)
    if (!p.s.empty()) awq_fold(m, p.names.front(), p.s);
  std::size_t gi = 0;
  for (const planned& p : plan) {
    const smoothquant_group_report& rep = out.groups[gi++];
    if (!opt.w8a8 && p.s.empty()) continue;  // fold only: nothing changed in this group
    for (const std::string& n : p.names) {
      if (!selected(n)) continue;
      layer_change ch{n, "", "", false, ""};
      if (!p.s.empty()) ch.add_reason(detail::concat("alpha ", opt.sq.alpha, " folded into ", p.fold));
      if (opt.w8a8) {
        const linear_layer& cur = m.linear(n);
        const std::vector<float> w = detail::awq_dense_of(cur);
        auto q = std::make_unique<w8a8_linear>(matrix_view<const float>(w.data(), cur.out_features(), cur.in_features()),
                                               opt.activations, need_range ? range.at(n) : 0.0);
        ch.format = q->format();
        ch.backend = q->backend();
        if (need_range) ch.add_reason(detail::concat("static range ", rep.range_smoothed, " (", rep.range, " unsmoothed)"));
        m.set_linear(n, std::move(q));
      } else {
        ch.format = m.linear(n).format();
        ch.backend = "f32";
      }
      out.changes.push_back(ch);
    }
  }
  return out;
}

PARE_NAMESPACE_END
