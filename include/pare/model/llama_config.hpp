// llama_config: the hyper-parameters of a LLaMA-family model (width, depth, heads, vocabulary, norm and RoPE constants).
#pragma once

#include <string>

#include "pare/core/error.hpp"

PARE_NAMESPACE_BEGIN

struct llama_config {
  int dim = 0;         ///< model width
  int hidden_dim = 0;  ///< feed-forward inner width
  int n_layers = 0;
  int n_heads = 0;     ///< query heads
  int n_kv_heads = 0;  ///< key/value heads (grouped-query attention when fewer than n_heads)
  int vocab_size = 0;
  int seq_len = 0;     ///< context length (KV cache size)
  float norm_eps = 1e-5f;       ///< RMSNorm epsilon
  float rope_theta = 10000.0f;  ///< RoPE base; adjacent pairs (x[2i], x[2i+1]) are rotated
  /// Width of one attention head; 0 means dim / n_heads (the usual LLaMA layout). Set when
  /// the residual width no longer equals the attention width, as after SliceGPT slicing
  /// (GGUF: llama.attention.key_length / value_length).
  int head_dim = 0;

  int head_size() const noexcept { return head_dim > 0 ? head_dim : n_heads > 0 ? dim / n_heads : 0; }
  int kv_dim() const noexcept { return head_size() * n_kv_heads; }
  /// Width of the concatenated query heads (attn_q's outputs, attn_output's inputs).
  int q_dim() const noexcept { return head_size() * n_heads; }
  /// True when head_size() is not dim / n_heads (the GGUF file needs key_length then).
  bool decoupled_heads() const noexcept { return head_dim > 0 && !(n_heads > 0 && dim == head_dim * n_heads); }

  /// Throws argument_error naming the first field that is out of range.
  void validate(const char* where) const {
    auto need = [&](bool ok, const char* field, const char* expected, long got) {
      if (!ok) detail::fail<argument_error>(where, ": config field '", field, "': expected ", expected, ", got ", got);
    };
    need(dim > 0, "dim", "> 0", dim);
    need(hidden_dim > 0, "hidden_dim", "> 0", hidden_dim);
    need(n_layers >= 0, "n_layers", ">= 0", n_layers);
    need(head_dim >= 0, "head_dim", ">= 0", head_dim);
    if (head_dim == 0) need(n_heads > 0 && dim % n_heads == 0, "n_heads", "a divisor of dim", n_heads);
    else need(n_heads > 0, "n_heads", "> 0", n_heads);
    need(head_size() % 2 == 0, "head_size", "an even number (RoPE rotates pairs)", head_size());
    need(n_kv_heads > 0 && n_heads % n_kv_heads == 0, "n_kv_heads", "a divisor of n_heads", n_kv_heads);
    need(vocab_size > 0, "vocab_size", "> 0", vocab_size);
    need(seq_len > 0, "seq_len", "> 0", seq_len);
    if (!(norm_eps > 0.0f)) detail::fail<argument_error>(where, ": config field 'norm_eps': expected > 0, got ", norm_eps);
    if (!(rope_theta > 0.0f))
      detail::fail<argument_error>(where, ": config field 'rope_theta': expected > 0, got ", rope_theta);
  }
};

PARE_NAMESPACE_END
