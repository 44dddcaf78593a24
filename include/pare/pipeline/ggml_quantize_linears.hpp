// Model-level ggml quantization: every selected linear layer to a llama.cpp block format, with llama.cpp's fallbacks and an optional importance matrix from calibration.
#pragma once

// quantize_linears_ggml(m, spec, select, calib) replaces each selected linear layer by a
// ggml_linear of spec.type. A layer whose input width is not a multiple of the format's
// block falls back as llama.cpp's quantize does: q2_K/q3_K → iq4_nl, q4_K → q5_0,
// q5_K → q5_1, q6_K → q8_0 when the width is a multiple of 32, otherwise (and for the
// 32-element formats) f16; the record says which and why. With spec.imatrix, each layer's
// importance weights are llama.cpp's imatrix: the mean of x_k² over the calibration rows
// (calibration_capture's sum_sq / tokens); a layer without statistics is an error. With a
// tied classifier, quantizing output.weight also replaces the embedding rows by the
// dequantized classifier rows (one stored tensor, as llama.cpp stores a quantized
// token_embd that serves both lookups).

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pare/ggml/quantize.hpp"
#include "pare/io/convert/gguf_quantize.hpp"
#include "pare/model/calibration.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/model/layers/ggml_linear.hpp"
#include "pare/model/llama_model.hpp"

PARE_NAMESPACE_BEGIN

/// "q4_K" or "q4_K:imatrix" (the part after "ggml:" in a recipe step).
struct ggml_quant_spec {
  ggml::type type = ggml::type::q8_0;
  bool imatrix = false;

  static ggml_quant_spec parse(const std::string& s) {
    ggml_quant_spec out;
    const std::size_t c = s.find(':');
    out.type = ggml::parse_type(s.substr(0, c));
    if (c != std::string::npos) {
      const std::string opt = s.substr(c + 1);
      if (opt != "imatrix")
        detail::fail<argument_error>("ggml_quant_spec::parse('", s, "'): expected '<type>' or '<type>:imatrix', got option '",
                                     opt, "'");
      out.imatrix = true;
    }
    return out;
  }
  std::string str() const { return std::string(ggml::to_string(type)) + (imatrix ? ":imatrix" : ""); }
};

/// The type llama.cpp would store a row of `cols` in when `t` does not fit it (see ggml::fallback_type).
inline ggml::type ggml_fallback_type(ggml::type t, std::size_t cols) { return ggml::fallback_type(t, cols); }

/// llama.cpp's importance weights of one layer: mean x_k² over the calibration rows.
inline std::vector<float> imatrix_of(const linear_input_stats& s, const std::string& name) {
  if (s.tokens == 0 || s.sum_sq.size() != s.in_features)
    detail::fail<argument_error>("imatrix_of: layer '", name, "': expected captured channel statistics, got none");
  std::vector<float> w(s.in_features);
  for (std::size_t k = 0; k < w.size(); ++k) w[k] = static_cast<float>(s.sum_sq[k] / double(s.tokens));
  return w;
}

inline std::vector<layer_change> quantize_linears_ggml(llama_model& m, const ggml_quant_spec& spec,
                                                       const std::function<bool(const std::string&)>& select = {},
                                                       const calibration_capture* calib = nullptr) {
  const char* where = "quantize_linears_ggml";
  if (spec.imatrix && !calib)
    detail::fail<argument_error>(where, ": argument 'calib': expected calibration statistics for ", spec.str(), ", got none");
  // Check everything before changing the model.
  std::vector<std::string> names;
  for (const std::string& name : m.linear_names())
    if (!select || select(name)) {
      if (spec.imatrix && !calib->all().count(name))
        detail::fail<argument_error>(where, ": layer '", name, "': no calibration statistics captured");
      names.push_back(name);
    }
  std::vector<layer_change> out;
  for (const std::string& name : names) {
    const linear_layer& cur = m.linear(name);
    const ggml::type t = ggml_fallback_type(spec.type, cur.in_features());
    layer_change ch{name, "", "", t != spec.type, ""};
    if (ch.fallback)
      ch.reason = detail::concat("in_features ", cur.in_features(), " is not a multiple of the ", ggml::to_string(spec.type),
                                 " block (", ggml::traits(spec.type).block_size, ")");
    std::vector<float> w(cur.out_features() * cur.in_features());
    cur.dense_weights(matrix_view<float>(w.data(), cur.out_features(), cur.in_features()));
    std::vector<float> imat;
    if (spec.imatrix && ggml::traits(t).uses_imatrix) imat = imatrix_of(calib->at(name), name);
    auto q = std::make_unique<ggml_linear>(matrix_view<const float>(w.data(), cur.out_features(), cur.in_features()), t, imat);
    ch.format = q->format() + (imat.empty() ? "" : ":imatrix");
    ch.backend = q->backend();
    m.set_linear(name, std::move(q));
    out.push_back(ch);
  }
  return out;
}

PARE_NAMESPACE_END
