// Tests of parallel_for on the built-in pool and on a plugged-in executor.
#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "pare/core/parallel.hpp"

TEST_CASE("parallel_for covers every index exactly once") {
  for (std::size_t n : {0u, 1u, 2u, 7u, 1000u, 100003u}) {
    std::vector<std::atomic<int>> hits(n);
    pare::parallel_for(0, n, 3, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i) hits[i].fetch_add(1);
    });
    for (std::size_t i = 0; i < n; ++i) REQUIRE(hits[i].load() == 1);
  }
}

TEST_CASE("parallel_for rethrows the first exception after all tasks end, and nests inline") {
  CHECK_THROWS_AS(pare::parallel_for(0, 100, 1,
                                     [](std::size_t lo, std::size_t) {
                                       if (lo >= 50) throw pare::argument_error("task failed");
                                     }),
                  pare::argument_error);
  std::atomic<int> inner{0};
  pare::parallel_for(0, 8, 1, [&](std::size_t lo, std::size_t hi) {
    pare::parallel_for(lo, hi, 1, [&](std::size_t a, std::size_t b) { inner += int(b - a); });
  });
  CHECK(inner.load() == 8);
}

namespace {
struct counting_executor final : pare::executor {
  std::size_t batches = 0;
  std::size_t concurrency() const noexcept override { return 4; }
  void run(std::size_t ntasks, const std::function<void(std::size_t)>& task) override {
    ++batches;
    for (std::size_t i = 0; i < ntasks; ++i) task(i);
  }
};
}  // namespace

TEST_CASE("an engine's executor replaces the built-in pool") {
  counting_executor ex;
  pare::set_executor(&ex);
  CHECK(pare::num_threads() == 4);
  long sum = 0;
  pare::parallel_for(0, 1000, 10, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) sum += long(i);
  });
  pare::set_executor(nullptr);
  CHECK(sum == 999L * 1000 / 2);
  CHECK(ex.batches == 1);
}
