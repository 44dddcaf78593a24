// run: the long work of pare-compress, on a checked plan: load, apply each recipe, measure (or convert a file), with progress on stderr.
#pragma once

#include "plan.hpp"
#include "results.hpp"

namespace pare_compress {

/// Evaluate mode: the fp32 row, one row per recipe (each from a fresh copy of the model),
/// --out written after its row, then the block-sensitivity table if asked for.
evaluation run_evaluation(const plan& p);

/// File mode for GGUF: the quant:ggml:<type> step on every selected 2-D float tensor,
/// streamed to --out (llama.cpp's quantize).
conversion run_gguf_file(const plan& p);

/// File mode for safetensors: the quant:<config> step, written as compressed-tensors
/// pack-quantized.
conversion run_safetensors_file(const plan& p);

}  // namespace pare_compress
