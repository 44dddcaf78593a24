// safetensors → safetensors quantization with pare's integer formats, written in compressed-tensors' pack-quantized convention (vLLM / transformers).
#pragma once

// quantize_safetensors(in, out_path, cfg, select) quantizes every selected 2-D float
// tensor named "<module>.weight" with pare::quantize(w, cfg) and writes it through
// write_pack_quantized (weight_packed / weight_scale / weight_zero_point / weight_shape,
// see compressed_tensors.hpp), scales in the tensor's own float dtype when that is F32,
// F16 or BF16 (else F32). Every other tensor is copied byte for byte, the input's
// __metadata__ is kept, and the quantization_config JSON is added to __metadata__:
// config group_0 targets "Linear" with `cfg`; layers whose input width the group size does
// not divide fall back to the same format per output channel, in group_1 targeting those
// modules by name (compressed-tensors matches an exact module name before a class);
// selected-out "<module>.weight" matrices are listed in "ignore".
// Default selection (select empty): 2-D ".weight" tensors except embeddings ("embed"),
// norms ("norm") and "lm_head" — llm-compressor's usual choice.
// Cost: the writer keeps the output in memory until it writes (atomically).

#include <functional>
#include <string>
#include <vector>

#include "pare/io/compressed_tensors.hpp"
#include "pare/io/safetensors.hpp"
#include "pare/io/safetensors_writer.hpp"
#include "pare/quant/quantize.hpp"

PARE_NAMESPACE_BEGIN

struct safetensors_tensor_change {
  std::string name;
  std::string format;  ///< the config applied (empty if copied)
  std::size_t bytes_in = 0, bytes_out = 0;
  bool converted = false, fallback = false;
  std::string reason;
};

inline bool default_safetensors_selection(const std::string& name) {
  return name.find("embed") == std::string::npos && name.find("norm") == std::string::npos &&
         name.rfind("lm_head", 0) != 0;
}

inline std::vector<safetensors_tensor_change> quantize_safetensors(
    const safetensors_file& in, const std::string& out_path, const quant_config& cfg,
    const std::function<bool(const std::string&)>& select = {}) {
  const char* where = "quantize_safetensors";
  cfg.validate(where);
  auto ends_with_weight = [](const std::string& n) { return n.size() > 7 && n.compare(n.size() - 7, 7, ".weight") == 0; };
  safetensors_writer w;
  for (const auto& [k, v] : in.metadata()) w.set_metadata(k, v);
  std::vector<safetensors_tensor_change> out;
  std::vector<std::string> ignore, fallback_modules;
  quant_config per_channel = cfg;
  per_channel.gran = granularity::channel(0);
  for (const safetensors_tensor& t : in.tensors()) {
    safetensors_tensor_change c{t.name, "", t.bytes, t.bytes, false, false, ""};
    const bool candidate = t.rank() == 2 && is_float(t.dtype) && ends_with_weight(t.name);
    const bool chosen = candidate && (select ? select(t.name) : default_safetensors_selection(t.name));
    if (!chosen) {
      if (candidate) ignore.push_back(t.name.substr(0, t.name.size() - 7));
      c.reason = candidate ? "not selected" : "not a 2-D float .weight";
      w.add_view(t.name, t.dtype, t.shape, t.data, t.bytes);
      out.push_back(c);
      continue;
    }
    quant_config use = cfg;
    if (cfg.gran.kind == granularity_kind::per_group && t.cols() % cfg.gran.group_size != 0) {
      use = per_channel;
      c.fallback = true;
      c.reason = detail::concat("in_features ", t.cols(), " is not a multiple of group ", cfg.gran.group_size);
      fallback_modules.push_back(t.name.substr(0, t.name.size() - 7));
    }
    const float_matrix m = in.f32_matrix(t.name);
    const quantized_tensor q = quantize(matrix_view<const float>(m.values.data(), m.rows, m.cols), use);
    const safetensors_dtype sd =
        use.f16_scale ? safetensors_dtype::f16  // f16scale: the scales are halves already
        : (t.dtype == safetensors_dtype::f16 || t.dtype == safetensors_dtype::bf16) ? t.dtype : safetensors_dtype::f32;
    write_pack_quantized(w, t.name, q, sd);
    c.converted = true;
    c.format = use.str();
    // Stored bytes, as write_pack_quantized lays them out (see compressed_tensors.hpp).
    const std::size_t per = static_cast<std::size_t>(32 / use.format.bits), rows = m.rows, cols = m.cols;
    const bool tensor_wise = use.gran.kind == granularity_kind::per_tensor;
    const std::size_t ng = use.gran.kind == granularity_kind::per_group ? cols / use.gran.group_size : 1;
    c.bytes_out = rows * ((cols + per - 1) / per) * 4 + (tensor_wise ? 1 : rows * ng) * safetensors_dtype_size(sd) + 16;
    if (use.scheme == scheme_kind::asymmetric) c.bytes_out += tensor_wise ? 1 : (rows + per - 1) / per * ng * 4;
    out.push_back(c);
  }
  std::vector<ct_config_group> groups{ct_config_group{cfg, {"Linear"}}};
  if (!fallback_modules.empty()) groups.push_back(ct_config_group{per_channel, fallback_modules});
  set_compressed_tensors_config(w, compressed_tensors_config(groups, ignore));
  (void)where;
  w.write(out_path);
  return out;
}

PARE_NAMESPACE_END
