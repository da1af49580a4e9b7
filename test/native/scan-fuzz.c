/*
 * Random windows of real WAL through wal_scan_window (native/wal-scan.c): each window in an
 * allocation of exactly its length (so AddressSanitizer sees any read past it), some at a page's
 * first record and some anywhere, a few bits flipped. Built with -fsanitize=address,undefined by
 * test/unit/native-sanitized.test.ts; any out-of-bounds access or undefined behaviour aborts.
 *
 * Usage: scan-fuzz WAL-FILE ITERATIONS P0 ... P7   (the scan's params, see wal-scan.h)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "wal-scan.h"

static uint32_t seed = 20261201;

static uint32_t next_random(uint32_t n) {
  seed = seed * 1103515245u + 12345u;
  return (seed >> 8) % n;
}

int main(int argc, char **argv) {
  if (argc != 3 + SCAN_PARAMS) {
    fprintf(stderr, "usage: scan-fuzz WAL-FILE ITERATIONS P0 ... P%d\n", SCAN_PARAMS - 1);
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (f == NULL) return 2;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (size < 65536) return 2;
  uint8_t *wal = malloc((size_t)size);
  if (wal == NULL || fread(wal, 1, (size_t)size, f) != (size_t)size) return 2;
  fclose(f);
  long iterations = atol(argv[2]);
  int32_t params[SCAN_PARAMS];
  for (int i = 0; i < SCAN_PARAMS; i++) params[i] = atoi(argv[3 + i]);

  crc32c_init();
  static int32_t recs[256 * REC_STRIDE], blocks[256 * BLK_STRIDE];
  long rows = 0, decoded = 0;
  for (long it = 0; it < iterations; it++) {
    size_t len = 1 + next_random(65536);
    size_t off = (next_random((uint32_t)((size_t)size - len)) / 8192) * 8192;
    uint8_t *buf = malloc(len);
    memcpy(buf, wal + off, len);
    for (uint32_t k = next_random(4); k > 0; k--) buf[next_random((uint32_t)len)] ^= (uint8_t)(1u << next_random(8));
    size_t start = next_random((uint32_t)len);
    if ((it & 1) && len >= 8192) {
      uint32_t info = (uint32_t)buf[2] | ((uint32_t)buf[3] << 8), rem;
      memcpy(&rem, buf + 16, 4);
      size_t first = ((info & 2) ? 40 : 24) + ((info & 1) ? ((rem + 7) & ~7u) : 0);
      if (first < 8192) start = first;
    }
    uint32_t n = wal_scan_window(buf, len, start, params, recs, 256, blocks, 256);
    rows += n;
    for (uint32_t i = 0; i < n; i++) decoded += (recs[i * REC_STRIDE + REC_FLAGS] & REC_DECODED) != 0;
    free(buf);
  }
  free(wal);
  printf("ok %ld rows, %ld decoded\n", rows, decoded);
  return 0;
}
