// k-means weight clustering (weight sharing): seeded k-means++ and Lloyd on scalars, per-tensor or per-row codebooks of 2^b centroids, b-bit packed indices.
#pragma once

// Terms
// -----
// Weight sharing replaces every weight w_ij by one of K = 2^b shared values (the
// *codebook*, its entries the *centroids*) and stores, per weight, only the b-bit
// *index* of its centroid (Han et al., "Deep Compression", 2016). The codebook is the
// 1-D k-means solution of the weights: it minimises the within-cluster sum of squared
// errors SSE = Σ (w − c(w))², c(w) the centroid nearest to w.
//
// Algorithm (kmeans_1d), deterministic for a given seed:
//   seeding  k-means++ (Arthur & Vassilvitskii 2007) on the sorted values: the first
//            centroid is a uniformly drawn value, each further one a value drawn with
//            probability ∝ D², D the distance to the nearest centroid chosen so far
//            (splitmix64 from pare/core/rng.hpp). When every D is 0 (fewer distinct
//            values than K) the remaining centroids repeat the last one.
//            Per-row codebooks seed row i with kmeans_row_seed(seed, i).
//   Lloyd    assign every value to its nearest centroid (ties to the larger one), then
//            move each centroid to the mean of its values (computed in float64, stored
//            as the nearest float). A centroid whose cluster is empty is moved to the
//            value with the largest error (each such value used once); if every error
//            is 0 it stays. Stops when an assignment step changes nothing (converged)
//            or after max_iters update steps.
//   history  sse_history[t] = Σ min_c (x − c)² (float64) for the centroids after t
//            update steps (t = 0: the seeding). Lloyd never increases it: the
//            assignment step minimises over assignments, the mean over centroids, and
//            the float nearest to the mean is the best float.
//   cost     sorting O(n log n), seeding O(n·K), each Lloyd step O(n + K log n)
//            (clusters of sorted scalars are contiguous ranges).
//
// Layout of a kmeans_tensor (normative):
//   codebooks  per_tensor: one codebook of K floats; per_row: rows codebooks, codebook
//              i at codebooks[i·K, (i+1)·K). Centroids ascend within a codebook.
//   packed     the rows·cols indices in row-major order as one little-endian bit
//              stream, b bits each: element e (= i·cols + j) occupies stream bits
//              [b·e, b·e + b − 1], stream bit t being bit t mod 8 of byte t / 8;
//              packed_index_bytes(b, rows·cols) = ceil(b·rows·cols / 8) bytes, padding
//              bits zero. For b = 2, 3, 4 a row whose bit length is a multiple of 8 has
//              the byte layout of pare/core/dtypes/packed_int.hpp (unsigned codes).
//   storage    storage_bytes() = 4·(number of codebooks)·K + packed bytes;
//              bits_per_weight() = 8·storage_bytes() / (rows·cols), codebooks included.

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "pare/core/dtypes/packed_int.hpp"
#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/rng.hpp"
#include "pare/core/strings.hpp"
#include "pare/core/tensor_view.hpp"

PARE_NAMESPACE_BEGIN

// ---------------------------------------------------------------------------------
// b-bit index packing (b = 1..8), one little-endian bit stream.

namespace detail {
inline void check_index_bits(const char* where, int bits) {
  if (bits < 1 || bits > 8) fail<argument_error>(where, ": argument 'bits': expected an integer in [1, 8], got ", bits);
}
}  // namespace detail

/// Bytes of n indices of `bits` bits in one bit stream: ceil(bits·n / 8).
inline std::size_t packed_index_bytes(int bits, std::size_t n) {
  detail::check_index_bits("packed_index_bytes", bits);
  return (static_cast<std::size_t>(bits) * n + 7) / 8;
}

/// Packs n indices (the low `bits` bits of each byte) into packed_index_bytes(bits, n)
/// bytes at `out` (layout above; padding bits zero). Throws argument_error for bits
/// outside [1, 8]. `idx` and `out` must not overlap.
inline void pack_indices(int bits, const std::uint8_t* idx, std::size_t n, std::uint8_t* out) {
  detail::check_index_bits("pack_indices", bits);
  kernels::ref::pack_codes_stream(static_cast<unsigned>(bits), idx, n, out);  // the same little-endian bit stream
}

