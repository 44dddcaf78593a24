// pruner with a non-granularity second slot names the slot.
// expect: template argument 'Granularity' must be
#include "pare/prune/pruner.hpp"
pare::prune::pruner<pare::prune::magnitude, int> p(0.5);
