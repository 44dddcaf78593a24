// Recipe steps: "quant:…", "quant:ggml:…", "prune:…", "lowrank:…", "share:…", "slicegpt:…" parsed from strings and applied to a llama_model with shared calibration data.
#pragma once

// Steps (a recipe is a comma-separated list, applied in order):
//   quant:<config>                     pare's linear quantization (quant_config grammar)
//   quant:ggml:<type>[:imatrix]        llama.cpp's block formats (importance from calibration)
//   prune:depth:<n>:<criterion>[:iter] remove n transformer blocks; criterion ppl (perplexity
//                                      of the calibration text without the block), taylor
//                                      (Σ|w·∂L/∂w| over the calibration text), taylor+ (the
//                                      same with the first and last block kept), magnitude
//                                      (Σ|w|); ":iter" re-scores after each removal
//   lowrank:<policy>[:<method>]        factor every block linear layer (not the tied classifier)
//                                      as A·B: energy=<e> | rank=<r> | ratio=<ρ> | budget=<β>,
//                                      method plain | asvd | whiten (pare/pipeline/lowrank_linears.hpp)
//   share:kmeans:<B>bit[:per_row]      k-means weight sharing: 2^B fp32 centroids per tensor
//                                      (or per row) and B-bit indices (pare/share/kmeans.hpp)
//   prune:unstructured:<s>:<magnitude|wanda>   zero a fraction s of every row of the block
//                                      linear layers (pare/pipeline/mask_prune_linears.hpp)
//   prune:nm:<n>:<m>:<magnitude|wanda> N:M sparsity along the inputs (e.g. prune:nm:2:4:wanda)
//   prune:ffn:<fraction>:<criterion>   remove that fraction of every feed-forward block's
//                                      neurons by magnitude, activation (mean |h|) or apoz
//   slicegpt:<fraction>[:global]       SliceGPT: rotate the residual stream onto its principal
//                                      axes (one basis per norm input, or one global basis)
//                                      and delete that fraction of its width
//                                      (pare/pipeline/slicegpt.hpp); global slices write GGUF
// Calibration uses the --calib text, not the evaluated text: channel statistics (for the
// imatrix and activation criteria) are captured on the model as the step finds it, token
// windows feed PPL-drop and Taylor.

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/strings.hpp"
#include "pare/model/calibration.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/pipeline/ggml_quantize_linears.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/lowrank_linears.hpp"
#include "pare/pipeline/mask_prune_linears.hpp"
#include "pare/pipeline/share_linears.hpp"
#include "pare/pipeline/slicegpt.hpp"
#include "pare/pipeline/structured_prune.hpp"

PARE_NAMESPACE_BEGIN

struct recipe_step {
  enum kind_t { quant, ggml, depth, ffn, kmeans, lowrank, masked, slice } kind = quant;
  mask_prune_spec mask_spec;
  std::string text;
  quant_config cfg;
  ggml_quant_spec ggml_spec;
  std::size_t n = 0;          // depth: blocks to remove
  double fraction = 0;        // ffn
  std::string criterion;      // depth / ffn
  bool iterative = false;     // depth
  bool writes_gguf() const {
    return kind != quant && kind != kmeans && kind != lowrank &&
           !(kind == slice && slice_opt.mode == slicegpt_options::rotation::per_point);
  }
  lowrank_spec lr;
  slicegpt_options slice_opt;
  bool needs_calibration() const {
    return (kind == ggml && ggml_spec.imatrix) || kind == depth || (kind == ffn && criterion != "magnitude") ||
           (kind == lowrank && lr.method != lowrank_method::plain) || (kind == masked && mask_spec.criterion == "wanda") || kind == slice;
  }
};

