// GPTQ timings: one 4096 x 4096 layer from a given Hessian (int4 g128 asym), and XᵀX accumulation in GFLOP/s beside this CPU's fp32 and fp64 FMA peaks in the same run.
//
//   gptq/4096x4096/int4_g128[/act_order]  pare::solvers::gptq_quantize from a ready H
//                                         (H = 2·XᵀX/n of 8192 correlated random tokens,
//                                         built once outside the timing); counter loss_ratio
//                                         = GPTQ's tr(ΔW·H·ΔWᵀ) / RTN's
//   hessian/accumulate/K<k>               linear_input_stats::accumulate, 512 tokens x K,
//                                         XᵀX only (what calibration_capture calls for GPTQ),
//                                         then layer_hessian::from_stats; counter GFLOPs
//                                         (2·K²·n per call)
//   fma_peak/f64, fma_peak/f32            12 independent FMA chains on 256-bit vectors per
//                                         thread (AVX2 + FMA machines; 0 elsewhere)
//   fma_peak/f32_avx512                   the same on 512-bit vectors (AVX-512F machines)
//                                         — the yardsticks for the cases above
// Threads: PARE_NUM_THREADS (pare's pool) and OPENBLAS_NUM_THREADS (the lazy-batch gemm).

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "pare/core/isa.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/rng.hpp"
#include "pare/linalg/lapack.hpp"
#include "pare/quant/quantize.hpp"
#include "pare/solvers/gptq.hpp"
#include "pare/stats/linear_input_stats.hpp"

namespace {

std::vector<float> gaussian(std::size_t n, std::uint64_t seed, double sigma) {
  pare::splitmix64 g(seed);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; i += 2) {
    const double u1 = (double(g.next() >> 11) + 0.5) * 0x1.0p-53, u2 = double(g.next() >> 11) * 0x1.0p-53;
    const double r = sigma * std::sqrt(-2.0 * std::log(u1));
    v[i] = float(r * std::cos(6.283185307179586 * u2));
    if (i + 1 < n) v[i + 1] = float(r * std::sin(6.283185307179586 * u2));
  }
  return v;
}

/// H = 2·XᵀX/n of n tokens of K correlated channels (x_j = z_j + 0.5·z_{j−1}).
pare::solvers::layer_hessian make_hessian(std::size_t n, std::size_t k) {
  const std::vector<float> z = gaussian(n * k, 1, 1.0);
  std::vector<double> x(n * k);
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t j = 0; j < k; ++j) x[t * k + j] = z[t * k + j] + (j ? 0.5 * z[t * k + j - 1] : 0.0);
  std::vector<double> h(k * k);
  pare::lapack::gemm("bench", true, false, k, k, n, 2.0 / double(n), x.data(), x.data(), 0.0, h.data());
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < i; ++j) h[i * k + j] = h[j * k + i] = 0.5 * (h[i * k + j] + h[j * k + i]);
  return pare::solvers::layer_hessian::from_matrix(k, std::move(h));
}

void bm_gptq(benchmark::State& st, bool act_order) {
  const std::size_t k = 4096, rows = 4096;
  static const pare::solvers::layer_hessian h = make_hessian(8192, k);
  static const std::vector<float> w = gaussian(rows * k, 2, 0.02);
  const pare::matrix_view<const float> wv(w.data(), rows, k);
  const pare::quant_config cfg = pare::quant_config::parse("int4:g128:asym");
  pare::solvers::gptq_options opt;
  opt.act_order = act_order;
  double loss = 0;
  for (auto _ : st) {
    const auto r = pare::solvers::gptq_quantize(wv, h, cfg, opt);
    loss = r.error;
    benchmark::DoNotOptimize(r.weight.codes.data());
  }
  const auto q = pare::quantize(wv, cfg);
  const auto d = q.dequantize();
  st.counters["loss_ratio"] = loss / pare::solvers::hessian_error(wv, pare::matrix_view<const float>(d.data(), rows, k), h);
  st.counters["threads"] = double(pare::default_thread_pool().concurrency());
}

void bm_accumulate(benchmark::State& st) {
  const std::size_t k = static_cast<std::size_t>(st.range(0)), n = 512;
  const std::vector<float> x = gaussian(n * k, 3, 1.0);
  pare::linear_input_options o{true, false, ""};
  pare::linear_input_stats s;
  for (auto _ : st) s.accumulate(pare::matrix_view<const float>(x.data(), n, k), o);
  const pare::solvers::layer_hessian h = pare::solvers::layer_hessian::from_stats(s);
  benchmark::DoNotOptimize(h.h.data());
  st.counters["GFLOPs"] = benchmark::Counter(2.0 * double(k) * double(k) * double(n) * double(st.iterations()) * 1e-9,
                                             benchmark::Counter::kIsRate);
}

