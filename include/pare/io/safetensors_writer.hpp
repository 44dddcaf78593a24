// safetensors writer: tensors (raw bytes or float32 converted to F32/F16/BF16/F64/F8) and metadata, validated, written atomically.
#pragma once

// Usage:
//   pare::safetensors_writer w;
//   w.set_metadata("format", "pt");
//   w.add("embed.weight", pare::safetensors_dtype::bf16, {512, 64}, bytes, n);   // copies the bytes
//   w.add_f32("norm.weight", {64}, floats, 64, pare::safetensors_dtype::f16);    // converts (nearest-even)
//   w.write(path);                 // through atomic_file: nothing appears at `path` on failure
//   auto bytes = w.to_bytes();     // the same file in memory
// Every add checks its arguments (empty or duplicate name, "__metadata__" as a name, a
// shape whose element count overflows, a byte count that is not elements × dtype size,
// an unsupported target dtype) and throws argument_error before anything is stored, so a
// failed add leaves the writer as it was; write() only serialises what was accepted.
// add_view() stores a pointer instead of a copy: the bytes must outlive write()/to_bytes().
//
// Layout, as the reference implementation (huggingface/safetensors, used by Python's
// save_file) writes it, so that the same tensors give the same bytes:
//   tensors are ordered by dtype, widest first (the Dtype order U64 I64 F64 F32 U32 I32
//   BF16 F16 U16 I16 F8_E4M3 F8_E5M2 I8 U8 BOOL), then by name (byte order); data_offsets
//   follow that order without gaps, so every tensor is aligned to its element size;
//   the header is compact JSON: {"__metadata__":{...sorted keys...},"name":{"dtype":"F32",
//   "shape":[...],"data_offsets":[b,e]},...} in that order ("__metadata__" omitted when
//   empty), padded with spaces to a multiple of 8 bytes; then the byte buffer.
// Note: Hugging Face transformers refuses files whose metadata lacks "format": "pt" once
// any metadata is present; set it when the file is meant for transformers.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "pare/core/dtypes/bf16.hpp"
#include "pare/core/dtypes/fp16.hpp"
#include "pare/core/dtypes/fp8.hpp"
#include "pare/core/error.hpp"
#include "pare/io/atomic_file.hpp"
#include "pare/io/safetensors.hpp"

PARE_NAMESPACE_BEGIN

class safetensors_writer {
 public:
  safetensors_writer() = default;
  safetensors_writer(const safetensors_writer&) = delete;  // entries point into their own buffers
  safetensors_writer& operator=(const safetensors_writer&) = delete;
  safetensors_writer(safetensors_writer&&) noexcept = default;
  safetensors_writer& operator=(safetensors_writer&&) noexcept = default;

  /// Sets (or replaces) one "__metadata__" entry (argument_error unless both are valid UTF-8).
  void set_metadata(const std::string& key, const std::string& value) {
    (void)quote(key);
    (void)quote(value);
    metadata_[key] = value;
  }
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  /// Adds a tensor from `n` raw little-endian bytes (copied).
  void add(const std::string& name, safetensors_dtype dtype, std::vector<std::uint64_t> shape, const void* bytes,
           std::size_t n) {
    check("safetensors_writer::add", name, dtype, shape, n, bytes);
    entry e{name, dtype, std::move(shape), {}, nullptr, n};
    if (n) {
      e.owned.assign(static_cast<const std::uint8_t*>(bytes), static_cast<const std::uint8_t*>(bytes) + n);
      e.data = e.owned.data();
    }
    entries_.push_back(std::move(e));
  }
  /// Adds a tensor from owned bytes (moved in, no copy).
  void add(const std::string& name, safetensors_dtype dtype, std::vector<std::uint64_t> shape,
           std::vector<std::uint8_t> bytes) {
    check("safetensors_writer::add", name, dtype, shape, bytes.size(), bytes.data());
    const std::size_t n = bytes.size();
    entry e{name, dtype, std::move(shape), std::move(bytes), nullptr, n};
    e.data = e.owned.data();
    entries_.push_back(std::move(e));
  }
  /// Adds a tensor whose bytes stay where they are (they must outlive write()/to_bytes()).
  void add_view(const std::string& name, safetensors_dtype dtype, std::vector<std::uint64_t> shape, const void* bytes,
                std::size_t n) {
    check("safetensors_writer::add_view", name, dtype, shape, n, bytes);
    entries_.push_back(entry{name, dtype, std::move(shape), {}, static_cast<const std::uint8_t*>(bytes), n});
  }
  /// Adds `n` floats stored as `target` (F32, F64, F16, BF16: nearest-even; F8_E4M3 and
  /// F8_E5M2: nearest-even, saturating to the largest finite value).
  void add_f32(const std::string& name, std::vector<std::uint64_t> shape, const float* values, std::size_t n,
               safetensors_dtype target = safetensors_dtype::f32) {
    const char* fn = "safetensors_writer::add_f32";
    if (!is_float(target))
      detail::fail<argument_error>(fn, ": tensor '", name, "': argument 'target': expected a float dtype, got ",
                                   to_string(target));
    const std::uint64_t elems = count(fn, name, shape);
    if (elems != n)
      detail::fail<argument_error>(fn, ": tensor '", name, "': the shape holds ", elems, " elements, got ", n, " values");
    if (n && !values) detail::fail<argument_error>(fn, ": tensor '", name, "': argument 'values' is null");
    std::vector<std::uint8_t> out(n * safetensors_dtype_size(target));
    switch (target) {
      case safetensors_dtype::f32:
        if (n) std::memcpy(out.data(), values, n * 4);
        break;
      case safetensors_dtype::f64:
        for (std::size_t i = 0; i < n; ++i) {
          const double d = values[i];
          std::memcpy(out.data() + 8 * i, &d, 8);
        }
        break;
      case safetensors_dtype::f16:
      case safetensors_dtype::bf16:
        for (std::size_t i = 0; i < n; ++i) {
          const std::uint16_t h = target == safetensors_dtype::f16 ? float_to_fp16(values[i]) : float_to_bf16(values[i]);
          std::memcpy(out.data() + 2 * i, &h, 2);
        }
        break;
      case safetensors_dtype::f8_e4m3: convert_float_to_e4m3(values, out.data(), n); break;
      case safetensors_dtype::f8_e5m2: convert_float_to_e5m2(values, out.data(), n); break;
      default: break;
    }
    add(name, target, std::move(shape), std::move(out));
  }

