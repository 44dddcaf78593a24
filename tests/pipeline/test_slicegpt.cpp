// SliceGPT on stories260K: rotation alone keeps the function, sliced models match a float64 oracle, PCA beats deleting raw dimensions, global slices round-trip through GGUF.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "model/llama_oracle.hpp"
#include "pare/model/export_model_gguf.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/pipeline/slicegpt.hpp"
#include "pare_test_support.hpp"

#include <unistd.h>

namespace {

struct slicegpt_fixture {
  pare::llama2c_checkpoint ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  pare::tokenizer tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  std::vector<std::vector<std::int32_t>> calib;  // calibration windows (the sample text)
  std::vector<std::int32_t> eval;                // evaluation tokens (validation text, not used for calibration)
  slicegpt_fixture() {
    const std::vector<char> c = pare_test::read_file(pare_test::data_path("text/tinystories_sample_cs336.txt"));
    const std::vector<std::int32_t> ct = pare::protocol_tokens(tok, std::string(c.begin(), c.end()));
    for (std::size_t at = 0; at < ct.size(); at += 512)
      calib.emplace_back(ct.begin() + long(at), ct.begin() + long(std::min(ct.size(), at + 512)));
    const std::vector<char> e = pare_test::read_file(pare_test::data_path("text/tinystories_val_head.txt"));
    const std::vector<std::int32_t> et = pare::protocol_tokens(tok, std::string(e.begin(), e.end()));
    eval.assign(et.begin(), et.begin() + 4096);
  }
  pare::llama_model model() const { return pare::llama_model::from_llama2c(ck); }
  double ppl(const pare::llama_model& m) const { return pare::perplexity(m, eval, nullptr, 512).ppl; }
};

std::vector<float> all_logits(const pare::llama_model& m, const std::vector<std::int32_t>& toks) {
  pare::llama_session s(m);
  std::vector<float> lg;
  s.forward(toks.data(), toks.size(), lg, true);
  return lg;
}

}  // namespace

TEST_CASE("principal_axes: eigenpairs of a covariance against float64 identities", "[model][slicegpt]") {
  // C = Σ xᵀx of 300 correlated random vectors in 12 dimensions.
  const std::size_t n = 12, rows = 300;
  std::vector<double> x(rows * n);
  std::uint32_t s = 12345;
  auto rnd = [&] { return (s = s * 1664525u + 1013904223u) / 4294967296.0 - 0.5; };
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < n; ++j) x[r * n + j] = rnd() * double(j + 1) + (j ? 0.5 * x[r * n + j - 1] : 0.0);
  std::vector<double> c(n * n, 0.0);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) c[i * n + j] += x[r * n + i] * x[r * n + j];
  const pare::principal_axes_result pa = pare::principal_axes(c, n);
  double trace = 0;
  for (std::size_t i = 0; i < n; ++i) trace += c[i * n + i];
  double sum = 0;
  for (std::size_t j = 0; j < n; ++j) {
    if (j) CHECK(pa.eigenvalues[j] <= pa.eigenvalues[j - 1]);
    sum += pa.eigenvalues[j];
    for (std::size_t k = 0; k < n; ++k) {  // QᵀQ = I
      double dot = 0;
      for (std::size_t i = 0; i < n; ++i) dot += pa.q[i * n + j] * pa.q[i * n + k];
      CHECK(dot == Approx(j == k ? 1.0 : 0.0).margin(1e-12));
    }
    for (std::size_t i = 0; i < n; ++i) {  // C·q_j = λ_j·q_j
      double cq = 0;
      for (std::size_t k = 0; k < n; ++k) cq += c[i * n + k] * pa.q[k * n + j];
      CHECK(cq == Approx(pa.eigenvalues[j] * pa.q[i * n + j]).margin(1e-9 * pa.eigenvalues[0]));
    }
  }
  CHECK(sum == Approx(trace).epsilon(1e-12));
  CHECK(pa.energy(n) == Approx(1.0));
  CHECK(pa.energy(1) == Approx(pa.eigenvalues[0] / trace));
  // Damping adds δ·mean(diag) to every eigenvalue.
  const pare::principal_axes_result pd = pare::principal_axes(c, n, 0.01);
  for (std::size_t j = 0; j < n; ++j) CHECK(pd.eigenvalues[j] == Approx(pa.eigenvalues[j] + 0.01 * trace / double(n)));
  CHECK_THROWS_AS(pare::principal_axes(c, n + 1), pare::shape_error);
  CHECK_THROWS_AS(pare::principal_axes(c, n, -1.0), pare::argument_error);
  c[5] = NAN;
  CHECK_THROWS_AS(pare::principal_axes(c, n), pare::argument_error);
}

