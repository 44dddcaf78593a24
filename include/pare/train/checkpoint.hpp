// Training checkpoints: parameters, optimizer state and step, data order (seed and cursor) in one versioned binary file, written atomically and loaded all-or-nothing.
#pragma once

// File layout (version 1; integers and floats little-endian, as the host must be):
//
//   "PARECKPT"                      8-byte magic
//   u32 version = 1, u32 0x01020304 (byte-order check)
//   u64 optimizer steps             the global step count
//   str optimizer kind              u32 length + bytes ("adamw", "sgd")
//   u64 data seed, u64 window length, u64 windows per epoch, u64 epoch, u64 index
//   u32 n, then n × tensor          every parameter (trainable or frozen), named() order
//   u32 m, then m × tensor          optimizer state "<tensor>.<slot>", set order
//   u64 FNV-1a 64 of all bytes above
//   tensor = str name, u64 count, count × f32
//
// Loading parses and checks the whole file first — magic, version, byte order, every
// length against the bytes left (format_error naming the field and offset), the
// checksum, the optimizer kind, every tensor name and size against the parameters and
// the optimizer's expected state (shape_error), the data shape (argument_error) — and
// only then writes parameters, optimizer state and step, and the sampler's seed and
// cursor. On any error nothing is changed.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/io/atomic_file.hpp"
#include "pare/train/optimizer.hpp"
#include "pare/train/parameter_set.hpp"
#include "pare/train/window_sampler.hpp"

PARE_NAMESPACE_BEGIN

namespace detail {

constexpr char checkpoint_magic[8] = {'P', 'A', 'R', 'E', 'C', 'K', 'P', 'T'};
constexpr std::uint32_t checkpoint_version = 1;
constexpr std::uint32_t checkpoint_byte_order = 0x01020304u;

inline std::uint64_t fnv1a64(const std::uint8_t* p, std::size_t n, std::uint64_t h = 0xcbf29ce484222325ull) noexcept {
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

/// Appends to a byte buffer.
struct checkpoint_writer {
  std::vector<std::uint8_t> bytes;
  void raw(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  void u32(std::uint32_t v) { raw(&v, 4); }
  void u64(std::uint64_t v) { raw(&v, 8); }
  void str(const std::string& s) {
    u32(static_cast<std::uint32_t>(s.size()));
    raw(s.data(), s.size());
  }
  void tensor(const std::string& name, const std::vector<float>& v) {
    str(name);
    u64(v.size());
    raw(v.data(), v.size() * sizeof(float));
  }
};

/// Reads from a byte buffer; format_error on any read past the end.
struct checkpoint_reader {
  const std::string& path;
  const std::vector<std::uint8_t>& bytes;
  std::size_t end, at = 0;
  void need(std::size_t n, const char* field) const {
    if (n > end - at)
      fail<format_error>("load_checkpoint: file '", path, "': truncated or malformed: field '", field, "' at offset ", at,
                         " needs ", n, " bytes, ", end - at, " left");
  }
  void raw(void* p, std::size_t n, const char* field) {
    need(n, field);
    std::memcpy(p, bytes.data() + at, n);
    at += n;
  }
  std::uint32_t u32(const char* field) {
    std::uint32_t v;
    raw(&v, 4, field);
    return v;
  }
  std::uint64_t u64(const char* field) {
    std::uint64_t v;
    raw(&v, 8, field);
    return v;
  }
  std::string str(const char* field) {
    const std::uint32_t n = u32(field);
    need(n, field);
    std::string s(reinterpret_cast<const char*>(bytes.data() + at), n);
    at += n;
    return s;
  }
  std::pair<std::string, std::vector<float>> tensor(const char* what) {
    std::string name = str(what);
    const std::uint64_t n = u64(what);
    if (n > (end - at) / sizeof(float)) need(end - at + 1, what);  // cannot hold n floats: truncated
    std::vector<float> v(static_cast<std::size_t>(n));
    raw(v.data(), v.size() * sizeof(float), what);
    return {std::move(name), std::move(v)};
  }
};

inline std::vector<std::uint8_t> read_whole_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail<io_error>("load_checkpoint: argument 'path': cannot open '", path, "'");
  std::vector<std::uint8_t> bytes;
  std::uint8_t buf[65536];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) bytes.insert(bytes.end(), buf, buf + n);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  if (bad) fail<io_error>("load_checkpoint: argument 'path': cannot read '", path, "'");
  return bytes;
}

}  // namespace detail

/// Writes every parameter of ps.params(), opt's state for ps (created zero if absent) and
/// step count, and data's seed and cursor to `path` (through a temporary, renamed into
/// place: an existing checkpoint is replaced only by a complete one).
inline void save_checkpoint(const std::string& path, parameter_set& ps, optimizer& opt, const window_sampler& data) {
  opt.prepare(ps);
  detail::checkpoint_writer w;
  w.raw(detail::checkpoint_magic, 8);
  w.u32(detail::checkpoint_version);
  w.u32(detail::checkpoint_byte_order);
  w.u64(opt.steps());
  w.str(opt.kind());
  w.u64(data.seed());
  w.u64(data.window_length());
  w.u64(data.size());
  w.u64(data.cursor().epoch);
  w.u64(data.cursor().index);
  const auto named = ps.params().named();
  w.u32(static_cast<std::uint32_t>(named.size()));
  for (const auto& [name, v] : named) w.tensor(name, *v);
  const auto st = opt.state();
  w.u32(static_cast<std::uint32_t>(st.size()));
  for (const auto& [name, v] : st) w.tensor(name, *v);
  w.u64(detail::fnv1a64(w.bytes.data(), w.bytes.size()));
  atomic_file out(path);
  out.write(w.bytes.data(), w.bytes.size());
  out.commit();
}

