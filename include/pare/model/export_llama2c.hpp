// Conversion of a llama-architecture GGUF file (f32 / f16 / bf16 tensors) to a legacy llama2.c checkpoint and tokenizer file.
#pragma once

// The inverse of export_gguf.hpp (write_llama2c_as_gguf).
//
// Config: dim = llama.embedding_length, hidden_dim = llama.feed_forward_length, n_layers =
// llama.block_count, n_heads = llama.attention.head_count, n_kv_heads =
// llama.attention.head_count_kv (default: head_count), vocab_size = the rows of
// token_embd.weight, seq_len = llama.context_length unless the options give one (ggml-org's
// stories260K.gguf says 2048 where stories260K.bin says 512, the length it was trained with).
// A llama2.c checkpoint cannot say more than that: run.c fixes RMSNorm eps 1e-5, RoPE theta
// 10000 over the whole head, no RoPE scaling, dense FFN, no biases. So a GGUF whose
// llama.attention.layer_norm_rms_epsilon is not 1e-5 (as float32), llama.rope.freq_base
// not 10000, llama.rope.dimension_count not the head size, llama.rope.scaling.type not
// "none", llama.expert_count above 0, or that holds any tensor other than the ones below,
// throws unsupported_error naming the key or tensor: the llama2.c file would be a different
// model. general.architecture must be "llama" (unsupported_error otherwise).
//
// Tensors: token_embd, blk.{l}.attn_norm / attn_q / attn_k / attn_v / attn_output /
// ffn_norm / ffn_gate (w1) / ffn_down (w2) / ffn_up (w3), output_norm and the optional
// output.weight; GGUF ne (innermost first) must be exactly the reverse of the llama2.c
// shape ([in, out] for a matrix [out, in]). f32 is copied, f16 and bf16 are widened
// exactly; any other type (the quantized ones) throws unsupported_error naming the tensor.
// The classifier is shared when output.weight is absent or bit-for-bit equal to
// token_embd.weight after widening (llama.cpp's converter writes it even when tied, as
// stories260K.gguf shows), separate otherwise.
//
// Q / K: copied as they are, no permutation. llama.cpp's llama architecture applies RoPE
// to adjacent pairs (rope type "norm"), as llama2.c run.c does: its HF converter permutes
// HF's q_proj / k_proj back into that order when it writes the GGUF, and
// convert-llama2c-to-ggml copies llama2.c weights unchanged — stories260K.gguf is
// bit-identical to stories260K.bin tensor for tensor, and write_llama2c_as_gguf
// reproduces it byte for byte without permuting anything.
//
// RoPE tables: computed (llama2c_compute_rope_tables) unless given in the options; see
// pare/io/llama2c_writer.hpp for how they can differ from export.py's in the last bit.
//
// Tokenizer (tokenizer.ggml.*): model must be "llama" (SentencePiece BPE), bos / eos ids 1
// and 2 (run.c fixes them) and ids 3..258 the byte pieces <0x00>..<0xFF> (run.c's byte
// fallback adds 3), else unsupported_error. U+2581 becomes a space; the BOS and EOS pieces
// become "\n<s>\n" and "\n</s>\n" as llama2.c's tokenizer.py writes them (an option keeps
// the GGUF strings). stories260K.gguf converts to tok512.bin byte for byte.
//
// Every problem is found before anything is written; missing or malformed metadata and
// tensors are format_error naming the key or tensor (and, for tensor data, its byte
// offset). Nothing appears at the output path on error (atomic_file).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/dtypes/bf16.hpp"
#include "pare/core/dtypes/fp16.hpp"
#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/io/gguf.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/io/llama2c_writer.hpp"
#include "pare/io/tokenizer.hpp"

PARE_NAMESPACE_BEGIN

struct gguf_llama2c_options {
  /// The seq_len written to the header (and the rows of the RoPE tables); 0: the GGUF's
  /// llama.context_length.
  int seq_len = 0;
  /// RoPE tables to store verbatim (see llama2c_write_options); default computed.
  llama2c_write_options write{};
  /// Tokenizer: write the BOS / EOS pieces as llama2.c's "\n<s>\n" / "\n</s>\n" (true) or
  /// as the GGUF has them (false).
  bool llama2c_special_pieces = true;
};

