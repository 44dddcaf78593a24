// pare-compress: applies compression recipes to a real model and reports size, bits/weight, perplexity and speed.
//
//   pare-compress [--model PATH] [--tokenizer PATH] [--text PATH] [--calib PATH] [--recipe STEP[,STEP...]]...
//                 [--out PATH] [--threads N] [--report md|json] [--max-tokens N] [--window N]
//                 [--include GLOB]... [--exclude GLOB]... [--no-eval] [--sensitivity | --no-sensitivity]
//
// Each --recipe is one row of the report: its steps (comma-separated) are applied in
// order to a fresh copy of the model (pare/pipeline/recipe.hpp has the step grammar;
// --help lists it). A first row "fp32" is always measured as the baseline. With no
// --recipe the default table runs. Without --model, stories260K is looked for in
// $PARE_DATA_DIR/models, the build's data directory, ../shared/data/models and the
// current directory.
// --out PATH.gguf (with exactly one --recipe of steps GGUF has types for, or none for
// fp32) writes the compressed model as a GGUF llama.cpp loads (written to a temporary,
// then renamed). --no-eval (GGUF input): file mode, like llama.cpp's quantize: every
// selected 2-D float tensor of the file is converted one at a time (files larger than
// memory work), no model is loaded or measured; GGUF files of other architectures always
// use this mode. A .safetensors --model with one quant:<config> step and --out
// Y.safetensors is file mode too: compressed-tensors' pack-quantized convention.
// Exit codes: 0 success, 1 bad arguments or files (message on stderr), 2 no model found.
//
// main() below: parse the command line, plan, run, report. The parts (examples/pare_compress/):
//   options   the command line (CLI11): syntax of each option, --help
//   plan      every check before long work: the model file and its format (by its first
//             bytes), tokenizer, texts, recipes, output path (files: the path checks); inputs opened
//   run       load, apply, measure (progress: percentage and time left on stderr), or convert a file
//   report    markdown or JSON (nlohmann-json) on stdout, or the file-mode summary (results: what
//             run hands to report)

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <new>

#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare_compress/options.hpp"
#include "pare_compress/plan.hpp"
#include "pare_compress/report.hpp"
#include "pare_compress/run.hpp"

namespace {

/// --threads N: pare's parallel work on a pool of N threads while this lives.
class thread_scope {
 public:
  explicit thread_scope(std::size_t threads) {
    if (threads == 0) return;
    pool_ = std::make_unique<pare::thread_pool>(threads);
    pare::set_executor(pool_.get());
  }
  ~thread_scope() {
    if (pool_) pare::set_executor(nullptr);
  }
  thread_scope(const thread_scope&) = delete;
  thread_scope& operator=(const thread_scope&) = delete;

 private:
  std::unique_ptr<pare::thread_pool> pool_;
};

void report(const pare_compress::plan& p) {
  using pare_compress::mode;
  switch (p.how) {
    case mode::safetensors_file: pare_compress::print_conversion(pare_compress::run_safetensors_file(p)); return;
    case mode::gguf_file: pare_compress::print_conversion(pare_compress::run_gguf_file(p)); return;
    case mode::evaluate: {
      const pare_compress::evaluation e = pare_compress::run_evaluation(p);
      if (p.report == "json")
        pare_compress::print_json(e, std::cout);
      else
        pare_compress::print_markdown(e);
      return;
    }
  }
}

/// 0, or 1 with a message if the report could not be written (a full disk, a closed pipe).
int flush_stdout() {
  std::cout.flush();
  if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout) {
    std::cerr << "pare-compress: cannot write the report to stdout: " << std::strerror(errno) << "\n";
    return 1;
  }
  return 0;
}

void print_no_model(const pare_compress::no_model_found& e) {
  std::cerr << "pare-compress: no model given and stories260K.bin not found. Looked at:\n";
  for (const auto& t : e.tried) std::cerr << "  " << t << "\n";
  std::cerr << "Fetch the public files stories260K/stories260K.bin and stories260K/tok512.bin from the Hugging Face\n"
               "repository karpathy/tinyllamas into one of those folders (or pass --model and --tokenizer),\n"
               "or set PARE_DATA_DIR to a folder holding models/ and text/.\n";
}

}  // namespace

int main(int argc, char** argv) {
  // Every exception ends here, so the stack unwinds: temporaries of outputs are removed
  // (pare::atomic_file), the progress line is cleared, and nothing escapes main.
  try {
    const pare_compress::command_line cl = pare_compress::parse_command_line(argc, argv);
    if (cl.help) return flush_stdout();
    const pare_compress::plan p = pare_compress::make_plan(cl.opt);
    const thread_scope threads(p.threads);
    report(p);
    return flush_stdout();
  } catch (const pare_compress::usage_error& e) {
    std::cerr << "pare-compress: " << e.what() << "\n(run pare-compress --help for usage)\n";
    return 1;
  } catch (const pare_compress::no_model_found& e) {
    print_no_model(e);
    return 2;
  } catch (const pare::error& e) {
    std::cerr << "pare-compress: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "pare-compress: out of memory (the model or its working buffers do not fit)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "pare-compress: internal error: " << e.what() << "\n";
    return 1;
  } catch (...) {
    std::cerr << "pare-compress: internal error: an unknown exception\n";
    return 1;
  }
}
