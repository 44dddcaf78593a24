// Unstructured and N:M pruning of stories260K's linear layers: exactly the weights a float64 oracle of |w| / Wanda's |w|·‖x‖₂ ranks lowest are zeroed, the rest untouched; Wanda needs calibration.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/mask_prune_linears.hpp"
#include "pare_test_support.hpp"
#include "prune/activation_oracle.hpp"

namespace {

/// What the test predicts for one spec (written out here, not read from pare's parser).
struct spec_case {
  const char* spec;
  bool nm;
  double sparsity;  // unstructured
  std::size_t n, m;  // N:M
  bool wanda;
};

/// Pruned count of a row of `cols` at sparsity s: ⌊s·cols⌋ (pare/prune/scores.hpp, with its
/// relative allowance of 1e-12 for decimal sparsities).
std::size_t floor_count(double s, std::size_t cols) {
  const double p = s * double(cols);
  return std::min(static_cast<std::size_t>(std::floor(p + p * 1e-12)), cols - 1);
}

/// The first `tokens` protocol tokens of the calibration text (the tail, never evaluated on).
std::vector<std::int32_t> calibration_tokens(const pare::tokenizer& tok, std::size_t tokens) {
  const std::vector<char> text = pare_test::read_file(pare_test::data_path("text/tinystories_val_tail.txt"));
  std::vector<std::int32_t> t = pare::protocol_tokens(tok, std::string(text.begin(), text.end()));
  t.resize(tokens);
  return t;
}

}  // namespace

TEST_CASE("masked pruning zeroes exactly the weights a float64 |w| / Wanda ranking prunes, per row and per N:M group",
          "[model][prune]") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  const std::vector<std::int32_t> toks = calibration_tokens(tok, 256);
  // One forward pass feeds both pare's capture (what prune_linears_masked reads) and the
  // test's recorder of the raw inputs (what the oracle reads).
  pare::calibration_capture cal(pare::calibration_capture::options{{false, true, ""}, {}});
  prune_oracle::input_recorder rec(&cal);
  {
    const pare::llama_model m = pare::llama_model::from_llama2c(ck);
    pare::llama_session s(m);
    s.set_observer(&rec);
    std::vector<float> logits;
    s.forward(toks.data(), toks.size(), logits);
  }
  const std::vector<spec_case> cases{
      {"unstructured:0.5:magnitude", false, 0.5, 0, 0, false}, {"unstructured:0.5:wanda", false, 0.5, 0, 0, true},
      {"unstructured:0.3:magnitude", false, 0.3, 0, 0, false}, {"unstructured:0.3:wanda", false, 0.3, 0, 0, true},
      {"nm:2:4:magnitude", true, 0, 2, 4, false},              {"nm:2:4:wanda", true, 0, 2, 4, true},
      {"nm:1:4:wanda", true, 0, 1, 4, true},                   {"nm:3:4:magnitude", true, 0, 3, 4, false}};
  for (const spec_case& c : cases) {
    INFO(c.spec);
    pare::llama_model m = pare::llama_model::from_llama2c(ck);
    const auto ch = pare::prune_linears_masked(m, pare::mask_prune_spec::parse(c.spec), {}, &cal);
    CHECK(ch.size() == 35);  // the tied classifier is skipped
    std::size_t near_ties = 0, weights = 0;
    for (const std::string& name : m.linear_names()) {
      INFO(name);
      const pare::linear_layer& l = m.linear(name);
      const std::size_t rows = l.out_features(), cols = l.in_features();
      const pare::matrix_view<const float> w0 = ck.matrix(name == "output.weight" ? "token_embd.weight" : name);
      std::vector<float> w(rows * cols);
      l.dense_weights(pare::matrix_view<float>(w.data(), rows, cols));
      if (name == "output.weight") {  // untouched
        for (std::size_t i = 0; i < rows * cols; ++i) REQUIRE(w[i] == w0(i / cols, i % cols));
        continue;
      }
      // The oracle's scores: |w| or float(|w|·√Σ_t x_tj²) (Wanda: products in double, rounded
      // to float once), the channel sums from the recorded raw inputs.
      std::vector<double> norm(cols, 1.0);
      if (c.wanda) {
        REQUIRE(rec.tokens(name) == toks.size());
        const std::vector<double> ss = rec.sum_sq(name);
        for (std::size_t j = 0; j < cols; ++j) norm[j] = std::sqrt(ss[j]);
      }
      auto score = [&](std::size_t i, std::size_t j) {
        const double a = std::fabs(double(w0(i, j)));
        return c.wanda ? double(float(a * norm[j])) : a;
      };
      // Comparison groups: a whole row (unstructured, per-row budget) or M consecutive inputs.
      const std::size_t group = c.nm ? c.m : cols;
      const std::size_t k = c.nm ? c.m - c.n : floor_count(c.sparsity, cols);
      REQUIRE(cols % group == 0);
      for (std::size_t i = 0; i < rows; ++i) {
        std::size_t zeros = 0;
        for (std::size_t g0 = 0; g0 < cols; g0 += group) {
          std::vector<double> s(group);
          for (std::size_t j = 0; j < group; ++j) s[j] = score(i, g0 + j);
          const std::vector<bool> pruned = prune_oracle::pruned_lowest(s, k);
          double hi_pruned = -1, lo_kept = INFINITY;
          for (std::size_t j = 0; j < group; ++j) {
            if (pruned[j]) hi_pruned = std::max(hi_pruned, s[j]);
            else lo_kept = std::min(lo_kept, s[j]);
          }
          for (std::size_t j = 0; j < group; ++j) {
            const float got = w[i * cols + g0 + j], orig = w0(i, g0 + j);
            REQUIRE(orig != 0.0f);  // stories260K has no exact zeros: the zeros are the pruned weights
            const bool pruned_by_pare = got == 0.0f, pruned_by_oracle = pruned[j];
            zeros += pruned_by_pare;
            if (!pruned_by_pare) REQUIRE(got == orig);  // kept weights are untouched
            if (pruned_by_pare == pruned_by_oracle) continue;
            // Only a float rounding tie at the boundary may go the other way (for Wanda, pare
            // may sum the squares in another order): the score must sit on the threshold.
            INFO("row " << i << " col " << g0 + j << " score " << s[j] << ", oracle's threshold [" << hi_pruned << ", "
                        << lo_kept << "]");
            const bool rounding_tie = c.wanda && std::fabs(s[j] - (pruned_by_oracle ? lo_kept : hi_pruned)) <= 1e-6 * s[j];
            if (!rounding_tie) REQUIRE(pruned_by_pare == pruned_by_oracle);
            ++near_ties;
          }
        }
        CHECK(zeros == (cols / group) * k);  // ⌊s·cols⌋ per row, and M − N of every M for N:M
      }
      weights += rows * cols;
      if (c.nm)
        CHECK(pare::prune::is_nm_sparse(pare::matrix_view<const float>(w.data(), rows, cols), c.n, c.m));
    }
    CHECK(near_ties * 10000 <= weights);  // at most 0.01 % of the weights flip on a rounding tie
  }
}

