// perplexity: the project's perplexity protocol (paragraphs with BOS, non-overlapping seq_len windows, fresh KV cache each).
#pragma once

// Protocol (../shared/data/README.md): split the text on blank lines, strip each
// paragraph, encode each with BOS, concatenate into one token stream, cut it into
// non-overlapping windows of seq_len tokens (the last, shorter window included if it has
// at least 2 tokens), score each window from an empty KV cache — the first token of a
// window is context only — and PPL = exp(total NLL / predicted tokens), natural log.
// Log-probabilities are taken in double from the fp32 logits.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "pare/core/progress.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/io/tokenizer.hpp"

PARE_NAMESPACE_BEGIN

struct perplexity_result {
  double ppl = 0;            ///< exp(nll / predicted)
  double nll = 0;            ///< total negative log-likelihood (nats)
  std::size_t predicted = 0; ///< number of scored tokens
  std::size_t windows = 0;
};

/// The token stream of the protocol: every non-empty paragraph (text between blank
/// lines, stripped of surrounding whitespace) encoded with BOS, concatenated.
inline std::vector<std::int32_t> protocol_tokens(const tokenizer& tok, const std::string& text) {
  std::vector<std::int32_t> out;
  std::size_t i = 0;
  auto flush = [&](std::size_t b, std::size_t e) {
    while (b < e && std::isspace(static_cast<unsigned char>(text[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(text[e - 1]))) --e;
    if (e > b) {
      const auto t = tok.encode(text.substr(b, e - b), true, false);
      out.insert(out.end(), t.begin(), t.end());
    }
  };
  std::size_t start = 0;
  while (i < text.size()) {
    // A blank line: a newline, optional spaces/tabs/CR, another newline.
    if (text[i] == '\n') {
      std::size_t j = i + 1;
      while (j < text.size() && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r')) ++j;
      if (j < text.size() && text[j] == '\n') {
        flush(start, i);
        while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
        start = i = j;
        continue;
      }
    }
    ++i;
  }
  flush(start, text.size());
  return out;
}

/// Perplexity of `model` on a token stream (see the protocol above). `progress`, if not
/// empty, is called with (0, windows) first and (windows scored, windows) after each window;
/// windows counts those with at least 2 tokens (the ones scored).
/// `window` is the protocol's seq_len (0: the model's context length; stories260K's
/// GGUF says 2048 while the model was trained with, and the protocol uses, 512).
inline perplexity_result perplexity(const llama_model& model, const std::vector<std::int32_t>& tokens,
                                    const progress_callback& progress = {}, std::size_t window = 0) {
  const std::size_t w = window ? std::min<std::size_t>(window, static_cast<std::size_t>(model.config.seq_len))
                               : static_cast<std::size_t>(model.config.seq_len);
  const std::size_t vocab = model.config.vocab_size;
  perplexity_result r;
  llama_session s(model);
  std::vector<float> logits;
  const std::size_t total = tokens.size() / w + (tokens.size() % w >= 2 ? 1 : 0);
  if (progress) progress(0, total);
  for (std::size_t b = 0; b < tokens.size(); b += w) {
    const std::size_t n = std::min(w, tokens.size() - b);
    if (n < 2) break;
    s.reset();
    s.forward(tokens.data() + b, n, logits, /*all_logits=*/true);
    for (std::size_t t = 0; t + 1 < n; ++t) {
      const float* l = logits.data() + t * vocab;
      const float mx = *std::max_element(l, l + vocab);
      double z = 0;
      for (std::size_t i = 0; i < vocab; ++i) z += std::exp(double(l[i]) - double(mx));
      r.nll += std::log(z) - (double(l[tokens[b + t + 1]]) - double(mx));
      ++r.predicted;
    }
    ++r.windows;
    if (progress) progress(r.windows, total);
  }
  r.ppl = r.predicted ? std::exp(r.nll / double(r.predicted)) : 0.0;
  return r;
}

PARE_NAMESPACE_END
