// pare umbrella header: includes the whole public surface (users include this; pare's own headers include what they use).
#pragma once

// Maintenance: one line per public header, grouped by layer, bottom to top. ISA-specific
// kernel files (kernels/x86/, kernels/arm/, kernels/simd/, core/dtypes/x86/) and scalar
// references (kernels/ref/) are reached through their dispatching headers, not listed here.

#include "pare/version.hpp"

// core: views, element types, errors, buffers, threads, ISA detection and dispatch
#include "pare/core/aligned_buffer.hpp"
#include "pare/core/config.hpp"
#include "pare/core/dispatch.hpp"
#include "pare/core/dtypes.hpp"
#include "pare/core/error.hpp"
#include "pare/core/isa.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/rng.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/core/xtensor_interop.hpp"

// kernels: dispatched row kernels; int8 / int4 / fp32 matmul
#include "pare/kernels/matmul/activations.hpp"
#include "pare/kernels/matmul/matmul_f32.hpp"
#include "pare/kernels/matmul/matmul_int.hpp"
#include "pare/kernels/matmul/packed_weights.hpp"
#include "pare/kernels/matmul/weight_source.hpp"
#include "pare/kernels/quantize_row.hpp"
#include "pare/kernels/row_qparams.hpp"

// quant: policies, observers, runtime config, quantizer, quantize/dequantize, fake-quant
#include "pare/quant/affine.hpp"
#include "pare/quant/fake_quant.hpp"
#include "pare/quant/fake_quant_linear.hpp"
#include "pare/quant/format.hpp"
#include "pare/quant/granularity.hpp"
#include "pare/quant/observers.hpp"
#include "pare/quant/quant_config.hpp"
#include "pare/quant/quantize.hpp"
#include "pare/quant/quantized_tensor.hpp"
#include "pare/quant/quantizer.hpp"
#include "pare/quant/rounding.hpp"
#include "pare/quant/scheme.hpp"

// io: model files
#include "pare/ggml/quantize.hpp"
#include "pare/ggml/quantizer.hpp"
#include "pare/ggml/types.hpp"
#include "pare/ggml/weight_source.hpp"
#include "pare/io/atomic_file.hpp"
#include "pare/io/compressed_tensors.hpp"
#include "pare/io/llama2c_writer.hpp"
#include "pare/io/safetensors.hpp"
#include "pare/io/safetensors_writer.hpp"
#include "pare/io/gguf.hpp"
#include "pare/io/gguf_writer.hpp"
#include "pare/io/gguf_types.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/io/mapped_file.hpp"

// model: reference LLaMA model and what runs on it
#include "pare/model/calibration.hpp"
#include "pare/model/export_gguf.hpp"
#include "pare/model/export_llama2c.hpp"
#include "pare/model/export_model_gguf.hpp"
#include "pare/model/ggml_compress.hpp"
#include "pare/model/ggml_linear.hpp"
#include "pare/model/compress.hpp"
#include "pare/model/linear.hpp"
#include "pare/model/llama_config.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/model/quantized_linear.hpp"
#include "pare/model/sampler.hpp"
#include "pare/model/surgery.hpp"
#include "pare/model/tokenizer.hpp"
