// bench_matmul paired case: pare's int8 GEMM (fp32 and pre-quantized x) and oneDNN's u8s8 matmul alternated per iteration.
#pragma once

// The int8 GEMM target is a ratio to oneDNN "in the same run". Separate cases sample
// different seconds of a shared host whose speed drifts 5-10 % between minutes; here
// each iteration runs, in turn, a block of pare::matmul calls on fp32 x, a block on x
// quantized beforehand, a block of oneDNN u8s8 calls on u8 x, and a block of oneDNN
// calls that first quantize the same fp32 x with a oneDNN reorder (onednn_u8s8::run_f32),
// so the four sample the same seconds. A block first calls the library untimed for
// warm_time (at least once), then times calls back to back for block_time (at least once): the weights are as warm as in
// the separate cases, the library's own workers are awake, and the previous library's
// idle workers have gone to sleep (libgomp's spin for milliseconds by default, pare's
// pool for 200 µs) instead of sharing the cores with the timed calls.
// Counters: GOPs (pare, fp32 x; the iteration's time is its mean per call), preq_GOPs,
// onednn_GOPs, onednn_f32_GOPs, and the time ratios (oneDNN time / pare time per call
// over the run: > 1 means pare is faster) preq_vs_onednn (both on quantized x),
// vs_onednn_f32 (both on fp32 x) and vs_onednn (pare on fp32 x, oneDNN on u8 x).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "matmul_int_cases.hpp"
#include "matmul_peer_cases.hpp"

namespace pare_bench {

#if defined(PARE_BENCH_HAVE_DNNL)
constexpr std::chrono::milliseconds warm_time{10}, block_time{20};

/// Seconds and number of timed calls of one library over the run.
struct call_clock {
  double seconds = 0;
  std::size_t calls = 0;

  /// One block: untimed calls for warm_time, then timed calls for block_time; returns
  /// this block's seconds per call.
  template <class Call>
  double block(Call&& call) {
    using clock = std::chrono::steady_clock;
    const auto warm_end = clock::now() + warm_time;
    do call(); while (clock::now() < warm_end);
    const auto t0 = clock::now();
    std::size_t n = 0;
    auto t = t0;
    do {
      call();
      ++n;
      t = clock::now();
    } while (t - t0 < block_time);
    const double s = std::chrono::duration<double>(t - t0).count();
    seconds += s;
    calls += n;
    return s / double(n);
  }
  double per_call() const { return seconds / double(calls); }
};

inline void run_int8_vs_onednn(benchmark::State& state, const pare::packed_int8& w, std::size_t m, std::size_t threads) {
  const std::size_t n = w.n, k = w.k;
  onednn_u8s8 dnn(m, n, k, threads, false);
  scoped_threads pool(threads);
  const std::vector<float> x = activations(m, k);
  const pare::matrix_view<const float> xv(x.data(), m, k);
  const pare::quantized_activations xa = pare::quantize_activations(xv, w);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  dnn.take_f32(x.data(), amax / 127.0f);
  std::vector<float> y(m * n);
  const pare::matrix_view<float> yv(y.data(), m, n);
  call_clock fp32, preq, onednn, onednn_f32;
  for (auto _ : state) {
    state.SetIterationTime(fp32.block([&] {
      pare::matmul(xv, w, yv);
      benchmark::DoNotOptimize(y.data());
    }));
    preq.block([&] {
      pare::matmul(xa, w, yv);
      benchmark::DoNotOptimize(y.data());
    });
    onednn.block([&] { dnn.run(); });
    onednn_f32.block([&] { dnn.run_f32(); });
  }
  const double ops = 2.0 * double(m) * double(n) * double(k) * 1e-9;
  state.counters["GOPs"] = ops / fp32.per_call();
  state.counters["preq_GOPs"] = ops / preq.per_call();
  state.counters["onednn_GOPs"] = ops / onednn.per_call();
  state.counters["onednn_f32_GOPs"] = ops / onednn_f32.per_call();
  state.counters["vs_onednn"] = onednn.per_call() / fp32.per_call();
  state.counters["preq_vs_onednn"] = onednn.per_call() / preq.per_call();
  state.counters["vs_onednn_f32"] = onednn_f32.per_call() / fp32.per_call();
  state.SetLabel(pare::to_string(pare::last_used_isa()));
}

inline const bool paired_cases_registered = [] {
  const std::size_t k = 4096;
  for (std::size_t threads : {1, 2})
    for (std::size_t n : {4096, 11008}) {
      const auto p8 = std::make_shared<pare::packed_int8>(pare::pack_int8(source_int8(n, k, k).view));
      for (std::size_t m : {32, 128, 512}) {
        const std::string name = "int8_vs_onednn/gemm/M:" + std::to_string(m) + "/N:" + std::to_string(n) +
                                 "/K:" + std::to_string(k) + "/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) { run_int8_vs_onednn(s, *p8, m, threads); })
            ->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(6);
      }
    }
  return true;
}();
#endif

}  // namespace pare_bench
