// Quantize / dequantize / fake-quant throughput on a 4096 x 4096 fp32 matrix, per ISA variant and thread count, against
// memcpy.
//
// The matrix (64 MiB) and every output are larger than the L3 cache, so each iteration
// streams from DRAM. Every benchmark reports bytes_per_second of fp32 data (64 MiB per
// iteration, whatever the direction) so the figures compare directly with the memcpy
// row of the same thread count. Each variant is checked against the scalar reference
// on a few rows before it is timed.
//
// The matrix-level loops below are written here: when this benchmark was written,
// pare::quantize / pare::fake_quantize (pare/quant/quantize.hpp) did not compile yet.
// They do what those drivers do for per-row and per-group configs: per row, scan_row
// for min/max (per group for g128), pare::params_from_range, then the row kernel while
// the row is still in L1; rows are split with pare::parallel_for. Dequantize and
// fake-quant write the whole 64 MiB matrix, so they use the *_streaming row kernels
// (non-temporal stores, same results); the *_cached rows time the regular kernels.
// memcpy is timed as one call per thread and as one call per 16 KiB row.
//   int8 per-channel  = "int8:per_channel:sym"  (minmax)
//   int4 g128         = "int4:g128:asym"        (minmax, packed nibbles)

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/isa.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/rng.hpp"
#include "pare/kernels/quantize_row.hpp"
#include "pare/quant/affine.hpp"

namespace {

namespace pk = pare::kernels;

constexpr std::size_t rows = 4096, cols = 4096, group4 = 128, groups4 = cols / group4;
constexpr std::int64_t matrix_bytes = std::int64_t(rows * cols * sizeof(float));
constexpr std::size_t row_grain = 8;  // rows per parallel chunk at least (128 KiB of fp32)
const pare::int_format int8{8, true}, int4{4, true};

struct workspace {
  pare::aligned_buffer<float> w{rows * cols}, y{rows * cols};
  pare::aligned_buffer<std::uint8_t> q8{rows * cols}, q4{rows * cols / 2};
  std::vector<float> s8 = std::vector<float>(rows), inv8 = std::vector<float>(rows);
  std::vector<std::int32_t> z8 = std::vector<std::int32_t>(rows);
  std::vector<float> s4 = std::vector<float>(rows * groups4), inv4 = std::vector<float>(rows * groups4);
  std::vector<std::int32_t> z4 = std::vector<std::int32_t>(rows * groups4);

