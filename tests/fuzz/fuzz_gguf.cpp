// libFuzzer target for the GGUF reader: any input must parse or throw pare::error, and views must stay inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "pare/io/gguf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto g = pare::gguf_file::from_bytes(data, size);
    const std::uint8_t* begin = g.file().data();
    const std::uint64_t size = g.file().size();
    for (const auto& t : g.tensors()) {
      // Inside the file, compared without pointer arithmetic that could wrap.
      const std::uint64_t at = static_cast<std::uint64_t>(t.data - begin);
      if (t.data < begin || at > size || t.bytes > size - at) std::abort();
      // bytes == shape × type, computed here in 128-bit arithmetic.
      const auto* info = pare::gguf_tensor_type(t.type);
      if (!info || t.ne.empty()) std::abort();
      unsigned __int128 elems = 1;
      for (std::uint64_t d : t.ne) elems *= d;
      if (elems % info->block_size != 0) std::abort();
      if (elems / info->block_size * info->type_size != t.bytes) std::abort();
      if (static_cast<unsigned __int128>(t.rows()) * t.cols() != elems) std::abort();
    }
    for (const auto& [k, v] : g.metadata()) (void)k, (void)v.items.size();
  } catch (const pare::error&) {
  }
  return 0;
}
