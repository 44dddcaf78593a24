// bench_matmul case vnni_peak: the vpdpbusd throughput of this CPU in the same run, the yardstick of the integer GEMMs.
#pragma once

// 12 independent accumulators (more than latency × throughput on current cores), u8×s8
// zmm vpdpbusd only, no memory operands: GOPs counts 2·64 operations per instruction,
// per thread, split over the same thread pool as the matmul cases. Where the machine
// has no AVX-512 VNNI the case reports 0.

#include <cstddef>
#include <cstdint>
#include <string>

#include "matmul_bench_support.hpp"
#include "pare/core/isa.hpp"

namespace pare_bench {

#if PARE_HAS_X86_KERNELS && defined(__GNUC__)
/// Runs `iters` rounds of 12 vpdpbusd on registers.
PARE_TARGET_AVX512VNNI inline void dpbusd_rounds(std::int64_t iters) {
  __asm__ volatile(
      "vpxord %%zmm30, %%zmm30, %%zmm30\n\t"
      "vpternlogd $0xff, %%zmm31, %%zmm31, %%zmm31\n\t"
      "1:\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm0\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm1\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm2\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm3\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm4\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm5\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm6\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm7\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm8\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm9\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm10\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm11\n\t"
      "dec %0\n\tjnz 1b\n\t"
      : "+r"(iters)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm30", "xmm31");
}

inline void run_vnni_peak(benchmark::State& state, std::size_t threads) {
  scoped_threads pool(threads);
  const bool ok = pare::has(pare::detected_isas(), pare::isa::avx512vnni);
  constexpr std::int64_t rounds = 1 << 20;  // per thread and iteration
  for (auto _ : state)
    if (ok) pare::parallel_for(0, threads, 1, [&](std::size_t lo, std::size_t hi) { dpbusd_rounds(rounds * std::int64_t(hi - lo)); });
  state.counters["GOPs"] = benchmark::Counter(ok ? double(rounds) * double(threads) * 12 * 128 * 1e-9 : 0.0,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

inline const bool peak_cases_registered = [] {
  for (std::size_t threads : {1, 2})
    benchmark::RegisterBenchmark(("vnni_peak/threads:" + std::to_string(threads)).c_str(),
                                 [=](benchmark::State& s) { run_vnni_peak(s, threads); })
        ->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.2);
  return true;
}();
#endif

}  // namespace pare_bench
