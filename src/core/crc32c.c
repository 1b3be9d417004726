/* CRC-32C: a slicing-by-8 table reference and the SSE4.2 crc32 instruction (see crc32c.h). */
#include "core/crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u /* 0x1EDC6F41 bit-reversed */

/* table[k][b]: the CRC register after byte b followed by k zero bytes (slicing-by-8). */
static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void) {
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int i = 0; i < 8; i++) c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++) table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xff];
}

uint32_t ptq_crc32c_sw(uint32_t crc, const void *data, size_t n) {
    pthread_once(&table_once, make_table);
    const unsigned char *p = data;
    uint32_t c = ~crc;
    for (; n >= 8; n -= 8, p += 8) {
        /* bytes in file order, whatever the host's byte order */
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
            table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
    }
    for (; n; n--, p++) c = (c >> 8) ^ table[0][(c ^ *p) & 0xff];
    return ~c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = ~crc;
    for (; n && ((uintptr_t)p & 7); n--, p++) c = _mm_crc32_u8((uint32_t)c, *p);
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, 8); /* x86 is little-endian: the bytes in file order */
        c = _mm_crc32_u64(c, v);
    }
    for (; n; n--, p++) c = _mm_crc32_u8((uint32_t)c, *p);
    return ~(uint32_t)c;
}

static int sse42;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static void detect_cpu(void) { sse42 = __builtin_cpu_supports("sse4.2") ? 1 : 0; }

uint32_t ptq_crc32c_hw(uint32_t crc, const void *data, size_t n, int *hw) {
    pthread_once(&cpu_once, detect_cpu);
    int ok = sse42;
    if (hw) *hw = ok;
    return ok ? crc_sse42(crc, data, n) : ptq_crc32c_sw(crc, data, n);
}
#else
uint32_t ptq_crc32c_hw(uint32_t crc, const void *data, size_t n, int *hw) {
    if (hw) *hw = 0;
    return ptq_crc32c_sw(crc, data, n);
}
#endif

uint32_t ptq_crc32c(uint32_t crc, const void *data, size_t n) { return ptq_crc32c_hw(crc, data, n, NULL); }
