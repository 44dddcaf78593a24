// plan: every check of a pare-compress run, made before any long work: options together, model file and format, tokenizer and texts, recipes, output.
#pragma once

// make_plan() turns the command line into what the run needs, or throws. Inputs are
// opened and validated here (the model file, its tokenizer, the evaluated and the
// calibration text tokenized), recipes are parsed, the output path is checked (writable,
// not an input); building models, applying steps and measuring are the run's (run.hpp).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "options.hpp"
#include "pare/core/config.hpp"

PARE_NAMESPACE_BEGIN
class gguf_file;
class llama2c_checkpoint;
class safetensors_file;
class tokenizer;
struct recipe_step;
PARE_NAMESPACE_END

namespace pare_compress {

/// No --model and no stories260K.bin in the usual places; main lists them and exits with 2.
class no_model_found : public std::runtime_error {
 public:
  explicit no_model_found(std::vector<std::string> tried)
      : std::runtime_error("no model given and stories260K.bin not found"), tried(std::move(tried)) {}
  std::vector<std::string> tried;
};

/// evaluate: load, apply each recipe, measure, report (optionally --out). gguf_file /
/// safetensors_file: file mode, one conversion tensor by tensor, no model.
enum class mode { evaluate, gguf_file, safetensors_file };

struct plan {
  plan();
  plan(plan&&) noexcept;
  plan& operator=(plan&&) noexcept;
  ~plan();

  mode how = mode::evaluate;
  std::string model_path;
  std::shared_ptr<const pare::gguf_file> gguf;                // GGUF input, opened
  std::shared_ptr<const pare::llama2c_checkpoint> checkpoint;  // llama2.c input, loaded
  std::shared_ptr<const pare::safetensors_file> safetensors;   // safetensors input, opened
  std::size_t n_layers = 0;                                    // the model's blocks (evaluate mode)

  std::shared_ptr<const pare::tokenizer> tok;  // evaluate mode
  std::string tokenizer_path, text_path, calib_path;  // files read (evaluate mode)
  std::vector<std::int32_t> tokens;        // the evaluated text under the protocol (--max-tokens applied)
  std::vector<std::int32_t> calib_tokens;  // when a step or --sensitivity needs calibration

  std::vector<std::string> recipes;                   // one report row each, after fp32
  std::vector<std::vector<pare::recipe_step>> steps;  // recipes[i] parsed
  bool default_table = false, sensitivity = false;
  std::size_t window = 512, threads = 0;
  std::size_t calib_window = 512;  // tokens per calibration window (capped at the model's context when used)
  std::string out, report = "md";
  std::string plot;  // --plot FILE.svg, written after the run (evaluate mode only)
  std::vector<std::string> include, exclude;

  /// --include / --exclude as a tensor-name predicate (everything when both are empty).
  std::function<bool(const std::string&)> selection() const;
};

/// Checks everything and opens the inputs. usage_error (options, paths, recipes),
/// no_model_found, or pare::error from the readers (a malformed model or tokenizer file).
plan make_plan(const options& o);

}  // namespace pare_compress
