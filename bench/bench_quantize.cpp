// Quantize / dequantize / fake-quant throughput of a 4096 x 4096 fp32 matrix through pare's public API, beside memcpy.
//
// The matrix (64 MiB) and every output are larger than the 32 MiB L3, so each iteration
// streams from DRAM. Every benchmark reports bytes_per_second of fp32 data (64 MiB per
// iteration, whatever the direction), so the figures compare directly with the memcpy
// row of the same thread count. Configs:
//   int8 per-channel = "int8:per_channel:sym"   (minmax)
//   int4 g128        = "int4:g128:asym"         (minmax, packed nibbles)
// Calls (one per iteration):
//   quantize     q = pare::quantize(w, cfg, std::move(q))   (recycles q's buffers)
//   dequantize   q.dequantize_into(y)                        (streaming stores: y is 64 MiB)
//   fake_quant   pare::fake_quantize(w, cfg, y)
// Rows are split over a pare::thread_pool of 1 or 2 threads. Each ISA variant is
// restricted with pare::set_enabled_isas; before timing, its output is compared byte for
// byte with the scalar variant's.
//
// row/<kernel>/g<G>/<isa>: the row kernels of pare/kernels/quantize_row.hpp alone, on one
// row of 4093 floats (16 KiB, in L1/L2; odd, so every call also runs the tails) with
// group size G = 1 (per element), 2 (narrower than a vector: expanded parameters) or
// 128; one thread. These measure the kernels' code where the matrix cases above measure
// DRAM. bytes_per_second counts the row's fp32 data (4093 * 4 bytes per call).

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "pare/core/aligned_buffer.hpp"
#include "pare/core/isa.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/rng.hpp"
#include "pare/kernels/quantize_row.hpp"
#include "pare/quant/quantize.hpp"

