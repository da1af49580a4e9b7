// `walrewind verify`: compares a stopped target data directory with a source (a stopped data
// directory, or a running server that computes block digests itself), and says which relation
// blocks and which other files differ. Read-only on both sides. Exit 0: equal; 1: differences;
// otherwise the status of the error (README "Exit codes").

import type { VerifyDifference, VerifyResult } from '../../compare/verify.js'
import { isRewindError, RewindError } from '../../errors.js'
import type { SourceSpec } from '../../source/open.js'
import type { CliIo } from '../io.js'
import { errorJson, textRenderer } from '../render.js'
import { printCommandError } from './controldata.js'

const USAGE = `Usage: walrewind verify --target-pgdata=DIR (--source-pgdata=DIR | --source-server=CONNSTR) [OPTION]...

Compares a stopped data directory (the target) with another node of the same cluster (the source):
every relation block and every other file both nodes should hold alike. Relation blocks that differ
only where a server changes pages without WAL (hint bits, LP_DEAD flags, command ids...) are no
difference, as for PostgreSQL's wal_consistency_checking. Not compared: each node's own WAL,
pg_control, configuration, statistics, free space maps, unlogged relations, and what a rewind
never copies. A running source computes block digests itself (the four functions a rewind role is
granted suffice): only digests, and the blocks that differ, cross the network. Nothing is written.

Options:
  -D, --target-pgdata=DIR      the data directory to check (must be stopped)
      --source-pgdata=DIR      a stopped data directory of the same cluster
      --source-server=CONNSTR  a running primary or standby of the same cluster; it keeps
                               writing, so differences may be explained by its WAL
      --json                   print the result as one JSON document on stdout
      --jobs=NUM               parallel readers / source connections (1..64, default 4)
      --source-timeout=SECONDS fail when the source sends nothing for SECONDS (0: never)
  -P, --progress               write progress on stderr
      --debug                  write debug messages
  -?, --help                   show this help, then exit

Exit status: 0 no differences, 1 differences found, 2 wrong command line, 3 a refused
precondition (target running, different clusters...), 5 the source failed, 6 local I/O.
`

interface VerifyArgs {
  targetPgdata: string
  source: SourceSpec
  json: boolean
  jobs: number | null
  timeoutSeconds: number | null
  progress: boolean
  debug: boolean
}

function usageError(message: string): RewindError {
  return new RewindError('USAGE', `verify: ${message}`, { hint: 'Try "walrewind verify --help" for more information.' })
}

function parseInteger(text: string, option: string, min: number, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw usageError(`${option} must be in range ${min}..${max}`)
  return Number(text)
}

/** The command line, or 'help'; throws a USAGE RewindError. */
export function parseVerifyArgs(args: readonly string[]): VerifyArgs | 'help' {
  let target: string | null = null
  let sourcePgdata: string | null = null
  let sourceServer: string | null = null
  const out = { json: false, jobs: null as number | null, timeoutSeconds: null as number | null, progress: false, debug: false }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === '--help' || arg === '-?') return 'help'
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1
    const name = eq > 0 ? arg.slice(0, eq) : arg
    const takesValue = ['-D', '--target-pgdata', '--source-pgdata', '--source-server', '--jobs', '--source-timeout'].includes(name)
    let value: string | undefined
    if (takesValue) {
      value = eq > 0 ? arg.slice(eq + 1) : args[++i]
      if (value === undefined) throw usageError(`option ${name} needs a value`)
    } else if (eq > 0) {
      throw usageError(`option ${name} takes no value`)
    }
    switch (name) {
      case '-D':
      case '--target-pgdata':
        target = value!
        break
      case '--source-pgdata':
        sourcePgdata = value!
        break
      case '--source-server':
        sourceServer = value!
        break
      case '--jobs':
        out.jobs = parseInteger(value!, '--jobs', 1, 64)
        break
      case '--source-timeout':
        out.timeoutSeconds = parseInteger(value!, '--source-timeout', 0, 2147483)
        break
      case '--json':
        out.json = true
        break
      case '-P':
      case '--progress':
        out.progress = true
        break
      case '--debug':
        out.debug = true
        break
      default:
        throw usageError(arg.startsWith('-') ? `unknown option "${arg}"` : `too many command-line arguments (first is "${arg}")`)
    }
  }
  if (sourcePgdata === null && sourceServer === null) throw usageError('no source specified (--source-pgdata or --source-server)')
  if (sourcePgdata !== null && sourceServer !== null) throw usageError('only one of --source-pgdata or --source-server can be specified')
  if (target === null || target === '') throw usageError('no target data directory specified (--target-pgdata)')
  const source: SourceSpec = sourceServer !== null ? { kind: 'server', conninfo: sourceServer } : { kind: 'local', pgdata: sourcePgdata! }
  return { targetPgdata: target, source, ...out }
}

/** "block 3", "blocks 3, 10-12", the first few runs of many. */
export function formatBlocks(blocks: readonly (readonly [number, number])[], most = 16): string {
  const runs = blocks.slice(0, most).map(([first, count]) => (count === 1 ? `${first}` : `${first}-${first + count - 1}`))
  const n = blocks.reduce((sum, [, count]) => sum + count, 0)
  const more = blocks.length > most ? `, ... (${blocks.length - most} more runs)` : ''
  return `${n === 1 ? 'block' : `${n} blocks:`} ${runs.join(', ')}${more}`
}

