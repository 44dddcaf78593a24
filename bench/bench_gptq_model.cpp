// Scale benchmark: writes a synthetic LLaMA-shaped f16 GGUF with random weights, loads it and runs block-sequential GPTQ on random calibration tokens, printing wall time and peak RSS.
//
//   bench_gptq_model PATH [--layers 22] [--dim 2048] [--ffn 5632] [--heads 32] [--kv-heads 4]
//                         [--vocab 32000] [--windows 8] [--window-len 256] [--config int4:g128:asym]
//                         [--with-output] [--keep] [--reuse] [--load-only]
//
// Defaults are TinyLlama 1.1B's shape. The file is written by a child process (its memory
// is not the pipeline's), then this process maps it (pare::gguf_file), builds the model
// (pare::llama_model_from_gguf: f16 linears become ggml_linear layers) and runs
// pare::gptq_linears over the blocks' linears (output.weight too with --with-output).
// Printed: time to write / load / GPTQ, RSS after each block (VmRSS, and its anonymous and
// file-backed parts), the process's peak RSS (getrusage ru_maxrss and VmHWM), and the goal
// of issue #18: 1.5 × (one block's weights in fp32 + the calibration residual stream),
// beyond the mapped file's pages. --reuse skips writing when PATH exists; --keep keeps it;
// --load-only stops after loading (the loader's own peak).

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "pare/core/dtypes/fp16.hpp"
#include "pare/core/rng.hpp"
#include "pare/io/gguf.hpp"
#include "pare/io/gguf_writer.hpp"
#include "pare/model/load.hpp"
#include "pare/pipeline/gptq_linears.hpp"

namespace {

struct shape {
  int layers = 22, dim = 2048, ffn = 5632, heads = 32, kv_heads = 4, vocab = 32000;
  int kv_dim() const { return dim / heads * kv_heads; }
  /// Weights of one block's linears.
  double block_weights() const { return 2.0 * dim * dim + 2.0 * dim * kv_dim() + 3.0 * dim * ffn; }
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// A field of /proc/self/status in MiB (0 when absent).
double status_mib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(key);
  while (std::getline(f, line))
    if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':') return std::atof(line.c_str() + n + 1) / 1024.0;
  return 0;
}

double maxrss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

