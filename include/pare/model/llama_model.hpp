// llama_model: the weights of a LLaMA-family model (embedding, blocks of attention + SwiGLU FFN, final norm, classifier).
#pragma once

// Tensor names follow GGUF/llama.cpp: token_embd.weight, blk.{l}.attn_norm.weight,
// blk.{l}.attn_{q,k,v,output}.weight, blk.{l}.ffn_norm.weight, blk.{l}.ffn_{gate,down,up}.weight
// (gate = w1, down = w2, up = w3 in llama2.c's names), output_norm.weight, output.weight.
// Projections are linear_layer objects, so they can be replaced by compressed versions
// (set_linear) and blocks can be removed (remove_blocks) for depth pruning.

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/model/layers/linear.hpp"
#include "pare/model/llama_config.hpp"

PARE_NAMESPACE_BEGIN

/// One transformer block.
struct llama_block {
  int n_heads = 0, n_kv_heads = 0;         // this block's heads (fewer after head pruning)
  std::vector<float> attn_norm, ffn_norm;  // [dim] RMSNorm gains
  std::unique_ptr<linear_layer> wq, wk, wv, wo;  // [q_dim, dim], [kv_dim, dim] x2, [dim, q_dim]
  std::unique_ptr<linear_layer> w1, w2, w3;      // gate [hidden, dim], down [dim, hidden], up [hidden, dim]
  /// Residual-path linears [dim, dim], null for the identity (the usual LLaMA block). SliceGPT
  /// with one rotation per block puts Q_inᵀ·Q_out here: x ← x·Sᵀ + attention(...), and the
  /// same around the FFN. GGUF has no tensor for them (export refuses such models).
  std::unique_ptr<linear_layer> attn_shortcut, ffn_shortcut;
  bool has_shortcuts() const noexcept { return attn_shortcut || ffn_shortcut; }
};

class llama_model {
 public:
  llama_config config;
  aligned_buffer<float> token_embd;  // [vocab, dim]
  std::vector<llama_block> blocks;
  std::vector<float> output_norm;    // [dim]
  std::unique_ptr<linear_layer> output;  // [vocab, dim]
  bool tied_classifier = true;  ///< the classifier was the token embedding in the source file

  /// Builds the model from a llama2.c checkpoint (copies the weights).
  static llama_model from_llama2c(const llama2c_checkpoint& ck) {
    const llama2c_config& c = ck.config();
    llama_config cfg;
    cfg.dim = c.dim;
    cfg.hidden_dim = c.hidden_dim;
    cfg.n_layers = c.n_layers;
    cfg.n_heads = c.n_heads;
    cfg.n_kv_heads = c.n_kv_heads;
    cfg.vocab_size = c.vocab_size;
    cfg.seq_len = c.seq_len;
    return from_tensors(cfg, [&](const std::string& name) { return ck.tensor(name); }, c.shared_classifier);
  }

  /// Builds the model from a tensor lookup `get(name) -> tensor_view<const float>` using
  /// the GGUF names above; `tied` means output.weight is token_embd.weight. Each view is
  /// copied before `get` is called again, so it need only stay valid until then.
  template <class Get>
  static llama_model from_tensors(const llama_config& cfg, Get&& get, bool tied) {
    cfg.validate("llama_model");
    llama_model m;
    m.config = cfg;
    m.tied_classifier = tied;
    const std::size_t dim = cfg.dim, hid = cfg.hidden_dim, kv = cfg.kv_dim(), qd = cfg.q_dim(), vocab = cfg.vocab_size;
    auto vec = [&](const std::string& name, std::size_t n) {
      const tensor_view<const float> t = get(name);
      if (t.size() != n) detail::fail<shape_error>("llama_model: tensor '", name, "': expected ", n, " values, got shape ", t.shape());
      std::vector<float> v(n);
      std::size_t i = 0;
      for (std::size_t r = 0; r < (t.rank() == 2 ? t.shape()[0] : 1); ++r)
        for (std::size_t j = 0; j < (t.rank() == 2 ? t.shape()[1] : t.shape()[0]); ++j)
          v[i++] = t.rank() == 2 ? t(r, j) : t(j);
      return v;
    };
    auto mat = [&](const std::string& name, std::size_t rows, std::size_t cols) {
      const tensor_view<const float> t = get(name);
      const matrix_view<const float> w = t.as_matrix();
      if (w.rows() != rows || w.cols() != cols)
        detail::fail<shape_error>("llama_model: tensor '", name, "': expected [", rows, ", ", cols, "], got ", t.shape());
      return std::make_unique<dense_linear>(w);
    };
    {
      const auto e = mat("token_embd.weight", vocab, dim);
      m.token_embd = aligned_buffer<float>(vocab * dim);
      e->dense_weights(matrix_view<float>(m.token_embd.data(), vocab, dim));
    }
    for (int l = 0; l < cfg.n_layers; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      llama_block b;
      b.n_heads = cfg.n_heads;
      b.n_kv_heads = cfg.n_kv_heads;
      b.attn_norm = vec(p + "attn_norm.weight", dim);
      b.ffn_norm = vec(p + "ffn_norm.weight", dim);
      b.wq = mat(p + "attn_q.weight", qd, dim);
      b.wk = mat(p + "attn_k.weight", kv, dim);
      b.wv = mat(p + "attn_v.weight", kv, dim);
      b.wo = mat(p + "attn_output.weight", dim, qd);
      b.w1 = mat(p + "ffn_gate.weight", hid, dim);
      b.w2 = mat(p + "ffn_down.weight", dim, hid);
      b.w3 = mat(p + "ffn_up.weight", hid, dim);
      m.blocks.push_back(std::move(b));
    }
    m.output_norm = vec("output_norm.weight", dim);
    m.output = tied ? std::make_unique<dense_linear>(matrix_view<const float>(m.token_embd.data(), vocab, dim))
                    : mat("output.weight", vocab, dim);
    return m;
  }

