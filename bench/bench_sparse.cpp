// 2:4 sparse y = x·Wᵀ (packed_sparse24) beside pare's dense fp32 (packed_f32) and int8 per-channel paths, K = 4096, cold weights, one run.
//
// Cases (names as in matmul_bench_support.hpp: <family>/<op>/M:<m>/N:<n>/K:<k>/threads:<t>):
//   sparse24         pare::matmul(x, packed_sparse24, y), best ISA (label: the ISA that ran);
//                    sparse24_avx2 and sparse24_scalar restrict the dispatch to that level
//   f32              pare::matmul(x, pack_f32(w), y), the dense weights before pruning
//   int8             pare::matmul(x, pack_int8(quantize(w, "int8:per_channel:sym")), y)
//   read_bw          512-bit loads summing exactly the sparse24 matrix's bytes (AVX-512 only)
// Every case rotates over cold_copies(bytes) copies (> 512 MiB in all) so each call streams
// its weights from DRAM. weight_GBps counts the bytes of the format (2:4: K/2 fp32 values +
// K/8 bytes of 2-bit positions per row); GOPs counts 2·M·N·K (dense-equivalent) operations.

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "matmul_bench_support.hpp"
#include "pare/core/aligned_buffer.hpp"
#include "pare/kernels/matmul/matmul_f32.hpp"
#include "pare/kernels/matmul/matmul_int.hpp"
#include "pare/quant/kernel_weights.hpp"
#include "pare/prune/magnitude.hpp"
#include "pare/prune/nm.hpp"
#include "pare/prune/sparse24.hpp"
#include "pare/quant/quant_config.hpp"
#include "pare/quant/quantize.hpp"

#if PARE_HAS_X86_KERNELS
#include <immintrin.h>
#endif

namespace {

using pare_bench::cold_copies;

/// Restricts pare's dispatch to `level` and below for its lifetime (none: no restriction).
class scoped_isa {
 public:
  explicit scoped_isa(pare::isa level) : active_(level != pare::isa::none) {
    if (active_) pare::set_enabled_isas(pare::with_lower_levels(level));
  }
  ~scoped_isa() {
    if (active_) pare::reset_enabled_isas();
  }
  scoped_isa(const scoped_isa&) = delete;
  scoped_isa& operator=(const scoped_isa&) = delete;

 private:
  bool active_;
};

std::size_t bytes_of(const pare::packed_sparse24& p) { return p.storage_bytes(); }
std::size_t bytes_of(const pare::packed_f32& p) { return p.storage_bytes(); }
std::size_t bytes_of(const pare::packed_int8& p) { return p.storage_bytes(); }

/// y = x·Wᵀ over rotating cold copies of `proto`.
template <class Packed>
void run_gemv(benchmark::State& state, const Packed& proto, std::size_t m, pare::isa level) {
  pare_bench::scoped_threads pool(1);
  scoped_isa restrict_isa(level);
  const std::size_t n = proto.n, k = proto.k, ncopies = cold_copies(bytes_of(proto));
  std::vector<Packed> copies(ncopies, proto);
  const std::vector<float> x = pare_bench::activations(m, k);
  std::vector<float> y(m * n);
  std::size_t next = 0;
  for (auto _ : state) {
    pare::matmul(pare::matrix_view<const float>(x.data(), m, k), copies[next], pare::matrix_view<float>(y.data(), m, n));
    next = (next + 1) % ncopies;
    benchmark::DoNotOptimize(y.data());
  }
  pare_bench::set_matmul_counters(state, double(bytes_of(proto)), m, n, k);
  state.SetLabel(pare::to_string(pare::last_used_isa()));
}

#if PARE_HAS_X86_KERNELS
PARE_TARGET_AVX512BW std::int64_t read_chunk(const std::uint8_t* p, std::size_t bytes) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (std::size_t i = 0; i + 256 <= bytes; i += 256) {
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

/// Reads `bytes` per iteration from a rotating > 512 MiB buffer (one thread).
void run_read_bw(benchmark::State& state, std::size_t bytes) {
  const std::size_t chunk = (bytes + 4095) / 4096 * 4096, ncopies = cold_copies(chunk);
  pare::aligned_buffer<std::uint8_t> buf(chunk * ncopies);
  for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<std::uint8_t>(i * 131);
  std::size_t next = 0;
  std::int64_t sink = 0;
  for (auto _ : state) {
    sink += read_chunk(buf.data() + next * chunk, chunk);
    next = (next + 1) % ncopies;
  }
  benchmark::DoNotOptimize(sink);
  state.counters["weight_GBps"] = benchmark::Counter(double(chunk) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
#endif

const bool registered = [] {
  const std::size_t k = 4096;
  for (std::size_t n : {4096, 11008}) {
    const std::vector<float> w = pare_bench::weights(n, k);
    const pare::matrix_view<const float> wv(w.data(), n, k);
    // 2:4 by magnitude, packed; the dense fp32 and int8 forms of the unpruned weights.
    const pare::prune::mask m24 = pare::prune::nm_mask(pare::prune::magnitude{}(wv), 2, 4);
    const auto sp = std::make_shared<pare::packed_sparse24>(pare::pack_sparse24(wv, m24));
    const auto f32 = std::make_shared<pare::packed_f32>(pare::pack_f32(wv));
    const auto i8 = std::make_shared<pare::packed_int8>(
        pare::pack_int8(pare::quantize(wv, pare::quant_config::parse("int8:per_channel:sym"))));
    for (std::size_t mrows : {1, 4}) {
      const std::string shape = "/M:" + std::to_string(mrows) + "/N:" + std::to_string(n) + "/K:" + std::to_string(k) +
                                "/threads:1";
      const std::string op = mrows == 1 ? "/gemv" : "/gemm";
      auto reg = [&](const std::string& name, auto fn) {
        benchmark::RegisterBenchmark(name.c_str(), fn)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
      };
#if PARE_HAS_X86_KERNELS
      if (mrows == 1 && pare::has(pare::detected_isas(), pare::isa::avx512bw))
        reg("read_bw/bytes:" + std::to_string(sp->storage_bytes()) + "/for:sparse24" + shape,
            [=](benchmark::State& s) { run_read_bw(s, sp->storage_bytes()); });
#endif
      reg("sparse24" + op + shape, [=](benchmark::State& s) { run_gemv(s, *sp, mrows, pare::isa::none); });
      if (pare::has(pare::detected_isas(), pare::isa::avx2))
        reg("sparse24_avx2" + op + shape, [=](benchmark::State& s) { run_gemv(s, *sp, mrows, pare::isa::avx2); });
      if (mrows == 1)
        reg("sparse24_scalar" + op + shape, [=](benchmark::State& s) { run_gemv(s, *sp, mrows, pare::isa::scalar); });
      reg("f32" + op + shape, [=](benchmark::State& s) { run_gemv(s, *f32, mrows, pare::isa::none); });
      reg("int8" + op + shape, [=](benchmark::State& s) { run_gemv(s, *i8, mrows, pare::isa::none); });
    }
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
