// CRC-32C of many lists of byte ranges in one native call (native/crc32c-groups.c, built by npm's
// install step). A WAL record is typically a few hundred bytes: a call into a native CRC library
// per record costs more than the hashing, and JavaScript tables are several times slower than the
// CPU's CRC instruction, so the WAL reader hands over the records of a whole window at once.
// Optional: without the addon (no C compiler at install time) this is null and the reader checks
// each record in JavaScript.

import { createRequire } from 'node:module'

/**
 * Group g is the ranges [ends[g-1], ends[g]) of `ranges` (ends[-1] = 0), each range a pair
 * (start, end) of offsets into `buf`; out[g] gets the CRC-32C of the bytes of its ranges one after
 * the other, as int32. Stops at the first group with a range outside `buf` and returns how many
 * groups were computed.
 */
export type Crc32cGroups = (buf: Uint8Array, ranges: Int32Array, ends: Int32Array, count: number, out: Int32Array) => number

interface Addon {
  readonly crc32cGroups: Crc32cGroups
  /** Whether the CPU's CRC instruction is used (else the addon's own tables). */
  readonly hardware: boolean
}

function load(): Addon | null {
  if (process.env['WALREWIND_NATIVE'] === '0') return null
  // From dist/src/pg/ (compiled) up to the package root, where node-gyp puts build/.
  const require = createRequire(import.meta.url)
  try {
    return require('../../../build/Release/crc32c_groups.node') as Addon
  } catch {
    return null
  }
}

const addon = load()

/** The native function, or null when the addon was not built (or WALREWIND_NATIVE=0 turned it off). */
export const crc32cGroups: Crc32cGroups | null = addon?.crc32cGroups ?? null

/** How WAL records are checked, for --debug and the benchmark. */
export const walCrcMethod: string = addon === null ? 'JavaScript tables, one record at a time'
  : addon.hardware ? 'native batches, CPU CRC instruction' : 'native batches, tables'