/// Writes the synthetic model: f16 linears and embedding, f32 norms (ones); weights
/// uniform in ±0.02·√3 (σ = 0.02), one tensor in memory at a time.
void write_model(const std::string& path, const shape& s) {
  pare::gguf_writer w(path);
  w.set("general.architecture", std::string("llama"));
  w.set("general.name", std::string("pare synthetic"));
  w.set("llama.context_length", std::uint32_t(2048));
  w.set("llama.embedding_length", std::uint32_t(s.dim));
  w.set("llama.feed_forward_length", std::uint32_t(s.ffn));
  w.set("llama.block_count", std::uint32_t(s.layers));
  w.set("llama.attention.head_count", std::uint32_t(s.heads));
  w.set("llama.attention.head_count_kv", std::uint32_t(s.kv_heads));
  w.set("llama.rope.dimension_count", std::uint32_t(s.dim / s.heads));
  w.set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  struct t {
    std::string name;
    std::uint64_t in, out;  // out = 0: a norm vector of `in`
  };
  std::vector<t> ts{{"token_embd.weight", std::uint64_t(s.dim), std::uint64_t(s.vocab)},
                    {"output_norm.weight", std::uint64_t(s.dim), 0},
                    {"output.weight", std::uint64_t(s.dim), std::uint64_t(s.vocab)}};
  for (int b = 0; b < s.layers; ++b) {
    const std::string p = "blk." + std::to_string(b) + ".";
    const std::uint64_t d = s.dim, kv = s.kv_dim(), f = s.ffn;
    for (const t& x : std::vector<t>{{p + "attn_q.weight", d, d},      {p + "attn_k.weight", d, kv},
                                     {p + "attn_v.weight", d, kv},     {p + "attn_output.weight", d, d},
                                     {p + "attn_norm.weight", d, 0},   {p + "ffn_gate.weight", d, f},
                                     {p + "ffn_down.weight", f, d},    {p + "ffn_up.weight", d, f},
                                     {p + "ffn_norm.weight", d, 0}})
      ts.push_back(x);
  }
  for (const t& x : ts)
    if (x.out) w.add_tensor(x.name, 1 /*f16*/, {x.in, x.out});
    else w.add_tensor(x.name, 0 /*f32*/, {x.in});
  w.write_header();
  pare::splitmix64 g(1234);
  const float a = 0.02f * 1.7320508f;
  std::vector<float> row;
  std::vector<std::uint16_t> h;
  for (const t& x : ts) {
    if (!x.out) {
      const std::vector<float> ones(x.in, 1.0f);
      w.write_tensor(x.name, ones.data(), ones.size() * sizeof(float));
      continue;
    }
    const std::size_t n = x.in * x.out;
    row.resize(n);
    h.resize(n);
    for (std::size_t i = 0; i < n; ++i) row[i] = a * (float(double(g.next() >> 11) * 0x1.0p-53) * 2.0f - 1.0f);
    for (std::size_t i = 0; i < n; ++i) h[i] = pare::float_to_fp16(row[i]);
    w.write_tensor(x.name, h.data(), n * sizeof(std::uint16_t));
  }
  w.finish();
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s PATH [--layers N] [--dim N] [--ffn N] [--heads N] [--kv-heads N] [--vocab N]\n"
               "       [--windows N] [--window-len N] [--config SPEC] [--with-output] [--keep] [--reuse] [--load-only]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return usage(argv[0]);
  const std::string path = argv[1];
  shape s;
  int windows = 8, window_len = 256;
  std::string spec = "int4:g128:asym";
  bool with_output = false, keep = false, reuse = false, load_only = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto num = [&](int& v) {
      if (i + 1 >= argc) std::exit(usage(argv[0]));
      v = std::atoi(argv[++i]);
    };
    if (a == "--layers") num(s.layers);
    else if (a == "--dim") num(s.dim);
    else if (a == "--ffn") num(s.ffn);
    else if (a == "--heads") num(s.heads);
    else if (a == "--kv-heads") num(s.kv_heads);
    else if (a == "--vocab") num(s.vocab);
    else if (a == "--windows") num(windows);
    else if (a == "--window-len") num(window_len);
    else if (a == "--config" && i + 1 < argc) spec = argv[++i];
    else if (a == "--with-output") with_output = true;
    else if (a == "--keep") keep = true;
    else if (a == "--reuse") reuse = true;
    else if (a == "--load-only") load_only = true;
    else return usage(argv[0]);
  }
  std::printf("shape: %d layers, dim %d, ffn %d, %d heads (%d kv), vocab %d; %d windows x %d tokens; %s\n", s.layers,
              s.dim, s.ffn, s.heads, s.kv_heads, s.vocab, windows, window_len, spec.c_str());

  const bool exists = std::ifstream(path).good();
  if (!(reuse && exists)) {
    const double t0 = now_s();
    const pid_t pid = fork();
    if (pid == 0) {
      try {
        write_model(path, s);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "write failed: %s\n", e.what());
        _exit(1);
      }
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    std::printf("write  %8.1f s  %s\n", now_s() - t0, path.c_str());
  }

  try {
    double t0 = now_s();
    const pare::gguf_file g = pare::gguf_file::open(path);
    pare::llama_model m = pare::llama_model_from_gguf(g);
    std::printf("load   %8.1f s  VmRSS %.0f MiB (anon %.0f, file %.0f), VmHWM %.0f MiB\n", now_s() - t0,
                status_mib("VmRSS"), status_mib("RssAnon"), status_mib("RssFile"), status_mib("VmHWM"));
    if (load_only) {
      if (!keep) std::remove(path.c_str());
      return 0;
    }

    pare::splitmix64 rng(7);
    std::vector<std::vector<std::int32_t>> win(static_cast<std::size_t>(windows));
    for (auto& w : win) {
      w.resize(static_cast<std::size_t>(window_len));
      for (auto& t : w) t = std::int32_t(rng.next() % std::uint64_t(s.vocab));
    }
    const pare::quant_config cfg = pare::quant_config::parse(spec);
    double last = now_s(), max_anon = 0;
    const double t_gptq = last;
    const auto progress = [&](std::size_t done, std::size_t total) {
      if (done == 0) return;
      const double t = now_s(), anon = status_mib("RssAnon");
      max_anon = std::max(max_anon, anon);
      std::printf("  step %2zu/%zu %7.1f s  VmRSS %6.0f MiB (anon %6.0f, file %6.0f)\n", done, total, t - last,
                  status_mib("VmRSS"), anon, status_mib("RssFile"));
      std::fflush(stdout);
      last = t;
    };
    const auto select = [&](const std::string& name) { return with_output || name != "output.weight"; };
    const pare::gptq_linears_result r = pare::gptq_linears(m, cfg, win, {}, select, progress);
    const double t_end = now_s();
    double gptq_err = 0, rtn_err = 0;
    for (const auto& l : r.layers) {
      gptq_err += l.gptq_error;
      rtn_err += l.rtn_error;
    }
    const double block_mib = s.block_weights() * 4.0 / 1048576.0;
    const double act_mib = double(windows) * window_len * s.dim * 4.0 / 1048576.0;
    std::printf("gptq   %8.1f s  %zu layers, %.1f s per block; Σ loss GPTQ / RTN = %.3f\n", t_end - t_gptq,
                r.layers.size(), (t_end - t_gptq) / s.layers, rtn_err > 0 ? gptq_err / rtn_err : 0.0);
    std::printf("peak RSS: ru_maxrss %.0f MiB, VmHWM %.0f MiB; anonymous RSS at block ends: max %.0f MiB\n",
                maxrss_mib(), status_mib("VmHWM"), max_anon);
    std::printf("goal: 1.5 x (one block's weights fp32 %.0f MiB + residual stream %.0f MiB) = %.0f MiB beyond the "
                "mapped file (%.0f MiB of f16)\n",
                block_mib, act_mib, 1.5 * (block_mib + act_mib), double(g.file().size()) / 1048576.0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  if (!keep) std::remove(path.c_str());
  return 0;
}
