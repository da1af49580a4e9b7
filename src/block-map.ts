// The blocks the target changed after the fork, per relation segment file: a growable bitmap per
// file (one bit per 8 kB block, at most 16 kB for a full 1 GB segment), so memory stays bounded
// by the files touched, not by the WAL read.

export type BlockRange = readonly [start: number, count: number]

export class BlockMap {
  private readonly files = new Map<string, Uint32Array>()

  add(path: string, block: number): void {
    let bits = this.files.get(path)
    const word = block >>> 5
    if (!bits || word >= bits.length) {
      const grown = new Uint32Array(Math.max(word + 1, (bits?.length ?? 0) * 2, 4))
      if (bits) grown.set(bits)
      bits = grown
      this.files.set(path, bits)
    }
    bits[word]! |= 1 << (block & 31)
  }

  has(path: string, block: number): boolean {
    const bits = this.files.get(path)
    if (!bits) return false
    const word = block >>> 5
    return word < bits.length && (bits[word]! & (1 << (block & 31))) !== 0
  }

  /** Every block of `other` added to this map. */
  addAll(other: BlockMap): void {
    for (const [path, bits] of other.files) {
      const mine = this.files.get(path)
      if (mine === undefined) {
        this.files.set(path, bits.slice())
        continue
      }
      const merged = mine.length >= bits.length ? mine : new Uint32Array(bits.length)
      if (merged !== mine) merged.set(mine)
      for (let word = 0; word < bits.length; word++) merged[word]! |= bits[word]!
      this.files.set(path, merged)
    }
  }

  paths(): IterableIterator<string> {
    return this.files.keys()
  }

  get fileCount(): number {
    return this.files.size
  }

  /** Changed blocks of `path` below `limit`, as runs of consecutive blocks, ascending. */
  ranges(path: string, limit = Infinity): BlockRange[] {
    const bits = this.files.get(path)
    if (!bits) return []
    const out: Array<[number, number]> = []
    let runStart = -1
    const end = Math.min(bits.length * 32, limit)
    for (let block = 0; block < end; block++) {
      const word = bits[block >>> 5]!
      if (word === 0 && (block & 31) === 0) {
        if (runStart >= 0) {
          out.push([runStart, block - runStart])
          runStart = -1
        }
        block += 31
        continue
      }
      const set = (word & (1 << (block & 31))) !== 0
      if (set && runStart < 0) runStart = block
      else if (!set && runStart >= 0) {
        out.push([runStart, block - runStart])
        runStart = -1
      }
    }
    if (runStart >= 0) out.push([runStart, end - runStart])
    return out
  }

  blockCount(path: string): number {
    let n = 0
    for (const [, count] of this.ranges(path)) n += count
    return n
  }
}
