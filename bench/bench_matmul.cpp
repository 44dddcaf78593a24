// Matmul benchmarks y = x·Wᵀ (K = 4096): pare's int8/int4/fp32 kernels beside a read-bandwidth loop and peer libraries.
//
// One binary so every figure comes from the same run. Each family registers its cases
// from its own header (see matmul_bench_support.hpp for names, counters and the cold-
// weight rule); a header that is not there yet is skipped.

#include <benchmark/benchmark.h>

#include "matmul_bench_support.hpp"

#include "matmul_int_cases.hpp"
#if __has_include("matmul_read_bw_cases.hpp")
#include "matmul_read_bw_cases.hpp"
#endif
#if __has_include("matmul_int8_cases.hpp")
#include "matmul_int8_cases.hpp"
#endif
#if __has_include("matmul_int4_cases.hpp")
#include "matmul_int4_cases.hpp"
#endif
#if __has_include("matmul_f32_cases.hpp")
#include "matmul_f32_cases.hpp"
#endif
#if __has_include("matmul_peak_cases.hpp")
#include "matmul_peak_cases.hpp"
#endif
#if __has_include("matmul_peer_cases.hpp")
#include "matmul_peer_cases.hpp"
#endif
#include "matmul_paired_cases.hpp"

BENCHMARK_MAIN();
