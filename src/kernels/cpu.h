/* CPU features the kernels need, read with CPUID once per process. Portable between gcc and clang
 * (clang 14's __builtin_cpu_supports knows neither "f16c" nor "avxvnni"). A feature counts only
 * when the OS also saves its registers (XGETBV), as libgcc's __builtin_cpu_supports does. */
#ifndef PTQ_KERNELS_CPU_H
#define PTQ_KERNELS_CPU_H

enum {
    PTQ_CPU_AVX2 = 1u << 0,
    PTQ_CPU_FMA = 1u << 1,
    PTQ_CPU_F16C = 1u << 2,
    PTQ_CPU_AVXVNNI = 1u << 3,
    PTQ_CPU_AVX512F = 1u << 4,
    PTQ_CPU_AVX512BW = 1u << 5,
    PTQ_CPU_AVX512VL = 1u << 6,
    PTQ_CPU_AVX512VNNI = 1u << 7,
    PTQ_CPU_GFNI = 1u << 8 /* Galois-field affine maps on bytes (with AVX-512: zmm) */
};

/* Whether the CPU has every feature in the mask (an OR of PTQ_CPU_* values). */
int ptq_cpu_has(unsigned features);

#endif