/// Unpacks n indices of a packed bit stream into n bytes. Throws argument_error for
/// bits outside [1, 8].
inline void unpack_indices(int bits, const std::uint8_t* packed, std::size_t n, std::uint8_t* idx) {
  detail::check_index_bits("unpack_indices", bits);
  kernels::ref::unpack_codes_stream<false>(static_cast<unsigned>(bits), packed, n, idx);
}

namespace detail {
/// Index e of a packed stream (bits validated by the caller; reads at most 2 bytes).
inline unsigned packed_index_at(unsigned bits, const std::uint8_t* packed, std::size_t total, std::size_t e) noexcept {
  const std::size_t t = bits * e, byte = t / 8;
  const unsigned shift = static_cast<unsigned>(t % 8);
  unsigned v = unsigned(packed[byte]) >> shift;
  if (shift + bits > 8 && byte + 1 < total) v |= unsigned(packed[byte + 1]) << (8 - shift);
  return v & ((1u << bits) - 1u);
}
}  // namespace detail

// ---------------------------------------------------------------------------------
// 1-D k-means.

/// The result of kmeans_1d.
struct kmeans_1d_result {
  std::vector<float> centroids;      ///< k values, ascending
  std::vector<std::uint8_t> labels;  ///< per input value (input order), its centroid index
  std::vector<double> sse_history;   ///< [0]: after seeding, [t]: after t update steps (float64)
  int iterations = 0;                ///< Lloyd update steps run
  bool converged = false;            ///< stopped because an assignment step changed nothing
  double sse() const noexcept { return sse_history.empty() ? 0.0 : sse_history.back(); }
};

namespace detail {
/// First indices of the k clusters of sorted values s under ascending centroids c
/// (plus n at the end): value s[v] belongs to cluster j when b[j] <= v < b[j+1].
inline void kmeans_bounds(const std::vector<float>& s, const std::vector<float>& c, std::vector<std::size_t>& b) {
  const std::size_t k = c.size();
  b.assign(k + 1, 0);
  b[k] = s.size();
  for (std::size_t j = 1; j < k; ++j) {
    const double mid = 0.5 * (double(c[j - 1]) + double(c[j]));  // exact in double
    b[j] = static_cast<std::size_t>(
        std::lower_bound(s.begin() + static_cast<std::ptrdiff_t>(b[j - 1]), s.end(), mid,
                         [](float v, double m) { return double(v) < m; }) -
        s.begin());
  }
}

inline double kmeans_sse(const std::vector<float>& s, const std::vector<float>& c, const std::vector<std::size_t>& b) {
  double e = 0;
  for (std::size_t j = 0; j < c.size(); ++j) {
    const double cj = c[j];
    double ej = 0;
    for (std::size_t v = b[j]; v < b[j + 1]; ++v) {
      const double d = double(s[v]) - cj;
      ej += d * d;
    }
    e += ej;
  }
  return e;
}

/// k-means++ seeding on sorted values; returns k ascending centroids.
inline std::vector<float> kmeanspp_seed(const std::vector<float>& s, std::size_t k, std::uint64_t seed) {
  const std::size_t n = s.size();
  splitmix64 g(seed);
  std::vector<float> c;
  c.reserve(k);
  c.push_back(s[std::min(n - 1, static_cast<std::size_t>(g.uniform() * double(n)))]);
  std::vector<double> d2(n);
  for (std::size_t v = 0; v < n; ++v) {
    const double d = double(s[v]) - double(c[0]);
    d2[v] = d * d;
  }
  while (c.size() < k) {
    double total = 0;
    for (double d : d2) total += d;
    if (!(total > 0)) {
      c.resize(k, c.back());
      break;
    }
    const double u = g.uniform() * total;
    double cum = 0;
    std::size_t pick = n;
    for (std::size_t v = 0; v < n; ++v) {
      if (d2[v] <= 0) continue;
      pick = v;  // the last positive-weight value, should rounding leave cum <= u
      cum += d2[v];
      if (cum > u) break;
    }
    const float x = s[pick];
    c.push_back(x);
    for (std::size_t v = 0; v < n; ++v) {
      const double d = double(s[v]) - double(x);
      d2[v] = std::min(d2[v], d * d);
    }
  }
  std::sort(c.begin(), c.end());
  return c;
}

/// One Lloyd update: means of the clusters `b`, empty clusters reseeded; ascending again.
inline void kmeans_update(const std::vector<float>& s, std::vector<float>& c, const std::vector<std::size_t>& b) {
  const std::size_t k = c.size();
  std::vector<std::size_t> empty;
  for (std::size_t j = 0; j < k; ++j) {
    if (b[j] == b[j + 1]) {
      empty.push_back(j);
      continue;
    }
    double sum = 0;
    for (std::size_t v = b[j]; v < b[j + 1]; ++v) sum += double(s[v]);
    c[j] = static_cast<float>(sum / double(b[j + 1] - b[j]));
  }
  if (!empty.empty()) {
    std::vector<double> err(s.size());
    for (std::size_t j = 0; j < k; ++j)
      for (std::size_t v = b[j]; v < b[j + 1]; ++v) {
        const double d = double(s[v]) - double(c[j]);
        err[v] = d * d;
      }
    for (std::size_t j : empty) {
      const auto it = std::max_element(err.begin(), err.end());
      if (!(*it > 0)) break;
      c[j] = s[static_cast<std::size_t>(it - err.begin())];
      *it = 0;
    }
  }
  std::sort(c.begin(), c.end());
}

inline void check_finite_values(const char* where, const float* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) fail<value_error>(where, ": argument 'x': expected finite values, got ", x[i], " at index ", i);
}
}  // namespace detail

