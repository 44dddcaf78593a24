// Micro-kernels of the 512-bit integer matmul: R rows × J tiles of int32 accumulators over one K-block; included by matmul_int_512_body.hpp.
//
// Included once per ISA namespace (no include guard on purpose), after the includer's
// PARE_MM_TARGET and operations (prep8, dot8, fix8, dot4; see matmul_int_512_body.hpp).
// A call covers rows [m0, m0 + R) × tiles [t0, t0 + J) over the weight blocks [b, e) of
// a K-block: quads (4 k) of int8, octets (8 k) of int4. Its state between K-blocks:
//   part [r][16·j + c]   fp32, += scale·acc + offset·xsum of every group that ended
//   carry[r][16·j + c]   int32 sums of the group the K-block cut (restored on entry when
//                        b is inside a group, saved on exit when e is)
// with row stride ld floats; in the last K-block the last group's epilogue writes the
// finished outputs to y (final_out) instead. The accumulators stay in registers: 8 × 3 tiles = 24 zmm,
// 3 weight registers and one broadcast register (no spills; check with objdump -d).

/// Where a micro-kernel call writes its finished outputs: y(m0, 16·t0) with row stride ldy
/// floats, or nowhere (y null: a K-block other than the last, whose sums stay in part).
struct final_out {
  float* y = nullptr;
  std::size_t ldy = 0;
};

/// part[r][16·j + c] += scale·acc + offset·xsum for group g; for the last group of the
/// last K-block (out.y set) the finished sums go to y instead, times the row's scale sx,
/// so the outputs are written while the next micro-tiles compute rather than in a burst.
template <int R, int J, class Packed>
PARE_MM_TARGET PARE_ALWAYS_INLINE void epilogue(const Packed& w, const matmul_acts& a, std::size_t m0,
                                                std::size_t t0, std::size_t g, const __m512i (&acc)[R][J],
                                                float* part, std::size_t ld, final_out out) noexcept {
  __m512 sc[J], of[J];
  PARE_UNROLL
  for (int j = 0; j < J; ++j) {
    sc[j] = _mm512_load_ps(w.scales16(t0 + j, g));
    of[j] = w.has_offsets() ? _mm512_load_ps(w.offsets16(t0 + j, g)) : _mm512_setzero_ps();
  }
  const bool last = out.y != nullptr && g + 1 == w.groups;
  PARE_UNROLL
  for (int r = 0; r < R; ++r) {
    const __m512 xs = w.has_offsets() ? _mm512_set1_ps(float(a.xsum[(m0 + r) * w.groups + g])) : _mm512_setzero_ps();
    PARE_UNROLL
    for (int j = 0; j < J; ++j) {
      float* p = part + r * ld + j * 16;
      __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][j]), sc[j], _mm512_load_ps(p));
      if (w.has_offsets()) v = _mm512_fmadd_ps(of[j], xs, v);
      if (!last) {
        _mm512_store_ps(p, v);
        continue;
      }
      const std::size_t c0 = (t0 + j) * matmul_tile_rows, valid = std::min<std::size_t>(16, w.n - c0);
      _mm512_mask_storeu_ps(out.y + r * out.ldy + j * 16, static_cast<__mmask16>((1u << valid) - 1u),
                            _mm512_mul_ps(v, _mm512_set1_ps(a.sx[m0 + r])));
    }
  }
}

template <int R, int J>
PARE_MM_TARGET PARE_ALWAYS_INLINE void zero_acc(__m512i (&acc)[R][J]) noexcept {
  PARE_UNROLL
  for (int r = 0; r < R; ++r)
    PARE_UNROLL
    for (int j = 0; j < J; ++j) acc[r][j] = _mm512_setzero_si512();
}

/// acc = the carried sums (resume inside a group) or zero.
template <int R, int J>
PARE_MM_TARGET PARE_ALWAYS_INLINE void start_acc(__m512i (&acc)[R][J], const std::int32_t* carry, std::size_t ld,
                                                 bool resume) noexcept {
  PARE_UNROLL
  for (int r = 0; r < R; ++r)
    PARE_UNROLL
    for (int j = 0; j < J; ++j)
      acc[r][j] = resume ? _mm512_load_si512(carry + r * ld + j * 16) : _mm512_setzero_si512();
}

template <int R, int J>
PARE_MM_TARGET PARE_ALWAYS_INLINE void save_acc(const __m512i (&acc)[R][J], std::int32_t* carry,
                                                std::size_t ld) noexcept {
  PARE_UNROLL
  for (int r = 0; r < R; ++r)
    PARE_UNROLL
    for (int j = 0; j < J; ++j) _mm512_store_si512(carry + r * ld + j * 16, acc[r][j]);
}

