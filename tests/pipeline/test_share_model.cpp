// Weight sharing on the real model: kmeans_linears / hash_linears on stories260K, perplexity against fp32, storage, tied classifier, error paths.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/share_linears.hpp"
#include "pare/model/surgery.hpp"
#include "pare_test_support.hpp"

namespace {

struct share_fixture {
  pare::llama2c_checkpoint ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  pare::tokenizer tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), ck.config().vocab_size);
  std::vector<std::int32_t> tokens;
  share_fixture() {
    const std::vector<char> text = pare_test::read_file(pare_test::data_path("text/tinystories_val_head.txt"));
    tokens = pare::protocol_tokens(tok, std::string(text.begin(), text.end()));
    if (tokens.size() > 20000) tokens.resize(20000);
  }
};

/// Stored bits per weight over the linear layers (codebooks / shared values included).
double linear_bits_per_weight(const pare::llama_model& m) {
  double bytes = 0, n = 0;
  for (const std::string& name : m.linear_names()) {
    const pare::linear_layer& l = m.linear(name);
    bytes += double(l.storage_bytes());
    n += double(l.in_features() * l.out_features());
  }
  return 8.0 * bytes / n;
}

}  // namespace

TEST_CASE("kmeans_linears 4-bit per-tensor on stories260K: perplexity close to fp32, ~4 bits per weight", "[share][real_data]") {
  share_fixture f;
  REQUIRE(f.tokens.size() == 20000);
  pare::llama_model fp = pare::llama_model::from_llama2c(f.ck);
  const pare::perplexity_result p32 = pare::perplexity(fp, f.tokens, nullptr, 512);

  pare::llama_model m = pare::llama_model::from_llama2c(f.ck);
  const auto changes = pare::kmeans_linears(m, "kmeans:4bit");
  REQUIRE(changes.size() == m.linear_names().size());
  for (const auto& c : changes) {
    CHECK(c.format == "kmeans:4bit:per_tensor:iters=100:seed=0");
    CHECK(c.backend == "f32 (dequantized)");
    CHECK_FALSE(c.fallback);
    const auto* cl = dynamic_cast<const pare::codebook_linear*>(&m.linear(c.name));
    REQUIRE(cl != nullptr);
    CHECK(cl->tensor().codebooks.size() == 16);
    CHECK(cl->bits_per_weight() > 4.0);
    CHECK(cl->bits_per_weight() < 4.3);  // 16 fp32 centroids: +0.125 (64×64), +0.25 (32×64)
  }
  // Tied classifier: the embedding rows are the shared classifier rows (one stored tensor).
  {
    const auto emb = pare::get_tensor(m, "token_embd.weight");
    std::vector<float> cls(emb.size());
    m.output->dense_weights(pare::matrix_view<float>(cls.data(), emb.shape()[0], emb.shape()[1]));
    CHECK(std::equal(cls.begin(), cls.end(), emb.data()));
  }
  const pare::perplexity_result pk = pare::perplexity(m, f.tokens, nullptr, 512);
  const double bpw = linear_bits_per_weight(m);
  const double model_bpw = 8.0 * double(m.storage_bytes()) / double(m.weight_count());
  std::printf("stories260K, %zu predicted tokens: fp32 PPL %.4f | kmeans:4bit per-tensor PPL %.4f (%+.2f %%), "
              "%.4f bits/weight over the linears (codebooks included), %.4f bits/weight over the whole model "
              "(fp32 norms), %zu -> %zu bytes\n",
              pk.predicted, p32.ppl, pk.ppl, 100.0 * (pk.ppl / p32.ppl - 1.0), bpw, model_bpw, fp.storage_bytes(),
              m.storage_bytes());
  // Context only (not asserted): uniform RTN int4 per-tensor and per-channel on the same tokens.
  for (const char* q : {"int4:per_tensor:asym", "int4:per_channel:asym"}) {
    pare::llama_model r = pare::llama_model::from_llama2c(f.ck);
    pare::quantize_linears(r, pare::quant_config::parse(q));
    std::printf("  for comparison, RTN %s: PPL %.4f, %.4f bits/weight over the linears\n", q,
                pare::perplexity(r, f.tokens, nullptr, 512).ppl, linear_bits_per_weight(r));
  }
  CHECK(pk.predicted == p32.predicted);
  CHECK(std::isfinite(pk.ppl));
  CHECK(pk.ppl > p32.ppl);
  CHECK(pk.ppl < 2.0 * p32.ppl);
  CHECK(bpw > 4.0);
  CHECK(bpw < 4.1);
  CHECK(m.storage_bytes() < fp.storage_bytes() / 6);
}

