// Tests of the llama2.c checkpoint reader on the real stories260K.bin and on truncated or corrupted copies of it.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "io_test_support.hpp"
#include "pare/io/llama2c.hpp"
#include "pare_test_support.hpp"

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using io_test::message_of;
using io_test::stories_bytes;
using io_test::temp_dir;

std::string model_path() { return pare_test::data_path("models/stories260K.bin"); }

/// One tensor of the independent oracle: its GGUF name, shape and byte offset.
struct oracle_tensor {
  std::string name;
  std::vector<std::size_t> shape;
  std::size_t offset;
  std::size_t count() const {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
  }
};

/// The stories260K layout written out by hand from data/README.md, in file order:
/// dim 64, hidden 172, 5 layers, kv_dim 32, vocab 512, shared classifier.
std::vector<oracle_tensor> stories_layout() {
  const std::size_t L = 5, dim = 64, hid = 172, kv = 32, vocab = 512;
  std::vector<oracle_tensor> t;
  std::size_t off = 28;
  auto put = [&](const std::string& name, std::vector<std::size_t> shape) {
    t.push_back({name, shape, off});
    off += 4 * t.back().count();
  };
  auto stacked = [&](const char* kind, std::vector<std::size_t> shape) {
    for (std::size_t l = 0; l < L; ++l) put("blk." + std::to_string(l) + "." + kind + ".weight", shape);
  };
  put("token_embd.weight", {vocab, dim});
  stacked("attn_norm", {dim});
  stacked("attn_q", {dim, dim});
  stacked("attn_k", {kv, dim});
  stacked("attn_v", {kv, dim});
  stacked("attn_output", {dim, dim});
  stacked("ffn_norm", {dim});
  stacked("ffn_gate", {hid, dim});
  stacked("ffn_down", {dim, hid});
  stacked("ffn_up", {hid, dim});
  put("output_norm.weight", {dim});
  off += 2 * 4 * 512 * 4;  // freq_cis_real / imag [512, 4]
  REQUIRE(off == stories_bytes);
  return t;
}

const oracle_tensor& oracle(const std::string& name) {
  static const std::vector<oracle_tensor> t = stories_layout();
  for (const auto& x : t)
    if (x.name == name) return x;
  FAIL("no oracle tensor " << name);
  return t.front();
}

/// The float at byte `offset` of the file, read with std::ifstream.
float float_at(const std::string& path, std::size_t offset) {
  std::ifstream f(path, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  float v = 0;
  f.read(reinterpret_cast<char*>(&v), sizeof v);
  REQUIRE(f.gcount() == sizeof v);
  return v;
}

void set_i32(std::vector<char>& bytes, std::size_t field, std::int32_t v) {
  std::memcpy(bytes.data() + 4 * field, &v, sizeof v);
}

std::string load_error(const std::string& path) {
  return message_of<pare::format_error>([&] { pare::llama2c_checkpoint::load(path); });
}

}  // namespace

TEST_CASE("llama2c: stories260K header and config") {
  const auto ck = pare::llama2c_checkpoint::load(model_path());
  const pare::llama2c_config& c = ck.config();
  CHECK(c.dim == 64);
  CHECK(c.hidden_dim == 172);
  CHECK(c.n_layers == 5);
  CHECK(c.n_heads == 8);
  CHECK(c.n_kv_heads == 4);
  CHECK(c.vocab_size == 512);
  CHECK(c.seq_len == 512);
  CHECK(c.shared_classifier);
  CHECK(c.head_size() == 8);
  CHECK(c.kv_dim() == 32);
  CHECK(c == pare::llama2c_config{64, 172, 5, 8, 4, 512, 512, true});
  CHECK(pare::llama2c_checkpoint::file_size_for(c) == stories_bytes);
  CHECK(ck.source() == model_path());
  pare::llama2c_config bad = c;
  bad.n_kv_heads = 3;
  CHECK_THAT(message_of<pare::argument_error>([&] { pare::llama2c_checkpoint::file_size_for(bad); }),
             Contains("'cfg.n_heads'") && Contains("multiple of n_kv_heads 3"));
}

