// 2:4 compressed storage and its GEMV/GEMM: pack/unpack round trips, every ISA bit-identical to scalar and within c·eps·sum|x·w| of float64, odd shapes, errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "pare/prune/magnitude.hpp"
#include "pare/prune/nm.hpp"
#include "pare/prune/sparse24.hpp"
#include "pare_test_support.hpp"
#include "prune_oracle.hpp"
#include "prune_test_support.hpp"

namespace pp = pare::prune;
using pare::matrix_view;

namespace {
using prune_test::mv;

/// Every variant the 2:4 kernel has on this machine, each run with only it enabled.
template <class F>
void for_each_variant(F&& f) {
  const pare::isa have = pare::kernels::sparse24_dispatch().available() & pare::detected_isas();
  pare::for_each_isa(have, [&](pare::isa level) {
    pare::set_enabled_isas(pare::with_lower_levels(level));
    f(level);
  });
  pare::reset_enabled_isas();
}

/// A random [n, k] weight made 2:4 by magnitude, and its mask.
std::vector<float> sparse_weight(std::size_t n, std::size_t k, std::uint64_t seed, pp::mask* m = nullptr) {
  std::vector<float> w = pare_test::gaussian(n * k, seed);
  const pp::mask msk = pp::nm_mask(pp::magnitude{}(mv(w, n, k)).view(), 2, 4);
  pp::apply(msk, matrix_view<float>(w.data(), n, k));
  if (m) *m = msk;
  return w;
}
}  // namespace

TEST_CASE("pack_sparse24 round-trips 2:4 weights and stores positions in column order") {
  for (std::size_t k : {4u, 8u, 28u, 32u, 36u, 100u}) {
    pp::mask msk;
    const auto w = sparse_weight(7, k, 3 + k, &msk);
    const pare::packed_sparse24 p = pare::pack_sparse24(mv(w, 7, k));
    CHECK(p.n == 7);
    CHECK(p.k == k);
    CHECK(p.vstride % 16 == 0);
    CHECK(p.vstride >= k / 2);
    CHECK(p.storage_bytes() == 7 * (p.vstride * 4 + p.vstride / 4));
    CHECK(pp::kept(p) == msk);  // gaussian weights: no zeros among the kept
    std::vector<float> back(7 * k, -1.0f);
    p.unpack(matrix_view<float>(back.data(), 7, k));
    CHECK(back == w);
    for (std::size_t i = 0; i < 7; ++i) {
      for (std::size_t j = 0; j < k; ++j) REQUIRE(p.value(i, j) == w[i * k + j]);
      for (std::size_t t = 0; t < k / 2; t += 2) REQUIRE(p.position(i, t) < p.position(i, t + 1));
      for (std::size_t t = k / 2; t < p.vstride; ++t) REQUIRE(p.values[i * p.vstride + t] == 0.0f);  // padding
    }
    // The same from (dense w, mask): entries outside the mask are ignored.
    const auto dense = pare_test::gaussian(7 * k, 3 + k);
    const pare::packed_sparse24 q = pare::pack_sparse24(mv(dense, 7, k), msk);
    std::vector<float> back2(7 * k);
    q.unpack(matrix_view<float>(back2.data(), 7, k));
    CHECK(back2 == w);
  }
  // K = 4096: exactly 2.125 bytes per dense weight, no padding.
  const pare::packed_sparse24 big = pare::pack_sparse24(mv(std::vector<float>(2 * 4096, 0.0f), 2, 4096));
  CHECK(big.storage_bytes() * 8 == 2 * 4096 * 17);
}

TEST_CASE("groups with fewer than two nonzeros keep the lowest-column zeros") {
  // Row: [0 0 0 0 | 0 0 5 0 | 3 0 0 0 | 0 1 0 2]
  const std::vector<float> w{0, 0, 0, 0, 0, 0, 5, 0, 3, 0, 0, 0, 0, 1, 0, 2};
  const pare::packed_sparse24 p = pare::pack_sparse24(mv(w, 1, 16));
  CHECK(p.column(0, 0) == 0);
  CHECK(p.column(0, 1) == 1);
  CHECK(p.column(0, 2) == 4);
  CHECK(p.column(0, 3) == 6);
  CHECK(p.column(0, 4) == 8);
  CHECK(p.column(0, 5) == 9);
  CHECK(p.column(0, 6) == 13);
  CHECK(p.column(0, 7) == 15);
  std::vector<float> back(16);
  p.unpack(matrix_view<float>(back.data(), 1, 16));
  CHECK(back == w);
  CHECK(pp::is_nm(pp::kept(p), 2, 4));
}

