// Reader for legacy llama2.c checkpoints (.bin): the config header and zero-copy float32 weight views under GGUF names.
#pragma once

// Format (llama2.c `export.py` legacy_export / `run.c`, version 0 "legacy")
// ------------------------------------------------------------------------
// A 28-byte header of seven int32: dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len. A negative vocab_size means the classifier is stored separately
// ("wcls" at the end); a positive one means it shares the token embedding. Then float32
// tensors, each row-major, back to back, with no padding or alignment:
//
//     token_embedding [vocab, dim]        rms_att [L, dim]
//     wq [L, dim, dim]     wk [L, kv_dim, dim]     wv [L, kv_dim, dim]     wo [L, dim, dim]
//     rms_ffn [L, dim]
//     w1 [L, hidden, dim]  w2 [L, dim, hidden]     w3 [L, hidden, dim]
//     rms_final [dim]      freq_cis_real [seq_len, head_size/2]   freq_cis_imag [same]
//     wcls [vocab, dim]    (only when vocab_size < 0)
//
// with head_size = dim / n_heads and kv_dim = dim * n_kv_heads / n_heads. Matrices are
// [out_features, in_features]. Numbers are in the byte order of the machine that wrote
// them, little-endian in practice; this reader assumes the host order.
//
// Normative here: the file size must equal exactly the size this layout gives for its
// header (nothing missing, nothing trailing); every dimension must be positive; dim must
// be a multiple of n_heads, n_heads a multiple of n_kv_heads, head_size even (RoPE
// rotates pairs). A violation throws pare::format_error naming the field or tensor and
// its byte offset; a file the OS cannot read throws pare::io_error naming the path.
//
// Names follow GGUF / llama.cpp: token_embd.weight, blk.{l}.attn_norm.weight,
// blk.{l}.attn_q/attn_k/attn_v/attn_output.weight, blk.{l}.ffn_norm.weight,
// blk.{l}.ffn_gate (w1) / ffn_down (w2) / ffn_up (w3).weight, output_norm.weight and,
// only when the classifier is separate, output.weight. The legacy RoPE tables are
// checked to be present (their values are not checked) but not exposed under a name (the
// model computes RoPE itself); legacy_rope_table() returns them as stored.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"

PARE_NAMESPACE_BEGIN

/// The hyper-parameters in a llama2.c checkpoint header. `vocab_size` is always
/// positive here; the sign it had in the file is `!shared_classifier`.
struct llama2c_config {
  int dim = 0;         ///< model width (embedding size)
  int hidden_dim = 0;  ///< FFN inner width
  int n_layers = 0;
  int n_heads = 0;     ///< query heads
  int n_kv_heads = 0;  ///< key/value heads (grouped-query attention when < n_heads)
  int vocab_size = 0;
  int seq_len = 0;     ///< context length the model was trained with
  bool shared_classifier = true;  ///< the output classifier is the token embedding

  /// dim / n_heads.
  int head_size() const noexcept { return n_heads > 0 ? dim / n_heads : 0; }
  /// dim * n_kv_heads / n_heads: the rows of wk and wv.
  int kv_dim() const noexcept { return n_heads > 0 ? head_size() * n_kv_heads : 0; }

  friend bool operator==(const llama2c_config& a, const llama2c_config& b) noexcept {
    return a.dim == b.dim && a.hidden_dim == b.hidden_dim && a.n_layers == b.n_layers && a.n_heads == b.n_heads &&
           a.n_kv_heads == b.n_kv_heads && a.vocab_size == b.vocab_size && a.seq_len == b.seq_len &&
           a.shared_classifier == b.shared_classifier;
  }
  friend bool operator!=(const llama2c_config& a, const llama2c_config& b) noexcept { return !(a == b); }
};

/// A whole llama2.c checkpoint held in one 64-byte-aligned buffer; tensors are
/// read-only views into it (valid while the checkpoint lives; a copy has its own
/// buffer). See the format essay at the top of this file.
class llama2c_checkpoint {
 public:
  /// Size of the header in bytes (seven int32).
  static constexpr std::size_t header_bytes = 28;

  llama2c_checkpoint() = default;

