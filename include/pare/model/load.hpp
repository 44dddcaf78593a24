// Model and tokenizer loading: llama-architecture GGUF files and llama2.c checkpoints, the reader chosen by the file's first bytes.
#pragma once

// GGUF: hyper-parameters from the llama.* keys (embedding_length, feed_forward_length,
// block_count, attention.head_count(_kv), context_length, attention.layer_norm_rms_epsilon,
// rope.freq_base), tensors by their GGUF names; output.weight optional (absent = tied to
// token_embd.weight). Tensors may be F32 (used in place) or any format of pare/ggml
// (F16, BF16, Q8_0, Q4_0, ..., Q6_K, IQ4_NL): linear layers in a ggml format become
// ggml_linear layers holding the file's bytes (integer formats run on the int8/int4
// kernels), embeddings and norms in those formats are dequantized to fp32. A quantized token_embd without output.weight
// is both the embedding (dequantized) and the classifier (ggml_linear), as in llama.cpp.
// Other tensor types are an unsupported_error naming the tensor and its type.
// The tokenizer comes from tokenizer.ggml.tokens / scores and the bos / eos ids (U+2581
// in pieces is a space).
// llama2.c: the checkpoint and a tokenizer file (tok512.bin format) given separately.

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/io/gguf.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/io/mapped_file.hpp"
#include "pare/ggml/quantize.hpp"
#include "pare/ggml/weight_source.hpp"
#include "pare/model/layers/ggml_linear.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/io/tokenizer.hpp"

PARE_NAMESPACE_BEGIN