/// Parses one step; argument_error naming the step on any problem.
inline recipe_step parse_recipe_step(const std::string& step) {
  recipe_step st;
  st.text = step;
  auto bad = [&](const std::string& why) {
    detail::fail<argument_error>("step '", step, "': ", why);
  };
  if (step.rfind("quant:ggml:", 0) == 0) {
    st.kind = recipe_step::ggml;
    st.ggml_spec = ggml_quant_spec::parse(step.substr(11));
  } else if (step.rfind("quant:", 0) == 0) {
    st.cfg = quant_config::parse(step.substr(6));
  } else if (step.rfind("prune:depth:", 0) == 0) {
    const auto t = split(step.substr(12), ':');
    if (t.size() < 2 || t.size() > 3 || (t.size() == 3 && t[2] != "iter"))
      bad("expected prune:depth:<n>:<ppl|taylor|taylor+|magnitude>[:iter]");
    if (t[0].empty() || t[0].find_first_not_of("0123456789") != std::string::npos || t[0].size() > 6)
      bad("expected a block count n >= 1, got '" + t[0] + "'");
    st.kind = recipe_step::depth;
    st.n = std::stoul(t[0]);
    if (st.n == 0) bad("expected a block count n >= 1, got 0");
    st.criterion = t[1];
    if (st.criterion != "ppl" && st.criterion != "taylor" && st.criterion != "taylor+" && st.criterion != "magnitude")
      bad("expected the criterion ppl, taylor, taylor+ or magnitude, got '" + st.criterion + "'");
    st.iterative = t.size() == 3;
  } else if (step.rfind("prune:ffn:", 0) == 0) {
    const auto t = split(step.substr(10), ':');
    if (t.size() != 2) bad("expected prune:ffn:<fraction>:<magnitude|activation|apoz>");
    char* end = nullptr;
    st.fraction = std::strtod(t[0].c_str(), &end);
    if (t[0].empty() || *end != '\0' || !(st.fraction >= 0.0 && st.fraction < 1.0))
      bad("expected a fraction in [0, 1), got '" + t[0] + "'");
    st.kind = recipe_step::ffn;
    st.criterion = t[1];
    if (st.criterion != "magnitude" && st.criterion != "activation" && st.criterion != "apoz")
      bad("expected the criterion magnitude, activation or apoz, got '" + st.criterion + "'");
  } else if (step.rfind("prune:unstructured:", 0) == 0 || step.rfind("prune:nm:", 0) == 0) {
    st.kind = recipe_step::masked;
    st.mask_spec = mask_prune_spec::parse(step.substr(6));
  } else if (step.rfind("lowrank:", 0) == 0) {
    st.kind = recipe_step::lowrank;
    st.lr = lowrank_spec::parse(step.substr(8));
  } else if (step.rfind("slicegpt:", 0) == 0) {
    const auto t = split(step.substr(9), ':');
    if (t.empty() || t.size() > 2 || (t.size() == 2 && t[1] != "global"))
      bad("expected slicegpt:<fraction>[:global]");
    char* end = nullptr;
    st.slice_opt.fraction = std::strtod(t[0].c_str(), &end);
    if (t[0].empty() || *end != '\0' || !(st.slice_opt.fraction >= 0.0 && st.slice_opt.fraction < 1.0))
      bad("expected a fraction in [0, 1), got '" + t[0] + "'");
    if (t.size() == 2) st.slice_opt.mode = slicegpt_options::rotation::global;
    st.kind = recipe_step::slice;
  } else if (step.rfind("share:kmeans:", 0) == 0) {
    st.kind = recipe_step::kmeans;
    (void)kmeans_config::parse(step.substr(6));  // validates
  } else {
    bad("expected quant:<config>, quant:ggml:<type>, prune:…, lowrank:…, slicegpt:… or share:kmeans:…");
  }
  return st;
}

/// Calibration text shared by every step of a run (never the evaluated text).
struct calibration_set {
  std::vector<std::int32_t> tokens;  // the calibration text under the perplexity protocol
  std::size_t window = 512;
  std::vector<std::unique_ptr<calibration_capture>> captures;  // kept alive for the run

