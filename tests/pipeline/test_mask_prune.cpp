// Unstructured and N:M pruning of stories260K's linear layers: exact per-row sparsity, N:M invariants, Wanda's calibration requirement.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "pare/model/load.hpp"
#include "pare/pipeline/mask_prune_linears.hpp"
#include "pare/model/perplexity.hpp"
#include "pare_test_support.hpp"

TEST_CASE("masked pruning of the model: exact sparsity and N:M, Wanda needs calibration", "[model][prune]") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  const std::vector<char> text = pare_test::read_file(pare_test::data_path("text/tinystories_sample_cs336.txt"));
  const std::vector<std::int32_t> toks = pare::protocol_tokens(tok, std::string(text.begin(), text.end()));
  pare::calibration_capture cal(pare::calibration_capture::options{false, true, "", {}});
  {
    const pare::llama_model m = pare::llama_model::from_llama2c(ck);
    pare::llama_session s(m);
    s.set_observer(&cal);
    std::vector<float> logits;
    s.forward(toks.data(), 256, logits);
  }
  for (const char* spec : {"unstructured:0.5:magnitude", "unstructured:0.5:wanda", "nm:2:4:magnitude", "nm:2:4:wanda"}) {
    INFO(spec);
    pare::llama_model m = pare::llama_model::from_llama2c(ck);
    const auto ch = pare::prune_linears_masked(m, pare::mask_prune_spec::parse(spec), {}, &cal);
    CHECK(ch.size() == 35);  // the tied classifier is skipped
    for (const std::string& name : m.linear_names()) {
      if (name == "output.weight") continue;
      const pare::linear_layer& l = m.linear(name);
      std::vector<float> w(l.out_features() * l.in_features());
      l.dense_weights(pare::matrix_view<float>(w.data(), l.out_features(), l.in_features()));
      // stories260K has no exact zeros, so the zeros are exactly the pruned weights.
      for (std::size_t r = 0; r < l.out_features(); ++r) {
        std::size_t zeros = 0;
        for (std::size_t c = 0; c < l.in_features(); ++c) zeros += w[r * l.in_features() + c] == 0.0f;
        CHECK(zeros == l.in_features() / 2);  // 50 % per row, and 2 of every 4 for 2:4
      }
      if (std::string(spec).rfind("nm", 0) == 0)
        CHECK(pare::prune::is_nm_sparse(pare::matrix_view<const float>(w.data(), l.out_features(), l.in_features()), 2, 4));
    }
  }
  pare::llama_model m = pare::llama_model::from_llama2c(ck);
  CHECK_THROWS_AS(pare::prune_linears_masked(m, pare::mask_prune_spec::parse("unstructured:0.5:wanda")), pare::argument_error);
  CHECK_THROWS_AS(pare::mask_prune_spec::parse("unstructured:1.0:magnitude"), pare::argument_error);
  CHECK_THROWS_AS(pare::mask_prune_spec::parse("nm:3:2:magnitude"), pare::argument_error);
  CHECK_THROWS_AS(pare::mask_prune_spec::parse("nm:2:4:taylor"), pare::argument_error);
  CHECK(m.linear("blk.0.attn_q.weight").format() == "f32");
}
