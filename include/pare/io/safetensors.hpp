// safetensors reader: strict header validation, zero-copy tensor views into a mapped file, float32 conversion.
#pragma once

// Layout (safetensors specification, huggingface/safetensors):
//   uint64 N (little-endian) | N bytes of UTF-8 JSON, possibly padded with spaces | byte buffer
// The JSON is one object. "__metadata__" (optional) maps strings to strings; every other
// key is a tensor name mapping to
//   {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}
// with [begin, end) relative to the start of the byte buffer (file offset 8 + N). Elements
// are little-endian, row-major (C order); shape [] is a scalar, a 0 in the shape an empty
// tensor. Unknown fields inside a tensor entry are ignored (as the reference implementation does).
//
// dtypes: F64 F32 F16 BF16 F8_E4M3 F8_E5M2 I64 I32 I16 I8 U64 U32 U16 U8 BOOL. Any other
// dtype is an unsupported_error naming the tensor and the dtype.
//
// Validation (each a pare::format_error naming the field or tensor and a byte offset of
// the file; for a tensor's fields, the offset of its name in the header):
//   fewer than 8 bytes; N > 100,000,000 (the reference limit) or N larger than the rest of
//   the file; a header not starting with '{', nested deeper than 64, malformed JSON or
//   invalid UTF-8 (nlohmann's error and position); a key appearing twice in any object;
//   "__metadata__" not an object of strings; a tensor entry not an object; "dtype" missing
//   or not a string; "shape" missing or not an array of non-negative integers, or its
//   element count overflowing; "data_offsets" missing or not two non-negative integers;
//   end < begin; end past the byte buffer; end - begin != elements × dtype size; and, as the
//   specification requires, the tensors (sorted by begin) must cover the byte buffer
//   exactly: no overlap, no hole, nothing after the last tensor.
//
// Views: safetensors_tensor::data points into the mapping (shared by every copy of the
// safetensors_file through a std::shared_ptr). f32_view() is a zero-copy matrix view of an
// F32 tensor whose data is 4-byte aligned (always true for files written by the reference
// implementation or pare's writer, which put the widest dtypes first); read_f32() and
// f32_matrix() convert any float dtype (F64, F32, F16, BF16, F8_E4M3, F8_E5M2) to float32.
// A tensor is seen as a matrix [rows = product of all dimensions but the last, cols = the
// last dimension] (a scalar is 1 × 1), so a PyTorch Linear weight [out, in] is pare's [out, in].
// The host must be little-endian (as every platform pare supports).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/dtypes/bf16.hpp"
#include "pare/core/dtypes/fp16.hpp"
#include "pare/core/dtypes/fp8.hpp"
#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/io/mapped_file.hpp"

PARE_NAMESPACE_BEGIN

/// safetensors element types, in the order of the reference implementation's Dtype enum
/// (its writer sorts tensors by this order, descending, then by name).
enum class safetensors_dtype : std::uint8_t {
  boolean, u8, i8, f8_e5m2, f8_e4m3, i16, u16, f16, bf16, i32, u32, f32, f64, i64, u64
};

inline constexpr std::size_t safetensors_dtype_count = 15;

/// The specification's name: "BOOL", "U8", ..., "F8_E4M3", "BF16", "F32".
inline const char* to_string(safetensors_dtype t) noexcept {
  static const char* names[] = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
                                "BF16", "I32", "U32", "F32",     "F64",     "I64", "U64"};
  const auto k = static_cast<std::size_t>(t);
  return k < safetensors_dtype_count ? names[k] : "unknown";
}

/// Bytes per element.
inline std::size_t safetensors_dtype_size(safetensors_dtype t) noexcept {
  switch (t) {
    case safetensors_dtype::boolean: case safetensors_dtype::u8: case safetensors_dtype::i8:
    case safetensors_dtype::f8_e5m2: case safetensors_dtype::f8_e4m3: return 1;
    case safetensors_dtype::i16: case safetensors_dtype::u16: case safetensors_dtype::f16:
    case safetensors_dtype::bf16: return 2;
    case safetensors_dtype::i32: case safetensors_dtype::u32: case safetensors_dtype::f32: return 4;
    case safetensors_dtype::f64: case safetensors_dtype::i64: case safetensors_dtype::u64: return 8;
  }
  return 1;
}

