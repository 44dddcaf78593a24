// k-means weight clustering: Lloyd monotonicity, recovery of separated centers, codebook sizes, index packing, per-row codebooks, determinism, RTN comparison, codebook_linear.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "pare/core/dtypes/packed_int.hpp"
#include "pare/model/layers/shared_linear.hpp"
#include "pare/quant/quantize.hpp"
#include "pare/share/kmeans.hpp"
#include "pare_test_support.hpp"

namespace {

/// Σ min_c (x − c)² in float64, by brute force over the codebook.
double nearest_sse(const std::vector<float>& x, const std::vector<float>& c) {
  double e = 0;
  for (float v : x) {
    double best = std::numeric_limits<double>::infinity();
    for (float cj : c) best = std::min(best, (double(v) - double(cj)) * (double(v) - double(cj)));
    e += best;
  }
  return e;
}

double sse(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (std::size_t i = 0; i < a.size(); ++i) e += (double(a[i]) - double(b[i])) * (double(a[i]) - double(b[i]));
  return e;
}

/// Uniform round-to-nearest with 2^bits levels between min and max (asymmetric, float64).
std::vector<float> rtn(const float* x, std::size_t n, int bits) {
  const auto [lo, hi] = std::minmax_element(x, x + n);
  const double mn = *lo, scale = (double(*hi) - mn) / double((1 << bits) - 1);
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double q = scale > 0 ? std::nearbyint((double(x[i]) - mn) / scale) : 0.0;
    out[i] = static_cast<float>(mn + q * scale);
  }
  return out;
}

}  // namespace

TEST_CASE("index packing round-trips for 1..8 bits and matches packed_int rows for 2, 3, 4 bits", "[share][kmeans]") {
  pare::splitmix64 g(7);
  for (int bits = 1; bits <= 8; ++bits) {
    for (std::size_t n : {0u, 1u, 7u, 8u, 13u, 64u, 1001u}) {
      INFO("bits " << bits << " n " << n);
      std::vector<std::uint8_t> idx(n);
      for (auto& v : idx) v = static_cast<std::uint8_t>(g.next() & ((1u << bits) - 1u));
      std::vector<std::uint8_t> packed(pare::packed_index_bytes(bits, n), 0xAA);
      CHECK(packed.size() == (std::size_t(bits) * n + 7) / 8);
      pare::pack_indices(bits, idx.data(), n, packed.data());
      std::vector<std::uint8_t> back(n, 0xFF);
      pare::unpack_indices(bits, packed.data(), n, back.data());
      CHECK(back == idx);
      // Element e occupies stream bits [b·e, b·e + b − 1].
      for (std::size_t e = 0; e < n; ++e) {
        unsigned v = 0;
        for (int k = 0; k < bits; ++k) {
          const std::size_t t = std::size_t(bits) * e + std::size_t(k);
          v |= unsigned((packed[t / 8] >> (t % 8)) & 1u) << k;
        }
        REQUIRE(v == idx[e]);
      }
      // Padding bits are zero.
      const std::size_t used = std::size_t(bits) * n;
      if (used % 8) CHECK((packed.back() >> (used % 8)) == 0);
      if (bits >= 2 && bits <= 4 && n % 8 == 0) {
        std::vector<std::uint8_t> ref(pare::packed_row_bytes(bits, n));
        pare::pack_codes(bits, idx.data(), n, ref.data());
        CHECK(ref == packed);
      }
    }
  }
  std::uint8_t b = 0;
  CHECK_THROWS_AS(pare::pack_indices(0, &b, 1, &b), pare::argument_error);
  CHECK_THROWS_AS(pare::unpack_indices(9, &b, 1, &b), pare::argument_error);
}

