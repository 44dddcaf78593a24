// PPL-drop scores blocks, not weights: no implementation at n_m.
// expect: no implementation for this Criterion at this Granularity
#include "pare/prune/pruner.hpp"
pare::prune::pruner<pare::prune::ppl_drop, pare::prune::n_m<2, 4>> p;
