/* CRC-32C: a slicing-by-8 table reference and the SSE4.2 crc32 instruction (see crc32c.h). */
#include "core/crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u /* 0x1EDC6F41 bit-reversed */
/* The SSE4.2 path runs three streams of BLOCK bytes at once (the instruction has a latency of three
 * cycles and a throughput of one) and joins them with shift_block. */
#define BLOCK 4096

/* table[k][b]: the CRC register after byte b followed by k zero bytes (slicing-by-8). */
static uint32_t table[8][256];
/* shift[k][b]: the register (b << 8k) advanced over BLOCK zero bytes; the map is linear in the register. */
static uint32_t shift[4][256];
static int sse42;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void) {
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int i = 0; i < 8; i++) c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++) table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xff];
    uint32_t bit[32]; /* each single-bit register advanced over BLOCK zero bytes */
    for (int j = 0; j < 32; j++) {
        uint32_t c = 1u << j;
        for (int i = 0; i < BLOCK; i++) c = (c >> 8) ^ table[0][c & 0xff];
        bit[j] = c;
    }
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t c = 0;
            for (int j = 0; j < 8; j++)
                if (b >> j & 1) c ^= bit[8 * k + j];
            shift[k][b] = c;
        }
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    sse42 = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

static uint32_t shift_block(uint32_t c) {
    return shift[0][c & 0xff] ^ shift[1][(c >> 8) & 0xff] ^ shift[2][(c >> 16) & 0xff] ^ shift[3][c >> 24];
}

uint32_t ptq_crc32c_sw(uint32_t crc, const void *data, size_t n) {
    pthread_once(&once, init);
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

static inline uint64_t load64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8); /* x86 is little-endian: the bytes in file order */
    return v;
}

__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = ~crc;
    for (; n && ((uintptr_t)p & 7); n--, p++) c = _mm_crc32_u8((uint32_t)c, *p);
    /* register(A then B) = register(A) advanced over |B| zero bytes, XOR register(B from 0) */
    for (; n >= 3 * BLOCK; n -= 3 * BLOCK, p += 3 * BLOCK) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < BLOCK; i += 8) {
            c = _mm_crc32_u64(c, load64(p + i));
            c1 = _mm_crc32_u64(c1, load64(p + BLOCK + i));
            c2 = _mm_crc32_u64(c2, load64(p + 2 * BLOCK + i));
        }
        c = shift_block(shift_block((uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
    }
    for (; n >= 8; n -= 8, p += 8) c = _mm_crc32_u64(c, load64(p));
    for (; n; n--, p++) c = _mm_crc32_u8((uint32_t)c, *p);
    return ~(uint32_t)c;
}

uint32_t ptq_crc32c_hw(uint32_t crc, const void *data, size_t n, int *hw) {
    pthread_once(&once, init);
    if (hw) *hw = sse42;
    return sse42 ? crc_sse42(crc, data, n) : ptq_crc32c_sw(crc, data, n);
}
#else
uint32_t ptq_crc32c_hw(uint32_t crc, const void *data, size_t n, int *hw) {
    if (hw) *hw = 0;
    return ptq_crc32c_sw(crc, data, n);
}
#endif

uint32_t ptq_crc32c(uint32_t crc, const void *data, size_t n) { return ptq_crc32c_hw(crc, data, n, NULL); }