function describe(d: VerifyDifference): string {
  switch (d.kind) {
    case 'blocks': {
      const sizes = d.sourceSize !== d.targetSize ? ` (${d.sourceSize} bytes on the source, ${d.targetSize} on the target)` : ''
      return `${formatBlocks(d.blocks ?? [])} differ${d.blocks?.length === 1 && d.blocks[0]![1] === 1 ? 's' : ''}${sizes}`
    }
    case 'content':
      return 'content differs'
    case 'size':
      return `size differs: ${d.sourceSize} bytes on the source, ${d.targetSize} on the target`
    case 'type':
      return `a ${d.sourceType} on the source, a ${d.targetType} on the target`
    case 'source-only':
      return `only on the source (${d.sourceType})`
    case 'target-only':
      return `only on the target (${d.targetType})`
  }
}

/** The text report: one line per difference, then the summary. */
export function formatVerifyText(result: VerifyResult): string {
  const lines: string[] = []
  lines.push(`target ${result.target.description} (checkpoint ${result.target.checkpoint}, timeline ${result.target.timeline})`)
  lines.push(
    `source ${result.source.description} (${result.source.running ? 'running server' : 'stopped data directory'}, ` +
      `checkpoint ${result.source.checkpoint}, timeline ${result.source.timeline})`,
  )
  for (const d of result.differences) lines.push(`${d.path}: ${describe(d)}`)
  const s = result.stats
  const mb = (s.comparedBytes / 1048576).toFixed(1)
  lines.push(
    `compared ${s.files} files, ${mb} MB in ${s.compareSeconds.toFixed(2)} s (${s.megabytesPerSecond.toFixed(0)} MB/s, ` +
      `${s.method === 'bytes' ? 'byte for byte' : `${s.algorithm ?? 'sha256'} digests computed on the source`}); ` +
      `${s.fetchedBlocks} relation blocks fetched for a masked comparison`,
  )
  if (result.tolerated.maskedBlocks > 0 || result.tolerated.zeroTailBlocks > 0) {
    lines.push(
      `no difference: ${result.tolerated.maskedBlocks} relation blocks differ only where a server changes pages without WAL, ` +
        `${result.tolerated.zeroTailBlocks} zero blocks lie past the other side's end`,
    )
  }
  lines.push(`not compared: ${result.skipped.map((k) => `${k.reason} (${k.entries})`).join(', ') || 'nothing'}`)
  for (const note of result.notes) lines.push(`note: ${note}`)
  if (result.equal) {
    lines.push('no differences')
  } else {
    const blocks = result.differences.reduce((n, d) => n + (d.blocks ?? []).reduce((m, [, c]) => m + c, 0), 0)
    const files = result.differences.length
    lines.push(
      `differences: ${files} file${files === 1 ? '' : 's'}${blocks > 0 ? ` (${blocks} relation block${blocks === 1 ? '' : 's'})` : ''}`,
    )
  }
  return lines.join('\n') + '\n'
}

export async function verifyCommand(args: string[], io: CliIo): Promise<number> {
  const prog = 'walrewind'
  let parsed: VerifyArgs | 'help'
  try {
    parsed = parseVerifyArgs(args)
  } catch (err) {
    if (isRewindError(err)) return printCommandError(io, prog, err)
    throw err
  }
  if (parsed === 'help') {
    io.stdout.write(USAGE)
    return 0
  }
  const options = parsed
  const { verify } = await import('../../compare/verify.js')
  const emit = textRenderer(io, prog, { progress: options.progress, debug: options.debug })
  const tty = io.stderr.isTTY === true
  let lastShown = 0
  let open = false
  const onProgress = options.progress
    ? (p: { comparedBytes: number; totalBytes: number; differingBytes: number }): void => {
        const now = Date.now()
        const final = p.comparedBytes >= p.totalBytes
        if (!final && now - lastShown < 250) return
        lastShown = now
        const percent = p.totalBytes > 0 ? Math.floor((p.comparedBytes * 100) / p.totalBytes) : 100
        io.stderr.write(
          `${Math.floor(p.comparedBytes / 1024)}/${Math.floor(p.totalBytes / 1024)} kB (${percent}%) compared, ` +
            `${Math.floor(p.differingBytes / 1024)} kB differ${!final && tty ? '\r' : '\n'}`,
        )
        open = !final && tty
      }
    : undefined
  try {
    const result = await verify({
      targetPgdata: options.targetPgdata,
      source: options.source,
      jobs: options.jobs,
      timeoutSeconds: options.timeoutSeconds,
      env: io.env,
      emit,
      ...(onProgress ? { onProgress } : {}),
    })
    if (open) io.stderr.write('\n')
    io.stdout.write(options.json ? JSON.stringify({ ok: true, ...result }, null, 2) + '\n' : formatVerifyText(result))
    return result.equal ? 0 : 1
  } catch (err) {
    if (open) io.stderr.write('\n')
    if (!isRewindError(err)) throw err
    if (options.json) io.stdout.write(JSON.stringify({ ok: false, error: errorJson(err) }, null, 2) + '\n')
    return printCommandError(io, prog, err)
  }
}
