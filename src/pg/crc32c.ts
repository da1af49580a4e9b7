// CRC-32C (Castagnoli), the checksum of WAL records and pg_control. With the native addon
// (./native.ts), ranges long enough to pay for a native call go to its CRC instruction; shorter
// ones, and all of them without the addon, are computed here with slicing-by-16 tables. x86-64 and
// arm64 are little-endian, which the word loop relies on, as PostgreSQL's on-disk formats do.

import { nativeCrc32c } from './native.js'

/** CRC-32C of `data`, continuing from a finalized `previous` value (chaining like pg_crc32c). */
export function crc32c(data: Uint8Array, previous = 0): number {
  return crc32cRange(data, 0, data.length, previous)
}

// Reflected polynomial 0x82F63B78; TABLE[k * 256 + n] is the CRC of byte n followed by k zero bytes.
const TABLE = new Int32Array(16 * 256)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  TABLE[n] = c
}
for (let n = 0; n < 256; n++) {
  let c = TABLE[n]!
  for (let k = 1; k < 16; k++) {
    c = TABLE[c & 0xff]! ^ (c >>> 8)
    TABLE[k * 256 + n] = c
  }
}

/** Below this many bytes the tables beat a call into the addon (about 40 ns; x86-64, Node 20). */
const NATIVE_THRESHOLD = 128

/**
 * CRC-32C of `buf[start, end)` continuing from `previous`, without making a subarray. `words`, if
 * given, is a Uint32Array over the same memory as `buf` (same byteOffset) and `start` must be a
 * multiple of 4: the table loop then loads whole words, which is a third faster.
 */
export function crc32cRange(buf: Uint8Array, start: number, end: number, previous = 0, words: Uint32Array | null = null): number {
  if (nativeCrc32c !== null && end - start >= NATIVE_THRESHOLD) return nativeCrc32c(buf, start, end, previous)
  return crc32cTables(buf, start, end, previous, words)
}

/** @internal crc32cRange in JavaScript alone (exported for the test that holds it to the addon's). */
export function crc32cTables(buf: Uint8Array, start: number, end: number, previous = 0, words: Uint32Array | null = null): number {
  const T = TABLE
  let c = ~previous
  let i = start
  if (words !== null) {
    // Slicing by 16 while 16 bytes are left, then by 8.
    for (; i + 16 <= end; i += 16) {
      const j = i >>> 2
      c ^= words[j]!
      const h = words[j + 1]!
      const g = words[j + 2]!
      const k = words[j + 3]!
      c =
        T[3840 + (c & 0xff)]! ^
        T[3584 + ((c >>> 8) & 0xff)]! ^
        T[3328 + ((c >>> 16) & 0xff)]! ^
        T[3072 + (c >>> 24)]! ^
        T[2816 + (h & 0xff)]! ^
        T[2560 + ((h >>> 8) & 0xff)]! ^
        T[2304 + ((h >>> 16) & 0xff)]! ^
        T[2048 + (h >>> 24)]! ^
        T[1792 + (g & 0xff)]! ^
        T[1536 + ((g >>> 8) & 0xff)]! ^
        T[1280 + ((g >>> 16) & 0xff)]! ^
        T[1024 + (g >>> 24)]! ^
        T[768 + (k & 0xff)]! ^
        T[512 + ((k >>> 8) & 0xff)]! ^
        T[256 + ((k >>> 16) & 0xff)]! ^
        T[k >>> 24]!
    }
    for (; i + 8 <= end; i += 8) {
      c ^= words[i >>> 2]!
      const h = words[(i >>> 2) + 1]!
      c =
        T[1792 + (c & 0xff)]! ^
        T[1536 + ((c >>> 8) & 0xff)]! ^
        T[1280 + ((c >>> 16) & 0xff)]! ^
        T[1024 + (c >>> 24)]! ^
        T[768 + (h & 0xff)]! ^
        T[512 + ((h >>> 8) & 0xff)]! ^
        T[256 + ((h >>> 16) & 0xff)]! ^
        T[h >>> 24]!
    }
  } else {
    for (; i + 8 <= end; i += 8) {
      c ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)
      const h = buf[i + 4]! | (buf[i + 5]! << 8) | (buf[i + 6]! << 16) | (buf[i + 7]! << 24)
      c =
        T[1792 + (c & 0xff)]! ^
        T[1536 + ((c >>> 8) & 0xff)]! ^
        T[1280 + ((c >>> 16) & 0xff)]! ^
        T[1024 + (c >>> 24)]! ^
        T[768 + (h & 0xff)]! ^
        T[512 + ((h >>> 8) & 0xff)]! ^
        T[256 + ((h >>> 16) & 0xff)]! ^
        T[h >>> 24]!
    }
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}

/** A Uint32Array over `buf` for crc32cRange, or null if `buf` does not start on a 4-byte boundary. */
export function wordsOf(buf: Uint8Array): Uint32Array | null {
  return buf.byteOffset % 4 === 0 ? new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2) : null
}
