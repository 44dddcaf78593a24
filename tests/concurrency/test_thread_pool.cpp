// Tests of pare::thread_pool: every task once per batch under back-to-back batches of changing size, concurrent callers, nesting, errors.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <vector>

#include "pare/core/parallel.hpp"

namespace {
/// Aborts the test program when `progress` stops moving for 20 s: a hung pool fails
/// fast instead of waiting for ctest's timeout.
class watchdog {
 public:
  explicit watchdog(const std::atomic<long>& progress) : progress_(progress), thread_([this] { watch(); }) {}
  ~watchdog() {
    stop_.store(true);
    thread_.join();
  }

 private:
  void watch() {
    long prev = -1;
    auto since = std::chrono::steady_clock::now();
    while (!stop_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const long now = progress_.load();
      if (now != prev) {
        prev = now;
        since = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - since > std::chrono::seconds(20)) {
        std::fprintf(stderr, "thread_pool: no batch finished for 20 s after batch %ld: the pool hangs\n", now);
        std::abort();
      }
    }
  }
  const std::atomic<long>& progress_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// run() with 2, 64 and 9 tasks in turn for `seconds` (the shape of
/// ../shared/repro/thread_pool_stress.cpp); counts tasks run twice, never, or after
/// run() returned.
struct stress_result {
  long batches = 0, duplicates = 0, missing = 0, late = 0;
};
stress_result stress(pare::thread_pool& pool, double seconds, std::atomic<long>& progress) {
  std::vector<std::atomic<int>> count(64);
  std::atomic<bool> active{false};
  std::atomic<long> late{0};
  stress_result r;
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
    for (int rep = 0; rep < 256; ++rep, ++r.batches) {
      const std::size_t nt = r.batches % 3 == 0 ? 2 : r.batches % 3 == 1 ? 64 : 9;
      for (std::size_t i = 0; i < nt; ++i) count[i].store(0);
      active.store(true);
      pool.run(nt, [&](std::size_t i) {
        if (!active.load()) late.fetch_add(1);
        count[i].fetch_add(1);
      });
      active.store(false);
      for (std::size_t i = 0; i < nt; ++i) {
        const int c = count[i].load();
        if (c > 1) r.duplicates += c - 1;
        if (c == 0) ++r.missing;
      }
      progress.fetch_add(1);
    }
  }
  r.late = late.load();
  return r;
}
}  // namespace

TEST_CASE("thread_pool: back-to-back batches of 2, 64 and 9 tasks run every task exactly once") {
  // The pool used to hang within seconds here (a worker of one batch took an index of
  // the next and ran a task twice, so the completion count never matched).
  std::atomic<long> progress{0};
  watchdog dog(progress);
  for (std::size_t threads : {2u, 3u, 4u, 8u}) {
    pare::thread_pool pool(threads);
    const stress_result r = stress(pool, 1.5, progress);
    INFO(threads << " threads, " << r.batches << " batches");
    CHECK(r.batches > 1000);
    CHECK(r.duplicates == 0);
    CHECK(r.missing == 0);
    CHECK(r.late == 0);
  }
}

TEST_CASE("thread_pool: several threads may call run() on one pool at once") {
  pare::thread_pool pool(3);
  std::atomic<long> progress{0}, wrong{0};
  watchdog dog(progress);
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&, c] {
      std::vector<std::atomic<int>> count(40);
      for (int rep = 0; rep < 3000; ++rep) {
        const std::size_t nt = 2 + std::size_t(rep + c) % 39;
        for (auto& x : count) x.store(0);
        pool.run(nt, [&](std::size_t i) { count[i].fetch_add(1); });
        for (std::size_t i = 0; i < count.size(); ++i)
          if (count[i].load() != (i < nt ? 1 : 0)) wrong.fetch_add(1);
        progress.fetch_add(1);
      }
    });
  for (auto& t : callers) t.join();
  CHECK(progress.load() == 4 * 3000);
  CHECK(wrong.load() == 0);
}

TEST_CASE("thread_pool: run() from inside a task of the same pool runs inline") {
  pare::thread_pool pool(4);
  std::vector<std::atomic<int>> hits(8 * 16);
  pool.run(8, [&](std::size_t outer) {
    pool.run(16, [&](std::size_t inner) { hits[outer * 16 + inner].fetch_add(1); });
  });
  for (auto& h : hits) REQUIRE(h.load() == 1);
}

TEST_CASE("thread_pool: a throwing task skips the rest and run() rethrows, and the pool stays usable") {
  pare::thread_pool pool(4);
  for (int rep = 0; rep < 200; ++rep) {
    CHECK_THROWS_WITH(pool.run(64,
                               [&](std::size_t i) {
                                 if (i % 2 == 1) throw std::runtime_error("task " + std::to_string(i % 2));
                               }),
                      "task 1");
    std::atomic<int> after{0};
    pool.run(64, [&](std::size_t) { after.fetch_add(1); });
    REQUIRE(after.load() == 64);
  }
}

TEST_CASE("thread_pool: thread counts beyond max_threads are refused up front") {
  CHECK_THROWS_AS(pare::thread_pool(pare::thread_pool::max_threads + 1), pare::argument_error);
  CHECK_THROWS_WITH(pare::thread_pool(100000), Catch::Contains("argument 'threads'") && Catch::Contains("at most 1024") &&
                                                    Catch::Contains("got 100000"));
  pare::thread_pool zero(0), one(1);
  CHECK(zero.concurrency() == 1);
  int sum = 0;  // no other thread: a plain int is safe
  zero.run(5, [&](std::size_t i) { sum += int(i); });
  CHECK(sum == 10);
}
