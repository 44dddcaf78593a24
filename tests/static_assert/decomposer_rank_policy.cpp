// decomposer with a non-policy second slot names the slot.
// expect: template argument 'RankPolicy' must be
#include "pare/lowrank/decomposer.hpp"
pare::decomposer<pare::lowrank::asvd, double> d;
