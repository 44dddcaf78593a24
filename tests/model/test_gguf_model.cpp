// The reference model and tokenizer loaded from stories260K.gguf: same story, logits, tokens and perplexity as from the llama2.c files.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "pare/io/llama2c.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/model/sampler.hpp"
#include "pare_test_support.hpp"

TEST_CASE("stories260K from GGUF: greedy story, logits and perplexity equal the llama2.c checkpoint's") {
  const auto g = pare::gguf_file::open(pare_test::data_path("models/stories260K.gguf"));
  const pare::llama_model mg = pare::llama_model_from_gguf(g);
  const pare::tokenizer tg = pare::tokenizer_from_gguf(g);
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const pare::llama_model mb = pare::llama_model::from_llama2c(ck);
  const pare::tokenizer tb = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), 512);
  CHECK(mg.config.seq_len == 2048);  // the GGUF's context_length; the model was trained with 512
  CHECK(mg.config.n_layers == 5);
  CHECK_FALSE(mg.tied_classifier);   // ggml-org's file stores output.weight (equal to the embedding)
  const std::vector<std::int32_t> prompt{1, 403, 407, 261, 378};
  CHECK(tg.encode("Once upon a time") == prompt);
  CHECK(tb.encode("Once upon a time") == prompt);
  // Greedy decoding from both models gives the same tokens and the README's story.
  pare::llama_session sg(mg), sb(mb);
  std::vector<float> lg, lb;
  sg.forward(prompt.data(), prompt.size(), lg);
  sb.forward(prompt.data(), prompt.size(), lb);
  std::vector<std::int32_t> toks = prompt;
  pare::sampler greedy;
  for (int i = 0; i < 60; ++i) {
    REQUIRE(lg == lb);
    const std::int32_t t = greedy.next(lg.data(), lg.size());
    toks.push_back(t);
    sg.forward(&t, 1, lg);
    sb.forward(&t, 1, lb);
  }
  const std::string story = tg.decode(toks);
  CHECK(story.rfind("Once upon a time, there was a little girl named Lily. She loved to play outside in the park.", 0) == 0);
  CHECK(tb.decode(toks) == story);
  // Perplexity under the protocol (512-token windows) is identical.
  std::ifstream in(pare_test::data_path("text/tinystories_val_head.txt"));
  std::stringstream ss;
  ss << in.rdbuf();
  auto tokens = pare::protocol_tokens(tg, ss.str());
  CHECK(tokens == pare::protocol_tokens(tb, ss.str()));
  tokens.resize(2100);
  const auto pg = pare::perplexity(mg, tokens, nullptr, 512), pb = pare::perplexity(mb, tokens, nullptr, 512);
  CHECK(pg.predicted == pb.predicted);
  CHECK(pg.ppl == pb.ppl);
}