TEST_CASE("llama2c: stories260K tensor names, order and shapes") {
  const auto ck = pare::llama2c_checkpoint::load(model_path());
  const auto names = ck.tensor_names();
  // token_embd + 9 per block + output_norm; the classifier is shared, so no output.weight.
  REQUIRE(names.size() == 1 + 5 * 9 + 1);
  CHECK(names.front() == "token_embd.weight");
  CHECK(names[1] == "blk.0.attn_norm.weight");
  CHECK(names[9] == "blk.0.ffn_up.weight");
  CHECK(names[10] == "blk.1.attn_norm.weight");
  CHECK(names.back() == "output_norm.weight");
  CHECK_FALSE(ck.has_tensor("output.weight"));
  for (const auto& n : names) {
    INFO(n);
    const auto& o = oracle(n);
    const auto v = ck.tensor(n);
    REQUIRE(v.rank() == o.shape.size());
    for (std::size_t a = 0; a < v.rank(); ++a) CHECK(v.extent(a) == o.shape[a]);
    CHECK(v.is_contiguous());
    CHECK(ck.offset_of(n) == o.offset);
  }
  CHECK(ck.tensor("blk.3.attn_k.weight").shape() == pare::shape_t{32, 64});
  CHECK(ck.tensor("blk.3.ffn_down.weight").shape() == pare::shape_t{64, 172});
  CHECK(ck.tensor("blk.3.ffn_gate.weight").shape() == pare::shape_t{172, 64});

  const auto mats = ck.matrix_names();
  REQUIRE(mats.size() == 1 + 5 * 7);
  for (const auto& n : mats) {
    INFO(n);
    const auto m = ck.matrix(n);
    CHECK(m.shape() == ck.tensor(n).shape());
    CHECK(m.data() == ck.tensor(n).data());  // zero copy: both views point into one buffer
    CHECK(m.is_contiguous());
  }
  CHECK(ck.classifier().data() == ck.matrix("token_embd.weight").data());
}

TEST_CASE("llama2c: stories260K values equal an independent read of the file") {
  const std::string path = model_path();
  const auto ck = pare::llama2c_checkpoint::load(path);
  const std::vector<char> bytes = pare_test::read_file(path);
  REQUIRE(bytes.size() == stories_bytes);
  for (const auto& n : ck.tensor_names()) {
    INFO(n);
    const auto& o = oracle(n);
    const auto v = ck.tensor(n);
    const float* p = v.data();
    CHECK(p[0] == float_at(path, o.offset));
    CHECK(p[o.count() - 1] == float_at(path, o.offset + 4 * (o.count() - 1)));
    CHECK(std::memcmp(p, bytes.data() + o.offset, 4 * o.count()) == 0);  // every bit of every weight
  }
  // A few spot values through the 2-D accessors: (row, col) of [out, in] row-major.
  const auto wq = ck.matrix("blk.2.attn_q.weight");
  const std::size_t wq_off = oracle("blk.2.attn_q.weight").offset;
  CHECK(wq(5, 7) == float_at(path, wq_off + 4 * (5 * 64 + 7)));
  const auto w2 = ck.matrix("blk.4.ffn_down.weight");
  CHECK(w2(63, 171) == float_at(path, oracle("blk.4.ffn_down.weight").offset + 4 * (63 * 172 + 171)));
  // The norm weights of a trained model are not all zero and not all one.
  const auto norm = ck.tensor("blk.0.attn_norm.weight");
  bool varied = false;
  for (std::size_t i = 1; i < norm.size(); ++i) varied = varied || norm(i) != norm(0);
  CHECK(varied);
}

TEST_CASE("llama2c: from_bytes and copies hold equal tensors in their own buffers") {
  const std::vector<char> bytes = pare_test::read_file(model_path());
  const auto a = pare::llama2c_checkpoint::from_bytes(bytes.data(), bytes.size(), "stories260K in memory");
  const auto b = a;  // NOLINT(performance-unnecessary-copy-initialization): testing the copy
  CHECK(b.config() == a.config());
  CHECK(a.source() == "stories260K in memory");
  const auto ta = a.tensor("blk.1.ffn_up.weight"), tb = b.tensor("blk.1.ffn_up.weight");
  CHECK(ta.data() != tb.data());
  CHECK(std::memcmp(ta.data(), tb.data(), 4 * ta.size()) == 0);
  CHECK(reinterpret_cast<std::uintptr_t>(a.tensor("token_embd.weight").data()) % 4 == 0);
}

