// Structured pruning of the reference model: block (depth) scores by PPL-drop, Taylor+ and magnitude as in "Shortened LLaMA", depth pruning one-shot and iterative, and feed-forward width pruning.
#pragma once

// Block importance (one score per transformer block, higher = more important):
//   ppl_drop_scores(m, eval)      eval(model with block i removed) for every i: the
//                                 perplexity without the block (Shortened LLaMA's PPL
//                                 criterion); the block whose removal hurts least is the
//                                 least important. The model is changed temporarily and
//                                 restored before returning (also on exceptions).
//   taylor_block_scores(m, calib) Σ over the block's weights of |w · ∂L/∂w|, with L the
//                                 mean next-token loss over the calibration windows and
//                                 ∂L/∂w from the exact backward pass (llama_grad.hpp).
//   magnitude_block_scores(m)     Σ |w| over the block's linear weights.
// Selection: select_blocks_to_remove(scores, n, keep_first, keep_last, lower_is_worse)
// picks the n least important blocks among the candidates; "+" in Taylor+ is keeping the
// first keep_first and last keep_last blocks out of the candidates (the paper keeps 4 and
// 2 of LLaMA-7B's 32; for a 5-block model 1 and 1 is the same idea).
// depth_prune(m, n, criterion, ...) removes them one-shot; depth_prune_iterative removes
// one block at a time and re-scores after each removal.
// Width: ffn_neuron_scores(m, layer, criterion, calib) scores the hidden neurons of one
// feed-forward block — "magnitude": ‖w1 row‖₂ + ‖w3 row‖₂ + ‖w2 column‖₂; "activation":
// mean |h_j| of the SwiGLU output (the ffn_down input) over calibration; "apoz": 1 − APoZ
// (the fraction of positive outputs). prune_ffn_width(m, fraction, ...) keeps the
// highest-scoring round((1 − fraction)·hidden) neurons of every block (same width in every
// block, so config.hidden_dim stays meaningful and the result writes as GGUF).
// Bad input (n ≥ block count or more than the candidates, fraction outside [0, 1),
// missing calibration) → argument_error; the model is unchanged.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/model/calibration.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/surgery.hpp"

PARE_NAMESPACE_BEGIN

/// Perplexity (or any loss) of the model with each block removed in turn.
inline std::vector<double> ppl_drop_scores(llama_model& m, const std::function<double(const llama_model&)>& eval) {
  if (m.blocks.size() < 2)
    detail::fail<argument_error>("ppl_drop_scores: expected a model with at least 2 blocks, got ", m.blocks.size());
  std::vector<double> out(m.blocks.size());
  for (std::size_t i = 0; i < m.blocks.size(); ++i) {
    llama_block held = std::move(m.blocks[i]);
    m.blocks.erase(m.blocks.begin() + static_cast<std::ptrdiff_t>(i));
    m.config.n_layers -= 1;
    struct restore {
      llama_model& m;
      llama_block& b;
      std::size_t i;
      ~restore() {
        m.blocks.insert(m.blocks.begin() + static_cast<std::ptrdiff_t>(i), std::move(b));
        m.config.n_layers += 1;
      }
    } guard{m, held, i};
    out[i] = eval(m);
  }
  return out;
}

/// Σ_w |w · ∂L/∂w| per block, L the mean loss over `windows` (each 2..seq_len tokens).
inline std::vector<double> taylor_block_scores(const llama_model& m, const std::vector<std::vector<std::int32_t>>& windows) {
  if (windows.empty()) detail::fail<argument_error>("taylor_block_scores: argument 'windows': expected at least one window");
  const llama_params<float> p = llama_params<float>::from_model(m);
  llama_params<float> g;
  for (std::size_t w = 0; w < windows.size(); ++w) loss_and_grad(p, windows[w], &g, w > 0);
  std::vector<double> out(m.blocks.size(), 0.0);
  for (std::size_t l = 0; l < m.blocks.size(); ++l) {
    const auto& pb = p.blocks[l];
    const auto& gb = g.blocks[l];
    double s = 0;
    auto add = [&](const std::vector<float>& w, const std::vector<float>& d) {
      for (std::size_t i = 0; i < w.size(); ++i) s += std::fabs(double(w[i]) * double(d[i]) / double(windows.size()));
    };
    add(pb.attn_norm, gb.attn_norm);
    add(pb.wq, gb.wq);
    add(pb.wk, gb.wk);
    add(pb.wv, gb.wv);
    add(pb.wo, gb.wo);
    add(pb.ffn_norm, gb.ffn_norm);
    add(pb.w1, gb.w1);
    add(pb.w2, gb.w2);
    add(pb.w3, gb.w3);
    out[l] = s;
  }
  return out;
}

