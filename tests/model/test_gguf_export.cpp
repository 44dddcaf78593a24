// llama2.c → GGUF conversion: byte-identical to ggml-org's stories260K.gguf (context 2048); the default keeps the checkpoint's 512.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "pare/model/export_gguf.hpp"
#include "pare/model/load.hpp"
#include "pare_test_support.hpp"

TEST_CASE("stories260K.bin + tok512.bin converted to GGUF equal stories260K.gguf") {
  const auto ck = pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin"));
  const auto tok = pare::load_llama2c_tokenizer(pare_test::data_path("models/tok512.bin"), 512);
  const std::string out = (std::filesystem::temp_directory_path() / ("pare_conv_" + std::to_string(::getpid()) + ".gguf")).string();
  auto read_all = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::vector<char>((std::istreambuf_iterator<char>(in)), {});
  };
  pare::llama2c_gguf_options o;
  o.context_length = 2048;
  pare::write_llama2c_as_gguf(ck, tok, out, o);
  CHECK(read_all(out) == read_all(pare_test::data_path("models/stories260K.gguf")));
  pare::write_llama2c_as_gguf(ck, tok, out);  // default: the checkpoint's seq_len
  const auto g = pare::gguf_file::open(out);
  CHECK(g.get<int>("llama.context_length") == 512);
  const auto ref = pare::gguf_file::open(pare_test::data_path("models/stories260K.gguf"));
  for (const auto& t : ref.tensors()) {
    const auto& u = g.tensor(t.name);
    REQUIRE(u.bytes == t.bytes);
    CHECK(std::memcmp(u.data, t.data, t.bytes) == 0);
  }
  std::filesystem::remove(out);
}