namespace {

constexpr std::size_t rows = 4096, cols = 4096;
constexpr std::int64_t matrix_bytes = std::int64_t(rows * cols * sizeof(float));

struct workspace {
  pare::aligned_buffer<float> w{rows * cols}, y{rows * cols};
  pare::quantized_tensor q;
  workspace() {
    pare::splitmix64 g(42);  // weight-like data: uniform sums, a few outliers
    for (std::size_t i = 0; i < rows * cols; ++i) {
      const double u = g.uniform() + g.uniform() + g.uniform() - 1.5;
      w[i] = static_cast<float>(0.02 * u * ((i % 997) == 0 ? 8.0 : 1.0));
    }
  }
  pare::matrix_view<const float> in() const { return {w.data(), rows, cols}; }
  pare::matrix_view<float> out() { return {y.data(), rows, cols}; }
};

workspace& ws() {
  static workspace w;
  return w;
}

enum class op_kind { memcpy_op, quantize_op, dequantize_op, fake_quant_op };

/// One call of `op` over the whole matrix.
void call(op_kind op, const pare::quant_config& cfg, workspace& d) {
  switch (op) {
    case op_kind::memcpy_op:
      pare::parallel_for(0, rows, rows / 64, [&](std::size_t lo, std::size_t hi) {
        std::memcpy(d.y.data() + lo * cols, d.w.data() + lo * cols, (hi - lo) * cols * sizeof(float));
      });
      break;
    case op_kind::quantize_op: d.q = pare::quantize(d.in(), cfg, std::move(d.q)); break;
    case op_kind::dequantize_op: d.q.dequantize_into(d.out()); break;
    case op_kind::fake_quant_op: pare::fake_quantize(d.in(), cfg, d.out()); break;
  }
}

/// The bytes an op produced (codes and parameters, or the fp32 output).
std::vector<std::uint8_t> snapshot(op_kind op, const workspace& d) {
  if (op == op_kind::quantize_op) {
    std::vector<std::uint8_t> s(d.q.codes.data(), d.q.codes.data() + d.q.codes.size());
    const auto* p = reinterpret_cast<const std::uint8_t*>(d.q.scales.data());
    s.insert(s.end(), p, p + d.q.scales.size() * sizeof(float));
    return s;
  }
  const auto* p = reinterpret_cast<const std::uint8_t*>(d.y.data());
  return std::vector<std::uint8_t>(p, p + matrix_bytes);
}

void run(benchmark::State& state, op_kind op, const std::string& spec, pare::isa level, std::size_t threads) {
  workspace& d = ws();
  const pare::quant_config cfg = op == op_kind::memcpy_op ? pare::quant_config{} : pare::quant_config::parse(spec);
  pare::thread_pool pool(threads);
  pare::set_executor(&pool);
  if (op == op_kind::dequantize_op) d.q = pare::quantize(d.in(), cfg, std::move(d.q));
  // Reference output from the scalar variant, then this variant's.
  pare::set_enabled_isas(pare::isa::scalar);
  call(op, cfg, d);
  const std::vector<std::uint8_t> want = snapshot(op, d);
  pare::set_enabled_isas(pare::with_lower_levels(level));
  call(op, cfg, d);
  const pare::isa used = pare::last_used_isa();
  if (snapshot(op, d) != want) {
    state.SkipWithError("result differs from the scalar variant");
  } else {
    for (auto _ : state) {
      call(op, cfg, d);
      benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * matrix_bytes);
    if (op != op_kind::memcpy_op) state.SetLabel(pare::to_string(used));
  }
  pare::set_executor(nullptr);
  pare::reset_enabled_isas();
}

// ---- row kernels in cache ----------------------------------------------------------

enum class row_op { quantize, stochastic, dequantize, fake_quant, quantize_int4, dequantize_int4, scan };

struct row_data {
  static constexpr std::size_t n = 4093;
  std::vector<float> x, scale, inv, y;
  std::vector<std::int32_t> zero;
  std::vector<std::uint8_t> codes;
  pare::kernels::row_qparams p;
  row_data(std::size_t group, int qmin, int qmax) : x(n), y(n), codes(n) {
    pare::splitmix64 g(7);
    for (float& v : x) v = static_cast<float>(g.uniform() * 2.0 - 1.0);
    for (std::size_t i = 0; i < n; ++i) codes[i] = static_cast<std::uint8_t>(g.next() >> 56);
    for (std::size_t k = 0; k < (n + group - 1) / group; ++k) {
      scale.push_back(static_cast<float>(0.01 + 0.001 * double(k % 7)));
      inv.push_back(pare::inverse_scale(scale.back()));
      zero.push_back(static_cast<std::int32_t>(k % 5) - 2);
    }
    p.scale = scale.data();
    p.inv_scale = inv.data();
    p.zero = zero.data();
    p.group = group;
    p.qmin = qmin;
    p.qmax = qmax;
  }
};

/// One call of the row kernel `op`; returns the bytes it produced.
std::vector<std::uint8_t> row_call(row_op op, row_data& d) {
  namespace pk = pare::kernels;
  const std::size_t n = row_data::n;
  auto bytes = [](const void* p, std::size_t b) {
    const auto* c = static_cast<const std::uint8_t*>(p);
    return std::vector<std::uint8_t>(c, c + b);
  };
  switch (op) {
    case row_op::quantize: pk::quantize_row(d.x.data(), n, d.p, d.codes.data()); return bytes(d.codes.data(), n);
    case row_op::stochastic:
      pk::quantize_row_stochastic(d.x.data(), n, d.p, 12345u, 0u, d.codes.data());
      return bytes(d.codes.data(), n);
    case row_op::dequantize: pk::dequantize_row(d.codes.data(), n, d.p, true, d.y.data()); break;
    case row_op::fake_quant: pk::fake_quant_row(d.x.data(), n, d.p, d.y.data()); break;
    case row_op::quantize_int4:
      pk::quantize_row_int4(d.x.data(), n, d.p, d.codes.data());
      return bytes(d.codes.data(), (n + 1) / 2);
    case row_op::dequantize_int4: pk::dequantize_row_int4(d.codes.data(), n, d.p, false, d.y.data()); break;
    case row_op::scan: {
      const pk::row_stats s = pk::scan_row(d.x.data(), n);
      return bytes(&s, sizeof s);
    }
  }
  return bytes(d.y.data(), n * sizeof(float));
}

void run_row(benchmark::State& state, row_op op, std::size_t group, pare::isa level) {
  const bool int4 = op == row_op::quantize_int4 || op == row_op::dequantize_int4;
  row_data d(group, int4 ? 0 : -128, int4 ? 15 : 127);
  pare::set_enabled_isas(pare::isa::scalar);
  const std::vector<std::uint8_t> want = row_call(op, d);
  pare::set_enabled_isas(pare::with_lower_levels(level));
  if (row_call(op, d) != want) {
    state.SkipWithError("result differs from the scalar variant");
  } else {
    for (auto _ : state) {
      row_call(op, d);
      benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * std::int64_t(row_data::n * sizeof(float)));
    state.SetLabel(pare::to_string(pare::last_used_isa()));
  }
  pare::reset_enabled_isas();
}

void register_rows(const pare::isa (&variants)[5]) {
  struct row_entry {
    const char* name;
    row_op op;
  };
  const row_entry ops[] = {{"quantize_row", row_op::quantize},       {"quantize_row_stochastic", row_op::stochastic},
                           {"dequantize_row", row_op::dequantize},   {"fake_quant_row", row_op::fake_quant},
                           {"quantize_row_int4", row_op::quantize_int4},
                           {"dequantize_row_int4", row_op::dequantize_int4}, {"scan_row", row_op::scan}};
  for (const row_entry& e : ops) {
    for (std::size_t group : {1, 2, 128}) {
      if (e.op == row_op::scan && group != 1) continue;
      for (pare::isa level : variants) {
        if (!pare::has(pare::detected_isas(), level)) continue;
        const std::string name = std::string("row/") + e.name + (e.op == row_op::scan ? "" : "/g" + std::to_string(group)) +
                                 "/" + (level == pare::isa::scalar ? "ref" : pare::to_string(level));
        const row_op op = e.op;
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) { run_row(s, op, group, level); })
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
}

void register_all() {
  struct op_entry {
    const char* name;
    op_kind op;
    const char* spec;
  };
  const op_entry ops[] = {
      {"quantize_int8", op_kind::quantize_op, "int8:per_channel:sym"},
      {"quantize_int4_g128", op_kind::quantize_op, "int4:g128:asym"},
      {"dequantize_int8", op_kind::dequantize_op, "int8:per_channel:sym"},
      {"dequantize_int4_g128", op_kind::dequantize_op, "int4:g128:asym"},
      {"fake_quant_int8", op_kind::fake_quant_op, "int8:per_channel:sym"},
      {"fake_quant_int4_g128", op_kind::fake_quant_op, "int4:g128:asym"},
  };
  const pare::isa variants[] = {pare::isa::avx512bw, pare::isa::avx2, pare::isa::sse4_1, pare::isa::neon,
                                pare::isa::scalar};
  for (std::size_t threads : {1, 2}) {
    const std::string t = "/threads:" + std::to_string(threads);
    benchmark::RegisterBenchmark(("memcpy" + t).c_str(), [=](benchmark::State& s) {
      run(s, op_kind::memcpy_op, "", pare::isa::scalar, threads);
    })->UseRealTime()->Unit(benchmark::kMillisecond);
    for (const op_entry& e : ops) {
      for (pare::isa level : variants) {
        if (!pare::has(pare::detected_isas(), level)) continue;
        const std::string isa_name = level == pare::isa::scalar ? "ref" : pare::to_string(level);
        const op_kind op = e.op;
        const std::string spec = e.spec;
        benchmark::RegisterBenchmark((std::string(e.name) + "/" + isa_name + t).c_str(),
                                     [=](benchmark::State& s) { run(s, op, spec, level, threads); })
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  register_rows(variants);
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
