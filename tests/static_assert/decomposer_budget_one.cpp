// A budget spreads over several matrices: one matrix is refused.
// expect: budget spreads one budget over several matrices
#include "pare/lowrank/decomposer.hpp"
void f(const pare::matrix_view<const float>& w) {
  pare::decomposer<pare::lowrank::truncated_svd, pare::lowrank::budget> d;
  (void)d(w);
}
