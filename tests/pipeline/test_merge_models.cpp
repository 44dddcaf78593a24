// Merging llama_models (stories260K and perturbed copies): identity properties, agreement with the checkpoint functions, mismatched architectures leave dst unchanged.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "pare/merge/average.hpp"
#include "pare/merge/task_arithmetic.hpp"
#include "pare/merge/ties.hpp"
#include "pare/pipeline/merge_models.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/model/surgery.hpp"
#include "pare_test_support.hpp"

namespace {

const pare::llama2c_checkpoint& ck() {
  static const pare::llama2c_checkpoint c = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  return c;
}

pare::llama_model load() { return pare::llama_model::from_llama2c(ck()); }

/// The model with Gaussian noise of `sigma` added to every tensor.
pare::llama_model perturbed(std::uint64_t seed, double sigma) {
  pare::llama_model m = load();
  pare::checkpoint c = pare::checkpoint_of(m);
  for (auto& [name, t] : c) {
    const std::vector<float> n = pare_test::gaussian(t.values.size(), seed + std::hash<std::string>{}(name) % 997, sigma);
    for (std::size_t e = 0; e < n.size(); ++e) t.values[e] += n[e];
  }
  pare::load_checkpoint(m, c);
  return m;
}

bool bit_equal(const pare::checkpoint& a, const pare::checkpoint& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, t] : a) {
    const auto it = b.find(name);
    if (it == b.end() || it->second.shape != t.shape) return false;
    if (std::memcmp(t.values.data(), it->second.values.data(), t.values.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("checkpoint_of / load_checkpoint round-trip a model, tied classifier follows the embedding", "[merge][model]") {
  pare::llama_model m = load();
  const pare::checkpoint c = pare::checkpoint_of(m);
  CHECK(c.size() == pare::tensor_names(m).size());
  CHECK(c.at("token_embd.weight").shape == pare::shape_t{512, 64});
  CHECK(c.at("blk.0.attn_norm.weight").shape == pare::shape_t{1, 64});
  CHECK(c.at("blk.2.ffn_down.weight").shape == pare::shape_t{64, 172});
  CHECK(c.count("output.weight") == 0);
  pare::quantize_linears(m, pare::quant_config::parse("int8:per_channel"));  // the classifier becomes int8
  pare::load_checkpoint(m, c);
  CHECK(bit_equal(pare::checkpoint_of(m), c));
  CHECK(m.output->format() == "f32");
  std::vector<float> cls(512 * 64);
  m.output->dense_weights(pare::matrix_view<float>(cls.data(), 512, 64));
  CHECK(std::memcmp(cls.data(), m.token_embd.data(), cls.size() * sizeof(float)) == 0);

  pare::checkpoint bad = c;
  bad.erase("blk.3.ffn_up.weight");
  try {
    pare::load_checkpoint(m, bad);
    FAIL("expected a throw");
  } catch (const pare::argument_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("blk.3.ffn_up.weight"));
  }
  bad = c;
  bad.emplace("blk.9.attn_q.weight", pare::checkpoint_tensor(pare::shape_t{1, 1}, {0.0f}));
  CHECK_THROWS_WITH(pare::load_checkpoint(m, bad), Catch::Contains("blk.9.attn_q.weight"));
  CHECK(bit_equal(pare::checkpoint_of(m), c));
}

TEST_CASE("models: averaging with itself and task arithmetic with lambda 0 are the identity, bit for bit", "[merge][model]") {
  pare::llama_model a = load();
  const pare::checkpoint before = pare::checkpoint_of(a);
  pare::weighted_average_into(a, {&a, &a});
  CHECK(bit_equal(pare::checkpoint_of(a), before));
  pare::weighted_average_into(a, {&a, &a, &a}, {0.2, 0.3, 0.5});
  CHECK(bit_equal(pare::checkpoint_of(a), before));
  const pare::llama_model b = perturbed(1, 0.01);
  pare::llama_model dst = load();
  pare::task_arithmetic_into(dst, a, {&b}, {0.0});
  CHECK(bit_equal(pare::checkpoint_of(dst), before));
  pare::task_arithmetic_into(dst, a, {&b}, {1.0});
  CHECK(bit_equal(pare::checkpoint_of(dst), pare::checkpoint_of(b)));
}

TEST_CASE("models: average, task arithmetic and TIES equal the checkpoint functions", "[merge][model]") {
  const pare::llama_model base = load();
  const pare::llama_model t1 = perturbed(2, 0.01), t2 = perturbed(3, 0.01);
  const pare::checkpoint cb = pare::checkpoint_of(base), c1 = pare::checkpoint_of(t1), c2 = pare::checkpoint_of(t2);
  pare::llama_model dst = load();
  pare::weighted_average_into(dst, {&t1, &t2});
  const pare::checkpoint avg = pare::checkpoint_of(dst);
  CHECK(bit_equal(avg, pare::weighted_average({&c1, &c2})));
  for (std::size_t e = 0; e < 64; ++e)
    CHECK(avg.at("blk.0.attn_q.weight").values[e] ==
          static_cast<float>((double(c1.at("blk.0.attn_q.weight").values[e]) + double(c2.at("blk.0.attn_q.weight").values[e])) / 2));
  pare::task_arithmetic_into(dst, base, {&t1, &t2}, {0.5, 0.25});
  CHECK(bit_equal(pare::checkpoint_of(dst), pare::task_arithmetic(cb, {&c1, &c2}, {0.5, 0.25})));
  pare::ties_options opt;
  opt.density = 0.2;
  pare::ties_merge_into(dst, base, {&t1, &t2}, opt);
  CHECK(bit_equal(pare::checkpoint_of(dst), pare::ties_merge(cb, {&c1, &c2}, opt)));
}

TEST_CASE("models: mismatched architectures throw naming the tensor and leave dst unchanged", "[merge][model]") {
  pare::llama_model dst = load();
  const pare::llama_model a = perturbed(4, 0.01);
  pare::llama_model shallow = load();
  pare::remove_blocks(shallow, {4});
  pare::llama_model narrow = load();
  std::vector<std::size_t> keep(100);
  for (std::size_t i = 0; i < keep.size(); ++i) keep[i] = i;
  pare::shrink_ffn(narrow, 1, keep);
  const pare::checkpoint before = pare::checkpoint_of(dst);
  const pare::ties_options opt;

  CHECK_THROWS_WITH(pare::weighted_average_into(dst, {&a, &shallow}), Catch::Contains("blk.4."));
  CHECK_THROWS_AS(pare::weighted_average_into(dst, {&a, &shallow}), pare::argument_error);
  CHECK_THROWS_WITH(pare::task_arithmetic_into(dst, a, {&shallow}, {1.0}), Catch::Contains("blk.4."));
  CHECK_THROWS_WITH(pare::ties_merge_into(dst, a, {&shallow}, opt), Catch::Contains("blk.4."));
  CHECK_THROWS_AS(pare::weighted_average_into(dst, {&a, &narrow}), pare::shape_error);
  CHECK_THROWS_WITH(pare::weighted_average_into(dst, {&a, &narrow}), Catch::Contains("blk.1.ffn_"));
  CHECK_THROWS_AS(pare::task_arithmetic_into(dst, narrow, {&a}, {1.0}), pare::shape_error);
  CHECK_THROWS_AS(pare::ties_merge_into(dst, a, {&narrow}, opt), pare::shape_error);
  // The inputs agree with each other but not with dst.
  CHECK_THROWS_WITH(pare::weighted_average_into(shallow, {&a, &a}), Catch::Contains("blk.4."));
  CHECK_THROWS_AS(pare::weighted_average_into(narrow, {&a, &a}), pare::shape_error);
  CHECK_THROWS_AS(pare::weighted_average_into(dst, {&a, nullptr}), pare::argument_error);
  CHECK(bit_equal(pare::checkpoint_of(dst), before));
  CHECK(shallow.blocks.size() == 4);
}
