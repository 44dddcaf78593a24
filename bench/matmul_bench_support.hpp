// Shared helpers of bench_matmul: cold-weight rotation sizes, thread setup, standard counters.
#pragma once

// Conventions for every matmul benchmark case (bench/matmul_*_cases.hpp):
//   name      <family>/<op>/M:<m>/N:<n>/K:<k>/threads:<t>, family one of int8, int4_g<G>,
//             f32, openblas, onednn_u8s8, read_bw; paired cases gemv_vs_read,
//             int8_vs_onednn (two or three computations alternated in one case).
//   counters  weight_GBps: bytes of weights read per second incl. scales (1e9 B/s);
//             GOPs: 2·M·N·K operations per second (1e9/s).
//   GEMV      weights are cold: the case rotates over cold_copies(bytes) copies of the
//             packed matrix (> 512 MiB in all) so each call streams from DRAM.
//   threads   scoped_threads installs a pare::thread_pool of t threads as the executor.

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "pare/core/parallel.hpp"
#include "pare/core/rng.hpp"

namespace pare_bench {

constexpr std::size_t cold_total_bytes = std::size_t(512) << 20;

/// Copies of an object of `bytes` needed so that the copies exceed 512 MiB (at least 2).
inline std::size_t cold_copies(std::size_t bytes) {
  const std::size_t n = cold_total_bytes / (bytes ? bytes : 1) + 1;
  return n < 2 ? 2 : n;
}

/// Installs a pare::thread_pool of n threads as pare's executor for its lifetime.
class scoped_threads {
 public:
  explicit scoped_threads(std::size_t n) : pool_(n) { pare::set_executor(&pool_); }
  ~scoped_threads() { pare::set_executor(nullptr); }
  scoped_threads(const scoped_threads&) = delete;
  scoped_threads& operator=(const scoped_threads&) = delete;

 private:
  pare::thread_pool pool_;
};

/// Sets weight_GBps and GOPs for one matmul per iteration.
inline void set_matmul_counters(benchmark::State& s, double weight_bytes, std::size_t m, std::size_t n,
                                std::size_t k) {
  s.counters["weight_GBps"] = benchmark::Counter(weight_bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  s.counters["GOPs"] = benchmark::Counter(2.0 * double(m) * double(n) * double(k) * 1e-9,
                                          benchmark::Counter::kIsIterationInvariantRate);
}

/// Deterministic activation-like data: m × k floats, roughly N(0, 1) with a few outliers.
inline std::vector<float> activations(std::size_t m, std::size_t k, std::uint64_t seed = 7) {
  pare::splitmix64 g(seed);
  std::vector<float> x(m * k);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double u = g.uniform() + g.uniform() + g.uniform() + g.uniform() - 2.0;
    x[i] = static_cast<float>(1.7 * u * ((i % 331) == 0 ? 6.0 : 1.0));
  }
  return x;
}

/// Deterministic weight-like data: n × k floats, roughly uniform sums of scale 0.02.
inline std::vector<float> weights(std::size_t n, std::size_t k, std::uint64_t seed = 42) {
  pare::splitmix64 g(seed);
  std::vector<float> w(n * k);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(0.02 * (g.uniform() + g.uniform() - 1.0));
  return w;
}

}  // namespace pare_bench
