// N:M masks are one-shot.
// expect: 'Schedule' must be one_shot for n_m
#include "pare/prune/pruner.hpp"
pare::prune::pruner<pare::prune::magnitude, pare::prune::n_m<2, 4>, pare::prune::iterative> p;
