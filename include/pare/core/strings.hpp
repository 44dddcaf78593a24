// String helpers shared by every spec parser: split on a separator, checked decimal numbers, and the shortest decimal that reads back exactly.
#pragma once

// Spec strings (quantizer configs "int4:g128:asym", recipe steps "prune:nm:2:4:wanda", ...)
// are fields separated by ':' (steps of a recipe by ','). split() keeps empty fields, so a
// parser sees "a::b" as three fields and can name the empty one in its error.

#include <cerrno>
#include <cstdlib>
#include <iomanip>
#include <sstream>
#include <optional>
#include <string>
#include <vector>

#include "pare/core/config.hpp"

PARE_NAMESPACE_BEGIN

/// The fields of `s` between occurrences of `sep` (empty fields kept; "" gives {""}).
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  for (std::size_t start = 0;;) {
    const std::size_t c = s.find(sep, start);
    out.push_back(s.substr(start, c == std::string::npos ? std::string::npos : c - start));
    if (c == std::string::npos) return out;
    start = c + 1;
  }
}

/// A decimal unsigned integer made of digits only (no sign, spaces or other text) that
/// fits `max`; nullopt otherwise.
inline std::optional<unsigned long long> parse_unsigned(const std::string& s,
                                                        unsigned long long max = ~0ull) noexcept {
  if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
  if (errno == ERANGE || v > max) return std::nullopt;
  return v;
}

/// A whole string read as a finite decimal number (strtod syntax, nothing left over).
inline std::optional<double> parse_number(const std::string& s) noexcept {
  if (s.empty() || s.find_first_of(" \t\n") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double d = std::strtod(s.c_str(), &end);
  if (*end != '\0' || errno == ERANGE || !(d == d) || d > 1.7976931348623157e308 || d < -1.7976931348623157e308)
    return std::nullopt;
  return d;
}

/// The shortest decimal form of x that reads back (strtod) as exactly x.
inline std::string shortest_decimal(double x) {
  std::string out;
  for (int p = 1; p <= 17; ++p) {
    std::ostringstream os;
    os << std::setprecision(p) << x;
    out = os.str();
    if (std::strtod(out.c_str(), nullptr) == x) break;
  }
  return out;
}

PARE_NAMESPACE_END
