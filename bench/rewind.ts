// Benchmark (not a test): the same saved state rewound by walrewind and by Debian's pg_rewind 15,
// the tools alternating, the state put back before every run, fsync on (no -N), as the kit's
// unprivileged OS user. Per tool: wall time (median and every run), peak RSS (/usr/bin/time -v),
// bytes written to files (a separate run under strace -f), walrewind's stage timings (--debug).
// Shapes of state: bench/shapes.ts; time to streaming: bench/streaming.ts; see bench/README.md.
// Usage: node dist/bench/rewind.js --shape=NAME [--mode=local|remote] [--runs=3] [--state-dir=DIR] ...
// (node dist/bench/rewind.js --help). Needs Debian's PostgreSQL 15 client tools in
// /usr/lib/postgresql/15/bin (pg_rewind, pgbench, pg_waldump, pg_controldata) and strace for bytes.

import fs from 'node:fs'
import path from 'node:path'
import { Kit, REWIND_ROLE } from '../test/kit/index.js'
import type { Settings } from '../test/kit/conf.js'
import { PROJECT_ROOT } from '../test/kit/majors.js'
import { countBytes, mb, median, secs, stageTimings, straceMissing, timedRun, type ByteCount, type StageTimings } from './measure.js'
import { parseOptions, type BenchOptions, type ContenderId } from './options.js'
import { PG15, pgbench, resolveParams, SHAPES, stateKey, type Params, type Shape } from './shapes.js'
import { StateStore, type StateMeta } from './store.js'
import { timeToStreaming, type StreamingRun } from './streaming.js'

const HOUR_MS = 3_600_000

interface Contender {
  id: ContenderId
  label: string
  cmd: string[]
  walrewind: boolean
  /** May be rejected by this walrewind (an option it does not have yet): then reported unavailable. */
  optional: boolean
}

// By its path, as an HA manager or an operator runs it (its first line starts node with its options:
// bin/walrewind.js), with the node first on the PATH.
const WALREWIND = [path.join(PROJECT_ROOT, 'bin', 'walrewind.js')]
function withJobs(jobs: 1 | 2): Contender {
  return {
    id: `walrewind-jobs${jobs}`,
    label: `walrewind --jobs=${jobs}`,
    cmd: [...WALREWIND, '--debug', `--jobs=${jobs}`],
    walrewind: true,
    optional: false,
  }
}

const CONTENDERS: Record<ContenderId, Contender> = {
  pg_rewind: { id: 'pg_rewind', label: 'pg_rewind 15', cmd: [path.join(PG15, 'pg_rewind')], walrewind: false, optional: false },
  walrewind: { id: 'walrewind', label: 'walrewind', cmd: [...WALREWIND, '--debug'], walrewind: true, optional: false },
  'walrewind-lcc': {
    id: 'walrewind-lcc',
    label: 'walrewind --replay-from=last-common-checkpoint',
    cmd: [...WALREWIND, '--debug', '--replay-from=last-common-checkpoint'],
    walrewind: true,
    optional: true,
  },
  'walrewind-jobs1': withJobs(1),
  'walrewind-jobs2': withJobs(2),
  'walrewind-other': {
    id: 'walrewind-other',
    label: `walrewind at ${process.env['WALREWIND_OTHER'] ?? '$WALREWIND_OTHER (not set)'}`,
    cmd: [process.env['WALREWIND_OTHER'] ?? '/nonexistent/walrewind.js', '--debug'],
    walrewind: true,
    optional: false,
  },
}

interface Run {
  wallSeconds: number
  maxRssMb: number
  stages: StageTimings | null
  streaming: StreamingRun | null
}

interface Outcome {
  contender: Contender
  unavailable: string | null
  runs: Run[]
  bytes: ByteCount | null
}

