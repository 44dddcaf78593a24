// Umbrella header of pare's pruning library: criteria, granularities, schedules, pruner<...> and prune_spec, masks, N:M, heads, block_model, 2:4 sparse storage.
#pragma once

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
#include "pare/prune/schedule.hpp"
#include "pare/prune/scores.hpp"
#include "pare/prune/sparse24.hpp"
#include "pare/prune/taylor.hpp"
#include "pare/prune/wanda.hpp"
