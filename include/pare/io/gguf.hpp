// GGUF v2/v3 reader: strict validation, typed metadata, zero-copy tensor views into a mapped file.
#pragma once

// Layout (little-endian; GGUF specification, ggml docs/gguf.md):
//   "GGUF" | uint32 version (2 or 3) | uint64 tensor_count | uint64 kv_count
//   kv_count × { string key | uint32 value_type | value }
//   tensor_count × { string name | uint32 n_dims | uint64 ne[n_dims] | uint32 type | uint64 offset }
//   padding to general.alignment (uint32, default 32) | data section
// string = uint64 length + bytes; array = uint32 element type + uint64 count + elements
// (arrays may nest). Tensor offsets are relative to the data section and aligned.
// Dimensions are innermost first: ne[0] is the row length. pare views a tensor as a
// matrix [rows = ne[1]·ne[2]·ne[3], cols = ne[0]] (row-major), so a GGUF weight
// "[ne0 = in, ne1 = out]" is pare's [out, in].
// Every violation is a pare::format_error naming the field and its byte offset: magic,
// version (1 is unsupported_error), counts that cannot fit in the file, string and array
// lengths past the end, nesting deeper than 8, unknown value or tensor types, bad
// alignment values, more than 4 dimensions, zero or overflowing dimensions, ne[0] not a
// multiple of the type's block size, duplicate keys or tensor names, unaligned offsets
// and tensor data outside the file. Every size is checked before it is multiplied or
// added, so a crafted shape cannot wrap to a small byte count: each tensor's bytes equal
// its element count / block size × type size and lie inside the file.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/io/gguf_types.hpp"
#include "pare/io/mapped_file.hpp"

PARE_NAMESPACE_BEGIN

enum class gguf_type : std::uint32_t {
  uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, boolean = 7,
  string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12
};

inline const char* to_string(gguf_type t) noexcept {
  static const char* names[] = {"uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
                                "bool",  "string", "array",  "uint64", "int64",  "float64"};
  return static_cast<std::uint32_t>(t) < 13 ? names[static_cast<std::uint32_t>(t)] : "unknown";
}

/// One metadata value (arrays hold values of one element type, possibly arrays).
struct gguf_value {
  gguf_type type = gguf_type::uint8;
  std::uint64_t u = 0;  // unsigned integers and bool
  std::int64_t i = 0;   // signed integers
  double f = 0;         // floats
  std::string s;
  gguf_type elem = gguf_type::uint8;  // arrays
  std::vector<gguf_value> items;

  bool is_unsigned() const noexcept {
    return type == gguf_type::uint8 || type == gguf_type::uint16 || type == gguf_type::uint32 || type == gguf_type::uint64;
  }
  bool is_signed() const noexcept {
    return type == gguf_type::int8 || type == gguf_type::int16 || type == gguf_type::int32 || type == gguf_type::int64;
  }
  bool is_float() const noexcept { return type == gguf_type::float32 || type == gguf_type::float64; }
};

/// A tensor's description and its bytes inside the file.
struct gguf_tensor {
  std::string name;
  std::uint32_t type = 0;
  std::vector<std::uint64_t> ne;  // innermost first
  std::uint64_t offset = 0;       // relative to the data section
  std::uint64_t bytes = 0;
  const std::uint8_t* data = nullptr;

  std::uint64_t elements() const noexcept {
    std::uint64_t n = 1;
    for (auto d : ne) n *= d;
    return n;
  }
  std::size_t cols() const noexcept { return static_cast<std::size_t>(ne.empty() ? 1 : ne[0]); }
  std::size_t rows() const noexcept { return static_cast<std::size_t>(ne.empty() ? 1 : elements() / ne[0]); }
  const char* type_name() const noexcept {
    const auto* t = gguf_tensor_type(type);
    return t ? t->name : "unknown";
  }
};

class gguf_file {
 public:
  /// Maps and validates `path`.
  static gguf_file open(const std::string& path) { return gguf_file(std::make_shared<mapped_file>(mapped_file::open(path))); }
  /// Validates a copy of `n` bytes (tests feed truncated and corrupted files this way).
  static gguf_file from_bytes(const void* p, std::size_t n, std::string name = "<memory>") {
    return gguf_file(std::make_shared<mapped_file>(mapped_file::from_bytes(p, n, std::move(name))));
  }

