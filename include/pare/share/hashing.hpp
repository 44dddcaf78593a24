// The hashing trick (HashedNets): a seeded hash of (i, j) picks one of K shared values per matrix; the values are the least-squares fit (bucket means).
#pragma once

// Terms
// -----
// HashedNets (Chen et al., "Compressing Neural Networks with the Hashing Trick", 2015)
// stores a weight matrix W [rows, cols] as K shared values v_0..v_{K-1}; element (i, j)
// reads v_{h(i, j)}, optionally times a sign ξ(i, j) ∈ {−1, +1}. The hash is computed,
// never stored, so the storage is the K values alone.
//
//   h(i, j) = ⌊ counter_bits(row_key(seed, i), j) · K / 2³² ⌋      (pare/core/rng.hpp)
//   ξ(i, j) = +1 if bit 31 of counter_bits(row_key(seed ^ sign_salt, i), j) is 0, else −1
//
// Fitting an existing W (hash_share) chooses the values that minimise
// Σ (w_ij − ξ_ij·v_h(i,j))², i.e. v_k = mean of ξ·w over the elements hashed to bucket k
// (accumulated in float64, stored as float); an empty bucket gets 0.
// storage_bytes() = 4·K; bits_per_weight() = 32·K / (rows·cols).

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/rng.hpp"
#include "pare/core/strings.hpp"
#include "pare/core/tensor_view.hpp"

PARE_NAMESPACE_BEGIN

namespace detail {
inline constexpr std::uint64_t hash_sign_salt = 0x5EED5167A11C0DE5ull;
}

/// The bucket in [0, buckets) of element (i, j) (j < 2³², 1 <= buckets <= 2³²).
constexpr std::uint32_t hash_bucket(std::uint64_t seed, std::size_t i, std::size_t j, std::uint64_t buckets) noexcept {
  const std::uint32_t h = counter_bits(row_key(seed, i), static_cast<std::uint32_t>(j));
  return static_cast<std::uint32_t>((std::uint64_t(h) * buckets) >> 32);
}

/// The sign ξ(i, j) in {−1, +1}.
constexpr float hash_sign(std::uint64_t seed, std::size_t i, std::size_t j) noexcept {
  return (counter_bits(row_key(seed ^ detail::hash_sign_salt, i), static_cast<std::uint32_t>(j)) >> 31) ? -1.0f : 1.0f;
}

/// How to hash a matrix. Spec grammar (tokens separated by ':', the "hash:" prefix
/// optional, every token after the size at most once):
///   <K> | x<F>          K shared values per matrix, or K = ceil(rows·cols / F)  (required, first)
///   seed=<S>            hash seed, unsigned 64-bit                            (default 0)
///   sign                multiply by the sign hash ξ(i, j)                     (default off)
/// e.g. "hash:x8" (8× fewer values than weights), "hash:4096:seed=3:sign".
struct hashed_config {
  std::uint64_t buckets = 0;  ///< K; 0 means "from factor"
  double factor = 0;          ///< compression factor F used when buckets == 0
  std::uint64_t seed = 0;
  bool sign = false;

  void validate(const char* where) const {
    if (buckets == 0 && !(std::isfinite(factor) && factor > 0))
      detail::fail<argument_error>(where, ": argument 'buckets': expected K >= 1 or a finite factor > 0, got K = 0 and factor ",
                                   factor);
    if (buckets > (std::uint64_t(1) << 32))
      detail::fail<argument_error>(where, ": argument 'buckets': expected at most 2^32, got ", buckets);
  }

  /// K for a rows × cols matrix (at least 1, at most 2³²).
  std::uint64_t buckets_for(std::size_t rows, std::size_t cols) const {
    validate("hashed_config::buckets_for");
    if (buckets) return buckets;
    const double k = std::ceil(double(rows) * double(cols) / factor);
    return static_cast<std::uint64_t>(std::min(std::max(k, 1.0), 4294967296.0));
  }

  std::string str() const {
    std::string s = buckets ? detail::concat("hash:", buckets) : detail::concat("hash:x", factor);
    return s + detail::concat(":seed=", seed) + (sign ? ":sign" : "");
  }