#if defined(__x86_64__) && defined(__GNUC__)
// One round: 12 independent FMAs (`op` on registers `r`0..11, multiplicands in r15).
#define PARE_FMA12(op, r)                                                                                        \
  "vxorps %%" r "15, %%" r "15, %%" r "15\n\t"                                                                   \
  "1:\n\t" op " %%" r "15, %%" r "15, %%" r "0\n\t" op " %%" r "15, %%" r "15, %%" r "1\n\t" op " %%" r "15, %%" r \
  "15, %%" r "2\n\t" op " %%" r "15, %%" r "15, %%" r "3\n\t" op " %%" r "15, %%" r "15, %%" r "4\n\t" op " %%" r  \
  "15, %%" r "15, %%" r "5\n\t" op " %%" r "15, %%" r "15, %%" r "6\n\t" op " %%" r "15, %%" r "15, %%" r          \
  "7\n\t" op " %%" r "15, %%" r "15, %%" r "8\n\t" op " %%" r "15, %%" r "15, %%" r "9\n\t" op " %%" r "15, %%" r  \
  "15, %%" r "10\n\t" op " %%" r "15, %%" r "15, %%" r "11\n\t"                                                  \
  "dec %0\n\tjnz 1b\n\t"
#define PARE_FMA12_CLOBBERS \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm15", "cc"

__attribute__((target("avx2,fma"))) void fma_rounds_f64(std::int64_t iters) {
  __asm__ volatile(PARE_FMA12("vfmadd231pd", "ymm") : "+r"(iters) : : PARE_FMA12_CLOBBERS);
}
__attribute__((target("avx2,fma"))) void fma_rounds_f32(std::int64_t iters) {
  __asm__ volatile(PARE_FMA12("vfmadd231ps", "ymm") : "+r"(iters) : : PARE_FMA12_CLOBBERS);
}
__attribute__((target("avx512f"))) void fma_rounds_f32_avx512(std::int64_t iters) {
  __asm__ volatile(PARE_FMA12("vfmadd231ps", "zmm") : "+r"(iters) : : PARE_FMA12_CLOBBERS);
}
#endif

/// `lanes` per FMA: 4 (f64 on 256 bits), 8 (f32 on 256 bits), 16 (f32 on 512 bits).
void bm_fma_peak(benchmark::State& st, int lanes, bool avx512) {
  const std::int64_t rounds = 1 << 20;
  const std::size_t threads = pare::default_thread_pool().concurrency();
  bool have = false;
  void (*rounds_fn)(std::int64_t) = nullptr;
#if defined(__x86_64__) && defined(__GNUC__)
  const pare::isa need = avx512 ? pare::isa::avx512bw : pare::isa::avx2;  // avx512bw implies F
  have = (pare::detected_isas() & need) != pare::isa{};
  rounds_fn = avx512 ? fma_rounds_f32_avx512 : lanes == 4 ? fma_rounds_f64 : fma_rounds_f32;
#endif
  if (!have) {
    st.SkipWithError(avx512 ? "no AVX-512F on this CPU" : "no AVX2 on this CPU");
    return;
  }
  for (auto _ : st)
    pare::parallel_for(0, threads, 1, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t t = lo; t < hi; ++t) rounds_fn(rounds);
    });
  // 12 FMAs × lanes × 2 flops per round, per thread.
  st.counters["GFLOPs"] = benchmark::Counter(24.0 * lanes * double(rounds) * double(threads) * double(st.iterations()) * 1e-9,
                                             benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_CAPTURE(bm_gptq, int4_g128, false)->Name("gptq/4096x4096/int4_g128")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK_CAPTURE(bm_gptq, int4_g128_act_order, true)->Name("gptq/4096x4096/int4_g128/act_order")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(bm_accumulate)->Name("hessian/accumulate")->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(bm_fma_peak, f64, 4, false)->Name("fma_peak/f64")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(bm_fma_peak, f32, 8, false)->Name("fma_peak/f32")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(bm_fma_peak, f32_avx512, 16, true)->Name("fma_peak/f32_avx512")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
