// A randomized SVD computes only the needed rank; energy needs the whole spectrum.
// expect: must be fixed_rank or ratio with randomized_svd
#include "pare/lowrank/decomposer.hpp"
pare::decomposer<pare::lowrank::randomized_svd, pare::lowrank::energy> d;
