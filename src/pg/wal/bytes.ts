// Little-endian reads for the WAL hot path. Buffer.readUInt32LE validates its arguments on every
// call, which costs more than the read itself when it runs a few million times per second; these
// plain index reads are inlined by V8. Callers have checked the bounds.

/** uint16 little-endian at `i`. */
export function u16(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8)
}

/** uint32 little-endian at `i`. */
export function u32(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0
}

/**
 * Copies src[from, to) to dst at `at`. Buffer.copy costs about a microsecond per call whatever the
 * length (argument checks and a view per call): a loop for the few bytes of a record's piece, a
 * typed-array set for more.
 */
export function copyBytes(src: Uint8Array, from: number, to: number, dst: Uint8Array, at: number): void {
  if (to - from <= 64) {
    for (let i = from; i < to; i++) dst[at++] = src[i]!
  } else {
    dst.set(src.subarray(from, to), at)
  }
}
