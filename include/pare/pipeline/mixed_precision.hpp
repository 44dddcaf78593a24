// Mixed precision under a bit budget: every linear layer's sensitivity to each candidate format (calibration NLL with that layer alone quantized, and the Hessian proxy tr(ΔW·H·ΔWᵀ)), the least-sensitivity choice of one format per layer within a bits/weight budget, and the model quantized that way (round to nearest or GPTQ).
#pragma once

// mixed_precision_linears(m, windows, opt, select) does three things.
//
// 1. Sensitivity of every selected layer L to every candidate format f, measured on the
//    model as given with L alone quantized in f (the other layers as they are):
//      nll_increase   mean NLL (nats per predicted token) of the first `sensitivity_windows`
//                     calibration windows minus that of the model as given. The residual
//                     stream entering L's block is held per window (block_sequence), so a
//                     candidate costs the blocks from L's on, not a whole forward pass. A tied
//                     classifier's candidate also replaces the embedding rows (one stored
//                     tensor), so it is measured with a whole forward pass.
//      hessian_error  tr(ΔW·H·ΔWᵀ), H = 2·XᵀX/n of L's input over all calibration windows
//                     (solvers/layer_hessian.hpp); for a tied classifier this sees the
//                     classifier only, not the embedding.
//    The candidate is round to nearest of f, or with `gptq` GPTQ of f on that H. A width
//    the group size does not divide falls back per output channel (layer_config_for), and
//    the candidate's bytes are those of the fallback.
// 2. Allocation (solvers/bit_allocation.hpp, exact DP over bytes): minimise Σ sensitivity
//    (nll_increase, or hessian_error with mixed_sensitivity::hessian) subject to
//      8 · llama_model::storage_bytes() / llama_model::weight_count() ≤ bits_per_weight,
//    pare-compress's bits/weight: the fp32 embedding (or the quantized tied classifier),
//    norms, scales and zero points all count; layers not selected count as they are.
// 3. Quantization of each layer in its chosen format: round to nearest, or with `gptq` the
//    block-sequential GPTQ of gptq_linears (each layer's Hessian behind the layers already
//    quantized) with a per-layer config. The result lists each layer's choice, its bytes,
//    and both sensitivities of every candidate; layer_change records carry the choice.
//
// Errors (argument_error naming the argument, before the model is touched): a budget that
// is not a finite number > 0 or is below what the smallest formats reach (the message
// names that minimum), no formats, a repeated format, stochastic rounding with GPTQ, no
// calibration windows. Cost: formats × layers candidates; with the perplexity sensitivity
// each runs the windows through its block onwards (about formats × (blocks + 1) / 2
// forward passes of the sensitivity windows in all), plus one pass over all windows for
// the Hessians and, with GPTQ, gptq_linears's five.
//
// Recipe form (pipeline/recipe.hpp): mixed:<bpw>:<fmt>/<fmt>/...[:ppl|:hessian][:gptq]
// [:actorder][:damp=<λ>][:windows=<n>], e.g. mixed:4.5:int3:g32:asym/int4:g32:asym/int8:gptq.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/progress.hpp"
#include "pare/core/strings.hpp"
#include "pare/model/calibration.hpp"
#include "pare/model/layers/quantized_linear.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/pipeline/sequential_linears.hpp"
#include "pare/quant/quant_config.hpp"
#include "pare/solvers/bit_allocation.hpp"
#include "pare/solvers/gptq.hpp"
#include "pare/solvers/layer_hessian.hpp"

PARE_NAMESPACE_BEGIN

/// Which sensitivity the allocation minimises.
enum class mixed_sensitivity { ppl, hessian };

struct mixed_precision_options {
  double bits_per_weight = 0;        ///< the budget, as pare-compress counts bits/weight
  std::vector<quant_config> formats;  ///< candidate formats (at least one, no repeats)
  mixed_sensitivity sensitivity = mixed_sensitivity::ppl;
  bool gptq = false;                     ///< GPTQ candidates and GPTQ quantization, else round to nearest
  solvers::gptq_options gptq_opt{};      ///< with gptq
  std::size_t sensitivity_windows = 16;  ///< calibration windows the NLL sensitivity uses (0: all)
  solvers::allocation_options allocation{};