/// True for F64, F32, F16, BF16, F8_E4M3 and F8_E5M2.
inline bool is_float(safetensors_dtype t) noexcept {
  return t == safetensors_dtype::f64 || t == safetensors_dtype::f32 || t == safetensors_dtype::f16 ||
         t == safetensors_dtype::bf16 || t == safetensors_dtype::f8_e4m3 || t == safetensors_dtype::f8_e5m2;
}

/// The dtype named `s` (exact, upper case as in the specification); false if unknown.
inline bool parse_safetensors_dtype(std::string_view s, safetensors_dtype& out) noexcept {
  for (std::size_t k = 0; k < safetensors_dtype_count; ++k)
    if (s == to_string(static_cast<safetensors_dtype>(k))) {
      out = static_cast<safetensors_dtype>(k);
      return true;
    }
  return false;
}

/// Converts n elements of float dtype `t` at `src` (any alignment) to float32 at `dst`.
/// F64 rounds to nearest; the others are exact. Throws unsupported_error for non-float dtypes.
inline void convert_to_f32(safetensors_dtype t, const std::uint8_t* src, std::size_t n, float* dst) {
  constexpr std::size_t chunk = 1024;
  switch (t) {
    case safetensors_dtype::f32:
      if (n) std::memcpy(dst, src, n * 4);
      return;
    case safetensors_dtype::f64:
      for (std::size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, src + 8 * i, 8);
        dst[i] = static_cast<float>(d);
      }
      return;
    case safetensors_dtype::f16:
    case safetensors_dtype::bf16: {
      std::uint16_t tmp[chunk];  // the converters take uint16_t*: copy so that any alignment is fine
      for (std::size_t i = 0; i < n; i += chunk) {
        const std::size_t k = std::min(chunk, n - i);
        std::memcpy(tmp, src + 2 * i, 2 * k);
        if (t == safetensors_dtype::f16) convert_fp16_to_float(tmp, dst + i, k);
        else convert_bf16_to_float(tmp, dst + i, k);
      }
      return;
    }
    case safetensors_dtype::f8_e4m3: convert_e4m3_to_float(src, dst, n); return;
    case safetensors_dtype::f8_e5m2: convert_e5m2_to_float(src, dst, n); return;
    default:
      detail::fail<unsupported_error>("convert_to_f32: argument 'dtype': expected a float dtype, got ", to_string(t));
  }
}

/// One tensor of a safetensors file: its description and its bytes inside the mapping.
struct safetensors_tensor {
  std::string name;
  safetensors_dtype dtype = safetensors_dtype::u8;
  std::vector<std::uint64_t> shape;   // outermost first
  std::uint64_t begin = 0, end = 0;   // data_offsets, relative to the byte buffer
  const std::uint8_t* data = nullptr;  // file data start + begin
  std::size_t bytes = 0;               // end - begin
  std::size_t header_offset = 0;       // file offset of the tensor's name in the JSON header

  std::size_t rank() const noexcept { return shape.size(); }
  /// Number of elements (1 for a scalar).
  std::size_t elements() const noexcept {
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    return n;
  }
  /// The last dimension (1 for a scalar).
  std::size_t cols() const noexcept { return shape.empty() ? 1 : static_cast<std::size_t>(shape.back()); }
  /// Product of all dimensions but the last (1 for a scalar or a vector).
  std::size_t rows() const noexcept {
    std::size_t n = 1;
    for (std::size_t k = 0; k + 1 < shape.size(); ++k) n *= static_cast<std::size_t>(shape[k]);
    return n;
  }
  byte_span span() const noexcept { return {data, bytes}; }
  const char* dtype_name() const noexcept { return to_string(dtype); }
};

/// An owned float32 matrix (what read_f32 converts into).
struct float_matrix {
  aligned_buffer<float> values;
  std::size_t rows = 0, cols = 0;
  matrix_view<const float> view() const noexcept { return matrix_view<const float>(values.data(), rows, cols); }
  matrix_view<float> view() noexcept { return matrix_view<float>(values.data(), rows, cols); }
};

class safetensors_file {
 public:
  /// The reference implementation's limit on the JSON header (100 MB).
  static constexpr std::uint64_t max_header_bytes = 100000000;
  /// Deepest nesting of JSON objects and arrays accepted in the header (valid files use 3).
  static constexpr int max_json_depth = 64;