/// k-means of n scalars into k clusters (see the essay above). Throws argument_error
/// for n = 0, k outside [1, 256] or max_iters < 0, value_error for NaN/Inf values.
inline kmeans_1d_result kmeans_1d(const float* x, std::size_t n, std::size_t k, std::uint64_t seed, int max_iters = 100) {
  const char* where = "kmeans_1d";
  if (n == 0) detail::fail<argument_error>(where, ": argument 'n': expected at least 1 value, got 0");
  if (k < 1 || k > 256) detail::fail<argument_error>(where, ": argument 'k': expected an integer in [1, 256], got ", k);
  if (max_iters < 0) detail::fail<argument_error>(where, ": argument 'max_iters': expected >= 0, got ", max_iters);
  detail::check_finite_values(where, x, n);

  std::vector<float> s(x, x + n);
  std::sort(s.begin(), s.end());
  kmeans_1d_result r;
  std::vector<float> c = detail::kmeanspp_seed(s, k, seed);
  std::vector<std::size_t> b, nb;
  detail::kmeans_bounds(s, c, b);
  r.sse_history.push_back(detail::kmeans_sse(s, c, b));
  while (r.iterations < max_iters) {
    detail::kmeans_update(s, c, b);
    ++r.iterations;
    detail::kmeans_bounds(s, c, nb);
    r.sse_history.push_back(detail::kmeans_sse(s, c, nb));
    const bool same = nb == b;
    b.swap(nb);
    if (same) {
      r.converged = true;
      break;
    }
  }
  // Labels in input order: the number of midpoints <= x (the convention of kmeans_bounds).
  std::vector<double> mids(k > 0 ? k - 1 : 0);
  for (std::size_t j = 1; j < k; ++j) mids[j - 1] = 0.5 * (double(c[j - 1]) + double(c[j]));
  r.labels.resize(n);
  for (std::size_t i = 0; i < n; ++i)
    r.labels[i] = static_cast<std::uint8_t>(std::upper_bound(mids.begin(), mids.end(), double(x[i])) - mids.begin());
  r.centroids = std::move(c);
  return r;
}

// ---------------------------------------------------------------------------------
// Configuration and the clustered tensor.

/// How to cluster a weight matrix. Spec grammar (tokens separated by ':', the
/// "kmeans:" prefix optional, every token after the bits at most once, any order):
///   <B>bit                      B in [1, 8]: 2^B centroids          (required, first)
///   per_tensor | per_row        one codebook, or one per output row  (default per_tensor)
///   iters=<N>                   at most N Lloyd steps, N >= 0        (default 100)
///   seed=<S>                    k-means++ seed, unsigned 64-bit      (default 0)
/// e.g. "kmeans:4bit", "kmeans:3bit:per_row:iters=20". str() prints every field and
/// parses back to an equal config.
struct kmeans_config {
  int bits = 4;
  bool per_row = false;
  int max_iters = 100;
  std::uint64_t seed = 0;

  std::size_t levels() const noexcept { return std::size_t(1) << bits; }

  void validate(const char* where) const {
    detail::check_index_bits(where, bits);
    if (max_iters < 0) detail::fail<argument_error>(where, ": argument 'max_iters': expected >= 0, got ", max_iters);
  }

