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
      const int fd = ::open(path.c_str(), O_RDONLY);
      if (fd < 0) detail::fail<io_error>("pare::mapped_file::open: cannot open '", path, "': ", std::strerror(errno));
      struct stat st {};
      if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        detail::fail<io_error>("pare::mapped_file::open: '", path, "' is not a readable regular file");
      }
      f.size_ = static_cast<std::size_t>(st.st_size);
      if (f.size_ > 0) {
        void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
          ::close(fd);
          detail::fail<io_error>("pare::mapped_file::open: cannot map '", path, "': ", std::strerror(errno));
        }
        f.map_ = p;
        f.data_ = static_cast<const std::uint8_t*>(p);
      }
      ::close(fd);
      return f;
    }
#endif
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) detail::fail<io_error>("pare::mapped_file::open: cannot open '", path, "'");
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
