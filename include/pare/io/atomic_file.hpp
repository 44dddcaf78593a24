// atomic_file: writes an output file through a temporary in the same directory and renames it into place on commit.
#pragma once

// Usage:
//   pare::atomic_file out(path);      // opens "<path>.tmp-<pid>-<n>" for writing
//   out.write(bytes, n); ...          // io_error on any failure
//   out.commit();                     // flush, close, rename over `path`
// If commit() is never reached (an exception, an early return), the destructor removes
// the temporary and `path` is untouched: readers never see a half-written model.

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "pare/core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

PARE_NAMESPACE_BEGIN

class atomic_file {
 public:
  explicit atomic_file(std::string path) : path_(std::move(path)) {
    static std::atomic<unsigned> counter{0};
#if defined(__unix__) || defined(__APPLE__)
    const long pid = static_cast<long>(::getpid());
#else
    const long pid = 0;
#endif
    tmp_ = detail::concat(path_, ".tmp-", pid, "-", counter.fetch_add(1));
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) detail::fail<io_error>("pare::atomic_file: cannot create '", tmp_, "': ", std::strerror(errno));
  }
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;
  ~atomic_file() {
    if (f_) std::fclose(f_);
    if (!committed_) std::remove(tmp_.c_str());
  }

  void write(const void* p, std::size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n)
      detail::fail<io_error>("pare::atomic_file: cannot write ", n, " bytes to '", tmp_, "': ", std::strerror(errno));
    written_ += n;
  }
  /// Writes `n` zero bytes (alignment padding).
  void pad(std::size_t n) {
    static const std::uint8_t zeros[64] = {};
    while (n) {
      const std::size_t k = n < sizeof zeros ? n : sizeof zeros;
      write(zeros, k);
      n -= k;
    }
  }
  /// Bytes written so far (the current offset in the output).
  std::uint64_t offset() const noexcept { return written_; }

  /// Flushes, closes and renames the temporary over the destination.
  void commit() {
    if (std::fflush(f_) != 0)
      detail::fail<io_error>("pare::atomic_file: cannot flush '", tmp_, "': ", std::strerror(errno));
#if defined(__unix__) || defined(__APPLE__)
    ::fsync(fileno(f_));
#endif
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) detail::fail<io_error>("pare::atomic_file: cannot close '", tmp_, "': ", std::strerror(errno));
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
      detail::fail<io_error>("pare::atomic_file: cannot rename '", tmp_, "' to '", path_, "': ", std::strerror(errno));
    committed_ = true;
  }

  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
  std::uint64_t written_ = 0;
};

PARE_NAMESPACE_END
