// Conversion of a llama2.c checkpoint and its tokenizer to a llama GGUF file (the layout llama.cpp's converter produces).
#pragma once

// Metadata (in this order): tokenizer.ggml.tokens (spaces as U+2581, BOS/EOS shown as
// <s> / </s>), .scores, .token_type (unknown 2 for id 0, control 3 for BOS/EOS, byte 6 for
// the 256 <0xNN> pieces, normal 1), tokenizer.ggml.model "llama", general.architecture
// and general.name "llama", unknown/bos/eos ids, separator/padding ids 0xFFFFFFFF, then
// llama.context_length, .embedding_length, .feed_forward_length, .attention.head_count,
// .attention.head_count_kv, .block_count, .rope.dimension_count (head size) and
// .attention.layer_norm_rms_epsilon (1e-5). Tensors F32 in the order token_embd,
// output_norm, output (written even when tied, as llama.cpp's converter does), then per
// block attn_q, attn_k, attn_v, attn_output, attn_norm, ffn_gate, ffn_down, ffn_up,
// ffn_norm. context_length defaults to the checkpoint's seq_len; ggml-org's
// stories260K.gguf says 2048, and with that value the output equals it byte for byte.

#include <cstdint>
#include <string>
#include <vector>

#include "pare/io/gguf_writer.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/io/tokenizer.hpp"

PARE_NAMESPACE_BEGIN

struct llama2c_gguf_options {
  std::uint32_t context_length = 0;  ///< 0: the checkpoint's seq_len
};

inline void write_llama2c_as_gguf(const llama2c_checkpoint& ck, const tokenizer& tok, const std::string& path,
                                  const llama2c_gguf_options& opt = {}) {
  const llama2c_config& c = ck.config();
  if (tok.vocab_size() != static_cast<std::size_t>(c.vocab_size))
    detail::fail<shape_error>("write_llama2c_as_gguf: argument 'tok': expected ", c.vocab_size, " pieces, got ",
                              tok.vocab_size());
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<std::int32_t> types;
  for (std::int32_t i = 0; i < c.vocab_size; ++i) {
    std::string p = i == tok.bos() ? "<s>" : i == tok.eos() ? "</s>" : tok.piece(i);
    std::string q;
    for (char ch : p) q += ch == ' ' ? std::string("\xE2\x96\x81") : std::string(1, ch);
    pieces.push_back(q);
    scores.push_back(tok.score(i));
    types.push_back(i == 0 ? 2 : (i == tok.bos() || i == tok.eos()) ? 3 : (i >= 3 && i < 259) ? 6 : 1);
  }
  gguf_writer w(path);
  w.set("tokenizer.ggml.tokens", pieces);
  w.set("tokenizer.ggml.scores", scores);
  w.set("tokenizer.ggml.token_type", types);
  w.set("tokenizer.ggml.model", std::string("llama"));
  w.set("general.architecture", std::string("llama"));
  w.set("general.name", std::string("llama"));
  w.set("tokenizer.ggml.unknown_token_id", std::uint32_t(0));
  w.set("tokenizer.ggml.bos_token_id", static_cast<std::uint32_t>(tok.bos()));
  w.set("tokenizer.ggml.eos_token_id", static_cast<std::uint32_t>(tok.eos()));
  w.set("tokenizer.ggml.seperator_token_id", std::uint32_t(0xFFFFFFFFu));
  w.set("tokenizer.ggml.padding_token_id", std::uint32_t(0xFFFFFFFFu));
  w.set("llama.context_length", opt.context_length ? opt.context_length : static_cast<std::uint32_t>(c.seq_len));
  w.set("llama.embedding_length", static_cast<std::uint32_t>(c.dim));
  w.set("llama.feed_forward_length", static_cast<std::uint32_t>(c.hidden_dim));
  w.set("llama.attention.head_count", static_cast<std::uint32_t>(c.n_heads));
  w.set("llama.attention.head_count_kv", static_cast<std::uint32_t>(c.n_kv_heads));
  w.set("llama.block_count", static_cast<std::uint32_t>(c.n_layers));
  w.set("llama.rope.dimension_count", static_cast<std::uint32_t>(c.head_size()));
  w.set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  std::vector<std::string> names{"token_embd.weight", "output_norm.weight", "output.weight"};
  for (int l = 0; l < c.n_layers; ++l)
    for (const char* s : {"attn_q", "attn_k", "attn_v", "attn_output", "attn_norm", "ffn_gate", "ffn_down", "ffn_up",
                          "ffn_norm"})
      names.push_back("blk." + std::to_string(l) + "." + s + ".weight");
  auto source = [&](const std::string& n) { return ck.tensor(n == "output.weight" ? (ck.has_tensor(n) ? n : "token_embd.weight") : n); };
  for (const std::string& n : names) {
    const tensor_view<const float> t = source(n);
    std::vector<std::uint64_t> ne;
    for (std::size_t d = t.rank(); d-- > 0;) ne.push_back(t.shape()[d]);  // innermost first
    w.add_tensor(n, 0, ne);
  }
  w.write_header();
  std::vector<float> buf;
  for (const std::string& n : names) {
    const tensor_view<const float> t = source(n);
    buf.resize(t.size());
    std::size_t i = 0;
    if (t.rank() == 2) {
      for (std::size_t r = 0; r < t.shape()[0]; ++r)
        for (std::size_t col = 0; col < t.shape()[1]; ++col) buf[i++] = t(r, col);
    } else {
      for (std::size_t col = 0; col < t.shape()[0]; ++col) buf[i++] = t(col);
    }
    w.write_tensor(n, buf.data(), buf.size() * sizeof(float));
  }
  w.finish();
}

PARE_NAMESPACE_END
