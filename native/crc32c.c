/*
 * CRC-32C for the WAL scan and the addon's crc32c (see crc32c.h). Uses SSE4.2 (x86-64) or the
 * ARMv8 CRC extension when the CPU has them, a table otherwise.
 */
#include "crc32c.h"

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#elif defined(__aarch64__)
#include <sys/auxv.h>
#include <asm/hwcap.h>
#endif

static uint32_t table[8][256];

static void make_table(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[0][n] = c;
  }
  for (uint32_t n = 0; n < 256; n++)
    for (int k = 1; k < 8; k++) table[k][n] = table[0][table[k - 1][n] & 0xff] ^ (table[k - 1][n] >> 8);
}

/* Raw register update (no pre/post inversion) over len bytes. */
static uint32_t crc_table(uint32_t c, const uint8_t *p, size_t len) {
  while (len >= 8) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
        table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^ table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
    p += 8;
    len -= 8;
  }
  while (len--) c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return c;
}

#if defined(__x86_64__)
/*
 * A long range goes as three stripes side by side (the CRC instruction takes three cycles but can
 * start every cycle), whose CRCs are then joined: the register is linear, so running it over n more
 * bytes is its shift over n zero bytes (from the shift_* tables, a lookup per byte of it) xor the
 * CRC of those bytes from zero.
 */
#define STRIPE_LONG 512
#define STRIPE_SHORT 128
static uint32_t shift_long[4][256], shift_short[4][256];

static void make_shift_table(uint32_t t[4][256], size_t width) {
  static const uint8_t zeros[STRIPE_LONG];
  for (uint32_t j = 0; j < 4; j++)
    for (uint32_t b = 0; b < 256; b++) t[j][b] = crc_table(b << (8 * j), zeros, width);
}

static uint32_t shift(const uint32_t t[4][256], uint32_t c) {
  return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw_stripes(uint32_t c, const uint8_t **pp, size_t *lenp, size_t width,
                                                                 const uint32_t t[4][256]) {
  const uint8_t *p = *pp;
  size_t len = *lenp;
  while (len >= 3 * width) {
    uint64_t a = c, b = 0, d = 0;
    for (size_t i = 0; i < width; i += 8) {
      uint64_t va, vb, vd;
      memcpy(&va, p + i, 8);
      memcpy(&vb, p + width + i, 8);
      memcpy(&vd, p + 2 * width + i, 8);
      a = _mm_crc32_u64(a, va);
      b = _mm_crc32_u64(b, vb);
      d = _mm_crc32_u64(d, vd);
    }
    c = shift(t, shift(t, (uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
    p += 3 * width;
    len -= 3 * width;
  }
  *pp = p;
  *lenp = len;
  return c;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t len) {
  if (len >= 3 * STRIPE_SHORT) {
    c = crc_hw_stripes(c, &p, &len, STRIPE_LONG, shift_long);
    c = crc_hw_stripes(c, &p, &len, STRIPE_SHORT, shift_short);
  }
  uint64_t c64 = c;
  while (len >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c64 = _mm_crc32_u64(c64, v);
    p += 8;
    len -= 8;
  }
  c = (uint32_t)c64;
  if (len >= 4) {
    uint32_t v;
    memcpy(&v, p, 4);
    c = _mm_crc32_u32(c, v);
    p += 4;
    len -= 4;
  }
  while (len--) c = _mm_crc32_u8(c, *p++);
  return c;
}
static int have_hw(void) { return __builtin_cpu_supports("sse4.2"); }
#elif defined(__aarch64__)
__attribute__((target("+crc"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t len) {
  while (len >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = __builtin_aarch64_crc32cx(c, v);
    p += 8;
    len -= 8;
  }
  while (len--) c = __builtin_aarch64_crc32cb(c, *p++);
  return c;
}
static int have_hw(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
#else
static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t len) { return crc_table(c, p, len); }
static int have_hw(void) { return 0; }
#endif

static uint32_t (*crc_update)(uint32_t, const uint8_t *, size_t) = crc_table;

uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t len) { return crc_update(crc, p, len); }

#if defined(__x86_64__)
/*
 * Three records side by side: their bodies in step while all three have 8 bytes left (the CRC
 * instruction takes three cycles but can start every cycle), the rest of each alone, then the
 * three 20-byte headers in step.
 */
__attribute__((target("sse4.2"))) static void crc_hw_records3(const uint8_t *const body[3], const size_t body_len[3],
                                                              const uint8_t *const header[3], uint32_t out[3]) {
  size_t m = body_len[0] < body_len[1] ? body_len[0] : body_len[1];
  if (body_len[2] < m) m = body_len[2];
  m &= ~(size_t)7;
  uint64_t a = 0xFFFFFFFFu, b = 0xFFFFFFFFu, d = 0xFFFFFFFFu;
  for (size_t i = 0; i < m; i += 8) {
    uint64_t va, vb, vd;
    memcpy(&va, body[0] + i, 8);
    memcpy(&vb, body[1] + i, 8);
    memcpy(&vd, body[2] + i, 8);
    a = _mm_crc32_u64(a, va);
    b = _mm_crc32_u64(b, vb);
    d = _mm_crc32_u64(d, vd);
  }
  a = crc_hw((uint32_t)a, body[0] + m, body_len[0] - m);
  b = crc_hw((uint32_t)b, body[1] + m, body_len[1] - m);
  d = crc_hw((uint32_t)d, body[2] + m, body_len[2] - m);
  for (size_t i = 0; i < 16; i += 8) {
    uint64_t va, vb, vd;
    memcpy(&va, header[0] + i, 8);
    memcpy(&vb, header[1] + i, 8);
    memcpy(&vd, header[2] + i, 8);
    a = _mm_crc32_u64(a, va);
    b = _mm_crc32_u64(b, vb);
    d = _mm_crc32_u64(d, vd);
  }
  uint32_t ta, tb, td;
  memcpy(&ta, header[0] + 16, 4);
  memcpy(&tb, header[1] + 16, 4);
  memcpy(&td, header[2] + 16, 4);
  out[0] = ~_mm_crc32_u32((uint32_t)a, ta);
  out[1] = ~_mm_crc32_u32((uint32_t)b, tb);
  out[2] = ~_mm_crc32_u32((uint32_t)d, td);
}
#endif

void crc32c_records3(const uint8_t *const body[3], const size_t body_len[3], const uint8_t *const header[3], uint32_t out[3]) {
#if defined(__x86_64__)
  if (crc_update == crc_hw) {
    crc_hw_records3(body, body_len, header, out);
    return;
  }
#endif
  for (int k = 0; k < 3; k++) out[k] = ~crc_update(crc_update(0xFFFFFFFFu, body[k], body_len[k]), header[k], 20);
}

void crc32c_init(void) {
  make_table();
#if defined(__x86_64__)
  make_shift_table(shift_long, STRIPE_LONG);
  make_shift_table(shift_short, STRIPE_SHORT);
#endif
  if (have_hw()) crc_update = crc_hw;
}

int crc32c_hardware(void) { return crc_update == crc_hw; }
