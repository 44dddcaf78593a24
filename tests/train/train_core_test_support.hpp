// Shared inputs of the training-core tests: stories260K, val_tail tokens, tiny synthetic parameter sets, bit comparison of parameters.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "pare/core/rng.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare_test_support.hpp"

namespace train_core_test {

inline pare::llama_model stories260k() {
  return pare::llama_model::from_llama2c(pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin")));
}

/// tinystories_val_tail.txt as the perplexity protocol's token stream (training text only).
inline const std::vector<std::int32_t>& val_tail_tokens() {
  static const std::vector<std::int32_t> toks = [] {
    const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), 512);
    const std::vector<char> text = pare_test::read_file(pare_test::data_path("text/tinystories_val_tail.txt"));
    return pare::protocol_tokens(tok, std::string(text.begin(), text.end()));
  }();
  return toks;
}

/// A llama_params with no blocks: token_embd (vocab·dim values) and output_norm (dim),
/// random in [-1, 1); enough tensors for optimizer and checkpoint tests.
inline pare::llama_params<float> tiny_params(std::size_t vocab, std::size_t dim, std::uint64_t seed) {
  pare::llama_params<float> p;
  p.config.dim = static_cast<int>(dim);
  p.config.vocab_size = static_cast<int>(vocab);
  p.tied = true;
  pare::splitmix64 r(seed);
  p.embd.resize(vocab * dim);
  for (float& x : p.embd) x = float(2 * r.uniform() - 1);
  p.out_norm.resize(dim);
  for (float& x : p.out_norm) x = float(2 * r.uniform() - 1);
  return p;
}

/// Number of tensors of a and b whose bytes differ (or -1 if the names/sizes differ).
inline long differing_tensors(pare::llama_params<float>& a, pare::llama_params<float>& b) {
  auto na = a.named(), nb = b.named();
  if (na.size() != nb.size()) return -1;
  long d = 0;
  for (std::size_t i = 0; i < na.size(); ++i) {
    if (na[i].first != nb[i].first || na[i].second->size() != nb[i].second->size()) return -1;
    d += std::memcmp(na[i].second->data(), nb[i].second->data(), na[i].second->size() * sizeof(float)) != 0;
  }
  return d;
}

}  // namespace train_core_test
