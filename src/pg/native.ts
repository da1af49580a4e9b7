// walrewind's native addon (native/, built by npm's install step with node-gyp): the WAL reader's
// batch of record checks. A WAL record is typically a few hundred bytes; per record, a call into a
// native CRC library costs more than the hashing, JavaScript tables run at a sixth of the CPU's CRC
// instruction, and decoding block headers in JavaScript costs more than reading the file. So the
// reader hands over a whole read window at once (src/pg/wal/window-scan.ts). Optional: without the
// addon (no C compiler at install time) this is null and the reader does all of it in JavaScript.

import { createRequire } from 'node:module'

/** native/wal-scan.h, wal_scan_window: the records of a window; see src/pg/wal/window-scan.ts. */
export type ScanWalWindow = (buf: Uint8Array, len: number, start: number, params: Int32Array, recs: Int32Array,
  blocks: Int32Array) => number

interface Addon {
  readonly scanWalWindow: ScanWalWindow
  /** Whether the CPU's CRC instruction is used (else the addon's own tables). */
  readonly hardware: boolean
}

function load(): Addon | null {
  if (process.env['WALREWIND_NATIVE'] === '0') return null
  // From dist/src/pg/ (compiled) up to the package root, where node-gyp puts build/.
  const require = createRequire(import.meta.url)
  try {
    return require('../../../build/Release/walrewind_native.node') as Addon
  } catch {
    return null
  }
}

const addon = load()

/** The native scan, or null when the addon was not built (or WALREWIND_NATIVE=0 turned it off). */
export const scanWalWindow: ScanWalWindow | null = addon?.scanWalWindow ?? null

/** How WAL records are checked and decoded, for --debug and the benchmark. */
export const walScanMethod: string = addon === null ? 'JavaScript, one record at a time'
  : addon.hardware ? 'native window scan, CPU CRC instruction' : 'native window scan, CRC tables'
