// Reused memory for the bytes of records gathered across pages: fresh memory for every record
// costs more in page faults and garbage collection than the copy itself.

import { wordsOf } from '../crc32c.js'
import type { BufferOwner } from './record.js'

const ARENA_SIZE = 1024 * 1024
const ARENAS = 4
/** Longer records get memory of their own. */
export const ARENA_RECORD_MAX = 64 * 1024

export class Arena implements BufferOwner {
  gen = 0
  used = 0
  readonly buf = Buffer.allocUnsafe(ARENA_SIZE)
  readonly words = wordsOf(this.buf)
}

/** A ring of arenas: when the current one is full, the next is emptied (what was decoded there is then released). */
export class ArenaRing {
  private arenas: Arena[] = []
  private current: Arena | null = null

  /** An arena with `len` (at most ARENA_RECORD_MAX) bytes free at `used`; the caller moves `used` past what it keeps. */
  take(len: number): Arena {
    if (this.current !== null && this.current.used + len <= ARENA_SIZE) return this.current
    let next: Arena
    if (this.arenas.length < ARENAS) {
      next = new Arena()
      this.arenas.push(next)
    } else {
      next = this.arenas[(this.arenas.indexOf(this.current!) + 1) % ARENAS]!
      next.gen += 1
      next.used = 0
    }
    this.current = next
    return next
  }

  release(): void {
    for (const arena of this.arenas) arena.gen += 1
    this.arenas = []
    this.current = null
  }
}