TEST_CASE("masked pruning honours the layer selection and Wanda needs calibration", "[model][prune]") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  pare::llama_model m = pare::llama_model::from_llama2c(ck);
  const auto only_up = [](const std::string& n) { return n.find("ffn_up") != std::string::npos; };
  const auto ch = pare::prune_linears_masked(m, pare::mask_prune_spec::parse("nm:2:4:magnitude"), only_up);
  CHECK(ch.size() == 5);
  for (const std::string& name : m.linear_names()) {
    if (name == "output.weight") continue;
    INFO(name);
    const pare::linear_layer& l = m.linear(name);
    std::vector<float> w(l.out_features() * l.in_features());
    l.dense_weights(pare::matrix_view<float>(w.data(), l.out_features(), l.in_features()));
    std::size_t zeros = 0, changed = 0;
    const pare::matrix_view<const float> w0 = ck.matrix(name);
    for (std::size_t i = 0; i < w.size(); ++i) {
      zeros += w[i] == 0.0f;
      changed += w[i] != w0(i / l.in_features(), i % l.in_features());
    }
    CHECK(zeros == (only_up(name) ? w.size() / 2 : 0));
    CHECK(changed == zeros);
  }
  CHECK_THROWS_AS(pare::prune_linears_masked(m, pare::mask_prune_spec::parse("unstructured:0.5:wanda")), pare::argument_error);
  CHECK_THROWS_AS(pare::mask_prune_spec::parse("unstructured:1.0:magnitude"), pare::argument_error);
  CHECK_THROWS_AS(pare::mask_prune_spec::parse("nm:3:2:magnitude"), pare::argument_error);
  CHECK_THROWS_AS(pare::mask_prune_spec::parse("nm:2:4:taylor"), pare::argument_error);
  CHECK(m.linear("blk.0.attn_q.weight").format() == "f32");
}