TEST_CASE("Lloyd never increases the within-cluster SSE and ends at a nearest-centroid assignment", "[share][kmeans]") {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    const std::vector<float> x = pare_test::gaussian(3000, 100 + seed);
    for (std::size_t k : {2u, 4u, 16u, 256u}) {
      INFO("seed " << seed << " k " << k);
      const pare::kmeans_1d_result r = pare::kmeans_1d(x.data(), x.size(), k, seed, 200);
      REQUIRE(r.centroids.size() == k);
      REQUIRE(r.sse_history.size() == std::size_t(r.iterations) + 1);
      CHECK(std::is_sorted(r.centroids.begin(), r.centroids.end()));
      for (std::size_t t = 1; t < r.sse_history.size(); ++t)
        CHECK(r.sse_history[t] <= r.sse_history[t - 1] * (1 + 1e-12));
      // The recorded SSE is the nearest-centroid SSE of the final codebook.
      CHECK(r.sse() == Approx(nearest_sse(x, r.centroids)).epsilon(1e-12));
      // Labels are nearest centroids.
      for (std::size_t i = 0; i < x.size(); ++i) {
        const double d = std::fabs(double(x[i]) - double(r.centroids[r.labels[i]]));
        for (float c : r.centroids) REQUIRE(d <= std::fabs(double(x[i]) - double(c)));
      }
      // More iterations never give a larger SSE (same seed: the runs share their prefix).
      const pare::kmeans_1d_result few = pare::kmeans_1d(x.data(), x.size(), k, seed, 2);
      const pare::kmeans_1d_result more = pare::kmeans_1d(x.data(), x.size(), k, seed, 10);
      CHECK(more.sse() <= few.sse() * (1 + 1e-12));
      for (std::size_t t = 0; t < few.sse_history.size(); ++t) CHECK(few.sse_history[t] == r.sse_history[t]);
      if (r.converged) CHECK(r.iterations <= 200);
    }
  }
  const std::vector<float> x = pare_test::gaussian(500, 5);
  const pare::kmeans_1d_result r0 = pare::kmeans_1d(x.data(), x.size(), 8, 1, 0);
  CHECK(r0.iterations == 0);
  CHECK(r0.sse_history.size() == 1);
  CHECK_FALSE(r0.converged);
}

TEST_CASE("k-means recovers the centers of well-separated clusters", "[share][kmeans]") {
  const std::vector<double> centers{-10.0, -3.0, 2.0, 7.5};
  std::vector<float> x;
  for (std::size_t c = 0; c < centers.size(); ++c) {
    const std::vector<float> noise = pare_test::gaussian(1000, 40 + c, 0.1, centers[c]);
    x.insert(x.end(), noise.begin(), noise.end());
  }
  // Shuffle so that the clusters are interleaved in input order.
  pare::splitmix64 g(3);
  for (std::size_t i = x.size(); i-- > 1;) std::swap(x[i], x[g.next() % (i + 1)]);
  for (std::uint64_t seed : {0u, 1u, 2u, 3u, 4u}) {
    INFO("seed " << seed);
    const pare::kmeans_1d_result r = pare::kmeans_1d(x.data(), x.size(), 4, seed, 100);
    CHECK(r.converged);
    for (std::size_t c = 0; c < 4; ++c) CHECK(r.centroids[c] == Approx(centers[c]).margin(0.02));
    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::size_t truth = static_cast<std::size_t>(
          std::min_element(centers.begin(), centers.end(),
                           [&](double a, double b) { return std::fabs(x[i] - a) < std::fabs(x[i] - b); }) -
          centers.begin());
      REQUIRE(r.labels[i] == truth);
    }
  }
}

TEST_CASE("kmeans_cluster: codebook of 2^b centroids, packed indices, storage and bits per weight", "[share][kmeans]") {
  const std::size_t rows = 24, cols = 37;
  const std::vector<float> w = pare_test::gaussian(rows * cols, 11, 0.05);
  const pare::matrix_view<const float> wv(w.data(), rows, cols);
  for (int bits = 1; bits <= 8; ++bits) {
    for (bool per_row : {false, true}) {
      INFO("bits " << bits << " per_row " << per_row);
      pare::kmeans_config cfg;
      cfg.bits = bits;
      cfg.per_row = per_row;
      const pare::kmeans_tensor t = pare::kmeans_cluster(wv, cfg);
      const std::size_t k = std::size_t(1) << bits;
      CHECK(t.levels() == k);
      CHECK(t.codebook_count() == (per_row ? rows : 1));
      CHECK(t.codebooks.size() == t.codebook_count() * k);
      CHECK(t.packed.size() == (std::size_t(bits) * rows * cols + 7) / 8);
      CHECK(t.storage_bytes() == t.codebooks.size() * 4 + t.packed.size());
      CHECK(t.bits_per_weight() == Approx(8.0 * double(t.storage_bytes()) / double(rows * cols)));
      const std::vector<std::uint8_t> idx = t.indices();
      std::vector<std::uint8_t> repacked(t.packed.size());
      pare::pack_indices(bits, idx.data(), idx.size(), repacked.data());
      CHECK(repacked == t.packed);
      const std::vector<float> deq = t.dequantize();
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j) {
          REQUIRE(t.index(i, j) == idx[i * cols + j]);
          REQUIRE(t.index(i, j) < k);
          REQUIRE(deq[i * cols + j] == t.codebook(i)[t.index(i, j)]);
          REQUIRE(deq[i * cols + j] == t.value(i, j));
        }
      CHECK(t.sse == Approx(sse(w, deq)).epsilon(1e-9));
    }
  }
  // A strided (transposed) view clusters the same values.
  std::vector<float> wt(rows * cols);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) wt[j * rows + i] = w[i * cols + j];
  const pare::matrix_view<const float> strided = pare::matrix_view<const float>(wt.data(), cols, rows).transposed();
  const auto cfg = pare::kmeans_config::parse("kmeans:3bit:per_row");
  CHECK(pare::kmeans_cluster(strided, cfg).packed == pare::kmeans_cluster(wv, cfg).packed);
}