  std::uint32_t version() const noexcept { return version_; }
  std::uint32_t alignment() const noexcept { return alignment_; }
  std::uint64_t data_offset() const noexcept { return data_start_; }
  const std::vector<std::pair<std::string, gguf_value>>& metadata() const noexcept { return kv_; }
  const std::vector<gguf_tensor>& tensors() const noexcept { return tensors_; }

  bool has(const std::string& key) const noexcept { return find_kv(key) != nullptr; }
  const gguf_value& value(const std::string& key) const {
    const gguf_value* v = find_kv(key);
    if (!v) detail::fail<argument_error>("gguf '", file_->path(), "': argument 'key': no metadata key '", key, "'");
    return *v;
  }

  /// Typed metadata: integers (range-checked), float/double, bool, std::string, and
  /// std::vector of those for arrays. argument_error naming the key on a type mismatch.
  template <class T>
  T get(const std::string& key) const {
    return convert<T>(value(key), key);
  }
  template <class T>
  T get_or(const std::string& key, T fallback) const {
    return has(key) ? get<T>(key) : fallback;
  }

  const gguf_tensor* find_tensor(const std::string& name) const noexcept {
    const auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
  }
  const gguf_tensor& tensor(const std::string& name) const {
    const gguf_tensor* t = find_tensor(name);
    if (!t) detail::fail<argument_error>("gguf '", file_->path(), "': argument 'name': no tensor '", name, "'");
    return *t;
  }
  /// An F32 tensor as a matrix view into the file [rows, cols = ne[0]].
  matrix_view<const float> f32_matrix(const std::string& name) const {
    const gguf_tensor& t = tensor(name);
    if (t.type != 0)
      detail::fail<unsupported_error>("gguf '", file_->path(), "': tensor '", name, "': expected type f32, got ",
                                      t.type_name());
    if (reinterpret_cast<std::uintptr_t>(t.data) % alignof(float) != 0)
      detail::fail<format_error>("gguf '", file_->path(), "': tensor '", name, "': data not 4-byte aligned");
    return matrix_view<const float>(reinterpret_cast<const float*>(t.data), t.rows(), t.cols());
  }
  const mapped_file& file() const noexcept { return *file_; }
  std::shared_ptr<const mapped_file> shared_file() const noexcept { return file_; }

 private:
  explicit gguf_file(std::shared_ptr<mapped_file> f) : file_(std::move(f)) { parse(); }

  struct cursor {
    const std::uint8_t* p;
    std::size_t size, at = 0;
    const std::string* path;
    template <class... A>
    [[noreturn]] void bad(std::size_t offset, A&&... a) const {
      detail::fail<format_error>("gguf '", *path, "': byte ", offset, ": ", std::forward<A>(a)...);
    }
    void need(std::size_t n, const char* field) const {
      if (n > size - at) bad(at, field, ": expected ", n, " more bytes, the file has ", size - at);
    }
    template <class T>
    T read(const char* field) {
      need(sizeof(T), field);
      T v;
      std::memcpy(&v, p + at, sizeof(T));
      at += sizeof(T);
      return v;
    }
    std::string str(const char* field) {
      const std::size_t start = at;
      const std::uint64_t n = read<std::uint64_t>(field);
      if (n > size - at) bad(start, field, ": string length ", n, " exceeds the ", size - at, " bytes left");
      std::string s(reinterpret_cast<const char*>(p + at), static_cast<std::size_t>(n));
      at += static_cast<std::size_t>(n);
      return s;
    }
  };

  static std::size_t min_size(gguf_type t) noexcept {
    switch (t) {
      case gguf_type::uint8: case gguf_type::int8: case gguf_type::boolean: return 1;
      case gguf_type::uint16: case gguf_type::int16: return 2;
      case gguf_type::uint32: case gguf_type::int32: case gguf_type::float32: return 4;
      case gguf_type::uint64: case gguf_type::int64: case gguf_type::float64: case gguf_type::string: return 8;
      case gguf_type::array: return 12;
    }
    return 1;
  }

