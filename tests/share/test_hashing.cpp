// HashedNets hashing trick: seeded bucket hash, shared values equal to the float64 bucket means (least squares), hashed_linear.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <vector>

#include "pare/model/layers/shared_linear.hpp"
#include "pare/share/hashing.hpp"
#include "pare_test_support.hpp"

TEST_CASE("hash_bucket: same (i, j, seed) gives the same bucket, in range, spread evenly", "[share][hashing]") {
  const std::uint64_t K = 97;
  std::vector<std::size_t> count(K, 0);
  std::size_t moved = 0;
  for (std::size_t i = 0; i < 200; ++i)
    for (std::size_t j = 0; j < 100; ++j) {
      const std::uint32_t b = pare::hash_bucket(42, i, j, K);
      REQUIRE(b < K);
      REQUIRE(b == pare::hash_bucket(42, i, j, K));
      ++count[b];
      moved += b != pare::hash_bucket(43, i, j, K);
      const float s = pare::hash_sign(42, i, j);
      REQUIRE((s == 1.0f || s == -1.0f));
      REQUIRE(s == pare::hash_sign(42, i, j));
    }
  // Another seed moves almost every element (a fixed point has probability 1/K).
  CHECK(moved > 20000 * 9 / 10);
  // Chi-square against uniform: 96 degrees of freedom, mean 96, sd ~14.
  const double expect = 20000.0 / double(K);
  double chi2 = 0;
  for (std::size_t c : count) chi2 += (double(c) - expect) * (double(c) - expect) / expect;
  CHECK(chi2 < 200);
  // Element (i, j) and (j, i) are not tied together.
  std::size_t same = 0;
  for (std::size_t i = 0; i < 100; ++i)
    for (std::size_t j = 0; j < 100; ++j) same += pare::hash_bucket(1, i, j, K) == pare::hash_bucket(1, j, i, K);
  CHECK(same < 10000 / 10);
}

TEST_CASE("hash_share: the shared values are the bucket means (least squares), checked in float64", "[share][hashing]") {
  const std::size_t rows = 50, cols = 70;
  const std::vector<float> w = pare_test::gaussian(rows * cols, 21, 0.3, 0.1);
  const pare::matrix_view<const float> wv(w.data(), rows, cols);
  for (bool sign : {false, true}) {
    for (std::uint64_t K : {1u, 7u, 64u, 500u, 5000u}) {
      INFO("K " << K << " sign " << sign);
      pare::hashed_config cfg;
      cfg.buckets = K;
      cfg.seed = 17;
      cfg.sign = sign;
      const pare::hashed_tensor t = pare::hash_share(wv, cfg);
      REQUIRE(t.values.size() == K);
      // Independent reference: group the elements by bucket, then average in long double.
      std::map<std::uint32_t, std::vector<long double>> groups;
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j) {
          const long double xi = sign ? (long double)pare::hash_sign(17, i, j) : 1.0L;
          groups[pare::hash_bucket(17, i, j, K)].push_back(xi * (long double)w[i * cols + j]);
        }
      for (std::uint64_t b = 0; b < K; ++b) {
        const auto it = groups.find(static_cast<std::uint32_t>(b));
        if (it == groups.end()) {
          REQUIRE(t.values[b] == 0.0f);
          continue;
        }
        long double s = 0;
        for (long double v : it->second) s += v;
        const double mean = double(s / (long double)it->second.size());
        REQUIRE(double(t.values[b]) == Approx(mean).margin(1e-7).epsilon(1e-6));
        // Least squares: the residuals of a bucket sum to ~0 (the derivative vanishes).
        long double resid = 0;
        for (long double v : it->second) resid += v - (long double)t.values[b];
        REQUIRE(std::fabs(double(resid)) <= 1e-6 * double(it->second.size()));
      }
      // Any other value for a bucket fits worse.
      const std::vector<float> deq = t.dequantize();
      double e0 = 0;
      for (std::size_t n = 0; n < w.size(); ++n) e0 += (double(w[n]) - double(deq[n])) * (double(w[n]) - double(deq[n]));
      pare::hashed_tensor moved = t;
      moved.values[t.bucket(0, 0)] += 0.01f;  // a bucket that holds at least (0, 0)
      const std::vector<float> deq2 = moved.dequantize();
      double e1 = 0;
      for (std::size_t n = 0; n < w.size(); ++n) e1 += (double(w[n]) - double(deq2[n])) * (double(w[n]) - double(deq2[n]));
      CHECK(e1 > e0);
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j) {
          REQUIRE(t.bucket(i, j) == pare::hash_bucket(17, i, j, K));
          REQUIRE(deq[i * cols + j] == (sign ? pare::hash_sign(17, i, j) : 1.0f) * t.values[t.bucket(i, j)]);
        }
      CHECK(t.storage_bytes() == K * 4);
      CHECK(t.bits_per_weight() == Approx(32.0 * double(K) / double(rows * cols)));
    }
  }
}

TEST_CASE("hashed_config parses specs, hash_share rejects bad input", "[share][hashing]") {
  const auto a = pare::hashed_config::parse("hash:x8:seed=3:sign");
  CHECK(a.buckets == 0);
  CHECK(a.factor == 8.0);
  CHECK(a.seed == 3);
  CHECK(a.sign);
  CHECK(a.buckets_for(64, 64) == 512);
  CHECK(a.buckets_for(3, 3) == 2);
  const auto b = pare::hashed_config::parse("hash:1024");
  CHECK(b.buckets == 1024);
  CHECK(b.buckets_for(64, 64) == 1024);
  CHECK(pare::hashed_config::parse(b.str()).buckets == 1024);
  for (const char* bad : {"hash", "hash:0", "hash:x0", "hash:x-2", "hash:xabc", "hash:8:foo", "hash:8:sign:sign", "hash:8:seed=-1"}) {
    INFO(bad);
    CHECK_THROWS_AS(pare::hashed_config::parse(bad), pare::argument_error);
  }
  std::vector<float> w(12, 1.0f);
  w[7] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(pare::hash_share(pare::matrix_view<const float>(w.data(), 3, 4), b), pare::value_error);
  CHECK_THROWS_AS(pare::hash_share(pare::matrix_view<const float>(w.data(), 0, 4), b), pare::argument_error);
}

TEST_CASE("hashed_linear: forward with the hashed weights, storage of K values", "[share][hashing]") {
  const std::size_t out = 33, in = 48, m = 3;
  const std::vector<float> w = pare_test::gaussian(out * in, 22, 0.1);
  const std::vector<float> x = pare_test::gaussian(m * in, 23);
  const pare::hashed_linear l(pare::matrix_view<const float>(w.data(), out, in), pare::hashed_config::parse("hash:x4:seed=1"));
  CHECK(l.storage_bytes() == (out * in + 3) / 4 * 4);
  CHECK(l.format() == "hash:396:seed=1");
  std::vector<float> wd(out * in), y(m * out);
  l.dense_weights(pare::matrix_view<float>(wd.data(), out, in));
  l.forward(pare::matrix_view<const float>(x.data(), m, in), pare::matrix_view<float>(y.data(), m, out));
  for (std::size_t r = 0; r < m; ++r)
    for (std::size_t o = 0; o < out; ++o) {
      double ref = 0;
      for (std::size_t k = 0; k < in; ++k) ref += double(x[r * in + k]) * double(wd[o * in + k]);
      REQUIRE(y[r * out + o] == Approx(ref).margin(1e-4));
    }
}