inline llama_model llama_model_from_gguf(const gguf_file& g) {
  const std::string arch = g.get_or<std::string>("general.architecture", "");
  if (arch != "llama")
    detail::fail<unsupported_error>("llama_model_from_gguf: general.architecture: expected 'llama', got '", arch, "'");
  llama_config c;
  c.dim = g.get<int>("llama.embedding_length");
  c.hidden_dim = g.get<int>("llama.feed_forward_length");
  c.n_layers = g.get<int>("llama.block_count");
  c.n_heads = g.get<int>("llama.attention.head_count");
  c.n_kv_heads = g.get_or<int>("llama.attention.head_count_kv", c.n_heads);
  c.seq_len = g.get<int>("llama.context_length");
  c.norm_eps = g.get_or<float>("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  c.rope_theta = g.get_or<float>("llama.rope.freq_base", 10000.0f);
  const int key_length = g.get_or<int>("llama.attention.key_length", 0);
  const int value_length = g.get_or<int>("llama.attention.value_length", key_length);
  if (key_length != value_length)
    detail::fail<unsupported_error>("llama_model_from_gguf: llama.attention.value_length: expected the key_length ",
                                    key_length, ", got ", value_length);
  if (key_length > 0 && c.n_heads > 0 && key_length * c.n_heads != c.dim) c.head_dim = key_length;
  const gguf_tensor& emb = g.tensor("token_embd.weight");
  c.vocab_size = static_cast<int>(emb.rows());
  const bool tied = g.find_tensor("output.weight") == nullptr;
  auto ggml_of = [&](const gguf_tensor& t) -> const ggml::type_traits* {
    return t.type == 0 ? nullptr : ggml::find_traits(t.type);
  };
  auto block_tensor = [&](const gguf_tensor& t) {
    std::vector<std::uint8_t> bytes(t.data, t.data + t.bytes);
    return ggml::ggml_tensor(static_cast<ggml::type>(t.type), t.rows(), t.cols(), std::move(bytes));
  };
  // The last non-F32 tensor, dequantized: from_tensors copies each tensor before it asks for
  // the next, so one buffer suffices (keeping them all held an fp32 copy of the whole model).
  std::vector<float> dequantized;
  llama_model m = llama_model::from_tensors(
      c,
      [&](const std::string& name) {
        const gguf_tensor& t = g.tensor(name);
        if (t.type == 0) {
          const matrix_view<const float> v = g.f32_matrix(name);
          return tensor_view<const float>(v.row_ptr(0), shape_t{v.rows(), v.cols()});
        }
        if (!ggml_of(t))
          detail::fail<unsupported_error>("llama_model_from_gguf: tensor '", name, "': type ", t.type_name(),
                                          " is not supported (expected f32 or one of ", ggml::supported_names(), ")");
        dequantized = block_tensor(t).dequantize();
        return tensor_view<const float>(dequantized.data(), shape_t{t.rows(), t.cols()});
      },
      tied);
  // ggml-format linears keep the file's blocks (bit-identical values; integer kernels for integer formats).
  for (const std::string& name : m.linear_names()) {
    const std::string src = (name == "output.weight" && tied) ? "token_embd.weight" : name;
    const gguf_tensor& t = g.tensor(src);
    if (t.type != 0 && ggml::find_traits(t.type))
      m.set_linear(name, std::make_unique<ggml_linear>(block_tensor(t)));
  }
  return m;
}

inline tokenizer tokenizer_from_gguf(const gguf_file& g) {
  return tokenizer::from_gguf_pieces(g.get<std::vector<std::string>>("tokenizer.ggml.tokens"),
                                     g.get<std::vector<float>>("tokenizer.ggml.scores"),
                                     g.get_or<std::int32_t>("tokenizer.ggml.bos_token_id", 1),
                                     g.get_or<std::int32_t>("tokenizer.ggml.eos_token_id", 2));
}

/// A llama2.c tokenizer file: int32 max_token_length, then per token float32 score,
/// int32 length, bytes. format_error naming the path, the byte offset and the field (a
/// file that ends early says "truncated"); io_error naming the path and the system's
/// reason when it cannot be read (FIFOs and directories are refused without being opened).
inline tokenizer load_llama2c_tokenizer(const std::string& path, int vocab_size) {
  const std::string why = unreadable_file_reason(path);
  if (!why.empty()) detail::fail<io_error>("load_llama2c_tokenizer: '", path, "': ", why);
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::fail<io_error>("load_llama2c_tokenizer: cannot open '", path, "': ", std::strerror(errno));
  std::int32_t max_len = 0;
  if (!in.read(reinterpret_cast<char*>(&max_len), 4))
    detail::fail<format_error>("tokenizer '", path, "': byte 0: max_token_length: truncated (the file has ",
                               in.gcount(), " bytes, expected at least 4)");
  if (max_len <= 0 || max_len > (1 << 20))
    detail::fail<format_error>("tokenizer '", path, "': byte 0: max_token_length: expected 1..2^20, got ", max_len);
  std::vector<std::string> pieces;
  std::vector<float> scores;
  for (int i = 0; i < vocab_size; ++i) {
    float score = 0;
    std::int32_t len = 0;
    const auto at = static_cast<long long>(in.tellg());
    if (!in.read(reinterpret_cast<char*>(&score), 4) || !in.read(reinterpret_cast<char*>(&len), 4))
      detail::fail<format_error>("tokenizer '", path, "': byte ", at, ": token ", i, " of ", vocab_size,
                                 ": truncated (expected its score and length, 8 bytes)");
    if (len < 0 || len > max_len)
      detail::fail<format_error>("tokenizer '", path, "': byte ", at + 4, ": token ", i, ": length ", len,
                                 " outside [0, ", max_len, "]");
    std::string s(static_cast<std::size_t>(len), '\0');
    if (len && !in.read(&s[0], len))
      detail::fail<format_error>("tokenizer '", path, "': byte ", at + 8, ": token ", i, " of ", vocab_size,
                                 ": truncated (expected ", len, " bytes of text)");
    pieces.push_back(std::move(s));
    scores.push_back(score);
  }
  return tokenizer(std::move(pieces), std::move(scores), 1, 2);
}

/// True if the file at `path` is a regular file that starts with the GGUF magic (false for
/// anything else, FIFOs included, which are never opened).
inline bool is_gguf_file(const std::string& path) {
  if (!unreadable_file_reason(path).empty()) return false;
  std::ifstream in(path, std::ios::binary);
  char m[4] = {};
  return in.read(m, 4) && std::memcmp(m, "GGUF", 4) == 0;
}

/// The model file formats pare reads.
enum class model_file_format { gguf, safetensors, llama2c };

/// The format a file's first bytes announce (`head`: its first `n` bytes, `file_size` its
/// size): "GGUF" is GGUF; a little-endian uint64 header length that fits the file followed
/// by '{' is safetensors; anything else is taken for a llama2.c checkpoint (a format with
/// no magic; its reader checks the header and the exact size).
inline model_file_format model_file_format_of(const std::uint8_t* head, std::size_t n, std::uint64_t file_size) {
  if (n >= 4 && std::memcmp(head, "GGUF", 4) == 0) return model_file_format::gguf;
  if (n >= 9 && head[8] == '{') {
    std::uint64_t len = 0;
    for (int i = 7; i >= 0; --i) len = (len << 8) | head[i];
    if (len >= 2 && len <= file_size - 8) return model_file_format::safetensors;
  }
  return model_file_format::llama2c;
}

/// "an empty file", "a 3-byte file: 61 62 63 ('abc')", "first bytes 7f 45 4c 46 02 01 01 00
/// ('.ELF....')": a file's first bytes (at most 8 shown) for messages.
inline std::string describe_first_bytes(const std::uint8_t* head, std::size_t n, std::uint64_t file_size) {
  if (file_size == 0 || n == 0) return "an empty file";
  const std::size_t shown = std::min<std::size_t>(n, 8);
  std::string hex, text;
  for (std::size_t i = 0; i < shown; ++i) {
    char b[4];
    std::snprintf(b, sizeof b, "%s%02x", i ? " " : "", head[i]);
    hex += b;
    text += std::isprint(head[i]) ? static_cast<char>(head[i]) : '.';
  }
  return (file_size <= 8 ? detail::concat("a ", file_size, "-byte file: ") : std::string("first bytes ")) + hex +
         " ('" + text + "')";
}

/// The format of the model file at `path`, by its first bytes (the overload above). When
/// the name's extension (.gguf, .safetensors) says one format and the bytes another, a
/// format_error says what the file was expected to be and what its first bytes are;
/// io_error with the system's reason when it cannot be read (FIFOs and directories are
/// refused without being opened).
inline model_file_format model_file_format_of(const std::string& path) {
  const std::string why = unreadable_file_reason(path);
  if (!why.empty()) detail::fail<io_error>("model file '", path, "': ", why);
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) detail::fail<io_error>("model file '", path, "': cannot read its size: ", ec.message());
  std::uint8_t head[16] = {};
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::fail<io_error>("model file '", path, "': cannot open for reading: ", std::strerror(errno));
  in.read(reinterpret_cast<char*>(head), sizeof head);
  const auto n = static_cast<std::size_t>(in.gcount());
  const model_file_format f = model_file_format_of(head, n, size);
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".gguf" && f != model_file_format::gguf)
    detail::fail<format_error>("model file '", path, "': expected a GGUF file (it starts with the magic 'GGUF'), got ",
                               describe_first_bytes(head, n, size));
  if (ext == ".safetensors" && f != model_file_format::safetensors)
    detail::fail<format_error>("model file '", path,
                               "': expected a safetensors file (a little-endian uint64 header length, then the "
                               "JSON header '{...'), got ",
                               describe_first_bytes(head, n, size));
  return f;
}

PARE_NAMESPACE_END
