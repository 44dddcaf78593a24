// Depth (block) and feed-forward width pruning of stories260K: scores against independent computations, selection invariants, compaction equivalence and GGUF reload.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "pare/model/export_model_gguf.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/structured_prune.hpp"
#include "pare_test_support.hpp"

namespace fs = std::filesystem;

namespace {

struct fixture {
  pare::llama2c_checkpoint ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  pare::tokenizer tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  std::vector<std::int32_t> tokens;
  fixture() {
    const std::vector<char> text = pare_test::read_file(pare_test::data_path("text/tinystories_val_head.txt"));
    tokens = pare::protocol_tokens(tok, std::string(text.begin(), text.end()));
    tokens.resize(1100);
  }
  pare::llama_model model() const { return pare::llama_model::from_llama2c(ck); }
  double ppl(const pare::llama_model& m) const { return pare::perplexity(m, tokens).ppl; }
};

}  // namespace

TEST_CASE("PPL-drop scores are the perplexities of the models without each block, and the model is restored", "[model][prune]") {
  fixture f;
  pare::llama_model m = f.model();
  const double base = f.ppl(m);
  const std::vector<double> s = pare::ppl_drop_scores(m, [&](const pare::llama_model& x) { return f.ppl(x); });
  REQUIRE(s.size() == 5);
  for (std::size_t i = 0; i < 5; ++i) {
    pare::llama_model fresh = f.model();
    pare::remove_blocks(fresh, {i});
    CHECK(s[i] == f.ppl(fresh));
    CHECK(s[i] > base);  // every block of this tiny model matters
  }
  CHECK(m.blocks.size() == 5);
  CHECK(m.config.n_layers == 5);
  CHECK(f.ppl(m) == base);
}

TEST_CASE("Taylor block scores equal a float64 sum of |w·dL/dw|, magnitude scores the sum of |w|", "[model][prune]") {
  fixture f;
  const pare::llama_model m = f.model();
  const std::vector<std::vector<std::int32_t>> windows{{f.tokens.begin(), f.tokens.begin() + 128},
                                                      {f.tokens.begin() + 128, f.tokens.begin() + 256}};
  const std::vector<double> t = pare::taylor_block_scores(m, windows);
  // Independent: double-precision gradients, summed per block.
  const auto pd = pare::llama_params<double>::from_model(m);
  pare::llama_params<double> g0, g1;
  pare::loss_and_grad(pd, windows[0], &g0);
  pare::loss_and_grad(pd, windows[1], &g1);
  auto pn = const_cast<pare::llama_params<double>&>(pd).named();
  auto n0 = g0.named(), n1 = g1.named();
  for (std::size_t l = 0; l < 5; ++l) {
    double ref = 0;
    const std::string pre = "blk." + std::to_string(l) + ".";
    for (std::size_t k = 0; k < pn.size(); ++k) {
      if (pn[k].first.rfind(pre, 0) != 0) continue;
      for (std::size_t i = 0; i < pn[k].second->size(); ++i)
        ref += std::fabs((*pn[k].second)[i] * 0.5 * ((*n0[k].second)[i] + (*n1[k].second)[i]));
    }
    CHECK(t[l] == Approx(ref).epsilon(2e-3));
  }
  const std::vector<double> mag = pare::magnitude_block_scores(m);
  for (std::size_t l = 0; l < 5; ++l) {
    double ref = 0;
    for (const char* s : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"}) {
      const auto v = f.ck.tensor("blk." + std::to_string(l) + "." + s + ".weight");
      for (std::size_t r = 0; r < v.shape()[0]; ++r)
        for (std::size_t c = 0; c < v.shape()[1]; ++c) ref += std::fabs(double(v(r, c)));
    }
    CHECK(mag[l] == Approx(ref).epsilon(1e-9));
  }
}

TEST_CASE("block selection: the least important candidates, first/last kept, bad counts refused", "[model][prune]") {
  const std::vector<double> imp{5, 1, 4, 2, 3, 0.5};
  CHECK(pare::select_blocks_to_remove(imp, 2) == std::vector<std::size_t>{1, 5});
  CHECK(pare::select_blocks_to_remove(imp, 2, 1, 1) == std::vector<std::size_t>{1, 3});
  CHECK(pare::select_blocks_to_remove(imp, 1, 2, 1) == std::vector<std::size_t>{3});
  CHECK_THROWS_AS(pare::select_blocks_to_remove(imp, 0), pare::argument_error);
  CHECK_THROWS_AS(pare::select_blocks_to_remove(imp, 6), pare::argument_error);   // would remove every block
  CHECK_THROWS_AS(pare::select_blocks_to_remove(imp, 3, 2, 2), pare::argument_error);
  CHECK_THROWS_AS(pare::select_blocks_to_remove({1.0, NAN}, 1), pare::value_error);
}

