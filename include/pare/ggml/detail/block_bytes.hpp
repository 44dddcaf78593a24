// Little-endian field access for ggml blocks: fp16 scales and 32-bit high-bit masks at byte offsets.
#pragma once

#include <cstdint>
#include <cstring>

#include "pare/core/dtypes/fp16.hpp"

PARE_NAMESPACE_BEGIN
namespace ggml {
namespace detail {

/// Stores float f as binary16 (round to nearest even, as ggml's GGML_FP32_TO_FP16) at p.
inline void store_f16(std::uint8_t* p, float f) noexcept {
  const std::uint16_t h = ::pare::float_to_fp16(f);
  p[0] = static_cast<std::uint8_t>(h & 0xFF);
  p[1] = static_cast<std::uint8_t>(h >> 8);
}

inline std::uint16_t load_u16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

/// The binary16 at p as a float (exact).
inline float load_f16(const std::uint8_t* p) noexcept { return ::pare::fp16_to_float(load_u16(p)); }

/// Rounds f through binary16 (what storing and re-reading a block scale gives).
inline float round_f16(float f) noexcept { return ::pare::fp16_to_float(::pare::float_to_fp16(f)); }

inline void store_u32(std::uint8_t* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

inline std::uint32_t load_u32(const std::uint8_t* p) noexcept {
  return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}

}  // namespace detail
}  // namespace ggml
PARE_NAMESPACE_END