/// Σ |w| over each block's linear weights.
inline std::vector<double> magnitude_block_scores(const llama_model& m) {
  std::vector<double> out;
  for (const llama_block& b : m.blocks) {
    double s = 0;
    for (const auto* l : {&b.wq, &b.wk, &b.wv, &b.wo, &b.w1, &b.w2, &b.w3}) {
      std::vector<float> w((*l)->out_features() * (*l)->in_features());
      (*l)->dense_weights(matrix_view<float>(w.data(), (*l)->out_features(), (*l)->in_features()));
      for (float v : w) s += std::fabs(double(v));
    }
    out.push_back(s);
  }
  return out;
}

/// Indices (ascending) of the n least important blocks among those not kept.
inline std::vector<std::size_t> select_blocks_to_remove(const std::vector<double>& importance, std::size_t n,
                                                        std::size_t keep_first = 0, std::size_t keep_last = 0) {
  const char* where = "select_blocks_to_remove";
  const std::size_t L = importance.size();
  if (keep_first + keep_last > L)
    detail::fail<argument_error>(where, ": arguments 'keep_first' + 'keep_last': expected at most ", L, " blocks, got ",
                                 keep_first + keep_last);
  const std::size_t cand = L - keep_first - keep_last;
  if (n == 0 || n > cand || n >= L)
    detail::fail<argument_error>(where, ": argument 'n': expected 1 to ", std::min(cand, L - 1),
                                 " (candidates after keeping ", keep_first, " first and ", keep_last,
                                 " last, and at least one block left), got ", n);
  for (double v : importance)
    if (!std::isfinite(v)) detail::fail<value_error>(where, ": argument 'importance': expected finite scores");
  std::vector<std::size_t> idx(cand);
  std::iota(idx.begin(), idx.end(), keep_first);
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return importance[a] < importance[b]; });
  idx.resize(n);
  std::sort(idx.begin(), idx.end());
  return idx;
}

/// A block criterion: importance of every block of the current model (higher = keep).
using block_criterion = std::function<std::vector<double>(llama_model&)>;

/// PPL-drop as an importance: the perplexity without the block (higher = the block matters more).
inline block_criterion ppl_drop_criterion(std::function<double(const llama_model&)> eval) {
  return [eval](llama_model& m) { return ppl_drop_scores(m, eval); };
}
inline block_criterion taylor_criterion(std::vector<std::vector<std::int32_t>> windows) {
  return [windows](llama_model& m) { return taylor_block_scores(m, windows); };
}
inline block_criterion magnitude_criterion() {
  return [](llama_model& m) { return magnitude_block_scores(m); };
}

/// Removes the n least important blocks at once; returns their original indices.
inline std::vector<std::size_t> depth_prune(llama_model& m, std::size_t n, const block_criterion& importance,
                                            std::size_t keep_first = 0, std::size_t keep_last = 0) {
  const std::vector<std::size_t> which = select_blocks_to_remove(importance(m), n, keep_first, keep_last);
  remove_blocks(m, which);
  return which;
}

