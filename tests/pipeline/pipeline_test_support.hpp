// Shared inputs and checks of the model-level pipeline tests: the first tokens of a data text under the perplexity protocol, fixed-length windows of them, a model's logits, a relative difference, a layer's dense weights.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "pare/io/tokenizer.hpp"
#include "pare/model/layers/linear.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/model/perplexity.hpp"
#include "pare_test_support.hpp"

namespace pipeline_test {

/// The first `n` protocol tokens of data file `rel` (e.g. "text/tinystories_val_tail.txt").
inline std::vector<std::int32_t> text_tokens(const pare::tokenizer& tok, const char* rel, std::size_t n) {
  const std::vector<char> text = pare_test::read_file(pare_test::data_path(rel));
  std::vector<std::int32_t> t = pare::protocol_tokens(tok, std::string(text.begin(), text.end()));
  if (t.size() > n) t.resize(n);
  return t;
}

/// Consecutive windows of `w` tokens (a shorter tail is dropped).
inline std::vector<std::vector<std::int32_t>> windows_of(const std::vector<std::int32_t>& t, std::size_t w) {
  std::vector<std::vector<std::int32_t>> out;
  for (std::size_t at = 0; at + w <= t.size(); at += w)
    out.emplace_back(t.begin() + std::ptrdiff_t(at), t.begin() + std::ptrdiff_t(at + w));
  return out;
}

/// The logits of every position of `t` (one forward pass of the whole sequence).
inline std::vector<float> logits_of(const pare::llama_model& m, const std::vector<std::int32_t>& t) {
  pare::llama_session s(m);
  std::vector<float> out;
  s.forward(t.data(), t.size(), out, true);
  return out;
}

/// max |a − b| / max |b|
inline double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, double(std::fabs(a[i] - b[i])));
    den = std::max(den, double(std::fabs(b[i])));
  }
  return num / den;
}

/// The layer's weights as a dense row-major out_features × in_features matrix.
inline std::vector<float> dense(const pare::linear_layer& l) {
  std::vector<float> w(l.out_features() * l.in_features());
  l.dense_weights(pare::matrix_view<float>(w.data(), l.out_features(), l.in_features()));
  return w;
}

}  // namespace pipeline_test
