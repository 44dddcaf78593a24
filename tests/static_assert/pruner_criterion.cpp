// pruner with a non-criterion first slot names the slot.
// expect: template argument 'Criterion' must be
#include "pare/prune/pruner.hpp"
pare::prune::pruner<float, pare::prune::rows<>> p(0.5);