const t0 = Date.now()
function log(message: string): void {
  console.error(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${message}`)
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2))
  const shape = SHAPES[opts.shape]
  const params = resolveParams(shape, opts.overrides)
  if (shape.kind === 'streaming' && opts.mode === 'local')
    throw new Error(`${shape.name} rewinds from the running source: --mode=remote only`)
  const mode = shape.kind === 'streaming' ? 'remote' : (opts.mode ?? 'local')
  if (opts.sourceLoad > 0 && mode !== 'remote')
    throw new Error('--source-load needs a running source (--mode=remote or a time-to-streaming shape)')
  const kit = await Kit.create(`bench-${opts.shape}`)
  try {
    const store = new StateStore(opts.stateDir ? path.resolve(opts.stateDir) : path.join(kit.baseDir, 'prepared'))
    const key = stateKey(shape, params)
    let meta = opts.reprepare ? null : store.meta(key)
    if (meta) {
      log(`reusing the prepared state ${path.join(store.dir, key)} (made ${meta.created})`)
      await kit.initNode('primary', 15)
      await kit.initNode('standby', 15)
    } else {
      log(`preparing ${key}: ${shape.describe(params)}`)
      const started = Date.now()
      const info = await shape.prep.run({ kit, log }, params)
      meta = {
        key,
        shape: shape.name,
        params,
        created: new Date().toISOString(),
        info: { ...info, 'preparation (s)': Math.round((Date.now() - started) / 1000) },
      }
      await store.save(meta, { target: kit.node('primary'), source: kit.node('standby') })
      log(`saved ${path.join(store.dir, key)}: ${mb(store.size(key), 0)} MB`)
    }
    if (opts.prepareOnly) {
      console.log(`prepared ${key}: ${JSON.stringify(meta.info)}`)
      return
    }
    const outcomes = await runShape(kit, store, meta, shape, params, mode, opts)
    const text =
      shape.kind === 'streaming'
        ? streamingTable(shape, params, meta, outcomes, opts)
        : rewindTable(shape, params, mode, meta, outcomes, opts)
    console.log(`\n${text}`)
    if (opts.out) {
      fs.appendFileSync(
        opts.out,
        `${JSON.stringify({
          date: new Date().toISOString(),
          shape: shape.name,
          mode,
          params,
          runs: opts.runs,
          sourceLoad: opts.sourceLoad,
          state: meta,
          outcomes: outcomes.map((o) => ({ ...o, contender: o.contender.label })),
        })}\n`,
      )
    }
  } finally {
    if (opts.keep) {
      process.env['WALREWIND_KEEP_TMP'] = '1'
      log(`keeping ${kit.baseDir}`)
    }
    await kit.cleanup()
  }
}

async function runShape(
  kit: Kit,
  store: StateStore,
  meta: StateMeta,
  shape: Shape,
  _params: Params,
  mode: 'local' | 'remote',
  opts: BenchOptions,
): Promise<Outcome[]> {
  const target = kit.node('primary')
  const source = kit.node('standby')
  const sourceArgs =
    mode === 'local' ? [`--source-pgdata=${source.dataDir}`] : [`--source-server=${source.connectionString({ user: REWIND_ROLE })}`, '-R']
  // The rewound node of time-to-streaming recovers with fsync on, as in production.
  const targetSettings: Settings = shape.kind === 'streaming' ? { fsync: true } : {}
  const argvOf = (c: Contender) => [...c.cmd, `--target-pgdata=${target.dataDir}`, ...sourceArgs]

  let sourceInPlace = false
  const putBack = async () => {
    await target.stop('immediate')
    // A stopped source is only read: put back once. A running one writes (its own checkpoints): every time.
    if (mode === 'remote' || !sourceInPlace) {
      await source.stop('immediate')
      await store.restore(meta.key, 'source', source)
    }
    await store.restore(meta.key, 'target', target, targetSettings)
    if (mode === 'remote') {
      await source.start({ timeoutMs: HOUR_MS })
      if (opts.sourceLoad > 0) await pgbench(kit, source, ['-T', String(opts.sourceLoad), '-c', '4'])
    }
    await kit.run('sync', [])
    sourceInPlace = true
  }

  const outcomes: Outcome[] = (opts.tools ?? shape.defaultTools).map((id) => ({
    contender: CONTENDERS[id],
    unavailable: null,
    runs: [],
    bytes: null,
  }))
  const unavailableIf = (o: Outcome, code: number, stderr: string): boolean => {
    if (code === 0) {
      if (/no rewind required/.test(stderr))
        throw new Error(`${o.contender.label} answered "no rewind required": the prepared state is not what it should be\n${stderr}`)
      return false
    }
    if (o.contender.optional && /replay-from|unrecognized option|invalid option/i.test(stderr)) {
      o.unavailable =
        stderr
          .split('\n')
          .find((l) => /replay-from|option/i.test(l))
          ?.trim() ?? `exit ${code}`
      log(`${o.contender.label}: unavailable (${o.unavailable})`)
      return true
    }
    throw new Error(`${o.contender.label} failed with exit ${code}:\n${stderr}`)
  }

  for (let round = 0; round < opts.runs; round++) {
    // Alternating, and each round starting with the next tool, so none always runs first.
    const order = outcomes.map((_, i) => outcomes[(i + round) % outcomes.length]!)
    for (const o of order) {
      if (o.unavailable) continue
      await putBack()
      log(`round ${round + 1}/${opts.runs}: ${o.contender.label}`)
      if (shape.kind === 'streaming') {
        const r = await timeToStreaming(kit, target, argvOf(o.contender), targetSettings, 4 * HOUR_MS)
        if (unavailableIf(o, r.code, r.stderr)) continue
        const s = r as StreamingRun
        const { stderr, ...streaming } = s
        o.runs.push({
          wallSeconds: s.wallSeconds,
          maxRssMb: s.maxRssMb,
          stages: o.contender.walrewind ? stageTimings(stderr) : null,
          streaming: { ...streaming, stderr: '' },
        })
        log(
          `  rewind ${secs(s.rewindSeconds)} s, consistent at ${secs(s.consistentSeconds)} s (${mb(s.replayedToConsistent)} MB of WAL replayed), streaming at ${secs(s.streamingSeconds)} s`,
        )
      } else {
        const r = await timedRun(kit, argvOf(o.contender))
        if (unavailableIf(o, r.code, r.stderr)) continue
        o.runs.push({
          wallSeconds: r.wallSeconds,
          maxRssMb: r.maxRssMb,
          stages: o.contender.walrewind ? stageTimings(r.stderr) : null,
          streaming: null,
        })
        log(`  ${secs(r.wallSeconds)} s, ${r.maxRssMb.toFixed(0)} MB peak RSS`)
      }
    }
  }

  const noStrace = opts.bytes ? straceMissing() : null
  if (noStrace) log(noStrace)
  if (opts.bytes && !noStrace) {
    for (const o of outcomes) {
      if (o.unavailable) continue
      await putBack()
      log(`bytes written (strace): ${o.contender.label}`)
      const r = await countBytes(kit, argvOf(o.contender), path.join(kit.baseDir, `strace-${o.contender.id}.txt`))
      if (unavailableIf(o, r.code, r.stderr)) continue
      o.bytes = r.bytes
      log(`  ${mb(r.bytes.files)} MB to files (${mb(r.bytes.wal)} MB into pg_wal), ${mb(r.bytes.other)} MB elsewhere`)
    }
  }
  await target.stop('immediate')
  await source.stop('immediate')
  return outcomes
}

// ---------------------------------------------------------------------------------------------
// Markdown

function heading(shape: Shape, params: Params, mode: string, meta: StateMeta, opts: BenchOptions): string {
  const info = Object.entries(meta.info)
    .map(([k, v]) => `${k}: ${v}`)
    .join('; ')
  return (
    `### ${shape.name}, ${mode} source${opts.sourceLoad ? ` (+${opts.sourceLoad} s of pgbench on it before each rewind)` : ''}\n\n` +
    `${shape.describe(params)}. State: ${info}.\n` +
    `PostgreSQL 15, ${opts.runs} run(s) per tool, tools alternating, state put back before each run; fsync on; walrewind with --debug.\n`
  )
}

