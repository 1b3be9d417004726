/* CPUID feature detection (see cpu.h). */
#include <stdatomic.h>

#include "kernels/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

#define XSTATE_AVX 0x06u    /* SSE and YMM state */
#define XSTATE_AVX512 0xe0u /* opmask, ZMM0-15 upper halves, ZMM16-31 */

static unsigned detect(void) {
    unsigned a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    unsigned xcr0 = 0;
    if (c & bit_OSXSAVE) {
        unsigned hi;
        __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(hi) : "c"(0));
    }
    const int avx = (xcr0 & XSTATE_AVX) == XSTATE_AVX;
    const int avx512 = avx && (xcr0 & XSTATE_AVX512) == XSTATE_AVX512;
    if (!avx) return 0;
    if (c & bit_FMA) f |= PTQ_CPU_FMA;
    if (c & bit_F16C) f |= PTQ_CPU_F16C;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        if (b & bit_AVX2) f |= PTQ_CPU_AVX2;
        if (avx512) {
            if (b & bit_AVX512F) f |= PTQ_CPU_AVX512F;
            if (b & bit_AVX512BW) f |= PTQ_CPU_AVX512BW;
            if (b & bit_AVX512VL) f |= PTQ_CPU_AVX512VL;
            if (c & bit_AVX512VNNI) f |= PTQ_CPU_AVX512VNNI;
        }
        if (c & bit_GFNI) f |= PTQ_CPU_GFNI;
        if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & bit_AVXVNNI)) f |= PTQ_CPU_AVXVNNI;
    }
    return f;
}
#else
static unsigned detect(void) { return 0; }
#endif

#define KNOWN (1u << 31) /* the cache holds a detection result */

int ptq_cpu_has(unsigned features) {
    static atomic_uint cache; /* kernels ask on every call: CPUID is slow under a hypervisor */
    unsigned f = atomic_load_explicit(&cache, memory_order_relaxed);
    if (!(f & KNOWN)) {
        f = detect() | KNOWN;
        atomic_store_explicit(&cache, f, memory_order_relaxed);
    }
    return (f & features) == features;
}
