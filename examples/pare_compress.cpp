// pare-compress: applies compression recipes to a real model and reports size, bits/weight, perplexity and speed.
//
//   pare-compress [--model PATH] [--tokenizer PATH] [--text PATH] [--recipe STEP[,STEP...]]...
//                 [--out PATH] [--threads N] [--report md|json] [--max-tokens N]
//                 [--include GLOB] [--exclude GLOB]
//
// Each --recipe is one row of the report: its steps (comma-separated) are applied in
// order to a fresh copy of the model. Steps:
//   quant:<config>      pare quantization of every selected linear layer, e.g.
//                       quant:int8:per_channel:sym, quant:int4:g32:asym:mse (see quant_config)
//   quant:ggml:<type>[:imatrix]   llama.cpp's block formats, byte-identical to ggml
//                       (f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_K q3_K q4_K q5_K q6_K iq4_nl);
//                       a layer whose width the format cannot take falls back as in
//                       llama.cpp's quantize (the report lists it). ":imatrix" weighs the
//                       rounding by llama.cpp's importance matrix (mean x² per input), taken
//                       from --calib text (default text/tinystories_sample_cs336.txt, which
//                       is not part of the perplexity text).
// A first row "fp32" is always measured as the baseline. With no --recipe the default
// table runs. Without --model, stories260K is looked for in $PARE_DATA_DIR/models, the
// build's data directory, ../shared/data/models and the current directory.
// --out PATH.gguf (with exactly one --recipe of ggml steps, or none for fp32) writes the
// compressed model as a GGUF llama.cpp loads (written to a temporary, then renamed).
// --no-eval (GGUF input): file mode, like llama.cpp's quantize: every selected 2-D float
// tensor of the file is converted one at a time (files larger than memory work), no
// model is loaded or measured; GGUF files of other architectures always use this mode.
// A .safetensors --model with one quant:<config> step and --out Y.safetensors is file mode
// too: 2-D ".weight" tensors (not embeddings, norms, lm_head unless --include says so) are
// written in compressed-tensors' pack-quantized convention (pare/io/convert/safetensors_quantize.hpp).
// Exit codes: 0 success, 1 bad arguments or files (message on stderr), 2 no model found.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fnmatch.h>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/strings.hpp"
#include "pare/core/parallel.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/model/export_model_gguf.hpp"
#include "pare/io/convert/gguf_quantize.hpp"
#include "pare/io/convert/safetensors_quantize.hpp"
#include "pare/pipeline/ggml_quantize_linears.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/io/tokenizer.hpp"
#include "pare/pipeline/recipe.hpp"

#ifndef PARE_DATA_DIR_DEFAULT
#define PARE_DATA_DIR_DEFAULT "../shared/data"
#endif

namespace fs = std::filesystem;

namespace {

struct options {
  std::string model, tokenizer, text, calib, out, report = "md";
  std::vector<std::string> recipes, include, exclude;
  std::size_t threads = 0, max_tokens = 0, window = 512;
  bool no_eval = false;
  int sensitivity = -1;  // -1: with the default table, 0 off, 1 on
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::cerr << "pare-compress: " << msg << "\n(run pare-compress --help for usage)\n";
  std::exit(1);
}

/// A decimal count in [0, max]: digits only (no sign, no spaces), no overflow.
std::size_t parse_count(const std::string& flag, const std::string& v,
                        std::size_t max = std::numeric_limits<std::size_t>::max()) {
  const bool digits = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) usage_error(flag + ": expected a non-negative integer, got '" + v + "'");
  errno = 0;
  const unsigned long long n = std::strtoull(v.c_str(), nullptr, 10);
  if (errno == ERANGE || n > max)
    usage_error(flag + ": expected an integer in [0, " + std::to_string(max) + "], got '" + v + "'");
  return static_cast<std::size_t>(n);
}