  /// argument_error naming the bad argument (see the header comment).
  void validate(const char* where) const {
    if (!std::isfinite(bits_per_weight) || !(bits_per_weight > 0.0))
      detail::fail<argument_error>(where, ": argument 'bits_per_weight': expected a finite number > 0, got ", bits_per_weight);
    if (formats.empty())
      detail::fail<argument_error>(where, ": argument 'formats': expected at least one quant config, got none");
    for (std::size_t i = 0; i < formats.size(); ++i) {
      formats[i].validate(where);
      for (std::size_t j = 0; j < i; ++j)
        if (formats[j].str() == formats[i].str())
          detail::fail<argument_error>(where, ": argument 'formats': expected distinct formats, got ", formats[i].str(),
                                       " twice");
      if (gptq && formats[i].rounding != rounding_kind::nearest_even)
        detail::fail<argument_error>(where, ": argument 'formats': expected round to nearest with GPTQ (it chooses each code), got ",
                                     formats[i].str());
    }
  }

  /// Parses "<bpw>:<fmt>/<fmt>/...[:ppl|:hessian][:gptq][:actorder][:damp=<λ>][:windows=<n>]"
  /// (the formats in quant_config's grammar, the options after the last one).
  /// argument_error naming the argument on any problem.
  static mixed_precision_options parse(const std::string& spec) {
    const std::string where = "pare::mixed_precision_options::parse('" + spec + "')";
    mixed_precision_options o;
    const std::size_t colon = spec.find(':');
    const std::string bpw = spec.substr(0, colon);
    {
      char* end = nullptr;
      o.bits_per_weight = std::strtod(bpw.c_str(), &end);
      if (bpw.empty() || *end != '\0')
        detail::fail<argument_error>(where, ": argument 'bits_per_weight': expected a number, got '", bpw, "'");
    }
    const std::string rest = colon == std::string::npos ? std::string() : spec.substr(colon + 1);
    std::vector<std::string> seg = split(rest, '/');
    // Options: trailing tokens of the last segment.
    std::vector<std::string> last = split(seg.back(), ':');
    auto number = [&](const std::string& v, const char* what) {
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0') detail::fail<argument_error>(where, ": argument '", what, "': expected a number, got '", v, "'");
      return x;
    };
    bool seen_kind = false;
    while (!last.empty()) {
      const std::string& t = last.back();
      if (t == "ppl" || t == "hessian") {
        if (seen_kind) detail::fail<argument_error>(where, ": argument 'sensitivity': expected one of ppl, hessian, got both");
        seen_kind = true;
        o.sensitivity = t == "ppl" ? mixed_sensitivity::ppl : mixed_sensitivity::hessian;
      } else if (t == "gptq") {
        o.gptq = true;
      } else if (t == "actorder") {
        o.gptq_opt.act_order = true;
      } else if (t.rfind("damp=", 0) == 0) {
        o.gptq_opt.hessian.dampening = number(t.substr(5), "damp");
        if (!(o.gptq_opt.hessian.dampening >= 0.0) || !std::isfinite(o.gptq_opt.hessian.dampening))
          detail::fail<argument_error>(where, ": argument 'damp': expected a finite number >= 0, got '", t.substr(5), "'");
      } else if (t.rfind("windows=", 0) == 0) {
        const double w = number(t.substr(8), "windows");
        if (!(w >= 0.0 && w <= 1e9) || w != std::floor(w))
          detail::fail<argument_error>(where, ": argument 'windows': expected an integer >= 0 (0: all), got '", t.substr(8), "'");
        o.sensitivity_windows = static_cast<std::size_t>(w);
      } else {
        break;
      }
      last.pop_back();
    }
    seg.back().clear();
    for (std::size_t i = 0; i < last.size(); ++i) seg.back() += (i ? ":" : "") + last[i];
    if ((o.gptq_opt.act_order || o.gptq_opt.hessian.dampening != solvers::hessian_options{}.dampening) && !o.gptq)
      detail::fail<argument_error>(where, ": argument 'gptq': expected gptq with actorder or damp=, got neither");
    if (seg.size() == 1 && seg[0].empty())
      detail::fail<argument_error>(where, ": argument 'formats': expected a '/'-separated list of quant configs such as "
                                          "int3:g32:asym/int4:g32:asym/int8, got none");
    for (std::size_t i = 0; i < seg.size(); ++i) {
      if (seg[i].empty())
        detail::fail<argument_error>(where, ": argument 'formats': expected a quant config as format ", i + 1, " of ",
                                     seg.size(), ", got an empty one");
      try {
        o.formats.push_back(quant_config::parse(seg[i]));
      } catch (const argument_error& e) {
        detail::fail<argument_error>(where, ": argument 'formats': format ", i + 1, " of ", seg.size(), " ('", seg[i],
                                     "'): ", e.what());
      }
    }
    o.validate(where.c_str());
    return o;
  }
};

