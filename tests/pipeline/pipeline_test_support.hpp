// Shared inputs of the model-level pipeline tests: the first tokens of a data text under the perplexity protocol, and fixed-length windows of them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pare/io/tokenizer.hpp"
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

}  // namespace pipeline_test
