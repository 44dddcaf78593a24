// Training throughput on stories260K: forward+backward tokens/s of the training pass (1 and 2 threads) beside its forward alone and llama_session's forward.
//
// One iteration processes one window of 256 tokens from an empty cache:
//   train/fwd_bwd   pare::loss_and_grad (training forward, cross-entropy, exact backward into every weight)
//   train/fwd       pare::llama_pass::forward (the training forward alone, tape kept)
//   session/fwd     pare::llama_session::forward with all 256 logits (inference kernels, KV cache)
//   train/adamw     one AdamW step over every weight (260K parameters), tokens_per_s not applicable
// Counter tokens_per_s = 256 / iteration time. Before timing, the loss is checked to be finite.

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "matmul_bench_support.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/train/adamw.hpp"
#include "pare/train/parameter_set.hpp"

#ifndef PARE_DATA_DIR_DEFAULT
#define PARE_DATA_DIR_DEFAULT "../shared/data"
#endif

namespace {

constexpr std::size_t window = 256;

std::string data_dir() {
  const char* e = std::getenv("PARE_DATA_DIR");
  return e ? e : PARE_DATA_DIR_DEFAULT;
}

const pare::llama_model& model() {
  static const pare::llama_model m =
      pare::llama_model::from_llama2c(pare::llama2c_checkpoint::load(data_dir() + "/models/stories260K.bin"));
  return m;
}

std::vector<std::int32_t> some_tokens(std::size_t n) {
  std::vector<std::int32_t> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = i == 0 ? 1 : static_cast<std::int32_t>(3 + (i * 7919) % 509);
  return t;
}

void fwd_bwd(benchmark::State& state, std::size_t threads) {
  pare_bench::scoped_threads pool(threads);
  const auto p = pare::llama_params<float>::from_model(model());
  const auto toks = some_tokens(window);
  pare::llama_params<float> g = p.zeros_like();
  if (!std::isfinite(pare::loss_and_grad(p, toks, &g))) throw std::runtime_error("bench_train: non-finite loss");
  for (auto _ : state) {
    benchmark::DoNotOptimize(pare::loss_and_grad(p, toks, &g));
    benchmark::ClobberMemory();
  }
  state.counters["tokens_per_s"] = benchmark::Counter(double(window), benchmark::Counter::kIsIterationInvariantRate);
}

void fwd(benchmark::State& state, std::size_t threads) {
  pare_bench::scoped_threads pool(threads);
  const auto p = pare::llama_params<float>::from_model(model());
  const auto toks = some_tokens(window);
  pare::llama_pass<float> pass;
  for (auto _ : state) {
    pass.forward(p, toks);
    benchmark::DoNotOptimize(pass.logits().data());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(double(window), benchmark::Counter::kIsIterationInvariantRate);
}

void session_fwd(benchmark::State& state, std::size_t threads) {
  pare_bench::scoped_threads pool(threads);
  pare::llama_session s(model());
  const auto toks = some_tokens(window);
  std::vector<float> logits;
  for (auto _ : state) {
    s.reset();
    s.forward(toks.data(), toks.size(), logits, /*all_logits=*/true);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(double(window), benchmark::Counter::kIsIterationInvariantRate);
}

void adamw_step(benchmark::State& state, std::size_t threads) {
  pare_bench::scoped_threads pool(threads);
  auto p = pare::llama_params<float>::from_model(model());
  pare::parameter_set ps(p, pare::all_tensors());
  for (std::size_t i = 0; i < ps.size(); ++i)
    for (float& x : ps.grad(i)) x = 1e-3f;
  pare::adamw opt;
  for (auto _ : state) opt.step(ps, 1e-6);
  state.counters["params_per_s"] = benchmark::Counter(double(ps.count()), benchmark::Counter::kIsIterationInvariantRate);
}

const bool registered = [] {
  for (std::size_t threads : {1, 2}) {
    const std::string t = "/threads:" + std::to_string(threads);
    benchmark::RegisterBenchmark(("train/fwd_bwd" + t).c_str(), [=](benchmark::State& s) { fwd_bwd(s, threads); })
        ->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("train/fwd" + t).c_str(), [=](benchmark::State& s) { fwd(s, threads); })
        ->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("session/fwd" + t).c_str(), [=](benchmark::State& s) { session_fwd(s, threads); })
        ->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("train/adamw" + t).c_str(), [=](benchmark::State& s) { adamw_step(s, threads); })
        ->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
