/* CRC-32C (Castagnoli): the checksum of every tensor and of the metadata in a .ptq file (docs/FORMAT.md).
 * Reflected polynomial 0x82F63B78, initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF, the CRC of iSCSI
 * (RFC 3720) and ext4: ptq_crc32c(0, "123456789", 9) == 0xE3069283. */
#ifndef PTQ_CORE_CRC32C_H
#define PTQ_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC of data, continuing from crc (0 to start): ptq_crc32c(ptq_crc32c(0, a, n), b, m) is the CRC
 * of a followed by b. Uses the SSE4.2 crc32 instruction where the CPU has it. */
uint32_t ptq_crc32c(uint32_t crc, const void *data, size_t n);
/* The portable table-driven (slicing-by-8) reference; same results. */
uint32_t ptq_crc32c_sw(uint32_t crc, const void *data, size_t n);
/* The SSE4.2 path, or the reference where the CPU or compiler lacks it; *hw (may be NULL) says which. */
uint32_t ptq_crc32c_hw(uint32_t crc, const void *data, size_t n, int *hw);

#endif
