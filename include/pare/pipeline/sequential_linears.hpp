// Block-sequential calibration: runs calibration windows through a llama_model one block at a time, holding only the residual stream entering the current block, and hands each group of linear layers the input statistics it sees behind the groups already compressed.
#pragma once

// The pipeline of GPTQ's "true sequential" mode and llm-compressor's sequential pipeline:
//
//   x_w ← embed(window w)                         for every calibration window w
//   for each block l:
//     for each group of layers that read one input, in forward order
//         {attn_q, attn_k, attn_v}, {attn_output}, {ffn_gate, ffn_up}, {ffn_down}:
//       run block l over every x_w, accumulating the group's input statistics
//       solve(group, statistics)               (the solver replaces the group's layers)
//     x_w ← block l (as solved) applied to x_w
//   then {output.weight} from the head's input.
//
// Each group is calibrated on activations that went through every earlier group as
// compressed, so its solver compensates the error made before it. Memory beyond the model:
// the residual stream of every window at one block boundary (tokens × dim floats), one
// block's scratch, and the statistics of one group (K² doubles with XᵀX). Cost: five passes
// of one block per block (four groups and the advance) plus one head pass, i.e. about five
// forward passes of the calibration text in all, where a full forward per group would take
// 4·blocks + 1.
//
// block_sequence is the reusable part (also for solvers that need a block's outputs, such
// as AWQ's search); sequential_linears() drives it group by group.

#include <algorithm>
#include <cstddef>
#include <memory>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/progress.hpp"
#include "pare/model/calibration.hpp"
#include "pare/model/layers/linear.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/llama_session.hpp"

PARE_NAMESPACE_BEGIN

/// The residual stream entering one block, for every calibration window.
class block_sequence {
 public:
  /// Embeds every window (each 1..seq_len tokens). argument_error for no windows, an
  /// empty or too long window, or a token out of range.
  block_sequence(const llama_model& m, const std::vector<std::vector<std::int32_t>>& windows) : dim_(m.config.dim) {
    const char* where = "pare::block_sequence";
    if (windows.empty()) detail::fail<argument_error>(where, ": argument 'windows': expected calibration windows, got none");
    llama_session s(m);
    x_.reserve(windows.size());
    for (std::size_t w = 0; w < windows.size(); ++w) {
      const std::size_t n = windows[w].size();
      if (n == 0 || n > static_cast<std::size_t>(m.config.seq_len))
        detail::fail<argument_error>(where, ": window ", w, ": expected 1 to ", m.config.seq_len, " tokens, got ", n);
      x_.emplace_back(n * dim_);
      s.embed(windows[w].data(), n, x_.back().data());
    }
  }

  /// Index of the block whose input is held (blocks() after the last advance).
  std::size_t block() const noexcept { return block_; }
  std::size_t windows() const noexcept { return x_.size(); }
  std::size_t tokens() const noexcept {
    std::size_t t = 0;
    for (const auto& x : x_) t += x.size() / dim_;
    return t;
  }
  /// The held residual stream of window w, [tokens of w, dim].
  matrix_view<const float> input(std::size_t w) const {
    return matrix_view<const float>(x_.at(w).data(), x_[w].size() / dim_, dim_);
  }

  /// Runs the current block of m over every window with `obs` attached (nothing held
  /// changes). At the end (block() == number of blocks) runs the head instead. If `out`
  /// is given, it receives each window's block output (the head: unused).
  void observe(const llama_model& m, llama_session::linear_observer* obs,
               std::vector<std::vector<float>>* out = nullptr) const {
    check(m, "observe");
    llama_session s(m);
    s.set_observer(obs);
    std::vector<float> y, logits;
    if (out) out->resize(x_.size());
    for (std::size_t w = 0; w < x_.size(); ++w) {
      const std::size_t n = x_[w].size() / dim_;
      s.reset();
      if (block_ == m.blocks.size()) {
        s.forward_head(x_[w].data(), n, logits, true);
        continue;
      }
      std::vector<float>& dst = out ? (*out)[w] : y;
      dst.assign(x_[w].begin(), x_[w].end());
      s.forward_block(block_, dst.data(), n);
    }
  }

