// quantizer<ggml::q4_K> and friends: llama.cpp's block formats as compile-time quantizer policies, twins of the runtime "ggml:<type>" configs.
#pragma once

// Usage:
//   pare::quantizer<pare::ggml::q4_K> q;                 // importance-free
//   pare::ggml::ggml_tensor t = q.quantize(pare::matrix_of(w));
//   pare::ggml::ggml_tensor ti = q.quantize(w_view, imatrix);   // with llama.cpp's importance matrix
//   q.fake_quantize(x, y);                                 // y = dequantize(quantize(x))
//   q.config()                                             // ggml_config{"q4_K"}: the runtime twin
//
// The format tags (ggml::q8_0, ggml::q4_K, ...) name a pare::ggml::type; a ggml format
// fixes the granularity, scheme, observer and rounding, so quantizer<Tag> takes no other
// arguments. Results are the bytes of pare::ggml::quantize(w, Tag::value, imatrix).

#include <string>
#include <type_traits>
#include <vector>

#include "pare/ggml/quantize.hpp"
#include "pare/quant/quantizer.hpp"

PARE_NAMESPACE_BEGIN
namespace ggml {

/// Compile-time tag of one ggml format.
template <type T>
struct format_tag {
  static constexpr type value = T;
};

using f16_format = format_tag<type::f16>;
using bf16_format = format_tag<type::bf16>;
using q8_0 = format_tag<type::q8_0>;
using q4_0 = format_tag<type::q4_0>;
using q4_1 = format_tag<type::q4_1>;
using q5_0 = format_tag<type::q5_0>;
using q5_1 = format_tag<type::q5_1>;
using q2_K = format_tag<type::q2_K>;
using q3_K = format_tag<type::q3_K>;
using q4_K = format_tag<type::q4_K>;
using q5_K = format_tag<type::q5_K>;
using q6_K = format_tag<type::q6_K>;
using iq4_nl = format_tag<type::iq4_nl>;

/// The runtime form: "ggml:<type>" (what pare-compress recipes say after "quant:").
struct ggml_config {
  type format = type::q8_0;
  std::string str() const { return std::string("ggml:") + to_string(format); }
  /// Parses "ggml:<type>" (or just "<type>"); argument_error naming the text otherwise.
  static ggml_config parse(const std::string& s) {
    const std::string body = s.rfind("ggml:", 0) == 0 ? s.substr(5) : s;
    return ggml_config{parse_type(body)};
  }
  friend bool operator==(const ggml_config& a, const ggml_config& b) { return a.format == b.format; }
};

}  // namespace ggml

/// quantizer<ggml::q4_K>: see the header comment.
template <ggml::type T>
class quantizer<ggml::format_tag<T>, void, symmetric, minmax_observer, nearest_even> {
 public:
  using format_type = ggml::format_tag<T>;
  static constexpr ggml::type type = T;

  ggml::ggml_config config() const { return ggml::ggml_config{T}; }
  ggml::ggml_tensor quantize(matrix_view<const float> w, const std::vector<float>& imatrix = {}) const {
    return ggml::quantize(w, T, imatrix);
  }
  ggml::ggml_tensor operator()(matrix_view<const float> w) const { return quantize(w); }
  void fake_quantize(matrix_view<const float> x, matrix_view<float> y, const std::vector<float>& imatrix = {}) const {
    ggml::fake_quantize(x, T, y, imatrix);
  }
};

PARE_NAMESPACE_END
