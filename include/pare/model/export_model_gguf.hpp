// Writes a llama_model (fp32 and ggml-format layers) with its tokenizer as a llama-architecture GGUF file that llama.cpp loads.
#pragma once

// Metadata: the tokenizer keys of write_llama2c_as_gguf (tokens with U+2581 for spaces,
// scores, token types, model "llama", unknown/bos/eos ids), general.architecture "llama",
// general.name, llama.context_length / embedding_length / feed_forward_length /
// attention.head_count / attention.head_count_kv / block_count / rope.dimension_count /
// rope.freq_base / attention.layer_norm_rms_epsilon from the model's config, and
// general.quantization_version 2 when a block format is present (as llama.cpp's quantize
// writes it). Tensors: token_embd, output_norm, output (only when the classifier is not
// tied), then per block attn_q, attn_k, attn_v, attn_output, attn_norm, ffn_gate,
// ffn_down, ffn_up, ffn_norm. Norms and fp32 layers are F32; ggml_linear layers keep
// their blocks and type. A tied classifier stored in a block format is written as the
// token_embd tensor (llama.cpp uses it for both the lookup and the output, and pare's
// loader does the same). Layers in pare's own formats (int4 groups, factorized, ...)
// have no GGUF type: unsupported_error naming the layer, before anything is written.
// The model must have uniform head counts and feed-forward width (GGUF's llama keys are
// per model), else unsupported_error. Output goes through a temporary file and a rename.

#include <cstdint>
#include <string>
#include <vector>

#include "pare/io/gguf_writer.hpp"
#include "pare/model/layers/ggml_linear.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/io/tokenizer.hpp"

PARE_NAMESPACE_BEGIN

struct model_gguf_options {
  std::string name = "llama";
  std::uint32_t context_length = 0;  ///< 0: the model's seq_len
};

namespace detail {

/// One tensor to write: either fp32 values (owned) or ggml blocks (borrowed).
struct gguf_out_tensor {
  std::string name;
  std::uint32_t type = 0;
  std::vector<std::uint64_t> ne;
  std::vector<float> f32;
  const std::vector<std::uint8_t>* blocks = nullptr;
};

inline gguf_out_tensor linear_for_gguf(const std::string& name, const linear_layer& l) {
  gguf_out_tensor t{name, 0, {l.in_features(), l.out_features()}, {}, nullptr};
  if (const auto* g = dynamic_cast<const ggml_linear*>(&l)) {
    t.type = static_cast<std::uint32_t>(g->tensor().format());
    t.blocks = &g->tensor().bytes();
  } else if (l.format() == "f32") {
    t.f32.resize(l.in_features() * l.out_features());
    l.dense_weights(matrix_view<float>(t.f32.data(), l.out_features(), l.in_features()));
  } else {
    fail<unsupported_error>("write_model_gguf: layer '", name, "': format '", l.format(),
                            "' has no GGUF tensor type (expected f32 or a ggml format; quantize with quant:ggml:<type>)");
  }
  return t;
}

template <class Vec>
inline gguf_out_tensor vector_for_gguf(const std::string& name, const Vec& v) {
  gguf_out_tensor t{name, 0, {v.size()}, std::vector<float>(v.begin(), v.end()), nullptr};
  return t;
}

}  // namespace detail

