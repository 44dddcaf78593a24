// bench_matmul cases for pare's int8 / int4 kernels and the same-byte-count read-bandwidth baseline.
#pragma once

// int8   per-channel symmetric (weight codes in [-127, 127], fp32 scale per row), and
//        per-group G = 32 for one GEMV.
// int8_preq  the int8 GEMM with activations quantized beforehand (quantize_activations),
//        as oneDNN's u8s8 case receives them.
// int4   G = 128 asymmetric (fp32 scale + fp32 offset per group: 4.5 bits/weight) and G = 32.
// GEMV (M = 1) rotates over cold_copies() packed copies (> 512 MiB) so weights stream from
// DRAM; GEMM uses one copy (compute-bound). read_bw reads the same bytes per iteration as
// the GEMV it sits beside, from a rotating > 512 MiB buffer, with 512-bit loads summed in
// 4 independent accumulators (so it is not compute-bound), split over the same threads.
// gemv_vs_read runs a cold GEMV and a cold read of the same bytes in each iteration, so
// the ratio of the two does not depend on the host's DRAM drifting between cases.
// int8_preq/gemm_l2_weights: the GEMM on a 96-output matrix that stays in L2.

#include <immintrin.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <utility>
#include <string>
#include <vector>

#include "matmul_bench_support.hpp"
#include "pare/kernels/matmul/matmul_int.hpp"

namespace pare_bench {

inline pare::owned_weight_source& source_int8(std::size_t n, std::size_t k, std::size_t group) {
  static std::map<std::tuple<std::size_t, std::size_t, std::size_t>, std::unique_ptr<pare::owned_weight_source>> cache;
  auto& slot = cache[{n, k, group}];
  if (!slot) {
    slot = std::make_unique<pare::owned_weight_source>();
    pare::splitmix64 g(n * 31 + k);
    slot->codes.resize(n * k);
    for (auto& c : slot->codes) c = static_cast<std::uint8_t>(int(g.next() % 255) - 127);  // int8 bytes
    slot->scales.assign(n * (k / group), 0.001f);
    slot->view = pare::weight_source{n, k, group, 8, slot->codes.data(), k, false, 0, slot->scales.data(), nullptr};
  }
  return *slot;
}
inline pare::owned_weight_source& source_int4(std::size_t n, std::size_t k, std::size_t group) {
  static std::map<std::tuple<std::size_t, std::size_t, std::size_t>, std::unique_ptr<pare::owned_weight_source>> cache;
  auto& slot = cache[{n, k, group}];
  if (!slot) {
    slot = std::make_unique<pare::owned_weight_source>();
    pare::splitmix64 g(n * 17 + k);
    slot->codes.resize(n * k);
    for (auto& c : slot->codes) c = static_cast<std::uint8_t>(g.next() % 16);
    slot->scales.assign(n * (k / group), 0.001f);
    slot->offsets.assign(n * (k / group), -0.008f);
    slot->view = pare::weight_source::uint4(n, k, group, slot->codes.data(), slot->scales.data(), slot->offsets.data());
  }
  return *slot;
}

/// `count` copies of packed weights (cold GEMV weights rotate over them).
template <class Packed>
std::vector<Packed> copies_of(const Packed& proto, std::size_t count) {
  std::vector<Packed> copies;
  copies.reserve(count);
  for (std::size_t i = 0; i < count; ++i) copies.push_back(proto);
  return copies;
}

/// One matmul per iteration; `prequantize`: on activations quantized once outside the
/// timing (quantize_activations), the input oneDNN's u8s8 case gets.
template <class Packed>
void run_int(benchmark::State& state, const Packed& proto, std::size_t m, std::size_t threads, bool prequantize = false) {
  scoped_threads pool(threads);
  const std::size_t n = proto.n, k = proto.k;
  const std::vector<Packed> copies = copies_of(proto, m == 1 ? cold_copies(proto.storage_bytes()) : 1);
  const std::size_t ncopies = copies.size();
  const std::vector<float> x = activations(m, k);
  const pare::matrix_view<const float> xv(x.data(), m, k);
  const pare::quantized_activations xa = prequantize ? pare::quantize_activations(xv, proto) : pare::quantized_activations{};
  std::vector<float> y(m * n);
  std::size_t next = 0;
  for (auto _ : state) {
    if (prequantize)
      pare::matmul(xa, copies[next], pare::matrix_view<float>(y.data(), m, n));
    else
      pare::matmul(xv, copies[next], pare::matrix_view<float>(y.data(), m, n));
    next = (next + 1) % ncopies;
    benchmark::DoNotOptimize(y.data());
  }
  set_matmul_counters(state, double(proto.storage_bytes()), m, n, k);
  state.SetLabel(pare::to_string(pare::last_used_isa()));
}

/// Reads `bytes` per iteration from a rotating > 512 MiB buffer.
PARE_TARGET_AVX512BW inline std::int64_t read_chunk(const std::uint8_t* p, std::size_t bytes) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  std::size_t i = 0;
  for (; i + 256 <= bytes; i += 256) {
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 64));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 128));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 192));
  }
  alignas(64) std::int64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
  std::int64_t s = 0;
  for (std::int64_t v : lanes) s += v;
  return s;
}

