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
  const auto c = ck.config();
  const std::size_t dim = c.dim, hs = dim / c.n_heads, hid = c.hidden_dim, vocab = c.vocab_size;
  auto W = [&](const std::string& n) { return ck.matrix(n); };
  double nll = 0;
  for (std::size_t b = 0; b < toks.size(); b += 512) {
    const std::size_t n = std::min<std::size_t>(512, toks.size() - b);
    std::vector<std::vector<double>> x(n, std::vector<double>(dim)), kc(c.n_layers * n), vc(c.n_layers * n);
    for (std::size_t t = 0; t < n; ++t)
      for (std::size_t i = 0; i < dim; ++i) x[t][i] = W("token_embd.weight")(toks[b + t], i);
    auto mv = [](const pare::matrix_view<const float>& w, const std::vector<double>& v) {
      std::vector<double> y(w.rows(), 0.0);
      for (std::size_t i = 0; i < w.rows(); ++i) {
        const float* r = w.row_ptr(i);
        double s = 0;
        for (std::size_t j = 0; j < w.cols(); ++j) s += double(r[j]) * v[j];
        y[i] = s;
      }
      return y;
    };
    auto norm = [&](const std::vector<double>& v, const std::string& g) {
      const auto gw = ck.tensor(g);
      double ss = 0;
      for (double e : v) ss += e * e;
      const double q = 1.0 / std::sqrt(ss / double(v.size()) + 1e-5);
      std::vector<double> y(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) y[i] = double(gw(i)) * v[i] * q;
      return y;
    };
    auto rope = [&](std::vector<double>& v, std::size_t pos) {
      for (std::size_t i = 0; i < v.size(); i += 2) {
        const double ang = double(pos) * std::pow(10000.0, -double(i % hs) / double(hs));
        const double p0 = v[i], p1 = v[i + 1];
        v[i] = p0 * std::cos(ang) - p1 * std::sin(ang);
        v[i + 1] = p0 * std::sin(ang) + p1 * std::cos(ang);
      }
    };
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      std::vector<std::vector<double>> q(n), k(n), v(n);
      for (std::size_t t = 0; t < n; ++t) {
        const auto xb = norm(x[t], p + "attn_norm.weight");
        q[t] = mv(W(p + "attn_q.weight"), xb);
        k[t] = mv(W(p + "attn_k.weight"), xb);
        v[t] = mv(W(p + "attn_v.weight"), xb);
        rope(q[t], t);
        rope(k[t], t);
      }
      for (std::size_t t = 0; t < n; ++t) {
        std::vector<double> att(dim, 0.0), s(t + 1);
        for (int h = 0; h < c.n_heads; ++h) {
          const std::size_t kh = h / (c.n_heads / c.n_kv_heads);
          double mx = -1e300, z = 0;
          for (std::size_t u = 0; u <= t; ++u) {
            double d = 0;
            for (std::size_t i = 0; i < hs; ++i) d += q[t][h * hs + i] * k[u][kh * hs + i];
            s[u] = d / std::sqrt(double(hs));
            mx = std::max(mx, s[u]);
          }
          for (std::size_t u = 0; u <= t; ++u) z += (s[u] = std::exp(s[u] - mx));
          for (std::size_t u = 0; u <= t; ++u)
            for (std::size_t i = 0; i < hs; ++i) att[h * hs + i] += s[u] / z * v[u][kh * hs + i];
        }
        const auto o = mv(W(p + "attn_output.weight"), att);
        for (std::size_t i = 0; i < dim; ++i) x[t][i] += o[i];
        const auto xb = norm(x[t], p + "ffn_norm.weight");
        auto g = mv(W(p + "ffn_gate.weight"), xb);
        const auto up = mv(W(p + "ffn_up.weight"), xb);
        for (std::size_t i = 0; i < hid; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * up[i];
        const auto d = mv(W(p + "ffn_down.weight"), g);
        for (std::size_t i = 0; i < dim; ++i) x[t][i] += d[i];
      }
    }
    for (std::size_t t = 0; t + 1 < n; ++t) {
      const auto lg = mv(W("token_embd.weight"), norm(x[t], "output_norm.weight"));
      double mx = -1e300, z = 0;
      for (double e : lg) mx = std::max(mx, e);
      for (double e : lg) z += std::exp(e - mx);
      nll += std::log(z) - (lg[toks[b + t + 1]] - mx);
    }
    (void)vocab;
  }
  const double ppl64 = std::exp(nll / double(r.predicted));
  INFO("pare fp32 ppl " << r.ppl << ", float64 " << ppl64);
  CHECK(r.ppl == Approx(ppl64).epsilon(1e-5));
}