  /// Reads and validates the file at `path`. Throws io_error if it cannot be read,
  /// format_error if it is not a well-formed llama2.c checkpoint.
  static llama2c_checkpoint load(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (ec || !fs::exists(st))
      detail::fail<io_error>("llama2c checkpoint '", path, "': cannot open: ",
                             ec ? ec.message() : std::string("no such file"));
    if (fs::is_directory(st)) detail::fail<io_error>("llama2c checkpoint '", path, "': cannot open: is a directory");
    const std::uintmax_t size = fs::file_size(path, ec);
    if (ec) detail::fail<io_error>("llama2c checkpoint '", path, "': cannot read its size: ", ec.message());

    std::ifstream in(path, std::ios::binary);
    if (!in) detail::fail<io_error>("llama2c checkpoint '", path, "': cannot open for reading");
    unsigned char header[header_bytes] = {};
    const std::size_t avail = size < header_bytes ? static_cast<std::size_t>(size) : header_bytes;
    if (!in.read(reinterpret_cast<char*>(header), static_cast<std::streamsize>(avail)))
      detail::fail<io_error>("llama2c checkpoint '", path, "': read error in the header");

    llama2c_checkpoint ck;
    ck.source_ = path;
    ck.config_ = parse_header(header, avail, path);
    ck.check_size_and_index(static_cast<std::uint64_t>(size));

    // The size is validated: it is 28 + 4·n, so the buffer holds whole floats and the
    // float at byte offset b is element b / 4.
    ck.buffer_ = aligned_buffer<float>(static_cast<std::size_t>(size / sizeof(float)));
    in.seekg(0);
    if (!in.read(reinterpret_cast<char*>(ck.buffer_.data()), static_cast<std::streamsize>(size)))
      detail::fail<io_error>("llama2c checkpoint '", path, "': read error after ", in.gcount(), " of ", size,
                             " bytes");
    return ck;
  }

  /// Validates and copies a checkpoint image already in memory (`source` names it in messages).
  static llama2c_checkpoint from_bytes(const void* data, std::size_t size, const std::string& source = "<memory>") {
    const auto* bytes = static_cast<const unsigned char*>(data);
    if (bytes == nullptr && size != 0)
      detail::fail<argument_error>("llama2c_checkpoint::from_bytes: argument 'data': expected a pointer to ", size,
                                   " bytes, got null");
    llama2c_checkpoint ck;
    ck.source_ = source;
    ck.config_ = parse_header(bytes, size < header_bytes ? size : header_bytes, source);
    ck.check_size_and_index(size);
    ck.buffer_ = aligned_buffer<float>(size / sizeof(float));
    std::memcpy(ck.buffer_.data(), bytes, size);
    return ck;
  }

  /// The exact file size in bytes of a checkpoint with this config (shared or separate
  /// classifier as the config says). Throws format_error if it overflows 64 bits.
  /// Throws argument_error naming the field if `cfg` is not a valid config.
  static std::uint64_t file_size_for(const llama2c_config& cfg) {
    std::string expected;
    const int field = config_problem(cfg, expected);
    if (field >= 0) {
      const int v[7] = {cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size, cfg.seq_len};
      detail::fail<argument_error>("llama2c_checkpoint::file_size_for: argument 'cfg." , field_name(std::size_t(field)),
                                   "': expected ", expected, ", got ", v[field]);
    }
    return end_of(layout(cfg, "llama2c_checkpoint::file_size_for"));
  }

  const llama2c_config& config() const noexcept { return config_; }
  /// The path (or the `source` given to from_bytes) the checkpoint was read from.
  const std::string& source() const noexcept { return source_; }

  /// Every exposed tensor in GGUF order: token_embd, blk.0.* ... blk.{L-1}.*,
  /// output_norm, then output (only with a separate classifier).
  std::vector<std::string> tensor_names() const {
    std::vector<std::string> out;
    for (const entry& e : entries_) out.push_back(e.name);
    return out;
  }

  /// The 2-D weights among tensor_names(), in the same order.
  std::vector<std::string> matrix_names() const {
    std::vector<std::string> out;
    for (const entry& e : entries_)
      if (e.shape.rank() == 2) out.push_back(e.name);
    return out;
  }

