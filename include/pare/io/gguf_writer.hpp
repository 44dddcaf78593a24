// GGUF v3 writer: metadata and tensors streamed one at a time through a temporary file renamed into place.
#pragma once

// Usage:
//   pare::gguf_writer w(path);                 // alignment 32 unless set_alignment()
//   w.set("general.architecture", std::string("llama")); ...
//   w.add_tensor("token_embd.weight", 0 /*f32*/, {64, 512});    // declare all tensors first
//   w.write_header();
//   w.write_tensor("token_embd.weight", bytes, n);              // then their data, in order
//   w.finish();                                                  // rename into place
// Only one tensor's bytes need to be in memory at a time. Nothing appears at `path`
// unless finish() runs (atomic_file). The layout follows pare/io/gguf.hpp; values keep
// the GGUF type they were given (set<uint32_t> writes a uint32, and so on).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/io/atomic_file.hpp"
#include "pare/io/gguf.hpp"

PARE_NAMESPACE_BEGIN

class gguf_writer {
 public:
  explicit gguf_writer(std::string path) : out_(std::move(path)) {}

  void set_alignment(std::uint32_t a) {
    if (a == 0 || (a & (a - 1)) != 0)
      detail::fail<argument_error>("gguf_writer: argument 'alignment': expected a power of two, got ", a);
    alignment_ = a;
    set_value("general.alignment", scalar(gguf_type::uint32, a));
  }

  /// A metadata value as read by gguf_file (any type, arrays included).
  void set_value(const std::string& key, gguf_value v) {
    if (header_written_) detail::fail<argument_error>("gguf_writer::set: '", key, "' after write_header()");
    for (auto& kv : kv_)
      if (kv.first == key) {
        kv.second = std::move(v);
        return;
      }
    kv_.emplace_back(key, std::move(v));
  }
  template <class T>
  void set(const std::string& key, const T& v) {
    set_value(key, make(v));
  }

  void add_tensor(const std::string& name, std::uint32_t type, std::vector<std::uint64_t> ne) {
    if (header_written_) detail::fail<argument_error>("gguf_writer::add_tensor: '", name, "' after write_header()");
    const gguf_tensor_type_info* info = gguf_tensor_type(type);
    if (!info) detail::fail<argument_error>("gguf_writer::add_tensor: tensor '", name, "': unknown ggml type ", type);
    if (ne.empty() || ne.size() > 4)
      detail::fail<argument_error>("gguf_writer::add_tensor: tensor '", name, "': expected 1..4 dimensions, got ", ne.size());
    std::uint64_t elems = 1;
    for (auto d : ne) {
      if (d == 0) detail::fail<argument_error>("gguf_writer::add_tensor: tensor '", name, "': a dimension is 0");
      elems *= d;
    }
    if (ne[0] % info->block_size != 0)
      detail::fail<argument_error>("gguf_writer::add_tensor: tensor '", name, "': ne[0] = ", ne[0],
                                   " is not a multiple of the block size ", info->block_size, " of ", info->name);
    for (const auto& t : tensors_)
      if (t.name == name) detail::fail<argument_error>("gguf_writer::add_tensor: tensor '", name, "' declared twice");
    entry e{name, type, std::move(ne), next_offset_, elems / info->block_size * info->type_size};
    next_offset_ += (e.bytes + alignment_ - 1) / alignment_ * alignment_;
    tensors_.push_back(std::move(e));
  }

  void write_header() {
    if (header_written_) detail::fail<argument_error>("gguf_writer::write_header: called twice");
    put_raw("GGUF", 4);
    put<std::uint32_t>(3);
    put<std::uint64_t>(tensors_.size());
    put<std::uint64_t>(kv_.size());
    for (const auto& [k, v] : kv_) {
      put_string(k);
      put<std::uint32_t>(static_cast<std::uint32_t>(v.type));
      put_value(v);
    }
    for (const auto& t : tensors_) {
      put_string(t.name);
      put<std::uint32_t>(static_cast<std::uint32_t>(t.ne.size()));
      for (auto d : t.ne) put<std::uint64_t>(d);
      put<std::uint32_t>(t.type);
      put<std::uint64_t>(t.offset);
    }
    out_.pad((alignment_ - out_.offset() % alignment_) % alignment_);
    data_start_ = out_.offset();
    header_written_ = true;
  }

  /// The data of the next declared tensor (exactly its byte size).
  void write_tensor(const std::string& name, const void* bytes, std::size_t n) {
    if (!header_written_) detail::fail<argument_error>("gguf_writer::write_tensor: call write_header() first");
    if (next_ >= tensors_.size() || tensors_[next_].name != name)
      detail::fail<argument_error>("gguf_writer::write_tensor: expected tensor '",
                                   next_ < tensors_.size() ? tensors_[next_].name : std::string("(none)"), "', got '",
                                   name, "'");
    const entry& t = tensors_[next_];
    if (n != t.bytes)
      detail::fail<argument_error>("gguf_writer::write_tensor: tensor '", name, "': expected ", t.bytes, " bytes, got ", n);
    out_.pad(data_start_ + t.offset - out_.offset());
    out_.write(bytes, n);
    ++next_;
  }

