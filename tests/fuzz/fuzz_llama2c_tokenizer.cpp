// libFuzzer target for the llama2.c tokenizer reader and writer: any file must load or throw pare::error, and what loads writes back as the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

#include "pare/io/llama2c_writer.hpp"
#include "pare/model/load.hpp"

// load_llama2c_tokenizer reads a path, so each input goes through a file (in /dev/shm
// when there is one). The vocabulary size is not in the file: the seed has 261 pieces.
namespace {
/// The scratch file of this process, removed at exit.
struct scratch_file {
  std::string path;
  scratch_file() {
    const char* dir = std::getenv("TMPDIR");
    const std::string d = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (dir && *dir ? dir : "/tmp");
    path = d + "/pare_fuzz_llama2c_tokenizer_" + std::to_string(static_cast<long>(getpid())) + ".bin";
  }
  ~scratch_file() { std::remove(path.c_str()); }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const scratch_file scratch;
  const std::string& path = scratch.path;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  try {
    const pare::tokenizer tok = pare::load_llama2c_tokenizer(path, 261);
    // Written back: the pieces and scores are the bytes that were read, after the
    // max_token_length field, which is the longest piece (at most what the input said).
    const std::string out = pare::llama2c_tokenizer_bytes(tok);
    std::int32_t in_max = 0, out_max = 0;
    std::memcpy(&in_max, data, 4);
    std::memcpy(&out_max, out.data(), 4);
    if (out.size() > size || out_max > in_max || std::memcmp(out.data() + 4, data + 4, out.size() - 4) != 0)
      std::abort();
    (void)tok.encode("fuzz \xE2\x96\x81 text \xFF", true, true);
  } catch (const pare::error&) {
  }
  return 0;
}
