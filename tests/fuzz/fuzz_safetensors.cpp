// libFuzzer target for the safetensors reader and the pack-quantized reader: any input must parse or throw pare::error, and views must stay inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "pare/io/compressed_tensors.hpp"
#include "pare/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto f = pare::safetensors_file::from_bytes(data, size);
    const std::uint8_t* lo = f.file().data() + f.data_offset();
    const std::uint8_t* hi = f.file().data() + f.file().size();
    std::size_t covered = 0;
    for (const auto& t : f.tensors()) {
      if (t.data < lo || t.data + t.bytes > hi) std::abort();
      if (t.bytes != t.elements() * pare::safetensors_dtype_size(t.dtype)) std::abort();
      covered += t.bytes;
      if (pare::is_float(t.dtype)) (void)f.read_f32(t.name);
      try {
        (void)f.f32_view(t.name);
      } catch (const pare::unsupported_error&) {
      }
    }
    if (covered != static_cast<std::size_t>(hi - lo)) std::abort();  // the tensors tile the byte buffer
    for (const auto& [k, v] : f.metadata()) (void)k.size(), (void)v.size();
    // Every "X.weight_packed" through the pack-quantized reader under a few argument sets.
    const std::string suffix = "weight_packed";
    for (const auto& t : f.tensors()) {
      if (t.name.size() < suffix.size() || t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      const std::string weight = t.name.substr(0, t.name.size() - suffix.size()) + "weight";
      for (const pare::ct_weight_args& a :
           {pare::ct_weight_args{4, true, pare::granularity::group(16)}, pare::ct_weight_args{4, false, pare::granularity::group(16)},
            pare::ct_weight_args{8, false, pare::granularity::channel()}, pare::ct_weight_args{2, false, pare::granularity::tensor()}}) {
        try {
          const auto q = pare::read_pack_quantized(f, weight, a);
          (void)q.dequantize();
        } catch (const pare::error&) {
        }
      }
    }
  } catch (const pare::error&) {
  }
  return 0;
}