/// One layer's sensitivities and choice.
struct mixed_layer_report {
  std::string name;
  std::size_t weights = 0;                   ///< out × in
  std::vector<std::size_t> candidate_bytes;  ///< per format: stored bytes of the layer in it
  std::vector<double> nll_increase;          ///< per format: mean NLL increase (nats/token); empty with the Hessian sensitivity
  std::vector<double> hessian_error;         ///< per format: tr(ΔW·H·ΔWᵀ)
  std::size_t choice = 0;                    ///< index into the formats
  std::string format;                        ///< the layer's stored format after quantization
  std::size_t bytes = 0;                     ///< its stored bytes
  double bits() const { return weights ? 8.0 * double(bytes) / double(weights) : 0.0; }
};

struct mixed_precision_result {
  std::vector<layer_change> changes;
  std::vector<mixed_layer_report> layers;  ///< the selected layers, forward order
  std::size_t weights = 0;                 ///< llama_model::weight_count()
  std::size_t budget_bytes = 0;            ///< the most bytes with 8·bytes/weights ≤ the budget
  std::size_t min_bytes = 0;               ///< bytes with every layer in its smallest format
  std::size_t bytes = 0;                   ///< llama_model::storage_bytes() after quantization
  double bits_per_weight = 0;              ///< 8·bytes/weights
  double baseline_nll = 0;                 ///< mean NLL of the sensitivity windows, model as given (ppl)
  std::size_t sensitivity_windows = 0;     ///< windows the NLL sensitivity used (0 with the Hessian one)
  std::size_t sensitivity_tokens = 0;      ///< tokens they predict
  bool exact = true;                       ///< the allocation is optimal for the sensitivities (exact DP grid)
};

/// The most bytes B with 8·B/weights ≤ bits_per_weight in double (pare-compress's count).
inline std::size_t mixed_budget_bytes(double bits_per_weight, std::size_t weights) {
  if (weights == 0 || !(bits_per_weight > 0.0) || !std::isfinite(bits_per_weight)) return 0;
  const long double est = std::floor(static_cast<long double>(bits_per_weight) * static_cast<long double>(weights) / 8.0L);
  std::size_t b = static_cast<std::size_t>(est);
  auto fits = [&](std::size_t x) { return 8.0 * double(x) / double(weights) <= bits_per_weight; };
  while (b > 0 && !fits(b)) --b;
  while (fits(b + 1)) ++b;
  return b;
}

namespace detail {
namespace mixed {

/// Puts `cand` in place of layer `name` for its lifetime (llama_model::exchange_linear, so a
/// tied classifier's embedding rows follow), then puts the original back.
class swap_guard {
 public:
  swap_guard(llama_model& m, const std::string& name, std::unique_ptr<linear_layer>& cand)
      : m_(m), name_(name), cand_(cand) {
    cand_ = m_.exchange_linear(name_, std::move(cand_));
  }
  ~swap_guard() { cand_ = m_.exchange_linear(name_, std::move(cand_)); }
  swap_guard(const swap_guard&) = delete;
  swap_guard& operator=(const swap_guard&) = delete;