/// Prefetch request of a micro-kernel call: per weight block, the line `offset` bytes past
/// it in each tile j whose bit is set in `tiles` (none when tiles == 0).
struct panel_prefetch {
  std::ptrdiff_t offset = 0;
  unsigned tiles = 0;
};
/// Issues `pf` (into L2) for the weight block at p of J tiles `tstride` bytes apart;
/// the address may lie outside the weights (a hint only).
template <int J>
PARE_MM_TARGET PARE_ALWAYS_INLINE void prefetch_panel(const void* p, std::size_t tstride, panel_prefetch pf) noexcept {
  const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(p) + static_cast<std::uintptr_t>(pf.offset);
  PARE_UNROLL
  for (int j = 0; j < J; ++j)
    if (pf.tiles >> j & 1u) _mm_prefetch(reinterpret_cast<const char*>(at + j * tstride), _MM_HINT_T1);
}

/// A K-block: weight blocks [b, e) (quads of int8, octets of int4); g = the group of b.
struct kspan {
  std::size_t b, e, g;
};

/// acc += the quads [q, e) of J tiles at `codes` (tstride bytes apart) times R activation
/// rows, prefetching NPF lines per quad at the offsets pfo from the quad's first tile.
template <int R, int J, int NPF>
PARE_MM_TARGET PARE_ALWAYS_INLINE void quads_int8(__m512i (&acc)[R][J], const std::int8_t* codes, std::size_t tstride,
                                                  const matmul_acts& a, std::size_t m0, std::size_t q,
                                                  std::size_t e, const std::ptrdiff_t (&pfo)[J]) noexcept {
  // Unsigned rows: one stream of pu-row panels (matmul_args.hpp), whose 64-k chunks (16
  // quads) each hold the R rows 64 bytes apart; signed rows: R streams.
  const std::uint8_t* xpanel = a.qu + m0 / a.pu * a.pu * a.ld + m0 % a.pu * 64;
  const std::size_t chunk = 64 * a.pu;
  const std::int8_t* xq = a.q + m0 * a.ld + 4 * q;
  const std::int8_t* wp = codes + q * 64;
  while (q < e) {
    // One 64-k chunk (or its part in [q, e)): the inner loop only steps pointers, no
    // address arithmetic per quad.
    const std::size_t stop = std::min(e, (q | 15) + 1);
    const std::uint8_t* xu = xpanel + (q >> 4) * chunk + (q & 15) * 4;
    for (; q < stop; ++q, wp += 64, xq += 4, xu += 4) {
      PARE_UNROLL
      for (int i = 0; i < NPF; ++i) _mm_prefetch(reinterpret_cast<const char*>(wp) + pfo[i], _MM_HINT_T1);
      w8 wv[J];
      PARE_UNROLL
      for (int j = 0; j < J; ++j) wv[j] = prep8(_mm512_load_si512(wp + j * tstride));
      PARE_UNROLL
      for (int r = 0; r < R; ++r)
        PARE_UNROLL
        for (int j = 0; j < J; ++j) acc[r][j] = dot8(acc[r][j], wv[j], xu + 64 * r, xq + r * a.ld);
    }
  }
}

/// Rows [m0, m0 + R) × tiles [t0, t0 + J) over the quads of `ks`.
template <int R, int J>
PARE_MM_TARGET inline void micro_int8(const packed_int8& w, const matmul_acts& a, std::size_t m0, std::size_t t0,
                                      kspan ks, float* part, std::int32_t* carry, std::size_t ld,
                                      panel_prefetch pf, final_out out) noexcept {
  const std::size_t quads = w.kp / 4, gq = w.padded_group() / 4, tstride = quads * 64;
  const std::int8_t* codes = w.codes.data() + t0 * tstride;
  // The prefetch offsets of the requested tiles, first tile's line first.
  std::ptrdiff_t pfo[J] = {};
  int npf = 0;
  for (int j = 0; j < J; ++j)
    if (pf.tiles >> j & 1u) pfo[npf++] = pf.offset + static_cast<std::ptrdiff_t>(j * tstride);
  __m512i acc[R][J];
  std::size_t q = ks.b, g = ks.g, gend = (g + 1) * gq;
  start_acc(acc, carry, ld, q != g * gq);
  while (q < ks.e) {
    const std::size_t end = std::min(ks.e, gend);
    if (npf == 0)
      quads_int8<R, J, 0>(acc, codes, tstride, a, m0, q, end, pfo);
    else if (npf == 1)
      quads_int8<R, J, 1>(acc, codes, tstride, a, m0, q, end, pfo);
    else
      quads_int8<R, J, J>(acc, codes, tstride, a, m0, q, end, pfo);
    q = end;
    if (q == gend) {  // a group ended: exact sums, then into part
      PARE_UNROLL
      for (int j = 0; j < J; ++j) {
        const __m512i cs = _mm512_load_si512(w.csum.data() + ((t0 + j) * w.groups + g) * matmul_tile_rows);
        PARE_UNROLL
        for (int r = 0; r < R; ++r) acc[r][j] = fix8(acc[r][j], cs);
      }
      epilogue<R, J>(w, a, m0, t0, g, acc, part, ld, out);
      zero_acc(acc);
      ++g;
      gend += gq;
    }
  }
  if (q != g * gq) save_acc(acc, carry, ld);  // the K-block ended inside group g
}

