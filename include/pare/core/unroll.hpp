// PARE_UNROLL: a pragma that fully unrolls the next loop over a kernel's register block, for GCC and clang.
#pragma once

// Micro-kernels keep arrays of vector accumulators (acc[rows][tiles]); unless the loops
// over them are unrolled completely, GCC (-O2) keeps the arrays on the stack, with a load
// and a store around every multiply-add. Put PARE_UNROLL right before such a loop.
#if !defined(PARE_UNROLL)
#if defined(__clang__)
#define PARE_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define PARE_UNROLL _Pragma("GCC unroll 16")
#else
#define PARE_UNROLL
#endif
#endif
