// Tokenizer (llama2.c encode/decode) against the data README's facts, and the perplexity protocol against a float64 evaluation.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "pare/io/llama2c.hpp"
#include "pare/model/perplexity.hpp"
#include "llama_oracle.hpp"
#include "pare_test_support.hpp"

namespace {

pare::tokenizer load_tok512() {
  std::ifstream in(pare_test::data_path("models/tok512.bin"), std::ios::binary);
  REQUIRE(in);
  std::int32_t max_len = 0;
  in.read(reinterpret_cast<char*>(&max_len), 4);
  std::vector<std::string> pieces;
  std::vector<float> scores;
  for (int i = 0; i < 512; ++i) {
    float score;
    std::int32_t len;
    in.read(reinterpret_cast<char*>(&score), 4);
    in.read(reinterpret_cast<char*>(&len), 4);
    std::string s(static_cast<std::size_t>(len), '\0');
    in.read(&s[0], len);
    pieces.push_back(s);
    scores.push_back(score);
  }
  REQUIRE(in);
  return pare::tokenizer(pieces, scores, 1, 2);
}

std::string read_text(const std::string& rel) {
  std::ifstream in(pare_test::data_path(rel), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("tokenizer: the README's prompt encoding, byte fallback and decode round trip") {
  const pare::tokenizer tok = load_tok512();
  CHECK(tok.encode("Once upon a time") == std::vector<std::int32_t>{1, 403, 407, 261, 378});
  // Text of plain ASCII decodes back to itself (the dummy-prefix space is dropped after BOS).
  const std::string text = "Lily and Ben went to the park. They saw a big dog!";
  CHECK(tok.decode(tok.encode(text)) == text);
  // A code point outside the vocabulary (an emoji, 4 UTF-8 bytes) falls back to its bytes (+3).
  const auto t = tok.encode("\xF0\x9F\x98\x80", false, false);
  REQUIRE(t.size() == 5);  // the dummy-prefix space, then 4 byte tokens (no byte pieces merge)
  CHECK(t[1] == 0xF0 + 3);
  CHECK(t[2] == 0x9F + 3);
  CHECK(t[3] == 0x98 + 3);
  CHECK(t[4] == 0x80 + 3);
  CHECK(tok.decode(t) == " \xF0\x9F\x98\x80");  // no BOS before it: the dummy-prefix space stays
  CHECK(tok.encode("", true, true) == std::vector<std::int32_t>{1, 2});
  CHECK_THROWS_AS(tok.decode(0, 512), pare::argument_error);
}

TEST_CASE("protocol tokens: paragraphs split on blank lines, stripped, each with BOS") {
  const pare::tokenizer tok = load_tok512();
  const auto a = pare::protocol_tokens(tok, "  One day.\n\n\nThe end. \n \nLast\n");
  std::vector<std::int32_t> want = tok.encode("One day.");
  for (const char* p : {"The end.", "Last"}) {
    const auto t = tok.encode(p);
    want.insert(want.end(), t.begin(), t.end());
  }
  CHECK(a == want);
}

TEST_CASE("perplexity of stories260K follows the protocol and matches a float64 evaluation of its windows") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const pare::llama_model model = pare::llama_model::from_llama2c(ck);
  const pare::tokenizer tok = load_tok512();
  const auto all = pare::protocol_tokens(tok, read_text("text/tinystories_val_head.txt"));
  REQUIRE(all.size() > 1200);
  // Float64 check on the first two windows plus a short tail window (512 + 512 + 100 tokens).
  const std::vector<std::int32_t> toks(all.begin(), all.begin() + 1124);
  const pare::perplexity_result r = pare::perplexity(model, toks);
  CHECK(r.windows == 3);
  CHECK(r.predicted == 511 + 511 + 99);
  // float64 NLL of the same windows, from a float64 forward pass of the model.
  double nll = 0;
  for (std::size_t b = 0; b < toks.size(); b += 512) {
    const std::size_t n = std::min<std::size_t>(512, toks.size() - b);
    const std::vector<std::int32_t> window(toks.begin() + b, toks.begin() + b + n);
    const auto lg = oracle_logits(ck, window);
    for (std::size_t t = 0; t + 1 < n; ++t) {
      double mx = -1e300, z = 0;
      for (double e : lg[t]) mx = std::max(mx, e);
      for (double e : lg[t]) z += std::exp(e - mx);
      nll += std::log(z) - (lg[t][window[t + 1]] - mx);
    }
  }
  const double ppl64 = std::exp(nll / double(r.predicted));
  INFO("pare fp32 ppl " << r.ppl << ", float64 " << ppl64);
  CHECK(r.ppl == Approx(ppl64).epsilon(1e-5));
}