  gguf_value read_value(cursor& c, std::uint32_t raw_type, const std::string& key, int depth) {
    if (raw_type > 12) c.bad(c.at - 4, "value type of '", key, "': expected 0..12, got ", raw_type);
    gguf_value v;
    v.type = static_cast<gguf_type>(raw_type);
    switch (v.type) {
      case gguf_type::uint8: v.u = c.read<std::uint8_t>("uint8 value"); break;
      case gguf_type::int8: v.i = c.read<std::int8_t>("int8 value"); break;
      case gguf_type::uint16: v.u = c.read<std::uint16_t>("uint16 value"); break;
      case gguf_type::int16: v.i = c.read<std::int16_t>("int16 value"); break;
      case gguf_type::uint32: v.u = c.read<std::uint32_t>("uint32 value"); break;
      case gguf_type::int32: v.i = c.read<std::int32_t>("int32 value"); break;
      case gguf_type::uint64: v.u = c.read<std::uint64_t>("uint64 value"); break;
      case gguf_type::int64: v.i = c.read<std::int64_t>("int64 value"); break;
      case gguf_type::float32: v.f = c.read<float>("float32 value"); break;
      case gguf_type::float64: v.f = c.read<double>("float64 value"); break;
      case gguf_type::boolean: {
        const std::size_t at = c.at;
        const std::uint8_t b = c.read<std::uint8_t>("bool value");
        if (b > 1) c.bad(at, "bool value of '", key, "': expected 0 or 1, got ", int(b));
        v.u = b;
        break;
      }
      case gguf_type::string: v.s = c.str("string value"); break;
      case gguf_type::array: {
        if (depth >= 8) c.bad(c.at, "array '", key, "': nested deeper than 8 levels");
        const std::size_t at = c.at;
        const std::uint32_t et = c.read<std::uint32_t>("array element type");
        if (et > 12) c.bad(at, "array element type of '", key, "': expected 0..12, got ", et);
        const std::uint64_t n = c.read<std::uint64_t>("array length");
        if (n > (c.size - c.at) / min_size(static_cast<gguf_type>(et)))
          c.bad(at + 4, "array length of '", key, "': ", n, " elements cannot fit in the ", c.size - c.at,
                " bytes left");
        v.elem = static_cast<gguf_type>(et);
        v.items.reserve(static_cast<std::size_t>(n));
        for (std::uint64_t k = 0; k < n; ++k) v.items.push_back(read_value(c, et, key, depth + 1));
        break;
      }
    }
    return v;
  }