inline void write_model_gguf(const llama_model& m, const tokenizer& tok, const std::string& path,
                             const model_gguf_options& opt = {}) {
  const char* where = "write_model_gguf";
  const llama_config& c = m.config;
  if (tok.vocab_size() != static_cast<std::size_t>(c.vocab_size))
    detail::fail<shape_error>(where, ": argument 'tok': expected ", c.vocab_size, " pieces, got ", tok.vocab_size());
  for (std::size_t l = 0; l < m.blocks.size(); ++l) {
    const llama_block& b = m.blocks[l];
    if (b.n_heads != c.n_heads || b.n_kv_heads != c.n_kv_heads || b.w1->out_features() != std::size_t(c.hidden_dim))
      detail::fail<unsupported_error>(where, ": block ", l, ": expected the model's ", c.n_heads, " heads, ", c.n_kv_heads,
                                      " kv heads and feed-forward width ", c.hidden_dim, ", got ", b.n_heads, ", ",
                                      b.n_kv_heads, " and ", b.w1->out_features(),
                                      " (GGUF's llama keys describe every block alike)");
    if (b.has_shortcuts())
      detail::fail<unsupported_error>(where, ": block ", l,
                                      ": has residual linears (SliceGPT with one rotation per block); llama.cpp's "
                                      "llama graph has no tensor for them (slice with one global rotation to write GGUF)");
  }
  // Gather every tensor first: unsupported layers fail before the file is created.
  std::vector<detail::gguf_out_tensor> ts;
  const auto* out_ggml = dynamic_cast<const ggml_linear*>(m.output.get());
  if (m.tied_classifier && out_ggml) {
    ts.push_back(detail::linear_for_gguf("token_embd.weight", *m.output));
  } else {
    detail::gguf_out_tensor e{"token_embd.weight", 0, {std::uint64_t(c.dim), std::uint64_t(c.vocab_size)}, {}, nullptr};
    e.f32.assign(m.token_embd.begin(), m.token_embd.end());
    ts.push_back(std::move(e));
    if (m.tied_classifier && m.output->format() != "f32")
      detail::fail<unsupported_error>(where, ": layer 'output.weight' (tied classifier): format '", m.output->format(),
                                      "' has no GGUF tensor type (expected f32 or a ggml format)");
  }
  ts.push_back(detail::vector_for_gguf("output_norm.weight", m.output_norm));
  if (!m.tied_classifier) ts.push_back(detail::linear_for_gguf("output.weight", *m.output));
  for (std::size_t l = 0; l < m.blocks.size(); ++l) {
    const llama_block& b = m.blocks[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    ts.push_back(detail::linear_for_gguf(p + "attn_q.weight", *b.wq));
    ts.push_back(detail::linear_for_gguf(p + "attn_k.weight", *b.wk));
    ts.push_back(detail::linear_for_gguf(p + "attn_v.weight", *b.wv));
    ts.push_back(detail::linear_for_gguf(p + "attn_output.weight", *b.wo));
    ts.push_back(detail::vector_for_gguf(p + "attn_norm.weight", b.attn_norm));
    ts.push_back(detail::linear_for_gguf(p + "ffn_gate.weight", *b.w1));
    ts.push_back(detail::linear_for_gguf(p + "ffn_down.weight", *b.w2));
    ts.push_back(detail::linear_for_gguf(p + "ffn_up.weight", *b.w3));
    ts.push_back(detail::vector_for_gguf(p + "ffn_norm.weight", b.ffn_norm));
  }
  bool any_blocks = false;
  for (const auto& t : ts) any_blocks = any_blocks || t.blocks;

  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<std::int32_t> types;
  for (std::int32_t i = 0; i < c.vocab_size; ++i) {
    const std::string piece = i == tok.bos() ? "<s>" : i == tok.eos() ? "</s>" : tok.piece(i);
    std::string q;
    for (char ch : piece) q += ch == ' ' ? std::string("\xE2\x96\x81") : std::string(1, ch);
    pieces.push_back(q);
    scores.push_back(tok.score(i));
    const bool byte_piece = piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && piece[5] == '>';
    types.push_back(i == 0 ? 2 : (i == tok.bos() || i == tok.eos()) ? 3 : byte_piece ? 6 : 1);
  }
  gguf_writer w(path);
  w.set("general.architecture", std::string("llama"));
  w.set("general.name", opt.name);
  if (any_blocks) w.set("general.quantization_version", std::uint32_t(2));
  w.set("llama.context_length", opt.context_length ? opt.context_length : static_cast<std::uint32_t>(c.seq_len));
  w.set("llama.embedding_length", static_cast<std::uint32_t>(c.dim));
  w.set("llama.feed_forward_length", static_cast<std::uint32_t>(c.hidden_dim));
  w.set("llama.attention.head_count", static_cast<std::uint32_t>(c.n_heads));
  w.set("llama.attention.head_count_kv", static_cast<std::uint32_t>(c.n_kv_heads));
  w.set("llama.block_count", static_cast<std::uint32_t>(m.blocks.size()));
  w.set("llama.rope.dimension_count", static_cast<std::uint32_t>(c.head_size()));
  if (c.decoupled_heads()) {  // attention width differs from embedding_length / head_count
    w.set("llama.attention.key_length", static_cast<std::uint32_t>(c.head_size()));
    w.set("llama.attention.value_length", static_cast<std::uint32_t>(c.head_size()));
  }
  w.set("llama.rope.freq_base", c.rope_theta);
  w.set("llama.attention.layer_norm_rms_epsilon", c.norm_eps);
  w.set("tokenizer.ggml.model", std::string("llama"));
  w.set("tokenizer.ggml.tokens", pieces);
  w.set("tokenizer.ggml.scores", scores);
  w.set("tokenizer.ggml.token_type", types);
  w.set("tokenizer.ggml.unknown_token_id", std::uint32_t(0));
  w.set("tokenizer.ggml.bos_token_id", static_cast<std::uint32_t>(tok.bos()));
  w.set("tokenizer.ggml.eos_token_id", static_cast<std::uint32_t>(tok.eos()));
  for (const auto& t : ts) w.add_tensor(t.name, t.type, t.ne);
  w.write_header();
  for (const auto& t : ts) {
    if (t.blocks) w.write_tensor(t.name, t.blocks->data(), t.blocks->size());
    else w.write_tensor(t.name, t.f32.data(), t.f32.size() * sizeof(float));
  }
  w.finish();
}

PARE_NAMESPACE_END