TEST_CASE("SliceGPT: rotation without slicing keeps the model's function", "[model][slicegpt]") {
  const slicegpt_fixture f;
  const pare::llama_model base = f.model();
  const std::vector<std::int32_t> toks(f.eval.begin(), f.eval.begin() + 200);
  const std::vector<float> want = all_logits(base, toks);
  for (auto mode : {pare::slicegpt_options::rotation::per_point, pare::slicegpt_options::rotation::global}) {
    INFO("global " << (mode == pare::slicegpt_options::rotation::global));
    pare::llama_model m = f.model();
    const pare::slicegpt_report r = pare::slice_model(m, f.calib, {0.0, mode});
    CHECK(r.new_dim == 64);
    CHECK(m.config.dim == 64);
    CHECK_FALSE(m.tied_classifier);
    for (double v : r.kept_variance) CHECK(v == Approx(1.0));
    const std::vector<float> got = all_logits(m, toks);
    REQUIRE(got.size() == want.size());
    double max_abs = 0, max_diff = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      max_abs = std::max(max_abs, double(std::fabs(want[i])));
      max_diff = std::max(max_diff, double(std::fabs(got[i] - want[i])));
    }
    CHECK(max_diff <= 1e-4 * max_abs);  // float rounding through the rotations only
  }
}

