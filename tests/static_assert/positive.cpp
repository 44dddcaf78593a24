// A valid composition of every policy class: the control case (the driver must not pass everything).
// expect: compiles
#include "pare/lowrank/decomposer.hpp"
#include "pare/prune/pruner.hpp"
#include "pare/quant/quantizer.hpp"
pare::quantizer<pare::int_bits<4>, pare::per_group<32>> q;
pare::prune::pruner<pare::prune::magnitude, pare::prune::n_m<2, 4>> p;
pare::prune::pruner<pare::prune::taylor_plus, pare::prune::depth_blocks, pare::prune::iterative> d(2);
pare::decomposer<pare::lowrank::whitened, pare::lowrank::budget> c;
