// Element types: fp16, bf16, fp8 (E4M3, E5M2) and packed 2/3/4-bit integer codes.
#pragma once

#include "pare/core/dtypes/bf16.hpp"
#include "pare/core/dtypes/fp16.hpp"
#include "pare/core/dtypes/fp8.hpp"
#include "pare/core/dtypes/packed_int.hpp"
