// libFuzzer target for the llama2.c checkpoint reader: any input must load or throw pare::error, and views must stay inside the image.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "pare/io/llama2c.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto ck = pare::llama2c_checkpoint::from_bytes(data, size);
    // Accepted: the size is exactly the layout's, and every tensor lies inside the image.
    if (pare::llama2c_checkpoint::file_size_for(ck.config()) != size) std::abort();
    volatile float sink = 0;
    for (const std::string& name : ck.tensor_names()) {
      const auto t = ck.tensor(name);
      if (t.size() == 0 || ck.offset_of(name) < pare::llama2c_checkpoint::header_bytes ||
          ck.offset_of(name) + 4 * std::uint64_t(t.size()) > size)
        std::abort();
      sink = sink + t.data()[0] + t.data()[t.size() - 1];  // ASan checks both ends
    }
    for (const bool imag : {false, true}) {
      const auto r = ck.legacy_rope_table(imag);
      sink = sink + r.data()[0] + r.data()[r.size() - 1];
    }
    const auto cls = ck.classifier();
    sink = sink + cls(cls.rows() - 1, cls.cols() - 1);
    (void)sink;
  } catch (const pare::error&) {
  }
  return 0;
}