  /// Names of every linear layer, in forward order (GGUF names).
  std::vector<std::string> linear_names() const {
    std::vector<std::string> names;
    for (std::size_t l = 0; l < blocks.size(); ++l)
      for (const char* s : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"})
        names.push_back("blk." + std::to_string(l) + "." + s + ".weight");
    names.push_back("output.weight");
    return names;
  }

  /// The linear layer called `name` (see linear_names()); argument_error if unknown.
  const linear_layer& linear(const std::string& name) const { return *const_cast<llama_model*>(this)->slot(name); }

  /// Replaces the linear layer `name` by `layer` (same in/out features, else shape_error).
  /// Replacing a tied classifier rewrites the embedding with the new layer's weights.
  void set_linear(const std::string& name, std::unique_ptr<linear_layer> layer) { (void)exchange_linear(name, std::move(layer)); }

  /// set_linear that hands back the layer it replaced (to put it back later, e.g. while
  /// measuring one candidate at a time).
  std::unique_ptr<linear_layer> exchange_linear(const std::string& name, std::unique_ptr<linear_layer> layer) {
    std::unique_ptr<linear_layer>& s = slot(name);
    if (!layer || layer->in_features() != s->in_features() || layer->out_features() != s->out_features())
      detail::fail<shape_error>("llama_model::set_linear: layer '", name, "': expected [", s->out_features(), ", ",
                                s->in_features(), "], got ",
                                layer ? detail::concat("[", layer->out_features(), ", ", layer->in_features(), "]")
                                      : std::string("null"));
    std::swap(s, layer);
    // A tied classifier is the embedding: its rows follow what the classifier now stores.
    if (name == "output.weight" && tied_classifier)
      s->dense_weights(matrix_view<float>(token_embd.data(), s->out_features(), s->in_features()));
    return layer;
  }

  /// Bytes of all weights as stored now: norms in fp32, linears as stored. A tied
  /// classifier is stored once: as the fp32 embedding, or, once the classifier is
  /// compressed, as that compressed tensor (the embedding rows are its dequantized rows).
  std::size_t storage_bytes() const noexcept {
    std::size_t b = output_norm.size() * sizeof(float);
    for (const llama_block& blk : blocks) {
      b += (blk.attn_norm.size() + blk.ffn_norm.size()) * sizeof(float);
      for (const auto* p : {&blk.wq, &blk.wk, &blk.wv, &blk.wo, &blk.w1, &blk.w2, &blk.w3}) b += (*p)->storage_bytes();
      for (const auto* p : {&blk.attn_shortcut, &blk.ffn_shortcut})
        if (*p) b += (*p)->storage_bytes();
    }
    if (tied_classifier)
      b += output->format() == "f32" ? token_embd.size() * sizeof(float) : output->storage_bytes();
    else
      b += token_embd.size() * sizeof(float) + output->storage_bytes();
    return b;
  }

  /// Weights counted by storage_bytes() (a tied classifier once).
  std::size_t weight_count() const noexcept {
    std::size_t n = output_norm.size();
    for (const llama_block& blk : blocks) {
      n += blk.attn_norm.size() + blk.ffn_norm.size();
      for (const auto* p : {&blk.wq, &blk.wk, &blk.wv, &blk.wo, &blk.w1, &blk.w2, &blk.w3, &blk.attn_shortcut, &blk.ffn_shortcut})
        if (*p) n += (*p)->in_features() * (*p)->out_features();
    }
    return n + token_embd.size() + (tied_classifier ? 0 : output->in_features() * output->out_features());
  }

 private:
  std::unique_ptr<linear_layer>& slot(const std::string& name) {
    if (name == "output.weight") return output;
    const std::string pre = "blk.";
    if (name.compare(0, pre.size(), pre) == 0) {
      const std::size_t dot = name.find('.', pre.size());
      if (dot != std::string::npos) {
        const std::string num = name.substr(pre.size(), dot - pre.size());
        const std::string rest = name.substr(dot + 1);
        if (!num.empty() && num.find_first_not_of("0123456789") == std::string::npos && num.size() < 9) {
          const std::size_t l = std::stoul(num);
          if (l < blocks.size()) {
            llama_block& b = blocks[l];
            if (rest == "attn_q.weight") return b.wq;
            if (rest == "attn_k.weight") return b.wk;
            if (rest == "attn_v.weight") return b.wv;
            if (rest == "attn_output.weight") return b.wo;
            if (rest == "ffn_gate.weight") return b.w1;
            if (rest == "ffn_down.weight") return b.w2;
            if (rest == "ffn_up.weight") return b.w3;
          }
        }
      }
    }
    detail::fail<argument_error>("llama_model: argument 'name': expected a linear layer name such as blk.0.attn_q.weight, got '",
                                 name, "'");
  }
};

PARE_NAMESPACE_END
