// window_sampler: windows are the stated token ranges; each epoch is a permutation; the order depends on (seed, epoch) only; a cursor resumes the sequence exactly.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "pare/train/window_sampler.hpp"

namespace window_sampler_test {
inline std::vector<std::int32_t> iota_tokens(std::size_t n) {
  std::vector<std::int32_t> t(n);
  std::iota(t.begin(), t.end(), 0);
  return t;
}
}  // namespace window_sampler_test

TEST_CASE("window_sampler: windows of L+1 tokens with shared boundaries; every epoch visits each window once") {
  pare::window_sampler s(window_sampler_test::iota_tokens(103), 10, 42);
  REQUIRE(s.size() == 10);  // (103 − 1) / 10
  const auto w3 = s.window(3);
  REQUIRE(w3.size() == 11);
  CHECK(w3.front() == 30);
  CHECK(w3.back() == 40);
  std::vector<std::vector<std::size_t>> epochs;
  for (int e = 0; e < 3; ++e) {
    std::vector<std::size_t> seen;
    for (std::size_t i = 0; i < s.size(); ++i) seen.push_back(static_cast<std::size_t>(s.next().front() / 10));
    epochs.push_back(seen);
    std::vector<std::size_t> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size(); ++i) CHECK(sorted[i] == i);
    CHECK(s.cursor() == (pare::data_cursor{std::uint64_t(e + 1), 0}));
  }
  CHECK(epochs[0] != epochs[1]);  // reshuffled per epoch (10! orders: equal by chance ~3e-7)
  CHECK(epochs[1] != epochs[2]);
  std::vector<std::size_t> ident(10);
  std::iota(ident.begin(), ident.end(), 0);
  CHECK(epochs[0] != ident);
  // Same seed: same order; another seed: another order.
  pare::window_sampler same(window_sampler_test::iota_tokens(103), 10, 42), other(window_sampler_test::iota_tokens(103), 10, 43);
  CHECK(same.order(0) == epochs[0]);
  CHECK(same.order(2) == epochs[2]);
  CHECK(other.order(0) != epochs[0]);
}

TEST_CASE("window_sampler: seeking to a saved cursor continues the same sequence") {
  pare::window_sampler a(window_sampler_test::iota_tokens(500), 7, 5);
  for (int i = 0; i < 100; ++i) a.next();
  const pare::data_cursor c = a.cursor();
  CHECK(c.epoch == 1);
  std::vector<std::vector<std::int32_t>> rest;
  for (int i = 0; i < 150; ++i) rest.push_back(a.next());
  pare::window_sampler b(window_sampler_test::iota_tokens(500), 7, 999);
  b.seek(c, 5);
  for (int i = 0; i < 150; ++i) CHECK(b.next() == rest[i]);
  CHECK(b.seed() == 5);
  CHECK_THROWS_AS(b.seek(pare::data_cursor{0, 71}), pare::argument_error);  // 71 windows: index 71 is past the end
  CHECK_THROWS_AS(pare::window_sampler(window_sampler_test::iota_tokens(7), 7, 1), pare::argument_error);
  CHECK_THROWS_AS(pare::window_sampler(window_sampler_test::iota_tokens(70), 0, 1), pare::argument_error);
  CHECK_THROWS_AS(a.window(1000), pare::argument_error);
}
