// libFuzzer target for the GGUF reader: any input must parse or throw pare::error, and views must stay inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "pare/io/gguf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto g = pare::gguf_file::from_bytes(data, size);
    for (const auto& t : g.tensors())
      if (t.data < g.file().data() || t.data + t.bytes > g.file().data() + g.file().size()) std::abort();
    for (const auto& [k, v] : g.metadata()) (void)k, (void)v.items.size();
  } catch (const pare::error&) {
  }
  return 0;
}