/// A rotating > 512 MiB buffer of cold copies of `bytes` (rounded up to 4 KiB).
struct cold_read_buffer {
  std::size_t chunk, copies;
  pare::aligned_buffer<std::uint8_t> buf;
  std::size_t next = 0;

  explicit cold_read_buffer(std::size_t bytes)
      : chunk((bytes + 4095) / 4096 * 4096), copies(cold_copies(chunk)), buf(chunk * copies) {
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<std::uint8_t>(i * 131);
  }
  /// Reads the next copy, 256-byte units split over the executor's threads.
  std::int64_t read_next(std::size_t threads) {
    const std::uint8_t* base = buf.data() + next * chunk;
    const std::size_t per = chunk / 256;
    std::vector<std::int64_t> part(threads, 0);
    pare::parallel_for(0, per, 1, [&](std::size_t lo, std::size_t hi) {
      part[lo * threads / per] += read_chunk(base + lo * 256, (hi - lo) * 256);
    });
    next = (next + 1) % copies;
    std::int64_t s = 0;
    for (auto v : part) s += v;
    return s;
  }
};

inline void run_read_bw(benchmark::State& state, std::size_t bytes, std::size_t threads) {
  scoped_threads pool(threads);
  cold_read_buffer rd(bytes);
  std::int64_t sink = 0;
  for (auto _ : state) sink += rd.read_next(threads);
  benchmark::DoNotOptimize(sink);
  state.counters["weight_GBps"] = benchmark::Counter(double(rd.chunk) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

/// GEMV and read_bw alternated in one loop: each iteration runs one cold GEMV (its time is
/// the iteration's, manual timing) and then reads as many cold bytes, so both sample the
/// same seconds of the host's DRAM. Counters: weight_GBps (GEMV), read_GBps, vs_read
/// (GEMV bandwidth / read bandwidth over the whole run).
template <class Packed>
void run_gemv_vs_read(benchmark::State& state, const Packed& proto, std::size_t threads) {
  scoped_threads pool(threads);
  const std::vector<Packed> copies = copies_of(proto, cold_copies(proto.storage_bytes()));
  const std::size_t ncopies = copies.size();
  cold_read_buffer rd(proto.storage_bytes());
  const std::vector<float> x = activations(1, proto.k);
  std::vector<float> y(proto.n);
  std::size_t next = 0;
  std::int64_t sink = 0;
  double gemv_s = 0, read_s = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    pare::matmul(pare::matrix_view<const float>(x.data(), 1, proto.k), copies[next],
                 pare::matrix_view<float>(y.data(), 1, proto.n));
    benchmark::DoNotOptimize(y.data());
    const auto t1 = std::chrono::steady_clock::now();
    sink += rd.read_next(threads);
    const auto t2 = std::chrono::steady_clock::now();
    const double g = std::chrono::duration<double>(t1 - t0).count();
    gemv_s += g;
    read_s += std::chrono::duration<double>(t2 - t1).count();
    state.SetIterationTime(g);
    next = (next + 1) % ncopies;
  }
  benchmark::DoNotOptimize(sink);
  const double iters = double(state.iterations());
  const double gemv_bw = double(proto.storage_bytes()) * iters / gemv_s * 1e-9;
  const double read_bw = double(rd.chunk) * iters / read_s * 1e-9;
  state.counters["weight_GBps"] = gemv_bw;
  state.counters["read_GBps"] = read_bw;
  state.counters["vs_read"] = gemv_bw / read_bw;
  state.SetLabel(pare::to_string(pare::last_used_isa()));
}

inline const bool int_cases_registered = [] {
  const std::size_t k = 4096;
  for (std::size_t threads : {1, 2})
    for (std::size_t n : {4096, 11008}) {
      const std::string shape = "/N:" + std::to_string(n) + "/K:" + std::to_string(k) + "/threads:" + std::to_string(threads);
      auto reg = [&](const std::string& name, auto fn) {
        benchmark::RegisterBenchmark(name.c_str(), fn)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
      };
      // int8 per-channel and int4 g128: GEMV with cold weights beside read_bw of the same bytes, then GEMM.
      const auto p8 = std::make_shared<pare::packed_int8>(pare::pack_int8(source_int8(n, k, k).view));
      const auto p4 = std::make_shared<pare::packed_int4>(pare::pack_int4(source_int4(n, k, 128).view));
      const auto p4g32 = std::make_shared<pare::packed_int4>(pare::pack_int4(source_int4(n, k, 32).view));
      const auto p8g32 = std::make_shared<pare::packed_int8>(pare::pack_int8(source_int8(n, k, 32).view));
      reg("read_bw/bytes:" + std::to_string(p8->storage_bytes()) + "/for:int8" + shape,
          [=](benchmark::State& s) { run_read_bw(s, p8->storage_bytes(), threads); });
      reg("int8/gemv/M:1" + shape, [=](benchmark::State& s) { run_int(s, *p8, 1, threads); });
      reg("int8_g32/gemv/M:1" + shape, [=](benchmark::State& s) { run_int(s, *p8g32, 1, threads); });
      reg("read_bw/bytes:" + std::to_string(p4->storage_bytes()) + "/for:int4_g128" + shape,
          [=](benchmark::State& s) { run_read_bw(s, p4->storage_bytes(), threads); });
      reg("int4_g128/gemv/M:1" + shape, [=](benchmark::State& s) { run_int(s, *p4, 1, threads); });
      reg("int4_g32/gemv/M:1" + shape, [=](benchmark::State& s) { run_int(s, *p4g32, 1, threads); });
      // The bandwidth targets' like-for-like pairs: GEMV and read alternated per iteration.
      for (const auto& [name, fn] : {std::pair<std::string, std::function<void(benchmark::State&)>>{
                                         "int8/gemv_vs_read/M:1", [=](benchmark::State& s) { run_gemv_vs_read(s, *p8, threads); }},
                                     {"int4_g128/gemv_vs_read/M:1", [=](benchmark::State& s) { run_gemv_vs_read(s, *p4, threads); }}})
        benchmark::RegisterBenchmark((name + shape).c_str(), fn)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
      for (std::size_t m : {8, 32, 128, 512}) {
        const std::string ms = "/M:" + std::to_string(m);
        reg("int8/gemm" + ms + shape, [=](benchmark::State& s) { run_int(s, *p8, m, threads); });
        reg("int8_preq/gemm" + ms + shape, [=](benchmark::State& s) { run_int(s, *p8, m, threads, true); });
        reg("int4_g128/gemm" + ms + shape, [=](benchmark::State& s) { run_int(s, *p4, m, threads); });
      }
      reg("int4_g32/gemm/M:128" + shape, [=](benchmark::State& s) { run_int(s, *p4g32, 128, threads); });
    }
  // The int8 GEMM's ceiling: 96 outputs (two 3-tile panels, 384 KiB) stay in L2, so no
  // weight streams from L3 or DRAM; compare its GOP/s with vnni_peak and int8_preq/gemm.
  const auto l2 = std::make_shared<pare::packed_int8>(pare::pack_int8(source_int8(96, k, k).view));
  for (std::size_t m : {128, 512})
    benchmark::RegisterBenchmark(("int8_preq/gemm_l2_weights/M:" + std::to_string(m) + "/N:96/K:4096/threads:1").c_str(),
                                 [=](benchmark::State& s) { run_int(s, *l2, m, 1, true); })
        ->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
  return true;
}();

}  // namespace pare_bench
