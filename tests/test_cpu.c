/* CPU feature detection (src/kernels/cpu.c) agrees with the compiler's __builtin_cpu_supports for every
 * feature the compiler knows (gcc knows them all; clang 14 lacks "f16c" and "avxvnni"), and the kernel
 * choice follows from it. */
#include <stdio.h>

#include "kernels/cpu.h"
#include "kernels/i8gemm.h"
#include "kernels/qgemm_impl.h"
#include "testutil.h"

#define SAME(feature, name)                                                                                  \
    CHECK_MSG(ptq_cpu_has(feature) == (__builtin_cpu_supports(name) != 0), "%s: ptq_cpu_has %d, builtin %d", \
              name, ptq_cpu_has(feature), __builtin_cpu_supports(name) != 0)

int main(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    SAME(PTQ_CPU_AVX2, "avx2");
    SAME(PTQ_CPU_FMA, "fma");
    SAME(PTQ_CPU_AVX512F, "avx512f");
    SAME(PTQ_CPU_AVX512BW, "avx512bw");
    SAME(PTQ_CPU_AVX512VL, "avx512vl");
    SAME(PTQ_CPU_AVX512VNNI, "avx512vnni");
#ifndef __clang__
    SAME(PTQ_CPU_F16C, "f16c");
    SAME(PTQ_CPU_AVXVNNI, "avxvnni");
#endif
#endif
    CHECK(ptq_cpu_has(0));
    CHECK(ptq_cpu_has(PTQ_CPU_AVX2 | PTQ_CPU_FMA) == (ptq_cpu_has(PTQ_CPU_AVX2) && ptq_cpu_has(PTQ_CPU_FMA)));
    const int avx2 = ptq_cpu_has(PTQ_CPU_AVX2 | PTQ_CPU_FMA | PTQ_CPU_F16C);
    const int avx512 = avx2 && ptq_cpu_has(PTQ_CPU_AVX512F | PTQ_CPU_AVX512BW | PTQ_CPU_AVX512VL);
    CHECK(ptq_isa_best() == (avx512 ? PTQ_ISA_AVX512 : avx2 ? PTQ_ISA_AVX2 : PTQ_ISA_SCALAR));
    CHECK(ptq_i8_isa_supported(PTQ_I8_AVXVNNI) == ptq_cpu_has(PTQ_CPU_AVX2 | PTQ_CPU_AVXVNNI));
    printf("cpu: qgemm %s, int8 %s\n", ptq_isa_name(ptq_isa_best()), ptq_i8_isa_name(ptq_i8_isa_best()));
    return tu_done("test_cpu");
}