  /// observe() for window w alone.
  void observe_window(const llama_model& m, std::size_t w, llama_session::linear_observer* obs) const {
    check(m, "observe_window");
    llama_session s(m);
    s.set_observer(obs);
    const std::size_t n = x_.at(w).size() / dim_;
    if (block_ == m.blocks.size()) {
      std::vector<float> logits;
      s.forward_head(x_[w].data(), n, logits, true);
      return;
    }
    std::vector<float> y(x_[w]);
    s.forward_block(block_, y.data(), n);
  }

  /// Replaces every held stream by the current block's output and moves to the next block.
  void advance(const llama_model& m) {
    check(m, "advance");
    if (block_ == m.blocks.size())
      detail::fail<argument_error>("pare::block_sequence::advance: expected a block to run, got the end of the model");
    llama_session s(m);
    for (auto& x : x_) {
      s.reset();
      s.forward_block(block_, x.data(), x.size() / dim_);
    }
    ++block_;
  }

 private:
  void check(const llama_model& m, const char* fn) const {
    if (m.config.dim != static_cast<int>(dim_) || block_ > m.blocks.size())
      detail::fail<argument_error>("pare::block_sequence::", fn, ": argument 'm': expected the model of width ", dim_,
                                   " with more than ", block_, " blocks it was built for, got width ", m.config.dim, " and ",
                                   m.blocks.size(), " blocks");
  }

  std::size_t dim_;
  std::size_t block_ = 0;
  std::vector<std::vector<float>> x_;
};