TEST_CASE("llama2c: unknown names and 1-D tensors are argument errors naming them") {
  const auto ck = pare::llama2c_checkpoint::load(model_path());
  CHECK_THAT(message_of<pare::argument_error>([&] { ck.tensor("blk.5.attn_q.weight"); }),
             Contains("'blk.5.attn_q.weight'") && Contains("argument 'name'"));
  CHECK_THAT(message_of<pare::argument_error>([&] { ck.matrix("nope"); }), Contains("'nope'"));
  CHECK_THAT(message_of<pare::argument_error>([&] { ck.matrix("blk.0.ffn_norm.weight"); }),
             Contains("'blk.0.ffn_norm.weight'") && Contains("2-D") && Contains("[64]"));
  CHECK_THAT(message_of<pare::argument_error>([&] { ck.tensor("output.weight"); }),
             Contains("'output.weight'") && Contains("token_embd.weight"));
  // The legacy RoPE tables are validated but not exposed.
  CHECK_THROWS_AS(ck.tensor("freq_cis_real"), pare::argument_error);
}

TEST_CASE("llama2c: a separate classifier (negative vocab_size) is output.weight") {
  std::vector<char> bytes = pare_test::read_file(model_path());
  const std::size_t embd = 28, embd_bytes = 4 * 512 * 64;
  // Append a classifier: the token embedding with every weight doubled.
  for (std::size_t i = 0; i < 512 * 64; ++i) {
    float v;
    std::memcpy(&v, bytes.data() + embd + 4 * i, 4);
    v *= 2;
    const char* p = reinterpret_cast<const char*>(&v);
    bytes.insert(bytes.end(), p, p + 4);
  }
  set_i32(bytes, 5, -512);
  temp_dir dir;
  const auto ck = pare::llama2c_checkpoint::load(dir.write("unshared.bin", bytes));
  CHECK_FALSE(ck.config().shared_classifier);
  CHECK(ck.config().vocab_size == 512);
  CHECK(ck.tensor_names().size() == 1 + 5 * 9 + 2);
  CHECK(ck.tensor_names().back() == "output.weight");
  CHECK(ck.matrix_names().size() == 1 + 5 * 7 + 1);
  CHECK(ck.offset_of("output.weight") == stories_bytes);
  const auto out = ck.matrix("output.weight");
  CHECK(out.shape() == pare::shape_t{512, 64});
  CHECK(ck.classifier().data() == out.data());
  CHECK(out(511, 63) == 2 * ck.matrix("token_embd.weight")(511, 63));
  CHECK(pare::llama2c_checkpoint::file_size_for(ck.config()) == stories_bytes + embd_bytes);

  // The same bytes with a positive vocab_size: the size fits the other layout, and the message says so.
  set_i32(bytes, 5, 512);
  CHECK_THAT(load_error(dir.write("sign.bin", bytes)),
             Contains("expected 1056540 bytes") && Contains("got 1187612") && Contains("vocab_size") &&
                 Contains("separate classifier"));
}

TEST_CASE("llama2c: truncated files are format errors naming the field or tensor and the offset") {
  const std::vector<char> bytes = pare_test::read_file(model_path());
  temp_dir dir;
  auto cut = [&](std::size_t n) {
    return dir.write("cut" + std::to_string(n) + ".bin", std::vector<char>(bytes.begin(), bytes.begin() + long(n)));
  };
  CHECK_THAT(load_error(cut(0)), Contains("0 bytes") && Contains("'dim'") && Contains("byte offset 0"));
  CHECK_THAT(load_error(cut(10)),
             Contains("10 bytes") && Contains("28-byte header") && Contains("'n_layers'") && Contains("byte offset 8"));
  CHECK_THAT(load_error(cut(27)), Contains("'seq_len'") && Contains("byte offset 24") && Contains("cut off"));
  CHECK_THAT(load_error(cut(28)), Contains("expected 1056540 bytes") && Contains("got 28") &&
                                      Contains("'token_embd.weight'") && Contains("byte offset 28"));
  const std::size_t mid = oracle("blk.2.attn_q.weight").offset + 100;
  CHECK_THAT(load_error(cut(mid)), Contains("expected 1056540 bytes") && Contains("got " + std::to_string(mid)) &&
                                       Contains("'blk.2.attn_q.weight'") &&
                                       Contains("byte offset " + std::to_string(mid)));
  CHECK_THAT(load_error(cut(stories_bytes - 1)),
             Contains("expected 1056540 bytes") && Contains("got 1056539") && Contains("freq_cis_imag"));
  // A cut exactly at a tensor boundary names the first missing tensor.
  const std::size_t boundary = oracle("output_norm.weight").offset;
  CHECK_THAT(load_error(cut(boundary)), Contains("'output_norm.weight'"));
}

