// Body of the 512-bit integer matmul kernels, included once per ISA namespace (avx512vnni, avx512bw); no include guard on purpose.
//
// Before inclusion the includer defines PARE_MM_TARGET (the function target attribute)
// and, in its namespace, the operations
//   w8  prep8(__m512i w)                         weight form for dot8 (per tile and quad)
//   __m512i dot8(__m512i acc, const w8& w, const std::uint8_t* xu, const std::int8_t* xq)
//        acc[r] += Σ_j x[j]·code[r][j] over a quad; xu / xq point at the row's 4 bytes as
//        q + 128 (u8) and q (s8); for unsigned activations the result is off by
//        128·Σcode, which fix8 removes
//   __m512i fix8(__m512i acc, __m512i csum)      exact int8 group sums
//   __m512i dot4(__m512i acc, __m512i w_u8, const std::int8_t* x)
//        acc[r] += Σ_j x[j]·w[r][j], x pointing at the row's 4 activation bytes
//
// Blocking (block_impl<MR, NT, KB>): the output is cut into panels of NT tiles (16·NT
// columns). Per panel, rows in chunks of MC (64), K in blocks of KB weight blocks, and
// MR-row micro-tiles (matmul_int_512_micro.hpp) that each run over a whole K-block. The
// VNNI GEMM uses KB = 4096 k, so for K ≤ 4096 one K-block: the panel's weights (192 KiB
// of int8 at NT = 3, K = 4096) stay in L2 while every row block streams them, and the
// activation rows of a row block stream once per panel. (L1-sized K-blocks were slower:
// saving and restoring 24 accumulators per K-block cost more than L2 streaming, which
// keeps up with two vpdpbusd per cycle.) While a panel runs, its first NT row blocks
// prefetch the next K-block's weights, or the next panel's, into L2, one tile each, so a
// GEMM with few rows streams its weights from DRAM without stalls.

#include "pare/core/unroll.hpp"  // PARE_UNROLL: full unrolling of the register-tile loops
#include "pare/kernels/matmul/x86/matmul_int_512_micro.hpp"

/// Calls f(std::integral_constant<int, R>) with R = rows (1 ≤ rows ≤ MR ≤ 8).
template <int MR, class F>
PARE_MM_TARGET PARE_ALWAYS_INLINE void with_rows(std::size_t rows, F&& f) noexcept {
  static_assert(MR >= 1 && MR <= 8, "with_rows: MR must be in [1, 8]");
  switch (rows) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: if constexpr (MR >= 2) f(std::integral_constant<int, (MR >= 2 ? 2 : 1)>{}); break;
    case 3: if constexpr (MR >= 3) f(std::integral_constant<int, (MR >= 3 ? 3 : 1)>{}); break;
    case 4: if constexpr (MR >= 4) f(std::integral_constant<int, (MR >= 4 ? 4 : 1)>{}); break;
    case 5: if constexpr (MR >= 5) f(std::integral_constant<int, (MR >= 5 ? 5 : 1)>{}); break;
    case 6: if constexpr (MR >= 6) f(std::integral_constant<int, (MR >= 6 ? 6 : 1)>{}); break;
    case 7: if constexpr (MR >= 7) f(std::integral_constant<int, (MR >= 7 ? 7 : 1)>{}); break;
    default: if constexpr (MR >= 8) f(std::integral_constant<int, (MR >= 8 ? 8 : 1)>{}); break;
  }
}

/// Bytes from one tile's weights to the next tile's.
inline std::size_t tile_stride(const packed_int8& w) noexcept { return w.kp / 4 * 64; }
inline std::size_t tile_stride(const packed_int4& w) noexcept { return w.tile_bytes; }
/// Byte offset of weight block `blk` (quad of int8, octet of int4) in a tile's stream.
inline std::size_t stream_offset(const packed_int8&, std::size_t blk) noexcept { return blk * 64; }
inline std::size_t stream_offset(const packed_int4& w, std::size_t blk) noexcept {
  const std::size_t go = w.padded_group() / 8;
  return blk / go * w.group_bytes + blk % go * 64;
}