 private:
  llama_model& m_;
  std::string name_;
  std::unique_ptr<linear_layer>& cand_;
};

/// Σ NLL of the window's tokens 1..n−1 from logits [n, vocab] (the perplexity protocol's sum).
inline double window_nll(const std::vector<float>& logits, const std::vector<std::int32_t>& win, std::size_t vocab) {
  double nll = 0;
  for (std::size_t t = 0; t + 1 < win.size(); ++t) {
    const float* l = logits.data() + t * vocab;
    const float mx = *std::max_element(l, l + vocab);
    double z = 0;
    for (std::size_t i = 0; i < vocab; ++i) z += std::exp(double(l[i]) - double(mx));
    nll += std::log(z) - (double(l[win[t + 1]]) - double(mx));
  }
  return nll;
}

/// Σ NLL over `wins` of m run from the residual streams `seq` holds (its block onwards), or
/// from the embedding when `whole` (a changed embedding).
inline double nll_from(const llama_model& m, const block_sequence& seq, const std::vector<std::vector<std::int32_t>>& wins,
                       bool whole) {
  llama_session s(m);
  std::vector<float> x, logits;
  double nll = 0;
  const std::size_t dim = static_cast<std::size_t>(m.config.dim), vocab = static_cast<std::size_t>(m.config.vocab_size);
  for (std::size_t w = 0; w < wins.size(); ++w) {
    s.reset();
    if (whole) {
      s.forward(wins[w].data(), wins[w].size(), logits, true);
    } else {
      const matrix_view<const float> in = seq.input(w);
      x.resize(in.rows() * dim);
      for (std::size_t t = 0; t < in.rows(); ++t)
        for (std::size_t j = 0; j < dim; ++j) x[t * dim + j] = in(t, j);
      for (std::size_t b = seq.block(); b < m.blocks.size(); ++b) s.forward_block(b, x.data(), in.rows());
      s.forward_head(x.data(), in.rows(), logits, true);
    }
    nll += window_nll(logits, wins[w], vocab);
  }
  return nll;
}

/// quantized_tensor::storage_bytes() of a rows × cols matrix under cfg, without quantizing it.
inline std::size_t stored_bytes(const quant_config& cfg, std::size_t rows, std::size_t cols) {
  const std::size_t params = param_count_for(cfg.gran, rows, cols);
  return rows * packed_row_bytes(cfg.format.bits, cols) + params * cfg.scale_bytes() +
         (cfg.scheme == scheme_kind::asymmetric ? params : 0);
}

/// The candidate of layer `cur` in format cfg: round to nearest, or GPTQ on h.
inline std::unique_ptr<quantized_linear> candidate(const std::vector<float>& w, std::size_t rows, std::size_t cols,
                                                   const quant_config& cfg, const solvers::layer_hessian* h,
                                                   const mixed_precision_options& opt) {
  const matrix_view<const float> wv(w.data(), rows, cols);
  if (opt.gptq && h) return std::make_unique<quantized_linear>(solvers::gptq_quantize(wv, *h, cfg, opt.gptq_opt).weight);
  return std::make_unique<quantized_linear>(wv, cfg);
}

}  // namespace mixed
}  // namespace detail

