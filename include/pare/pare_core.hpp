// pare core umbrella header: every public header that needs no LAPACK/BLAS (quantization, pruning, kernels, files, the model), in layer order.
#pragma once

// For engines that want pare without a linear-algebra library: link pare::pare and include
// this. pare/pare.hpp adds the LAPACK-based parts (link pare::linalg). Maintenance: one line
// per public header, grouped by layer, bottom to top (docs/DESIGN.md); ISA-specific kernel
// files (x86/, arm/, ref/, detail/) are reached through their dispatching headers.
// tests/layers/include_order.cmake checks that every public header is listed once in the
// two umbrellas and that nothing here reaches LAPACK.

#include "pare/version.hpp"

// core: views, element types, affine integer mapping, errors, buffers, threads, ISA detection and dispatch
#include "pare/core/affine.hpp"
#include "pare/core/aligned_buffer.hpp"
#include "pare/core/config.hpp"
#include "pare/core/dispatch.hpp"
#include "pare/core/dtypes.hpp"
#include "pare/core/dtypes/bf16.hpp"
#include "pare/core/dtypes/float_bits.hpp"
#include "pare/core/dtypes/fp16.hpp"
#include "pare/core/dtypes/fp8.hpp"
#include "pare/core/dtypes/packed_int.hpp"
#include "pare/core/error.hpp"
#include "pare/core/huge_pages.hpp"
#include "pare/core/isa.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/progress.hpp"
#include "pare/core/rng.hpp"
#include "pare/core/strings.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/core/unroll.hpp"
#include "pare/core/xtensor_interop.hpp"

// kernels: dispatched row kernels; int8 / int4 / fp32 / 2:4 sparse matmul
#include "pare/kernels/matmul/act_rows.hpp"
#include "pare/kernels/matmul/activations.hpp"
#include "pare/kernels/matmul/matmul_args.hpp"
#include "pare/kernels/matmul/matmul_f32.hpp"
#include "pare/kernels/matmul/matmul_int.hpp"
#include "pare/kernels/matmul/packed_weights.hpp"
#include "pare/kernels/matmul/quantized_activations.hpp"
#include "pare/kernels/matmul/weight_source.hpp"
#include "pare/kernels/quantize_row.hpp"
#include "pare/kernels/row_qparams.hpp"
#include "pare/kernels/row_segments.hpp"
#include "pare/kernels/sparse/sparse24.hpp"

// stats: calibration statistics and observers
#include "pare/stats/linear_input_stats.hpp"
#include "pare/stats/observers.hpp"
#include "pare/stats/observers/any_observer.hpp"
#include "pare/stats/observers/ema_minmax.hpp"
#include "pare/stats/observers/histogram.hpp"
#include "pare/stats/observers/kl.hpp"
#include "pare/stats/observers/minmax.hpp"
#include "pare/stats/observers/mse.hpp"
#include "pare/stats/observers/observer.hpp"
#include "pare/stats/observers/percentile.hpp"

// quant: quantizers, configs, fake quantization, packing for the kernels
#include "pare/quant/fake_quant.hpp"
#include "pare/quant/fake_quant_linear.hpp"
#include "pare/quant/format.hpp"
#include "pare/quant/granularity.hpp"
#include "pare/quant/half_scale.hpp"
#include "pare/quant/kernel_weights.hpp"
#include "pare/quant/quant_config.hpp"
#include "pare/quant/quant_noise.hpp"
#include "pare/quant/quantize.hpp"
#include "pare/quant/quantized_tensor.hpp"
#include "pare/quant/quantizer.hpp"
#include "pare/quant/rounding.hpp"
#include "pare/quant/scheme.hpp"

// prune: criteria, masks, N:M, heads, schedules
#include "pare/prune/activation.hpp"
#include "pare/prune/block_model.hpp"
#include "pare/prune/granularity.hpp"
#include "pare/prune/heads.hpp"
#include "pare/prune/magnitude.hpp"
#include "pare/prune/mask.hpp"
#include "pare/prune/model_criteria.hpp"
#include "pare/prune/nm.hpp"
#include "pare/prune/prune_spec.hpp"
#include "pare/prune/pruner.hpp"
#include "pare/prune/prune.hpp"
#include "pare/prune/schedule.hpp"
#include "pare/prune/scores.hpp"
#include "pare/prune/sparse24.hpp"
#include "pare/prune/taylor.hpp"
#include "pare/prune/wanda.hpp"

// lowrank: SVD, randomized SVD, activation-aware factorization, rank policies
#include "pare/lowrank/rank_policy.hpp"

// share: k-means codebooks, hashing
#include "pare/share/hashing.hpp"
#include "pare/share/kmeans.hpp"

// distill: distillation losses
#include "pare/distill/feature_loss.hpp"
#include "pare/distill/kd_loss.hpp"

// merge: averaging, task arithmetic, TIES over checkpoints
#include "pare/merge/average.hpp"
#include "pare/merge/checkpoint.hpp"
#include "pare/merge/task_arithmetic.hpp"
#include "pare/merge/ties.hpp"

// ggml: llama.cpp's block formats
#include "pare/ggml/iq4_nl.hpp"
#include "pare/ggml/k_quants.hpp"
#include "pare/ggml/legacy_quants.hpp"
#include "pare/ggml/quantize.hpp"
#include "pare/ggml/quantizer.hpp"
#include "pare/ggml/types.hpp"
#include "pare/ggml/weight_source.hpp"

// io: GGUF, safetensors, llama2.c, tokenizer files; file-to-file conversion
#include "pare/io/atomic_file.hpp"
#include "pare/io/compressed_tensors.hpp"
#include "pare/io/convert/gguf_quantize.hpp"
#include "pare/io/convert/safetensors_quantize.hpp"
#include "pare/io/gguf.hpp"
#include "pare/io/gguf_types.hpp"
#include "pare/io/gguf_writer.hpp"
#include "pare/io/llama2c.hpp"
#include "pare/io/llama2c_writer.hpp"
#include "pare/io/mapped_file.hpp"
#include "pare/io/safetensors.hpp"
#include "pare/io/safetensors_writer.hpp"
#include "pare/io/tokenizer.hpp"

// model: the reference LLaMA transformer, its layers, calibration capture, surgery
#include "pare/model/calibration.hpp"
#include "pare/model/export_gguf.hpp"
#include "pare/model/export_llama2c.hpp"
#include "pare/model/export_model_gguf.hpp"
#include "pare/model/layers/factorized_linear.hpp"
#include "pare/model/layers/ggml_linear.hpp"
#include "pare/model/layers/linear.hpp"
#include "pare/model/layers/lora_linear.hpp"
#include "pare/model/layers/quantized_linear.hpp"
#include "pare/model/layers/shared_linear.hpp"
#include "pare/model/layers/sparse24_linear.hpp"
#include "pare/model/layers/w8a8_linear.hpp"
#include "pare/model/llama_config.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/model/load.hpp"
#include "pare/model/perplexity.hpp"
#include "pare/model/sampler.hpp"
#include "pare/model/surgery.hpp"

// pipeline: methods applied across a model
#include "pare/pipeline/ggml_quantize_linears.hpp"
#include "pare/pipeline/llama_block_model.hpp"
#include "pare/pipeline/mask_prune_linears.hpp"
#include "pare/pipeline/merge_models.hpp"
#include "pare/pipeline/quantize_linears.hpp"
#include "pare/pipeline/sequential_linears.hpp"
#include "pare/pipeline/share_linears.hpp"
#include "pare/pipeline/structured_prune.hpp"
