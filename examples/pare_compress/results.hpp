// results: what a pare-compress run measured, handed from run to report (plain values, no pare types).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pare_compress {

/// One layer a step changed (pare::layer_change as the report shows it).
struct change {
  std::string name, format, backend;
  bool fallback = false;
  std::string reason;
};

/// One report row: a recipe applied to a fresh copy of the model, and its measurements.
struct row {
  std::string recipe;
  double bits_per_weight = 0;
  std::size_t bytes = 0, weights = 0;
  double ppl = 0;                  ///< perplexity under the protocol
  std::size_t predicted = 0, windows = 0;
  double prefill_tps = 0, decode_tps = 0;
  std::vector<change> changes;
};

/// Block sensitivity (Shortened LLaMA): perplexity without each block on the evaluated and
/// on the calibration text, its Taylor score and magnitude.
struct block_row {
  double ppl_eval = 0, ppl_calib = 0, taylor = 0, magnitude = 0;
};

/// Evaluation mode: rows[0] is the fp32 baseline.
struct evaluation {
  std::string model_path, text_path;
  std::size_t window = 0, calib_tokens = 0;
  std::vector<row> rows;
  std::vector<block_row> blocks;  ///< empty without --sensitivity
};

/// File mode: one line per tensor the conversion saw.
struct tensor_change {
  std::string name, from, to;  ///< type or format names
  std::uint64_t bytes_in = 0, bytes_out = 0, elements = 0;
  bool converted = false, fallback = false;
  std::string reason;
};

struct conversion {
  enum class kind { gguf, safetensors } format = kind::gguf;
  std::string model_path, out_path, recipe;
  std::vector<tensor_change> tensors;
};

}  // namespace pare_compress
