// The CRCs of many WAL records in one native call (native/record-crcs.c, built by npm's install
// step). A record is typically a few hundred bytes: a native call per record costs more than the
// hashing, and JavaScript tables are several times slower than the CPU's CRC instruction, so the
// reader hands over the records of a whole window at once. Optional: without the addon (no C
// compiler at install time) this is null and the reader checks each record in JavaScript.

import { createRequire } from 'node:module'

/**
 * For each of the first `count` offsets in `starts`, the CRC-32C of the WAL record there (body
 * [24, xl_tot_len), then header [0, 20)) into `out`, as int32. Stops at the first record that is
 * not wholly inside `buf` and returns how many were computed.
 */
export type RecordCrcs = (buf: Uint8Array, starts: Int32Array, count: number, out: Int32Array) => number

interface Addon {
  readonly recordCrcs: RecordCrcs
  /** Whether the CPU's CRC instruction is used (else the addon's own tables). */
  readonly hardware: boolean
}

function load(): Addon | null {
  if (process.env['WALREWIND_NATIVE'] === '0') return null
  // From dist/src/pg/wal/ (compiled) up to the package root, where node-gyp puts build/.
  const require = createRequire(import.meta.url)
  try {
    return require('../../../../build/Release/record_crcs.node') as Addon
  } catch {
    return null
  }
}

const addon = load()

/** The native batch, or null when the addon was not built (or WALREWIND_NATIVE=0 turned it off). */
export const recordCrcs: RecordCrcs | null = addon?.recordCrcs ?? null

/** How records are checked, for --debug and the benchmark. */
export const recordCrcMethod: 'native (CPU instruction)' | 'native (tables)' | 'JavaScript' =
  addon === null ? 'JavaScript' : addon.hardware ? 'native (CPU instruction)' : 'native (tables)'
