// mapped_file: a read-only view of a whole file's bytes (memory-mapped on POSIX, read into memory elsewhere or on request).
#pragma once

// Readers of model files (GGUF, safetensors, llama2.c) take a byte_span and return tensor
// views that point into it, so a mapped file is never copied. A mapped_file can also own
// an in-memory copy (from_bytes), which tests use to feed truncated or corrupted files.
// The mapping lives as long as the mapped_file (move-only; share it through a
// std::shared_ptr when several views must keep it alive).

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define PARE_HAS_MMAP 1
#else
#define PARE_HAS_MMAP 0
#endif

PARE_NAMESPACE_BEGIN

namespace detail {
#if PARE_HAS_MMAP
/// "a directory", "a FIFO (named pipe)", ...: what a stat mode that is not a regular file is.
inline const char* file_type_name(mode_t m) noexcept {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  return "a special file";
}
#endif
}  // namespace detail

/// Why `path` cannot be read as a regular file, or "" if it can: "cannot open: <the
/// system's reason>" (missing, a path through a non-directory, ...), "expected a regular
/// file, got a directory" (or a FIFO, socket, device), "cannot open for reading: <reason>"
/// (permissions). FIFOs and devices are refused from their type, never opened, so this
/// never blocks; a regular file is opened once (non-blocking) and closed again.
inline std::string unreadable_file_reason(const std::string& path) {
#if PARE_HAS_MMAP
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::string("cannot open: ") + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return std::string("expected a regular file, got ") + detail::file_type_name(st.st_mode);
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::string("cannot open for reading: ") + std::strerror(errno);
  ::close(fd);
  return {};
#else
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::string("cannot open for reading: ") + std::strerror(errno);
  return {};
#endif
}

/// A read-only range of bytes.
struct byte_span {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
};

class mapped_file {
 public:
  mapped_file() = default;
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  mapped_file(mapped_file&& o) noexcept { swap(o); }
  mapped_file& operator=(mapped_file&& o) noexcept {
    mapped_file tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~mapped_file() { release(); }

  /// Maps `path` read-only (or reads it when mapping is unavailable or `use_mmap` is
  /// false). Throws io_error naming the path and the system's reason.
  static mapped_file open(const std::string& path, bool use_mmap = true) {
    mapped_file f;
    f.path_ = path;
#if PARE_HAS_MMAP
    if (use_mmap) {
      // Non-blocking: opening a FIFO for reading would otherwise wait for a writer.
      const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) detail::fail<io_error>("pare::mapped_file::open: cannot open '", path, "': ", std::strerror(errno));
      struct stat st {};
      if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        detail::fail<io_error>("pare::mapped_file::open: cannot stat '", path, "': ", std::strerror(e));
      }
      if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        detail::fail<io_error>("pare::mapped_file::open: '", path, "': expected a regular file, got ",
                               detail::file_type_name(st.st_mode));
      }
      f.size_ = static_cast<std::size_t>(st.st_size);
      if (f.size_ > 0) {
        void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
          const int e = errno;
          ::close(fd);
          detail::fail<io_error>("pare::mapped_file::open: cannot map '", path, "': ", std::strerror(e));
        }
        f.map_ = p;
        f.data_ = static_cast<const std::uint8_t*>(p);
      }
      ::close(fd);
      return f;
    }
#endif
    const std::string why = unreadable_file_reason(path);
    if (!why.empty()) detail::fail<io_error>("pare::mapped_file::open: '", path, "': ", why);
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) detail::fail<io_error>("pare::mapped_file::open: cannot open '", path, "': ", std::strerror(errno));
    const std::streamoff n = in.tellg();
    if (n < 0) detail::fail<io_error>("pare::mapped_file::open: cannot size '", path, "'");
    f.owned_ = aligned_buffer<std::uint8_t>(static_cast<std::size_t>(n));
    in.seekg(0);
    if (n > 0 && !in.read(reinterpret_cast<char*>(f.owned_.data()), n))
      detail::fail<io_error>("pare::mapped_file::open: short read from '", path, "'");
    f.size_ = static_cast<std::size_t>(n);
    f.data_ = f.owned_.data();
    return f;
  }

  /// An in-memory "file" holding a copy of `bytes` (64-byte aligned).
  static mapped_file from_bytes(const void* bytes, std::size_t n, std::string name = "<memory>") {
    mapped_file f;
    f.path_ = std::move(name);
    f.owned_ = aligned_buffer<std::uint8_t>(n);
    if (n) std::memcpy(f.owned_.data(), bytes, n);
    f.size_ = n;
    f.data_ = f.owned_.data();
    return f;
  }
  static mapped_file from_bytes(const std::vector<std::uint8_t>& v, std::string name = "<memory>") {
    return from_bytes(v.data(), v.size(), std::move(name));
  }

  const std::uint8_t* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  byte_span bytes() const noexcept { return {data_, size_}; }
  const std::string& path() const noexcept { return path_; }
  bool is_mapped() const noexcept { return map_ != nullptr; }

 private:
  void release() noexcept {
#if PARE_HAS_MMAP
    if (map_) ::munmap(map_, size_);
#endif
    map_ = nullptr;
    data_ = nullptr;
    size_ = 0;
  }
  void swap(mapped_file& o) noexcept {
    std::swap(map_, o.map_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(owned_, o.owned_);
    std::swap(path_, o.path_);
  }

  void* map_ = nullptr;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  aligned_buffer<std::uint8_t> owned_;
  std::string path_;
};

PARE_NAMESPACE_END
