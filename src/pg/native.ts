// walrewind's native addon (native/): the WAL reader's batch of record checks, and CRC-32C. A WAL
// record is typically a few hundred bytes; per record, a native call costs more than the hashing,
// JavaScript tables run at a sixth of the CPU's CRC instruction, and decoding block headers in
// JavaScript costs more than reading the file. So the reader hands over a whole read window at
// once (src/pg/wal/window-scan.ts). Optional: without the addon its exports here are null and
// walrewind does all of it in JavaScript (the same results, slower; ./crc32c.ts has the tables).
//
// Where it comes from, in this order:
//   1. inside the single executable (scripts/build-exe.js): a SEA asset, written to a private
//      temporary file, loaded, and removed again (a shared object cannot be loaded from memory);
//   2. a build made on this machine (build/Release: npm's install step, scripts/build-native.js,
//      compiles one only when no prebuilt binary fits), else the prebuilt binary the package ships
//      for this platform (prebuilds/linux-x64, prebuilds/linux-arm64; scripts/prebuild.js), as
//      node-gyp-build finds them.

import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** native/wal-scan.h, wal_scan_window: the records of a window; see src/pg/wal/window-scan.ts. */
export type ScanWalWindow = (
  buf: Uint8Array,
  len: number,
  start: number,
  params: Int32Array,
  recs: Int32Array,
  blocks: Int32Array,
) => number

/** native/wal-scan.h's params[] indexes and row layouts, by their names there. */
export type ScanLayout = Readonly<Record<string, number>>

/** CRC-32C of `buf[start, end)` continuing from a finished `previous` value. */
export type Crc32cRange = (buf: Uint8Array, start: number, end: number, previous: number) => number

interface Addon {
  readonly scanWalWindow: ScanWalWindow
  readonly scanLayout: ScanLayout
  readonly crc32c: Crc32cRange
  /** Whether the CPU's CRC instruction is used (else the addon's own tables). */
  readonly hardware: boolean
}

/** The SEA asset holding the addon (scripts/build-exe.js puts it there). */
export const SEA_ADDON_ASSET = 'walrewind_native.node'

interface SeaModule {
  isSea(): boolean
  getRawAsset(key: string): ArrayBuffer
}

function seaModule(): SeaModule | null {
  try {
    const sea = createRequire(import.meta.url)('node:sea') as SeaModule
    return sea.isSea() ? sea : null
  } catch {
    return null // node:sea came with Node 20.12: older ones run no single executable anyway
  }
}

/** Whether this process is walrewind's single executable. */
export function isSingleExecutable(): boolean {
  return seaModule() !== null
}

/**
 * Loads the native module stored as SEA asset `asset` of the running single executable: written
 * to a file only this user can read in a fresh temporary directory, opened, then removed (the
 * mapping stays). Throws when the asset is missing or no temporary directory allows it.
 */
export function loadSeaAddon<T>(asset: string): T {
  const sea = seaModule()
  if (sea === null) throw new Error('not a single executable')
  const bytes = new Uint8Array(sea.getRawAsset(asset))
  // A temporary directory mounted noexec refuses to map code: try the next one.
  const bases = [...new Set([os.tmpdir(), process.env['XDG_RUNTIME_DIR'], '/dev/shm', '/var/tmp'].filter((d): d is string => !!d))]
  const failures: string[] = []
  for (const base of bases) {
    let dir: string
    try {
      dir = fs.mkdtempSync(path.join(base, 'walrewind-'))
    } catch (err) {
      failures.push(`${base}: ${(err as Error).message}`)
      continue
    }
    try {
      const file = path.join(dir, asset)
      fs.writeFileSync(file, bytes, { mode: 0o500 })
      const module = { exports: {} as T }
      process.dlopen(module, file)
      return module.exports
    } catch (err) {
      failures.push(`${base}: ${(err as Error).message}`)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  throw new Error(`cannot load the embedded ${asset}: ${failures.join('; ')}`)
}

interface Loaded {
  addon: Addon | null
  from: string
}

function load(): Loaded {
  if (process.env['WALREWIND_NATIVE'] === '0') return { addon: null, from: 'WALREWIND_NATIVE=0' }
  if (isSingleExecutable()) {
    try {
      return { addon: loadSeaAddon<Addon>(SEA_ADDON_ASSET), from: 'embedded in the executable' }
    } catch (err) {
      return { addon: null, from: (err as Error).message }
    }
  }
  // From dist/src/pg/ (compiled) up to the package root.
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
  try {
    const require = createRequire(import.meta.url)
    const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string }
    const file = nodeGypBuild.resolve(root)
    const addon = require(file) as Addon
    const rel = path.relative(root, file)
    return { addon, from: rel.startsWith('prebuilds') ? `prebuilt, ${path.dirname(rel)}` : `built here, ${rel}` }
  } catch (err) {
    return { addon: null, from: `no native build for ${process.platform}-${process.arch} loaded: ${(err as Error).message.split('\n')[0]}` }
  }
}

/** An addon built from other sources than these (a stale build/) is a mistake to fix, not to work around. */
function checkExports(loaded: Loaded): Loaded {
  const { addon } = loaded
  if (addon === null) return loaded
  const types: Record<keyof Addon, string> = { scanWalWindow: 'function', scanLayout: 'object', crc32c: 'function', hardware: 'boolean' }
  const missing = Object.entries(types)
    .filter(([name, type]) => typeof (addon as unknown as Record<string, unknown>)[name] !== type)
    .map(([name]) => name)
  if (missing.length > 0) {
    throw new Error(
      `the native addon (${loaded.from}) does not export ${missing.join(', ')}: it was built from older sources than ` +
        'native/; rebuild it (npm run build:native, or node scripts/prebuild.js for prebuilds/)',
    )
  }
  return loaded
}

const loaded = checkExports(load())
const addon = loaded.addon

/** The native scan, or null when no addon loaded (or WALREWIND_NATIVE=0 turned it off). */
export const scanWalWindow: ScanWalWindow | null = addon?.scanWalWindow ?? null

/** The addon's layouts of the scan's params and rows, or null without the addon. */
export const scanLayout: ScanLayout | null = addon?.scanLayout ?? null

/** The addon's CRC-32C, or null without it. */
export const nativeCrc32c: Crc32cRange | null = addon?.crc32c ?? null

/** How WAL records are checked and decoded, and where the addon came from, for --debug and the benchmark. */
export const walScanMethod: string =
  addon === null
    ? `JavaScript, one record at a time (${loaded.from})`
    : `native window scan, ${addon.hardware ? 'CPU CRC instruction' : 'CRC tables'} (${loaded.from})`