/// Groups of layer names of block l that read one input, in forward order.
inline std::vector<std::vector<std::string>> block_linear_groups(std::size_t l) {
  const std::string p = "blk." + std::to_string(l) + ".";
  return {{p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"},
          {p + "attn_output.weight"},
          {p + "ffn_gate.weight", p + "ffn_up.weight"},
          {p + "ffn_down.weight"}};
}

/// A group solver: compresses the layers `names` of m (replacing them) from the statistics
/// of their shared input.
using group_solver = std::function<void(llama_model& m, const std::vector<std::string>& names,
                                        const linear_input_stats& input)>;

/// A group solver fitted to a reference model: `cross` is P = Σ x·x̃ᵀ (K × K, row-major,
/// p[i·K + j] = Σ_t x_t,i · x̃_t,j) between the reference's input x and m's input x̃ of the
/// group, token by token (see pare/solvers/asymmetric_target.hpp).
using group_solver_to_reference = std::function<void(llama_model& m, const std::vector<std::string>& names,
                                                     const linear_input_stats& input, const std::vector<double>& cross)>;

/// A copy of m with every linear layer as dense fp32 (its current weights, dequantized):
/// the reference of a pipeline that fits m's layers to m's outputs as they are now.
inline llama_model dense_copy(const llama_model& m) {
  auto dense = [](const linear_layer& l) {
    std::vector<float> w(l.out_features() * l.in_features());
    l.dense_weights(matrix_view<float>(w.data(), l.out_features(), l.in_features()));
    return std::make_unique<dense_linear>(matrix_view<const float>(w.data(), l.out_features(), l.in_features()));
  };
  llama_model c;
  c.config = m.config;
  c.token_embd = aligned_buffer<float>(m.token_embd.size());
  std::copy(m.token_embd.begin(), m.token_embd.end(), c.token_embd.begin());
  for (const llama_block& b : m.blocks) {
    llama_block d;
    d.n_heads = b.n_heads;
    d.n_kv_heads = b.n_kv_heads;
    d.attn_norm = b.attn_norm;
    d.ffn_norm = b.ffn_norm;
    d.wq = dense(*b.wq), d.wk = dense(*b.wk), d.wv = dense(*b.wv), d.wo = dense(*b.wo);
    d.w1 = dense(*b.w1), d.w2 = dense(*b.w2), d.w3 = dense(*b.w3);
    if (b.attn_shortcut) d.attn_shortcut = dense(*b.attn_shortcut);
    if (b.ffn_shortcut) d.ffn_shortcut = dense(*b.ffn_shortcut);
    c.blocks.push_back(std::move(d));
  }
  c.output_norm = m.output_norm;
  c.output = dense(*m.output);
  c.tied_classifier = m.tied_classifier;
  return c;
}

namespace detail {
/// The names of `group` that `select` takes (all of them without a selector).
inline std::vector<std::string> selected_names(const std::vector<std::string>& group,
                                               const std::function<bool(const std::string&)>& select) {
  std::vector<std::string> names;
  for (const std::string& n : group)
    if (!select || select(n)) names.push_back(n);
  return names;
}

/// Keeps the input of one linear layer (the last call's rows).
struct linear_input_rows final : llama_session::linear_observer {
  std::string name;
  std::vector<float> rows;
  std::size_t cols = 0;
  explicit linear_input_rows(std::string n) : name(std::move(n)) {}
  void on_linear_input(const std::string& n, const matrix_view<const float>& x) override {
    if (n != name) return;
    cols = x.cols();
    rows.resize(x.rows() * x.cols());
    for (std::size_t r = 0; r < x.rows(); ++r) std::copy(x.row_ptr(r), x.row_ptr(r) + x.cols(), rows.data() + r * x.cols());
  }
};
}  // namespace detail

/// sequential_linears fitted to `reference` (a model of the same shape, e.g. dense_copy of
/// m before compression): the reference's residual stream is carried beside m's, and each
/// group's solver also gets the cross products of the two inputs, so it can minimise
/// ‖W·X − Ŵ·X̃‖ (the reference's output) instead of ‖(W − Ŵ)·X̃‖. Twice the memory and
/// block passes of sequential_linears. argument_error if the shapes differ.
inline void sequential_linears_to_reference(llama_model& m, const llama_model& reference,
                                            const std::vector<std::vector<std::int32_t>>& windows,
                                            const linear_input_options& stats, const group_solver_to_reference& solve,
                                            const std::function<bool(const std::string&)>& select = {},
                                            const progress_callback& progress = {}) {
  if (reference.config.dim != m.config.dim || reference.blocks.size() != m.blocks.size())
    detail::fail<argument_error>("pare::sequential_linears_to_reference: argument 'reference': expected a model of width ",
                                 m.config.dim, " with ", m.blocks.size(), " blocks, got width ", reference.config.dim, " and ",
                                 reference.blocks.size(), " blocks");
  block_sequence seq(m, windows), ref(reference, windows);
  const std::size_t total = 4 * m.blocks.size() + 1;
  std::size_t done = 0;
  auto run_group = [&](const std::vector<std::string>& group) {
    const std::vector<std::string> names = detail::selected_names(group, select);
    if (!names.empty()) {
      const std::string first = names.front();
      linear_input_stats input;
      std::vector<double> cross;
      std::vector<float> part;
      for (std::size_t w = 0; w < windows.size(); ++w) {
        detail::linear_input_rows xq(first), xr(first);
        seq.observe_window(m, w, &xq);
        ref.observe_window(reference, w, &xr);
        const std::size_t k = xq.cols, n = k ? xq.rows.size() / k : 0;
        if (xr.rows.size() != xq.rows.size())
          detail::fail<argument_error>("pare::sequential_linears_to_reference: layer '", first,
                                       "': expected inputs of the same shape in both models, got ", xq.rows.size(), " and ",
                                       xr.rows.size(), " values");
        const matrix_view<const float> xv(xq.rows.data(), n, k);
        input.accumulate(xv, stats, first);
        if (cross.empty()) cross.assign(k * k, 0.0);
        part.assign(k * k, 0.0f);
        for (std::size_t t = 0; t < n; ++t) {  // P += x_t · x̃_tᵀ
          const float* a = xr.rows.data() + t * k;
          const float* b = xq.rows.data() + t * k;
          for (std::size_t i = 0; i < k; ++i) {
            const float ai = a[i];
            float* dst = part.data() + i * k;
            for (std::size_t j = 0; j < k; ++j) dst[j] += ai * b[j];
          }
        }
        for (std::size_t i = 0; i < cross.size(); ++i) cross[i] += part[i];
      }
      solve(m, names, input, cross);
    }
    if (progress) progress(++done, total);
  };
  for (std::size_t l = 0; l < m.blocks.size(); ++l) {
    for (const auto& g : block_linear_groups(l)) run_group(g);
    seq.advance(m);
    ref.advance(reference);
  }
  run_group({"output.weight"});
}

/// Runs the block-sequential pipeline over m: every selected group (all if `select` is
/// empty), blocks in order and then output.weight, gets the statistics `stats` asks for
/// (XᵀX, channel statistics) of its input behind the groups already solved. Progress
/// counts groups. The solver's exceptions propagate (m is then partly compressed: callers
/// that need all-or-nothing work on a copy).
inline void sequential_linears(llama_model& m, const std::vector<std::vector<std::int32_t>>& windows,
                               const linear_input_options& stats, const group_solver& solve,
                               const std::function<bool(const std::string&)>& select = {},
                               const progress_callback& progress = {}) {
  block_sequence seq(m, windows);
  const std::size_t total = 4 * m.blocks.size() + 1;
  std::size_t done = 0;
  auto run_group = [&](const std::vector<std::string>& group) {
    const std::vector<std::string> names = detail::selected_names(group, select);
    if (!names.empty()) {
      calibration_capture::options o;
      static_cast<linear_input_options&>(o) = stats;
      const std::string first = names.front();
      o.include = [first](const std::string& n) { return n == first; };  // the group shares its input
      calibration_capture cap(std::move(o));
      seq.observe(m, &cap);
      solve(m, names, cap.at(first));
    }
    if (progress) progress(++done, total);
  };
  for (std::size_t l = 0; l < m.blocks.size(); ++l) {
    for (const auto& g : block_linear_groups(l)) run_group(g);
    seq.advance(m);
  }
  run_group({"output.weight"});
}

/// A group solver that may be fitted to a reference: `cross` is P (as for
/// group_solver_to_reference), or nullptr when there is no reference.
using group_solver_maybe_to_reference = std::function<void(llama_model& m, const std::vector<std::string>& names,
                                                           const linear_input_stats& input, const std::vector<double>* cross)>;

/// sequential_linears_to_reference when `reference` is given, else sequential_linears
/// (`cross` is then nullptr): the one switch of the pipelines with an fptarget option.
inline void sequential_linears_maybe_to_reference(llama_model& m, const llama_model* reference,
                                                  const std::vector<std::vector<std::int32_t>>& windows,
                                                  const linear_input_options& stats,
                                                  const group_solver_maybe_to_reference& solve,
                                                  const std::function<bool(const std::string&)>& select = {},
                                                  const progress_callback& progress = {}) {
  if (reference) {
    sequential_linears_to_reference(
        m, *reference, windows, stats,
        [&](llama_model& mm, const std::vector<std::string>& names, const linear_input_stats& input,
            const std::vector<double>& cross) { solve(mm, names, input, &cross); },
        select, progress);
  } else {
    sequential_linears(
        m, windows, stats,
        [&](llama_model& mm, const std::vector<std::string>& names, const linear_input_stats& input) {
          solve(mm, names, input, nullptr);
        },
        select, progress);
  }
}

PARE_NAMESPACE_END