  /// True when `name` is one of tensor_names().
  bool has_tensor(const std::string& name) const { return index_.count(name) != 0; }

  /// Zero-copy, contiguous, read-only view of tensor `name` (shapes in the essay above;
  /// matrices are [out_features, in_features]). Throws argument_error for an unknown name.
  tensor_view<const float> tensor(const std::string& name) const {
    const entry& e = find(name, "tensor");
    return tensor_view<const float>(buffer_.data() + e.offset / sizeof(float), e.shape);
  }

  /// Zero-copy matrix view of a 2-D weight [out_features, in_features]. Throws
  /// argument_error for an unknown name or a 1-D tensor (the norm weights).
  matrix_view<const float> matrix(const std::string& name) const {
    const entry& e = find(name, "matrix");
    if (e.shape.rank() != 2)
      detail::fail<argument_error>("llama2c_checkpoint::matrix: argument 'name': expected a 2-D weight, got '",
                                   name, "' of shape ", e.shape);
    return matrix_view<const float>(buffer_.data() + e.offset / sizeof(float), e.shape[0], e.shape[1]);
  }

  /// The output classifier [vocab, dim]: output.weight, or token_embd.weight when shared.
  matrix_view<const float> classifier() const {
    return matrix(config_.shared_classifier ? "token_embd.weight" : "output.weight");
  }

  /// Byte offset of tensor `name` within the file.
  std::uint64_t offset_of(const std::string& name) const { return find(name, "offset_of").offset; }

  /// The legacy RoPE table as stored, [seq_len, head_size / 2]: freq_cis_imag when `imag`,
  /// else freq_cis_real. The model does not use it; a writer can copy it to reproduce the
  /// file byte for byte (pare/io/llama2c_writer.hpp). It follows output_norm.weight.
  tensor_view<const float> legacy_rope_table(bool imag) const {
    const std::uint64_t half = std::uint64_t(config_.head_size() / 2), seq = std::uint64_t(config_.seq_len);
    const std::uint64_t real = find("output_norm.weight", "legacy_rope_table").offset + 4 * std::uint64_t(config_.dim);
    const std::uint64_t at = real + (imag ? 4 * seq * half : 0);
    return tensor_view<const float>(buffer_.data() + at / sizeof(float), shape_t{std::size_t(seq), std::size_t(half)});
  }

 private:
  struct entry {
    std::string name;
    shape_t shape;
    std::uint64_t offset = 0;  // bytes from the start of the file
  };