namespace detail {

/// "gguf '<path>'" for messages.
inline std::string l2c_src(const gguf_file& g) { return concat("gguf '", g.file().path(), "'"); }

/// An integer metadata value in [1, INT32_MAX]; `fallback` (> 0) when absent, or
/// format_error naming the key when absent and fallback is 0.
inline int l2c_positive_int(const gguf_file& g, const std::string& key, int fallback = 0) {
  if (!g.has(key)) {
    if (fallback > 0) return fallback;
    fail<format_error>(l2c_src(g), ": metadata key '", key, "' is missing (a llama model needs it)");
  }
  const gguf_value& v = g.value(key);
  std::int64_t x = 0;
  bool ok = false;
  if (v.is_unsigned()) {
    ok = v.u <= std::uint64_t(std::numeric_limits<std::int32_t>::max());
    x = ok ? std::int64_t(v.u) : 0;
  } else if (v.is_signed()) {
    ok = v.i <= std::numeric_limits<std::int32_t>::max();
    x = v.i;
  } else {
    fail<format_error>(l2c_src(g), ": metadata key '", key, "': expected an integer, got ", to_string(v.type));
  }
  if (!ok || x <= 0)
    fail<format_error>(l2c_src(g), ": metadata key '", key, "': expected an integer in [1, 2^31 - 1], got ",
                       v.is_unsigned() ? concat(v.u) : concat(v.i));
  return static_cast<int>(x);
}

/// A float metadata value, or `fallback` when absent; format_error naming the key if it is not a number.
inline double l2c_number(const gguf_file& g, const std::string& key, double fallback) {
  if (!g.has(key)) return fallback;
  const gguf_value& v = g.value(key);
  if (v.is_float()) return v.f;
  if (v.is_unsigned()) return double(v.u);
  if (v.is_signed()) return double(v.i);
  fail<format_error>(l2c_src(g), ": metadata key '", key, "': expected a number, got ", to_string(v.type));
}

/// A string metadata value, or `fallback` when absent; format_error naming the key if it is not a string.
inline std::string l2c_string(const gguf_file& g, const std::string& key, const std::string& fallback,
                              bool required = false) {
  if (!g.has(key)) {
    if (required) fail<format_error>(l2c_src(g), ": metadata key '", key, "' is missing");
    return fallback;
  }
  const gguf_value& v = g.value(key);
  if (v.type != gguf_type::string)
    fail<format_error>(l2c_src(g), ": metadata key '", key, "': expected a string, got ", to_string(v.type));
  return v.s;
}

/// "[a, b]" for a GGUF ne list.
inline std::string l2c_ne(const std::vector<std::uint64_t>& ne) {
  std::string s = "[";
  for (std::size_t i = 0; i < ne.size(); ++i) s += concat(i ? ", " : "", ne[i]);
  return s + "]";
}

/// Checks that tensor `name` exists with a type this converter widens and ne equal to the
/// reverse of `shape`; returns it.
inline const gguf_tensor& l2c_tensor(const gguf_file& g, const std::string& name, const shape_t& shape) {
  const gguf_tensor* t = g.find_tensor(name);
  std::vector<std::uint64_t> want;
  for (std::size_t d = shape.rank(); d-- > 0;) want.push_back(shape[d]);
  if (t == nullptr)
    fail<format_error>(l2c_src(g), ": tensor '", name, "' is missing (expected ne ", l2c_ne(want), ", shape ", shape,
                       ")");
  if (t->type != 0 && t->type != 1 && t->type != 30)
    fail<unsupported_error>(l2c_src(g), ": tensor '", name, "': type ", t->type_name(),
                            " is not supported: a llama2.c checkpoint is float32 and this converter widens f32, f16 "
                            "and bf16 only (dequantize the model first)");
  if (t->ne != want)
    fail<format_error>(l2c_src(g), ": tensor '", name, "' at byte offset ", g.data_offset() + t->offset,
                       ": expected ne ", l2c_ne(want), " (shape ", shape, "), got ne ", l2c_ne(t->ne));
  return *t;
}

/// Element i of tensor `t` (f32, f16 or bf16) as float32, exactly.
inline float l2c_element(const gguf_tensor& t, std::size_t i) noexcept {
  if (t.type == 0) {
    float f;
    std::memcpy(&f, t.data + 4 * i, 4);
    return f;
  }
  std::uint16_t h;
  std::memcpy(&h, t.data + 2 * i, 2);
  return t.type == 1 ? fp16_to_float(h) : bf16_to_float(h);
}

/// Tensor `t` as float32 of `shape`: a view into the file for f32, else widened into `buf`.
inline tensor_view<const float> l2c_view(const gguf_tensor& t, const shape_t& shape, std::vector<float>& buf) {
  const std::size_t n = shape.size();
  if (t.type == 0 && reinterpret_cast<std::uintptr_t>(t.data) % alignof(float) == 0)
    return tensor_view<const float>(reinterpret_cast<const float*>(t.data), shape);
  buf.resize(n);
  for (std::size_t i = 0; i < n; ++i) buf[i] = l2c_element(t, i);
  return tensor_view<const float>(buf.data(), shape);
}

/// True when tensors a and b (same element count n) widen to the same float32 bits.
inline bool l2c_bit_equal(const gguf_tensor& a, const gguf_tensor& b, std::size_t n) noexcept {
  if (a.type == b.type) return a.bytes == b.bytes && std::memcmp(a.data, b.data, a.bytes) == 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float x = l2c_element(a, i), y = l2c_element(b, i);
    if (std::memcmp(&x, &y, 4) != 0) return false;
  }
  return true;
}

}  // namespace detail

