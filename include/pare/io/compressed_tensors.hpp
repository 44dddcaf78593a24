// compressed-tensors "pack-quantized": pare's integer weight quantization written as, and read back from, the tensors and config vLLM / transformers load.
#pragma once

// The convention (compressed-tensors, neuralmagic / vllm-project: compressors/
// quantized_compressors/pack_quantized.py, quantization/quant_args.py, quant_config.py,
// lifecycle/initialize.py and compressors/quantized_compressors/base.py):
//
// For a Linear weight "X.weight" of shape [out, in] quantized to B bits (compressed-tensors
// loads B = 4 and 8 with this format; pare writes any B in [2, 8], packed the same way)
// with P = 32 / B (integer division) codes per int32, write_pack_quantized adds
//   X.weight_packed      I32 [out, ceil(in / P)]
//   X.weight_scale       F32 by default, F16 when the config has f16scale (its scales are
//                          halves already: exact); F16, BF16 or F64 on request (rounded to nearest-even)
//                          strategy "group" G: [out, in / G]; "channel": [out, 1]; "tensor": [1]
//   X.weight_zero_point  asymmetric only (symmetric checkpoints carry none):
//                          "group" / "channel": I32 [ceil(out / P), in / G or 1], packed along dim 0
//                          "tensor": I8 [1], not packed
//   X.weight_shape       I64 [2] = {out, in}
// Values: compressed-tensors' integer codes are signed, q in [-2^(B-1), 2^(B-1) - 1], with an
// int8 zero point zp in the same range, and dequantize to x = (q - zp) · scale.
// pack_to_int32 stores u = q + 2^(B-1) (unsigned) in B bits: along a row, element j goes to
// int32 word j / P at bits [B·(j % P), B·(j % P) + B); unused high bits and the padding of a
// last partial word are 0. The zero point matrix [out, groups] is packed the same way down
// its columns: zp[r][g] goes to word [r / P][g] at bits B·(r % P).
//
// pare's convention maps onto it without changing any dequantized value:
//   pare dequantizes x = float(q - z) · s (pare/core/affine.hpp), the same formula.
//   signed pare formats (int<B>):   q_ct = q,            zp_ct = z.
//   unsigned pare formats (uint<B>): q_ct = q - 2^(B-1),  zp_ct = z - 2^(B-1)  (q - z unchanged),
//     so the stored u is pare's unsigned code itself.
//   symmetric: pare's z is 0 (signed) or 2^(B-1) (unsigned), i.e. zp_ct = 0: nothing stored.
//   granularity: per_group G → "group", group_size G; per_channel (axis 0, rows) → "channel";
//     per_tensor → "tensor". per_channel axis 1 (one scale per input column) has no
//     compressed-tensors form: unsupported_error.
// read_pack_quantized inverts this exactly, returning a quantized_tensor with a signed
// format int<B> (codes, scales and zero points as stored; F16 scales set f16scale in its
// config): its dequantize() equals, bit for bit, the dequantize() of the tensor that was
// written when the scales were F32, or F16 from an f16scale config.
// Reading also accepts I32 weight_shape, and zero points of older compressed-tensors
// versions stored unpacked as I8 [out, groups]; a weight_zero_point present in a symmetric
// checkpoint is ignored (compressed-tensors ignores it too). weight_g_idx (activation
// reordering) is not supported: such files are rejected with unsupported_error.
//
// The model's config.json carries "quantization_config" (compressed_tensors_config()):
//   {"quant_method": "compressed-tensors", "format": "pack-quantized",
//    "quantization_status": "compressed", "kv_cache_scheme": null, "ignore": [...],
//    "config_groups": {"group_0": {"targets": ["Linear"], "input_activations": null,
//        "output_activations": null, "weights": {"num_bits": 4, "type": "int",
//        "symmetric": true, "strategy": "group", "group_size": 128, "dynamic": false,
//        "actorder": null, "block_structure": null, "observer": "minmax",
//        "observer_kwargs": {}}}}}
// A single .safetensors file has no config.json, so set_compressed_tensors_config() also
// stores that JSON (compact) in "__metadata__" under the key "quantization_config"
// (compressed_tensors_metadata_key), next to "format": "pt"; read_pack_quantized(file,
// name) takes the weight's arguments from there.

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "pare/core/dtypes/packed_int.hpp"
#include "pare/core/error.hpp"
#include "pare/io/safetensors.hpp"
#include "pare/io/safetensors_writer.hpp"
#include "pare/quant/quantized_tensor.hpp"

