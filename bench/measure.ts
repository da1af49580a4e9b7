// What the rewind benchmark measures about one run of a tool: wall time and peak RSS (/usr/bin/time
// -v), walrewind's stage timings (its `--debug` lines "STAGE took N ms"), and, in a separate run
// under strace, the bytes the process tree wrote to files.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import readline from 'node:readline'
import type { Kit } from '../test/kit/index.js'

const HOUR_MS = 3_600_000

export interface TimedRun {
  code: number
  stderr: string
  /** Measured around the child here (hrtime). */
  wallSeconds: number
  maxRssMb: number
}

/** Runs `argv` as the kit's OS user under /usr/bin/time -v. */
export async function timedRun(kit: Kit, argv: string[], timeoutMs = 4 * HOUR_MS): Promise<TimedRun> {
  const t0 = process.hrtime.bigint()
  const run = await kit.run('/usr/bin/time', ['-v', ...argv], { timeoutMs })
  const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(run.stderr)
  if (!rss) throw new Error(`cannot read /usr/bin/time output of ${argv.join(' ')}:\n${run.stderr}`)
  return { code: run.code, stderr: run.stderr, wallSeconds, maxRssMb: Number(rss[1]) / 1024 }
}

export interface StageTimings {
  /** Stage name with its numbers replaced by N -> ms, in the order printed. */
  stages: Array<[string, number]>
  /** "listing and scanning N WAL records": N. */
  walRecords: number | null
  /** "copying N bytes": N. */
  copiedBytes: number | null
}

/** walrewind's debug lines "walrewind: debug: STAGE took N ms". */
export function stageTimings(stderr: string): StageTimings {
  const stages: Array<[string, number]> = []
  let walRecords: number | null = null
  let copiedBytes: number | null = null
  for (const m of stderr.matchAll(/^\S+: debug: (.*) took (\d+) ms$/gm)) {
    const stage = m[1]!
    const records = /scanning (\d+) WAL records/.exec(stage)
    if (records) walRecords = Number(records[1])
    const copied = /^copying (\d+) bytes/.exec(stage)
    if (copied) copiedBytes = Number(copied[1])
    stages.push([stage.replace(/\b\d+\b/g, 'N'), Number(m[2])])
  }
  return { stages, walRecords, copiedBytes }
}

export interface ByteCount {
  /** Bytes written to regular files (fd resolved to a path, not under /dev). */
  files: number
  /** Of which into a pg_wal directory. */
  wal: number
  /** Written elsewhere: sockets, pipes, eventfds, terminals (not counted in `files`). */
  other: number
  /** Successful calls that wrote to files, and their bytes per system call. */
  calls: number
  bySyscall: Record<string, number>
}

export const WRITE_SYSCALLS = ['write', 'pwrite64', 'writev', 'pwritev', 'pwritev2', 'copy_file_range', 'sendfile'] as const

export function straceMissing(): string | null {
  const found = spawnSync('strace', ['-V'], { encoding: 'utf8' })
  if (found.status === 0) return null
  return 'strace is not installed: bytes written are not measured (as root: apt-get update && apt-get install -y strace)'
}

/**
 * Runs `argv` as the kit's OS user under `strace -f -y` and sums the return values of the write
 * system calls, by where they wrote (-y resolves each descriptor to its path). The trace file goes
 * to `traceFile` (a directory the OS user can write) and is removed afterwards.
 */
export async function countBytes(
  kit: Kit,
  argv: string[],
  traceFile: string,
  timeoutMs = 4 * HOUR_MS,
): Promise<{ code: number; stderr: string; bytes: ByteCount }> {
  const run = await kit.run(
    'strace',
    ['-f', '-y', '-qq', '-s', '0', '-e', `trace=${WRITE_SYSCALLS.join(',')}`, '-e', 'signal=none', '-o', traceFile, '--', ...argv],
    { timeoutMs },
  )
  try {
    const bytes = await parseStrace(traceFile)
    return { code: run.code, stderr: run.stderr, bytes }
  } finally {
    fs.rmSync(traceFile, { force: true })
  }
}

const CALL = new RegExp(`^(\\d+)\\s+(${WRITE_SYSCALLS.join('|')})\\((.*)$`)
const RESUMED = /^(\d+)\s+<\.\.\. (\w+) resumed>(.*)$/
const RESULT = /\)\s+=\s+(-?\d+)(?:\s.*)?$/

/** strace -f -y output -> bytes written. Calls split by other threads (unfinished / resumed) are joined per pid. */
export async function parseStrace(file: string): Promise<ByteCount> {
  const count: ByteCount = { files: 0, wal: 0, other: 0, calls: 0, bySyscall: {} }
  const pending = new Map<string, { call: string; args: string }>()
  const lines = readline.createInterface({ input: fs.createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity })
  for await (const line of lines) {
    let pid: string, call: string, text: string
    const started = CALL.exec(line)
    if (started) {
      ;[, pid, call, text] = started as unknown as [string, string, string, string]
      if (text.endsWith('<unfinished ...>')) {
        pending.set(pid, { call, args: text })
        continue
      }
    } else {
      const resumed = RESUMED.exec(line)
      if (!resumed) continue
      pid = resumed[1]!
      const before = pending.get(pid)
      pending.delete(pid)
      if (!before) continue
      call = before.call
      text = `${before.args} ${resumed[3]!}`
    }
    const result = RESULT.exec(text)
    if (!result) continue
    const n = Number(result[1])
    if (n <= 0) continue
    const written = writtenPath(call, text)
    if (written === null || written.startsWith('/dev/') || !written.startsWith('/')) {
      count.other += n
      continue
    }
    count.files += n
    count.calls++
    count.bySyscall[call] = (count.bySyscall[call] ?? 0) + n
    if (/\/pg_wal\//.test(written)) count.wal += n
  }
  return count
}

/** The path of the descriptor written: the first argument, the third of copy_file_range. */
function writtenPath(call: string, args: string): string | null {
  if (call === 'copy_file_range') {
    const m = /^\d+<[^>]*>, (?:NULL|\[\d+\]), \d+<([^>]*)>/.exec(args)
    return m ? m[1]! : null
  }
  const m = /^\d+<([^>]*)>/.exec(args)
  return m ? m[1]! : null
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const MB = 1024 * 1024

export function mb(bytes: number | null | undefined, digits = 1): string {
  return bytes === null || bytes === undefined || Number.isNaN(bytes) ? '–' : (bytes / MB).toFixed(digits)
}

export function secs(s: number | null | undefined): string {
  return s === null || s === undefined || Number.isNaN(s) ? '–' : s.toFixed(2)
}