TEST_CASE("depth pruning one-shot and iterative, and the result reloads from GGUF with the same perplexity", "[model][prune]") {
  fixture f;
  auto eval = [&](const pare::llama_model& x) { return f.ppl(x); };
  pare::llama_model a = f.model();
  const std::vector<double> mag = pare::magnitude_block_scores(a);
  const auto removed = pare::depth_prune(a, 1, pare::magnitude_criterion());
  CHECK(removed == pare::select_blocks_to_remove(mag, 1));
  CHECK(a.blocks.size() == 4);
  pare::llama_model b = f.model();
  const auto order = pare::depth_prune_iterative(b, 2, pare::ppl_drop_criterion(eval), 1, 1);
  REQUIRE(order.size() == 2);
  CHECK(order[0] != 0);
  CHECK(order[1] != 4);
  CHECK(b.config.n_layers == 3);
  // The first removal is the best single PPL-drop choice among blocks 1..3.
  pare::llama_model c = f.model();
  const std::vector<double> s = pare::ppl_drop_scores(c, eval);
  CHECK(order[0] == pare::select_blocks_to_remove(s, 1, 1, 1)[0]);
  const std::string path = (fs::temp_directory_path() / "pare_depth.gguf").string();
  pare::write_model_gguf(b, f.tok, path);
  const pare::gguf_file g = pare::gguf_file::open(path);
  CHECK(g.get<std::uint32_t>("llama.block_count") == 3u);
  CHECK(f.ppl(pare::llama_model_from_gguf(g)) == Approx(f.ppl(b)).epsilon(1e-6));
  fs::remove(path);
  pare::llama_model d = f.model();
  CHECK_THROWS_AS(pare::depth_prune(d, 5, pare::magnitude_criterion()), pare::argument_error);
  CHECK(d.blocks.size() == 5);
}

TEST_CASE("FFN width pruning: compacted equals masked, reloads from GGUF, criteria and errors", "[model][prune]") {
  fixture f;
  pare::calibration_capture cal(pare::calibration_capture::options{false, true, "", {}});
  {
    pare::llama_model m = f.model();
    pare::llama_session s(m);
    s.set_observer(&cal);
    std::vector<float> logits;
    s.forward(f.tokens.data(), 256, logits);
  }
  for (const char* crit : {"magnitude", "activation", "apoz"}) {
    INFO(crit);
    pare::llama_model m = f.model();
    // The masked twin: the same neurons zeroed in place (w1, w3 rows and w2 columns).
    pare::llama_model masked = f.model();
    for (std::size_t l = 0; l < 5; ++l) {
      const std::vector<double> sc = pare::ffn_neuron_scores(m, l, crit, &cal);
      std::vector<std::size_t> idx(172);
      for (std::size_t j = 0; j < 172; ++j) idx[j] = j;
      std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return sc[a] > sc[b]; });
      auto w1 = pare::get_tensor(masked, "blk." + std::to_string(l) + ".ffn_gate.weight");
      auto w3 = pare::get_tensor(masked, "blk." + std::to_string(l) + ".ffn_up.weight");
      auto w2 = pare::get_tensor(masked, "blk." + std::to_string(l) + ".ffn_down.weight");
      for (std::size_t r = 129; r < 172; ++r) {
        const std::size_t j = idx[r];
        for (std::size_t k = 0; k < 64; ++k) w1(j, k) = w3(j, k) = w2(k, j) = 0.0f;
      }
      pare::set_tensor(masked, "blk." + std::to_string(l) + ".ffn_gate.weight", pare::matrix_of(w1));
      pare::set_tensor(masked, "blk." + std::to_string(l) + ".ffn_up.weight", pare::matrix_of(w3));
      pare::set_tensor(masked, "blk." + std::to_string(l) + ".ffn_down.weight", pare::matrix_of(w2));
    }
    CHECK(pare::prune_ffn_width(m, 0.25, crit, &cal) == 129u);
    CHECK(m.config.hidden_dim == 129);
    const double p_compact = f.ppl(m), p_masked = f.ppl(masked);
    CHECK(p_compact == Approx(p_masked).epsilon(1e-4));
    const std::string path = (fs::temp_directory_path() / "pare_ffn.gguf").string();
    pare::write_model_gguf(m, f.tok, path);
    CHECK(f.ppl(pare::llama_model_from_gguf(pare::gguf_file::open(path))) == Approx(p_compact).epsilon(1e-6));
    fs::remove(path);
  }
  pare::llama_model m = f.model();
  CHECK_THROWS_AS(pare::prune_ffn_width(m, 1.0, "magnitude"), pare::argument_error);
  CHECK_THROWS_AS(pare::prune_ffn_width(m, 0.25, "activation"), pare::argument_error);
  CHECK_THROWS_AS(pare::prune_ffn_width(m, 0.25, "taylor"), pare::argument_error);
  CHECK(m.blocks[0].w1->out_features() == 172u);
}
