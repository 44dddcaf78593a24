// any_observer: a runtime choice among the observers, with parse_observer / to_string for config strings.
#pragma once

// Spec grammar (the observer field of quant_config strings, e.g. "int4:g128:asym:mse=200"):
//
//   minmax
//   ema[=momentum]                                           ema_minmax_observer  (0.01)
//   percentile[=p][,exact_limit=N]                           percentile_observer  (99.99)
//   mse[=grid][,max_shrink=f][,exact_limit=N]                mse_observer         (100, 0.8)
//   kl[=bins][,exact_limit=N]                                kl_observer          (2048)
//
// to_string() prints the keyword, then the main knob's value (except for minmax), then
// the other knobs that differ from their defaults; numbers are written in the shortest
// form that reads back to the same value, so parse_observer(to_string(o)) rebuilds o's
// knobs exactly. Bad names, numbers or knob values throw argument_error naming them.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <iomanip>
#include <locale>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "pare/core/strings.hpp"
#include "pare/stats/observers/ema_minmax.hpp"
#include "pare/stats/observers/kl.hpp"
#include "pare/stats/observers/minmax.hpp"
#include "pare/stats/observers/mse.hpp"
#include "pare/stats/observers/percentile.hpp"

PARE_NAMESPACE_BEGIN

/// Holds one of the five observers and forwards the observer interface to it.
class any_observer {
 public:
  using variant_type =
      std::variant<minmax_observer, ema_minmax_observer, percentile_observer, mse_observer, kl_observer>;
  static constexpr const char* name = "any";

  template <class T>
  static constexpr bool holds_type_v =
      std::is_same_v<T, minmax_observer> || std::is_same_v<T, ema_minmax_observer> ||
      std::is_same_v<T, percentile_observer> || std::is_same_v<T, mse_observer> || std::is_same_v<T, kl_observer>;

  /// A minmax_observer.
  any_observer() = default;

  /// Wraps a concrete observer (implicit, like std::variant).
  template <class Obs, class = std::enable_if_t<holds_type_v<std::decay_t<Obs>>>>
  any_observer(Obs&& obs)  // NOLINT(google-explicit-constructor)
      : v_(std::forward<Obs>(obs)) {}

  void reset() noexcept {
    std::visit([](auto& o) { o.reset(); }, v_);
  }
  void observe(const float* x, std::size_t n) {
    std::visit([&](auto& o) { o.observe(x, n); }, v_);
  }
  void observe(tensor_view<const float> t) {
    std::visit([&](auto& o) { o.observe(t); }, v_);
  }
  observed_range range(int_format fmt, scheme_kind scheme) const {
    return std::visit([&](const auto& o) { return o.range(fmt, scheme); }, v_);
  }

  /// The held observer's keyword ("minmax", "ema", "percentile", "mse", "kl").
  const char* kind() const noexcept {
    return std::visit([](const auto& o) -> const char* { return std::decay_t<decltype(o)>::name; }, v_);
  }

  const variant_type& variant() const noexcept { return v_; }
  variant_type& variant() noexcept { return v_; }

  /// The held observer if it is an Obs, else nullptr.
  template <class Obs>
  const Obs* get_if() const noexcept {
    return std::get_if<Obs>(&v_);
  }

 private:
  variant_type v_;
};

namespace detail {

/// Reads a whole string as a finite decimal number in the "C" locale.
inline bool read_decimal(const std::string& s, double& v) {
  if (s.empty() || s.find_first_of(" \t\n") != std::string::npos) return false;
  std::istringstream is(s);
  is.imbue(std::locale::classic());
  is >> v;
  return !is.fail() && is.peek() == std::char_traits<char>::eof() && std::isfinite(v);
}

/// Shortest "C"-locale decimal form of v that read_decimal reads back to v (to
/// float(v) when `single`).
inline std::string shortest_decimal(double v, bool single) {
  std::string out;
  for (int prec = 1; prec <= 17; ++prec) {
    std::ostringstream os;
    os.imbue(std::locale::classic());
    os << std::setprecision(prec) << v;
    out = os.str();
    double back = 0;
    if (read_decimal(out, back) && (single ? static_cast<float>(back) == static_cast<float>(v) : back == v)) break;
  }
  return out;
}

struct observer_spec_parser {
  const std::string& spec;

  [[noreturn]] void bad(const char* knob, const char* expected, const std::string& got) const {
    fail<argument_error>("parse_observer('", spec, "'): argument '", knob, "': expected ", expected, ", got '", got,
                         "'");
  }
  double real(const char* knob, const std::string& s) const {
    double v = 0;
    if (!read_decimal(s, v)) bad(knob, "a number", s);
    return v;
  }
  unsigned long long integer(const char* knob, const std::string& s, unsigned long long max) const {
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos)
      bad(knob, "a non-negative integer", s);
    const unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
    if (v > max) bad(knob, detail::concat("an integer at most ", max).c_str(), s);
    return v;
  }
};

}  // namespace detail

