// pruner with a non-schedule third slot names the slot.
// expect: template argument 'Schedule' must be
#include "pare/prune/pruner.hpp"
pare::prune::pruner<pare::prune::magnitude, pare::prune::rows<>, int> p(0.5);