/// The llama2.c config of a llama GGUF (see the essay above): seq_len from `seq_len`, or
/// llama.context_length when it is 0. Decides the classifier sharing from the tensors.
/// Throws unsupported_error / format_error naming the key or tensor, argument_error for a
/// negative seq_len.
inline llama2c_config llama2c_config_from_gguf(const gguf_file& g, int seq_len = 0) {
  const std::string src = detail::l2c_src(g);
  if (seq_len < 0)
    detail::fail<argument_error>("llama2c_config_from_gguf: argument 'seq_len': expected 0 (the GGUF's "
                                 "llama.context_length) or a positive length, got ", seq_len);
  const std::string arch = detail::l2c_string(g, "general.architecture", "", true);
  if (arch != "llama")
    detail::fail<unsupported_error>(src, ": general.architecture: expected 'llama' (llama2.c holds only the llama "
                                    "architecture), got '", arch, "'");
  llama2c_config c;
  c.dim = detail::l2c_positive_int(g, "llama.embedding_length");
  c.hidden_dim = detail::l2c_positive_int(g, "llama.feed_forward_length");
  c.n_layers = detail::l2c_positive_int(g, "llama.block_count");
  c.n_heads = detail::l2c_positive_int(g, "llama.attention.head_count");
  c.n_kv_heads = detail::l2c_positive_int(g, "llama.attention.head_count_kv", c.n_heads);
  c.seq_len = seq_len > 0 ? seq_len : detail::l2c_positive_int(g, "llama.context_length");
  const gguf_tensor* emb = g.find_tensor("token_embd.weight");
  if (emb == nullptr) detail::fail<format_error>(src, ": tensor 'token_embd.weight' is missing");
  if (emb->ne.size() != 2 || emb->ne[1] == 0 || emb->ne[1] > std::uint64_t(std::numeric_limits<std::int32_t>::max()))
    detail::fail<format_error>(src, ": tensor 'token_embd.weight': expected ne [", c.dim,
                               ", vocab_size] with vocab_size in [1, 2^31 - 1], got ne ", detail::l2c_ne(emb->ne));
  c.vocab_size = static_cast<int>(emb->ne[1]);

  // The structure must be a valid llama2.c one (report the GGUF keys, not cfg fields).
  if (c.dim % c.n_heads != 0)
    detail::fail<format_error>(src, ": llama.embedding_length ", c.dim, " is not a multiple of "
                               "llama.attention.head_count ", c.n_heads);
  if (c.n_heads % c.n_kv_heads != 0)
    detail::fail<format_error>(src, ": llama.attention.head_count ", c.n_heads, " is not a multiple of "
                               "llama.attention.head_count_kv ", c.n_kv_heads);
  if (c.head_size() % 2 != 0)
    detail::fail<unsupported_error>(src, ": head size ", c.head_size(), " (llama.embedding_length / "
                                    "llama.attention.head_count) is odd: RoPE rotates pairs");

  // What a llama2.c file cannot express.
  const float eps = static_cast<float>(detail::l2c_number(g, "llama.attention.layer_norm_rms_epsilon", 1e-5));
  if (eps != 1e-5f)
    detail::fail<unsupported_error>(src, ": llama.attention.layer_norm_rms_epsilon: expected 1e-05 (llama2.c fixes "
                                    "it), got ", eps);
  const double theta = detail::l2c_number(g, "llama.rope.freq_base", 10000.0);
  if (theta != 10000.0)
    detail::fail<unsupported_error>(src, ": llama.rope.freq_base: expected 10000 (llama2.c fixes it), got ", theta);
  const int rope_dims = detail::l2c_positive_int(g, "llama.rope.dimension_count", c.head_size());
  if (rope_dims != c.head_size())
    detail::fail<unsupported_error>(src, ": llama.rope.dimension_count: expected the head size ", c.head_size(),
                                    " (llama2.c rotates whole heads), got ", rope_dims);
  const int key_length = detail::l2c_positive_int(g, "llama.attention.key_length", c.head_size());
  if (key_length != c.head_size())
    detail::fail<unsupported_error>(src, ": llama.attention.key_length: expected llama.embedding_length / "
                                    "llama.attention.head_count = ", c.head_size(),
                                    " (llama2.c derives the head size from the width), got ", key_length);
  const std::string scaling = detail::l2c_string(g, "llama.rope.scaling.type", "none");
  if (scaling != "none")
    detail::fail<unsupported_error>(src, ": llama.rope.scaling.type: expected 'none' (llama2.c has no RoPE "
                                    "scaling), got '", scaling, "'");
  if (g.has("llama.expert_count") && detail::l2c_number(g, "llama.expert_count", 0) != 0)
    detail::fail<unsupported_error>(src, ": llama.expert_count: expected 0 (llama2.c has a dense FFN), got ",
                                    detail::l2c_number(g, "llama.expert_count", 0));

  // Every tensor must have a place in the file; the classifier decides the sharing.
  c.shared_classifier = true;
  const std::vector<std::pair<std::string, shape_t>> layout = llama2c_file_tensors(c);
  std::set<std::string> known{"output.weight"};
  for (const auto& e : layout) known.insert(e.first);
  for (const gguf_tensor& t : g.tensors())
    if (known.count(t.name) == 0)
      detail::fail<unsupported_error>(src, ": tensor '", t.name, "' (ne ", detail::l2c_ne(t.ne),
                                      ") has no place in a llama2.c checkpoint");
  for (const auto& e : layout) detail::l2c_tensor(g, e.first, e.second);
  if (g.find_tensor("output.weight") != nullptr) {
    const shape_t cls{std::size_t(c.vocab_size), std::size_t(c.dim)};
    const gguf_tensor& out = detail::l2c_tensor(g, "output.weight", cls);
    c.shared_classifier = detail::l2c_bit_equal(out, g.tensor("token_embd.weight"), cls.size());
  }
  (void)llama2c_checkpoint::file_size_for(c);  // format_error if the file size overflows
  return c;
}

