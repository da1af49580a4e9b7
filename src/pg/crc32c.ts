// CRC-32C (Castagnoli), the checksum of WAL records and pg_control. Long inputs go to the native
// @node-rs/crc32; short ranges (most WAL records) are computed here with slicing-by-8 tables,
// because a native call costs more than hashing a hundred bytes in JavaScript.

import { crc32c as nativeCrc32c } from '@node-rs/crc32'

/** CRC-32C of `data`, continuing from a finalized `previous` value (chaining like pg_crc32c). */
export function crc32c(data: Uint8Array, previous = 0): number {
  return nativeCrc32c(data, previous) >>> 0
}

// Reflected polynomial 0x82F63B78; TABLE[k * 256 + n] is the CRC of byte n followed by k zero bytes.
const TABLE = new Int32Array(8 * 256)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  TABLE[n] = c
}
for (let n = 0; n < 256; n++) {
  let c = TABLE[n]!
  for (let k = 1; k < 8; k++) {
    c = TABLE[c & 0xff]! ^ (c >>> 8)
    TABLE[k * 256 + n] = c
  }
}

/** Below this many bytes the table loop beats a native call (measured: ~200 bytes on x86-64). */
const NATIVE_THRESHOLD = 256

/** CRC-32C of `buf[start, end)` continuing from `previous`, without making a subarray for short ranges. */
export function crc32cRange(buf: Uint8Array, start: number, end: number, previous = 0): number {
  if (end - start >= NATIVE_THRESHOLD) return nativeCrc32c(buf.subarray(start, end), previous) >>> 0
  const T = TABLE
  let c = ~previous
  let i = start
  for (; i + 8 <= end; i += 8) {
    c ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)
    const h = buf[i + 4]! | (buf[i + 5]! << 8) | (buf[i + 6]! << 16) | (buf[i + 7]! << 24)
    c = T[1792 + (c & 0xff)]! ^ T[1536 + ((c >>> 8) & 0xff)]! ^ T[1280 + ((c >>> 16) & 0xff)]! ^ T[1024 + (c >>> 24)]! ^
      T[768 + (h & 0xff)]! ^ T[512 + ((h >>> 8) & 0xff)]! ^ T[256 + ((h >>> 16) & 0xff)]! ^ T[h >>> 24]!
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}
