// tokenizer: SentencePiece-style BPE with byte fallback (llama2.c run.c encode/decode semantics) over a piece vocabulary.
#pragma once

// encode(text):
//   [BOS] if asked; if text is non-empty, the piece " " (the dummy prefix); then each
//   UTF-8 code point of text (1-4 bytes) as its piece, or, if the vocabulary lacks it,
//   each of its bytes as token byte + 3 (the <0x00>..<0xFF> pieces); then, repeatedly,
//   the adjacent pair whose concatenation is a piece with the highest score (leftmost on
//   ties) is merged, until no pair merges; [EOS] if asked.
// decode(prev, token): the piece, without its leading space right after BOS; pieces of
//   the form <0xNN> are the raw byte NN.
// The vocabulary comes from a llama2.c tokenizer file or from GGUF metadata
// (tokenizer.ggml.tokens / scores, where spaces are written U+2581 — from_gguf_pieces maps
// them back).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"

PARE_NAMESPACE_BEGIN

class tokenizer {
 public:
  tokenizer() = default;
  /// `pieces[i]` and `scores[i]` of token i; bos/eos ids (llama2.c: 1 and 2).
  tokenizer(std::vector<std::string> pieces, std::vector<float> scores, std::int32_t bos = 1, std::int32_t eos = 2)
      : pieces_(std::move(pieces)), scores_(std::move(scores)), bos_(bos), eos_(eos) {
    if (pieces_.size() != scores_.size())
      detail::fail<argument_error>("tokenizer: argument 'scores': expected ", pieces_.size(), " scores, got ",
                                   scores_.size());
    if (pieces_.size() < 259)
      detail::fail<argument_error>("tokenizer: argument 'pieces': expected at least 259 pieces (3 specials and 256 "
                                   "byte-fallback pieces), got ", pieces_.size());
    const auto n = static_cast<std::int32_t>(pieces_.size());
    if (bos_ < 0 || bos_ >= n || eos_ < 0 || eos_ >= n)
      detail::fail<argument_error>("tokenizer: expected bos and eos ids in [0, ", n, "), got ", bos_, " and ", eos_);
    for (std::int32_t i = 0; i < n; ++i) lookup_.emplace(pieces_[static_cast<std::size_t>(i)], i);  // first wins
  }

  /// A vocabulary stored as in GGUF metadata: U+2581 ("▁") stands for a space.
  static tokenizer from_gguf_pieces(std::vector<std::string> pieces, std::vector<float> scores, std::int32_t bos,
                                    std::int32_t eos) {
    static const std::string lower_one_eighth_block = "\xE2\x96\x81";
    for (std::string& p : pieces) {
      std::string out;
      for (std::size_t i = 0; i < p.size();) {
        if (p.compare(i, 3, lower_one_eighth_block) == 0) {
          out += ' ';
          i += 3;
        } else {
          out += p[i++];
        }
      }
      p = std::move(out);
    }
    return tokenizer(std::move(pieces), std::move(scores), bos, eos);
  }

  std::size_t vocab_size() const noexcept { return pieces_.size(); }
  std::int32_t bos() const noexcept { return bos_; }
  std::int32_t eos() const noexcept { return eos_; }
  const std::string& piece(std::int32_t id) const { return pieces_.at(static_cast<std::size_t>(id)); }
  float score(std::int32_t id) const { return scores_.at(static_cast<std::size_t>(id)); }

  std::vector<std::int32_t> encode(const std::string& text, bool add_bos = true, bool add_eos = false) const {
    std::vector<std::int32_t> t;
    if (add_bos) t.push_back(bos_);
    if (!text.empty()) {
      const auto sp = lookup_.find(" ");
      if (sp != lookup_.end()) t.push_back(sp->second);
    }
    for (std::size_t i = 0; i < text.size();) {
      std::size_t len = 1;  // a lead byte and up to 3 continuation bytes (10xxxxxx)
      while (len < 4 && i + len < text.size() && (static_cast<unsigned char>(text[i + len]) & 0xC0) == 0x80) ++len;
      const auto it = lookup_.find(text.substr(i, len));
      if (it != lookup_.end()) {
        t.push_back(it->second);
      } else {
        for (std::size_t b = 0; b < len; ++b) t.push_back(static_cast<std::int32_t>(static_cast<unsigned char>(text[i + b])) + 3);
      }
      i += len;
    }
    const std::size_t first = add_bos ? 1 : 0;
    for (;;) {
      float best = -1e10f;
      std::size_t at = 0;
      std::int32_t id = -1;
      for (std::size_t i = first; i + 1 < t.size(); ++i) {
        const auto it = lookup_.find(pieces_[static_cast<std::size_t>(t[i])] + pieces_[static_cast<std::size_t>(t[i + 1])]);
        if (it != lookup_.end() && scores_[static_cast<std::size_t>(it->second)] > best) {
          best = scores_[static_cast<std::size_t>(it->second)];
          at = i;
          id = it->second;
        }
      }
      if (id < 0) break;
      t[at] = id;
      t.erase(t.begin() + static_cast<std::ptrdiff_t>(at) + 1);
    }
    if (add_eos) t.push_back(eos_);
    return t;
  }

  /// The text of `token` following `prev` (see the header comment).
  std::string decode(std::int32_t prev, std::int32_t token) const {
    if (token < 0 || static_cast<std::size_t>(token) >= pieces_.size())
      detail::fail<argument_error>("tokenizer::decode: argument 'token': expected an id in [0, ", pieces_.size(),
                                   "), got ", token);
    std::string p = pieces_[static_cast<std::size_t>(token)];
    if (prev == bos_ && !p.empty() && p[0] == ' ') p.erase(0, 1);
    unsigned byte = 0;
    char tail = 0;
    if (p.size() == 6 && std::sscanf(p.c_str(), "<0x%02X>%c", &byte, &tail) == 1) return std::string(1, static_cast<char>(byte));
    return p;
  }

  /// The text of a token sequence (decode of each token after its predecessor).
  std::string decode(const std::vector<std::int32_t>& tokens) const {
    std::string s;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i] == bos_ || tokens[i] == eos_) continue;
      s += decode(i ? tokens[i - 1] : -1, tokens[i]);
    }
    return s;
  }

 private:
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::int32_t bos_ = 1, eos_ = 2;
  std::unordered_map<std::string, std::int32_t> lookup_;
};

PARE_NAMESPACE_END