/// Writes the model of a llama GGUF as a llama2.c checkpoint at `path` (see the essay
/// above); returns the config written. One widened tensor is in memory at a time.
inline llama2c_config write_gguf_as_llama2c(const gguf_file& g, const std::string& path,
                                            const gguf_llama2c_options& opt = {}) {
  static const char* const fn = "write_gguf_as_llama2c";
  const llama2c_config c = llama2c_config_from_gguf(g, opt.seq_len);
  const std::vector<std::pair<std::string, shape_t>> layout = llama2c_file_tensors(c);
  llama2c_rope_tables computed;
  const auto rope = detail::llama2c_rope_views(fn, c, opt.write, computed);
  std::vector<float> buf;
  detail::write_llama2c_stream(
      fn, path, c,
      [&](std::size_t i) {
        const auto& [name, shape] = layout[i];
        return detail::l2c_view(g.tensor(name), shape, buf);
      },
      rope.first, rope.second);
  return c;
}

/// The tokenizer of a llama GGUF with its pieces as a llama2.c tokenizer file holds them
/// (see the essay above). Throws unsupported_error / format_error naming the key or piece.
inline tokenizer llama2c_tokenizer_from_gguf(const gguf_file& g, const gguf_llama2c_options& opt = {}) {
  const std::string src = detail::l2c_src(g);
  const std::string model = detail::l2c_string(g, "tokenizer.ggml.model", "", true);
  if (model != "llama")
    detail::fail<unsupported_error>(src, ": tokenizer.ggml.model: expected 'llama' (SentencePiece BPE, the "
                                    "llama2.c tokenizer), got '", model, "'");
  auto array_of = [&](const char* key, gguf_type elem) -> const gguf_value& {
    if (!g.has(key)) detail::fail<format_error>(src, ": metadata key '", key, "' is missing");
    const gguf_value& v = g.value(key);
    if (v.type != gguf_type::array || v.elem != elem)
      detail::fail<format_error>(src, ": metadata key '", key, "': expected an array of ", to_string(elem), ", got ",
                                 v.type == gguf_type::array ? detail::concat("an array of ", to_string(v.elem))
                                                           : std::string(to_string(v.type)));
    return v;
  };
  const gguf_value& tokens = array_of("tokenizer.ggml.tokens", gguf_type::string);
  const gguf_value& scores = array_of("tokenizer.ggml.scores", gguf_type::float32);
  if (scores.items.size() != tokens.items.size())
    detail::fail<format_error>(src, ": tokenizer.ggml.scores: expected ", tokens.items.size(),
                               " scores (one per token), got ", scores.items.size());
  if (tokens.items.size() < 259)
    detail::fail<unsupported_error>(src, ": tokenizer.ggml.tokens: expected at least 259 pieces (unk, bos, eos and "
                                    "256 byte pieces), got ", tokens.items.size());
  const int bos = detail::l2c_positive_int(g, "tokenizer.ggml.bos_token_id", 1);
  const int eos = detail::l2c_positive_int(g, "tokenizer.ggml.eos_token_id", 2);
  if (bos != 1 || eos != 2)
    detail::fail<unsupported_error>(src, ": tokenizer.ggml.bos_token_id / eos_token_id: expected 1 and 2 (llama2.c "
                                    "fixes them), got ", bos, " and ", eos);
  std::vector<std::string> pieces;
  std::vector<float> sc;
  pieces.reserve(tokens.items.size());
  sc.reserve(tokens.items.size());
  for (std::size_t i = 0; i < tokens.items.size(); ++i) {
    pieces.push_back(tokens.items[i].s);
    sc.push_back(static_cast<float>(scores.items[i].f));
  }
  for (int b = 0; b < 256; ++b) {
    char want[8];
    std::snprintf(want, sizeof want, "<0x%02X>", b);
    if (pieces[std::size_t(b + 3)] != want)
      detail::fail<unsupported_error>(src, ": tokenizer.ggml.tokens[", b + 3, "]: expected the byte piece '", want,
                                      "' (llama2.c byte fallback is byte + 3), got '", pieces[std::size_t(b + 3)],
                                      "'");
  }
  tokenizer t = tokenizer::from_gguf_pieces(std::move(pieces), std::move(sc), bos, eos);
  if (!opt.llama2c_special_pieces) return t;
  std::vector<std::string> p;
  std::vector<float> s;
  for (std::size_t i = 0; i < t.vocab_size(); ++i) {
    const auto id = static_cast<std::int32_t>(i);
    p.push_back(id == bos ? std::string("\n<s>\n") : id == eos ? std::string("\n</s>\n") : t.piece(id));
    s.push_back(t.score(id));
  }
  return tokenizer(std::move(p), std::move(s), bos, eos);
}

/// Writes the tokenizer of a llama GGUF as a llama2.c tokenizer file at `path`.
inline void write_gguf_tokenizer_as_llama2c(const gguf_file& g, const std::string& path,
                                            const gguf_llama2c_options& opt = {}) {
  write_llama2c_tokenizer(path, llama2c_tokenizer_from_gguf(g, opt));
}

PARE_NAMESPACE_END