function bytesCells(o: Outcome, opts: BenchOptions): string[] {
  if (!o.bytes) return [opts.bytes ? 'n/a' : 'not measured', '–', '–']
  return [mb(o.bytes.files), mb(o.bytes.wal), String(o.bytes.calls)]
}

function rewindTable(shape: Shape, params: Params, mode: string, meta: StateMeta, outcomes: Outcome[], opts: BenchOptions): string {
  const lines = [
    heading(shape, params, mode, meta, opts),
    '| tool | wall time, median (s) | every run (s) | peak RSS, median (MB) | bytes written to files (MB) | of which into pg_wal (MB) | write calls |',
    '|---|---:|---|---:|---:|---:|---:|',
  ]
  for (const o of outcomes) {
    if (o.unavailable) {
      lines.push(`| ${o.contender.label} | unavailable: ${o.unavailable.replace(/\|/g, '\\|')} | | | | | |`)
      continue
    }
    const wall = o.runs.map((r) => r.wallSeconds)
    lines.push(
      `| ${o.contender.label} | ${secs(median(wall))} | ${wall.map(secs).join(', ')} | ${median(o.runs.map((r) => r.maxRssMb)).toFixed(0)} | ${bytesCells(o, opts).join(' | ')} |`,
    )
  }
  return `${lines.join('\n')}\n${stageTable(outcomes)}`
}

