// Prefill and decode tokens/s of the reference LLaMA model on stories260K: fp32 vs int8 vs int4 linear layers.
//
// prefill: one 512-token window as a single batch from an empty KV cache (GEMM-shaped
//          linear layers); counter tokens_per_s.
// decode:  128 tokens one at a time after a 16-token prompt (GEMV-shaped); tokens_per_s.
// Recipes: fp32; int8:per_channel:sym; int4:g32:asym (ffn_down, 172 inputs, falls back to
// int4 per-channel). Linear layers run on whatever backend quantized_linear picks (see
// pare/model/layers/quantized_linear.hpp); the benchmark label names it.

#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "matmul_bench_support.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/model/llama_session.hpp"

#ifndef PARE_DATA_DIR_DEFAULT
#define PARE_DATA_DIR_DEFAULT "../shared/data"
#endif

namespace {

std::string data_dir() {
  const char* e = std::getenv("PARE_DATA_DIR");
  return e ? e : PARE_DATA_DIR_DEFAULT;
}

std::unique_ptr<pare::llama_model> make_model(const std::string& recipe, std::string& backend) {
  const auto ck = pare::llama2c_checkpoint::load(data_dir() + "/models/stories260K.bin");
  auto m = std::make_unique<pare::llama_model>(pare::llama_model::from_llama2c(ck));
  backend = "f32";
  if (recipe != "fp32") {
    const auto changes = pare::quantize_linears(*m, pare::quant_config::parse(recipe));
    backend = changes.empty() ? "" : changes.front().backend;
  }
  return m;
}

std::vector<std::int32_t> some_tokens(std::size_t n) {
  std::vector<std::int32_t> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = i == 0 ? 1 : static_cast<std::int32_t>(3 + (i * 7919) % 509);
  return t;
}

void prefill(benchmark::State& state, const std::string& recipe, std::size_t threads) {
  pare_bench::scoped_threads pool(threads);
  std::string backend;
  const auto m = make_model(recipe, backend);
  pare::llama_session s(*m);
  const auto toks = some_tokens(512);
  std::vector<float> logits;
  for (auto _ : state) {
    s.reset();
    s.forward(toks.data(), toks.size(), logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(512.0, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(backend);
}

void decode(benchmark::State& state, const std::string& recipe, std::size_t threads) {
  pare_bench::scoped_threads pool(threads);
  std::string backend;
  const auto m = make_model(recipe, backend);
  pare::llama_session s(*m);
  const auto toks = some_tokens(16 + 128);
  std::vector<float> logits;
  for (auto _ : state) {
    state.PauseTiming();
    s.reset();
    s.forward(toks.data(), 16, logits);
    state.ResumeTiming();
    for (std::size_t i = 16; i < toks.size(); ++i) s.forward(&toks[i], 1, logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(128.0, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(backend);
}

const bool registered = [] {
  for (std::size_t threads : {1, 2})
    for (const char* recipe : {"fp32", "int8:per_channel:sym", "int4:g32:asym"}) {
      const std::string r = recipe, t = "/threads:" + std::to_string(threads);
      benchmark::RegisterBenchmark(("model/prefill/" + r + t).c_str(), [=](benchmark::State& s) { prefill(s, r, threads); })
          ->UseRealTime()->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("model/decode/" + r + t).c_str(), [=](benchmark::State& s) { decode(s, r, threads); })
          ->UseRealTime()->Unit(benchmark::kMillisecond);
    }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