  std::string str() const {
    return detail::concat("kmeans:", bits, "bit:", per_row ? "per_row" : "per_tensor", ":iters=", max_iters, ":seed=", seed);
  }

  static kmeans_config parse(const std::string& spec) {
    auto bad = [&](const std::string& what) {
      detail::fail<argument_error>("kmeans_config::parse('", spec, "'): ", what);
    };
    const std::vector<std::string> tok = split(spec, ':');
    std::size_t t = 0;
    if (tok[0] == "kmeans") ++t;
    if (t >= tok.size()) bad("expected '<B>bit' after 'kmeans', got nothing");
    auto parse_uint = [&](const std::string& s, const char* field, unsigned long long max) {
      if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos)
        bad(detail::concat("field '", field, "': expected a non-negative integer, got '", s, "'"));
      errno = 0;
      const unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
      if (errno != 0 || v > max) bad(detail::concat("field '", field, "': expected at most ", max, ", got '", s, "'"));
      return v;
    };
    kmeans_config cfg;
    {
      const std::string& f = tok[t++];
      if (f.size() < 4 || f.compare(f.size() - 3, 3, "bit") != 0)
        bad(detail::concat("expected '<B>bit' first (B in [1, 8]), got '", f, "'"));
      const unsigned long long b = parse_uint(f.substr(0, f.size() - 3), "bits", 1000);
      if (b < 1 || b > 8) bad(detail::concat("field 'bits': expected an integer in [1, 8], got ", b));
      cfg.bits = static_cast<int>(b);
    }
    bool seen_gran = false, seen_iters = false, seen_seed = false;
    auto once = [&](bool& seen, const std::string& s) {
      if (seen) bad(detail::concat("token '", s, "' repeats a field"));
      seen = true;
    };
    for (; t < tok.size(); ++t) {
      const std::string& s = tok[t];
      if (s == "per_row" || s == "per_tensor") {
        once(seen_gran, s);
        cfg.per_row = s == "per_row";
      } else if (s.compare(0, 6, "iters=") == 0) {
        once(seen_iters, s);
        cfg.max_iters = static_cast<int>(parse_uint(s.substr(6), "iters", 1000000000ull));
      } else if (s.compare(0, 5, "seed=") == 0) {
        once(seen_seed, s);
        cfg.seed = parse_uint(s.substr(5), "seed", ~0ull);
      } else {
        bad(detail::concat("unknown token '", s, "' (expected per_tensor, per_row, iters=<N> or seed=<S>)"));
      }
    }
    return cfg;
  }

  friend bool operator==(const kmeans_config& a, const kmeans_config& b) noexcept {
    return a.bits == b.bits && a.per_row == b.per_row && a.max_iters == b.max_iters && a.seed == b.seed;
  }
  friend bool operator!=(const kmeans_config& a, const kmeans_config& b) noexcept { return !(a == b); }
};

/// The k-means++ seed of row i's codebook (per_row) for config seed `seed`.
constexpr std::uint64_t kmeans_row_seed(std::uint64_t seed, std::size_t row) noexcept { return mix64(seed ^ mix64(row + 1)); }

/// A weight matrix [rows, cols] stored as codebooks and packed indices (layout above).
struct kmeans_tensor {
  std::size_t rows = 0, cols = 0;
  kmeans_config config;
  std::vector<float> codebooks;      ///< codebook_count() × levels() floats, ascending per codebook
  std::vector<std::uint8_t> packed;  ///< packed_index_bytes(bits, rows·cols) bytes
  double sse = 0;                    ///< Σ (w − ŵ)² over the matrix (float64)
  int iterations = 0;                ///< most Lloyd steps any codebook took
  bool converged = true;             ///< every codebook stopped on "no assignment changed"

