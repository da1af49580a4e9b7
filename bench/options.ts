// The rewind benchmark's command line: --shape=NAME, --mode=local|remote, --runs=N, parameter
// overrides for small validation runs, and where prepared states live (--state-dir).

export const SHAPE_NAMES = [
  'after-load',
  'follow-load',
  'scale200-short',
  'scale50-30s',
  'scale500-short',
  'many-tables',
  'long-wal-before-fork',
  'time-to-streaming-short',
  'time-to-streaming-long',
] as const
export type ShapeName = (typeof SHAPE_NAMES)[number]

export const CONTENDER_IDS = ['pg_rewind', 'walrewind', 'walrewind-lcc', 'walrewind-jobs1', 'walrewind-jobs2', 'walrewind-other'] as const
export type ContenderId = (typeof CONTENDER_IDS)[number]

/** Parameters a shape's preparation takes; each shape has its defaults, every one can be overridden. */
export interface Overrides {
  scale?: number
  /** Seconds of pgbench on both sides after the fork. */
  seconds?: number
  /** time-to-streaming-long: seconds the source writes after the fork (in total). */
  sourceSeconds?: number
  /** time-to-streaming-long: MB of WAL the source writes after the fork, at least. */
  sourceWalMb?: number
  /** many-tables: tables in the cluster. */
  tables?: number
  /** many-tables: tables changed on each side after the fork. */
  changed?: number
  /** long-wal-before-fork: MB of WAL of small records between the last common checkpoint and the fork. */
  walMb?: number
}

export interface BenchOptions {
  shape: ShapeName
  /** null: the shape's own (local for rewind shapes; time-to-streaming is always remote). */
  mode: 'local' | 'remote' | null
  runs: number
  /** Prepared states are kept here and reused by later invocations; null = inside the kit (removed). */
  stateDir: string | null
  /** Prepare again even if the state dir holds this shape's state. */
  reprepare: boolean
  /** Keep the kit's directory (servers are stopped anyway). */
  keep: boolean
  /** Measure bytes written with strace (one extra run per tool). */
  bytes: boolean
  /** null = the shape's default contenders. */
  tools: ContenderId[] | null
  /** Seconds of pgbench on the restarted source before each rewind (remote and time-to-streaming only). */
  sourceLoad: number
  /** Raw results as JSON, appended as one line. */
  out: string | null
  /** Only prepare (and save) the state; no runs. */
  prepareOnly: boolean
  overrides: Overrides
}

export const USAGE = `Usage: node dist/bench/rewind.js [--shape=NAME] [--mode=local|remote] [--runs=N]
       [--state-dir=DIR] [--reprepare] [--prepare-only] [--keep] [--no-bytes] [--tools=a,b]
       [--source-load=SECONDS] [--out=FILE.jsonl]
       [--scale=N] [--seconds=N] [--tables=N] [--changed=N] [--wal-mb=N] [--source-seconds=N] [--source-wal-mb=N]
shapes: ${SHAPE_NAMES.join(', ')}
tools:  ${CONTENDER_IDS.join(', ')} (walrewind-lcc = walrewind --replay-from=last-common-checkpoint,
        walrewind-jobsN = walrewind --jobs=N: N source connections or readers instead of 4,
        walrewind-other = the walrewind at $WALREWIND_OTHER (its bin/walrewind.js), for an A/B of two builds)
--follow-load alone is --shape=follow-load (the older command line).`

const NUMERIC: Record<string, keyof Overrides> = {
  scale: 'scale',
  seconds: 'seconds',
  'source-seconds': 'sourceSeconds',
  'source-wal-mb': 'sourceWalMb',
  tables: 'tables',
  changed: 'changed',
  'wal-mb': 'walMb',
}

export function parseOptions(argv: readonly string[]): BenchOptions {
  const opts: BenchOptions = {
    shape: 'after-load',
    mode: null,
    runs: 3,
    stateDir: null,
    reprepare: false,
    keep: false,
    bytes: true,
    tools: null,
    sourceLoad: 0,
    out: null,
    prepareOnly: false,
    overrides: {},
  }
  let shapeGiven = false
  let followLoad = false
  for (const arg of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    if (!m) throw new Error(`unexpected argument ${arg}\n${USAGE}`)
    const [, name, value] = m as unknown as [string, string, string | undefined]
    const need = (): string => {
      if (value === undefined || value === '') throw new Error(`--${name} needs a value\n${USAGE}`)
      return value
    }
    const positive = (min: number): number => {
      const n = Number(need())
      if (!Number.isFinite(n) || n < min) throw new Error(`--${name}=${value}: a number >= ${min} expected`)
      return n
    }
    if (name in NUMERIC) {
      opts.overrides[NUMERIC[name]!] = positive(name === 'seconds' || name === 'source-seconds' ? 0 : 1)
      continue
    }
    switch (name) {
      case 'shape': {
        const shape = need()
        if (!(SHAPE_NAMES as readonly string[]).includes(shape)) throw new Error(`--shape=${shape}: unknown\n${USAGE}`)
        opts.shape = shape as ShapeName
        shapeGiven = true
        break
      }
      case 'mode': {
        const mode = need()
        if (mode !== 'local' && mode !== 'remote') throw new Error(`--mode=${mode}: local or remote`)
        opts.mode = mode
        break
      }
      case 'runs':
        opts.runs = Math.floor(positive(1))
        break
      case 'state-dir':
        opts.stateDir = need()
        break
      case 'reprepare':
        opts.reprepare = true
        break
      case 'prepare-only':
        opts.prepareOnly = true
        break
      case 'keep':
        opts.keep = true
        break
      case 'no-bytes':
        opts.bytes = false
        break
      case 'follow-load':
        followLoad = true
        break
      case 'source-load':
        opts.sourceLoad = positive(0)
        break
      case 'out':
        opts.out = need()
        break
      case 'tools': {
        const tools = need()
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean)
        for (const t of tools)
          if (!(CONTENDER_IDS as readonly string[]).includes(t)) throw new Error(`--tools: unknown tool ${t}\n${USAGE}`)
        opts.tools = tools as ContenderId[]
        break
      }
      case 'help':
        throw new Error(USAGE)
      default:
        throw new Error(`unknown option --${name}\n${USAGE}`)
    }
  }
  if (followLoad) {
    if (shapeGiven && opts.shape !== 'follow-load') throw new Error('--follow-load goes with --shape=follow-load only')
    opts.shape = 'follow-load'
  }
  return opts
}
