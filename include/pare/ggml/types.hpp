// The llama.cpp (ggml) block formats pare reproduces bit for bit: type ids, names, block geometry and row sizes.
#pragma once

// Every format stores a row of `cols` floats as cols / block_size blocks of type_size
// bytes, little-endian, in ggml's struct layout (ggml-common.h). Facts from ggml:
//
//   type    id  block  bytes  layout of one block
//   f16      1      1      2  IEEE binary16
//   bf16    30      1      2  bfloat16 (upper half of a float32, rounded to nearest even)
//   q8_0     8     32     34  d:f16, qs:int8[32]                 x = d·q
//   q4_0     2     32     18  d:f16, qs:u8[16] (nibbles)         x = d·(q − 8)
//   q4_1     3     32     20  d:f16, m:f16, qs:u8[16]            x = d·q + m
//   q5_0     6     32     22  d:f16, qh:u8[4], qs:u8[16]         x = d·(q − 16)
//   q5_1     7     32     24  d:f16, m:f16, qh:u8[4], qs:u8[16]  x = d·q + m
//   q2_K    10    256     84  scales:u8[16], qs:u8[64], d:f16, dmin:f16
//   q3_K    11    256    110  hmask:u8[32], qs:u8[64], scales:u8[12], d:f16
//   q4_K    12    256    144  d:f16, dmin:f16, scales:u8[12], qs:u8[128]
//   q5_K    13    256    176  d:f16, dmin:f16, scales:u8[12], qh:u8[32], qs:u8[128]
//   q6_K    14    256    210  ql:u8[128], qh:u8[64], scales:int8[16], d:f16
//   iq4_nl  20     32     18  d:f16, qs:u8[16]                   x = d·kvalues[q]
//
// In the 32-wide formats the low nibble of qs[j] is element j and the high nibble is
// element j + 16. The K formats are documented next to their quantizers (k_quants.hpp).

#include <cstddef>
#include <cstdint>
#include <string>

#include "pare/core/error.hpp"

PARE_NAMESPACE_BEGIN
namespace ggml {

/// The ggml tensor types pare can quantize to and dequantize from (values are ggml's ids).
enum class type : std::uint32_t {
  f16 = 1,
  q4_0 = 2,
  q4_1 = 3,
  q5_0 = 6,
  q5_1 = 7,
  q8_0 = 8,
  q2_K = 10,
  q3_K = 11,
  q4_K = 12,
  q5_K = 13,
  q6_K = 14,
  iq4_nl = 20,
  bf16 = 30,
};

struct type_traits {
  type id;
  const char* name;
  std::size_t block_size;  ///< elements per block
  std::size_t type_size;   ///< bytes per block
  bool uses_imatrix;       ///< whether an importance matrix changes the result
};

/// Every supported type, in the order of the table above.
inline const type_traits* all_types(std::size_t* count) noexcept {
  static const type_traits table[] = {
      {type::f16, "f16", 1, 2, false},      {type::bf16, "bf16", 1, 2, false},    {type::q8_0, "q8_0", 32, 34, false},
      {type::q4_0, "q4_0", 32, 18, true},   {type::q4_1, "q4_1", 32, 20, true},   {type::q5_0, "q5_0", 32, 22, true},
      {type::q5_1, "q5_1", 32, 24, true},   {type::q2_K, "q2_K", 256, 84, true},  {type::q3_K, "q3_K", 256, 110, true},
      {type::q4_K, "q4_K", 256, 144, true}, {type::q5_K, "q5_K", 256, 176, true}, {type::q6_K, "q6_K", 256, 210, true},
      {type::iq4_nl, "iq4_nl", 32, 18, true}};
  *count = sizeof table / sizeof table[0];
  return table;
}

/// Traits of a supported type id, or null.
inline const type_traits* find_traits(std::uint32_t id) noexcept {
  std::size_t n = 0;
  const type_traits* t = all_types(&n);
  for (std::size_t i = 0; i < n; ++i)
    if (static_cast<std::uint32_t>(t[i].id) == id) return &t[i];
  return nullptr;
}

inline const type_traits& traits(type t) {
  const type_traits* p = find_traits(static_cast<std::uint32_t>(t));
  if (!p) ::pare::detail::fail<argument_error>("pare::ggml::traits: argument 'type': expected a supported ggml type, got id ",
                                       static_cast<std::uint32_t>(t));
  return *p;
}

inline const char* to_string(type t) { return traits(t).name; }

/// Comma-separated names of every supported type (for error messages).
inline std::string supported_names() {
  std::size_t n = 0;
  const type_traits* t = all_types(&n);
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += (i ? ", " : "") + std::string(t[i].name);
  return s;
}

/// Parses a type name ("q4_K", case-insensitive: "Q4_K" and "q4_k" work too).
inline type parse_type(const std::string& name) {
  auto lower = [](std::string s) {
    for (char& c : s) c = (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
    return s;
  };
  std::size_t n = 0;
  const type_traits* t = all_types(&n);
  for (std::size_t i = 0; i < n; ++i)
    if (lower(t[i].name) == lower(name)) return t[i].id;
  ::pare::detail::fail<argument_error>("pare::ggml::parse_type: expected one of ", supported_names(), ", got '", name, "'");
}

/// Bytes of one row of `cols` elements; argument_error unless cols is a positive multiple of the block size.
inline std::size_t row_bytes(type t, std::size_t cols, const char* where = "pare::ggml::row_bytes") {
  const type_traits& tr = traits(t);
  if (cols == 0 || cols % tr.block_size != 0)
    ::pare::detail::fail<argument_error>(where, ": argument 'cols': expected a positive multiple of ", tr.block_size,
                                 " (the ", tr.name, " block size), got ", cols);
  return cols / tr.block_size * tr.type_size;
}

/// Storage bits per weight, scales included.
inline double bits_per_weight(type t) {
  const type_traits& tr = traits(t);
  return 8.0 * double(tr.type_size) / double(tr.block_size);
}

}  // namespace ggml
PARE_NAMESPACE_END