  std::size_t levels() const noexcept { return config.levels(); }
  std::size_t codebook_count() const noexcept { return config.per_row ? rows : 1; }
  /// The centroids of row i's codebook.
  const float* codebook(std::size_t i) const noexcept { return codebooks.data() + (config.per_row ? i : 0) * levels(); }
  /// The index stored for element (i, j) (unchecked).
  unsigned index(std::size_t i, std::size_t j) const noexcept {
    return detail::packed_index_at(static_cast<unsigned>(config.bits), packed.data(), packed.size(), i * cols + j);
  }
  /// The shared value of element (i, j) (unchecked).
  float value(std::size_t i, std::size_t j) const noexcept { return codebook(i)[index(i, j)]; }
  /// All indices, row-major, one byte each.
  std::vector<std::uint8_t> indices() const {
    std::vector<std::uint8_t> idx(rows * cols);
    unpack_indices(config.bits, packed.data(), idx.size(), idx.data());
    return idx;
  }
  /// ŵ into `out` [rows, cols] (any strides); shape_error otherwise.
  void dequantize_into(const matrix_view<float>& out) const {
    check_same_shape("kmeans_tensor::dequantize_into: argument 'out'", shape_t{rows, cols}, out.shape());
    const std::vector<std::uint8_t> idx = indices();
    for (std::size_t i = 0; i < rows; ++i) {
      const float* cb = codebook(i);
      const std::uint8_t* q = idx.data() + i * cols;
      for (std::size_t j = 0; j < cols; ++j) out(i, j) = cb[q[j]];
    }
  }
  std::vector<float> dequantize() const {
    std::vector<float> w(rows * cols);
    dequantize_into(matrix_view<float>(w.data(), rows, cols));
    return w;
  }
  /// Codebooks (fp32) plus packed indices, in bytes.
  std::size_t storage_bytes() const noexcept { return codebooks.size() * sizeof(float) + packed.size(); }
  /// 8·storage_bytes() / (rows·cols): index bits plus the codebooks' share.
  double bits_per_weight() const noexcept {
    return rows != 0 && cols != 0 ? 8.0 * double(storage_bytes()) / double(rows * cols) : 0.0;
  }
};

/// Clusters `w` [rows, cols] (any strides) under `cfg`. Throws argument_error for an
/// invalid config or an empty matrix, value_error naming the position of a NaN/Inf.
inline kmeans_tensor kmeans_cluster(const matrix_view<const float>& w, const kmeans_config& cfg) {
  const char* where = "kmeans_cluster";
  cfg.validate(where);
  const std::size_t rows = w.rows(), cols = w.cols(), k = cfg.levels();
  if (rows == 0 || cols == 0)
    detail::fail<argument_error>(where, ": argument 'w': expected a non-empty matrix, got shape ", w.shape());
  std::vector<float> x(rows * cols);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) {
      const float v = w(i, j);
      if (!std::isfinite(v))
        detail::fail<value_error>(where, ": argument 'w': expected finite values, got ", v, " at (", i, ", ", j, ")");
      x[i * cols + j] = v;
    }
  kmeans_tensor t;
  t.rows = rows;
  t.cols = cols;
  t.config = cfg;
  std::vector<std::uint8_t> idx(rows * cols);
  if (!cfg.per_row) {
    kmeans_1d_result r = kmeans_1d(x.data(), x.size(), k, cfg.seed, cfg.max_iters);
    t.codebooks = std::move(r.centroids);
    idx = std::move(r.labels);
    t.sse = r.sse();
    t.iterations = r.iterations;
    t.converged = r.converged;
  } else {
    t.codebooks.assign(rows * k, 0.0f);
    std::vector<double> sse(rows);
    std::vector<int> iters(rows);
    std::vector<unsigned char> conv(rows);
    parallel_for(0, rows, std::max<std::size_t>(1, 4096 / cols), [&](std::size_t r0, std::size_t r1) {
      for (std::size_t i = r0; i < r1; ++i) {
        const kmeans_1d_result r = kmeans_1d(x.data() + i * cols, cols, k, kmeans_row_seed(cfg.seed, i), cfg.max_iters);
        std::copy(r.centroids.begin(), r.centroids.end(), t.codebooks.begin() + static_cast<std::ptrdiff_t>(i * k));
        std::copy(r.labels.begin(), r.labels.end(), idx.begin() + static_cast<std::ptrdiff_t>(i * cols));
        sse[i] = r.sse();
        iters[i] = r.iterations;
        conv[i] = r.converged;
      }
    });
    for (std::size_t i = 0; i < rows; ++i) {
      t.sse += sse[i];
      t.iterations = std::max(t.iterations, iters[i]);
      t.converged = t.converged && conv[i];
    }
  }
  t.packed.assign(packed_index_bytes(cfg.bits, rows * cols), 0);
  pack_indices(cfg.bits, idx.data(), idx.size(), t.packed.data());
  return t;
}

PARE_NAMESPACE_END
