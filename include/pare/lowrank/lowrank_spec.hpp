// lowrank_spec: the runtime form of decomposer<Method, RankPolicy> — rank policy, method (plain / ASVD / whitened), randomized SVD — parsed from strings such as "energy=0.95:asvd".
#pragma once

// Spec strings (lowrank_spec::parse):
//
//   <policy>[:<method>][:rsvd]
//   policy   rank=<r>      the same rank r ≥ 1 for every layer
//            energy=<e>    per layer the smallest r keeping a fraction e in (0, 1] of Σσ²(W·T)
//            ratio=<ρ>     per layer the largest r with r·(out + in) ≤ ρ·out·in, ρ in (0, 1]
//            budget=<β>    one budget over all selected layers: Σ parameters ≤ β·Σ out·in,
//                          ranks allocated greedily by marginal energy per parameter
//                          (pare::allocate_ranks)
//   method   plain (default) | asvd | asvd=<α> | whiten | whiten=<ridge>
//            (asvd and whiten need calibration statistics: sum |x| resp. XᵀX per layer)
//   rsvd     randomized SVD (oversampling 10, 2 power iterations, seed 0) of only the
//            needed rank; with rank= and ratio= only (energy and budget need the spectrum)
// e.g. "energy=0.9", "energy=0.95:asvd", "energy=0.9:whiten", "rank=16", "ratio=0.5",
// "budget=0.5". A bad spec is an argument_error naming the token.
//
// The compile-time twin is pare/lowrank/decomposer.hpp; the engine plan_decomposition
// (pare/lowrank/decompose.hpp) runs either.

#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/strings.hpp"
#include "pare/lowrank/activation_aware.hpp"
#include "pare/quant/quant_config.hpp"

PARE_NAMESPACE_BEGIN

struct lowrank_spec {
  enum class policy_kind { rank, energy, ratio, budget };
  policy_kind policy = policy_kind::energy;
  std::size_t rank = 0;  ///< for policy rank
  double value = 0.9;    ///< the fraction for energy / ratio / budget
  lowrank_method method = lowrank_method::plain;
  activation_aware_options options{};     ///< α (asvd), ridge (whiten), randomized SVD settings
  bool randomized = false;                ///< rsvd
  std::optional<quant_config> factor_quant;  ///< store the factors quantized (not part of the string)

  /// Parses the grammar above; argument_error naming the bad token.
  static lowrank_spec parse(const std::string& spec) {
    const std::vector<std::string> tok = split(spec, ':');
    lowrank_spec s;
    auto bad = [&](const std::string& what, const std::string& expected, const std::string& got) {
      detail::fail<argument_error>("lowrank_spec::parse('", spec, "'): argument '", what, "': expected ", expected, ", got '",
                                   got, "'");
    };
    const std::string& p = tok[0];
    const std::size_t eq = p.find('=');
    const std::string key = p.substr(0, eq), val = eq == std::string::npos ? std::string() : p.substr(eq + 1);
    if (key == "rank") {
      s.policy = policy_kind::rank;
      if (val.empty() || val.size() > 9 || val.find_first_not_of("0123456789") != std::string::npos || std::stoul(val) == 0)
        bad("rank", "an integer ≥ 1", val);
      s.rank = std::stoul(val);
    } else if (key == "energy" || key == "ratio" || key == "budget") {
      s.policy = key == "energy" ? policy_kind::energy : key == "ratio" ? policy_kind::ratio : policy_kind::budget;
      s.value = number(val);
      if (!(s.value > 0.0 && s.value <= 1.0)) bad(key, "a fraction in (0, 1]", val);
    } else {
      bad("policy", "rank=<r>, energy=<e>, ratio=<ρ> or budget=<β> first", p);
    }
    bool seen_method = false;
    for (std::size_t i = 1; i < tok.size(); ++i) {
      const std::string& t = tok[i];
      const std::size_t e = t.find('=');
      const std::string k = t.substr(0, e), v = e == std::string::npos ? std::string() : t.substr(e + 1);
      if (k == "plain" || k == "asvd" || k == "whiten") {
        if (seen_method) bad("method", "one method", t);
        seen_method = true;
        s.method = k == "plain" ? lowrank_method::plain : k == "asvd" ? lowrank_method::asvd : lowrank_method::whiten;
        if (e != std::string::npos) {
          const double x = number(v);
          if (k == "asvd" && x >= 0.0 && x <= 4.0) s.options.asvd_alpha = x;
          else if (k == "whiten" && x >= 0.0 && x <= 1.0) s.options.ridge = x;
          else bad(k, k == "asvd" ? "asvd or asvd=<α> with α in [0, 4]" : k == "whiten" ? "whiten or whiten=<ridge> with ridge in [0, 1]" : "plain", t);
        }
      } else if (t == "rsvd") {
        if (s.randomized) bad("rsvd", "rsvd at most once", t);
        s.randomized = true;
      } else {
        bad("token", "plain, asvd[=α], whiten[=ridge] or rsvd", t);
      }
    }
    if (s.randomized && (s.policy == policy_kind::energy || s.policy == policy_kind::budget))
      bad("rsvd", "rsvd only with rank= or ratio= (energy and budget need the whole spectrum)", "rsvd");
    return s;
  }

  /// The canonical string (without factor_quant), parsed back to an equal spec.
  std::string str() const {
    std::string s = policy == policy_kind::rank     ? detail::concat("rank=", rank)
                    : policy == policy_kind::energy ? "energy=" + shortest(value)
                    : policy == policy_kind::ratio  ? "ratio=" + shortest(value)
                                                    : "budget=" + shortest(value);
    if (method == lowrank_method::asvd) s += ":asvd=" + shortest(options.asvd_alpha);
    if (method == lowrank_method::whiten) s += options.ridge > 0 ? ":whiten=" + shortest(options.ridge) : std::string(":whiten");
    if (randomized) s += ":rsvd";
    return s;
  }

 private:
  static std::string shortest(double x) { return shortest_decimal(x); }
  static double number(const std::string& v) {
    if (v.empty() || v.find_first_not_of("0123456789.eE+-") != std::string::npos) return std::nan("");
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    return end == v.c_str() + v.size() && std::isfinite(x) ? x : std::nan("");
  }
};

PARE_NAMESPACE_END
