// pare umbrella header: the whole public surface (pare/pare_core.hpp and the LAPACK-based parts), in layer order; link pare::linalg.
#pragma once

// Users include this (or pare/pare_core.hpp without LAPACK); pare's own headers include
// what they use. The parts listed here need LAPACKE/CBLAS (CMake target pare::linalg):
// SVD, randomized SVD, PCA, activation-aware low rank, GPTQ, SliceGPT.

#include "pare/pare_core.hpp"

// linalg: LAPACK / CBLAS wrappers (target pare::linalg)
#include "pare/linalg/lapack.hpp"

// lowrank: SVD, randomized SVD, activation-aware factorization, rank policies
#include "pare/lowrank/activation_aware.hpp"
#include "pare/lowrank/decompose.hpp"
#include "pare/lowrank/decomposer.hpp"
#include "pare/lowrank/lowrank_spec.hpp"
#include "pare/lowrank/pca.hpp"
#include "pare/lowrank/randomized_svd.hpp"
#include "pare/lowrank/svd.hpp"

// solvers: error-compensating layer solvers over calibration statistics (GPTQ, SparseGPT, AWQ, SmoothQuant)
#include "pare/solvers/awq.hpp"
#include "pare/solvers/smoothquant.hpp"
#include "pare/solvers/asymmetric_target.hpp"
#include "pare/solvers/gptq.hpp"
#include "pare/solvers/sparsegpt.hpp"
#include "pare/solvers/layer_hessian.hpp"
#include "pare/solvers/bit_allocation.hpp"

// ggml: GPTQ whose output is a llama.cpp block format (needs the solvers above)
#include "pare/ggml/gptq.hpp"

// train: parameter sets, optimizers, schedules, clipping, data order, checkpoints, the training loop, distillation, LoRA adapters (attach, merge, re-quantize)
#include "pare/train/adamw.hpp"
#include "pare/train/checkpoint.hpp"
#include "pare/train/distillation.hpp"
#include "pare/train/grad_clip.hpp"
#include "pare/train/lora.hpp"
#include "pare/train/lora_export.hpp"
#include "pare/train/lr_schedule.hpp"
#include "pare/train/optimizer.hpp"
#include "pare/train/parameter_set.hpp"
#include "pare/train/sgd.hpp"
#include "pare/train/trainer.hpp"
#include "pare/train/window_loss.hpp"
#include "pare/train/window_sampler.hpp"
#include "pare/train/write_back.hpp"

// pipeline: methods applied across a model
#include "pare/pipeline/awq_linears.hpp"
#include "pare/pipeline/gptq_linears.hpp"
#include "pare/pipeline/gptq_ggml_linears.hpp"
#include "pare/pipeline/lowrank_linears.hpp"
#include "pare/pipeline/mixed_precision.hpp"
#include "pare/pipeline/recipe.hpp"
#include "pare/pipeline/smoothquant_linears.hpp"
#include "pare/pipeline/slicegpt.hpp"
#include "pare/pipeline/sparsegpt_linears.hpp"
