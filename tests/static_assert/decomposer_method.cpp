// decomposer with a non-method first slot names the slot.
// expect: template argument 'Method' must be
#include "pare/lowrank/decomposer.hpp"
pare::decomposer<int, pare::lowrank::energy> d;
