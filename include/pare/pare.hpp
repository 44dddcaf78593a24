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

// train: LoRA adapters over llama_params and their export into a llama_model (attach, merge, merge and re-quantize)
#include "pare/train/lora.hpp"
#include "pare/train/lora_export.hpp"

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