  /// Channel statistics of every linear input of model m as it is now (earlier steps applied).
  const calibration_capture& channel_stats(const llama_model& m, bool xtx = false) {
    captures.push_back(std::make_unique<calibration_capture>(calibration_capture::options{xtx, true, "", {}}));
    const std::size_t win = std::min<std::size_t>(window, static_cast<std::size_t>(m.config.seq_len));
    for (std::size_t at = 0; at < tokens.size(); at += win) {
      llama_session s(m);
      s.set_observer(captures.back().get());
      std::vector<float> logits;
      s.forward(tokens.data() + at, std::min(win, tokens.size() - at), logits);
    }
    return *captures.back();
  }
  std::vector<std::vector<std::int32_t>> windows(const llama_model& m) const {
    std::vector<std::vector<std::int32_t>> w;
    const std::size_t win = std::min<std::size_t>(window, static_cast<std::size_t>(m.config.seq_len));
    for (std::size_t at = 0; at + 1 < tokens.size(); at += win)
      w.emplace_back(tokens.begin() + static_cast<std::ptrdiff_t>(at),
                     tokens.begin() + static_cast<std::ptrdiff_t>(std::min(tokens.size(), at + win)));
    return w;
  }
  double ppl(const llama_model& m) const { return perplexity(m, tokens, nullptr, window).ppl; }
};

/// The block criterion of a depth step.
inline block_criterion depth_criterion(const recipe_step& st, calibration_set& cal) {
  if (st.criterion == "ppl") return ppl_drop_criterion([&cal](const llama_model& m) { return cal.ppl(m); });
  if (st.criterion == "magnitude") return magnitude_criterion();
  return [&cal](llama_model& m) { return taylor_block_scores(m, cal.windows(m)); };
}

/// Applies one step to m.
inline std::vector<layer_change> apply_recipe_step(const recipe_step& st, llama_model& m,
                                                 const std::function<bool(const std::string&)>& select,
                                                 calibration_set& cal) {
  switch (st.kind) {
    case recipe_step::quant: return quantize_linears(m, st.cfg, select);
    case recipe_step::ggml: {
      const calibration_capture* stats = nullptr;
      if (st.ggml_spec.imatrix) stats = &cal.channel_stats(m);
      return quantize_linears_ggml(m, st.ggml_spec, select, stats);
    }
    case recipe_step::depth: {
      const bool plus = st.criterion == "taylor+";
      const std::size_t keep = plus ? 1 : 0;
      const auto crit = depth_criterion(st, cal);
      const auto removed = st.iterative ? depth_prune_iterative(m, st.n, crit, keep, keep)
                                        : depth_prune(m, st.n, crit, keep, keep);
      std::vector<layer_change> out;
      for (std::size_t b : removed)
        out.push_back({"blk." + std::to_string(b), "removed", "", false, "block removed (" + st.criterion + ")"});
      return out;
    }
    case recipe_step::lowrank: {
      const calibration_capture* stats =
          st.lr.method == lowrank_method::plain ? nullptr : &cal.channel_stats(m, st.lr.method == lowrank_method::whiten);
      auto blocks_only = [&select](const std::string& n) { return n != "output.weight" && (!select || select(n)); };
      return lowrank_linears(m, st.lr, blocks_only, stats);
    }
    case recipe_step::masked: {
      const calibration_capture* stats = st.mask_spec.criterion == "wanda" ? &cal.channel_stats(m) : nullptr;
      return prune_linears_masked(m, st.mask_spec, select, stats);
    }
    case recipe_step::kmeans: return kmeans_linears(m, st.text.substr(6), select);
    case recipe_step::slice: {
      const slicegpt_report r = slice_model(m, cal.windows(m), st.slice_opt);
      double lo = 1, hi = 0;
      for (double v : r.kept_variance) lo = std::min(lo, v), hi = std::max(hi, v);
      char buf[160];
      std::snprintf(buf, sizeof buf, "width %zu -> %zu (%s rotation, kept variance %.3f-%.3f)", r.old_dim,
                    r.new_dim, st.slice_opt.mode == slicegpt_options::rotation::global ? "one global" : "per-norm",
                    lo, hi);
      return {{"residual", buf, "", false, "SliceGPT"}};
    }
    case recipe_step::ffn: {
      const calibration_capture* stats = st.criterion == "magnitude" ? nullptr : &cal.channel_stats(m);
      const std::size_t kept = prune_ffn_width(m, st.fraction, st.criterion, stats);
      return {{"ffn", "width " + std::to_string(kept), "", false, "feed-forward neurons kept per block"}};
    }
  }
  return {};
}

PARE_NAMESPACE_END