TEST_CASE("pack_sparse24 rejects K not a multiple of 4, dense groups and non-2:4 masks") {
  const auto w = pare_test::gaussian(3 * 10, 1);
  prune_oracle::require_throws<pare::shape_error>([&] { (void)pare::pack_sparse24(mv(w, 3, 10)); },
                                                  {"'w'", "multiple of 4", "[3, 10]"});
  prune_oracle::require_throws<pare::shape_error>([&] { (void)pare::pack_sparse24(mv(w, 3, 10), pp::mask(3, 10)); },
                                                  {"'w'", "multiple of 4"});
  auto s = sparse_weight(3, 8, 2);
  s[1 * 8 + 4 + 0] = s[1 * 8 + 4 + 1] = s[1 * 8 + 4 + 2] = 1.0f;
  prune_oracle::require_throws<pare::value_error>([&] { (void)pare::pack_sparse24(mv(s, 3, 8)); },
                                                  {"'w'", "at most 2 nonzeros", "row 1 columns 4..7"});
  pp::mask m = pp::nm_mask(mv(w, 3, 8), 2, 4);
  m.set(2, 0, !m.kept(2, 0));
  prune_oracle::require_throws<pare::argument_error>([&] { (void)pare::pack_sparse24(mv(w, 3, 8), m); },
                                                     {"'mask'", "exactly 2", "row 2 columns 0..3"});
  prune_oracle::require_throws<pare::shape_error>([&] { (void)pare::pack_sparse24(mv(w, 3, 8), pp::mask(2, 8)); }, {"'mask'"});
}

TEST_CASE("2:4 matmul: every ISA equals scalar bit for bit and float64 within c*eps*sum|x*w|") {
  const std::size_t ms[] = {1, 2, 3, 4, 5, 7, 9};
  const std::size_t ns[] = {1, 3, 4, 5, 17, 33};
  const std::size_t ks[] = {4, 8, 28, 32, 36, 60, 64, 100, 128, 260};
  std::size_t variants_seen = 0;
  for (std::size_t k : ks)
    for (std::size_t n : ns) {
      const auto w = sparse_weight(n, k, 50 + n * 7 + k);
      const pare::packed_sparse24 p = pare::pack_sparse24(mv(w, n, k));
      for (std::size_t m : ms) {
        const auto x = pare_test::gaussian(m * k, 90 + m + k);
        std::vector<float> ref(m * n, -1.0f);
        pare::set_enabled_isas(pare::isa::scalar);
        pare::matmul(mv(x, m, k), p, matrix_view<float>(ref.data(), m, n));
        REQUIRE(pare::last_used_isa() == pare::isa::scalar);
        pare::reset_enabled_isas();
        // float64 oracle over the dense (pruned) weight.
        const std::size_t lane_terms = (k / 2 + 15) / 16;
        for (std::size_t i = 0; i < m; ++i)
          for (std::size_t o = 0; o < n; ++o) {
            double s = 0, a = 0;
            for (std::size_t j = 0; j < k; ++j) {
              s += double(x[i * k + j]) * double(w[o * k + j]);
              a += std::fabs(double(x[i * k + j]) * double(w[o * k + j]));
            }
            const double bound = 2.0 * double(lane_terms + 4) * 0x1p-24 * a + 1e-30;  // 16 FMA chains + 4 tree levels
            INFO("m " << m << " n " << n << " k " << k);
            REQUIRE(std::fabs(double(ref[i * n + o]) - s) <= bound);
          }
        for_each_variant([&](pare::isa level) {
          std::vector<float> y(m * n, -2.0f);
          pare::matmul(mv(x, m, k), p, matrix_view<float>(y.data(), m, n));
          INFO("isa " << pare::to_string(level) << " m " << m << " n " << n << " k " << k);
          REQUIRE(pare::last_used_isa() == level);
          REQUIRE(std::memcmp(y.data(), ref.data(), y.size() * sizeof(float)) == 0);
          ++variants_seen;
        });
      }
    }
  std::size_t levels = 0;
  pare::for_each_isa(pare::kernels::sparse24_dispatch().available() & pare::detected_isas(), [&](pare::isa) { ++levels; });
  CHECK(levels >= 1);
  CHECK(variants_seen == levels * 6 * 10 * 7);
#if PARE_HAS_X86_KERNELS
  if (pare::has(pare::detected_isas(), pare::isa::avx512bw)) {
    CHECK(pare::has(pare::kernels::sparse24_dispatch().available(), pare::isa::avx512bw));
    std::vector<float> w = sparse_weight(4, 8, 1), x(8, 1.0f), y(4);
    pare::matmul(mv(x, 1, 8), pare::pack_sparse24(mv(w, 4, 8)), matrix_view<float>(y.data(), 1, 4));
    CHECK(pare::last_used_isa() == pare::isa::avx512bw);
  }
#endif
}

