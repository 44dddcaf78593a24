// plan: pare-compress's checks before any long work, and the inputs they open (model, tokenizer, texts, recipes, output).
#include "plan.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fnmatch.h>
#include <fstream>

#include "files.hpp"
#include "pare/core/strings.hpp"
#include "pare/io/gguf.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/io/safetensors.hpp"
#include "pare/io/tokenizer.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/pipeline/recipe.hpp"

#ifndef PARE_DATA_DIR_DEFAULT
#define PARE_DATA_DIR_DEFAULT "../shared/data"
#endif

namespace fs = std::filesystem;

namespace pare_compress {

plan::plan() = default;
plan::plan(plan&&) noexcept = default;
plan& plan::operator=(plan&&) noexcept = default;
plan::~plan() = default;

std::function<bool(const std::string&)> plan::selection() const {
  return [include = include, exclude = exclude](const std::string& name) {
    bool in = include.empty();
    for (const auto& g : include) in = in || fnmatch(g.c_str(), name.c_str(), 0) == 0;
    for (const auto& g : exclude) in = in && fnmatch(g.c_str(), name.c_str(), 0) != 0;
    return in;
  };
}

namespace {

// The default table: one row per method family, on stories260K.
const std::vector<std::string> default_recipes = {
    "quant:int8:per_channel:sym",       "quant:int4:g32:sym",           "quant:int4:g32:asym",
    "quant:int4:g32:sym:mse",           "quant:int4:g32:asym:mse",      "quant:ggml:q8_0",
    "quant:ggml:q4_0",                  "quant:ggml:q4_1",              "quant:ggml:iq4_nl",
    "prune:depth:1:ppl",                "prune:depth:1:taylor+",        "prune:depth:1:magnitude",
    "prune:depth:2:ppl",                "prune:depth:2:taylor+",        "prune:depth:2:magnitude",
    "prune:ffn:0.25:activation",        "prune:ffn:0.25:magnitude",     "share:kmeans:4bit",
    "prune:unstructured:0.5:magnitude", "prune:unstructured:0.5:wanda", "prune:nm:2:4:magnitude",
    "prune:nm:2:4:wanda",               "lowrank:energy=0.9",           "lowrank:energy=0.9:asvd",
    "lowrank:energy=0.9:whiten",        "lowrank:energy=0.95",          "lowrank:energy=0.95:asvd",
    "lowrank:energy=0.95:whiten",       "slicegpt:0.1",                 "slicegpt:0.25",
    "slicegpt:0.1:global",              "slicegpt:0.25:global",         "gptq:int4:g32:asym:mse:fptarget:damp=0.1",
    "awq:int4:g32:asym",                "sparsegpt:0.5:per_row:fptarget", "sparsegpt:2:4:fptarget",
    "gptq:ggml:q4_0:fptarget",          "smoothquant:0.5:w8a8"};

std::string extension_of(const std::string& path) { return fs::path(path).extension().string(); }

/// --out's own rules: a .gguf or .safetensors path, at most one recipe.
void check_out_options(const options& o) {
  if (o.out.empty()) return;
  const std::string ext = extension_of(o.out);
  if (ext != ".gguf" && ext != ".safetensors")
    throw usage_error("--out '" + o.out + "': expected a .gguf or .safetensors path");
  if (o.recipes.size() > 1)
    throw usage_error("--out: expected at most one --recipe (the model written is that recipe's), got " +
                      std::to_string(o.recipes.size()));
}

/// --plot's own rules: a .svg path, and an evaluation to chart (file mode measures no perplexity).
void check_plot_options(const options& o) {
  if (o.plot.empty()) return;
  std::string ext = extension_of(o.plot);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (ext != ".svg")
    throw usage_error("--plot '" + o.plot + "': expected a .svg path (the chart is SVG), got " +
                      (ext.empty() ? std::string("no extension") : "'" + ext + "'"));
  if (o.no_eval)
    throw usage_error("--plot: expected rows with perplexity to chart (an evaluation), got --no-eval (file mode "
                      "measures no perplexity)");
}

/// File modes measure no perplexity: --plot, given, is refused with the reason (`got`).
void refuse_plot_in_file_mode(const options& o, const std::string& got) {
  if (!o.plot.empty())
    throw usage_error("--plot: expected rows with perplexity to chart (an evaluation), got " + got +
                      " (file mode measures no perplexity)");
}

/// Every --recipe parsed into steps; usage_error naming the recipe and the step.
std::vector<std::vector<pare::recipe_step>> parse_recipes(const std::vector<std::string>& recipes) {
  std::vector<std::vector<pare::recipe_step>> all;
  for (const std::string& r : recipes) {
    std::vector<pare::recipe_step> steps;
    for (const std::string& step : pare::split(r, ',')) {
      try {
        steps.push_back(pare::parse_recipe_step(step));
      } catch (const pare::error& e) {
        throw usage_error("--recipe '" + r + "': " + e.what());
      }
    }
    all.push_back(std::move(steps));
  }
  return all;
}

/// stories260K.bin in $PARE_DATA_DIR/models, the build's data folder, ../shared/data/models, ".".
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

/// A data file beside the model's folder (…/data/models/x.bin → …/data/<rel>), else in the data folders.
std::string data_file(const std::string& model_path, const std::string& rel) {
  const fs::path base = fs::path(model_path).parent_path().parent_path() / rel;
  if (fs::is_regular_file(base)) return base.string();
  if (const char* env = std::getenv("PARE_DATA_DIR"))
    if (fs::is_regular_file(fs::path(env) / rel)) return (fs::path(env) / rel).string();
  return (fs::path(PARE_DATA_DIR_DEFAULT) / rel).string();
}

/// --model, or the default model; every given input path readable (FIFOs refused unopened).
std::string resolve_inputs(const options& o) {
  for (const named_path& f : {named_path{"--tokenizer", o.tokenizer}, named_path{"--text", o.text},
                              named_path{"--calib", o.calib}})
    if (!f.path.empty()) require_readable_file(f);
  if (!o.model.empty()) {
    require_readable_file({"--model", o.model});
    return o.model;
  }
  std::vector<std::string> tried;
  std::string path = find_model(tried);
  if (path.empty()) throw no_model_found(std::move(tried));
  require_readable_file({"model (found by default; pass --model)", path});
  return path;
}

/// The only step of the only recipe, or null.
const pare::recipe_step* single_step(const plan& p) {
  return p.steps.size() == 1 && p.steps[0].size() == 1 ? &p.steps[0][0] : nullptr;
}

/// The outputs (--out, --plot): not an input nor each other, writable. Inputs are every file the run reads.
void check_output(const plan& p, const options& o) {
  if (p.out.empty() && p.plot.empty()) return;
  std::vector<named_path> inputs = {{"--model", p.model_path}};
  for (const named_path& f : {named_path{"--tokenizer", p.tokenizer_path.empty() ? o.tokenizer : p.tokenizer_path},
                              named_path{"--text", p.text_path.empty() ? o.text : p.text_path},
                              named_path{"--calib", p.calib_path.empty() ? o.calib : p.calib_path}})
    if (!f.path.empty()) inputs.push_back(f);
  if (!p.out.empty()) require_writable_output({"--out", p.out}, inputs);
  if (p.plot.empty()) return;
  if (!p.out.empty()) inputs.push_back({"--out", p.out});
  require_writable_output({"--plot", p.plot}, inputs);
}

void plan_safetensors_file(plan& p, const options& o) {
  if (extension_of(p.out) != ".safetensors")
    throw usage_error("a .safetensors --model needs --out PATH.safetensors (file mode: no model load or perplexity)");
  const pare::recipe_step* st = single_step(p);
  if (!st || st->kind != pare::recipe_step::quant)
    throw usage_error("safetensors file mode: expected exactly one --recipe quant:<config> (pare integer formats)");
  refuse_plot_in_file_mode(o, "a .safetensors --model '" + p.model_path + "'");
  p.how = mode::safetensors_file;
  check_output(p, o);
  p.safetensors = std::make_shared<const pare::safetensors_file>(pare::safetensors_file::open(p.model_path));
}

void plan_gguf_file(plan& p, const options& o) {
  if (p.out.empty())
    throw usage_error("file mode (--no-eval, or a GGUF that is not a llama model) needs --out PATH.gguf");
  if (extension_of(p.out) == ".safetensors")
    throw usage_error("--out '" + p.out + "': safetensors output needs a .safetensors --model (file mode)");
  const pare::recipe_step* st = single_step(p);
  if (!st || st->kind != pare::recipe_step::ggml)
    throw usage_error("file mode: expected exactly one --recipe quant:ggml:<type>");
  if (st->ggml_spec.imatrix)
    throw usage_error("file mode: ':imatrix' needs calibration through a llama model (drop --no-eval)");
  refuse_plot_in_file_mode(o, "a GGUF --model of architecture '" +
                                  p.gguf->get_or<std::string>("general.architecture", "") + "', not llama");
  p.how = mode::gguf_file;
  check_output(p, o);
}

/// The checkpoint; a file that is not one and does not say .bin is told why it was read as one.
std::shared_ptr<const pare::llama2c_checkpoint> open_llama2c(const std::string& path) {
  try {
    return std::make_shared<const pare::llama2c_checkpoint>(pare::llama2c_checkpoint::load(path));
  } catch (const pare::format_error& e) {
    if (extension_of(path) == ".bin") throw;
    std::uint8_t head[16] = {};
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(head), sizeof head);
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    throw pare::format_error(std::string(e.what()) +
                             " (read as a llama2.c checkpoint, the format without magic bytes, because the file is "
                             "neither GGUF nor safetensors: " +
                             pare::describe_first_bytes(head, static_cast<std::size_t>(in.gcount()), ec ? 0 : size) +
                             ")");
  }
}

/// Who needs the calibration text ("--sensitivity", "--recipe 'x'"), or "" if nothing does.
std::string calibration_user(const plan& p) {
  if (p.sensitivity) return "--sensitivity";
  for (std::size_t i = 0; i < p.steps.size(); ++i)
    for (const pare::recipe_step& st : p.steps[i])
      if (st.needs_calibration())
        return "--recipe '" + p.recipes[i] + "'" + (st.text == p.recipes[i] ? "" : " (its step '" + st.text + "')");
  return {};
}

/// The files an evaluation reads, named as messages name them (defaults say so).
struct evaluation_inputs {
  named_path tokenizer, text, calib;  // tokenizer: llama2.c models; calib: when needed
  std::string calib_user;
};

evaluation_inputs evaluation_inputs_of(const plan& p, const options& o) {
  evaluation_inputs in;
  if (!p.gguf)
    in.tokenizer = {o.tokenizer.empty() ? "tokenizer (the default, beside the model; pass --tokenizer)" : "--tokenizer",
                    o.tokenizer.empty() ? (fs::path(p.model_path).parent_path() / "tok512.bin").string() : o.tokenizer};
  in.text = {o.text.empty() ? "text (the default; pass --text)" : "--text",
             o.text.empty() ? data_file(p.model_path, "text/tinystories_val_head.txt") : o.text};
  in.calib_user = calibration_user(p);
  if (!in.calib_user.empty())
    in.calib = {o.calib.empty() ? "calibration text (the default; pass --calib)" : "--calib",
                o.calib.empty() ? data_file(p.model_path, "text/tinystories_val_tail.txt") : o.calib};
  return in;
}

/// The evaluated text's tokens: at least 2 (one predicted), --max-tokens applied.
void load_text(plan& p, const named_path& f, std::size_t max_tokens) {
  p.tokens = pare::protocol_tokens(*p.tok, read_text_file(f));
  if (p.tokens.size() < 2)
    throw usage_error(f.what + " '" + f.path +
                      "': expected text to score (a paragraph that is not blank: at least 2 tokens under the "
                      "perplexity protocol), got " + std::to_string(p.tokens.size()) + " tokens");
  if (max_tokens && p.tokens.size() > max_tokens) p.tokens.resize(max_tokens);
}

/// The calibration text's tokens: at least 2; the first --calib-windows windows of
/// --calib-window tokens.
void load_calibration(plan& p, const named_path& f, const std::string& user, const options& o) {
  p.calib_tokens = pare::protocol_tokens(*p.tok, read_text_file(f));
  if (p.calib_tokens.size() < 2)
    throw usage_error(f.what + " '" + f.path +
                      "': expected calibration text (a paragraph that is not blank: at least 2 tokens) for " + user +
                      ", got " + std::to_string(p.calib_tokens.size()) + " tokens");
  if (o.calib_windows && p.calib_tokens.size() / p.calib_window > o.calib_windows)
    p.calib_tokens.resize(o.calib_windows * p.calib_window);
}

void plan_evaluation(plan& p, const options& o) {
  if (extension_of(p.out) == ".safetensors")
    throw usage_error("--out '" + p.out + "': safetensors output needs a .safetensors --model (file mode)");
  p.how = mode::evaluate;
  p.default_table = p.recipes.empty() && p.out.empty();
  if (p.default_table) {
    p.recipes = default_recipes;
    p.steps = parse_recipes(p.recipes);
  }
  p.sensitivity = o.sensitivity == 1 || (o.sensitivity == -1 && p.default_table);
  if (!p.out.empty())
    for (std::size_t i = 0; i < p.steps.size(); ++i)
      for (const pare::recipe_step& st : p.steps[i])
        if (!st.writes_gguf())
          throw usage_error("--out '" + p.out + "': step '" + st.text +
                            "' makes layers GGUF has no type for (expected quant:ggml:<type>, prune or "
                            "slicegpt:<f>:global steps)");
  // Every path first (the output must not be one of them), then the reading.
  const evaluation_inputs in = evaluation_inputs_of(p, o);
  p.tokenizer_path = in.tokenizer.path;
  p.text_path = in.text.path;
  p.calib_path = in.calib.path;
  for (const named_path& f : {in.tokenizer, in.text, in.calib})
    if (!f.path.empty()) require_readable_file(f);
  check_output(p, o);
  std::size_t context = 0;  // the model's context: calibration windows are capped at it
  if (p.gguf) {
    p.tok = std::make_shared<const pare::tokenizer>(pare::tokenizer_from_gguf(*p.gguf));
    p.n_layers = static_cast<std::size_t>(p.gguf->get_or<int>("llama.block_count", 0));
    context = static_cast<std::size_t>(p.gguf->get_or<int>("llama.context_length", 0));
  } else {
    p.tok = std::make_shared<const pare::tokenizer>(
        pare::load_llama2c_tokenizer(in.tokenizer.path, p.checkpoint->config().vocab_size));
    p.n_layers = static_cast<std::size_t>(p.checkpoint->config().n_layers);
    context = static_cast<std::size_t>(p.checkpoint->config().seq_len);
  }
  if (context) p.calib_window = std::min(p.calib_window, context);
  load_text(p, in.text, o.max_tokens);
  if (!in.calib.path.empty()) load_calibration(p, in.calib, in.calib_user, o);
}

}  // namespace