/// Removes n blocks one at a time, re-scoring after each; returns the original indices in removal order.
inline std::vector<std::size_t> depth_prune_iterative(llama_model& m, std::size_t n, const block_criterion& importance,
                                                      std::size_t keep_first = 0, std::size_t keep_last = 0) {
  (void)select_blocks_to_remove(std::vector<double>(m.blocks.size(), 0.0), n, keep_first, keep_last);  // validates n
  std::vector<std::size_t> original(m.blocks.size());
  std::iota(original.begin(), original.end(), 0);
  std::vector<std::size_t> removed;
  for (std::size_t step = 0; step < n; ++step) {
    const std::size_t i = select_blocks_to_remove(importance(m), 1, keep_first, keep_last)[0];
    remove_blocks(m, {i});
    removed.push_back(original[i]);
    original.erase(original.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return removed;
}

/// Importance of each hidden neuron of block `layer`'s feed-forward network.
inline std::vector<double> ffn_neuron_scores(const llama_model& m, std::size_t layer, const std::string& criterion,
                                             const calibration_capture* calib = nullptr) {
  const char* where = "ffn_neuron_scores";
  if (layer >= m.blocks.size())
    detail::fail<argument_error>(where, ": argument 'layer': expected < ", m.blocks.size(), ", got ", layer);
  const llama_block& b = m.blocks[layer];
  const std::size_t hidden = b.w1->out_features(), dim = b.w1->in_features();
  std::vector<double> s(hidden, 0.0);
  if (criterion == "magnitude") {
    std::vector<float> w1(hidden * dim), w3(hidden * dim), w2(dim * hidden);
    b.w1->dense_weights(matrix_view<float>(w1.data(), hidden, dim));
    b.w3->dense_weights(matrix_view<float>(w3.data(), hidden, dim));
    b.w2->dense_weights(matrix_view<float>(w2.data(), dim, hidden));
    for (std::size_t j = 0; j < hidden; ++j) {
      double a = 0, c = 0, d = 0;
      for (std::size_t k = 0; k < dim; ++k) {
        a += double(w1[j * dim + k]) * w1[j * dim + k];
        c += double(w3[j * dim + k]) * w3[j * dim + k];
        d += double(w2[k * hidden + j]) * w2[k * hidden + j];
      }
      s[j] = std::sqrt(a) + std::sqrt(c) + std::sqrt(d);
    }
    return s;
  }
  if (criterion != "activation" && criterion != "apoz")
    detail::fail<argument_error>(where, ": argument 'criterion': expected magnitude, activation or apoz, got '", criterion, "'");
  if (!calib)
    detail::fail<argument_error>(where, ": criterion '", criterion, "' needs calibration statistics, got none");
  const std::string name = "blk." + std::to_string(layer) + ".ffn_down.weight";
  const linear_input_stats& st = calib->at(name);
  if (st.in_features != hidden || st.tokens == 0 || st.sum_abs.size() != hidden)
    detail::fail<argument_error>(where, ": layer '", name, "': expected channel statistics over ", hidden,
                                 " neurons, got ", st.sum_abs.size());
  for (std::size_t j = 0; j < hidden; ++j)
    s[j] = criterion == "activation" ? st.mean_abs(j) : 1.0 - st.apoz(j);
  return s;
}

/// Keeps the best round((1 − fraction)·hidden) neurons of every feed-forward block; returns the kept width.
inline std::size_t prune_ffn_width(llama_model& m, double fraction, const std::string& criterion,
                                   const calibration_capture* calib = nullptr) {
  const char* where = "prune_ffn_width";
  if (!(fraction >= 0.0 && fraction < 1.0))
    detail::fail<argument_error>(where, ": argument 'fraction': expected [0, 1), got ", fraction);
  for (std::size_t l = 1; l < m.blocks.size(); ++l)
    if (m.blocks[l].w1->out_features() != m.blocks[0].w1->out_features())
      detail::fail<argument_error>(where, ": expected the same feed-forward width in every block");
  const std::size_t hidden = m.blocks.at(0).w1->out_features();
  const std::size_t keep_n = std::max<std::size_t>(1, static_cast<std::size_t>(std::lround((1.0 - fraction) * double(hidden))));
  // Score every block first (validates everything), then shrink.
  std::vector<std::vector<std::size_t>> keeps;
  for (std::size_t l = 0; l < m.blocks.size(); ++l) {
    const std::vector<double> s = ffn_neuron_scores(m, l, criterion, calib);
    std::vector<std::size_t> idx(hidden);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return s[a] > s[b]; });
    idx.resize(keep_n);
    std::sort(idx.begin(), idx.end());
    keeps.push_back(std::move(idx));
  }
  for (std::size_t l = 0; l < m.blocks.size(); ++l) shrink_ffn(m, l, keeps[l]);
  m.config.hidden_dim = static_cast<int>(keep_n);
  return keep_n;
}

PARE_NAMESPACE_END