  void parse() {
    const std::string& path = file_->path();
    cursor c{file_->data(), file_->size(), 0, &path};
    c.need(4, "magic");
    if (std::memcmp(c.p, "GGUF", 4) != 0) c.bad(0, "magic: expected \"GGUF\", got other bytes");
    c.at = 4;
    version_ = c.read<std::uint32_t>("version");
    if (version_ == 1) detail::fail<unsupported_error>("gguf '", path, "': version 1 is not supported (expected 2 or 3)");
    if (version_ != 2 && version_ != 3) c.bad(4, "version: expected 2 or 3, got ", version_);
    const std::uint64_t n_tensors = c.read<std::uint64_t>("tensor_count");
    const std::uint64_t n_kv = c.read<std::uint64_t>("kv_count");
    if (n_kv > (c.size - c.at) / 13) c.bad(16, "kv_count: ", n_kv, " entries cannot fit in the file");
    if (n_tensors > (c.size - c.at) / 32) c.bad(8, "tensor_count: ", n_tensors, " tensors cannot fit in the file");
    for (std::uint64_t k = 0; k < n_kv; ++k) {
      const std::size_t at = c.at;
      std::string key = c.str("key");
      if (find_kv(key)) c.bad(at, "key '", key, "' appears twice");
      const std::uint32_t t = c.read<std::uint32_t>("value type");
      gguf_value v = read_value(c, t, key, 0);
      kv_.emplace_back(std::move(key), std::move(v));
      kv_index_[kv_.back().first] = kv_.size() - 1;
    }
    alignment_ = 32;
    if (const gguf_value* a = find_kv("general.alignment")) {
      if (a->type != gguf_type::uint32) c.bad(0, "general.alignment: expected a uint32, got ", to_string(a->type));
      if (a->u == 0 || (a->u & (a->u - 1)) != 0) c.bad(0, "general.alignment: expected a power of two, got ", a->u);
      alignment_ = static_cast<std::uint32_t>(a->u);
    }
    for (std::uint64_t k = 0; k < n_tensors; ++k) {
      const std::size_t at = c.at;
      gguf_tensor t;
      t.name = c.str("tensor name");
      if (tensor_index_.count(t.name)) c.bad(at, "tensor name '", t.name, "' appears twice");
      const std::size_t dims_at = c.at;
      const std::uint32_t nd = c.read<std::uint32_t>("n_dims");
      if (nd == 0 || nd > 4) c.bad(dims_at, "n_dims of '", t.name, "': expected 1..4, got ", nd);
      std::uint64_t elems = 1;
      for (std::uint32_t d = 0; d < nd; ++d) {
        const std::size_t dat = c.at;
        const std::uint64_t v = c.read<std::uint64_t>("dimension");
        if (v == 0) c.bad(dat, "dimension ", d, " of '", t.name, "': expected > 0, got 0");
        if (elems > (std::uint64_t(1) << 62) / v) c.bad(dat, "dimensions of '", t.name, "': the element count overflows");
        elems *= v;
        t.ne.push_back(v);
      }
      const std::size_t type_at = c.at;
      t.type = c.read<std::uint32_t>("tensor type");
      const gguf_tensor_type_info* info = gguf_tensor_type(t.type);
      if (!info) c.bad(type_at, "type of '", t.name, "': unknown ggml type ", t.type);
      if (t.ne[0] % info->block_size != 0)
        c.bad(dims_at, "ne[0] of '", t.name, "': expected a multiple of ", info->block_size, " (", info->name, "), got ",
              t.ne[0]);
      // bytes = blocks × type_size without wrapping: a tensor whose bytes cannot fit in
      // the file is refused here (the data check below then compares in-range sizes).
      const std::uint64_t blocks = elems / info->block_size;
      if (blocks > c.size / info->type_size)
        c.bad(dims_at, "shape of '", t.name, "': ", elems, " elements of ", info->name, " (", blocks, " blocks of ",
              info->type_size, " bytes) cannot fit in the file's ", c.size, " bytes");
      t.bytes = blocks * info->type_size;
      const std::size_t off_at = c.at;
      t.offset = c.read<std::uint64_t>("tensor offset");
      if (t.offset % alignment_ != 0)
        c.bad(off_at, "offset of '", t.name, "': expected a multiple of ", alignment_, ", got ", t.offset);
      tensor_index_[t.name] = tensors_.size();
      tensors_.push_back(std::move(t));
      (void)at;
    }
    data_start_ = (c.at + alignment_ - 1) / alignment_ * alignment_;
    if (n_tensors > 0 && data_start_ > c.size) c.bad(c.at, "data section: padding to ", alignment_, " runs past the end");
    for (gguf_tensor& t : tensors_) {
      const std::uint64_t avail = c.size - data_start_;
      if (t.offset > avail || t.bytes > avail - t.offset)
        detail::fail<format_error>("gguf '", path, "': tensor '", t.name, "': data [", data_start_ + t.offset, ", ",
                                   data_start_ + t.offset + t.bytes, ") lies outside the file of ", c.size, " bytes");
      t.data = c.p + data_start_ + t.offset;
    }
  }

  const gguf_value* find_kv(const std::string& key) const noexcept {
    const auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
  }

  template <class T>
  T convert(const gguf_value& v, const std::string& key) const {
    auto mismatch = [&](const char* want) -> T {
      detail::fail<argument_error>("gguf '", file_->path(), "': key '", key, "': expected ", want, ", got ",
                                   to_string(v.type));
    };
    if constexpr (std::is_same_v<T, bool>) {
      if (v.type != gguf_type::boolean) return mismatch("bool");
      return v.u != 0;
    } else if constexpr (std::is_integral_v<T>) {
      if (v.is_unsigned()) {
        if (v.u > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return mismatch("a value that fits");
        return static_cast<T>(v.u);
      }
      if (v.is_signed()) {
        if (v.i < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
            (v.i > 0 && static_cast<std::uint64_t>(v.i) > static_cast<std::uint64_t>(std::numeric_limits<T>::max())))
          return mismatch("a value that fits");
        return static_cast<T>(v.i);
      }
      return mismatch("an integer");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_float()) return mismatch("a float");
      return static_cast<T>(v.f);
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (v.type != gguf_type::string) return mismatch("a string");
      return v.s;
    } else {
      using E = typename T::value_type;
      if (v.type != gguf_type::array) return mismatch("an array");
      T out;
      out.reserve(v.items.size());
      for (const gguf_value& e : v.items) out.push_back(convert<E>(e, key));
      return out;
    }
  }

  std::shared_ptr<mapped_file> file_;
  std::uint32_t version_ = 0, alignment_ = 32;
  std::uint64_t data_start_ = 0;
  std::vector<std::pair<std::string, gguf_value>> kv_;
  std::map<std::string, std::size_t> kv_index_;
  std::vector<gguf_tensor> tensors_;
  std::map<std::string, std::size_t> tensor_index_;
};

PARE_NAMESPACE_END