TEST_CASE("llama2c: malformed headers and sizes are format errors naming the field") {
  const std::vector<char> good = pare_test::read_file(model_path());
  temp_dir dir;
  auto with_field = [&](std::size_t field, std::int32_t v) {
    std::vector<char> b = good;
    set_i32(b, field, v);
    return dir.write("f" + std::to_string(field) + "_" + std::to_string(v) + ".bin", b);
  };
  CHECK_THAT(load_error(with_field(0, -64)),
             Contains("'dim'") && Contains("byte offset 0") && Contains("positive") && Contains("-64"));
  CHECK_THAT(load_error(with_field(1, 0)), Contains("'hidden_dim'") && Contains("byte offset 4") && Contains("got 0"));
  CHECK_THAT(load_error(with_field(4, -4)), Contains("'n_kv_heads'") && Contains("byte offset 16"));
  CHECK_THAT(load_error(with_field(5, 0)), Contains("'vocab_size'") && Contains("byte offset 20"));
  CHECK_THAT(load_error(with_field(6, 0)), Contains("'seq_len'") && Contains("byte offset 24"));
  // dim 64 is not a multiple of 7 heads.
  CHECK_THAT(load_error(with_field(3, 7)),
             Contains("'dim'") && Contains("multiple of n_heads 7") && Contains("got 64"));
  // 8 heads are not a multiple of 3 kv heads.
  CHECK_THAT(load_error(with_field(4, 3)),
             Contains("'n_heads'") && Contains("byte offset 12") && Contains("multiple of n_kv_heads 3"));
  // 64 / 64 heads = head size 1: RoPE needs pairs.
  CHECK_THAT(load_error(with_field(3, 64)), Contains("'dim'") && Contains("even") && Contains("128"));
  // A valid header whose layout needs other sizes: 6 layers.
  CHECK_THAT(load_error(with_field(2, 6)), Contains("expected 1238300 bytes") && Contains("got 1056540"));

  // One extra byte.
  std::vector<char> longer = good;
  longer.push_back('\0');
  CHECK_THAT(load_error(dir.write("longer.bin", longer)),
             Contains("expected 1056540 bytes") && Contains("got 1056541") && Contains("1 trailing byte"));

  // Sizes that overflow 64 bits: w1 alone is 2^30 layers x 2^60 elements.
  std::vector<char> huge(good.begin(), good.begin() + 28);
  set_i32(huge, 0, 1 << 30);
  set_i32(huge, 1, 1 << 30);
  set_i32(huge, 2, 1 << 30);
  set_i32(huge, 3, 1 << 20);
  set_i32(huge, 4, 1 << 20);
  CHECK_THAT(load_error(dir.write("huge.bin", huge)), Contains("overflow"));
  // Large but representable sizes are compared, never allocated.
  std::vector<char> big(good.begin(), good.begin() + 28);
  set_i32(big, 0, 1 << 16);
  set_i32(big, 1, 1 << 16);
  set_i32(big, 2, 1 << 10);
  CHECK_THAT(load_error(dir.write("big.bin", big)), Contains("got 28") && Contains("'token_embd.weight'"));

  // from_bytes validates the same way.
  CHECK_THROWS_AS(pare::llama2c_checkpoint::from_bytes(good.data(), good.size() - 4), pare::format_error);
}

TEST_CASE("llama2c: unreadable paths are io errors naming the path") {
  const std::string missing = pare_test::data_path("models/no-such-checkpoint.bin");
  CHECK_THAT(message_of<pare::io_error>([&] { pare::llama2c_checkpoint::load(missing); }), Contains(missing));
  temp_dir dir;
  CHECK_THAT(message_of<pare::io_error>([&] { pare::llama2c_checkpoint::load(dir.path.string()); }),
             Contains(dir.path.string()) && Contains("directory"));
}
