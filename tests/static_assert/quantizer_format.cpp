// quantizer with a non-format first slot names the slot.
// expect: template argument 'Format' must be
#include "pare/quant/quantizer.hpp"
pare::quantizer<int> q;
