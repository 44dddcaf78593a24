// Writer for legacy llama2.c checkpoints (.bin, version 0) from named float32 tensors, and for llama2.c tokenizer files.
#pragma once

// Checkpoint
// ----------
// write_llama2c(path, cfg, tensors) writes the layout documented at the top of
// pare/io/llama2c.hpp (export.py `legacy_export`): the seven int32 header fields
// (vocab_size negated when cfg.shared_classifier is false), then every tensor in file
// order as float32, then — only for a separate classifier — output.weight. `tensors` maps
// the GGUF names llama2c_checkpoint exposes (token_embd.weight, blk.{l}.attn_norm.weight,
// ..., output_norm.weight, and output.weight exactly when the classifier is separate) to
// views of exactly the shapes it exposes ([out, in] for matrices, [dim] for norms); views
// may be strided. Numbers are written in the host byte order, as the reader reads them
// (little-endian in practice).
//
// Everything is validated before a byte is written: the config (argument_error naming the
// cfg field, as llama2c_checkpoint::file_size_for), every expected tensor present
// (argument_error naming it), no tensor that has no place in the file (argument_error
// naming it; output.weight with a shared classifier is one), every shape (shape_error
// naming the tensor, expected and received shape), null data (argument_error). The file
// goes through atomic_file: on any error nothing appears at `path`.
//
// The legacy RoPE tables (freq_cis_real / freq_cis_imag, [seq_len, head_size / 2])
// ------------------------------------------------------------------------------------
// llama2.c model.py precompute_freqs_cis(head_size, seq_len, theta = 10000.0), float32:
//     freqs[i]    = 1 / theta ** (float(2 i) / head_size)        i < head_size / 2
//     angle[t][i] = float(t) * freqs[i]                          (torch.outer, float32)
//     freq_cis_real = cos(angle),  freq_cis_imag = sin(angle)
// and export.py stores them as torch computed them. llama2c_compute_rope_tables follows
// the same float32 steps, taking theta ** e, cos and sin in double of the float32 operand
// and rounding once to float32 (correctly rounded in practice). torch's float32 pow / cos
// / sin kernels (MKL or SLEEF) are faithful only to about one ulp, so a table written by
// export.py can differ from this one in the last bit of some entries: stories260K.bin
// does so in 199 of its 4096 entries (with glibc), by one ulp each (SLEEF's u10 kernels
// do not reproduce them either; tests/io/test_llama2c_writer.cpp).
// Nothing reads the values — run.c computes RoPE itself and llama2c_checkpoint only checks
// that the tables are there — but to reproduce a file byte for byte pass its own tables
// (llama2c_checkpoint::legacy_rope_table) in llama2c_write_options; write_llama2c(path, ck)
// does.
//
// Tokenizer (llama2.c tokenizer.py export, read by run.c build_tokenizer and by
// load_llama2c_tokenizer in pare/model/load.hpp)
// -----------------------------------------------------------------------------
// int32 max_token_length, then for each token id in order: float32 score, int32 byte
// length, the piece's bytes (no terminator). max_token_length is the longest piece in bytes
// (tokenizer.py: max(len(t) for t in tokens)), at least 1 so that the reader accepts it.
// The pieces are written as the tokenizer holds them (spaces as ' ', BOS/EOS as whatever
// strings it has: "\n<s>\n" and "\n</s>\n" when it came from a llama2.c file), so a
// tokenizer read from a llama2.c file is written back byte for byte.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/io/atomic_file.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/io/tokenizer.hpp"

PARE_NAMESPACE_BEGIN

/// Named float32 tensors for write_llama2c (GGUF names, shapes as llama2c_checkpoint exposes them).
using llama2c_tensor_map = std::map<std::string, tensor_view<const float>>;

/// The legacy RoPE tables of a llama2.c checkpoint, each [seq_len, head_size / 2] row-major.
struct llama2c_rope_tables {
  std::vector<float> real;  ///< freq_cis_real: cos
  std::vector<float> imag;  ///< freq_cis_imag: sin
};

/// How write_llama2c writes what its tensors do not determine.
struct llama2c_write_options {
  /// The RoPE tables to store verbatim, each [seq_len, head_size / 2]; both empty (the
  /// default): computed by llama2c_compute_rope_tables. Give both or neither.
  tensor_view<const float> freq_cis_real, freq_cis_imag;
};

