// The pare::error exception hierarchy and the message builder every check uses.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "pare/core/config.hpp"

PARE_NAMESPACE_BEGIN

/// Base of every exception pare throws. Messages name the argument, what was expected
/// and what was received, e.g. "quantize: argument 'group_size': expected a divisor of
/// the row length 100, got 32". A function that throws changes nothing it was given.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Shapes (or strides) of the arguments disagree; the message prints both shapes.
class shape_error : public error {
 public:
  using error::error;
};

/// A scalar argument is out of its range (bits, group size, percentile, ...).
class argument_error : public error {
 public:
  using error::error;
};

/// Data values are unusable (NaN or Inf); the message names the position.
class value_error : public error {
 public:
  using error::error;
};

/// A file or serialized buffer is truncated or malformed; names field and offset.
class format_error : public error {
 public:
  using error::error;
};

/// The operating system refused a file operation.
class io_error : public error {
 public:
  using error::error;
};

/// The machine could not provide what a valid request needs (threads, memory).
class resource_error : public error {
 public:
  using error::error;
};

/// A valid request that this build or machine does not support.
class unsupported_error : public error {
 public:
  using error::error;
};

namespace detail {
/// Streams every argument into one string.
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

/// Throws E with the concatenated message.
template <class E = error, class... Args>
[[noreturn]] void fail(Args&&... args) {
  throw E(concat(std::forward<Args>(args)...));
}
}  // namespace detail

PARE_NAMESPACE_END
