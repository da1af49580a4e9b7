// WAL positions as the reader keeps them: a segment number and an offset in it, or an LSN's two
// 32-bit halves. No BigInt per record: LSNs are made only for callers and messages.

import type { Lsn } from '../lsn.js'

export function hex(n: number): string {
  return n.toString(16).toUpperCase()
}

export class WalGeometry {
  readonly segSize: number
  readonly pagesPerSeg: number
  private readonly segsPerId: number
  // The halves of the last segment's start: a division and a modulo per record showed in profiles.
  private cachedSeg = -1
  private cachedHi = 0
  private cachedLoBase = 0

  constructor(segSize: number, pageSize: number) {
    this.segSize = segSize
    this.pagesPerSeg = segSize / pageSize
    this.segsPerId = 0x100000000 / segSize
  }

  /** The high half of the LSNs of segment `seg`. */
  hi(seg: number): number {
    return seg === this.cachedSeg ? this.cachedHi : this.cache(seg).cachedHi
  }

  /** The low half of the LSN at offset `off` of segment `seg`. */
  lo(seg: number, off: number): number {
    return (seg === this.cachedSeg ? this.cachedLoBase : this.cache(seg).cachedLoBase) + off
  }

  lsn(seg: number, off: number): Lsn {
    return BigInt(seg) * BigInt(this.segSize) + BigInt(off)
  }

  segOf(lsn: Lsn): number {
    return Number(lsn / BigInt(this.segSize))
  }

  offOf(lsn: Lsn): number {
    return Number(lsn % BigInt(this.segSize))
  }

  /** The segment of the LSN whose high half is `hi` and low half `lo`. */
  segOfHalves(hi: number, lo: number): number {
    return hi * this.segsPerId + Math.floor(lo / this.segSize)
  }

  /** %X/%X, as the server's messages print an LSN. */
  text(seg: number, off: number): string {
    return `${hex(this.hi(seg))}/${hex(this.lo(seg, off))}`
  }

  private cache(seg: number): this {
    this.cachedSeg = seg
    this.cachedHi = Math.floor(seg / this.segsPerId)
    this.cachedLoBase = (seg % this.segsPerId) * this.segSize
    return this
  }
}