  static const char* field_name(std::size_t i) noexcept {
    static const char* const names[] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                                        "n_kv_heads", "vocab_size", "seq_len"};
    return names[i];
  }

  /// Decodes and validates the header; `avail` bytes of it are present.
  static llama2c_config parse_header(const unsigned char* h, std::size_t avail, const std::string& src) {
    if (avail < header_bytes) {
      const std::size_t field = avail / 4;
      detail::fail<format_error>("llama2c checkpoint '", src, "': file is ", avail,
                                 " bytes, shorter than the 28-byte header: header field '", field_name(field),
                                 "' at byte offset ", field * 4, " is ", (avail % 4 == 0 ? "missing" : "cut off"));
    }
    std::int32_t v[7];
    std::memcpy(v, h, sizeof v);
    if (v[5] == 0 || v[5] == std::numeric_limits<std::int32_t>::min())
      detail::fail<format_error>("llama2c checkpoint '", src, "': header field 'vocab_size' at byte offset 20: ",
                                 "expected a non-zero value (negative means a separate classifier), got ", v[5]);
    llama2c_config c;
    c.dim = v[0];
    c.hidden_dim = v[1];
    c.n_layers = v[2];
    c.n_heads = v[3];
    c.n_kv_heads = v[4];
    c.vocab_size = v[5] < 0 ? -v[5] : v[5];
    c.shared_classifier = v[5] > 0;
    c.seq_len = v[6];
    std::string expected;
    const int field = config_problem(c, expected);
    if (field >= 0)
      detail::fail<format_error>("llama2c checkpoint '", src, "': header field '", field_name(std::size_t(field)),
                                 "' at byte offset ", 4 * field, ": expected ", expected, ", got ", v[field]);
    return c;
  }

  /// The index of the first header field (0..6) that makes `c` invalid, with what was
  /// expected of it in `expected`; -1 when `c` is valid. Never throws for valid input.
  static int config_problem(const llama2c_config& c, std::string& expected) {
    const int v[7] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len};
    for (int i = 0; i < 7; ++i)
      if (v[i] <= 0) {
        expected = "a positive value";
        return i;
      }
    if (c.dim % c.n_heads != 0) {
      expected = detail::concat("a multiple of n_heads ", c.n_heads);
      return 0;
    }
    if (c.n_heads % c.n_kv_heads != 0) {
      expected = detail::concat("a multiple of n_kv_heads ", c.n_kv_heads);
      return 3;
    }
    if (c.head_size() % 2 != 0) {
      expected = detail::concat("a multiple of 2 * n_heads = ", 2 * std::int64_t(c.n_heads),
                                " (the head size dim / n_heads must be even: RoPE rotates pairs)");
      return 0;
    }
    return -1;
  }

  /// Checked a * b for byte and element counts.
  static std::uint64_t mul(std::uint64_t a, std::uint64_t b, const std::string& what, const std::string& src) {
    if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a)
      detail::fail<format_error>("llama2c checkpoint '", src, "': size overflow computing the size of ", what);
    return a * b;
  }

  /// One stored array: `count` tensors of shape `one` back to back (count = n_layers for
  /// the per-layer arrays, whose GGUF names are blk.{l}.<kind>.weight).
  struct block {
    const char* kind;  // GGUF name, or the <kind> part of per-layer names
    shape_t one;
    std::uint64_t count = 1;
    bool per_layer = false;
    bool exposed = true;
    std::uint64_t offset = 0;      // bytes from the start of the file
    std::uint64_t bytes_each = 0;  // bytes of one tensor
    std::string name(std::uint64_t l) const {
      return per_layer ? detail::concat("blk.", l, ".", kind, ".weight") : std::string(kind);
    }
  };

  /// The stored arrays in file order with byte offsets. Throws format_error if a size
  /// overflows what a view can index (ptrdiff_t and size_t).
  static std::vector<block> layout(const llama2c_config& c, const std::string& src) {
    const auto dim = std::size_t(c.dim), hid = std::size_t(c.hidden_dim), kv = std::size_t(c.kv_dim()),
               vocab = std::size_t(c.vocab_size), seq = std::size_t(c.seq_len), half = std::size_t(c.head_size() / 2);
    const std::uint64_t L = std::uint64_t(c.n_layers);
    const std::uint64_t limit = std::min<std::uint64_t>(std::uint64_t(std::numeric_limits<std::ptrdiff_t>::max()),
                                                        std::uint64_t(std::numeric_limits<std::size_t>::max()));
    std::vector<block> bs = {
        {"token_embd.weight", shape_t{vocab, dim}},
        {"attn_norm", shape_t{dim}, L, true},
        {"attn_q", shape_t{dim, dim}, L, true},
        {"attn_k", shape_t{kv, dim}, L, true},
        {"attn_v", shape_t{kv, dim}, L, true},
        {"attn_output", shape_t{dim, dim}, L, true},
        {"ffn_norm", shape_t{dim}, L, true},
        {"ffn_gate", shape_t{hid, dim}, L, true},
        {"ffn_down", shape_t{dim, hid}, L, true},
        {"ffn_up", shape_t{hid, dim}, L, true},
        {"output_norm.weight", shape_t{dim}},
        {"freq_cis_real", shape_t{seq, half}, 1, false, false},
        {"freq_cis_imag", shape_t{seq, half}, 1, false, false},
    };
    if (!c.shared_classifier) bs.push_back({"output.weight", shape_t{vocab, dim}});
    std::uint64_t off = header_bytes;
    for (block& b : bs) {
      const std::string what = detail::concat(b.per_layer ? "tensors 'blk.*." : "tensor '", b.kind,
                                              b.per_layer ? ".weight' " : "' ", b.one);
      std::uint64_t n = 1;
      for (std::size_t d : b.one) n = mul(n, d, what, src);
      b.bytes_each = mul(n, sizeof(float), what, src);
      const std::uint64_t total = mul(b.bytes_each, b.count, what, src);
      if (total > limit - off)
        detail::fail<format_error>("llama2c checkpoint '", src, "': size overflow: ", what, " at byte offset ", off,
                                   " end beyond ", limit, " bytes");
      b.offset = off;
      off += total;
    }
    return bs;
  }

  static std::uint64_t end_of(const std::vector<block>& bs) {
    return bs.back().offset + bs.back().bytes_each * bs.back().count;
  }

  /// Checks that `size` is exactly the layout's size, then lists the exposed tensors in
  /// GGUF order and builds the name index.
  void check_size_and_index(std::uint64_t size) {
    const std::vector<block> bs = layout(config_, source_);
    const std::uint64_t expected = end_of(bs);
    if (size != expected) {
      std::string why;
      if (size < expected) {
        for (const block& b : bs) {
          if (size >= b.offset + b.bytes_each * b.count) continue;
          const std::uint64_t l = (size - b.offset) / b.bytes_each;
          const std::uint64_t begin = b.offset + l * b.bytes_each;
          why = detail::concat("; the file ends inside tensor '", b.name(l), "' ", b.one, " (bytes [", begin, ", ",
                               begin + b.bytes_each, ")) at byte offset ", size);
          break;
        }
      } else {
        why = detail::concat("; ", size - expected, " trailing byte(s) after the last tensor '",
                             bs.back().name(0), "', which ends at byte offset ", expected);
      }
      // Say so when the size fits the other classifier layout: the vocab_size sign is then wrong.
      const std::uint64_t wcls = bs.front().bytes_each;
      const std::uint64_t other = config_.shared_classifier ? expected + wcls : expected - wcls;
      if (size == other)
        why += config_.shared_classifier
                   ? "; the size fits a separate classifier, but vocab_size (byte offset 20) is positive"
                   : "; the size fits a shared classifier, but vocab_size (byte offset 20) is negative";
      detail::fail<format_error>("llama2c checkpoint '", source_, "': file size: expected ", expected, " bytes for ",
                                 describe(config_), ", got ", size, why);
    }
    entries_.clear();
    index_.clear();
    auto add = [&](const block& b, std::uint64_t l) {
      index_.emplace(b.name(l), entries_.size());
      entries_.push_back(entry{b.name(l), b.one, b.offset + l * b.bytes_each});
    };
    add(bs[0], 0);
    for (std::uint64_t l = 0; l < std::uint64_t(config_.n_layers); ++l)
      for (std::size_t k = 1; k < bs.size(); ++k)
        if (bs[k].per_layer) add(bs[k], l);
    for (std::size_t k = 1; k < bs.size(); ++k)
      if (!bs[k].per_layer && bs[k].exposed) add(bs[k], 0);
  }

  static std::string describe(const llama2c_config& c) {
    return detail::concat("dim ", c.dim, ", hidden_dim ", c.hidden_dim, ", n_layers ", c.n_layers, ", n_heads ",
                          c.n_heads, ", n_kv_heads ", c.n_kv_heads, ", vocab_size ", c.vocab_size, ", seq_len ",
                          c.seq_len, c.shared_classifier ? ", shared classifier" : ", separate classifier");
  }

  const entry& find(const std::string& name, const char* fn) const {
    const auto it = index_.find(name);
    if (it == index_.end()) {
      if (name == "output.weight" && config_.shared_classifier)
        detail::fail<argument_error>("llama2c_checkpoint::", fn,
                                     ": argument 'name': 'output.weight' is not stored in '", source_,
                                     "': the classifier shares 'token_embd.weight' (use classifier())");
      detail::fail<argument_error>("llama2c_checkpoint::", fn, ": argument 'name': expected one of the ",
                                   index_.size(), " tensor names of '", source_,
                                   "' (e.g. 'token_embd.weight', 'blk.0.attn_q.weight'), got '", name, "'");
    }
    return entries_[it->second];
  }

  llama2c_config config_{};
  std::string source_;
  std::vector<entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
  aligned_buffer<float> buffer_;
};

PARE_NAMESPACE_END