  /// Maps and validates `path` (io_error if it cannot be read).
  static safetensors_file open(const std::string& path, bool use_mmap = true) {
    return safetensors_file(std::make_shared<mapped_file>(mapped_file::open(path, use_mmap)));
  }
  /// Validates a copy of `n` bytes (tests feed truncated and corrupted files this way).
  static safetensors_file from_bytes(const void* p, std::size_t n, std::string name = "<memory>") {
    return safetensors_file(std::make_shared<mapped_file>(mapped_file::from_bytes(p, n, std::move(name))));
  }
  static safetensors_file from_bytes(const std::vector<std::uint8_t>& v, std::string name = "<memory>") {
    return from_bytes(v.data(), v.size(), std::move(name));
  }

  /// Every tensor, sorted by data offset (the header order of files the reference writes).
  const std::vector<safetensors_tensor>& tensors() const noexcept { return tensors_; }
  /// "__metadata__" (empty when absent).
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
  /// Length N of the JSON header.
  std::uint64_t header_size() const noexcept { return header_size_; }
  /// File offset of the byte buffer (8 + N).
  std::uint64_t data_offset() const noexcept { return 8 + header_size_; }

  const safetensors_tensor* find(std::string_view name) const noexcept {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }
  bool has(std::string_view name) const noexcept { return find(name) != nullptr; }
  /// The tensor called `name`; argument_error if there is none.
  const safetensors_tensor& tensor(std::string_view name) const {
    const safetensors_tensor* t = find(name);
    if (!t) detail::fail<argument_error>("safetensors '", file_->path(), "': argument 'name': no tensor '", name, "'");
    return *t;
  }

  /// Zero-copy view of an F32 tensor as a matrix [rows, cols] (see above). unsupported_error
  /// if the dtype is not F32 or the data is not 4-byte aligned (read_f32 works for both).
  matrix_view<const float> f32_view(std::string_view name) const {
    const safetensors_tensor& t = tensor(name);
    if (t.dtype != safetensors_dtype::f32)
      detail::fail<unsupported_error>("safetensors '", file_->path(), "': tensor '", name,
                                      "': f32_view needs dtype F32, got ", t.dtype_name(), " (use read_f32)");
    if (reinterpret_cast<std::uintptr_t>(t.data) % alignof(float) != 0)
      detail::fail<unsupported_error>("safetensors '", file_->path(), "': tensor '", name, "': data at file byte ",
                                      data_offset() + t.begin, " is not 4-byte aligned (use read_f32)");
    return matrix_view<const float>(reinterpret_cast<const float*>(t.data), t.rows(), t.cols());
  }

  /// Any float tensor converted to float32 (row-major, elements() values).
  aligned_buffer<float> read_f32(std::string_view name) const {
    const safetensors_tensor& t = tensor(name);
    if (!is_float(t.dtype))
      detail::fail<unsupported_error>("safetensors '", file_->path(), "': tensor '", name,
                                      "': expected a float dtype (F64, F32, F16, BF16, F8_E4M3, F8_E5M2), got ",
                                      t.dtype_name());
    aligned_buffer<float> out(t.elements());
    convert_to_f32(t.dtype, t.data, out.size(), out.data());
    return out;
  }
  /// Any float tensor converted to an owned float32 matrix [rows, cols].
  float_matrix f32_matrix(std::string_view name) const {
    const safetensors_tensor& t = tensor(name);
    float_matrix m;
    m.values = read_f32(name);
    m.rows = t.rows();
    m.cols = t.cols();
    return m;
  }

  const mapped_file& file() const noexcept { return *file_; }
  std::shared_ptr<const mapped_file> shared_file() const noexcept { return file_; }

 private:
  explicit safetensors_file(std::shared_ptr<mapped_file> f) : file_(std::move(f)) { parse(); }

  template <class... A>
  [[noreturn]] void bad(std::uint64_t offset, A&&... a) const {
    detail::fail<format_error>("safetensors '", file_->path(), "': byte ", offset, ": ", std::forward<A>(a)...);
  }

