// Keeps the compiler from fusing a*b+c into one FMA inside pare's ggml code, so results stay bit-identical to ggml's.
#pragma once

// ggml's reference quantizers are plain C evaluated in float, one rounding per
// operation. Reproducing their bytes needs the same roundings, so pare/ggml/ code turns
// floating-point contraction off even when the including program is compiled with
// -march=native / -mfma (GCC's default -ffp-contract=fast, or clang's "on", would
// otherwise emit FMAs):
//   - GCC: the functions sit between PARE_GGML_EXACT_BEGIN and PARE_GGML_EXACT_END
//     (push_options / optimize("fp-contract=off") / pop_options);
//   - clang: every function body that computes in float starts with PARE_GGML_EXACT
//     (#pragma clang fp contract(off), which applies to that compound statement).
// Programs compiled with -ffast-math (or -Ofast) can still change results; pare's ggml
// formats are not bit-exact under those flags.

#if defined(__clang__)
#define PARE_GGML_EXACT_BEGIN
#define PARE_GGML_EXACT_END
#define PARE_GGML_EXACT _Pragma("clang fp contract(off)")
#elif defined(__GNUC__)
#define PARE_GGML_EXACT_BEGIN _Pragma("GCC push_options") _Pragma("GCC optimize(\"fp-contract=off\")")
#define PARE_GGML_EXACT_END _Pragma("GCC pop_options")
#define PARE_GGML_EXACT
#else
#define PARE_GGML_EXACT_BEGIN
#define PARE_GGML_EXACT_END
#define PARE_GGML_EXACT
#endif
