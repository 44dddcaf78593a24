// Umbrella header of pare's pruning library: criteria, masks, N:M, heads, schedules and 2:4 sparse storage with its GEMV.
#pragma once

#include "pare/prune/activation.hpp"
#include "pare/prune/heads.hpp"
#include "pare/prune/magnitude.hpp"
#include "pare/prune/mask.hpp"
#include "pare/prune/nm.hpp"
#include "pare/prune/schedule.hpp"
#include "pare/prune/scores.hpp"
#include "pare/prune/sparse24.hpp"
#include "pare/prune/taylor.hpp"
#include "pare/prune/wanda.hpp"