TEST_CASE("SliceGPT: sliced models run as the float64 oracle says and beat deleting raw dimensions", "[model][slicegpt]") {
  const slicegpt_fixture f;
  const double base_ppl = f.ppl(f.model());
  const std::vector<std::int32_t> toks(f.eval.begin(), f.eval.begin() + 48);
  double ppl10 = 0, ppl25 = 0;
  for (double fraction : {0.10, 0.25}) {
    INFO("fraction " << fraction);
    pare::llama_model m = f.model();
    const pare::slicegpt_report r = pare::slice_model(m, f.calib, {fraction});
    const std::size_t d = fraction == 0.10 ? 58 : 48;
    CHECK(r.new_dim == d);
    CHECK(m.config.dim == int(d));
    CHECK(m.config.head_size() == 8);  // attention keeps its width
    CHECK(m.config.decoupled_heads());
    const pare::llama_block& b = m.blocks[0];
    CHECK(b.wq->in_features() == d);
    CHECK(b.wq->out_features() == 64);
    CHECK(b.wo->out_features() == d);
    CHECK(b.wo->in_features() == 64);
    CHECK(b.w2->out_features() == d);
    REQUIRE(b.attn_shortcut);
    CHECK(b.attn_shortcut->in_features() == d);
    // Weights: 5 blocks of (wq 64d + wk,wv 32d + wo 64d + 3·172d + shortcuts 2d² + norms 2d),
    // embedding and head 512d each, output norm d.
    const std::size_t want = 5 * (64 * d + 2 * 32 * d + 64 * d + 3 * 172 * d + 2 * d * d + 2 * d) + 2 * 512 * d + d;
    CHECK(r.weights_after == want);
    CHECK(m.weight_count() == want);
    CHECK(r.weights_before == pare::llama_model::from_llama2c(f.ck).weight_count());
    CHECK(r.kept_variance.size() == 11);
    for (double v : r.kept_variance) {
      CHECK(v < 1.0);
      CHECK(v > 0.5);
    }
    // The session (decoupled head width, residual linears) against the float64 oracle.
    const std::vector<float> got = all_logits(m, toks);
    const auto oracle = oracle_logits(m, toks);
    double max_abs = 0, max_diff = 0;
    for (std::size_t t = 0; t < toks.size(); ++t)
      for (std::size_t v = 0; v < 512; ++v) {
        max_abs = std::max(max_abs, std::fabs(oracle[t][v]));
        max_diff = std::max(max_diff, std::fabs(double(got[t * 512 + v]) - oracle[t][v]));
      }
    CHECK(max_diff <= 1e-4 * max_abs);
    const double ppl = f.ppl(m);
    CHECK(ppl > base_ppl);
    (fraction == 0.10 ? ppl10 : ppl25) = ppl;
  }
  CHECK(ppl10 < ppl25);
  // The principal axes matter: slicing the same width in the original coordinates (Q = I, the
  // last 16 raw dimensions deleted; gains folded as SliceGPT does) is far worse.
  pare::llama_model raw = f.model();
  {
    // Build the raw-coordinate slice by hand: columns 0..47 of every reading weight, rows of
    // every writing weight, gains folded and rescaled the same way.
    const std::size_t d = 48;
    const float g = std::sqrt(64.0f / 48.0f);
    auto cols = [&](const pare::linear_layer& l, const std::vector<float>* gain) {
      std::vector<float> w(l.out_features() * 64), o(l.out_features() * d);
      l.dense_weights(pare::matrix_view<float>(w.data(), l.out_features(), 64));
      for (std::size_t r = 0; r < l.out_features(); ++r)
        for (std::size_t j = 0; j < d; ++j) o[r * d + j] = w[r * 64 + j] * (gain ? (*gain)[j] : 1.0f);
      return std::make_unique<pare::dense_linear>(pare::matrix_view<const float>(o.data(), l.out_features(), d));
    };
    auto rows = [&](const pare::linear_layer& l) {
      std::vector<float> w(64 * l.in_features());
      l.dense_weights(pare::matrix_view<float>(w.data(), 64, l.in_features()));
      return std::make_unique<pare::dense_linear>(pare::matrix_view<const float>(w.data(), d, l.in_features()));
    };
    for (pare::llama_block& b : raw.blocks) {
      b.wq = cols(*b.wq, &b.attn_norm);
      b.wk = cols(*b.wk, &b.attn_norm);
      b.wv = cols(*b.wv, &b.attn_norm);
      b.wo = rows(*b.wo);
      b.w1 = cols(*b.w1, &b.ffn_norm);
      b.w3 = cols(*b.w3, &b.ffn_norm);
      b.w2 = rows(*b.w2);
      b.attn_norm.assign(d, g);
      b.ffn_norm.assign(d, g);
    }
    auto head = cols(*raw.output, &raw.output_norm);
    pare::aligned_buffer<float> e(512 * d);
    for (std::size_t r = 0; r < 512; ++r)
      for (std::size_t j = 0; j < d; ++j) e[r * d + j] = raw.token_embd[r * 64 + j];
    raw.token_embd = std::move(e);
    raw.output = std::move(head);
    raw.output_norm.assign(d, g);
    raw.tied_classifier = false;
    raw.config.head_dim = 8;
    raw.config.dim = int(d);
    raw.config.norm_eps = raw.config.norm_eps * 64.0f / 48.0f;  // as slice_model rescales it
  }
  const double raw_ppl = f.ppl(raw);
  // The one-pass variant (all bases from the unsliced model's signals) also slices.
  pare::llama_model one_pass = f.model();
  pare::slicegpt_options o;
  o.sequential = false;
  const pare::slicegpt_report r1 = pare::slice_model(one_pass, f.calib, o);
  CHECK(r1.new_dim == 48);
  const double ppl25_one_pass = f.ppl(one_pass);
  INFO("base " << base_ppl << " sliced 10% " << ppl10 << " 25% " << ppl25 << " (one pass " << ppl25_one_pass
               << ") raw 25% " << raw_ppl);
  CHECK(ppl25 < raw_ppl);
  CHECK(ppl25_one_pass < raw_ppl);
  CHECK(ppl25 - base_ppl < 0.5 * (raw_ppl - base_ppl));
}