/// The RoPE tables export.py stores for `cfg` (theta 10000; see the essay above).
/// Throws argument_error naming the cfg field if `cfg` is not a valid config.
inline llama2c_rope_tables llama2c_compute_rope_tables(const llama2c_config& cfg) {
  (void)llama2c_checkpoint::file_size_for(cfg);  // validates cfg
  const std::size_t half = std::size_t(cfg.head_size() / 2), seq = std::size_t(cfg.seq_len);
  std::vector<float> freqs(half);
  for (std::size_t i = 0; i < half; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(cfg.head_size());  // arange(0, hs, 2).float() / hs
    const float p = static_cast<float>(std::pow(10000.0, static_cast<double>(e)));     // theta ** e
    freqs[i] = 1.0f / p;
  }
  llama2c_rope_tables t;
  t.real.resize(seq * half);
  t.imag.resize(seq * half);
  for (std::size_t pos = 0; pos < seq; ++pos)
    for (std::size_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(pos) * freqs[i];  // torch.outer(t, freqs), float32
      t.real[pos * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      t.imag[pos * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  return t;
}

/// The tensor names write_llama2c expects for `cfg`, in file order (per-layer arrays
/// layer by layer: blk.0.attn_norm ... blk.{L-1}.attn_norm, blk.0.attn_q, ...), with
/// their shapes; output.weight last and only for a separate classifier.
inline std::vector<std::pair<std::string, shape_t>> llama2c_file_tensors(const llama2c_config& cfg) {
  (void)llama2c_checkpoint::file_size_for(cfg);  // validates cfg
  const auto dim = std::size_t(cfg.dim), hid = std::size_t(cfg.hidden_dim), kv = std::size_t(cfg.kv_dim()),
             vocab = std::size_t(cfg.vocab_size);
  std::vector<std::pair<std::string, shape_t>> out;
  out.emplace_back("token_embd.weight", shape_t{vocab, dim});
  const std::pair<const char*, shape_t> per_layer[] = {
      {"attn_norm", shape_t{dim}},      {"attn_q", shape_t{dim, dim}},   {"attn_k", shape_t{kv, dim}},
      {"attn_v", shape_t{kv, dim}},     {"attn_output", shape_t{dim, dim}}, {"ffn_norm", shape_t{dim}},
      {"ffn_gate", shape_t{hid, dim}},  {"ffn_down", shape_t{dim, hid}}, {"ffn_up", shape_t{hid, dim}}};
  for (const auto& [kind, shape] : per_layer)
    for (int l = 0; l < cfg.n_layers; ++l)
      out.emplace_back(detail::concat("blk.", l, ".", kind, ".weight"), shape);
  out.emplace_back("output_norm.weight", shape_t{dim});
  if (!cfg.shared_classifier) out.emplace_back("output.weight", shape_t{vocab, dim});
  return out;
}

namespace detail {

/// Appends the float32 elements of a rank-1 or rank-2 view (any strides) to `out`.
inline void write_llama2c_floats(atomic_file& out, const tensor_view<const float>& t, std::vector<float>& scratch) {
  if (t.is_contiguous()) {
    out.write(t.data(), t.size() * sizeof(float));
    return;
  }
  scratch.resize(t.size());
  std::size_t k = 0;
  if (t.rank() == 1) {
    for (std::size_t i = 0; i < t.extent(0); ++i) scratch[k++] = t(i);
  } else {
    for (std::size_t r = 0; r < t.extent(0); ++r)
      for (std::size_t c = 0; c < t.extent(1); ++c) scratch[k++] = t(r, c);
  }
  out.write(scratch.data(), scratch.size() * sizeof(float));
}

/// Throws unless `t` has exactly `shape` and data. `what` names it in messages.
inline void check_llama2c_view(const char* fn, const std::string& what, const tensor_view<const float>& t,
                               const shape_t& shape) {
  if (t.shape() != shape)
    fail<shape_error>(fn, ": ", what, ": expected shape ", shape, ", got ", t.shape());
  if (t.data() == nullptr && t.size() != 0)
    fail<argument_error>(fn, ": ", what, ": expected data for shape ", shape, ", got a null pointer");
}

}  // namespace detail

namespace detail {

/// The RoPE tables to write: those in `opt` (checked) or computed into `computed`.
inline std::pair<tensor_view<const float>, tensor_view<const float>> llama2c_rope_views(
    const char* fn, const llama2c_config& cfg, const llama2c_write_options& opt, llama2c_rope_tables& computed) {
  const shape_t rope_shape{std::size_t(cfg.seq_len), std::size_t(cfg.head_size() / 2)};
  const bool has_real = opt.freq_cis_real.rank() != 0, has_imag = opt.freq_cis_imag.rank() != 0;
  if (has_real != has_imag)
    fail<argument_error>(fn, ": argument 'opt': expected both freq_cis_real and freq_cis_imag or neither, got only ",
                         has_real ? "freq_cis_real" : "freq_cis_imag");
  if (has_real) {
    check_llama2c_view(fn, "argument 'opt.freq_cis_real'", opt.freq_cis_real, rope_shape);
    check_llama2c_view(fn, "argument 'opt.freq_cis_imag'", opt.freq_cis_imag, rope_shape);
    return {opt.freq_cis_real, opt.freq_cis_imag};
  }
  computed = llama2c_compute_rope_tables(cfg);
  return {tensor_view<const float>(computed.real.data(), rope_shape),
          tensor_view<const float>(computed.imag.data(), rope_shape)};
}

/// Writes a checkpoint of `cfg` whose i-th tensor of llama2c_file_tensors(cfg) is get(i)
/// (a view valid until the next call), one tensor in memory at a time. The caller has
/// validated everything; shapes are checked again as they come (the file is then
/// abandoned, nothing appears at `path`).
template <class Get>
void write_llama2c_stream(const char* fn, const std::string& path, const llama2c_config& cfg, Get&& get,
                          const tensor_view<const float>& rope_real, const tensor_view<const float>& rope_imag) {
  const std::uint64_t size = llama2c_checkpoint::file_size_for(cfg);
  const std::vector<std::pair<std::string, shape_t>> layout = llama2c_file_tensors(cfg);
  atomic_file out(path);
  const std::int32_t header[7] = {cfg.dim,        cfg.hidden_dim,
                                  cfg.n_layers,   cfg.n_heads,
                                  cfg.n_kv_heads, cfg.shared_classifier ? cfg.vocab_size : -cfg.vocab_size,
                                  cfg.seq_len};
  out.write(header, sizeof header);
  std::vector<float> scratch;
  auto put = [&](std::size_t i) {
    const tensor_view<const float> t = get(i);
    check_llama2c_view(fn, concat("tensor '", layout[i].first, "'"), t, layout[i].second);
    write_llama2c_floats(out, t, scratch);
  };
  const std::size_t before_rope = cfg.shared_classifier ? layout.size() : layout.size() - 1;
  for (std::size_t i = 0; i < before_rope; ++i) put(i);
  write_llama2c_floats(out, rope_real, scratch);
  write_llama2c_floats(out, rope_imag, scratch);
  if (!cfg.shared_classifier) put(layout.size() - 1);
  if (out.offset() != size)
    fail<error>(fn, ": internal error: wrote ", out.offset(), " bytes, the layout says ", size);
  out.commit();
}

/// file_size_for(cfg) with `fn` in front of its message.
inline void check_llama2c_config(const char* fn, const llama2c_config& cfg) {
  try {
    (void)llama2c_checkpoint::file_size_for(cfg);
  } catch (const argument_error& e) {
    fail<argument_error>(fn, ": ", e.what());
  }
}

}  // namespace detail

/// Writes a llama2.c checkpoint of `cfg` holding `tensors` to `path` (see the essay above;
/// nothing is written unless every check passes, and nothing appears at `path` on error).
inline void write_llama2c(const std::string& path, const llama2c_config& cfg, const llama2c_tensor_map& tensors,
                          const llama2c_write_options& opt = {}) {
  static const char* const fn = "write_llama2c";
  detail::check_llama2c_config(fn, cfg);
  const std::vector<std::pair<std::string, shape_t>> layout = llama2c_file_tensors(cfg);

  // Every tensor given must have a place in the file.
  for (const auto& [name, view] : tensors) {
    bool known = false;
    for (const auto& e : layout) known = known || e.first == name;
    if (known) continue;
    if (name == "output.weight")
      detail::fail<argument_error>(fn, ": argument 'tensors': 'output.weight' given, but cfg.shared_classifier is "
                                   "true (the classifier is token_embd.weight): drop it or set shared_classifier "
                                   "to false");
    detail::fail<argument_error>(fn, ": argument 'tensors': tensor '", name, "' ", view.shape(),
                                 " has no place in a llama2.c checkpoint (expected names such as "
                                 "'token_embd.weight', 'blk.0.attn_q.weight', ..., 'blk.",
                                 cfg.n_layers - 1, ".ffn_up.weight', 'output_norm.weight'",
                                 cfg.shared_classifier ? "" : ", 'output.weight'", ")");
  }
  // Every tensor the file needs is given, with its shape.
  std::vector<tensor_view<const float>> views;
  views.reserve(layout.size());
  for (const auto& [name, shape] : layout) {
    const auto it = tensors.find(name);
    if (it == tensors.end())
      detail::fail<argument_error>(fn, ": argument 'tensors': missing tensor '", name, "' ", shape, " (",
                                   layout.size(), " tensors expected for ", cfg.n_layers, " layers, ",
                                   cfg.shared_classifier ? "shared" : "separate", " classifier; ", tensors.size(),
                                   " given)");
    detail::check_llama2c_view(fn, detail::concat("tensor '", name, "'"), it->second, shape);
    views.push_back(it->second);
  }
  llama2c_rope_tables computed;
  const auto rope = detail::llama2c_rope_views(fn, cfg, opt, computed);
  detail::write_llama2c_stream(fn, path, cfg, [&](std::size_t i) { return views[i]; }, rope.first, rope.second);
}

/// Writes checkpoint `ck` back to `path` with its own RoPE tables: the same bytes as the
/// file it was read from.
inline void write_llama2c(const std::string& path, const llama2c_checkpoint& ck) {
  llama2c_tensor_map tensors;
  for (const std::string& n : ck.tensor_names()) tensors.emplace(n, ck.tensor(n));
  llama2c_write_options opt;
  opt.freq_cis_real = ck.legacy_rope_table(false);
  opt.freq_cis_imag = ck.legacy_rope_table(true);
  write_llama2c(path, ck.config(), tensors, opt);
}

/// The bytes of the llama2.c tokenizer file for `tok` (see the essay above). Throws
/// argument_error for a piece longer than 2^20 bytes (load_llama2c_tokenizer's limit) or
/// a vocabulary that does not fit an int32 count.
inline std::string llama2c_tokenizer_bytes(const tokenizer& tok) {
  static const char* const fn = "write_llama2c_tokenizer";
  const std::size_t n = tok.vocab_size();
  if (n > std::size_t(std::numeric_limits<std::int32_t>::max()))
    detail::fail<argument_error>(fn, ": argument 'tok': expected at most 2^31 - 1 pieces, got ", n);
  std::size_t longest = 1, total = 4;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t len = tok.piece(static_cast<std::int32_t>(i)).size();
    if (len > (std::size_t(1) << 20))
      detail::fail<argument_error>(fn, ": argument 'tok': piece ", i, ": expected at most 2^20 bytes, got ", len);
    longest = len > longest ? len : longest;
    total += 8 + len;
  }
  std::string out;
  out.reserve(total);
  auto put = [&out](const void* p, std::size_t k) { out.append(static_cast<const char*>(p), k); };
  const auto max_len = static_cast<std::int32_t>(longest);
  put(&max_len, 4);
  for (std::size_t i = 0; i < n; ++i) {
    const auto id = static_cast<std::int32_t>(i);
    const float score = tok.score(id);
    const std::string& piece = tok.piece(id);
    const auto len = static_cast<std::int32_t>(piece.size());
    put(&score, 4);
    put(&len, 4);
    put(piece.data(), piece.size());
  }
  return out;
}

/// Writes `tok` as a llama2.c tokenizer file at `path` (atomically; see the essay above).
inline void write_llama2c_tokenizer(const std::string& path, const tokenizer& tok) {
  const std::string bytes = llama2c_tokenizer_bytes(tok);
  atomic_file out(path);
  out.write(bytes.data(), bytes.size());
  out.commit();
}

PARE_NAMESPACE_END