function streamingTable(shape: Shape, params: Params, meta: StateMeta, outcomes: Outcome[], opts: BenchOptions): string {
  const lines = [
    heading(shape, params, 'remote', meta, opts),
    "Seconds from the start of the rewind; WAL replayed from the backup_label's START WAL LOCATION. Medians, every run in brackets." +
      (opts.sourceLoad
        ? ''
        : ' The source restarts from its saved clean shutdown before each run, so its latest checkpoint is at the end of its WAL' +
          " (the best case for replaying from the source's checkpoint); --source-load=SECONDS writes after it first.") +
      '\n',
    '| tool | rewind (s) | consistent (s) | streaming (s) | WAL replayed to consistency (MB) | to streaming (MB) | bytes written to files (MB) | of which into pg_wal (MB) | write calls | peak RSS (MB) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const o of outcomes) {
    if (o.unavailable) {
      lines.push(`| ${o.contender.label} | unavailable: ${o.unavailable.replace(/\|/g, '\\|')} | | | | | | | | |`)
      continue
    }
    const s = o.runs.map((r) => r.streaming!)
    const cell = (values: number[], fmt: (n: number) => string) =>
      `${fmt(median(values))}${values.length > 1 ? ` (${values.map(fmt).join(', ')})` : ''}`
    lines.push(
      `| ${o.contender.label} | ${cell(
        s.map((r) => r.rewindSeconds),
        secs,
      )} | ${cell(
        s.map((r) => r.consistentSeconds),
        secs,
      )} | ` +
        `${cell(
          s.map((r) => r.streamingSeconds),
          secs,
        )} | ${mb(median(s.map((r) => r.replayedToConsistent)))} | ${mb(median(s.map((r) => r.replayedToStreaming)))} | ` +
        `${bytesCells(o, opts).join(' | ')} | ${median(o.runs.map((r) => r.maxRssMb)).toFixed(0)} |`,
    )
  }
  return `${lines.join('\n')}\n${stageTable(outcomes)}`
}

/** walrewind's "STAGE took N ms" lines: median ms per stage, one column per walrewind contender. */
function stageTable(outcomes: Outcome[]): string {
  const withStages = outcomes.filter((o) => !o.unavailable && o.runs.some((r) => r.stages && r.stages.stages.length > 0))
  if (withStages.length === 0) return ''
  const names: string[] = []
  for (const o of withStages) for (const r of o.runs) for (const [name] of r.stages!.stages) if (!names.includes(name)) names.push(name)
  const lines = [
    '',
    `| walrewind stage, median ms (every run) | ${withStages.map((o) => o.contender.label).join(' | ')} |`,
    `|---|${withStages.map(() => '---:').join('|')}|`,
  ]
  for (const name of names) {
    const cells = withStages.map((o) => {
      const ms = o.runs.map((r) => r.stages!.stages.filter(([n]) => n === name).reduce((sum, [, v]) => sum + v, 0))
      return `${median(ms).toFixed(0)}${ms.length > 1 ? ` (${ms.join(', ')})` : ''}`
    })
    lines.push(`| ${name} | ${cells.join(' | ')} |`)
  }
  const count = (f: (s: StageTimings) => number | null, fmt: (n: number) => string) =>
    withStages.map((o) => {
      const v = median(o.runs.map((r) => f(r.stages!) ?? NaN))
      return Number.isNaN(v) ? '–' : fmt(v)
    })
  lines.push(
    `| (WAL records scanned) | ${count(
      (s) => s.walRecords,
      (n) => n.toFixed(0),
    ).join(' | ')} |`,
  )
  lines.push(
    `| (MB fetched from the source) | ${count(
      (s) => s.copiedBytes,
      (n) => mb(n),
    ).join(' | ')} |`,
  )
  return `${lines.join('\n')}\n`
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err)
  process.exitCode = 1
})