  /// Pads the last tensor, checks every declared tensor was written, renames into place.
  void finish() {
    if (!header_written_ || next_ != tensors_.size())
      detail::fail<argument_error>("gguf_writer::finish: ", tensors_.size() - next_, " declared tensors not written");
    out_.pad((alignment_ - out_.offset() % alignment_) % alignment_);
    out_.commit();
  }

  static gguf_value scalar(gguf_type t, std::uint64_t u) {
    gguf_value v;
    v.type = t;
    v.u = u;
    return v;
  }

 private:
  struct entry {
    std::string name;
    std::uint32_t type;
    std::vector<std::uint64_t> ne;
    std::uint64_t offset, bytes;
  };

  static gguf_value make(const gguf_value& v) { return v; }
  static gguf_value make(bool b) { return scalar(gguf_type::boolean, b ? 1 : 0); }
  static gguf_value make(std::uint8_t x) { return scalar(gguf_type::uint8, x); }
  static gguf_value make(std::uint16_t x) { return scalar(gguf_type::uint16, x); }
  static gguf_value make(std::uint32_t x) { return scalar(gguf_type::uint32, x); }
  static gguf_value make(std::uint64_t x) { return scalar(gguf_type::uint64, x); }
  static gguf_value signed_value(gguf_type t, std::int64_t x) {
    gguf_value v;
    v.type = t;
    v.i = x;
    return v;
  }
  static gguf_value make(std::int8_t x) { return signed_value(gguf_type::int8, x); }
  static gguf_value make(std::int16_t x) { return signed_value(gguf_type::int16, x); }
  static gguf_value make(std::int32_t x) { return signed_value(gguf_type::int32, x); }
  static gguf_value make(std::int64_t x) { return signed_value(gguf_type::int64, x); }
  static gguf_value make(float x) {
    gguf_value v;
    v.type = gguf_type::float32;
    v.f = x;
    return v;
  }
  static gguf_value make(double x) {
    gguf_value v;
    v.type = gguf_type::float64;
    v.f = x;
    return v;
  }
  static gguf_value make(const std::string& s) {
    gguf_value v;
    v.type = gguf_type::string;
    v.s = s;
    return v;
  }
  static gguf_value make(const char* s) { return make(std::string(s)); }
  template <class E>
  static gguf_value make(const std::vector<E>& items) {
    gguf_value v;
    v.type = gguf_type::array;
    for (const E& e : items) v.items.push_back(make(e));
    v.elem = v.items.empty() ? make(E{}).type : v.items.front().type;
    return v;
  }

  template <class T>
  void put(T v) {
    out_.write(&v, sizeof(T));
  }
  void put_raw(const void* p, std::size_t n) { out_.write(p, n); }
  void put_string(const std::string& s) {
    put<std::uint64_t>(s.size());
    put_raw(s.data(), s.size());
  }
  void put_value(const gguf_value& v) {
    switch (v.type) {
      case gguf_type::uint8: put<std::uint8_t>(static_cast<std::uint8_t>(v.u)); break;
      case gguf_type::int8: put<std::int8_t>(static_cast<std::int8_t>(v.i)); break;
      case gguf_type::uint16: put<std::uint16_t>(static_cast<std::uint16_t>(v.u)); break;
      case gguf_type::int16: put<std::int16_t>(static_cast<std::int16_t>(v.i)); break;
      case gguf_type::uint32: put<std::uint32_t>(static_cast<std::uint32_t>(v.u)); break;
      case gguf_type::int32: put<std::int32_t>(static_cast<std::int32_t>(v.i)); break;
      case gguf_type::uint64: put<std::uint64_t>(v.u); break;
      case gguf_type::int64: put<std::int64_t>(v.i); break;
      case gguf_type::float32: put<float>(static_cast<float>(v.f)); break;
      case gguf_type::float64: put<double>(v.f); break;
      case gguf_type::boolean: put<std::uint8_t>(v.u ? 1 : 0); break;
      case gguf_type::string: put_string(v.s); break;
      case gguf_type::array:
        put<std::uint32_t>(static_cast<std::uint32_t>(v.elem));
        put<std::uint64_t>(v.items.size());
        for (const gguf_value& e : v.items) put_value(e);
        break;
    }
  }

  atomic_file out_;
  std::uint32_t alignment_ = 32;
  std::vector<std::pair<std::string, gguf_value>> kv_;
  std::vector<entry> tensors_;
  std::uint64_t next_offset_ = 0, data_start_ = 0;
  std::size_t next_ = 0;
  bool header_written_ = false;
};

/// Copies a GGUF file through the writer (all metadata, all tensors in file order).
inline void copy_gguf(const gguf_file& in, const std::string& path) {
  gguf_writer w(path);
  for (const auto& [k, v] : in.metadata()) w.set_value(k, v);
  if (in.has("general.alignment")) w.set_alignment(in.alignment());  // keeps the key where the file had it
  for (const auto& t : in.tensors()) w.add_tensor(t.name, t.type, t.ne);
  w.write_header();
  for (const auto& t : in.tensors()) w.write_tensor(t.name, t.data, static_cast<std::size_t>(t.bytes));
  w.finish();
}

PARE_NAMESPACE_END
