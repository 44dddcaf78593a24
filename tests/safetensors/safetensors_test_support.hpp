// Shared oracle of the safetensors tests: bfloat16 rounding by integer arithmetic.
#pragma once

#include <cstdint>
#include <cstring>

namespace safetensors_test {

/// bfloat16 by integer arithmetic (round to nearest, ties to even), for finite inputs.
inline float bf16_round(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

}  // namespace safetensors_test
