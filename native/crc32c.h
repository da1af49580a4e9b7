/* CRC-32C (Castagnoli) for WAL records: the CPU's CRC instruction when it has one, tables otherwise. */
#ifndef WALREWIND_CRC32C_H
#define WALREWIND_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Picks the CPU instruction or the tables; call once before the others. */
void crc32c_init(void);

/* Whether the CPU's CRC instruction is used. */
int crc32c_hardware(void);

/* The CRC register run over `len` bytes (no inversion: start from 0xFFFFFFFF, invert at the end). */
uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t len);

/*
 * The CRC of three WAL records at once, as a record's CRC is taken: its body, then the 20 header
 * bytes before xl_crc. Finished (inverted) values in out[].
 */
void crc32c_records3(const uint8_t *const body[3], const size_t body_len[3], const uint8_t *const header[3], uint32_t out[3]);

#endif
