// write_params: puts trained llama_params<float> back into a llama_model (dense float linears, norms, embedding) so it can be evaluated or exported.
#pragma once

// Every linear layer of the model is replaced by a dense_linear holding the trained
// weights (whatever it was before: a compressed layer becomes dense float), the norm
// gains and the token embedding are overwritten; a tied classifier stays tied (the
// classifier is the trained embedding). The model must have the parameters' shapes
// (the ones llama_params::from_model took from it); shape_error otherwise, and then
// the model is unchanged.

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/model/layers/linear.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/llama_model.hpp"

PARE_NAMESPACE_BEGIN

inline void write_params(const llama_params<float>& p, llama_model& m) {
  using detail::fail;
  const llama_config& c = m.config;
  if (p.config.dim != c.dim || p.config.vocab_size != c.vocab_size || p.blocks.size() != m.blocks.size() || p.tied != m.tied_classifier)
    fail<shape_error>("write_params: argument 'm': expected a model of the parameters' shape (dim ", p.config.dim, ", vocab ",
                      p.config.vocab_size, ", ", p.blocks.size(), " blocks, ", p.tied ? "tied" : "untied", " classifier), got dim ",
                      c.dim, ", vocab ", c.vocab_size, ", ", m.blocks.size(), " blocks, ", m.tied_classifier ? "tied" : "untied");
  auto check = [&](const std::string& name, std::size_t got, std::size_t want) {
    if (got != want)
      fail<shape_error>("write_params: tensor '", name, "': expected ", want, " values (the model's), got ", got);
  };
  check("token_embd.weight", p.embd.size(), m.token_embd.size());
  check("output_norm.weight", p.out_norm.size(), m.output_norm.size());
  if (!p.tied) check("output.weight", p.out.size(), m.output->out_features() * m.output->in_features());
  for (std::size_t l = 0; l < m.blocks.size(); ++l) {
    const llama_block& b = m.blocks[l];
    const auto& q = p.blocks[l];
    const std::string pre = "blk." + std::to_string(l) + ".";
    if (b.has_shortcuts()) fail<shape_error>("write_params: argument 'm': block ", l, " has residual linears, which llama_params lacks");
    if (q.n_heads != b.n_heads || q.n_kv_heads != b.n_kv_heads)
      fail<shape_error>("write_params: block ", l, ": expected ", b.n_heads, "/", b.n_kv_heads, " heads (the model's), got ",
                        q.n_heads, "/", q.n_kv_heads);
    check(pre + "attn_norm.weight", q.attn_norm.size(), b.attn_norm.size());
    check(pre + "ffn_norm.weight", q.ffn_norm.size(), b.ffn_norm.size());
    const linear_layer* lin[] = {b.wq.get(), b.wk.get(), b.wv.get(), b.wo.get(), b.w1.get(), b.w2.get(), b.w3.get()};
    const std::vector<float>* w[] = {&q.wq, &q.wk, &q.wv, &q.wo, &q.w1, &q.w2, &q.w3};
    for (std::size_t j = 0; j < 7; ++j) check(pre + "linear " + std::to_string(j), w[j]->size(), lin[j]->out_features() * lin[j]->in_features());
  }
  // Commit.
  std::copy(p.embd.begin(), p.embd.end(), m.token_embd.data());
  m.output_norm = p.out_norm;
  const auto names = m.linear_names();
  for (std::size_t l = 0; l < m.blocks.size(); ++l) {
    llama_block& b = m.blocks[l];
    const auto& q = p.blocks[l];
    b.attn_norm = q.attn_norm;
    b.ffn_norm = q.ffn_norm;
    const std::vector<float>* w[] = {&q.wq, &q.wk, &q.wv, &q.wo, &q.w1, &q.w2, &q.w3};
    for (std::size_t j = 0; j < 7; ++j) {
      const std::string& name = names[l * 7 + j];
      const linear_layer& old = m.linear(name);
      m.set_linear(name, std::make_unique<dense_linear>(matrix_view<const float>(w[j]->data(), old.out_features(), old.in_features())));
    }
  }
  const std::vector<float>& out = p.tied ? p.embd : p.out;
  m.set_linear("output.weight", std::make_unique<dense_linear>(matrix_view<const float>(out.data(), m.output->out_features(),
                                                                                         m.output->in_features())));
}

PARE_NAMESPACE_END