TEST_CASE("per-row codebooks: each row is its own 1-D k-means", "[share][kmeans]") {
  const std::size_t rows = 6, cols = 200;
  std::vector<float> w = pare_test::gaussian(rows * cols, 12);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) w[i * cols + j] *= std::pow(10.0f, float(i) - 3.0f);  // very different scales
  const pare::matrix_view<const float> wv(w.data(), rows, cols);
  const auto per_row = pare::kmeans_cluster(wv, pare::kmeans_config::parse("kmeans:3bit:per_row:seed=9"));
  const auto per_tensor = pare::kmeans_cluster(wv, pare::kmeans_config::parse("kmeans:3bit:seed=9"));
  for (std::size_t i = 0; i < rows; ++i) {
    INFO("row " << i);
    const pare::kmeans_1d_result r = pare::kmeans_1d(w.data() + i * cols, cols, 8, pare::kmeans_row_seed(9, i), 100);
    CHECK(std::equal(r.centroids.begin(), r.centroids.end(), per_row.codebook(i)));
    for (std::size_t j = 0; j < cols; ++j) REQUIRE(per_row.index(i, j) == r.labels[j]);
  }
  CHECK(per_row.sse < per_tensor.sse);
  CHECK(per_row.storage_bytes() == rows * 8 * 4 + (3 * rows * cols + 7) / 8);
  CHECK(per_tensor.storage_bytes() == 8 * 4 + (3 * rows * cols + 7) / 8);
}

TEST_CASE("kmeans_cluster is deterministic for a seed", "[share][kmeans]") {
  const std::vector<float> w = pare_test::gaussian(64 * 96, 13);
  const pare::matrix_view<const float> wv(w.data(), 64, 96);
  for (const char* spec : {"kmeans:4bit:seed=5", "kmeans:2bit:per_row:seed=5", "kmeans:8bit:iters=7:seed=5"}) {
    INFO(spec);
    const auto cfg = pare::kmeans_config::parse(spec);
    const auto a = pare::kmeans_cluster(wv, cfg), b = pare::kmeans_cluster(wv, cfg);
    CHECK(a.codebooks == b.codebooks);
    CHECK(a.packed == b.packed);
    CHECK(a.sse == b.sse);
  }
  // Different seeds start from different k-means++ draws.
  const auto s0 = pare::kmeans_1d(w.data(), w.size(), 16, 0, 0), s1 = pare::kmeans_1d(w.data(), w.size(), 16, 1, 0);
  CHECK(s0.centroids != s1.centroids);
}

TEST_CASE("k-means error is at most that of uniform RTN with the same bits on Gaussian data", "[share][kmeans]") {
  const std::size_t rows = 128, cols = 256;
  const std::vector<float> w = pare_test::gaussian(rows * cols, 14, 0.02);
  const pare::matrix_view<const float> wv(w.data(), rows, cols);
  for (int bits = 1; bits <= 8; ++bits) {
    INFO("bits " << bits);
    pare::kmeans_config cfg;
    cfg.bits = bits;
    const double km = sse(w, pare::kmeans_cluster(wv, cfg).dequantize());
    const double uni = sse(w, rtn(w.data(), w.size(), bits));
    CHECK(km <= uni);
    if (bits >= 2) {  // pare's own asymmetric per-tensor RTN as a second reference
      const auto qt = pare::quantize(wv, pare::quant_config::parse("int" + std::to_string(bits) + ":per_tensor:asym"));
      std::vector<float> deq(rows * cols);
      qt.dequantize_into(pare::matrix_view<float>(deq.data(), rows, cols));
      CHECK(km <= sse(w, deq));
    }
    cfg.per_row = true;
    const double km_row = sse(w, pare::kmeans_cluster(wv, cfg).dequantize());
    double uni_row = 0;
    for (std::size_t i = 0; i < rows; ++i) {
      const std::vector<float> row(w.begin() + std::ptrdiff_t(i * cols), w.begin() + std::ptrdiff_t((i + 1) * cols));
      uni_row += sse(row, rtn(row.data(), cols, bits));
    }
    CHECK(km_row <= uni_row);
  }
}

