/* CRC-32C: the published check values (the CRC catalogue's "123456789", RFC 3720 appendix B.4's iSCSI
 * examples: 32 bytes of 0x00, of 0xff, ascending, descending), the SSE4.2 path equal to the table reference on every length and alignment, and continuation. */
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "testutil.h"

int main(void) {
    unsigned char buf[48];
    CHECK(ptq_crc32c_sw(0, "123456789", 9) == 0xE3069283u);
    memset(buf, 0, 32);
    CHECK(ptq_crc32c_sw(0, buf, 32) == 0x8A9136AAu);
    memset(buf, 0xff, 32);
    CHECK(ptq_crc32c_sw(0, buf, 32) == 0x62A8AB43u);
    for (int i = 0; i < 32; i++) buf[i] = (unsigned char)i;
    CHECK(ptq_crc32c_sw(0, buf, 32) == 0x46DD794Eu);
    for (int i = 0; i < 32; i++) buf[i] = (unsigned char)(31 - i);
    CHECK(ptq_crc32c_sw(0, buf, 32) == 0x113FDB5Cu);
    CHECK(ptq_crc32c_sw(0, "", 0) == 0);

    /* the fast path against the reference: lengths 0..600 at every offset 0..7, long buffers */
    enum { N = 1 << 20 };
    unsigned char *data = malloc(N + 8);
    for (size_t i = 0; i < N + 8; i++) data[i] = (unsigned char)(tu_splitmix64(i) >> 56);
    int hw = 0, bad = 0;
    for (int off = 0; off < 8; off++)
        for (size_t n = 0; n <= 600; n++)
            bad += ptq_crc32c_hw(0, data + off, n, &hw) != ptq_crc32c_sw(0, data + off, n);
    CHECK_MSG(bad == 0, "%d lengths/offsets differ", bad);
    /* around the three-stream blocks of 3 x 4096 bytes */
    const size_t sizes[] = {12287, 12288, 12289, 12295, 24576, 24583, 36863, 100000};
    for (int i = 0; i < 8; i++)
        for (int off = 0; off < 8; off += 3)
            CHECK_MSG(ptq_crc32c_hw(0, data + off, sizes[i], NULL) == ptq_crc32c_sw(0, data + off, sizes[i]),
                      "length %zu offset %d", sizes[i], off);
    uint32_t whole = ptq_crc32c_sw(0, data + 3, N);
    CHECK(ptq_crc32c_hw(0, data + 3, N, NULL) == whole);
    CHECK(ptq_crc32c(0, data + 3, N) == whole);
    /* continuation: the CRC of a then b is the CRC of ab, on both paths */
    CHECK(ptq_crc32c(ptq_crc32c(0, data + 3, 12345), data + 3 + 12345, N - 12345) == whole);
    CHECK(ptq_crc32c_sw(ptq_crc32c_sw(0, data + 3, 7), data + 10, N - 7) == whole);
    printf("crc32c: SSE4.2 path %s; ", hw ? "used" : "not available (reference only)");
    free(data);
    return tu_done("test_crc32c");
}
