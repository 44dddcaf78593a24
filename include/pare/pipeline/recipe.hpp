// Recipe steps: "quant:…", "quant:ggml:…", "prune:…", "lowrank:…", "share:…", "slicegpt:…" parsed from strings and applied to a llama_model with shared calibration data.
#pragma once

// Steps (a recipe is a comma-separated list, applied in order):
//   quant:<config>                     pare's linear quantization (quant_config grammar)
//   quant:ggml:<type>[:imatrix]        llama.cpp's block formats (importance from calibration)
//   gptq:<config>[:actorder][:fptarget][:damp=<λ>][:block=<B>]
//                                      GPTQ into pare's linear formats (quant_config grammar),
//                                      layer by layer behind the already quantized layers
//                                      (pare/pipeline/gptq_linears.hpp); act-order with static
//                                      groups, dampening λ·mean(diag H) (default 0.01), lazy
//                                      batch of B columns (default 128); fptarget: fit each layer
//                                      to the step's input model's outputs on its own inputs
//                                      (asymmetric calibration, pare/solvers/asymmetric_target.hpp)
//   gptq:ggml:<type>[:imatrix][:actorder][:fptarget][:damp=<λ>][:block=<B>]
//                                      GPTQ into llama.cpp's block formats (q4_0, q4_K, iq4_nl,
//                                      q8_0, ...; llama.cpp's fallbacks), ggml's bytes: writes a
//                                      GGUF llama.cpp loads (pare/pipeline/gptq_ggml_linears.hpp);
//                                      fptarget as for gptq:<config>
//   awq:<config>[:noclip][:grid=<G>]   AWQ: per-input-channel scales mean|x|^α (α by grid search
//                                      on each group's output error) folded into the RMSNorm
//                                      gain or the linear before the group, clipping search,
//                                      round to nearest (pare/pipeline/awq_linears.hpp)
//   awq+gptq:<config>[:noclip][:grid=<G>][:actorder][:damp=<λ>]
//                                      the same with GPTQ after scaling and clipping
//   smoothquant:<α>[:nodown]           SmoothQuant: scales max|x|^α / max|w|^(1−α) folded into the
//   smoothquant:<α|none>:w8a8[:static|:dynamic][:nodown]
//                                      RMSNorm gain or the linear before each group (nodown: not
//                                      ffn_down's input); with w8a8 then int8 weights per channel ×
//                                      int8 activations per token (dynamic, default) or with one
//                                      calibrated scale per layer (static); none: no smoothing
//                                      (pare/pipeline/smoothquant_linears.hpp); W8A8 writes no GGUF
//   mixed:<bpw>:<fmt>/<fmt>/...[:ppl|:hessian][:gptq][:actorder][:damp=<λ>][:windows=<n>]
//                                      mixed precision: one format per layer (quant_config
//                                      grammar) minimising the summed sensitivity (calibration NLL
//                                      with that layer alone quantized on the first n windows,
//                                      default 16, or the Hessian proxy) within <bpw> bits/weight
//                                      as pare-compress counts them; RTN or GPTQ
//                                      (pare/pipeline/mixed_precision.hpp)
//   sparsegpt:<sparsity>[:per_row][:<config>][:fptarget][:damp=<λ>][:block=<B>]
//   sparsegpt:<n>:<m>[:<config>][...]  SparseGPT (pare/pipeline/sparsegpt_linears.hpp):
//                                      unstructured (one count per block over all rows, or
//                                      per_row: each row its own), or N:M keeping n of every m inputs
//                                      (2:4 runs on the 2:4 sparse kernel); with a
//                                      quant_config the survivors are quantized in the
//                                      same walk (e.g. sparsegpt:0.5:int4:g32:asym); fptarget
//                                      as for gptq:<config>
//   prune:<prune_spec>                 pare/prune/prune_spec.hpp's grammar. Model granularities
//                                      change the model's shape: depth:<n>:<ppl|taylor|taylor+|
//                                      magnitude>[:iter] removes n blocks (ppl: perplexity of the
//                                      calibration text without the block; taylor: Σ|w·∂L/∂w|;
//                                      taylor+: the same with the first and last block kept),
//                                      ffn:<fraction>:<magnitude|activation|activation_l2|apoz>
//                                      removes FFN neurons, heads:<fraction>:magnitude KV heads
//                                      (pare/pipeline/llama_block_model.hpp). Matrix granularities
//                                      (unstructured:, nm:, rows:, columns:) with magnitude or
//                                      wanda zero weights in place (pare/pipeline/mask_prune_linears.hpp)
//   lowrank:<policy>[:<method>]        factor every block linear layer (not the tied classifier)
//                                      as A·B: energy=<e> | rank=<r> | ratio=<ρ> | budget=<β>,
//                                      method plain | asvd | whiten (pare/pipeline/lowrank_linears.hpp)
//   share:kmeans:<B>bit[:per_row]      k-means weight sharing: 2^B fp32 centroids per tensor
//                                      (or per row) and B-bit indices (pare/share/kmeans.hpp)
//   slicegpt:<fraction>[:global]       SliceGPT: rotate the residual stream onto its principal
//                                      axes (one basis per norm input, or one global basis)
//                                      and delete that fraction of its width
//                                      (pare/pipeline/slicegpt.hpp); global slices write GGUF
// Calibration uses the --calib text, not the evaluated text: channel statistics (for the
// imatrix and activation criteria) are captured on the model as the step finds it, token
// windows feed PPL-drop and Taylor.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/strings.hpp"
#include "pare/model/calibration.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/pipeline/ggml_quantize_linears.hpp"
#include "pare/pipeline/awq_linears.hpp"
#include "pare/pipeline/smoothquant_linears.hpp"
#include "pare/pipeline/gptq_linears.hpp"
#include "pare/pipeline/gptq_ggml_linears.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/lowrank_linears.hpp"
#include "pare/pipeline/mixed_precision.hpp"
#include "pare/pipeline/mask_prune_linears.hpp"
#include "pare/pipeline/share_linears.hpp"
#include "pare/pipeline/slicegpt.hpp"
#include "pare/pipeline/sparsegpt_linears.hpp"
#include "pare/pipeline/llama_block_model.hpp"
#include "pare/pipeline/structured_prune.hpp"  // not used here; kept for includers of the block criteria
#include "pare/prune/prune_spec.hpp"

