// Streaming GGUF → GGUF quantization (llama.cpp's quantize): every selected 2-D float tensor to a ggml block format, one tensor in memory at a time.
#pragma once

// quantize_gguf(in, out_path, opt) copies every metadata key of `in` (and its alignment)
// and every tensor, in file order, converting each 2-D tensor whose type is F32, F16 or
// BF16 and that opt.select accepts (default: all) to opt.type. A row length the format
// cannot take falls back as llama.cpp does (ggml_fallback_type: K formats to a 32-block
// format when the width allows it, else F16); tensors already in a block format, 1-D
// tensors (norms, biases) and unselected tensors are copied unchanged. The importance
// matrix of a tensor, if opt.imatrix has an entry for its name, must have one weight per
// column. general.quantization_version is set to 2, as llama.cpp writes it.
//
// Streaming: the output header is computed from the input's tensor table first (target
// types are known without quantizing), then tensors are read from the memory-mapped input,
// converted and written one at a time: peak memory is one tensor's float copy plus its
// blocks, so files larger than memory convert. Output goes through a temporary and a
// rename; on any error the destination is untouched. Returns one record per tensor.

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "pare/core/dtypes/bf16.hpp"
#include "pare/ggml/quantize.hpp"
#include "pare/io/gguf.hpp"
#include "pare/io/gguf_writer.hpp"

PARE_NAMESPACE_BEGIN
namespace ggml {

struct gguf_quantize_options {
  type target = type::q8_0;
  std::function<bool(const std::string&)> select;          ///< tensors to convert (all 2-D float tensors if empty)
  const std::map<std::string, std::vector<float>>* imatrix = nullptr;  ///< per tensor name, one weight per column
  std::function<void(const std::string&)> progress;        ///< called with each tensor name before it is converted
};

struct gguf_tensor_change {
  std::string name;
  std::string from, to;  ///< type names
  std::uint64_t bytes_in = 0, bytes_out = 0;
  bool converted = false, fallback = false;
  std::string reason;  ///< why not converted or why it fell back
};

/// The type llama.cpp would store a row of `cols` in when `t` does not fit it.
inline type fallback_type(type t, std::size_t cols) {
  if (cols % traits(t).block_size == 0) return t;
  if (cols % 32 == 0) {
    switch (t) {
      case type::q2_K: case type::q3_K: return type::iq4_nl;
      case type::q4_K: return type::q5_0;
      case type::q5_K: return type::q5_1;
      case type::q6_K: return type::q8_0;
      default: break;
    }
  }
  return type::f16;
}

namespace detail {
/// Row r of a float tensor (F32, F16, BF16) as floats.
inline void read_float_row(const gguf_tensor& t, std::size_t r, float* out) {
  const std::size_t cols = t.cols();
  if (t.type == 0) {
    std::memcpy(out, t.data + r * cols * 4, cols * 4);
  } else {
    const std::uint8_t* p = t.data + r * cols * 2;
    for (std::size_t j = 0; j < cols; ++j)
      out[j] = t.type == 1 ? load_f16(p + 2 * j) : ::pare::bf16_to_float(load_u16(p + 2 * j));
  }
}
}  // namespace detail

inline std::vector<gguf_tensor_change> quantize_gguf(const gguf_file& in, const std::string& out_path,
                                                     const gguf_quantize_options& opt) {
  const char* where = "pare::ggml::quantize_gguf";
  traits(opt.target);
  // Plan every tensor (and check the importance matrices) before the output exists.
  std::vector<gguf_tensor_change> plan;
  std::vector<std::uint32_t> out_types;
  for (const gguf_tensor& t : in.tensors()) {
    gguf_tensor_change c{t.name, t.type_name(), t.type_name(), t.bytes, t.bytes, false, false, ""};
    std::uint32_t out_type = t.type;
    const bool is_float = t.type == 0 || t.type == 1 || t.type == 30;
    if (t.ne.size() != 2) c.reason = "not 2-D";
    else if (opt.select && !opt.select(t.name)) c.reason = "not selected";
    else if (!is_float) c.reason = "already in a block format";
    else {
      const type tt = fallback_type(opt.target, t.cols());
      c.converted = true;
      c.fallback = tt != opt.target;
      if (c.fallback)
        c.reason = ::pare::detail::concat("row length ", t.cols(), " is not a multiple of the ", to_string(opt.target),
                                          " block (", traits(opt.target).block_size, ")");
      c.to = to_string(tt);
      c.bytes_out = t.rows() * row_bytes(tt, t.cols());
      out_type = static_cast<std::uint32_t>(tt);
      if (opt.imatrix) {
        const auto it = opt.imatrix->find(t.name);
        if (it != opt.imatrix->end() && it->second.size() != t.cols())
          ::pare::detail::fail<shape_error>(where, ": argument 'imatrix': tensor '", t.name, "': expected ", t.cols(),
                                            " weights, got ", it->second.size());
      }
    }
    plan.push_back(c);
    out_types.push_back(out_type);
  }
  gguf_writer w(out_path);
  for (const auto& [k, v] : in.metadata()) w.set_value(k, v);
  if (in.has("general.alignment")) w.set_alignment(in.alignment());
  w.set("general.quantization_version", std::uint32_t(2));
  for (std::size_t i = 0; i < in.tensors().size(); ++i) w.add_tensor(in.tensors()[i].name, out_types[i], in.tensors()[i].ne);
  w.write_header();
  std::vector<float> rows;
  for (std::size_t i = 0; i < in.tensors().size(); ++i) {
    const gguf_tensor& t = in.tensors()[i];
    if (!plan[i].converted) {
      w.write_tensor(t.name, t.data, static_cast<std::size_t>(t.bytes));
      continue;
    }
    if (opt.progress) opt.progress(t.name);
    const std::size_t r = t.rows(), c = t.cols();
    rows.resize(r * c);
    for (std::size_t k = 0; k < r; ++k) detail::read_float_row(t, k, rows.data() + k * c);
    std::vector<float> imat;
    if (opt.imatrix) {
      const auto it = opt.imatrix->find(t.name);
      if (it != opt.imatrix->end()) imat = it->second;
    }
    const ggml_tensor q = quantize(matrix_view<const float>(rows.data(), r, c), static_cast<type>(out_types[i]),
                                   traits(static_cast<type>(out_types[i])).uses_imatrix ? imat : std::vector<float>{});
    w.write_tensor(t.name, q.bytes().data(), q.bytes().size());
  }
  w.finish();
  return plan;
}

}  // namespace ggml
PARE_NAMESPACE_END