  /// File offsets of the top-level keys, in order; rejects nesting deeper than max_json_depth.
  std::vector<std::size_t> scan_keys(const char* h, std::size_t n) const {
    std::vector<std::size_t> keys;
    int depth = 0;
    bool in_string = false, escape = false, expect_key = false;
    for (std::size_t i = 0; i < n; ++i) {
      const char c = h[i];
      if (in_string) {
        if (escape) escape = false;
        else if (c == '\\') escape = true;
        else if (c == '"') in_string = false;
        continue;
      }
      switch (c) {
        case '"':
          in_string = true;
          if (depth == 1 && expect_key) keys.push_back(8 + i);
          expect_key = false;
          break;
        case '{':
        case '[':
          if (++depth > max_json_depth) bad(8 + i, "header: JSON nested deeper than ", max_json_depth, " levels");
          expect_key = depth == 1 && c == '{';
          break;
        case '}':
        case ']': --depth; expect_key = false; break;
        case ',': expect_key = depth == 1; break;
        default: break;
      }
    }
    return keys;
  }

  static bool is_count(const nlohmann::json& v) noexcept { return v.is_number_unsigned(); }

  void parse() {
    const std::uint8_t* p = file_->data();
    const std::size_t size = file_->size();
    if (size < 8) bad(0, "header length: expected 8 bytes, the file has ", size);
    std::uint64_t n = 0;
    for (int k = 7; k >= 0; --k) n = (n << 8) | p[k];
    if (n > max_header_bytes) bad(0, "header length: ", n, " exceeds the limit of ", max_header_bytes, " bytes");
    if (n > size - 8) bad(0, "header length: ", n, " bytes, but only ", size - 8, " bytes follow");
    header_size_ = n;
    const char* h = reinterpret_cast<const char*>(p + 8);
    const auto hn = static_cast<std::size_t>(n);
    if (hn == 0 || h[0] != '{') bad(8, "header: expected a JSON object starting with '{'");
    const std::vector<std::size_t> key_at = scan_keys(h, hn);

    // Parse, recording the top-level keys in order and the first key repeated in any object.
    std::vector<std::string> top_keys;
    std::vector<std::set<std::string>> open;
    std::string dup;
    std::size_t dup_top = 0;
    bool has_dup = false;
    auto cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& v) {
      using E = nlohmann::json::parse_event_t;
      if (ev == E::object_start) open.emplace_back();
      else if (ev == E::object_end && !open.empty()) open.pop_back();
      else if (ev == E::key && v.is_string() && !open.empty()) {
        const std::string& k = v.get_ref<const std::string&>();
        if (depth == 1) top_keys.push_back(k);
        if (!open.back().insert(k).second && !has_dup) {
          has_dup = true;
          dup = k;
          dup_top = top_keys.empty() ? 0 : top_keys.size() - 1;
        }
      }
      return true;
    };
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(h, h + hn, cb);
    } catch (const nlohmann::json::parse_error& e) {
      bad(8 + (e.byte > 0 ? e.byte - 1 : 0), "header: malformed JSON: ", e.what());
    } catch (const nlohmann::json::exception& e) {
      bad(8, "header: malformed JSON: ", e.what());
    }
    auto offset_of = [&](std::size_t k) -> std::size_t { return k < key_at.size() ? key_at[k] : 8; };
    if (!j.is_object()) bad(8, "header: expected a JSON object, got ", j.type_name());
    if (has_dup) bad(offset_of(dup_top), "header: key '", dup, "' appears twice in one object");

    const std::uint64_t buffer = size - 8 - n;
    std::vector<safetensors_tensor> all;
    all.reserve(top_keys.size());
    for (std::size_t k = 0; k < top_keys.size(); ++k) {
      const std::string& key = top_keys[k];
      const std::size_t at = offset_of(k);
      const nlohmann::json& v = j.at(key);
      if (key == "__metadata__") {
        if (v.is_null()) continue;
        if (!v.is_object()) bad(at, "__metadata__: expected an object of strings, got ", v.type_name());
        for (const auto& [mk, mv] : v.items()) {
          if (!mv.is_string())
            bad(at, "__metadata__: value of '", mk, "': expected a string, got ", mv.type_name());
          metadata_[mk] = mv.get<std::string>();
        }
        continue;
      }
      all.push_back(read_entry(key, v, at, buffer));
    }

    // The tensors must tile the byte buffer: sorted by begin, each starts where the last ended.
    std::stable_sort(all.begin(), all.end(), [](const safetensors_tensor& a, const safetensors_tensor& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t expected = 0;
    const safetensors_tensor* prev = nullptr;
    for (const safetensors_tensor& t : all) {
      if (t.begin < expected)
        bad(t.header_offset, "tensor '", t.name, "': data_offsets [", t.begin, ", ", t.end, "] overlap tensor '",
            prev->name, "' [", prev->begin, ", ", prev->end, "]");
      if (t.begin > expected)
        bad(t.header_offset, "tensor '", t.name, "': data_offsets [", t.begin, ", ", t.end, "] leave a hole [",
            expected, ", ", t.begin, ") in the byte buffer (file bytes ", 8 + n + expected, "..", 8 + n + t.begin, ")");
      expected = t.end;
      prev = &t;
    }
    if (expected != buffer)
      bad(8 + n + expected, "byte buffer: ", buffer - expected, " bytes after the last tensor are not covered by any tensor");
    const std::uint8_t* base = p + 8 + hn;
    for (safetensors_tensor& t : all) t.data = base + static_cast<std::size_t>(t.begin);
    tensors_ = std::move(all);
    for (std::size_t k = 0; k < tensors_.size(); ++k) index_.emplace(tensors_[k].name, k);
  }

  safetensors_tensor read_entry(const std::string& name, const nlohmann::json& v, std::size_t at,
                                std::uint64_t buffer) const {
    if (!v.is_object()) bad(at, "tensor '", name, "': expected an object, got ", v.type_name());
    safetensors_tensor t;
    t.name = name;
    t.header_offset = at;
    const auto dt = v.find("dtype");
    if (dt == v.end()) bad(at, "tensor '", name, "': missing field 'dtype'");
    if (!dt->is_string()) bad(at, "tensor '", name, "': field 'dtype': expected a string, got ", dt->type_name());
    const std::string& dts = dt->get_ref<const std::string&>();
    if (!parse_safetensors_dtype(dts, t.dtype))
      detail::fail<unsupported_error>("safetensors '", file_->path(), "': byte ", at, ": tensor '", name,
                                      "': field 'dtype': unsupported dtype '", dts, "'");
    const auto sh = v.find("shape");
    if (sh == v.end()) bad(at, "tensor '", name, "': missing field 'shape'");
    if (!sh->is_array()) bad(at, "tensor '", name, "': field 'shape': expected an array, got ", sh->type_name());
    const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() / 8;
    std::uint64_t nonzero = 1;
    bool empty = false;
    for (std::size_t d = 0; d < sh->size(); ++d) {
      const nlohmann::json& e = (*sh)[d];
      if (!is_count(e))
        bad(at, "tensor '", name, "': field 'shape': entry ", d, ": expected a non-negative integer, got ", e.dump());
      const std::uint64_t x = e.get<std::uint64_t>();
      t.shape.push_back(x);
      if (x == 0) {
        empty = true;
        continue;
      }
      if (nonzero > limit / x) bad(at, "tensor '", name, "': field 'shape': the element count overflows");
      nonzero *= x;
    }
    const std::uint64_t elements = empty ? 0 : nonzero;
    const auto of = v.find("data_offsets");
    if (of == v.end()) bad(at, "tensor '", name, "': missing field 'data_offsets'");
    if (!of->is_array() || of->size() != 2 || !is_count((*of)[0]) || !is_count((*of)[1]))
      bad(at, "tensor '", name, "': field 'data_offsets': expected two non-negative integers, got ", of->dump());
    t.begin = (*of)[0].get<std::uint64_t>();
    t.end = (*of)[1].get<std::uint64_t>();
    if (t.end < t.begin) bad(at, "tensor '", name, "': data_offsets [", t.begin, ", ", t.end, "]: end < begin");
    if (t.end > buffer)
      bad(at, "tensor '", name, "': data_offsets [", t.begin, ", ", t.end, "]: end lies past the byte buffer of ", buffer,
          " bytes (file offset ", data_offset() + t.end, " > file size ", file_->size(), ")");
    const std::uint64_t want = elements * safetensors_dtype_size(t.dtype);
    if (t.end - t.begin != want)
      bad(at, "tensor '", name, "': data_offsets [", t.begin, ", ", t.end, "] hold ", t.end - t.begin, " bytes, but ",
          elements, " elements of ", t.dtype_name(), " need ", want);
    t.bytes = static_cast<std::size_t>(t.end - t.begin);
    return t;
  }

  std::shared_ptr<mapped_file> file_;
  std::uint64_t header_size_ = 0;
  std::vector<safetensors_tensor> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

PARE_NAMESPACE_END
