// options: pare-compress's command line with CLI11: the options, their syntax checks and the --help text.
#include "options.hpp"

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <limits>

#include <CLI/CLI.hpp>

#include "pare/core/parallel.hpp"

namespace pare_compress {
namespace {

const char* const footer = R"(Each --recipe is one row of the report: its steps (comma-separated) are applied in order to
a fresh copy of the model; a first row "fp32" is always measured as the baseline. With no
--recipe (and no --out) the default table runs. Steps:
  quant:<config>                  e.g. quant:int8:per_channel:sym  quant:int4:g32:asym:mse
                                  <config> = int<B>|uint<B> (B 2..8; 2..7 bit-packed) then any of
                                  per_tensor|per_channel|g<G>  sym|asym  minmax|ema|percentile|mse|kl
                                  rne|stochastic[=seed]  f16scale (scales stored as fp16, 2 bytes)
  quant:ggml:<type>[:imatrix]     llama.cpp's formats, e.g. quant:ggml:q8_0  quant:ggml:q4_K:imatrix
  share:kmeans:<B>bit[:per_row]   lowrank:<energy=e|rank=r|ratio=p|budget=b>[:asvd|:whiten]
  prune:unstructured:<s>:<magnitude|wanda>   prune:nm:<n>:<m>:<magnitude|wanda>
  prune:depth:<n>:<ppl|taylor|taylor+|magnitude>[:iter]   prune:ffn:<fraction>:<magnitude|activation|apoz>
  slicegpt:<fraction>[:global]    e.g. slicegpt:0.25
  gptq:<config>[:actorder][:damp=<l>][:block=<B>]   GPTQ into pare's formats, e.g. gptq:int4:g32:asym
  gptq:ggml:<type>[:imatrix][:actorder][:fptarget]  GPTQ into llama.cpp's blocks (GGUF), e.g. gptq:ggml:q4_0
  gptq:<config>:fptarget          GPTQ fitted to the uncompressed model's outputs (asymmetric calibration)
  smoothquant:<a|none>[:w8a8[:static|:dynamic]][:nodown]   SmoothQuant folds (+ W8A8), e.g. smoothquant:0.5:w8a8
  mixed:<bpw>:<fmt>/<fmt>/...[:ppl|:hessian][:gptq][:windows=n]   one format per layer within a bit budget,
                                  e.g. mixed:4.5:int3:g32:asym/int4:g32:asym/int8:gptq
  awq:<config>[:noclip][:grid=<G>]   awq+gptq:<config>[...]   AWQ scales (+ GPTQ), e.g. awq:int4:g128:asym
  sparsegpt:<sparsity>[:per_row][:<config>][:fptarget]   sparsegpt:<n>:<m>[:<config>][:fptarget]   e.g. sparsegpt:0.5  sparsegpt:2:4  sparsegpt:0.5:int4:g32:asym
Calibration (gptq, awq, imatrix, wanda, ppl, taylor, slicegpt): the first --calib-windows windows of
--calib-window tokens of --calib (default 128 x 512 tokens of text/tinystories_val_tail.txt).
Models: llama2.c checkpoints (with --tokenizer, default tok512.bin beside them), GGUF (llama),
safetensors (file mode); the reader is chosen by the file's first bytes. Without --model,
stories260K.bin is looked for in $PARE_DATA_DIR/models, the build's data folder,
../shared/data/models and the current folder.
--out PATH.gguf writes the model of the one --recipe (steps GGUF has types for) as GGUF.
--plot FILE.svg (evaluate mode) charts every row's perplexity against its bits/weight, the rows no
    other row beats on both joined as the Pareto front (log perplexity axis past a 3x range).
--model X.safetensors --recipe quant:<config> --out Y.safetensors: compressed-tensors
    pack-quantized file (file mode).
--no-eval (GGUF input, with --out): converts tensor by tensor like llama.cpp's quantize, no
    model load or perplexity (also the mode for GGUF files that are not llama models).
Progress goes to stderr (one redrawn line on a terminal, a line per 10 % otherwise).
Exit codes: 0 success, 1 bad arguments or files (message on stderr), 2 no model found.)";

/// A CLI11 check: a decimal count, digits only (no sign, no spaces), in [lo, hi].
CLI::Validator count_in(std::size_t lo, std::size_t hi, const std::string& meaning) {
  return CLI::Validator(
      [=](std::string& v) -> std::string {
        const bool digits = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
        if (!digits) return "expected a non-negative integer" + meaning + ", got '" + v + "'";
        errno = 0;
        const unsigned long long n = std::strtoull(v.c_str(), nullptr, 10);
        const bool too_big = errno == ERANGE || n > hi;
        if (too_big && hi == std::numeric_limits<std::size_t>::max())
          return "expected an integer below 2^64" + meaning + ", got '" + v + "'";
        if (too_big)
          return "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]" + meaning +
                 ", got '" + v + "'";
        if (n < lo) return "expected an integer >= " + std::to_string(lo) + meaning + ", got '" + v + "'";
        return {};
      },
      "");
}

/// A CLI11 check: a path, not the empty string.
const CLI::Validator non_empty_path(
    [](std::string& v) -> std::string { return v.empty() ? std::string("expected a path, got ''") : std::string(); },
    "");

/// A CLI11 check: a glob fnmatch reads as meant.
const CLI::Validator glob(
    [](std::string& v) -> std::string {
      const std::string why = glob_problem(v);
      return why.empty() ? why : "'" + v + "': expected a glob (* ? [set]), got " + why;
    },
    "");

const CLI::Validator md_or_json(
    [](std::string& v) -> std::string {
      return v == "md" || v == "json" ? std::string() : "expected 'md' or 'json', got '" + v + "'";
    },
    "");

constexpr std::size_t no_limit = std::numeric_limits<std::size_t>::max();

void add_options(CLI::App& app, options& o) {
  auto last = CLI::MultiOptionPolicy::TakeLast;  // a repeated option: the last one counts (as before CLI11)
  app.add_option("--model", o.model, "model file: llama2.c .bin, GGUF or safetensors")
      ->check(non_empty_path)->type_name("PATH")->multi_option_policy(last);
  app.add_option("--tokenizer", o.tokenizer, "llama2.c tokenizer (default: tok512.bin beside a .bin model)")
      ->check(non_empty_path)->type_name("PATH")->multi_option_policy(last);
  app.add_option("--text", o.text, "evaluated text (default: text/tinystories_val_head.txt of the data folder)")
      ->check(non_empty_path)->type_name("PATH")->multi_option_policy(last);
  app.add_option("--calib", o.calib,
                 "calibration text (default: text/tinystories_val_tail.txt, disjoint from the evaluated text)")
      ->check(non_empty_path)->type_name("PATH")->multi_option_policy(last);
  app.add_option("--calib-windows", o.calib_windows,
                 "calibrate on the first N windows of the calibration text (default 128; 0: all of it)")
      ->check(count_in(0, no_limit, ""))->type_name("N")->multi_option_policy(last);
  app.add_option("--calib-window", o.calib_window,
                 "tokens per calibration window (default: --window, capped at the model's context)")
      ->check(count_in(2, no_limit, " (tokens per calibration window)"))->type_name("L")->multi_option_policy(last);
  app.add_option("--recipe", o.recipes, "a report row: steps applied in order (repeatable)")
      ->type_name("STEP[,STEP...]")->allow_extra_args(false);
  app.add_option("--out", o.out, "write the compressed model (.gguf, or .safetensors in file mode)")
      ->check(non_empty_path)->type_name("PATH")->multi_option_policy(last);
  app.add_option("--plot", o.plot,
                 "write an SVG chart: perplexity against bits/weight of every row, fp32 baseline, Pareto front")
      ->check(non_empty_path)->type_name("FILE.svg")->multi_option_policy(last);
  app.add_option("--threads", o.threads, "threads of pare's pool (default: PARE_NUM_THREADS or all cores)")
      ->check(count_in(0, pare::thread_pool::max_threads, ""))->type_name("N")->multi_option_policy(last);
  app.add_option("--report", o.report, "stdout report format (default md)")
      ->check(md_or_json)
      ->type_name("md|json")
      ->multi_option_policy(last);
  app.add_option("--max-tokens", o.max_tokens, "evaluate on the first N tokens of the text (default 0: all)")
      ->check(count_in(0, no_limit, ""))->type_name("N")->multi_option_policy(last);
  app.add_option("--window", o.window, "perplexity window in tokens (default 512, capped at the model's context)")
      ->check(count_in(2, no_limit, " (tokens per perplexity window)"))->type_name("N")
      ->multi_option_policy(last);
  app.add_option("--include", o.include, "convert only tensors matching GLOB (repeatable)")
      ->check(glob)->type_name("GLOB")->allow_extra_args(false);
  app.add_option("--exclude", o.exclude, "leave tensors matching GLOB as they are (repeatable)")
      ->check(glob)->type_name("GLOB")->allow_extra_args(false);
  app.add_flag("--no-eval", o.no_eval, "file mode: convert a GGUF tensor by tensor, no model load or perplexity");
  // --sensitivity / --no-sensitivity: the last one given counts.
  app.add_flag_function("--sensitivity", [&o](std::int64_t) { o.sensitivity = 1; },
                        "the block-sensitivity table (on by default with the default table)")
      ->trigger_on_parse();
  app.add_flag_function("--no-sensitivity", [&o](std::int64_t) { o.sensitivity = 0; }, "no block-sensitivity table")
      ->trigger_on_parse();
}

}  // namespace

std::string glob_problem(const std::string& g) {
  if (g.empty()) return "an empty pattern";
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (g[i] == '\\') {
      if (i + 1 == g.size()) return "a trailing '\\' that escapes nothing";
      ++i;
    } else if (g[i] == '[') {
      std::size_t j = i + 1;
      if (j < g.size() && (g[j] == '!' || g[j] == '^')) ++j;
      if (j < g.size() && g[j] == ']') ++j;  // a ']' first in the set is a member
      while (j < g.size() && g[j] != ']') ++j;
      if (j == g.size()) return "a '[' at character " + std::to_string(i + 1) + " that no ']' closes";
      i = j;
    }
  }
  return {};
}

command_line parse_command_line(int argc, const char* const* argv) {
  command_line c;
  CLI::App app("pare-compress: applies compression recipes to a model and reports size, bits/weight, perplexity "
               "and speed.",
               "pare-compress");
  app.footer(footer);
  add_options(app, c.opt);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    c.help = true;
  } catch (const CLI::ParseError& e) {
    throw usage_error(e.what());
  }
  return c;
}

}  // namespace pare_compress
