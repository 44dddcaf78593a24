// llama_block_model: the reference transformer as a prune::block_model — PPL-drop, Taylor, magnitude and activation criteria over a calibration text, and block / FFN / head surgery.
#pragma once

// Built over a llama_model (not owned; changed by remove_blocks / keep_*) and the
// calibration the criteria need, each optional (a criterion that needs a missing one is
// an argument_error naming it):
//   metric       loss-like figure of a model (perplexity of the calibration text): PPL-drop
//   windows      calibration token windows: Taylor (∂L/∂w of the mean next-token loss
//                over the windows, summed per window by the exact backward pass)
//   capture      re-captures channel statistics of the model as it is now (the FFN
//                hidden activations are ffn_down's inputs): activation criteria
//   stats        statistics captured beforehand (used until refresh_statistics)
// Tensors are dense fp32 copies made on first use and dropped when the model changes.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/model/calibration.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/surgery.hpp"
#include "pare/prune/block_model.hpp"

PARE_NAMESPACE_BEGIN

class llama_block_model final : public prune::block_model {
 public:
  struct calibration {
    std::function<double(const llama_model&)> metric;
    std::vector<std::vector<std::int32_t>> windows;
    std::function<const calibration_capture*(const llama_model&)> capture;
    const calibration_capture* stats = nullptr;
  };

  explicit llama_block_model(llama_model& m) : m_(m) {}
  llama_block_model(llama_model& m, calibration c) : m_(m), cal_(std::move(c)), stats_(cal_.stats) {}

  std::size_t num_blocks() const override { return m_.blocks.size(); }

  double metric_without(std::size_t b) override {
    if (!cal_.metric)
      detail::fail<argument_error>("llama_block_model: criterion ppl_drop needs a calibration metric, got none");
    if (b >= m_.blocks.size())
      detail::fail<argument_error>("llama_block_model::metric_without: argument 'block': expected < ", m_.blocks.size(),
                                   ", got ", b);
    llama_block held = std::move(m_.blocks[b]);
    m_.blocks.erase(m_.blocks.begin() + static_cast<std::ptrdiff_t>(b));
    m_.config.n_layers -= 1;
    struct restore {  // puts the block back, also when the metric throws
      llama_model& m;
      llama_block& held;
      std::size_t at;
      ~restore() {
        m.blocks.insert(m.blocks.begin() + static_cast<std::ptrdiff_t>(at), std::move(held));
        m.config.n_layers += 1;
      }
    } guard{m_, held, b};
    return cal_.metric(m_);
  }

  double compute_gradients() override {
    if (cal_.windows.empty())
      detail::fail<argument_error>("llama_block_model: criterion taylor needs calibration windows, got none");
    params();
    grads_ = std::make_unique<llama_params<float>>();
    for (std::size_t w = 0; w < cal_.windows.size(); ++w) loss_and_grad(*params_, cal_.windows[w], grads_.get(), w > 0);
    return double(cal_.windows.size());
  }

  std::vector<prune::block_tensor> block_tensors(std::size_t b) const override {
    const auto& pb = params().blocks.at(b);
    const typename llama_params<float>::block* gb = grads_ ? &grads_->blocks.at(b) : nullptr;
    std::vector<prune::block_tensor> out;
    // The order sums run in: attention norm and projections, then the FFN norm and linears.
    auto add = [&](const std::vector<float>& w, const std::vector<float>* g, bool linear) {
      out.push_back({w.data(), g ? g->data() : nullptr, w.size(), linear});
    };
    add(pb.attn_norm, gb ? &gb->attn_norm : nullptr, false);
    add(pb.wq, gb ? &gb->wq : nullptr, true);
    add(pb.wk, gb ? &gb->wk : nullptr, true);
    add(pb.wv, gb ? &gb->wv : nullptr, true);
    add(pb.wo, gb ? &gb->wo : nullptr, true);
    add(pb.ffn_norm, gb ? &gb->ffn_norm : nullptr, false);
    add(pb.w1, gb ? &gb->w1 : nullptr, true);
    add(pb.w2, gb ? &gb->w2 : nullptr, true);
    add(pb.w3, gb ? &gb->w3 : nullptr, true);
    return out;
  }

  void remove_blocks(const std::vector<std::size_t>& ascending) override {
    pare::remove_blocks(m_, ascending);
    changed();
  }

  prune::ffn_view ffn(std::size_t b) const override {
    const auto& pb = params().blocks.at(b);
    const std::size_t dim = static_cast<std::size_t>(m_.config.dim), hidden = pb.hidden;
    prune::ffn_view f;
    f.gate = matrix_view<const float>(pb.w1.data(), hidden, dim);
    f.up = matrix_view<const float>(pb.w3.data(), hidden, dim);
    f.down = matrix_view<const float>(pb.w2.data(), dim, hidden);
    f.gated = true;  // SwiGLU
    if (stats_) {
      const auto& all = stats_->all();
      const auto it = all.find("blk." + std::to_string(b) + ".ffn_down.weight");
      if (it != all.end()) f.hidden = &it->second;
    }
    return f;
  }

  void refresh_statistics() override {
    if (!cal_.capture) detail::fail<argument_error>("llama_block_model: re-capturing statistics needs a capture, got none");
    stats_ = cal_.capture(m_);
  }

  void keep_ffn_neurons(std::size_t b, const std::vector<std::size_t>& ascending) override {
    shrink_ffn(m_, b, ascending);
    m_.config.hidden_dim = static_cast<int>(ascending.size());
    changed();
  }

  prune::attention_view attention(std::size_t b) const override {
    const auto& pb = params().blocks.at(b);
    const std::size_t dim = static_cast<std::size_t>(m_.config.dim), hs = m_.config.head_size();
    const std::size_t q = static_cast<std::size_t>(pb.n_heads) * hs, kv = static_cast<std::size_t>(pb.n_kv_heads) * hs;
    return {matrix_view<const float>(pb.wq.data(), q, dim), matrix_view<const float>(pb.wk.data(), kv, dim),
            matrix_view<const float>(pb.wv.data(), kv, dim), matrix_view<const float>(pb.wo.data(), dim, q),
            static_cast<std::size_t>(pb.n_heads), static_cast<std::size_t>(pb.n_kv_heads)};
  }

  void keep_kv_heads(std::size_t b, const std::vector<std::size_t>& ascending) override {
    shrink_kv_heads(m_, b, ascending);
    changed();
  }

  llama_model& model() noexcept { return m_; }

 private:
  const llama_params<float>& params() const {
    if (!params_) params_ = std::make_unique<llama_params<float>>(llama_params<float>::from_model(m_));
    return *params_;
  }
  void changed() {
    params_.reset();
    grads_.reset();
  }

  llama_model& m_;
  calibration cal_;
  const calibration_capture* stats_ = nullptr;
  mutable std::unique_ptr<llama_params<float>> params_;
  std::unique_ptr<llama_params<float>> grads_;
};

PARE_NAMESPACE_END
