// bench_matmul peer baselines: OpenBLAS sgemv/sgemm (fp32) and oneDNN u8s8→f32 int8 matmul, where installed.
#pragma once

// Same shapes and cold-weight rule as pare's cases. oneDNN: src u8 [M, K], weights s8
// [K, N] in the layout oneDNN picks (format_tag::any, reordered once outside the timed
// loop), per-output-channel fp32 output scales, dst f32 [M, N]; the activations are
// already u8 (the quantization pare does inside its call is not timed for oneDNN), except
// in the paired case's run_f32, which quantizes fp32 x with a oneDNN reorder first.
// Threads: OpenBLAS via openblas_set_num_threads, oneDNN (OpenMP build) via
// omp_set_num_threads.

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "matmul_bench_support.hpp"

#if defined(PARE_BENCH_HAVE_OPENBLAS)
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
#endif
#if defined(PARE_BENCH_HAVE_DNNL)
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace pare_bench {

#if defined(PARE_BENCH_HAVE_OPENBLAS)
inline void run_openblas(benchmark::State& state, std::size_t m, std::size_t n, std::size_t k, std::size_t threads) {
  openblas_set_num_threads(int(threads));
  const std::size_t bytes = n * k * sizeof(float), ncopies = m == 1 ? cold_copies(bytes) : 1;
  std::vector<std::vector<float>> w(ncopies, weights(n, k));
  const std::vector<float> x = activations(m, k);
  std::vector<float> y(m * n);
  std::size_t next = 0;
  for (auto _ : state) {
    if (m == 1)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, int(n), int(k), 1.0f, w[next].data(), int(k), x.data(), 1, 0.0f, y.data(), 1);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f, x.data(), int(k),
                  w[next].data(), int(k), 0.0f, y.data(), int(n));
    next = (next + 1) % ncopies;
    benchmark::DoNotOptimize(y.data());
  }
  set_matmul_counters(state, double(bytes), m, n, k);
}
#endif

#if defined(PARE_BENCH_HAVE_DNNL)
/// oneDNN u8s8→f32 matmul y [M, N] = x [M, K]·W (W s8 in oneDNN's chosen layout, reordered
/// once here), with `copies` copies of W to rotate over; run() executes one call on the
/// next copy with `threads` OpenMP threads. take_f32(x, scale) adds an fp32 input: then
/// run_f32() first quantizes it into the u8 source with a oneDNN reorder (u8 = x / scale
/// + 128, one given scale for the tensor: oneDNN 2.6 has no dynamic quantization, so the
/// pass that finds max |x| is not timed for it), then runs the matmul.
struct onednn_u8s8 {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::size_t m, n, k, threads;
  dnnl::matmul::primitive_desc pd;
  std::vector<dnnl::memory> wcopies;
  std::vector<std::uint8_t> xs;
  std::vector<float> y;
  dnnl::memory src, dst, src_f32;
  dnnl::matmul prim;
  dnnl::reorder quantize;
  std::size_t next = 0;

  onednn_u8s8(std::size_t m_, std::size_t n_, std::size_t k_, std::size_t threads_, bool cold)
      : m(m_), n(n_), k(k_), threads(threads_) {
    using namespace dnnl;
    omp_set_num_threads(int(threads));
    const memory::dims src_d{memory::dim(m), memory::dim(k)}, wei_d{memory::dim(k), memory::dim(n)},
        dst_d{memory::dim(m), memory::dim(n)};
    const memory::desc src_md(src_d, memory::data_type::u8, memory::format_tag::ab);
    const memory::desc wei_any(wei_d, memory::data_type::s8, memory::format_tag::any);
    const memory::desc dst_md(dst_d, memory::data_type::f32, memory::format_tag::ab);
    primitive_attr attr;
    attr.set_output_scales(2, std::vector<float>(n, 0.001f));
    pd = matmul::primitive_desc(matmul::desc(src_md, wei_any, dst_md), attr, eng);
    const memory::desc wei_plain(wei_d, memory::data_type::s8, memory::format_tag::ba);  // [N, K] row-major
    std::vector<std::int8_t> wsrc(n * k);
    for (std::size_t i = 0; i < wsrc.size(); ++i) wsrc[i] = static_cast<std::int8_t>(int(i * 2654435761u % 255) - 127);
    memory plain(wei_plain, eng, wsrc.data());
    const std::size_t ncopies = cold ? cold_copies(pd.weights_desc().get_size()) : 1;
    for (std::size_t i = 0; i < ncopies; ++i) {
      wcopies.emplace_back(pd.weights_desc(), eng);
      reorder(plain, wcopies.back()).execute(strm, plain, wcopies.back());
    }
    strm.wait();
    xs.resize(m * k);
    for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<std::uint8_t>(i * 40503u % 256);
    src = memory(src_md, eng, xs.data());
    y.resize(m * n);
    dst = memory(dst_md, eng, y.data());
    prim = matmul(pd);
  }
  void take_f32(const float* x, float scale) {
    using namespace dnnl;
    const memory::desc f32_md({memory::dim(m), memory::dim(k)}, memory::data_type::f32, memory::format_tag::ab);
    src_f32 = memory(f32_md, eng, const_cast<float*>(x));
    primitive_attr attr;
    attr.set_output_scales(0, {1.0f / scale});
    attr.set_zero_points(DNNL_ARG_DST, 0, {128});
    quantize = reorder(reorder::primitive_desc(eng, f32_md, eng, src.get_desc(), attr));
  }
  void run() {
    omp_set_num_threads(int(threads));
    prim.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wcopies[next]}, {DNNL_ARG_DST, dst}});
    strm.wait();
    next = (next + 1) % wcopies.size();
  }
  void run_f32() {
    omp_set_num_threads(int(threads));
    quantize.execute(strm, src_f32, src);  // in order on the stream, before run()'s matmul
    run();
  }
};

inline void run_onednn(benchmark::State& state, std::size_t m, std::size_t n, std::size_t k, std::size_t threads) {
  onednn_u8s8 dnn(m, n, k, threads, m == 1);
  for (auto _ : state) dnn.run();
  set_matmul_counters(state, double(n * k + n * sizeof(float)), m, n, k);
}
#endif

inline const bool peer_cases_registered = [] {
  const std::size_t k = 4096;
  for (std::size_t threads : {1, 2})
    for (std::size_t n : {4096, 11008})
      for (std::size_t m : {1, 8, 32, 128, 512}) {
        const std::string kind = m == 1 ? "gemv" : "gemm";
        const std::string shape = "/M:" + std::to_string(m) + "/N:" + std::to_string(n) + "/K:" + std::to_string(k) +
                                  "/threads:" + std::to_string(threads);
        (void)kind;
        (void)shape;
#if defined(PARE_BENCH_HAVE_OPENBLAS)
        benchmark::RegisterBenchmark(("openblas/" + kind + shape).c_str(),
                                     [=](benchmark::State& s) { run_openblas(s, m, n, k, threads); })
            ->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
#endif
#if defined(PARE_BENCH_HAVE_DNNL)
        benchmark::RegisterBenchmark(("onednn_u8s8/" + kind + shape).c_str(),
                                     [=](benchmark::State& s) { run_onednn(s, m, n, k, threads); })
            ->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
#endif
      }
  return true;
}();

}  // namespace pare_bench