options parse_args(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + ": expected a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << "usage: pare-compress [--model PATH] [--tokenizer PATH] [--text PATH] [--recipe STEP[,STEP...]]...\n"
                   "                     [--out PATH] [--threads N] [--report md|json] [--max-tokens N]\n"
                   "                     [--include GLOB] [--exclude GLOB] [--window N] [--calib PATH] [--no-eval]\n"
                   "models: llama2.c checkpoints (with --tokenizer, default tok512.bin beside them) or GGUF (llama)\n"
                   "steps: quant:<config>   e.g. quant:int8:per_channel:sym  quant:int4:g32:asym:mse\n"
                   "       quant:ggml:<type>[:imatrix]   e.g. quant:ggml:q8_0  quant:ggml:q4_K:imatrix\n"
                   "       share:kmeans:<B>bit[:per_row]   lowrank:<energy=e|rank=r|ratio=p|budget=b>[:asvd|:whiten]\n"
                   "       prune:unstructured:<s>:<magnitude|wanda>  prune:nm:<n>:<m>:<magnitude|wanda>\n"
                   "       prune:depth:<n>:<ppl|taylor|taylor+|magnitude>[:iter]  prune:ffn:<fraction>:<magnitude|activation|apoz>\n"
                   "       slicegpt:<fraction>[:global]   e.g. slicegpt:0.25\n"
                   "--sensitivity / --no-sensitivity: the block-sensitivity table (on by default with the default table)\n"
                   "--out PATH.gguf writes the model of the one --recipe (ggml steps only) as GGUF\n"
                   "--model X.safetensors --recipe quant:<config> --out Y.safetensors: compressed-tensors\n"
                   "          pack-quantized file (file mode)\n"
                   "--no-eval (GGUF input, with --out): convert tensor by tensor like llama.cpp's quantize, no\n"
                   "          model load or perplexity (also the mode for GGUF files that are not llama models)\n";
      std::exit(0);
    } else if (a == "--model") o.model = value();
    else if (a == "--tokenizer") o.tokenizer = value();
    else if (a == "--text") o.text = value();
    else if (a == "--calib") o.calib = value();
    else if (a == "--no-eval") o.no_eval = true;
    else if (a == "--sensitivity") o.sensitivity = 1;
    else if (a == "--no-sensitivity") o.sensitivity = 0;
    else if (a == "--recipe") o.recipes.push_back(value());
    else if (a == "--out") o.out = value();
    else if (a == "--threads") o.threads = parse_count(a, value(), pare::thread_pool::max_threads);
    else if (a == "--max-tokens") o.max_tokens = parse_count(a, value());
    else if (a == "--window") o.window = parse_count(a, value());
    else if (a == "--include") o.include.push_back(value());
    else if (a == "--exclude") o.exclude.push_back(value());
    else if (a == "--report") {
      o.report = value();
      if (o.report != "md" && o.report != "json") usage_error("--report: expected 'md' or 'json', got '" + o.report + "'");
    } else usage_error("unknown argument '" + a + "'");
  }
  if (!o.out.empty()) {
    const std::string ext = fs::path(o.out).extension().string();
    if (ext != ".gguf" && ext != ".safetensors")
      usage_error("--out '" + o.out + "': expected a .gguf or .safetensors path");
    if (o.recipes.size() > 1)
      usage_error("--out: expected at most one --recipe (the model written is that recipe's), got " +
                  std::to_string(o.recipes.size()));
  }
  return o;
}

std::string find_model(std::vector<std::string>& tried) {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("PARE_DATA_DIR")) dirs.push_back(std::string(env) + "/models");
  dirs.push_back(std::string(PARE_DATA_DIR_DEFAULT) + "/models");
  dirs.push_back("../shared/data/models");
  dirs.push_back(".");
  for (const std::string& d : dirs) {
    const std::string p = d + "/stories260K.bin";
    tried.push_back(p);
    if (fs::is_regular_file(p)) return p;
  }
  return {};
}

std::string data_file(const std::string& model_path, const std::string& rel) {
  // Beside the model's folder (…/data/models/x.bin → …/data/<rel>), else the data dirs.
  const fs::path base = fs::path(model_path).parent_path().parent_path() / rel;
  if (fs::is_regular_file(base)) return base.string();
  if (const char* env = std::getenv("PARE_DATA_DIR"))
    if (fs::is_regular_file(fs::path(env) / rel)) return (fs::path(env) / rel).string();
  return (fs::path(PARE_DATA_DIR_DEFAULT) / rel).string();
}