/// Rows [b.m0, b.m1) × tiles [t, t + J): row chunks of MC, K-blocks of KB weight blocks.
/// Row blocks also prefetch the next K-block's panel (after the last K-block, the next
/// panel's first) one line per weight block: block i of the chunk tile i when the chunk
/// has at least J row blocks, else the first row block all J tiles.
template <int MR, int J, std::size_t KB, class Packed>
PARE_MM_TARGET inline void panel_impl(const Packed& w, const matmul_acts& a, const matmul_block& b,
                                      std::size_t t) noexcept {
  constexpr bool int8 = std::is_same_v<Packed, packed_int8>;
  constexpr std::size_t MC = MR == 1 ? 1 : 64 / MR * MR, ld = J * 16;
  alignas(64) float part[MC * ld];
  alignas(64) std::int32_t carry[MC * ld];
  const std::size_t nb = w.kp / (int8 ? 4 : 8), per_group = w.padded_group() / (int8 ? 4 : 8);
  const std::size_t tstride = tile_stride(w);
  for (std::size_t mc = b.m0; mc < b.m1; mc += MC) {
    const std::size_t me = std::min(b.m1, mc + MC);
    std::fill(part, part + (me - mc) * ld, 0.0f);
    for (std::size_t kb = 0; kb < nb; kb += KB) {
      const std::size_t ke = std::min(nb, kb + KB);
      const kspan ks{kb, ke, kb / per_group};
      const std::ptrdiff_t next = static_cast<std::ptrdiff_t>(ke < nb ? stream_offset(w, ke) : J * tstride) -
                                  static_cast<std::ptrdiff_t>(stream_offset(w, kb));
      const bool spread = (me - mc + MR - 1) / MR >= std::size_t(J);
      for (std::size_t m = mc; m < me; m += MR) {
        float* p = part + (m - mc) * ld;
        std::int32_t* c = carry + (m - mc) * ld;
        const std::size_t i = (m - mc) / MR;
        panel_prefetch pf;
        if (MR > 1 && (spread ? i < std::size_t(J) : i == 0)) pf = {next, spread ? 1u << i : (1u << J) - 1u};
        const final_out out = ke == nb ? final_out{b.y + m * b.ldy + t * matmul_tile_rows, b.ldy} : final_out{};
        with_rows<MR>(std::min<std::size_t>(MR, me - m), [&](auto rows) {
          constexpr int R = decltype(rows)::value;
          if constexpr (int8)
            micro_int8<R, J>(w, a, m, t, ks, p, c, ld, pf, out);
          else
            micro_int4<R, J>(w, a, m, t, ks, p, c, ld, pf, out);
        });
      }
    }
  }
}

/// Rows [m0, m1) × tiles [t0, t1): panels of NT tiles, then one of the 1..NT-1 left. With
/// several rows, one tile left after a whole panel (NT ≥ 3) goes with it as two panels of
/// (NT + 1) / 2 and the rest: a one-tile micro-tile loads a weight vector and R
/// activations per R vpdpbusd (load-bound), two tiles 2 and R per 2·R.
template <int MR, int NT, std::size_t KB, class Packed>
PARE_MM_TARGET inline void block_impl(const Packed& w, const matmul_acts& a, const matmul_block& b) noexcept {
  static_assert(NT >= 1 && NT <= 8, "block_impl: NT must be in [1, 8]");
  constexpr int half = (NT + 1) / 2, rest = NT + 1 - half;
  const bool rebalance = MR > 1 && NT >= 3 && b.t1 - b.t0 > std::size_t(NT) && (b.t1 - b.t0) % NT == 1;
  const std::size_t full_end = b.t1 - (b.t1 - b.t0) % NT - (rebalance ? NT : 0);
  std::size_t t = b.t0;
  for (; t < full_end; t += NT) panel_impl<MR, NT, KB>(w, a, b, t);
  if constexpr (NT >= 3) {
    if (rebalance) {
      panel_impl<MR, half, KB>(w, a, b, t);
      panel_impl<MR, rest, KB>(w, a, b, t + half);
      return;
    }
  }
  switch (b.t1 - t) {
    case 1: panel_impl<MR, 1, KB>(w, a, b, t); break;
    case 2: if constexpr (NT > 2) panel_impl<MR, (NT > 2 ? 2 : 1), KB>(w, a, b, t); break;
    case 3: if constexpr (NT > 3) panel_impl<MR, (NT > 3 ? 3 : 1), KB>(w, a, b, t); break;
    case 4: if constexpr (NT > 4) panel_impl<MR, (NT > 4 ? 4 : 1), KB>(w, a, b, t); break;
    case 5: if constexpr (NT > 5) panel_impl<MR, (NT > 5 ? 5 : 1), KB>(w, a, b, t); break;
    case 6: if constexpr (NT > 6) panel_impl<MR, (NT > 6 ? 6 : 1), KB>(w, a, b, t); break;
    case 7: if constexpr (NT > 7) panel_impl<MR, (NT > 7 ? 7 : 1), KB>(w, a, b, t); break;
    default: break;
  }
}
