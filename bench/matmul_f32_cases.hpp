// bench_matmul cases for pare's fp32 path (packed_f32 + FMA kernels), same shapes and cold-weight rule as the integer cases.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "matmul_bench_support.hpp"
#include "pare/kernels/matmul/matmul_f32.hpp"

namespace pare_bench {

inline void run_f32(benchmark::State& state, const std::shared_ptr<pare::packed_f32>& proto, std::size_t m,
                    std::size_t threads) {
  scoped_threads pool(threads);
  const std::size_t n = proto->n, k = proto->k;
  const std::size_t ncopies = m == 1 ? cold_copies(proto->storage_bytes()) : 1;
  std::vector<pare::packed_f32> copies;
  for (std::size_t i = 0; i < ncopies; ++i) {
    pare::packed_f32 c;
    c.n = n;
    c.k = k;
    c.tiles = proto->tiles;
    c.data = proto->data;
    copies.push_back(std::move(c));
  }
  const std::vector<float> x = activations(m, k);
  std::vector<float> y(m * n);
  std::size_t next = 0;
  for (auto _ : state) {
    pare::matmul(pare::matrix_view<const float>(x.data(), m, k), copies[next], pare::matrix_view<float>(y.data(), m, n));
    next = (next + 1) % ncopies;
    benchmark::DoNotOptimize(y.data());
  }
  set_matmul_counters(state, double(proto->storage_bytes()), m, n, k);
  state.SetLabel(pare::to_string(pare::last_used_isa()));
}

inline const bool f32_cases_registered = [] {
  const std::size_t k = 4096;
  for (std::size_t threads : {1, 2})
    for (std::size_t n : {4096, 11008}) {
      const std::vector<float> w = weights(n, k);
      const auto p = std::make_shared<pare::packed_f32>(pare::pack_f32(pare::matrix_view<const float>(w.data(), n, k)));
      for (std::size_t m : {1, 8, 32, 128, 512}) {
        const std::string name = std::string("f32/") + (m == 1 ? "gemv" : "gemm") + "/M:" + std::to_string(m) +
                                 "/N:" + std::to_string(n) + "/K:" + std::to_string(k) + "/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) { run_f32(s, p, m, threads); })
            ->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
      }
    }
  return true;
}();

}  // namespace pare_bench