struct row {
  std::string recipe;
  double bits_per_weight = 0;
  std::size_t bytes = 0, weights = 0;
  pare::perplexity_result ppl;
  double prefill_tps = 0, decode_tps = 0;
  std::vector<pare::layer_change> changes;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Prefill: one protocol window as a batch; decode: up to 128 single tokens after a prompt
/// of the first 16 tokens (fewer if the text has fewer: only `toks` is ever read).
void measure_speed(const pare::llama_model& m, const std::vector<std::int32_t>& toks, std::size_t window, row& r) {
  pare::llama_session s(m);
  std::vector<float> logits;
  const std::size_t n = std::min({toks.size(), window, static_cast<std::size_t>(m.config.seq_len)});
  if (n == 0) pare::detail::fail<pare::argument_error>("speed measurement: expected at least 1 token of text, got 0");
  const std::size_t prompt = std::min<std::size_t>(16, n);
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    s.reset();
    const auto t0 = std::chrono::steady_clock::now();
    s.forward(toks.data(), n, logits);
    best = std::min(best, seconds_since(t0));
  }
  r.prefill_tps = double(n) / best;
  s.reset();
  s.forward(toks.data(), prompt, logits);
  const std::size_t steps = std::min<std::size_t>(128, static_cast<std::size_t>(m.config.seq_len) - prompt);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < steps; ++i) {
    const std::int32_t t = static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    s.forward(&t, 1, logits);
  }
  r.decode_tps = double(steps) / seconds_since(t0);
}

/// --include / --exclude globs as a tensor-name predicate.
std::function<bool(const std::string&)> selected_by(const options& opt) {
  return [&opt](const std::string& name) {
    bool in = opt.include.empty();
    for (const auto& g : opt.include) in = in || fnmatch(g.c_str(), name.c_str(), 0) == 0;
    for (const auto& g : opt.exclude) in = in && fnmatch(g.c_str(), name.c_str(), 0) != 0;
    return in;
  };
}

/// File mode: one quant:ggml:<type> step applied to every selected 2-D float tensor of a
/// GGUF, streamed to --out; prints what changed. Exit code as main's.
int quantize_file(const pare::gguf_file& in, const std::string& model_path, const options& opt,
                  const std::function<bool(const std::string&)>& select) {
  if (opt.out.empty()) usage_error("file mode (--no-eval, or a GGUF that is not a llama model) needs --out PATH.gguf");
  if (opt.recipes.size() != 1 || opt.recipes[0].rfind("quant:ggml:", 0) != 0 || opt.recipes[0].find(',') != std::string::npos)
    usage_error("file mode: expected exactly one --recipe quant:ggml:<type>");
  pare::ggml_quant_spec spec;
  try {
    spec = pare::ggml_quant_spec::parse(opt.recipes[0].substr(11));
  } catch (const pare::error& e) {
    usage_error("--recipe '" + opt.recipes[0] + "': " + e.what());
  }
  if (spec.imatrix) usage_error("file mode: ':imatrix' needs calibration through a llama model (drop --no-eval)");
  pare::ggml::gguf_quantize_options qo;
  qo.target = spec.type;
  qo.select = select;
  qo.progress = [](const std::string& name) { std::cerr << "[quantize] " << name << "\n"; };
  const auto changes = pare::ggml::quantize_gguf(in, opt.out, qo);
  std::uint64_t before = 0, after = 0, elems = 0, converted = 0;
  for (std::size_t i = 0; i < changes.size(); ++i) {
    before += changes[i].bytes_in;
    after += changes[i].bytes_out;
    elems += in.tensors()[i].elements();
    converted += changes[i].converted;
  }
  std::printf("%s -> %s (%s): %llu of %zu tensors converted, %llu -> %llu bytes, %.3f -> %.3f bits/weight\n",
              model_path.c_str(), opt.out.c_str(), opt.recipes[0].c_str(), static_cast<unsigned long long>(converted),
              changes.size(), static_cast<unsigned long long>(before), static_cast<unsigned long long>(after),
              8.0 * double(before) / double(elems), 8.0 * double(after) / double(elems));
  for (const auto& c : changes)
    if (c.fallback) std::printf("  fallback %s: %s -> %s (%s)\n", c.name.c_str(), c.from.c_str(), c.to.c_str(), c.reason.c_str());
  return 0;
}

