// Reference LLaMA forward pass on stories260K: greedy text and next-token figures from the data README, a float64 oracle, batch equivalence.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "pare/io/llama2c.hpp"
#include "pare/model/llama_session.hpp"
#include "llama_oracle.hpp"
#include "pare_test_support.hpp"

namespace {

/// Token pieces of a llama2.c tokenizer file (test-local reader: int32 max_len, then
/// per token float score, int32 len, bytes).
std::vector<std::string> read_pieces(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::int32_t max_len = 0;
  in.read(reinterpret_cast<char*>(&max_len), 4);
  std::vector<std::string> pieces;
  for (int i = 0; i < 512; ++i) {
    float score;
    std::int32_t len;
    in.read(reinterpret_cast<char*>(&score), 4);
    in.read(reinterpret_cast<char*>(&len), 4);
    std::string s(static_cast<std::size_t>(len), '\0');
    in.read(&s[0], len);
    pieces.push_back(s);
  }
  REQUIRE(in);
  return pieces;
}

/// llama2.c decode: a leading space is dropped after BOS; <0xNN> pieces are raw bytes.
std::string decode(const std::vector<std::string>& pieces, std::int32_t prev, std::int32_t tok) {
  std::string p = pieces[tok];
  if (prev == 1 && !p.empty() && p[0] == ' ') p.erase(0, 1);
  unsigned byte = 0;
  if (p.size() == 6 && std::sscanf(p.c_str(), "<0x%02X>", &byte) == 1) return std::string(1, static_cast<char>(byte));
  return p;
}

const std::string expected_story =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw "
    "a big, red ball. She wanted to play with it, but it was too high.";

std::int32_t argmax(const std::vector<float>& v) {
  return static_cast<std::int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace

TEST_CASE("greedy decoding of stories260K reproduces the known story, next-token figures match") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const pare::llama_model model = pare::llama_model::from_llama2c(ck);
  const auto pieces = read_pieces(pare_test::data_path("models/tok512.bin"));
  pare::llama_session s(model);
  std::vector<std::int32_t> prompt{1, 403, 407, 261, 378};  // "Once upon a time" (data README)
  std::vector<float> logits;
  s.forward(prompt.data(), prompt.size(), logits);
  // Softmax of the last position: "," about 96.9 %, " there" about 2.9 %.
  {
    const float mx = *std::max_element(logits.begin(), logits.end());
    double z = 0;
    for (float v : logits) z += std::exp(double(v) - mx);
    auto prob = [&](const std::string& piece) {
      for (std::size_t i = 0; i < pieces.size(); ++i)
        if (pieces[i] == piece) return std::exp(double(logits[i]) - mx) / z;
      FAIL("piece not found: " << piece);
      return 0.0;
    };
    CHECK(prob(",") == Approx(0.969).margin(0.0005));
    CHECK(prob(" there") == Approx(0.029).margin(0.0005));
  }
  std::string text;
  for (std::size_t i = 1; i < prompt.size(); ++i) text += decode(pieces, prompt[i - 1], prompt[i]);
  std::int32_t prev = prompt.back();
  while (text.size() < expected_story.size()) {
    const std::int32_t next = argmax(logits);
    text += decode(pieces, prev, next);
    prev = next;
    s.forward(&next, 1, logits);
  }
  CHECK(text.substr(0, expected_story.size()) == expected_story);
}

TEST_CASE("the fp32 forward pass agrees with a float64 evaluation, batched prefill equals token-by-token decoding") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const pare::llama_model model = pare::llama_model::from_llama2c(ck);
  std::vector<std::int32_t> toks{1, 403, 407, 261, 378, 11, 300, 42, 7, 450, 499, 259, 3, 260, 262, 263, 400, 401, 402, 30};
  const auto want = oracle_logits(ck, toks);
  pare::llama_session batch(model), step(model);
  std::vector<float> all, one;
  batch.forward(toks.data(), toks.size(), all, /*all_logits=*/true);
  const std::size_t vocab = model.config.vocab_size;
  double worst = 0, scale = 0;
  for (std::size_t t = 0; t < toks.size(); ++t) {
    step.forward(&toks[t], 1, one);
    for (std::size_t i = 0; i < vocab; ++i) {
      scale = std::max(scale, std::fabs(want[t][i]));
      worst = std::max(worst, std::fabs(double(all[t * vocab + i]) - want[t][i]));
      // Batched and one-token paths do the same fp32 arithmetic per token.
      REQUIRE(one[i] == Approx(all[t * vocab + i]).margin(1e-4));
    }
  }
  INFO("max |logit - float64| = " << worst << ", max |logit| = " << scale);
  CHECK(worst < 1e-4 * scale + 1e-4);
}

TEST_CASE("forward rejects bad tokens and overlong batches without changing the session") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const pare::llama_model model = pare::llama_model::from_llama2c(ck);
  pare::llama_session s(model);
  std::vector<float> logits;
  std::vector<std::int32_t> bad{1, 512};
  CHECK_THROWS_AS(s.forward(bad.data(), bad.size(), logits), pare::argument_error);
  CHECK(s.pos() == 0);
  std::vector<std::int32_t> many(513, 5);
  CHECK_THROWS_WITH(s.forward(many.data(), many.size(), logits), Catch::Contains("seq_len 512"));
  CHECK(s.pos() == 0);
}