TEST_CASE("2:4 GEMV at K = 4096 matches scalar exactly on every ISA") {
  const std::size_t n = 37, k = 4096;
  const auto w = sparse_weight(n, k, 77);
  const pare::packed_sparse24 p = pare::pack_sparse24(mv(w, n, k));
  const auto x = pare_test::gaussian(k, 78);
  std::vector<float> ref(n);
  pare::set_enabled_isas(pare::isa::scalar);
  pare::matmul(mv(x, 1, k), p, matrix_view<float>(ref.data(), 1, n));
  pare::reset_enabled_isas();
  for_each_variant([&](pare::isa) {
    std::vector<float> y(n);
    pare::matmul(mv(x, 1, k), p, matrix_view<float>(y.data(), 1, n));
    REQUIRE(std::memcmp(y.data(), ref.data(), n * sizeof(float)) == 0);
  });
}

TEST_CASE("2:4 matmul with strided views, threads, and shape errors") {
  const std::size_t m = 5, n = 21, k = 36;
  const auto w = sparse_weight(n, k, 4);
  const pare::packed_sparse24 p = pare::pack_sparse24(mv(w, n, k));
  const auto x = pare_test::gaussian(m * k, 5);
  std::vector<float> y(m * n);
  pare::matmul(mv(x, m, k), p, matrix_view<float>(y.data(), m, n));
  // x given transposed-in-memory (column stride m), y as a strided transpose view.
  std::vector<float> xt(k * m);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < k; ++j) xt[j * m + i] = x[i * k + j];
  std::vector<float> yt(n * m, 0.0f);
  pare::matmul(mv(xt, k, m).transposed(), p, matrix_view<float>(yt.data(), n, m).transposed());
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t o = 0; o < n; ++o) REQUIRE(yt[o * m + i] == y[i * n + o]);
  // Rows with padding between them (row strides larger than the width).
  std::vector<float> xp(m * (k + 3)), yp(m * (n + 2), 7.0f);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < k; ++j) xp[i * (k + 3) + j] = x[i * k + j];
  pare::matmul(matrix_view<const float>(xp.data(), m, k, k + 3), p, matrix_view<float>(yp.data(), m, n, n + 2));
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t o = 0; o < n; ++o) REQUIRE(yp[i * (n + 2) + o] == y[i * n + o]);
    CHECK(yp[i * (n + 2) + n] == 7.0f);
  }
  // Two threads split the rows: same bits.
  {
    pare::thread_pool pool(2);
    pare::set_executor(&pool);
    const auto wb = sparse_weight(300, 512, 6);
    const pare::packed_sparse24 pb = pare::pack_sparse24(mv(wb, 300, 512));
    const auto xb = pare_test::gaussian(2 * 512, 7);
    std::vector<float> y2(2 * 300), y1(2 * 300);
    pare::matmul(mv(xb, 2, 512), pb, matrix_view<float>(y2.data(), 2, 300));
    pare::set_executor(nullptr);
    pare::thread_pool one(1);
    pare::set_executor(&one);
    pare::matmul(mv(xb, 2, 512), pb, matrix_view<float>(y1.data(), 2, 300));
    pare::set_executor(nullptr);
    CHECK(y1 == y2);
  }
  // Shape errors name both shapes and leave y alone.
  std::vector<float> yy(m * n, 3.0f);
  prune_oracle::require_throws<pare::shape_error>(
      [&] { pare::matmul(mv(x, m, k - 4), p, matrix_view<float>(yy.data(), m, n)); }, {"x [M, 36]", "[5, 32]"});
  prune_oracle::require_throws<pare::shape_error>(
      [&] { pare::matmul(mv(x, m, k), p, matrix_view<float>(yy.data(), n, m)); }, {"y [M, 21]", "[21, 5]"});
  CHECK(yy == std::vector<float>(m * n, 3.0f));
  // Empty batch: nothing to do.
  pare::matmul(mv(x, 0, k), p, matrix_view<float>(yy.data(), 0, n));
}

TEST_CASE("2:4 matmul reads x only at kept columns") {
  // Every row keeps columns 0 and 1 of each group: x NaN at column 2 does not reach y.
  const std::size_t n = 3, k = 8;
  std::vector<float> w(n * k, 0.0f);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t g = 0; g < k; g += 4) w[i * k + g] = w[i * k + g + 1] = float(i + 1);
  const pare::packed_sparse24 p = pare::pack_sparse24(mv(w, n, k));
  std::vector<float> x(k, 1.0f);
  x[2] = std::numeric_limits<float>::quiet_NaN();
  for_each_variant([&](pare::isa) {
    std::vector<float> y(n);
    pare::matmul(mv(x, 1, k), p, matrix_view<float>(y.data(), 1, n));
    for (std::size_t i = 0; i < n; ++i) CHECK(y[i] == 4.0f * float(i + 1));
  });
}