/// File mode for safetensors: one quant:<config> step (pare's integer formats) on every
/// selected 2-D ".weight" tensor, written as compressed-tensors pack-quantized.
int quantize_safetensors_file(const std::string& model_path, const options& opt) {
  if (fs::path(opt.out).extension() != ".safetensors")
    usage_error("a .safetensors --model needs --out PATH.safetensors (file mode: no model load or perplexity)");
  if (opt.recipes.size() != 1 || opt.recipes[0].rfind("quant:", 0) != 0 || opt.recipes[0].rfind("quant:ggml:", 0) == 0 ||
      opt.recipes[0].find(',') != std::string::npos)
    usage_error("safetensors file mode: expected exactly one --recipe quant:<config> (pare integer formats)");
  pare::quant_config cfg;
  try {
    cfg = pare::quant_config::parse(opt.recipes[0].substr(6));
  } catch (const pare::error& e) {
    usage_error("--recipe '" + opt.recipes[0] + "': " + e.what());
  }
  const pare::safetensors_file in = pare::safetensors_file::open(model_path);
  std::function<bool(const std::string&)> select;
  if (!opt.include.empty() || !opt.exclude.empty()) select = selected_by(opt);
  const auto changes = pare::quantize_safetensors(in, opt.out, cfg, select);
  std::size_t before = 0, after = 0, converted = 0;
  for (const auto& c : changes) {
    before += c.bytes_in;
    after += c.bytes_out;
    converted += c.converted;
  }
  std::printf("%s -> %s (%s, compressed-tensors pack-quantized): %zu of %zu tensors converted, %zu -> %zu bytes\n",
              model_path.c_str(), opt.out.c_str(), opt.recipes[0].c_str(), converted, changes.size(), before, after);
  for (const auto& c : changes)
    if (c.fallback) std::printf("  fallback %s: %s (%s)\n", c.name.c_str(), c.format.c_str(), c.reason.c_str());
  return 0;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const options opt = parse_args(argc, argv);
  std::unique_ptr<pare::thread_pool> pool;
  // Every exception ends here, so the stack unwinds: temporaries of outputs are removed
  // (pare::atomic_file) and nothing escapes main.
  try {
    if (opt.threads) {
      pool = std::make_unique<pare::thread_pool>(opt.threads);
      pare::set_executor(pool.get());
    }
    std::string model_path = opt.model;
    if (model_path.empty()) {
      std::vector<std::string> tried;
      model_path = find_model(tried);
      if (model_path.empty()) {
        std::cerr << "pare-compress: no model given and stories260K.bin not found. Looked at:\n";
        for (const auto& t : tried) std::cerr << "  " << t << "\n";
        std::cerr << "Fetch the public files stories260K/stories260K.bin and stories260K/tok512.bin from the Hugging Face\n"
                     "repository karpathy/tinyllamas into one of those folders (or pass --model and --tokenizer),\n"
                     "or set PARE_DATA_DIR to a folder holding models/ and text/.\n";
        return 2;
      }
    }
    // safetensors in, safetensors out: pare's integer formats as compressed-tensors pack-quantized.
    if (fs::path(model_path).extension() == ".safetensors") return quantize_safetensors_file(model_path, opt);
    if (fs::path(opt.out).extension() == ".safetensors")
      usage_error("--out '" + opt.out + "': safetensors output needs a .safetensors --model (file mode)");
    // The model is loaded once per report row (each recipe starts from the original).
    const bool gguf = pare::is_gguf_file(model_path);
    std::unique_ptr<pare::gguf_file> gf;
    std::unique_ptr<pare::llama2c_checkpoint> ck;
    if (gguf) gf = std::make_unique<pare::gguf_file>(pare::gguf_file::open(model_path));
    else ck = std::make_unique<pare::llama2c_checkpoint>(pare::llama2c_checkpoint::load(model_path));
    // File mode (like llama.cpp's quantize): any GGUF, not only llama models, converted
    // tensor by tensor without loading a model or measuring it.
    if (gguf && (opt.no_eval || gf->get_or<std::string>("general.architecture", "") != "llama"))
      return quantize_file(*gf, model_path, opt, selected_by(opt));
    auto fresh_model = [&] { return gguf ? pare::llama_model_from_gguf(*gf) : pare::llama_model::from_llama2c(*ck); };
    const std::string tok_path =
        opt.tokenizer.empty() ? (fs::path(model_path).parent_path() / "tok512.bin").string() : opt.tokenizer;
    const pare::tokenizer tok =
        gguf ? pare::tokenizer_from_gguf(*gf) : pare::load_llama2c_tokenizer(tok_path, ck->config().vocab_size);
    const std::string text_path = opt.text.empty() ? data_file(model_path, "text/tinystories_val_head.txt") : opt.text;
    std::ifstream tin(text_path, std::ios::binary);
    if (!tin) pare::detail::fail<pare::io_error>("cannot open text '", text_path, "'");
    std::stringstream ss;
    ss << tin.rdbuf();
    std::vector<std::int32_t> tokens = pare::protocol_tokens(tok, ss.str());
    if (opt.max_tokens && tokens.size() > opt.max_tokens) tokens.resize(opt.max_tokens);

    std::vector<std::string> recipes = opt.recipes;
    const bool default_table = recipes.empty() && opt.out.empty();
    if (default_table)
      recipes = {"quant:int8:per_channel:sym", "quant:int4:g32:sym",      "quant:int4:g32:asym",
                 "quant:int4:g32:sym:mse",     "quant:int4:g32:asym:mse", "quant:ggml:q8_0",
                 "quant:ggml:q4_0",            "quant:ggml:q4_1",         "quant:ggml:iq4_nl",
                 "prune:depth:1:ppl",          "prune:depth:1:taylor+",   "prune:depth:1:magnitude",
                 "prune:depth:2:ppl",          "prune:depth:2:taylor+",   "prune:depth:2:magnitude",
                 "prune:ffn:0.25:activation",  "prune:ffn:0.25:magnitude", "share:kmeans:4bit",
                 "prune:unstructured:0.5:magnitude", "prune:unstructured:0.5:wanda",
                 "prune:nm:2:4:magnitude",     "prune:nm:2:4:wanda",
                 "lowrank:energy=0.9",         "lowrank:energy=0.9:asvd",    "lowrank:energy=0.9:whiten",
                 "lowrank:energy=0.95",        "lowrank:energy=0.95:asvd",   "lowrank:energy=0.95:whiten",
                 "slicegpt:0.1",               "slicegpt:0.25",              "slicegpt:0.1:global",
                 "slicegpt:0.25:global"};
    const bool sensitivity = opt.sensitivity == 1 || (opt.sensitivity == -1 && default_table);
    // Validate every recipe before the long work starts.
    std::vector<std::vector<pare::recipe_step>> plans;
    bool need_calib = false;
    for (const std::string& r : recipes) {
      std::vector<pare::recipe_step> steps;
      for (const std::string& step : pare::split(r, ',')) {
        try {
          steps.push_back(pare::parse_recipe_step(step));
        } catch (const pare::error& e) {
          usage_error("--recipe '" + r + "': " + e.what());
        }
        if (!opt.out.empty() && !steps.back().writes_gguf())
          usage_error("--out '" + opt.out + "': step '" + step +
                      "' makes layers GGUF has no type for (expected quant:ggml:<type>, prune or "
                      "slicegpt:<f>:global steps)");
        need_calib = need_calib || steps.back().needs_calibration();
      }
      plans.push_back(steps);
    }
    // Calibration text (not the evaluated text): importance matrices, activation criteria,
    // PPL-drop and Taylor scores.
    pare::calibration_set cal;
    cal.window = opt.window;
    if (need_calib || sensitivity) {
      const std::string calib_path =
          opt.calib.empty() ? data_file(model_path, "text/tinystories_sample_cs336.txt") : opt.calib;
      std::ifstream cin_(calib_path, std::ios::binary);
      if (!cin_) pare::detail::fail<pare::io_error>("cannot open calibration text '", calib_path, "'");
      std::stringstream cs;
      cs << cin_.rdbuf();
      cal.tokens = pare::protocol_tokens(tok, cs.str());
      std::cerr << "[calibration] " << cal.tokens.size() << " tokens of " << calib_path << "\n";
    }
    const auto selected = selected_by(opt);

    std::vector<row> rows;
    auto evaluate = [&](const std::string& name, pare::llama_model& m, std::vector<pare::layer_change> changes) {
      row r;
      r.recipe = name;
      r.changes = std::move(changes);
      r.bytes = m.storage_bytes();
      r.weights = m.weight_count();
      r.bits_per_weight = 8.0 * double(r.bytes) / double(r.weights);
      std::cerr << "[" << name << "] perplexity over " << tokens.size() << " tokens...\n";
      r.ppl = pare::perplexity(m, tokens, nullptr, opt.window);
      measure_speed(m, tokens, opt.window, r);
      rows.push_back(std::move(r));
    };
    {
      pare::llama_model m = fresh_model();
      evaluate("fp32", m, {});
    }
    for (std::size_t i = 0; i < recipes.size(); ++i) {
      pare::llama_model m = fresh_model();
      std::vector<pare::layer_change> changes;
      for (const pare::recipe_step& st : plans[i]) {
        std::cerr << "[" << recipes[i] << "] " << st.text << "...\n";
        auto ch = pare::apply_recipe_step(st, m, selected, cal);
        changes.insert(changes.end(), ch.begin(), ch.end());
      }
      evaluate(recipes[i], m, std::move(changes));
      if (!opt.out.empty()) {
        pare::write_model_gguf(m, tok, opt.out);
        std::cerr << "[" << recipes[i] << "] wrote " << opt.out << " (" << fs::file_size(opt.out) << " bytes)\n";
      }
    }
    if (!opt.out.empty() && recipes.empty()) {
      pare::write_model_gguf(fresh_model(), tok, opt.out);
      std::cerr << "[fp32] wrote " << opt.out << " (" << fs::file_size(opt.out) << " bytes)\n";
    }

    // Block sensitivity (Shortened LLaMA): each block's removal on the evaluated text and
    // on the calibration text, its Taylor score and magnitude.
    struct block_row {
      double ppl_eval = 0, ppl_calib = 0, taylor = 0, magnitude = 0;
    };
    std::vector<block_row> blocks;
    if (sensitivity) {
      pare::llama_model m = fresh_model();
      std::cerr << "[sensitivity] " << m.blocks.size() << " blocks...\n";
      const auto pe = pare::ppl_drop_scores(
          m, [&](const pare::llama_model& x) { return pare::perplexity(x, tokens, nullptr, opt.window).ppl; });
      const auto pc = pare::ppl_drop_scores(m, [&](const pare::llama_model& x) { return cal.ppl(x); });
      const auto ts = pare::taylor_block_scores(m, cal.windows(m));
      const auto ms = pare::magnitude_block_scores(m);
      for (std::size_t b = 0; b < m.blocks.size(); ++b) blocks.push_back({pe[b], pc[b], ts[b], ms[b]});
    }

    const double base = rows.front().ppl.ppl;
    if (opt.report == "json") {
      std::cout << "{\"model\": \"" << json_escape(model_path) << "\", \"text\": \"" << json_escape(text_path)
                << "\", \"predicted_tokens\": " << rows.front().ppl.predicted << ", \"rows\": [\n";
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const row& r = rows[i];
        std::cout << "  {\"recipe\": \"" << json_escape(r.recipe) << "\", \"bits_per_weight\": " << r.bits_per_weight
                  << ", \"bytes\": " << r.bytes << ", \"weights\": " << r.weights << ", \"perplexity\": " << r.ppl.ppl
                  << ", \"delta_ppl_percent\": " << 100.0 * (r.ppl.ppl / base - 1.0)
                  << ", \"prefill_tokens_per_s\": " << r.prefill_tps << ", \"decode_tokens_per_s\": " << r.decode_tps
                  << ", \"fallbacks\": [";
        bool first = true;
        for (const auto& c : r.changes)
          if (c.fallback) {
            std::cout << (first ? "" : ", ") << "{\"tensor\": \"" << c.name << "\", \"format\": \"" << c.format
                      << "\", \"reason\": \"" << json_escape(c.reason) << "\"}";
            first = false;
          }
        std::cout << "]}" << (i + 1 < rows.size() ? ",\n" : "\n");
      }
      std::cout << "], \"block_sensitivity\": [";
      for (std::size_t b = 0; b < blocks.size(); ++b)
        std::cout << (b ? ", " : "") << "{\"block\": " << b << ", \"ppl_without\": " << blocks[b].ppl_eval
                  << ", \"calib_ppl_without\": " << blocks[b].ppl_calib << ", \"taylor\": " << blocks[b].taylor
                  << ", \"magnitude\": " << blocks[b].magnitude << "}";
      std::cout << "]}\n";
    } else {
      std::printf("model %s, text %s: %zu predicted tokens in %zu windows of %zu\n\n", model_path.c_str(),
                  text_path.c_str(), rows.front().ppl.predicted, rows.front().ppl.windows, opt.window);
      std::printf("| recipe | bits/weight | bytes | weights | perplexity | ΔPPL %% | prefill tok/s | decode tok/s |\n");
      std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
      for (const row& r : rows)
        std::printf("| %s | %.3f | %zu | %zu | %.4f | %+.2f | %.0f | %.0f |\n", r.recipe.c_str(), r.bits_per_weight,
                    r.bytes, r.weights, r.ppl.ppl, 100.0 * (r.ppl.ppl / base - 1.0), r.prefill_tps, r.decode_tps);
      bool any = false;
      for (const row& r : rows) {
        // One line per (recipe, fallback format, reason) with the tensors it concerns.
        std::vector<const pare::layer_change*> done;
        for (const auto& c : r.changes) {
          if (!c.fallback) continue;
          bool seen = false;
          for (const auto* d : done) seen = seen || (d->format == c.format && d->reason == c.reason);
          if (seen) continue;
          done.push_back(&c);
          std::string names;
          std::size_t count = 0;
          for (const auto& e : r.changes)
            if (e.fallback && e.format == c.format && e.reason == c.reason) {
              names += (count++ ? ", " : "") + e.name;
            }
          if (!any) std::printf("\nfallbacks (tensors the recipe's format cannot take):\n");
          any = true;
          std::printf("  %s: %zu tensor%s -> %s (%s): %s\n", r.recipe.c_str(), count, count == 1 ? "" : "s",
                      c.format.c_str(), c.reason.c_str(), names.c_str());
        }
      }
      bool any_struct = false;
      for (const row& r : rows) {
        std::string what;
        for (const auto& c : r.changes)
          if (!c.fallback && !c.reason.empty()) what += (what.empty() ? "" : "; ") + c.name + " " + c.format;
        if (what.empty()) continue;
        if (!any_struct) std::printf("\nstructural changes:\n");
        any_struct = true;
        std::printf("  %s: %s\n", r.recipe.c_str(), what.c_str());
      }
      std::printf("\nweights: the model's weights, a linear layer counting out x in whatever its storage (pruned\n"
                  "blocks, FFN neurons and sliced widths remove weights; factorized, shared and quantized layers\n"
                  "do not). bits/weight = 8 x bytes / weights: every stored byte (embedding, norms, scales, zero\n"
                  "points, residual linears); the tied classifier is stored once. Linear layers run on: ");
      std::string backends;
      for (const row& r : rows)
        for (const auto& c : r.changes)
          if (backends.find(c.backend) == std::string::npos) backends += (backends.empty() ? "" : ", ") + c.backend;
      std::printf("%s.\n", backends.empty() ? "f32" : backends.c_str());
      if (!blocks.empty()) {
        std::printf("\nblock sensitivity (perplexity with the block removed; Taylor = Σ|w·∂L/∂w| and magnitude = Σ|w|\n"
                    "over the block; calibration text: %zu tokens; Taylor+ keeps the first and last block):\n\n",
                    cal.tokens.size());
        std::printf("| block | PPL without (eval) | ΔPPL %% | PPL without (calib) | Taylor | magnitude |\n");
        std::printf("|---:|---:|---:|---:|---:|---:|\n");
        for (std::size_t b = 0; b < blocks.size(); ++b)
          std::printf("| %zu | %.4f | %+.1f | %.4f | %.5f | %.1f |\n", b, blocks[b].ppl_eval,
                      100.0 * (blocks[b].ppl_eval / base - 1.0), blocks[b].ppl_calib, blocks[b].taylor,
                      blocks[b].magnitude);
      }
    }
    return 0;
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