plan make_plan(const options& o) {
  plan p;
  // Options on their own first: nothing is opened for a command line that cannot work.
  if (o.max_tokens == 1)
    throw usage_error("--max-tokens: expected 0 (the whole text) or at least 2 (one predicted token), got '1'");
  check_out_options(o);
  check_plot_options(o);
  p.recipes = o.recipes;
  p.steps = parse_recipes(o.recipes);
  p.window = o.window;
  p.calib_window = o.calib_window ? o.calib_window : o.window;
  p.threads = o.threads;
  p.out = o.out;
  p.plot = o.plot;
  p.report = o.report;
  p.include = o.include;
  p.exclude = o.exclude;

  // The model: its format by its first bytes, then the mode.
  p.model_path = resolve_inputs(o);
  switch (pare::model_file_format_of(p.model_path)) {
    case pare::model_file_format::safetensors:
      plan_safetensors_file(p, o);
      break;
    case pare::model_file_format::gguf:
      p.gguf = std::make_shared<const pare::gguf_file>(pare::gguf_file::open(p.model_path));
      if (o.no_eval || p.gguf->get_or<std::string>("general.architecture", "") != "llama")
        plan_gguf_file(p, o);
      else
        plan_evaluation(p, o);
      break;
    case pare::model_file_format::llama2c:
      if (o.no_eval)
        throw usage_error("--no-eval: file mode converts GGUF files tensor by tensor; expected a GGUF --model, got '" +
                          p.model_path + "', a llama2.c checkpoint (drop --no-eval to evaluate it; --out X.gguf writes "
                          "it as GGUF)");
      p.checkpoint = open_llama2c(p.model_path);
      plan_evaluation(p, o);
      break;
  }
  return p;
}

}  // namespace pare_compress