PARE_NAMESPACE_BEGIN

struct recipe_step {
  enum kind_t { quant, ggml, structural, kmeans, lowrank, masked, slice, gptq, awq, sparsegpt, gptq_ggml, smoothquant, mixed } kind = quant;
  std::string text;
  quant_config cfg;
  ggml_quant_spec ggml_spec;
  prune::prune_spec prune;  ///< structural (depth, ffn, heads) and masked steps
  lowrank_spec lr;
  slicegpt_options slice_opt;
  solvers::gptq_options gptq_opt;
  bool fp_target = false;  ///< gptq / gptq:ggml / sparsegpt ...:fptarget: fit the step's input model's outputs (asymmetric calibration)
  awq_linears_options awq_opt;
  sparsegpt_linears_options sparsegpt_opt;
  mixed_precision_options mixed_opt;  ///< mixed:
  smoothquant_linears_options sq_opt;

  bool writes_gguf() const {
    if (kind == smoothquant) return !sq_opt.w8a8;  // W8A8 is no GGUF type; folded fp32 is
    const bool sparse_kernel = sparsegpt_opt.prune.m == 4 && sparsegpt_opt.prune.n == 2;  // no GGUF type for 2:4
    return kind != quant && kind != gptq && kind != awq && !(kind == sparsegpt && (sparsegpt_opt.quantize || sparse_kernel)) &&
           kind != kmeans && kind != lowrank && kind != mixed &&
           !(kind == slice && slice_opt.mode == slicegpt_options::rotation::per_point);
  }
  bool needs_calibration() const {
    if (kind == smoothquant) return sq_opt.smooth || sq_opt.activations == w8a8_activations::static_per_tensor;
    return kind == gptq || kind == gptq_ggml || kind == mixed || kind == awq || kind == sparsegpt || (kind == ggml && ggml_spec.imatrix) || ((kind == structural || kind == masked) && prune.needs_calibration()) ||
           (kind == lowrank && lr.method != lowrank_method::plain) || kind == slice;
  }
};

