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

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/progress.hpp"
#include "pare/model/calibration.hpp"
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
    std::vector<std::string> names;
    for (const std::string& n : group)
      if (!select || select(n)) names.push_back(n);
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

PARE_NAMESPACE_END