/// acc += hi, hi = 0.
template <int R, int J>
PARE_MM_TARGET PARE_ALWAYS_INLINE void merge_split(__m512i (&acc)[R][J], __m512i (&hi)[R][J]) noexcept {
  PARE_UNROLL
  for (int r = 0; r < R; ++r)
    PARE_UNROLL
    for (int j = 0; j < J; ++j) {
      acc[r][j] = _mm512_add_epi32(acc[r][j], hi[r][j]);
      hi[r][j] = _mm512_setzero_si512();
    }
}


/// Rows [m0, m0 + R) × tiles [t0, t0 + J) over the octets of `ks`.
template <int R, int J>
PARE_MM_TARGET inline void micro_int4(const packed_int4& w, const matmul_acts& a, std::size_t m0, std::size_t t0,
                                      kspan ks, float* part, std::int32_t* carry, std::size_t ld,
                                      panel_prefetch pf, final_out out) noexcept {
  const std::size_t go = w.padded_group() / 8, tstride = w.tile_bytes;
  const __m512i low = _mm512_set1_epi8(0x0F);
  const std::int8_t* xq = a.q + m0 * a.ld;
  const std::size_t xld = a.ld;
  // One row (GEMV): the high nibbles go to accumulators of their own, so each dpbusd
  // chain has one instruction per octet and keeps up with the weight stream.
  constexpr bool split = R == 1;
  __m512i acc[R][J], hi[R][J];
  std::size_t o = ks.b, g = ks.g, gend = (g + 1) * go;
  start_acc(acc, carry, ld, o != g * go);
  zero_acc(hi);
  while (o < ks.e) {
    const std::size_t end = std::min(ks.e, gend);
    const std::uint8_t* blk = w.block(t0, g, o - g * go);
    for (; o < end; ++o, blk += 64) {
      // Low nibbles (k = 8o..8o+3) for every row, then high nibbles: three weight
      // registers, so the 24 accumulators and a broadcast register fit the 32 zmm.
      if (pf.tiles != 0) prefetch_panel<J>(blk, tstride, pf);
      __m512i wv[J];
      PARE_UNROLL
      for (int j = 0; j < J; ++j) wv[j] = _mm512_and_si512(_mm512_load_si512(blk + j * tstride), low);
      PARE_UNROLL
      for (int r = 0; r < R; ++r)
        PARE_UNROLL
        for (int j = 0; j < J; ++j) acc[r][j] = dot4(acc[r][j], wv[j], xq + r * xld + 8 * o);
      PARE_UNROLL
      for (int j = 0; j < J; ++j)
        wv[j] = _mm512_and_si512(_mm512_srli_epi16(_mm512_load_si512(blk + j * tstride), 4), low);
      PARE_UNROLL
      for (int r = 0; r < R; ++r)
        PARE_UNROLL
        for (int j = 0; j < J; ++j) {
          __m512i& dst = split ? hi[r][j] : acc[r][j];
          dst = dot4(dst, wv[j], xq + r * xld + 8 * o + 4);
        }
    }
    if (o == gend) {
      if constexpr (split) merge_split(acc, hi);
      epilogue<R, J>(w, a, m0, t0, g, acc, part, ld, out);
      zero_acc(acc);
      ++g;
      gend += go;
    }
  }
  if (o != g * go) {
    if constexpr (split) merge_split(acc, hi);
    save_acc(acc, carry, ld);
  }
}