TEST_CASE("kmeans_config parses specs and rejects bad ones, bad input throws", "[share][kmeans]") {
  const auto c = pare::kmeans_config::parse("kmeans:4bit:per_row:iters=20:seed=3");
  CHECK(c.bits == 4);
  CHECK(c.per_row);
  CHECK(c.max_iters == 20);
  CHECK(c.seed == 3);
  CHECK(pare::kmeans_config::parse(c.str()) == c);
  CHECK(pare::kmeans_config::parse("2bit") == pare::kmeans_config::parse("kmeans:2bit:per_tensor"));
  for (const char* bad : {"kmeans", "kmeans:0bit", "kmeans:9bit", "kmeans:4", "kmeans:4bit:per_row:per_row",
                          "kmeans:4bit:foo", "kmeans:4bit:iters=-1", "kmeans:xbit", "kmeans:4bit:seed="}) {
    INFO(bad);
    CHECK_THROWS_AS(pare::kmeans_config::parse(bad), pare::argument_error);
  }
  try {
    pare::kmeans_config::parse("kmeans:9bit");
    FAIL("expected a throw");
  } catch (const pare::argument_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("bits") && Catch::Contains("9"));
  }
  std::vector<float> w(16, 0.5f);
  w[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(pare::kmeans_cluster(pare::matrix_view<const float>(w.data(), 4, 4), pare::kmeans_config{}), pare::value_error);
  CHECK_THROWS_AS(pare::kmeans_1d(w.data(), 0, 4, 0), pare::argument_error);
  CHECK_THROWS_AS(pare::kmeans_1d(w.data(), 4, 257, 0), pare::argument_error);
  // Fewer distinct values than centroids: duplicates are fine and exact.
  const std::vector<float> few{1.0f, 1.0f, 2.0f, 2.0f, 3.0f};
  const auto r = pare::kmeans_1d(few.data(), few.size(), 16, 0);
  CHECK(r.sse() == 0.0);
  CHECK(r.centroids.size() == 16);
}

TEST_CASE("codebook_linear: forward uses the shared weights, storage is codebook plus indices", "[share][kmeans]") {
  const std::size_t out = 40, in = 72, m = 5;
  const std::vector<float> w = pare_test::gaussian(out * in, 15, 0.1);
  const std::vector<float> x = pare_test::gaussian(m * in, 16);
  const pare::codebook_linear l(pare::matrix_view<const float>(w.data(), out, in), pare::kmeans_config::parse("kmeans:4bit"));
  CHECK(l.in_features() == in);
  CHECK(l.out_features() == out);
  CHECK(l.format() == "kmeans:4bit:per_tensor:iters=100:seed=0");
  CHECK(l.storage_bytes() == 16 * 4 + out * in / 2);
  CHECK(l.bits_per_weight() == Approx(4.0 + 16.0 * 32.0 / double(out * in)));
  std::vector<float> wd(out * in);
  l.dense_weights(pare::matrix_view<float>(wd.data(), out, in));
  CHECK(wd == l.tensor().dequantize());
  std::vector<float> y(m * out);
  l.forward(pare::matrix_view<const float>(x.data(), m, in), pare::matrix_view<float>(y.data(), m, out));
  for (std::size_t r = 0; r < m; ++r)
    for (std::size_t o = 0; o < out; ++o) {
      double ref = 0;
      for (std::size_t k = 0; k < in; ++k) ref += double(x[r * in + k]) * double(wd[o * in + k]);
      REQUIRE(y[r * out + o] == Approx(ref).margin(1e-4));
    }
  std::vector<float> bad(m * (out + 1));
  CHECK_THROWS_AS(l.forward(pare::matrix_view<const float>(x.data(), m, in), pare::matrix_view<float>(bad.data(), m, out + 1)),
                  pare::shape_error);
}