/// Parses one step; argument_error naming the step on any problem.
inline recipe_step parse_recipe_step(const std::string& step) {
  recipe_step st;
  st.text = step;
  auto bad = [&](const std::string& why) {
    detail::fail<argument_error>("step '", step, "': ", why);
  };
  auto number = [&](const std::string& v, const std::string& what) {
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0') bad("expected " + what + ", got '" + v + "'");
    return x;
  };
  // damp=<λ> and block=<B> of the Hessian solvers (GPTQ, SparseGPT); false for another token.
  auto solver_option = [&](const std::string& t, solvers::hessian_options& hs, std::size_t& block, std::size_t multiple) {
    if (t.rfind("damp=", 0) == 0) {
      hs.dampening = number(t.substr(5), "a number after 'damp='");
      if (!(hs.dampening >= 0.0) || !std::isfinite(hs.dampening)) bad("expected damp=<λ> with a finite λ >= 0");
      return true;
    }
    if (t.rfind("block=", 0) != 0) return false;
    const double b = number(t.substr(6), "a number after 'block='");
    if (!(b >= 1.0 && b <= 65536.0) || b != std::floor(b) || (multiple && std::size_t(b) % multiple))
      bad(std::string("expected block=<B> with an integer B in [1, 65536]") + (multiple > 1 ? ", a multiple of m" : ""));
    block = static_cast<std::size_t>(b);
    return true;
  };
  if (step.rfind("quant:ggml:", 0) == 0) {
    st.kind = recipe_step::ggml;
    st.ggml_spec = ggml_quant_spec::parse(step.substr(11));
  } else if (step.rfind("quant:", 0) == 0) {
    st.cfg = quant_config::parse(step.substr(6));
  } else if (step.rfind("gptq:ggml:", 0) == 0) {
    st.kind = recipe_step::gptq_ggml;
    std::string spec;
    for (const std::string& t : split(step.substr(10), ':')) {
      if (t == "actorder") st.gptq_opt.act_order = true;
      else if (t == "fptarget") st.fp_target = true;
      else if (!solver_option(t, st.gptq_opt.hessian, st.gptq_opt.block_size, 1)) spec += (spec.empty() ? "" : ":") + t;
    }
    if (spec.empty()) bad("expected gptq:ggml:<type>[:imatrix][:actorder][:fptarget][:damp=<λ>][:block=<B>], e.g. gptq:ggml:q4_0");
    st.ggml_spec = ggml_quant_spec::parse(spec);
    if (!solvers::detail::gptq_ggml::find_codec(st.ggml_spec.type))
      bad(std::string("expected a ggml block format for GPTQ (") + solvers::detail::gptq_ggml::supported_names() + "), got " +
          ggml::to_string(st.ggml_spec.type));
  } else if (step.rfind("gptq:", 0) == 0 || step.rfind("awq:", 0) == 0 || step.rfind("awq+gptq:", 0) == 0) {
    const bool awq = step.rfind("awq", 0) == 0;
    st.kind = awq ? recipe_step::awq : recipe_step::gptq;
    st.awq_opt.gptq = step.rfind("awq+gptq:", 0) == 0;
    std::string cfg;
    for (const std::string& t : split(step.substr(step.find(':') + 1), ':')) {
      if (awq && t == "noclip") {
        st.awq_opt.clip = false;
      } else if (awq && t.rfind("grid=", 0) == 0) {
        const double g = number(t.substr(5), "a number after 'grid='");
        if (!(g >= 1.0 && g <= 1000.0) || g != std::floor(g)) bad("expected grid=<G> with an integer G in [1, 1000]");
        st.awq_opt.awq.grid = static_cast<std::size_t>(g);
      } else if (t == "actorder" && (!awq || st.awq_opt.gptq)) {
        st.gptq_opt.act_order = true;
      } else if (t == "fptarget" && !awq) {
        st.fp_target = true;
      } else if ((!awq || st.awq_opt.gptq) && solver_option(t, st.gptq_opt.hessian, st.gptq_opt.block_size, 1)) {
        // damp= / block=, read
      } else {
        cfg += (cfg.empty() ? "" : ":") + t;
      }
    }
    if (cfg.empty())
      bad(awq ? "expected awq:<config>[:noclip][:grid=<G>] or awq+gptq:<config>[...], e.g. awq:int4:g128:asym"
              : "expected gptq:<config>[:actorder][:damp=<λ>][:block=<B>], e.g. gptq:int4:g32:asym");
    st.cfg = quant_config::parse(cfg);
    if (st.cfg.rounding != rounding_kind::nearest_even)
      bad(awq ? "AWQ searches with round to nearest: stochastic rounding does not apply"
              : "GPTQ chooses each code itself: stochastic rounding does not apply");
    st.awq_opt.gptq_opt = st.gptq_opt;
  } else if (step.rfind("smoothquant:", 0) == 0) {
    st.kind = recipe_step::smoothquant;
    const std::vector<std::string> t = split(step.substr(12), ':');
    smoothquant_linears_options& o = st.sq_opt;
    o.w8a8 = false;
    if (t.empty() || t[0].empty()) bad("expected smoothquant:<α>[:w8a8[:static|:dynamic]][:nodown], e.g. smoothquant:0.5:w8a8");
    if (t[0] == "none") {
      o.smooth = false;
    } else {
      char* end = nullptr;
      o.sq.alpha = std::strtod(t[0].c_str(), &end);
      if (*end != '\0' || !(o.sq.alpha >= 0.0 && o.sq.alpha <= 1.0))
        bad("argument 'alpha': expected a migration strength in [0, 1] or 'none', got '" + t[0] + "'");
    }
    bool mode = false;
    for (std::size_t i = 1; i < t.size(); ++i) {
      if (t[i] == "w8a8" && !o.w8a8) o.w8a8 = true;
      else if ((t[i] == "static" || t[i] == "dynamic") && o.w8a8 && !mode) {
        mode = true;
        o.activations = t[i] == "static" ? w8a8_activations::static_per_tensor : w8a8_activations::dynamic_per_token;
      } else if (t[i] == "nodown" && o.smooth_ffn_down) o.smooth_ffn_down = false;
      else bad("expected smoothquant:<α>[:w8a8[:static|:dynamic]][:nodown], got token '" + t[i] + "'");
    }
    if (!o.smooth && !o.w8a8) bad("smoothquant:none does nothing without w8a8 (expected smoothquant:none:w8a8[...])");
  } else if (step.rfind("mixed:", 0) == 0) {
    st.kind = recipe_step::mixed;
    st.mixed_opt = mixed_precision_options::parse(step.substr(6));
  } else if (step.rfind("sparsegpt:", 0) == 0) {
    st.kind = recipe_step::sparsegpt;
    const std::vector<std::string> t = split(step.substr(10), ':');
    const char* usage = "expected sparsegpt:<sparsity> or sparsegpt:<n>:<m>, then an optional quant config, e.g. "
                        "sparsegpt:0.5, sparsegpt:2:4, sparsegpt:0.5:int4:g32:asym";
    if (t.empty() || t[0].empty()) bad(usage);
    std::size_t at = 1;
    const bool nm = t.size() >= 2 && !t[1].empty() && t[1].find_first_not_of("0123456789") == std::string::npos;
    solvers::sparsegpt_options& so = st.sparsegpt_opt.prune;
    if (nm) {
      const double n = number(t[0], "<n> (weights kept per group)"), mm = number(t[1], "<m> (group size)");
      if (!(n >= 1 && n <= mm && mm <= 64) || n != std::floor(n)) bad("expected 1 <= n <= m <= 64 for sparsegpt:<n>:<m>");
      so.n = static_cast<std::size_t>(n);
      so.m = static_cast<std::size_t>(mm);
      so.block_size = 128 / so.m * so.m;
      at = 2;
    } else {
      so.sparsity = number(t[0], "a sparsity in [0, 1)");
      if (!(so.sparsity >= 0.0 && so.sparsity < 1.0)) bad("expected a sparsity in [0, 1), got '" + t[0] + "'");
    }
    std::string cfg;
    for (; at < t.size(); ++at) {
      if (t[at] == "per_row" && !nm) {
        so.per_row = true;
      } else if (t[at] == "fptarget") {
        st.fp_target = true;
      } else if (solver_option(t[at], so.hessian, so.block_size, so.m)) {
        // damp= / block=, read
      } else {
        cfg += (cfg.empty() ? "" : ":") + t[at];
      }
    }
    if (!cfg.empty()) {
      st.sparsegpt_opt.quantize = true;
      st.sparsegpt_opt.cfg = quant_config::parse(cfg);
      if (st.sparsegpt_opt.cfg.rounding != rounding_kind::nearest_even)
        bad("SparseGPT chooses each code itself: stochastic rounding does not apply");
    }
  } else if (step.rfind("prune:", 0) == 0) {
    st.prune = prune::prune_spec::parse(step.substr(6));
    if (st.prune.schedule == prune::schedule_kind::gradual) bad("the gradual schedule needs a training loop");
    if (st.prune.is_model_level()) {
      st.kind = recipe_step::structural;
    } else {
      st.kind = recipe_step::masked;
      (void)mask_prune_spec(st.prune);  // the model pipeline's criteria
    }
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
    bad("expected quant:<config>, quant:ggml:<type>, gptq:<config>, awq:<config>, smoothquant:…, sparsegpt:…, mixed:…, prune:…, lowrank:…, slicegpt:… or share:kmeans:…");
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
    calibration_capture::options o;
    o.xtx = xtx;
    o.channel_stats = true;
    captures.push_back(std::make_unique<calibration_capture>(std::move(o)));
    const std::size_t win = std::min<std::size_t>(window, static_cast<std::size_t>(m.config.seq_len));
    for (std::size_t at = 0; at < tokens.size(); at += win) {
      llama_session s(m);
      s.set_observer(captures.back().get());
      std::vector<float> logits;
      s.forward(tokens.data() + at, std::min(win, tokens.size() - at), logits, true);  // output.weight sees every row
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

/// Applies one step to m.
inline std::vector<layer_change> apply_recipe_step(const recipe_step& st, llama_model& m,
                                                 const std::function<bool(const std::string&)>& select,
                                                 calibration_set& cal) {
  // fptarget (gptq, gptq:ggml, sparsegpt): the step's input model, dense, is the reference.
  const std::unique_ptr<const llama_model> ref = st.fp_target ? std::make_unique<const llama_model>(dense_copy(m)) : nullptr;
  switch (st.kind) {
    case recipe_step::quant: return quantize_linears(m, st.cfg, select);
    case recipe_step::gptq: return gptq_linears(m, st.cfg, cal.windows(m), st.gptq_opt, select, {}, ref.get()).changes;
    case recipe_step::gptq_ggml:
      return gptq_linears_ggml(m, st.ggml_spec, cal.windows(m), st.gptq_opt, select, {}, ref.get()).changes;
    case recipe_step::awq: return awq_linears(m, st.cfg, cal.windows(m), st.awq_opt, select).changes;
    case recipe_step::smoothquant: {  // statistics only for scales or static ranges
      const calibration_capture none;
      return smoothquant_linears(m, st.needs_calibration() ? cal.channel_stats(m) : none, st.sq_opt, select).changes;
    }
    case recipe_step::mixed: return mixed_precision_linears(m, cal.windows(m), st.mixed_opt, select).changes;
    case recipe_step::sparsegpt: return sparsegpt_linears(m, st.sparsegpt_opt, cal.windows(m), select, {}, ref.get()).changes;
    case recipe_step::ggml: {
      const calibration_capture* stats = nullptr;
      if (st.ggml_spec.imatrix) stats = &cal.channel_stats(m);
      return quantize_linears_ggml(m, st.ggml_spec, select, stats);
    }
    case recipe_step::structural: {
      llama_block_model::calibration c;
      if (st.prune.criterion == prune::criterion_kind::ppl_drop) c.metric = [&cal](const llama_model& x) { return cal.ppl(x); };
      if (st.prune.criterion == prune::criterion_kind::taylor || st.prune.criterion == prune::criterion_kind::taylor_plus)
        c.windows = cal.windows(m);
      if (st.prune.needs_statistics()) {
        c.capture = [&cal](const llama_model& x) { return &cal.channel_stats(x); };
        c.stats = &cal.channel_stats(m);
      }
      llama_block_model bm(m, c);
      const prune::model_prune_result r = prune::prune_model(bm, st.prune);
      std::vector<layer_change> out;
      for (std::size_t b : r.removed_blocks)
        out.push_back({"blk." + std::to_string(b), "removed", "", false,
                       std::string("block removed (") + prune::to_string(st.prune.criterion) + ")"});
      if (r.ffn_width) out.push_back({"ffn", "width " + std::to_string(r.ffn_width), "", false, "feed-forward neurons kept per block"});
      if (r.kv_heads) out.push_back({"attention", "kv heads " + std::to_string(r.kv_heads), "", false, "KV heads kept per block"});
      return out;
    }
    case recipe_step::lowrank: {
      const calibration_capture* stats =
          st.lr.method == lowrank_method::plain ? nullptr : &cal.channel_stats(m, st.lr.method == lowrank_method::whiten);
      auto blocks_only = [&select](const std::string& n) { return n != "output.weight" && (!select || select(n)); };
      return lowrank_linears(m, st.lr, blocks_only, stats);
    }
    case recipe_step::masked: {
      const calibration_capture* stats = st.prune.criterion == prune::criterion_kind::wanda ? &cal.channel_stats(m) : nullptr;
      return prune_linears_masked(m, mask_prune_spec(st.prune), select, stats);
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
  }
  return {};
}

PARE_NAMESPACE_END
