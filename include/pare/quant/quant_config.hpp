// Runtime quantization config, parsed from strings such as "int4:g128:asym:mse".
#pragma once

// Grammar: tokens separated by ':', in any order after the format, each at most once.
//
//   format       int<B> | uint<B>                 B in [2, 8]                (required, first)
//   granularity  per_tensor | per_channel | per_channel=<axis> | g<G>       (default per_channel)
//   scheme       sym | asym                                                 (default sym)
//   observer     minmax | ema[=m] | percentile[=p] | mse[=grid] | kl[=bins] (default minmax)
//   rounding     rne | stochastic[=seed]                                    (default rne)
//   scale store  f16scale: scales rounded to IEEE half before the codes are chosen and
//                stored in 2 bytes (pare/quant/half_scale.hpp)              (default fp32)
//
// str() prints the canonical form (every field, in the order above; f16scale only when
// set), which parses back to an equal config. Without f16scale the config is the runtime
// twin of quantizer<Format, Granularity, Scheme, Observer, Rounding>: both give identical
// results (the compile-time quantizer has no fp16-scale option).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "pare/core/affine.hpp"
#include "pare/core/strings.hpp"
#include "pare/quant/granularity.hpp"
#include "pare/stats/observers.hpp"

PARE_NAMESPACE_BEGIN

/// Everything that defines a linear quantization of a matrix.
struct quant_config {
  int_format format{8, true};
  scheme_kind scheme = scheme_kind::symmetric;
  granularity gran = granularity::channel(0);
  any_observer observer{minmax_observer{}};
  rounding_kind rounding = rounding_kind::nearest_even;
  std::uint64_t seed = 0;  // for stochastic rounding
  bool f16_scale = false;  // f16scale: scales stored as IEEE half (pare/quant/half_scale.hpp)

  /// Bytes pare stores per scale: 2 under f16scale, else 4 (float32).
  std::size_t scale_bytes() const noexcept { return f16_scale ? 2 : 4; }

  /// Throws argument_error for bits outside [2, 8], group size 0, axis not 0/1.
  void validate(const char* where) const {
    format.validate(where);
    if (gran.kind == granularity_kind::per_group && gran.group_size == 0)
      detail::fail<argument_error>(where, ": argument 'group_size': expected at least 1, got 0");
    if (gran.kind == granularity_kind::per_channel && gran.axis != 0 && gran.axis != 1)
      detail::fail<argument_error>(where, ": argument 'axis': expected 0 or 1, got ", gran.axis);
  }

  /// Parses the grammar above; throws argument_error naming the bad token.
  static quant_config parse(const std::string& spec) {
    const std::vector<std::string> tok = split(spec, ':');
    quant_config cfg;
    const std::string& f = tok[0];
    const bool is_u = f.rfind("uint", 0) == 0;
    const bool is_s = !is_u && f.rfind("int", 0) == 0;
    if (!is_u && !is_s)
      detail::fail<argument_error>("quant_config::parse('", spec, "'): expected a format int<B> or uint<B> first, got '",
                                   f, "'");
    cfg.format.is_signed = is_s;
    cfg.format.bits = parse_int(spec, f.substr(is_u ? 4 : 3), "bits");
    bool seen_gran = false, seen_scheme = false, seen_obs = false, seen_round = false, seen_f16 = false;
    auto once = [&](bool& seen, const std::string& t) {
      if (seen) detail::fail<argument_error>("quant_config::parse('", spec, "'): token '", t, "' repeats a field");
      seen = true;
    };
    for (std::size_t i = 1; i < tok.size(); ++i) {
      const std::string& t = tok[i];
      const std::string key = t.substr(0, t.find('='));
      const bool has_val = t.find('=') != std::string::npos;
      const std::string val = has_val ? t.substr(t.find('=') + 1) : std::string();
      if (t == "per_tensor") {
        once(seen_gran, t);
        cfg.gran = granularity::tensor();
      } else if (key == "per_channel") {
        once(seen_gran, t);
        cfg.gran = granularity::channel(has_val ? parse_int(spec, val, "axis") : 0);
      } else if (t.size() > 1 && t[0] == 'g' && t.find_first_not_of("0123456789", 1) == std::string::npos) {
        once(seen_gran, t);
        cfg.gran = granularity::group(static_cast<std::size_t>(parse_int(spec, t.substr(1), "group_size")));
      } else if (t == "sym" || t == "asym") {
        once(seen_scheme, t);
        cfg.scheme = t == "sym" ? scheme_kind::symmetric : scheme_kind::asymmetric;
      } else if (t == "rne") {
        once(seen_round, t);
        cfg.rounding = rounding_kind::nearest_even;
      } else if (key == "stochastic") {
        once(seen_round, t);
        cfg.rounding = rounding_kind::stochastic;
        if (has_val) cfg.seed = static_cast<std::uint64_t>(std::stoull(val));
      } else if (t == "f16scale") {
        once(seen_f16, t);
        cfg.f16_scale = true;
      } else if (key == "minmax" || key == "ema" || key == "percentile" || key == "mse" || key == "kl") {
        once(seen_obs, t);
        cfg.observer = parse_observer(t);
      } else {
        detail::fail<argument_error>("quant_config::parse('", spec, "'): unknown token '", t,
                                     "'; expected per_tensor, per_channel[=axis], g<G>, sym, asym, minmax, ema[=m], "
                                     "percentile[=p], mse[=grid], kl[=bins], rne, stochastic[=seed] or f16scale");
      }
    }
    cfg.validate("quant_config::parse");
    return cfg;
  }

  /// Canonical string form; parse(str()) == *this.
  std::string str() const {
    std::string s = format.str() + ":" + gran.str() + ":" + (scheme == scheme_kind::symmetric ? "sym" : "asym") + ":" +
                    to_string(observer) + ":";
    s += rounding == rounding_kind::nearest_even ? std::string("rne") : detail::concat("stochastic=", seed);
    if (f16_scale) s += ":f16scale";
    return s;
  }

 private:
  static int parse_int(const std::string& spec, const std::string& s, const char* what) {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
      detail::fail<argument_error>("quant_config::parse('", spec, "'): argument '", what,
                                   "': expected a non-negative integer, got '", s, "'");
    return std::stoi(s);
  }
};

PARE_NAMESPACE_END