PARE_NAMESPACE_BEGIN

/// "__metadata__" key under which set_compressed_tensors_config stores the quantization_config JSON.
inline constexpr const char* compressed_tensors_metadata_key = "quantization_config";

/// The weight quantization arguments read back from a compressed-tensors config.
struct ct_weight_args {
  int num_bits = 4;
  bool symmetric = true;
  granularity gran = granularity::group(128);
};

namespace detail {

/// "X.weight" → "X." (the prefix compressed-tensors puts before weight_packed & co.).
inline std::string ct_prefix(const char* fn, const std::string& weight_name) {
  static const std::string suffix = "weight";
  if (weight_name.size() < suffix.size() ||
      weight_name.compare(weight_name.size() - suffix.size(), suffix.size(), suffix) != 0 ||
      (weight_name.size() > suffix.size() && weight_name[weight_name.size() - suffix.size() - 1] != '.'))
    fail<argument_error>(fn, ": argument 'name': expected a weight name ending in \".weight\" (or \"weight\"), got '",
                         weight_name, "'");
  return weight_name.substr(0, weight_name.size() - suffix.size());
}

inline const char* ct_strategy(const granularity& g) {
  switch (g.kind) {
    case granularity_kind::per_tensor: return "tensor";
    case granularity_kind::per_channel: return "channel";
    case granularity_kind::per_group: return "group";
  }
  return "tensor";
}

inline void ct_check_config(const char* fn, const quant_config& cfg) {
  cfg.validate(fn);
  if (cfg.gran.kind == granularity_kind::per_channel && cfg.gran.axis != 0)
    fail<unsupported_error>(fn, ": per_channel axis ", cfg.gran.axis,
                            " (one scale per input column) has no compressed-tensors form; use per_channel (axis 0), "
                            "g<G> or per_tensor");
}

/// Integer element k of an integer tensor (I8..I64, U8..U64) as int64 (U64 above INT64_MAX saturates).
inline std::int64_t ct_int_at(const safetensors_tensor& t, std::size_t k) {
  const std::uint8_t* p = t.data + k * safetensors_dtype_size(t.dtype);
  switch (t.dtype) {
    case safetensors_dtype::i8: { std::int8_t v; std::memcpy(&v, p, 1); return v; }
    case safetensors_dtype::u8: return *p;
    case safetensors_dtype::i16: { std::int16_t v; std::memcpy(&v, p, 2); return v; }
    case safetensors_dtype::u16: { std::uint16_t v; std::memcpy(&v, p, 2); return v; }
    case safetensors_dtype::i32: { std::int32_t v; std::memcpy(&v, p, 4); return v; }
    case safetensors_dtype::u32: { std::uint32_t v; std::memcpy(&v, p, 4); return v; }
    case safetensors_dtype::i64: { std::int64_t v; std::memcpy(&v, p, 8); return v; }
    case safetensors_dtype::u64: {
      std::uint64_t v;
      std::memcpy(&v, p, 8);
      return v > std::uint64_t(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(v);
    }
    default: return 0;
  }
}

inline std::uint32_t ct_word(const std::uint8_t* p, std::size_t k) {
  std::uint32_t w;
  std::memcpy(&w, p + 4 * k, 4);
  return w;
}

inline std::string ct_shape_str(const std::vector<std::uint64_t>& s) {
  std::string r = "[";
  for (std::size_t k = 0; k < s.size(); ++k) r += (k ? ", " : "") + std::to_string(s[k]);
  return r + "]";
}

}  // namespace detail

/// The compressed-tensors "weights" QuantizationArgs of a pare config.
inline nlohmann::json compressed_tensors_weight_args(const quant_config& cfg) {
  detail::ct_check_config("compressed_tensors_weight_args", cfg);
  nlohmann::json w;
  w["num_bits"] = cfg.format.bits;
  w["type"] = "int";
  w["symmetric"] = cfg.scheme == scheme_kind::symmetric;
  w["strategy"] = detail::ct_strategy(cfg.gran);
  w["group_size"] = cfg.gran.kind == granularity_kind::per_group ? nlohmann::json(cfg.gran.group_size) : nlohmann::json();
  w["block_structure"] = nullptr;
  w["dynamic"] = false;
  w["actorder"] = nullptr;
  const std::string obs = to_string(cfg.observer);
  w["observer"] = obs.rfind("minmax", 0) == 0 ? nlohmann::json("minmax")
                  : obs.rfind("mse", 0) == 0  ? nlohmann::json("mse")
                                              : nlohmann::json();
  w["observer_kwargs"] = nlohmann::json::object();
  return w;
}

/// One config group: a pare config and the layers it targets (compressed-tensors targets:
/// a module class such as "Linear", a module name, or "re:<regex>").
struct ct_config_group {
  quant_config config;
  std::vector<std::string> targets{"Linear"};
};

/// The model's "quantization_config" for pack-quantized weights (see the header comment);
/// groups are named group_0, group_1, ... in order; `ignore` lists unquantized layers.
inline nlohmann::json compressed_tensors_config(const std::vector<ct_config_group>& groups,
                                                const std::vector<std::string>& ignore = {"lm_head"}) {
  if (groups.empty())
    detail::fail<argument_error>("compressed_tensors_config: argument 'groups': expected at least one group");
  nlohmann::json cg = nlohmann::json::object();
  for (std::size_t k = 0; k < groups.size(); ++k) {
    nlohmann::json g;
    g["targets"] = groups[k].targets;
    g["weights"] = compressed_tensors_weight_args(groups[k].config);
    g["input_activations"] = nullptr;
    g["output_activations"] = nullptr;
    cg["group_" + std::to_string(k)] = std::move(g);
  }
  nlohmann::json c;
  c["quant_method"] = "compressed-tensors";
  c["format"] = "pack-quantized";
  c["quantization_status"] = "compressed";
  c["config_groups"] = std::move(cg);
  c["ignore"] = ignore;
  c["kv_cache_scheme"] = nullptr;
  return c;
}
/// The same for one config targeting every Linear layer but those in `ignore`.
inline nlohmann::json compressed_tensors_config(const quant_config& cfg,
                                                const std::vector<std::string>& ignore = {"lm_head"}) {
  return compressed_tensors_config(std::vector<ct_config_group>{ct_config_group{cfg, {"Linear"}}}, ignore);
}

/// Stores `qconfig` in the writer's metadata under compressed_tensors_metadata_key, and
/// "format": "pt" (which transformers requires of files with metadata) unless set already.
inline void set_compressed_tensors_config(safetensors_writer& w, const nlohmann::json& qconfig) {
  if (!w.metadata().count("format")) w.set_metadata("format", "pt");
  w.set_metadata(compressed_tensors_metadata_key, qconfig.dump());
}

/// Parses a "weights" QuantizationArgs object. format_error for missing or ill-typed
/// fields; unsupported_error for what pare cannot represent (float types, block / token
/// strategies, group activation ordering, num_bits outside [2, 8]).
inline ct_weight_args parse_ct_weight_args(const nlohmann::json& w) {
  const char* fn = "compressed-tensors weights";
  if (!w.is_object()) detail::fail<format_error>(fn, ": expected an object, got ", w.type_name());
  ct_weight_args a;
  const auto nb = w.find("num_bits");
  if (nb != w.end() && !nb->is_number_integer())
    detail::fail<format_error>(fn, ": field 'num_bits': expected an integer, got ", nb->dump());
  const std::int64_t bits = nb == w.end() ? 8 : nb->get<std::int64_t>();  // the QuantizationArgs default
  if (bits < 2 || bits > 8) detail::fail<unsupported_error>(fn, ": num_bits ", bits, " (pare stores 2..8)");
  a.num_bits = static_cast<int>(bits);
  const auto ty = w.find("type");
  if (ty != w.end() && !(ty->is_string() && (*ty == "int" || *ty == "INT")))
    detail::fail<unsupported_error>(fn, ": field 'type': expected \"int\", got ", ty->dump());
  const auto sy = w.find("symmetric");
  if (sy != w.end() && !sy->is_boolean())
    detail::fail<format_error>(fn, ": field 'symmetric': expected a bool, got ", sy->dump());
  a.symmetric = sy == w.end() ? true : sy->get<bool>();
  const auto gs = w.find("group_size");
  std::int64_t group = 0;
  bool has_group = false;
  if (gs != w.end() && !gs->is_null()) {
    if (!gs->is_number_integer()) detail::fail<format_error>(fn, ": field 'group_size': expected an integer, got ", gs->dump());
    group = gs->get<std::int64_t>();
    has_group = true;
  }
  std::string strategy;
  const auto st = w.find("strategy");
  if (st != w.end() && !st->is_null()) {
    if (!st->is_string()) detail::fail<format_error>(fn, ": field 'strategy': expected a string, got ", st->dump());
    strategy = st->get<std::string>();
    std::transform(strategy.begin(), strategy.end(), strategy.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  } else {  // inferred as QuantizationArgs does
    strategy = !has_group ? "tensor" : group > 0 ? "group" : group == -1 ? "channel" : "";
    if (strategy.empty()) detail::fail<format_error>(fn, ": field 'group_size': expected > 0 or -1, got ", group);
  }
  if (strategy == "group") {
    if (!has_group || group <= 0)
      detail::fail<format_error>(fn, ": strategy \"group\" needs a positive 'group_size', got ",
                                 gs == w.end() ? std::string("none") : gs->dump());
    a.gran = granularity::group(static_cast<std::size_t>(group));
  } else if (strategy == "channel") {
    a.gran = granularity::channel(0);
  } else if (strategy == "tensor") {
    a.gran = granularity::tensor();
  } else {
    detail::fail<unsupported_error>(fn, ": strategy \"", strategy, "\" (pare reads group, channel and tensor)");
  }
  const auto ao = w.find("actorder");
  if (ao != w.end() && ((ao->is_string() && (*ao == "group" || *ao == "dynamic")) || (ao->is_boolean() && ao->get<bool>())))
    detail::fail<unsupported_error>(fn, ": actorder ", ao->dump(), " (weight_g_idx) is not supported");
  return a;
}

namespace detail {
inline bool ct_target_matches(const std::string& target, const std::string& module, int& priority) {
  if (target == module) {
    priority = 0;
    return true;
  }
  if (target.rfind("re:", 0) == 0) {
    try {
      if (std::regex_search(module, std::regex(target.substr(3)), std::regex_constants::match_continuous)) {
        priority = 1;
        return true;
      }
    } catch (const std::regex_error& e) {
      fail<format_error>("compressed-tensors config: target '", target, "': bad regular expression: ", e.what());
    }
    return false;
  }
  // A module class ("Linear", "Embedding": capitalised, no dot). The file cannot tell a
  // layer's class, so a class target is taken to apply, after names and regexes.
  priority = 2;
  return !target.empty() && target[0] >= 'A' && target[0] <= 'Z' && target.find('.') == std::string::npos;
}
}  // namespace detail

/// The weight arguments that a compressed-tensors quantization_config gives weight
/// `weight_name` ("X.weight", module "X"): the config group whose targets match the module
/// by exact name, else by "re:" regex (Python re.match semantics), else by class name
/// (a capitalised target without a dot, such as "Linear", is taken to match any layer).
/// argument_error if the module is in "ignore" or matches no group; format_error if the
/// config is malformed or its format is not "pack-quantized".
inline ct_weight_args compressed_tensors_args_for(const nlohmann::json& qconfig, const std::string& weight_name) {
  const char* fn = "compressed_tensors_args_for";
  std::string module = detail::ct_prefix(fn, weight_name);
  if (!module.empty()) module.pop_back();  // the '.'
  if (!qconfig.is_object()) detail::fail<format_error>(fn, ": quantization_config: expected an object, got ", qconfig.type_name());
  const auto qm = qconfig.find("quant_method");
  if (qm != qconfig.end() && *qm != "compressed-tensors")
    detail::fail<format_error>(fn, ": quant_method: expected \"compressed-tensors\", got ", qm->dump());
  const auto fmt = qconfig.find("format");
  if (fmt == qconfig.end() || *fmt != "pack-quantized")
    detail::fail<format_error>(fn, ": format: expected \"pack-quantized\", got ",
                               fmt == qconfig.end() ? std::string("none") : fmt->dump());
  const auto ig = qconfig.find("ignore");
  if (ig != qconfig.end() && ig->is_array())
    for (const auto& t : *ig) {
      int pr = 0;
      if (t.is_string() && detail::ct_target_matches(t.get<std::string>(), module, pr) && pr < 2)
        detail::fail<argument_error>(fn, ": layer '", module, "' is in the ignore list (not quantized)");
    }
  const auto groups = qconfig.find("config_groups");
  if (groups == qconfig.end() || !groups->is_object())
    detail::fail<format_error>(fn, ": config_groups: expected an object");
  const nlohmann::json* best = nullptr;
  int best_priority = 3;
  for (const auto& [gname, g] : groups->items()) {
    if (!g.is_object()) detail::fail<format_error>(fn, ": config_groups.", gname, ": expected an object, got ", g.type_name());
    const auto targets = g.find("targets");
    const auto weights = g.find("weights");
    if (weights == g.end() || weights->is_null()) continue;
    if (targets == g.end() || !targets->is_array())
      detail::fail<format_error>(fn, ": config_groups.", gname, ".targets: expected an array");
    for (const auto& t : *targets) {
      if (!t.is_string()) detail::fail<format_error>(fn, ": config_groups.", gname, ".targets: expected strings");
      int pr = 3;
      if (detail::ct_target_matches(t.get<std::string>(), module, pr) && pr < best_priority) {
        best_priority = pr;
        best = &*weights;
      }
    }
  }
  if (!best) detail::fail<argument_error>(fn, ": no config group targets layer '", module, "'");
  return parse_ct_weight_args(*best);
}

/// Adds the pack-quantized tensors of `q` (a weight [out, in]) for weight `weight_name`
/// ("X.weight" → X.weight_packed, X.weight_scale, [X.weight_zero_point,] X.weight_shape).
/// `scale_dtype`: F32 (exact), F16 (exact under f16scale), BF16 or F64. Checks everything
/// (name, names already in the writer, the config, the tensor's consistency) before adding anything.
inline void write_pack_quantized(safetensors_writer& w, const std::string& weight_name, const quantized_tensor& q,
                                 safetensors_dtype scale_dtype) {
  const char* fn = "write_pack_quantized";
  const std::string prefix = detail::ct_prefix(fn, weight_name);
  const quant_config& cfg = q.config;
  detail::ct_check_config(fn, cfg);
  if (scale_dtype != safetensors_dtype::f32 && scale_dtype != safetensors_dtype::f16 &&
      scale_dtype != safetensors_dtype::bf16 && scale_dtype != safetensors_dtype::f64)
    detail::fail<argument_error>(fn, ": argument 'scale_dtype': expected F32, F16, BF16 or F64, got ", to_string(scale_dtype));
  const int bits = cfg.format.bits;
  const bool sgn = cfg.format.is_signed;
  const std::size_t out = q.rows, in = q.cols;
  if (out == 0 || in == 0) detail::fail<argument_error>(fn, ": tensor '", weight_name, "': expected a non-empty matrix");
  if (cfg.gran.kind == granularity_kind::per_group && in % cfg.gran.group_size != 0)
    detail::fail<argument_error>(fn, ": tensor '", weight_name, "': group_size ", cfg.gran.group_size,
                                 " does not divide the row length ", in);
  const std::size_t n_params = param_count_for(cfg.gran, out, in);
  if (q.codes.size() != out * q.row_bytes() || q.scales.size() != n_params || q.zero_points.size() != n_params)
    detail::fail<argument_error>(fn, ": tensor '", weight_name, "': inconsistent quantized_tensor (", q.codes.size(),
                                 " code bytes, ", q.scales.size(), " scales, ", q.zero_points.size(),
                                 " zero points for ", out, " x ", in, ")");
  const bool asym = cfg.scheme == scheme_kind::asymmetric;
  const int off = 1 << (bits - 1);
  // param_count_for() entries (per_tensor: one).
  const std::size_t n_used = cfg.gran.kind == granularity_kind::per_tensor ? 1 : n_params;
  for (std::size_t k = 0; k < n_used; ++k) {
    const int z = q.zero_points[k];
    if (!asym && z != cfg.format.sym_zero())
      detail::fail<argument_error>(fn, ": tensor '", weight_name, "': symmetric zero point ", k, " is ", z, ", expected ",
                                   cfg.format.sym_zero());
    if (z < cfg.format.qmin() || z > cfg.format.qmax())
      detail::fail<argument_error>(fn, ": tensor '", weight_name, "': zero point ", k, " = ", z, " outside [",
                                   cfg.format.qmin(), ", ", cfg.format.qmax(), "]");
  }
  const std::string n_packed = prefix + "weight_packed", n_scale = prefix + "weight_scale",
                    n_zero = prefix + "weight_zero_point", n_shape = prefix + "weight_shape";
  for (const std::string* n : {&n_packed, &n_scale, &n_zero, &n_shape})
    if (w.has(*n) && (n != &n_zero || asym))
      detail::fail<argument_error>(fn, ": tensor '", *n, "' is already in the writer");

  // weight_packed: u = q_ct + 2^(B-1), which is q + 2^(B-1) (signed) or q itself (unsigned).
  const std::size_t per = static_cast<std::size_t>(32 / bits);
  const std::size_t words = (in + per - 1) / per;
  const int shift_u = sgn ? off : 0;
  std::vector<std::uint8_t> packed(out * words * 4, 0);
  {
    std::vector<std::uint8_t> codes(in);
    std::vector<std::uint32_t> row(words);
    for (std::size_t i = 0; i < out; ++i) {
      unpack_codes(bits, sgn, q.codes.data() + i * q.row_bytes(), in, codes.data());
      std::fill(row.begin(), row.end(), 0u);
      for (std::size_t j = 0; j < in; ++j) {
        const int code = sgn ? int(static_cast<std::int8_t>(codes[j])) : int(codes[j]);
        const auto u = static_cast<std::uint32_t>(code + shift_u);
        row[j / per] |= u << (bits * (j % per));
      }
      std::memcpy(packed.data() + i * words * 4, row.data(), words * 4);
    }
  }
  const std::size_t groups = groups_per_row_for(cfg.gran, in);
  std::vector<std::uint64_t> scale_shape;
  if (cfg.gran.kind == granularity_kind::per_tensor) scale_shape = {1};
  else scale_shape = {out, groups};

  // weight_zero_point (asymmetric): zp_ct + 2^(B-1) = z + 2^(B-1) (signed) or z (unsigned).
  std::vector<std::uint8_t> zero;
  std::vector<std::uint64_t> zero_shape;
  safetensors_dtype zero_dtype = safetensors_dtype::i32;
  if (asym) {
    if (cfg.gran.kind == granularity_kind::per_tensor) {
      zero_dtype = safetensors_dtype::i8;
      zero_shape = {1};
      zero.push_back(static_cast<std::uint8_t>(static_cast<std::int8_t>(q.zero_points[0] - (sgn ? 0 : off))));
    } else {
      const std::size_t zrows = (out + per - 1) / per;
      zero_shape = {zrows, groups};
      std::vector<std::uint32_t> zw(zrows * groups, 0u);
      for (std::size_t r = 0; r < out; ++r)
        for (std::size_t g = 0; g < groups; ++g) {
          const auto u = static_cast<std::uint32_t>(q.zero_points[r * groups + g] + shift_u);
          zw[(r / per) * groups + g] |= u << (bits * (r % per));
        }
      zero.resize(zw.size() * 4);
      std::memcpy(zero.data(), zw.data(), zero.size());
    }
  }
  const std::int64_t shape_v[2] = {static_cast<std::int64_t>(out), static_cast<std::int64_t>(in)};

  w.add(n_packed, safetensors_dtype::i32, {out, words}, std::move(packed));
  w.add_f32(n_scale, scale_shape, q.scales.data(), n_used, scale_dtype);
  if (asym) w.add(n_zero, zero_dtype, zero_shape, std::move(zero));
  w.add(n_shape, safetensors_dtype::i64, {2}, shape_v, sizeof shape_v);
}

/// The same with the scales in the dtype pare stores them in: F16 under f16scale, else F32
/// (both exact).
inline void write_pack_quantized(safetensors_writer& w, const std::string& weight_name, const quantized_tensor& q) {
  write_pack_quantized(w, weight_name, q, q.config.f16_scale ? safetensors_dtype::f16 : safetensors_dtype::f32);
}

/// Reads weight `weight_name` ("X.weight") of a pack-quantized file with arguments `args`
/// back into a quantized_tensor (signed format int<B>; see the header comment). format_error
/// naming the tensor when a part is missing or has the wrong dtype or shape.
inline quantized_tensor read_pack_quantized(const safetensors_file& f, const std::string& weight_name,
                                            const ct_weight_args& args) {
  const char* fn = "read_pack_quantized";
  const std::string prefix = detail::ct_prefix(fn, weight_name);
  if (args.num_bits < 2 || args.num_bits > 8)
    detail::fail<argument_error>(fn, ": argument 'args.num_bits': expected 2..8, got ", args.num_bits);
  if (args.gran.kind == granularity_kind::per_group && args.gran.group_size == 0)
    detail::fail<argument_error>(fn, ": argument 'args.gran': group size 0");
  if (args.gran.kind == granularity_kind::per_channel && args.gran.axis != 0)
    detail::fail<unsupported_error>(fn, ": per_channel axis ", args.gran.axis, " has no compressed-tensors form");
  const std::string& path = f.file().path();
  auto need = [&](const std::string& n) -> const safetensors_tensor& {
    const safetensors_tensor* t = f.find(n);
    if (!t) detail::fail<format_error>(fn, ": '", path, "': weight '", weight_name, "': no tensor '", n, "'");
    return *t;
  };
  auto bad = [&](const safetensors_tensor& t, auto&&... a) {
    detail::fail<format_error>(fn, ": '", path, "': byte ", t.header_offset, ": tensor '", t.name, "' (", t.dtype_name(),
                               " ", detail::ct_shape_str(t.shape), "): ", a...);
  };
  if (f.has(prefix + "weight_g_idx"))
    detail::fail<unsupported_error>(fn, ": '", path, "': weight '", weight_name,
                                    "' has a weight_g_idx (activation reordering), which pare does not support");
  const int bits = args.num_bits;
  const std::size_t per = static_cast<std::size_t>(32 / bits);
  const int off = 1 << (bits - 1);

  const safetensors_tensor& ts = need(prefix + "weight_shape");
  switch (ts.dtype) {
    case safetensors_dtype::i64: case safetensors_dtype::i32: case safetensors_dtype::u64: case safetensors_dtype::u32:
      break;
    default: bad(ts, "expected dtype I64 or I32");
  }
  if (ts.shape.size() != 1 || ts.shape[0] != 2) bad(ts, "expected shape [2]");
  const std::int64_t out_v = detail::ct_int_at(ts, 0), in_v = detail::ct_int_at(ts, 1);
  if (out_v <= 0 || in_v <= 0 || out_v > (std::int64_t(1) << 40) || in_v > (std::int64_t(1) << 40))
    bad(ts, "expected two positive dimensions, got [", out_v, ", ", in_v, "]");
  const auto out = static_cast<std::size_t>(out_v), in = static_cast<std::size_t>(in_v);
  const std::size_t words = (in + per - 1) / per;

  const safetensors_tensor& tp = need(prefix + "weight_packed");
  if (tp.dtype != safetensors_dtype::i32) bad(tp, "expected dtype I32");
  if (tp.shape != std::vector<std::uint64_t>{out, words})
    bad(tp, "expected shape [", out, ", ", words, "] for weight_shape [", out, ", ", in, "] at ", bits, " bits");

  quantized_tensor q;
  q.config.format = int_format{bits, true};
  q.config.scheme = args.symmetric ? scheme_kind::symmetric : scheme_kind::asymmetric;
  q.config.gran = args.gran;
  q.rows = out;
  q.cols = in;
  std::size_t groups = 1;
  if (args.gran.kind == granularity_kind::per_group) {
    if (in % args.gran.group_size != 0)
      bad(tp, "group_size ", args.gran.group_size, " does not divide the row length ", in,
          " (pare needs whole groups)");
    groups = in / args.gran.group_size;
  }
  // param_count_for() entries (per_tensor: one).
  const std::size_t n_params = param_count_for(args.gran, out, in);
  const std::size_t n_used = args.gran.kind == granularity_kind::per_tensor ? 1 : n_params;

  const safetensors_tensor& tsc = need(prefix + "weight_scale");
  if (!is_float(tsc.dtype)) bad(tsc, "expected a float dtype");
  if (args.gran.kind == granularity_kind::per_tensor) {
    if (tsc.elements() != 1 || tsc.shape.size() > 2) bad(tsc, "expected shape [1] (strategy \"tensor\")");
  } else if (tsc.shape != std::vector<std::uint64_t>{out, groups}) {
    bad(tsc, "expected shape [", out, ", ", groups, "]");
  }
  q.scales.resize(n_params);
  convert_to_f32(tsc.dtype, tsc.data, n_used, q.scales.data());
  q.config.f16_scale = tsc.dtype == safetensors_dtype::f16;  // exactly halves: pare's f16scale storage
  std::fill(q.scales.begin() + static_cast<std::ptrdiff_t>(n_used), q.scales.end(), q.scales[0]);

  q.zero_points.assign(n_params, 0);
  if (!args.symmetric) {
    const safetensors_tensor& tz = need(prefix + "weight_zero_point");
    if (args.gran.kind == granularity_kind::per_tensor) {
      if (tz.dtype != safetensors_dtype::i8 || tz.elements() != 1 || tz.shape.size() > 2)
        bad(tz, "expected dtype I8 and shape [1] (strategy \"tensor\")");
      const std::int64_t z = detail::ct_int_at(tz, 0);
      if (z < -off || z >= off) bad(tz, "zero point ", z, " outside [", -off, ", ", off - 1, "]");
      std::fill(q.zero_points.begin(), q.zero_points.end(), static_cast<std::int32_t>(z));
    } else if (tz.dtype == safetensors_dtype::i32) {
      const std::size_t zrows = (out + per - 1) / per;
      if (tz.shape != std::vector<std::uint64_t>{zrows, groups})
        bad(tz, "expected shape [", zrows, ", ", groups, "] (packed along dim 0)");
      const std::uint32_t mask = (1u << bits) - 1u;
      for (std::size_t r = 0; r < out; ++r)
        for (std::size_t g = 0; g < groups; ++g) {
          const std::uint32_t u = (detail::ct_word(tz.data, (r / per) * groups + g) >> (bits * (r % per))) & mask;
          q.zero_points[r * groups + g] = static_cast<std::int32_t>(u) - off;
        }
    } else if (tz.dtype == safetensors_dtype::i8) {  // older compressed-tensors: unpacked
      if (tz.shape != std::vector<std::uint64_t>{out, groups}) bad(tz, "expected shape [", out, ", ", groups, "]");
      for (std::size_t k = 0; k < n_params; ++k) {
        const std::int64_t z = detail::ct_int_at(tz, k);
        if (z < -off || z >= off) bad(tz, "zero point ", z, " at ", k, " outside [", -off, ", ", off - 1, "]");
        q.zero_points[k] = static_cast<std::int32_t>(z);
      }
    } else {
      bad(tz, "expected dtype I32 (packed) or I8");
    }
  }

  const std::size_t rb = packed_row_bytes(bits, in);
  q.codes = aligned_buffer<std::uint8_t>(out * rb);
  std::vector<std::uint8_t> codes(in);
  const std::uint32_t mask = (1u << bits) - 1u;
  for (std::size_t i = 0; i < out; ++i) {
    const std::uint8_t* row = tp.data + i * words * 4;
    for (std::size_t j = 0; j < in; ++j) {
      const std::uint32_t u = (detail::ct_word(row, j / per) >> (bits * (j % per))) & mask;
      codes[j] = static_cast<std::uint8_t>(static_cast<int>(u) - off);  // two's complement code byte
    }
    pack_codes(bits, codes.data(), in, q.codes.data() + i * rb);
  }
  return q;
}

/// The same, with the arguments taken from the file's "__metadata__" quantization_config
/// (set_compressed_tensors_config); format_error if it is absent or not valid JSON.
inline quantized_tensor read_pack_quantized(const safetensors_file& f, const std::string& weight_name) {
  const auto it = f.metadata().find(compressed_tensors_metadata_key);
  if (it == f.metadata().end())
    detail::fail<format_error>("read_pack_quantized: '", f.file().path(), "': no '", compressed_tensors_metadata_key,
                               "' in __metadata__; pass the weight arguments (from config.json) explicitly");
  nlohmann::json cfg;
  try {
    cfg = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    detail::fail<format_error>("read_pack_quantized: '", f.file().path(), "': __metadata__ '",
                               compressed_tensors_metadata_key, "': malformed JSON: ", e.what());
  }
  return read_pack_quantized(f, weight_name, compressed_tensors_args_for(cfg, weight_name));
}

PARE_NAMESPACE_END