/// Restores a checkpoint written by save_checkpoint into ps.params(), opt (state and
/// step count) and data (seed and cursor); see the header comment for the checks. The
/// optimizer's hyperparameters are not stored: construct it with the same options.
inline void load_checkpoint(const std::string& path, parameter_set& ps, optimizer& opt, window_sampler& data) {
  using detail::fail;
  const std::vector<std::uint8_t> bytes = detail::read_whole_file(path);
  if (bytes.size() < 8 || std::memcmp(bytes.data(), detail::checkpoint_magic, 8) != 0)
    fail<format_error>("load_checkpoint: file '", path, "': field 'magic' at offset 0: expected \"PARECKPT\", got ",
                       bytes.size() < 8 ? "a file of " + std::to_string(bytes.size()) + " bytes" : "other bytes");
  if (bytes.size() < 24)
    fail<format_error>("load_checkpoint: file '", path, "': truncated: field 'version' at offset 8: expected at least 24 bytes ",
                       "(magic, version, byte order, checksum), got ", bytes.size());
  detail::checkpoint_reader r{path, bytes, bytes.size() - 8};
  r.at = 8;
  const std::uint32_t version = r.u32("version");
  if (version != detail::checkpoint_version)
    fail<format_error>("load_checkpoint: file '", path, "': field 'version' at offset 8: expected ", detail::checkpoint_version,
                       ", got ", version);
  const std::uint32_t order = r.u32("byte order");
  if (order != detail::checkpoint_byte_order)
    fail<format_error>("load_checkpoint: file '", path, "': field 'byte order' at offset 12: expected 0x01020304 (little-endian), got ",
                       order);
  const std::uint64_t steps = r.u64("optimizer steps");
  const std::string kind = r.str("optimizer kind");
  const std::uint64_t seed = r.u64("data seed"), len = r.u64("window length"), count = r.u64("windows per epoch");
  const data_cursor cur{r.u64("epoch"), r.u64("index")};
  std::vector<std::pair<std::string, std::vector<float>>> params, state;
  for (std::uint32_t i = 0, n = r.u32("parameter count"); i < n; ++i) params.push_back(r.tensor("parameter"));
  for (std::uint32_t i = 0, n = r.u32("state count"); i < n; ++i) state.push_back(r.tensor("optimizer state"));
  if (r.at != r.end)
    fail<format_error>("load_checkpoint: file '", path, "': field 'checksum' at offset ", r.at, ": expected the file to end ",
                       "8 bytes after the last tensor, got ", r.end - r.at, " extra bytes");
  std::uint64_t sum;
  std::memcpy(&sum, bytes.data() + r.end, 8);
  if (sum != detail::fnv1a64(bytes.data(), r.end))
    fail<format_error>("load_checkpoint: file '", path, "': field 'checksum' at offset ", r.end,
                       ": expected the FNV-1a hash of the preceding bytes, got a different value (corrupted file)");

  // Everything against what it will overwrite.
  if (kind != opt.kind())
    fail<argument_error>("load_checkpoint: argument 'opt': expected a '", kind, "' optimizer (the checkpoint's), got '", opt.kind(), "'");
  if (len != data.window_length() || count != data.size())
    fail<argument_error>("load_checkpoint: argument 'data': expected ", count, " windows of ", len, " tokens (the checkpoint's), got ",
                         data.size(), " windows of ", data.window_length());
  if (cur.index >= count)
    fail<format_error>("load_checkpoint: file '", path, "': field 'index': expected a value below ", count, ", got ", cur.index);
  auto check_list = [&](const char* what, const std::vector<std::pair<std::string, std::size_t>>& expect,
                        const std::vector<std::pair<std::string, std::vector<float>>>& got) {
    if (got.size() != expect.size())
      fail<shape_error>("load_checkpoint: file '", path, "': expected ", expect.size(), " ", what, " tensors, got ", got.size());
    for (std::size_t i = 0; i < got.size(); ++i)
      if (got[i].first != expect[i].first || got[i].second.size() != expect[i].second)
        fail<shape_error>("load_checkpoint: file '", path, "': ", what, " tensor ", i, ": expected '", expect[i].first, "' of ",
                          expect[i].second, " values, got '", got[i].first, "' of ", got[i].second.size());
  };
  std::vector<std::pair<std::string, std::size_t>> expect_p, expect_s;
  for (const auto& [name, v] : ps.params().named()) expect_p.emplace_back(name, v->size());
  const auto slots = opt.slots();
  for (std::size_t i = 0; i < ps.size(); ++i)
    for (const auto& s : slots) expect_s.emplace_back(ps.name(i) + "." + s, ps.value(i).size());
  check_list("parameter", expect_p, params);
  check_list("optimizer state", expect_s, state);

  // Commit (nothing below can fail on valid input but allocation).
  data.seek(cur, seed);
  auto named = ps.params().named();
  for (std::size_t i = 0; i < named.size(); ++i) *named[i].second = std::move(params[i].second);
  opt.prepare(ps);
  auto st = opt.state();
  for (std::size_t i = 0; i < st.size(); ++i) *st[i].second = std::move(state[i].second);
  opt.set_steps(steps);
}

PARE_NAMESPACE_END