  bool has(const std::string& name) const noexcept {
    return std::any_of(entries_.begin(), entries_.end(), [&](const entry& e) { return e.name == name; });
  }
  std::size_t size() const noexcept { return entries_.size(); }

  /// The complete file in memory.
  std::vector<std::uint8_t> to_bytes() const {
    std::vector<std::uint8_t> out;
    emit(header(), [&](const void* p, std::size_t n) {
      const auto* b = static_cast<const std::uint8_t*>(p);
      out.insert(out.end(), b, b + n);
    });
    return out;
  }

  /// Writes the file to `path` through a temporary renamed into place (io_error on failure).
  void write(const std::string& path) const {
    const std::string h = header();
    atomic_file out(path);
    emit(h, [&](const void* p, std::size_t n) { out.write(p, n); });
    out.commit();
  }

  /// The JSON header (padded) that write() would produce.
  std::string header() const {
    std::vector<const entry*> order = sorted();
    std::string h = "{";
    bool first = true;
    if (!metadata_.empty()) {
      h += "\"__metadata__\":{";
      for (auto it = metadata_.begin(); it != metadata_.end(); ++it) {
        if (it != metadata_.begin()) h += ",";
        h += quote(it->first) + ":" + quote(it->second);
      }
      h += "}";
      first = false;
    }
    std::uint64_t offset = 0;
    for (const entry* e : order) {
      if (!first) h += ",";
      first = false;
      h += quote(e->name) + ":{\"dtype\":\"" + to_string(e->dtype) + "\",\"shape\":[";
      for (std::size_t d = 0; d < e->shape.size(); ++d) h += (d ? "," : "") + std::to_string(e->shape[d]);
      h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + e->bytes) + "]}";
      offset += e->bytes;
    }
    h += "}";
    h.append((8 - h.size() % 8) % 8, ' ');
    return h;
  }

 private:
  struct entry {
    std::string name;
    safetensors_dtype dtype;
    std::vector<std::uint64_t> shape;
    std::vector<std::uint8_t> owned;
    const std::uint8_t* data;
    std::size_t bytes;
  };

  static std::string quote(const std::string& s) {
    try {
      return nlohmann::json(s).dump();
    } catch (const nlohmann::json::exception& e) {  // invalid UTF-8
      detail::fail<argument_error>("safetensors_writer: string '", s, "' is not valid UTF-8: ", e.what());
    }
  }

  static std::uint64_t count(const char* fn, const std::string& name, const std::vector<std::uint64_t>& shape) {
    std::uint64_t n = 1;
    bool empty = false;
    const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() / 8;
    for (auto d : shape) {
      if (d == 0) {
        empty = true;
        continue;
      }
      if (n > limit / d) detail::fail<argument_error>(fn, ": tensor '", name, "': the element count of the shape overflows");
      n *= d;
    }
    return empty ? 0 : n;
  }

  void check(const char* fn, const std::string& name, safetensors_dtype dtype, const std::vector<std::uint64_t>& shape,
             std::size_t n, const void* bytes) const {
    if (name.empty()) detail::fail<argument_error>(fn, ": argument 'name': expected a non-empty name");
    if (name == "__metadata__") detail::fail<argument_error>(fn, ": argument 'name': '__metadata__' is reserved");
    (void)quote(name);  // valid UTF-8
    if (static_cast<std::size_t>(dtype) >= safetensors_dtype_count)
      detail::fail<argument_error>(fn, ": tensor '", name, "': argument 'dtype': unknown dtype ", int(dtype));
    if (has(name)) detail::fail<argument_error>(fn, ": tensor '", name, "' added twice");
    const std::uint64_t elems = count(fn, name, shape);
    const std::uint64_t want = elems * safetensors_dtype_size(dtype);
    if (want != n)
      detail::fail<argument_error>(fn, ": tensor '", name, "': ", elems, " elements of ", to_string(dtype), " need ", want,
                                   " bytes, got ", n);
    if (n && !bytes) detail::fail<argument_error>(fn, ": tensor '", name, "': argument 'bytes' is null");
  }

  std::vector<const entry*> sorted() const {
    std::vector<const entry*> order;
    for (const entry& e : entries_) order.push_back(&e);
    std::sort(order.begin(), order.end(), [](const entry* a, const entry* b) {
      if (a->dtype != b->dtype) return a->dtype > b->dtype;
      return a->name < b->name;
    });
    return order;
  }

  template <class Sink>
  void emit(const std::string& h, Sink&& sink) const {
    std::uint8_t len[8];
    const std::uint64_t n = h.size();
    for (int k = 0; k < 8; ++k) len[k] = static_cast<std::uint8_t>(n >> (8 * k));
    sink(len, 8);
    sink(h.data(), h.size());
    for (const entry* e : sorted())
      if (e->bytes) sink(e->data, e->bytes);
  }

  std::map<std::string, std::string> metadata_;
  std::vector<entry> entries_;
};

PARE_NAMESPACE_END