/// Sensitivities, allocation and quantization (see the header comment). `windows`: the
/// calibration windows (each 1..seq_len tokens); the NLL sensitivity uses the first
/// opt.sensitivity_windows of them. Progress: one unit per block's sensitivities and the
/// classifier's, then one per GPTQ group (or one for round to nearest). argument_error
/// before m is touched for bad options, no windows, or an unreachable budget; the errors of
/// GPTQ otherwise (m is then partly quantized: work on a copy for all-or-nothing).
inline mixed_precision_result mixed_precision_linears(llama_model& m, const std::vector<std::vector<std::int32_t>>& windows,
                                                      const mixed_precision_options& opt,
                                                      const std::function<bool(const std::string&)>& select = {},
                                                      const progress_callback& progress = {}) {
  const char* where = "pare::mixed_precision_linears";
  opt.validate(where);
  if (windows.empty()) detail::fail<argument_error>(where, ": argument 'windows': expected calibration windows, got none");
  const std::size_t nf = opt.formats.size();
  mixed_precision_result res;
  res.weights = m.weight_count();
  res.budget_bytes = mixed_budget_bytes(opt.bits_per_weight, res.weights);

  // Bytes of every candidate (round to nearest: GPTQ stores the same scales and codes).
  std::vector<std::string> names;
  std::size_t fixed = m.storage_bytes();
  for (const std::string& n : m.linear_names())
    if (!select || select(n)) names.push_back(n);
  std::vector<std::vector<solvers::allocation_option>> items(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    const linear_layer& cur = m.linear(names[i]);
    fixed -= cur.storage_bytes();
    mixed_layer_report rep;
    rep.name = names[i];
    rep.weights = cur.out_features() * cur.in_features();
    for (const quant_config& f : opt.formats) {
      layer_change ch;
      const quant_config c = layer_config_for(f, cur.in_features(), ch);
      const std::size_t b = detail::mixed::stored_bytes(c, cur.out_features(), cur.in_features());
      rep.candidate_bytes.push_back(b);
      items[i].push_back({b, 0.0});
    }
    res.layers.push_back(std::move(rep));
  }
  res.min_bytes = fixed + solvers::allocation_min_size(items);
  if (res.budget_bytes < res.min_bytes)
    detail::fail<argument_error>(where, ": argument 'bits_per_weight': expected at least ",
                                 8.0 * double(res.min_bytes) / double(res.weights),
                                 " (every selected layer in its smallest format, the rest as stored), got ",
                                 opt.bits_per_weight);

  // 1. Sensitivities, block by block; m is as given again after each candidate.
  const std::size_t blocks = m.blocks.size();
  const std::size_t total = blocks + 1 + (opt.gptq ? 4 * blocks + 1 : 1);
  std::size_t done = 0;
  if (progress) progress(0, total);
  const bool ppl = opt.sensitivity == mixed_sensitivity::ppl;
  std::vector<std::vector<std::int32_t>> sub(
      windows.begin(),
      windows.begin() + std::ptrdiff_t(opt.sensitivity_windows ? std::min(opt.sensitivity_windows, windows.size()) : windows.size()));
  block_sequence seq_h(m, windows);
  std::unique_ptr<block_sequence> seq_p;
  if (ppl) {
    seq_p = std::make_unique<block_sequence>(m, sub);
    res.sensitivity_windows = sub.size();
    for (const auto& w : sub) res.sensitivity_tokens += w.size() - 1;
    res.baseline_nll = detail::mixed::nll_from(m, *seq_p, sub, false) / double(res.sensitivity_tokens);
  }
  auto group_first = [](const std::string& n) {  // the layer whose input n shares
    for (const char* s : {".attn_k.weight", ".attn_v.weight"})
      if (n.size() > std::string(s).size() && n.compare(n.size() - std::string(s).size(), std::string::npos, s) == 0)
        return n.substr(0, n.size() - std::string(s).size()) + ".attn_q.weight";
    if (n.size() > 14 && n.compare(n.size() - 14, 14, ".ffn_up.weight") == 0) return n.substr(0, n.size() - 14) + ".ffn_gate.weight";
    return n;
  };
  for (std::size_t l = 0; l <= blocks; ++l) {
    const std::string prefix = l < blocks ? "blk." + std::to_string(l) + "." : "output.weight";
    std::vector<std::size_t> here;
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i].rfind(prefix, 0) == 0) here.push_back(i);
    if (!here.empty()) {
      calibration_capture::options co;
      co.xtx = true;
      co.channel_stats = false;
      std::vector<std::string> firsts;
      for (std::size_t i : here) firsts.push_back(group_first(names[i]));
      co.include = [firsts](const std::string& n) { return std::find(firsts.begin(), firsts.end(), n) != firsts.end(); };
      calibration_capture cap(std::move(co));
      seq_h.observe(m, &cap);
      for (std::size_t i : here) {
        mixed_layer_report& rep = res.layers[i];
        const linear_layer& cur = m.linear(rep.name);
        const std::size_t rows = cur.out_features(), cols = cur.in_features();
        std::vector<float> w(rows * cols);
        cur.dense_weights(matrix_view<float>(w.data(), rows, cols));
        const solvers::layer_hessian h = solvers::layer_hessian::from_stats(cap.at(group_first(rep.name)));
        for (std::size_t f = 0; f < nf; ++f) {
          layer_change ch;
          const quant_config c = layer_config_for(opt.formats[f], cols, ch);
          std::unique_ptr<linear_layer> cand = detail::mixed::candidate(w, rows, cols, c, &h, opt);
          {
            std::vector<float> wq(rows * cols);
            cand->dense_weights(matrix_view<float>(wq.data(), rows, cols));
            rep.hessian_error.push_back(solvers::hessian_error(matrix_view<const float>(w.data(), rows, cols),
                                                               matrix_view<const float>(wq.data(), rows, cols), h));
          }
          if (ppl) {
            const bool whole = rep.name == "output.weight" && m.tied_classifier;
            const detail::mixed::swap_guard g(m, rep.name, cand);
            const double nll = detail::mixed::nll_from(m, *seq_p, sub, whole) / double(res.sensitivity_tokens);
            rep.nll_increase.push_back(nll - res.baseline_nll);
          }
        }
      }
    }
    if (l < blocks) {
      seq_h.advance(m);
      if (seq_p) seq_p->advance(m);
    }
    if (progress) progress(++done, total);
  }
  seq_p.reset();

  // 2. Allocation.
  for (std::size_t i = 0; i < names.size(); ++i)
    for (std::size_t f = 0; f < nf; ++f)
      items[i][f].cost = ppl ? res.layers[i].nll_increase[f] : res.layers[i].hessian_error[f];
  const solvers::allocation_result a = solvers::allocate(items, res.budget_bytes - fixed, opt.allocation);
  res.exact = a.exact;
  for (std::size_t i = 0; i < names.size(); ++i) res.layers[i].choice = a.choice[i];

  // 3. Quantization.
  auto record = [&](llama_model& mm, const std::string& name, std::unique_ptr<quantized_linear> q, layer_change ch) {
    mixed_layer_report& rep = res.layers[std::size_t(std::find(names.begin(), names.end(), name) - names.begin())];
    ch.format = (opt.gptq ? "gptq " : "") + q->format();
    ch.backend = q->backend();
    rep.format = ch.format;
    rep.bytes = q->storage_bytes();
    char note[200], nll[48] = "";
    if (ppl) std::snprintf(nll, sizeof nll, "NLL %+.4g, ", rep.nll_increase[rep.choice]);
    std::snprintf(note, sizeof note, "mixed precision, budget %g bits/weight: format %zu of %zu, %.3f bits/weight, %sHessian error %.4g",
                  opt.bits_per_weight, rep.choice + 1, nf, rep.bits(), nll, rep.hessian_error[rep.choice]);
    ch.add_reason(note);
    mm.set_linear(name, std::move(q));
    res.changes.push_back(ch);
  };
  auto config_of = [&](const std::string& name, std::size_t cols, layer_change& ch) {
    const std::size_t i = std::size_t(std::find(names.begin(), names.end(), name) - names.begin());
    return layer_config_for(opt.formats[res.layers[i].choice], cols, ch);
  };
  if (opt.gptq) {
    linear_input_options stats;
    stats.xtx = true;
    stats.channel_stats = false;
    auto solve = [&](llama_model& mm, const std::vector<std::string>& group, const linear_input_stats& input) {
      const solvers::layer_hessian h = solvers::layer_hessian::from_stats(input);
      for (const std::string& name : group) {
        const linear_layer& cur = mm.linear(name);
        layer_change ch{name, "", "", false, ""};
        const quant_config c = config_of(name, cur.in_features(), ch);
        const std::size_t rows = cur.out_features(), cols = cur.in_features();
        std::vector<float> w(rows * cols);
        cur.dense_weights(matrix_view<float>(w.data(), rows, cols));
        solvers::gptq_result r = solvers::gptq_quantize(matrix_view<const float>(w.data(), rows, cols), h, c, opt.gptq_opt);
        if (r.dampening_retries > 0)
          ch.add_reason(pare::detail::concat("Hessian not positive definite: dampening raised to ", r.dampening, " x mean diag"));
        record(mm, name, std::make_unique<quantized_linear>(std::move(r.weight)), ch);
      }
    };
    const std::size_t base = done;
    const progress_callback sub_progress = [&](std::size_t d, std::size_t) {
      if (progress) progress(base + d, total);
    };
    sequential_linears(m, windows, stats, solve, select, sub_progress);
  } else {
    for (const std::string& name : names) {
      const linear_layer& cur = m.linear(name);
      layer_change ch{name, "", "", false, ""};
      const quant_config c = config_of(name, cur.in_features(), ch);
      const std::size_t rows = cur.out_features(), cols = cur.in_features();
      std::vector<float> w(rows * cols);
      cur.dense_weights(matrix_view<float>(w.data(), rows, cols));
      record(m, name, std::make_unique<quantized_linear>(matrix_view<const float>(w.data(), rows, cols), c), ch);
    }
    if (progress) progress(total, total);
  }
  res.bytes = m.storage_bytes();
  res.bits_per_weight = 8.0 * double(res.bytes) / double(res.weights);
  if (res.bytes != fixed + a.size)
    detail::fail<value_error>(where, ": stored bytes ", res.bytes, " differ from the allocation's ", fixed + a.size,
                              " (a layer stored other than its candidate)");
  return res;
}

PARE_NAMESPACE_END
