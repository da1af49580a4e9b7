// Soak test of crash-safety (not run by npm test):
//
//   npx tsc -p . && node dist/test/soak/interrupt-soak.js [--major=18] [--runs=100] [--kind=local|server|both] [--big-mb=34]
//
// The scenario of test/e2e/interrupt-kill.test.ts (a diverged pair whose rewind does every kind of
// action), then, run after run, a random kill: uniform over every pass of every point a clean
// rewind of that source kind passed (so a point passed 200 times is picked 200 times as often as
// one passed once). Each run restores the target, kills walrewind there, checks that PostgreSQL
// refuses the half-rewound target without changing it, runs the same command again, and starts the
// node as a standby of the source to compare their data. One line per run, a summary at the end;
// the exit status is 1 if any run failed (2 if the scenario could not be built). Run as root, as
// the test suite is (servers and walrewind run as the OS user `walrewind`). WALREWIND_KEEP_TMP=1
// keeps the clusters.

import { Kit, majorsUnderTest, testRoot, type Major } from '../kit/index.js'
import {
  buildInterruptPair,
  killAndResume,
  passAt,
  recover,
  traceRun,
  type FaultPoint,
  type InterruptPair,
  type SourceKind,
  type TraceResult,
} from '../e2e/interrupt-harness.js'

interface Options {
  major: Major
  runs: number
  kinds: SourceKind[]
  bigMb: number
}

function usage(message: string): never {
  process.stderr.write(
    `interrupt-soak: ${message}\n` +
      'usage: node dist/test/soak/interrupt-soak.js [--major=13..18] [--runs=N] [--kind=local|server|both] [--big-mb=N]\n',
  )
  process.exit(2)
}

function parseArgs(argv: string[]): Options {
  const all = majorsUnderTest()
  let major = all[all.length - 1]!
  let runs = 100
  let kinds: SourceKind[] = ['local', 'server']
  let bigMb = 34
  for (const arg of argv) {
    const [name, value = ''] = arg.split(/=(.*)/s)
    if (name === '--major') {
      const n = Number(value)
      if (![13, 14, 15, 16, 17, 18].includes(n)) usage(`--major must be 13..18, not "${value}"`)
      major = n as Major
    } else if (name === '--runs') {
      runs = Number(value)
      if (!Number.isInteger(runs) || runs < 1) usage(`--runs must be a positive integer, not "${value}"`)
    } else if (name === '--kind') {
      if (value === 'both') kinds = ['local', 'server']
      else if (value === 'local' || value === 'server') kinds = [value]
      else usage(`--kind must be local, server or both, not "${value}"`)
    } else if (name === '--big-mb') {
      bigMb = Number(value)
      if (!Number.isInteger(bigMb) || bigMb < 1) usage(`--big-mb must be a positive integer, not "${value}"`)
    } else if (name === '--help' || name === '-h') {
      usage('help')
    } else {
      usage(`unknown argument "${arg}"`)
    }
  }
  return { major, runs, kinds, bigMb }
}

interface Failure {
  run: number
  kind: SourceKind
  point: FaultPoint
  pass: number
  error: string
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2))
  const started = Date.now()
  process.stdout.write(
    `interrupt soak: PostgreSQL ${opts.major}, ${opts.runs} runs, source ${opts.kinds.join(' and ')}, ` + `test root ${testRoot()}\n`,
  )
  const kit = await Kit.create(`interrupt-soak-${opts.major}`)
  const perPoint = new Map<string, { ok: number; failed: number; unreached: number }>()
  const failures: Failure[] = []
  let done = 0
  try {
    let pair: InterruptPair
    const traces = new Map<SourceKind, TraceResult>()
    try {
      pair = await buildInterruptPair(kit, opts.major, { bigMb: opts.bigMb, log: (m) => process.stdout.write(`${m}\n`) })
      for (const kind of opts.kinds) {
        const traced = await traceRun(pair, kind)
        traces.set(kind, traced)
        process.stdout.write(
          `${kind} source: clean run in ${seconds(traced.millis)}, ${traced.trace.length} passes: ` +
            `${[...traced.counts].map(([p, n]) => `${p} ${n}`).join(', ')}\n`,
        )
      }
    } catch (err) {
      process.stdout.write(`could not build the scenario: ${(err as Error).stack ?? String(err)}\n`)
      return 2
    }

    for (let run = 1; run <= opts.runs; run++) {
      const kind = opts.kinds[Math.floor(Math.random() * opts.kinds.length)]!
      const trace = traces.get(kind)!.trace
      const { point, pass } = passAt(trace, Math.floor(Math.random() * trace.length))
      const key = `${kind} ${point}`
      const stats = perPoint.get(key) ?? { ok: 0, failed: 0, unreached: 0 }
      perPoint.set(key, stats)
      const t0 = Date.now()
      try {
        const result = await killAndResume(pair, kind, point, pass, { allowUnreached: true })
        const big = result.bigMibWritten === undefined ? '' : ` (big_new ${result.bigMibWritten}/${result.bigMibTotal} MiB copied)`
        if (result.unreached) {
          stats.unreached++
          process.stdout.write(
            `run ${run}/${opts.runs} ${kind} ${point}:${pass} not reached (a whole rewind, checked) ${seconds(result.millis.total)}\n`,
          )
        } else {
          stats.ok++
          process.stdout.write(`run ${run}/${opts.runs} ${kind} ${point}:${pass} ok ${seconds(result.millis.total)}${big}\n`)
        }
      } catch (err) {
        stats.failed++
        const error = (err as Error).stack ?? String(err)
        failures.push({ run, kind, point, pass, error })
        process.stdout.write(
          `run ${run}/${opts.runs} ${kind} ${point}:${pass} FAILED after ${seconds(Date.now() - t0)}: ` + `${error.split('\n', 1)[0]}\n`,
        )
        await recover(pair)
      }
      done = run
    }
  } finally {
    try {
      await kit.cleanup()
    } catch (err) {
      process.stdout.write(`cleanup failed: ${(err as Error).message}\n`)
      failures.push({ run: 0, kind: opts.kinds[0]!, point: 'journal-written', pass: 0, error: `kit cleanup: ${(err as Error).message}` })
    }
  }

  process.stdout.write(`\nsummary: ${done} runs in ${seconds(Date.now() - started)}, ${failures.length} failed\n`)
  for (const [key, s] of [...perPoint].sort((a, b) => a[0].localeCompare(b[0]))) {
    process.stdout.write(
      `  ${key.padEnd(36)} ok ${s.ok}${s.unreached ? `, not reached ${s.unreached}` : ''}${s.failed ? `, FAILED ${s.failed}` : ''}\n`,
    )
  }
  for (const f of failures) {
    process.stdout.write(`\nFAILED run ${f.run}: ${f.kind} source, WALREWIND_FAULT=${f.point}:${f.pass}\n${f.error}\n`)
  }
  return failures.length > 0 ? 1 : 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    process.stderr.write(`interrupt-soak: ${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = 1
  },
)