/// Builds an observer from its spec (grammar above).
inline any_observer parse_observer(const std::string& spec) {
  const detail::observer_spec_parser p{spec};
  const std::vector<std::string> parts = split(spec, ',');  // "name[=value]", then "knob=value" ...
  const std::size_t eq = parts[0].find('=');
  const std::string key = parts[0].substr(0, eq);
  const bool has_value = eq != std::string::npos;
  const std::string value = has_value ? parts[0].substr(eq + 1) : std::string();
  // Options after the first part: "knob=value", each knob at most once, from `allowed`.
  std::optional<std::string> max_shrink, exact_limit;
  auto options = [&](std::initializer_list<const char*> allowed) {
    for (std::size_t i = 1; i < parts.size(); ++i) {
      const std::size_t e = parts[i].find('=');
      const std::string k = parts[i].substr(0, e);
      const bool known = std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; });
      if (!known || e == std::string::npos) {
        std::string names;
        for (const char* a : allowed) names += (names.empty() ? "" : " or ") + std::string(a) + "=<value>";
        detail::fail<argument_error>("parse_observer('", spec, "'): unknown option '", parts[i], "' for '", key,
                                     "'; expected ", names.empty() ? std::string("no options") : names);
      }
      std::optional<std::string>& slot = k == "max_shrink" ? max_shrink : exact_limit;
      if (slot) detail::fail<argument_error>("parse_observer('", spec, "'): option '", k, "' repeats");
      slot = parts[i].substr(e + 1);
    }
  };
  auto limit = [&](std::size_t dflt) {
    return exact_limit ? static_cast<std::size_t>(p.integer("exact_limit", *exact_limit, SIZE_MAX)) : dflt;
  };
  try {
    if (key == "minmax") {
      if (has_value) p.bad("minmax", "no value", value);
      options({});
      return minmax_observer();
    }
    if (key == "ema") {
      options({});
      return ema_minmax_observer(has_value ? static_cast<float>(p.real("momentum", value))
                                           : ema_minmax_observer::default_momentum);
    }
    if (key == "percentile") {
      options({"exact_limit"});
      return percentile_observer(has_value ? p.real("percentile", value) : percentile_observer::default_percentile,
                                 limit(percentile_observer::default_exact_limit));
    }
    if (key == "mse") {
      options({"max_shrink", "exact_limit"});
      return mse_observer(
          has_value ? static_cast<int>(p.integer("grid", value, 1u << 30)) : mse_observer::default_grid,
          max_shrink ? static_cast<float>(p.real("max_shrink", *max_shrink)) : mse_observer::default_max_shrink,
          limit(mse_observer::default_exact_limit));
    }
    if (key == "kl") {
      options({"exact_limit"});
      return kl_observer(has_value ? static_cast<int>(p.integer("bins", value, 1u << 30)) : kl_observer::default_bins,
                         limit(kl_observer::default_exact_limit));
    }
  } catch (const argument_error& e) {
    if (std::string(e.what()).rfind("parse_observer", 0) == 0) throw;
    detail::fail<argument_error>("parse_observer('", spec, "'): ", e.what());
  }
  detail::fail<argument_error>("parse_observer('", spec, "'): unknown observer '", parts[0],
                               "'; expected minmax, ema[=momentum], percentile[=p], mse[=grid], kl[=bins]");
}

/// The spec of a minmax_observer: "minmax".
inline std::string to_string(const minmax_observer&) { return "minmax"; }

/// "ema=<momentum>".
inline std::string to_string(const ema_minmax_observer& o) {
  return "ema=" + detail::shortest_decimal(o.momentum(), true);
}

/// "percentile=<p>[,exact_limit=N]".
inline std::string to_string(const percentile_observer& o) {
  std::string s = "percentile=" + detail::shortest_decimal(o.percentile(), false);
  if (o.exact_limit() != percentile_observer::default_exact_limit)
    s += detail::concat(",exact_limit=", o.exact_limit());
  return s;
}

/// "mse=<grid>[,max_shrink=f][,exact_limit=N]".
inline std::string to_string(const mse_observer& o) {
  std::string s = detail::concat("mse=", o.grid());
  if (o.max_shrink() != mse_observer::default_max_shrink)
    s += ",max_shrink=" + detail::shortest_decimal(o.max_shrink(), true);
  if (o.exact_limit() != mse_observer::default_exact_limit) s += detail::concat(",exact_limit=", o.exact_limit());
  return s;
}

/// "kl=<bins>[,exact_limit=N]".
inline std::string to_string(const kl_observer& o) {
  std::string s = detail::concat("kl=", o.bins());
  if (o.exact_limit() != kl_observer::default_exact_limit) s += detail::concat(",exact_limit=", o.exact_limit());
  return s;
}

/// The spec of the held observer; parse_observer(to_string(o)) has the same knobs.
inline std::string to_string(const any_observer& o) {
  return std::visit([](const auto& obs) { return to_string(obs); }, o.variant());
}

PARE_NAMESPACE_END
