// Block-sequential calibration against full forward passes: the block-wise residual stream gives forward()'s logits, and every group's XᵀX equals a full-forward capture on the model as compressed so far.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/pipeline/sequential_linears.hpp"
#include "pare_test_support.hpp"

namespace {

std::vector<std::vector<std::int32_t>> calib_windows(const pare::tokenizer& tok, std::size_t n, std::size_t len) {
  const std::vector<char> text = pare_test::read_file(pare_test::data_path("text/tinystories_val_tail.txt"));
  const std::vector<std::int32_t> t = pare::protocol_tokens(tok, std::string(text.begin(), text.end()));
  std::vector<std::vector<std::int32_t>> w;
  for (std::size_t i = 0; i < n; ++i)  // windows of different lengths: len, len-7, len-14, ...
    w.emplace_back(t.begin() + std::ptrdiff_t(i * len), t.begin() + std::ptrdiff_t(i * len + len - 7 * i));
  return w;
}

/// XᵀX of layer `name`'s input over full forward passes of the windows (the reference path).
std::vector<double> full_forward_xtx(const pare::llama_model& m, const std::vector<std::vector<std::int32_t>>& windows,
                                     const std::string& name) {
  pare::calibration_capture::options o;
  o.xtx = true;
  o.channel_stats = false;
  o.include = [&](const std::string& n) { return n == name; };
  pare::calibration_capture cap(std::move(o));
  for (const auto& w : windows) {
    pare::llama_session s(m);
    s.set_observer(&cap);
    std::vector<float> logits;
    s.forward(w.data(), w.size(), logits, true);  // every row through the head (output.weight's input)
  }
  return cap.at(name).xtx;
}

double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(a[i] - b[i]));
    den = std::max(den, std::fabs(b[i]));
  }
  return num / den;
}

}  // namespace

TEST_CASE("block_sequence: embed, every block in order and the head give forward()'s logits",
          "[pipeline][sequential][real_data]") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  const pare::llama_model m = pare::llama_model::from_llama2c(ck);
  const auto windows = calib_windows(tok, 3, 200);
  pare::block_sequence seq(m, windows);
  CHECK(seq.windows() == 3);
  CHECK(seq.tokens() == 200 + 193 + 186);
  for (std::size_t l = 0; l < m.blocks.size(); ++l) seq.advance(m);
  CHECK(seq.block() == m.blocks.size());
  CHECK_THROWS_AS(seq.advance(m), pare::argument_error);
  for (std::size_t w = 0; w < windows.size(); ++w) {
    pare::llama_session full(m), part(m);
    std::vector<float> want, got;
    full.forward(windows[w].data(), windows[w].size(), want, true);
    const auto x = seq.input(w);
    part.forward_head(x.data(), x.rows(), got, true);
    REQUIRE(got.size() == want.size());
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::fabs(got[i] - want[i])));
    CHECK(worst == 0.0);  // the same float operations in the same order
  }
}

TEST_CASE("sequential_linears: each group's XᵀX equals a full-forward capture behind the groups already quantized",
          "[pipeline][sequential][real_data]") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  pare::llama_model m = pare::llama_model::from_llama2c(ck);
  const auto windows = calib_windows(tok, 4, 128);
  const pare::quant_config cfg = pare::quant_config::parse("int3:per_channel:sym");  // coarse: later inputs must change
  const pare::llama_model fp32 = pare::llama_model::from_llama2c(ck);

  pare::linear_input_options stats;
  stats.xtx = true;
  stats.channel_stats = true;
  std::vector<std::string> seen;
  std::size_t changed_by_prefix = 0;
  auto solve = [&](pare::llama_model& mm, const std::vector<std::string>& names, const pare::linear_input_stats& in) {
    INFO(names.front());
    const std::vector<double> want = full_forward_xtx(mm, windows, names.front());
    CHECK(max_rel_diff(in.xtx, want) <= 1e-12);
    CHECK(in.tokens == 128 + 121 + 114 + 107);
    // The prefix matters: the same capture on the unquantized model differs after the first group.
    if (max_rel_diff(full_forward_xtx(fp32, windows, names.front()), want) > 1e-3) ++changed_by_prefix;
    for (const std::string& n : names) {
      seen.push_back(n);
      pare::quantize_linears(mm, cfg, [&](const std::string& x) { return x == n; });
    }
  };
  std::vector<std::size_t> progress;
  pare::sequential_linears(m, windows, stats, solve, {}, [&](std::size_t d, std::size_t t) {
    CHECK(t == 21);
    progress.push_back(d);
  });
  CHECK(progress.size() == 21);
  REQUIRE(seen.size() == 36);
  CHECK(seen.front() == "blk.0.attn_q.weight");
  CHECK(seen[3] == "blk.0.attn_output.weight");
  CHECK(seen.back() == "output.weight");
  CHECK(changed_by_prefix == 20);  // every group but the first sees the quantized prefix

  // A selection skips groups but still advances through their blocks.
  pare::llama_model m2 = pare::llama_model::from_llama2c(ck);
  std::vector<std::string> picked;
  pare::sequential_linears(
      m2, windows, stats,
      [&](pare::llama_model&, const std::vector<std::string>& names, const pare::linear_input_stats&) {
        picked.insert(picked.end(), names.begin(), names.end());
      },
      [](const std::string& n) { return n.find("ffn_up") != std::string::npos || n == "blk.2.attn_v.weight"; });
  CHECK(picked == std::vector<std::string>{"blk.0.ffn_up.weight", "blk.1.ffn_up.weight", "blk.2.attn_v.weight",
                                           "blk.2.ffn_up.weight", "blk.3.ffn_up.weight", "blk.4.ffn_up.weight"});
}

TEST_CASE("block_sequence and the block-wise session calls refuse bad input", "[pipeline][sequential][real_data]") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const pare::llama_model m = pare::llama_model::from_llama2c(ck);
  using windows = std::vector<std::vector<std::int32_t>>;
  CHECK_THROWS_AS(pare::block_sequence(m, windows{}), pare::argument_error);
  CHECK_THROWS_AS(pare::block_sequence(m, windows{{1, 2}, {}}), pare::argument_error);
  CHECK_THROWS_AS(pare::block_sequence(m, windows{std::vector<std::int32_t>(std::size_t(m.config.seq_len) + 1, 1)}),
                  pare::argument_error);
  CHECK_THROWS_AS(pare::block_sequence(m, windows{{1, m.config.vocab_size}}), pare::argument_error);
  pare::llama_session s(m);
  std::vector<float> x(std::size_t(m.config.dim) * 2, 0.5f);
  CHECK_THROWS_AS(s.forward_block(m.blocks.size(), x.data(), 2), pare::argument_error);
  CHECK_THROWS_AS(s.forward_block(0, x.data(), std::size_t(m.config.seq_len) + 1), pare::argument_error);
  std::vector<float> logits;
  CHECK_THROWS_AS(s.forward_head(x.data(), 0, logits), pare::argument_error);
  CHECK(s.pos() == 0);
}