TEST_CASE("SliceGPT: a globally rotated slice is a plain LLaMA that round-trips through GGUF", "[model][slicegpt]") {
  const slicegpt_fixture f;
  pare::llama_model m = f.model();
  const pare::slicegpt_report r = pare::slice_model(m, f.calib, {0.25, pare::slicegpt_options::rotation::global});
  CHECK(r.new_dim == 48);
  for (const pare::llama_block& b : m.blocks) CHECK_FALSE(b.has_shortcuts());
  const double ppl_global = f.ppl(m);
  CHECK(std::isfinite(ppl_global));
  const std::string path = (std::filesystem::temp_directory_path() / ("pare_slicegpt_" + std::to_string(::getpid()) + ".gguf")).string();
  pare::write_model_gguf(m, f.tok, path);
  const pare::gguf_file g = pare::gguf_file::open(path);
  CHECK(g.get<int>("llama.embedding_length") == 48);
  CHECK(g.get<int>("llama.attention.key_length") == 8);
  CHECK(g.get<int>("llama.attention.value_length") == 8);
  const pare::llama_model back = pare::llama_model_from_gguf(g);
  CHECK(back.config.dim == 48);
  CHECK(back.config.head_size() == 8);
  CHECK(back.config.norm_eps == m.config.norm_eps);
  const std::vector<std::int32_t> toks(f.eval.begin(), f.eval.begin() + 64);
  CHECK(all_logits(back, toks) == all_logits(m, toks));  // f32 tensors: bit-identical
  std::remove(path.c_str());

  // Per-point slices carry residual linears, which GGUF cannot hold: refused, no file written.
  pare::llama_model pp = f.model();
  (void)pare::slice_model(pp, f.calib, {0.25});
  CHECK_THROWS_AS(pare::write_model_gguf(pp, f.tok, path), pare::unsupported_error);
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_THROWS_AS(pare::llama_params<double>::from_model(pp), pare::unsupported_error);
}

TEST_CASE("SliceGPT: bad arguments are errors that change nothing", "[model][slicegpt]") {
  const slicegpt_fixture f;
  pare::llama_model m = f.model();
  const std::size_t before = m.weight_count();
  CHECK_THROWS_AS(pare::slice_model(m, f.calib, {1.0}), pare::argument_error);
  CHECK_THROWS_AS(pare::slice_model(m, f.calib, {-0.1}), pare::argument_error);
  CHECK_THROWS_AS(pare::slice_model(m, {}, {0.25}), pare::argument_error);
  pare::slicegpt_options o;
  o.round_to = 0;
  CHECK_THROWS_AS(pare::slice_model(m, f.calib, o), pare::argument_error);
  o.round_to = 128;
  CHECK_THROWS_AS(pare::slice_model(m, f.calib, o), pare::argument_error);  // nothing left
  o.round_to = 8;
  o.fraction = 0.1;
  pare::llama_model r8 = f.model();
  CHECK(pare::slice_model(r8, f.calib, o).new_dim == 56);  // 58 rounded down to a multiple of 8
  CHECK(m.weight_count() == before);
  CHECK(m.config.dim == 64);
  // Compressed layers are refused (slice first, then quantize).
  pare::llama_model q = f.model();
  (void)pare::quantize_linears(q, pare::quant_config::parse("int8:per_channel:sym"), {});
  CHECK_THROWS_AS(pare::slice_model(q, f.calib, {0.25}), pare::unsupported_error);
  CHECK(q.config.dim == 64);
  (void)pare::slice_model(m, f.calib, {0.1});
  CHECK_THROWS_AS(pare::slice_model(m, f.calib, {0.1}), pare::unsupported_error);  // sliced already
}