TEST_CASE("kmeans_linears per-row and hash_linears on stories260K", "[share][real_data]") {
  share_fixture f;
  f.tokens.resize(4000);
  pare::llama_model fp = pare::llama_model::from_llama2c(f.ck);
  const double p32 = pare::perplexity(fp, f.tokens, nullptr, 512).ppl;

  pare::llama_model row = pare::llama_model::from_llama2c(f.ck);
  pare::kmeans_linears(row, "kmeans:4bit:per_row");
  const double prow = pare::perplexity(row, f.tokens, nullptr, 512).ppl;
  pare::llama_model tensor = pare::llama_model::from_llama2c(f.ck);
  pare::kmeans_linears(tensor, "kmeans:4bit");
  const double ptensor = pare::perplexity(tensor, f.tokens, nullptr, 512).ppl;

  pare::llama_model hashed = pare::llama_model::from_llama2c(f.ck);
  const auto hc = pare::hash_linears(hashed, "hash:x2:seed=1", [](const std::string& n) { return n.find("ffn_") != std::string::npos; });
  CHECK(hc.size() == 15);
  const double phash = pare::perplexity(hashed, f.tokens, nullptr, 512).ppl;
  std::printf("stories260K, first 4000 tokens: fp32 PPL %.4f | kmeans:4bit per-tensor %.4f (%.3f bits/weight) | "
              "kmeans:4bit per-row %.4f (%.3f bits/weight) | hash:x2 on the FFNs %.4f\n",
              p32, ptensor, linear_bits_per_weight(tensor), prow, linear_bits_per_weight(row), phash);
  CHECK(std::isfinite(prow));
  CHECK(prow > p32);
  CHECK(prow < 2.0 * p32);
  CHECK(std::isfinite(phash));
  CHECK(phash > p32);
  // Per-row codebooks fit each row better than one shared codebook.
  double e_row = 0, e_tensor = 0;
  for (const std::string& name : row.linear_names()) {
    e_row += dynamic_cast<const pare::codebook_linear&>(row.linear(name)).tensor().sse;
    e_tensor += dynamic_cast<const pare::codebook_linear&>(tensor.linear(name)).tensor().sse;
  }
  CHECK(e_row < e_tensor);
}

TEST_CASE("kmeans_linears: a bad spec changes nothing, selection is honoured", "[share]") {
  share_fixture f;
  pare::llama_model m = pare::llama_model::from_llama2c(f.ck);
  const auto before = pare::get_tensor(m, "blk.0.attn_q.weight");
  CHECK_THROWS_AS(pare::kmeans_linears(m, "kmeans:9bit"), pare::argument_error);
  CHECK_THROWS_AS(pare::kmeans_linears(m, "kmeans:4bit:oops"), pare::argument_error);
  CHECK_THROWS_AS(pare::hash_linears(m, "hash:0"), pare::argument_error);
  for (const std::string& name : m.linear_names()) CHECK(m.linear(name).format() == "f32");
  const bool unchanged = pare::get_tensor(m, "blk.0.attn_q.weight") == before;
  CHECK(unchanged);

  const auto ch = pare::kmeans_linears(m, "kmeans:2bit", [](const std::string& n) { return n == "blk.1.ffn_down.weight"; });
  REQUIRE(ch.size() == 1);
  CHECK(ch[0].name == "blk.1.ffn_down.weight");
  CHECK(m.linear("blk.1.ffn_down.weight").format() == "kmeans:2bit:per_tensor:iters=100:seed=0");
  CHECK(m.linear("blk.1.ffn_down.weight").storage_bytes() == 4 * 4 + 64 * 172 / 4);
  CHECK(m.linear("blk.1.ffn_up.weight").format() == "f32");
  CHECK(m.output->format() == "f32");
}