  workspace() {
    pare::splitmix64 g(42);  // weight-like data: uniform sums, a few outliers
    for (std::size_t i = 0; i < rows * cols; ++i) {
      const double u = g.uniform() + g.uniform() + g.uniform() - 1.5;
      w[i] = static_cast<float>(0.02 * u * ((i % 997) == 0 ? 8.0 : 1.0));
    }
  }
  pk::row_qparams p8(std::size_t r) const { return {&s8[r], &inv8[r], &z8[r], cols, int8.qmin(), int8.qmax()}; }
  pk::row_qparams p4(std::size_t r) const {
    const std::size_t k = r * groups4;
    return {&s4[k], &inv4[k], &z4[k], group4, int4.qmin(), int4.qmax()};
  }
};

workspace& ws() {
  static workspace w;
  return w;
}

void set_params(float* s, float* inv, std::int32_t* z, const pk::row_stats& st, pare::int_format f,
                pare::scheme_kind scheme) {
  const pare::qparams q = pare::params_from_range(st.min, st.max, f, scheme);
  *s = q.scale;
  *inv = pare::inverse_scale(q.scale);
  *z = q.zero_point;
}

// (row-range kernels; each is run over all rows by parallel_for)
void choose_int8(workspace& d, std::size_t r) {
  set_params(&d.s8[r], &d.inv8[r], &d.z8[r], pk::scan_row(d.w.data() + r * cols, cols), int8,
             pare::scheme_kind::symmetric);
}
void choose_int4(workspace& d, std::size_t r) {
  for (std::size_t g = 0; g < groups4; ++g) {
    const std::size_t k = r * groups4 + g;
    set_params(&d.s4[k], &d.inv4[k], &d.z4[k], pk::scan_row(d.w.data() + r * cols + g * group4, group4), int4,
               pare::scheme_kind::asymmetric);
  }
}

void memcpy_whole(workspace& d, std::size_t lo, std::size_t hi) {
  std::memcpy(d.y.data() + lo * cols, d.w.data() + lo * cols, (hi - lo) * cols * sizeof(float));
}
void memcpy_rows(workspace& d, std::size_t lo, std::size_t hi) {
  for (std::size_t r = lo; r < hi; ++r) std::memcpy(d.y.data() + r * cols, d.w.data() + r * cols, cols * sizeof(float));
}
void quantize_int8(workspace& d, std::size_t lo, std::size_t hi) {
  for (std::size_t r = lo; r < hi; ++r) {
    choose_int8(d, r);
    pk::quantize_row(d.w.data() + r * cols, cols, d.p8(r), d.q8.data() + r * cols);
  }
}
void quantize_int4(workspace& d, std::size_t lo, std::size_t hi) {
  for (std::size_t r = lo; r < hi; ++r) {
    choose_int4(d, r);
    pk::quantize_row_int4(d.w.data() + r * cols, cols, d.p4(r), d.q4.data() + r * cols / 2);
  }
}
template <bool Stream>
void dequantize_int8(workspace& d, std::size_t lo, std::size_t hi) {
  for (std::size_t r = lo; r < hi; ++r) {
    if (Stream)
      pk::dequantize_row_streaming(d.q8.data() + r * cols, cols, d.p8(r), true, d.y.data() + r * cols);
    else
      pk::dequantize_row(d.q8.data() + r * cols, cols, d.p8(r), true, d.y.data() + r * cols);
  }
}
template <bool Stream>
void dequantize_int4(workspace& d, std::size_t lo, std::size_t hi) {
  for (std::size_t r = lo; r < hi; ++r) {
    if (Stream)
      pk::dequantize_row_int4_streaming(d.q4.data() + r * cols / 2, cols, d.p4(r), true, d.y.data() + r * cols);
    else
      pk::dequantize_row_int4(d.q4.data() + r * cols / 2, cols, d.p4(r), true, d.y.data() + r * cols);
  }
}
template <bool Stream>
void fake_quant_int8(workspace& d, std::size_t lo, std::size_t hi) {
  for (std::size_t r = lo; r < hi; ++r) {
    choose_int8(d, r);
    if (Stream)
      pk::fake_quant_row_streaming(d.w.data() + r * cols, cols, d.p8(r), d.y.data() + r * cols);
    else
      pk::fake_quant_row(d.w.data() + r * cols, cols, d.p8(r), d.y.data() + r * cols);
  }
}
template <bool Stream>
void fake_quant_int4(workspace& d, std::size_t lo, std::size_t hi) {
  for (std::size_t r = lo; r < hi; ++r) {
    choose_int4(d, r);
    if (Stream)
      pk::fake_quant_row_streaming(d.w.data() + r * cols, cols, d.p4(r), d.y.data() + r * cols);
    else
      pk::fake_quant_row(d.w.data() + r * cols, cols, d.p4(r), d.y.data() + r * cols);
  }
}

// Compares rows of the last run with the scalar reference.
bool verify(const std::string& op, workspace& d) {
  std::vector<std::uint8_t> c(cols);
  std::vector<float> f(cols);
  for (std::size_t r : {std::size_t(0), std::size_t(1777), rows - 1}) {
    const float* x = d.w.data() + r * cols;
    float* y = d.y.data() + r * cols;
    bool ok = true;
    if (op.rfind("quantize_int8", 0) == 0) {
      pk::ref::quantize_row(x, cols, d.p8(r), c.data());
      ok = std::memcmp(c.data(), d.q8.data() + r * cols, cols) == 0;
    } else if (op.rfind("quantize_int4_g128", 0) == 0) {
      pk::ref::quantize_row_int4(x, cols, d.p4(r), c.data());
      ok = std::memcmp(c.data(), d.q4.data() + r * cols / 2, cols / 2) == 0;
    } else if (op.rfind("dequantize_int8", 0) == 0) {
      pk::ref::dequantize_row(d.q8.data() + r * cols, cols, d.p8(r), true, f.data());
      ok = std::memcmp(f.data(), y, cols * sizeof(float)) == 0;
    } else if (op.rfind("dequantize_int4_g128", 0) == 0) {
      pk::ref::dequantize_row_int4(d.q4.data() + r * cols / 2, cols, d.p4(r), true, f.data());
      ok = std::memcmp(f.data(), y, cols * sizeof(float)) == 0;
    } else if (op.rfind("fake_quant_int8", 0) == 0) {
      pk::ref::fake_quant_row(x, cols, d.p8(r), f.data());
      ok = std::memcmp(f.data(), y, cols * sizeof(float)) == 0;
    } else if (op.rfind("fake_quant_int4_g128", 0) == 0) {
      pk::ref::fake_quant_row(x, cols, d.p4(r), f.data());
      ok = std::memcmp(f.data(), y, cols * sizeof(float)) == 0;
    } else {
      ok = std::memcmp(x, y, cols * sizeof(float)) == 0;
    }
    if (!ok) return false;
  }
  return true;
}

using row_range_fn = void (*)(workspace&, std::size_t, std::size_t);

void run(benchmark::State& state, const std::string& op, row_range_fn fn, pare::isa level, std::size_t threads) {
  workspace& d = ws();
  pare::thread_pool pool(threads);
  pare::set_executor(&pool);
  pare::set_enabled_isas(pare::with_lower_levels(level));
  auto whole = [&] { pare::parallel_for(0, rows, row_grain, [&](std::size_t lo, std::size_t hi) { fn(d, lo, hi); }); };
  whole();
  const pare::isa used = pare::last_used_isa();
  if (!verify(op, d)) {
    state.SkipWithError("result differs from the scalar reference");
  } else {
    for (auto _ : state) {
      whole();
      benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * matrix_bytes);
    if (op.rfind("memcpy", 0) != 0) state.SetLabel(pare::to_string(used));
  }
  pare::set_executor(nullptr);
  pare::reset_enabled_isas();
}

void register_all() {
  // Codes and parameters for the dequantize benchmarks (best variant; all are bit-identical).
  workspace& d = ws();
  quantize_int8(d, 0, rows);
  quantize_int4(d, 0, rows);

  struct op_entry {
    const char* name;
    row_range_fn fn;
    bool every_isa;  // else only the best variant
  };
  const op_entry ops[] = {
      {"quantize_int8", quantize_int8, true},
      {"quantize_int4_g128", quantize_int4, true},
      {"dequantize_int8", dequantize_int8<true>, true},
      {"dequantize_int4_g128", dequantize_int4<true>, true},
      {"fake_quant_int8", fake_quant_int8<true>, true},
      {"fake_quant_int4_g128", fake_quant_int4<true>, true},
      {"dequantize_int8_cached", dequantize_int8<false>, false},
      {"dequantize_int4_g128_cached", dequantize_int4<false>, false},
      {"fake_quant_int8_cached", fake_quant_int8<false>, false},
      {"fake_quant_int4_g128_cached", fake_quant_int4<false>, false},
  };
  const pare::isa variants[] = {pare::isa::avx512bw, pare::isa::avx2, pare::isa::sse4_1, pare::isa::neon,
                                pare::isa::scalar};
  for (std::size_t threads : {1, 2}) {
    const std::string t = "/threads:" + std::to_string(threads);
    for (auto [name, fn] : {std::pair<const char*, row_range_fn>{"memcpy", memcpy_whole}, {"memcpy_rows", memcpy_rows}})
      benchmark::RegisterBenchmark(
          (name + t).c_str(), [=, fn = fn](benchmark::State& s) { run(s, "memcpy", fn, pare::isa::scalar, threads); })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    for (const op_entry& op : ops) {
      bool first = true;
      for (pare::isa level : variants) {
        if (!pare::has(pare::detected_isas(), level) || (!op.every_isa && !first)) continue;
        first = false;
        const std::string isa_name = level == pare::isa::scalar ? "ref" : pare::to_string(level);
        const std::string name = std::string(op.name) + "/" + isa_name + t;
        const std::string op_name = op.name;
        const row_range_fn fn = op.fn;
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) { run(s, op_name, fn, level, threads); })
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