  static hashed_config parse(const std::string& spec) {
    auto bad = [&](const std::string& what) { detail::fail<argument_error>("hashed_config::parse('", spec, "'): ", what); };
    const std::vector<std::string> tok = split(spec, ':');
    std::size_t t = tok[0] == "hash" ? 1 : 0;
    if (t >= tok.size()) bad("expected '<K>' or 'x<F>' after 'hash', got nothing");
    auto parse_uint = [&](const std::string& s, const char* field) {
      if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos)
        bad(detail::concat("field '", field, "': expected a non-negative integer, got '", s, "'"));
      errno = 0;
      const unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
      if (errno != 0) bad(detail::concat("field '", field, "': out of range: '", s, "'"));
      return static_cast<std::uint64_t>(v);
    };
    hashed_config cfg;
    const std::string& first = tok[t++];
    if (!first.empty() && first[0] == 'x') {
      const std::string f = first.substr(1);
      char* end = nullptr;
      errno = 0;
      const double v = f.empty() ? 0.0 : std::strtod(f.c_str(), &end);
      if (f.empty() || errno != 0 || end != f.c_str() + f.size() || !std::isfinite(v) || !(v > 0))
        bad(detail::concat("field 'factor': expected a finite number > 0 after 'x', got '", f, "'"));
      cfg.factor = v;
    } else {
      cfg.buckets = parse_uint(first, "buckets");
      if (cfg.buckets == 0) bad("field 'buckets': expected at least 1, got 0");
    }
    bool seen_seed = false, seen_sign = false;
    for (; t < tok.size(); ++t) {
      const std::string& s = tok[t];
      if (s.compare(0, 5, "seed=") == 0) {
        if (seen_seed) bad(detail::concat("token '", s, "' repeats a field"));
        seen_seed = true;
        cfg.seed = parse_uint(s.substr(5), "seed");
      } else if (s == "sign") {
        if (seen_sign) bad("token 'sign' repeats a field");
        seen_sign = true;
        cfg.sign = true;
      } else {
        bad(detail::concat("unknown token '", s, "' (expected seed=<S> or sign)"));
      }
    }
    cfg.validate("hashed_config::parse");
    return cfg;
  }
};

/// A matrix [rows, cols] stored as K shared values addressed by the hash.
struct hashed_tensor {
  std::size_t rows = 0, cols = 0;
  std::uint64_t seed = 0;
  bool sign = false;
  std::vector<float> values;  ///< the K shared values

  std::uint64_t buckets() const noexcept { return values.size(); }
  std::uint32_t bucket(std::size_t i, std::size_t j) const noexcept { return hash_bucket(seed, i, j, values.size()); }
  float value(std::size_t i, std::size_t j) const noexcept {
    const float v = values[bucket(i, j)];
    return sign ? hash_sign(seed, i, j) * v : v;
  }
  /// W' into `out` [rows, cols] (any strides); shape_error otherwise.
  void dequantize_into(const matrix_view<float>& out) const {
    check_same_shape("hashed_tensor::dequantize_into: argument 'out'", shape_t{rows, cols}, out.shape());
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) out(i, j) = value(i, j);
  }
  std::vector<float> dequantize() const {
    std::vector<float> w(rows * cols);
    dequantize_into(matrix_view<float>(w.data(), rows, cols));
    return w;
  }
  /// The K fp32 values (the hash is recomputed, not stored).
  std::size_t storage_bytes() const noexcept { return values.size() * sizeof(float); }
  double bits_per_weight() const noexcept { return rows != 0 && cols != 0 ? 8.0 * double(storage_bytes()) / double(rows * cols) : 0.0; }
  /// "hash:<K>:seed=<S>[:sign]".
  std::string str() const { return detail::concat("hash:", values.size(), ":seed=", seed) + (sign ? ":sign" : ""); }
};

/// Fits the shared values of `w` [rows, cols] (any strides) by least squares (see
/// above). Throws argument_error for an invalid config, an empty matrix or cols >= 2³²,
/// value_error naming the position of a NaN/Inf.
inline hashed_tensor hash_share(const matrix_view<const float>& w, const hashed_config& cfg) {
  const char* where = "hash_share";
  cfg.validate(where);
  const std::size_t rows = w.rows(), cols = w.cols();
  if (rows == 0 || cols == 0)
    detail::fail<argument_error>(where, ": argument 'w': expected a non-empty matrix, got shape ", w.shape());
  if (std::uint64_t(cols) > 0xFFFFFFFFull)
    detail::fail<argument_error>(where, ": argument 'w': expected fewer than 2^32 columns, got ", cols);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j)
      if (!std::isfinite(w(i, j)))
        detail::fail<value_error>(where, ": argument 'w': expected finite values, got ", w(i, j), " at (", i, ", ", j, ")");
  const std::uint64_t k = cfg.buckets_for(rows, cols);
  std::vector<double> sum(k, 0.0);
  std::vector<std::uint64_t> count(k, 0);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) {
      const std::uint32_t b = hash_bucket(cfg.seed, i, j, k);
      sum[b] += cfg.sign ? double(hash_sign(cfg.seed, i, j)) * double(w(i, j)) : double(w(i, j));
      ++count[b];
    }
  hashed_tensor t;
  t.rows = rows;
  t.cols = cols;
  t.seed = cfg.seed;
  t.sign = cfg.sign;
  t.values.resize(k);
  for (std::uint64_t b = 0; b < k; ++b) t.values[b] = count[b] ? static_cast<float>(sum[b] / double(count[b])) : 0.0f;
  return t;
}

PARE_NAMESPACE_END
