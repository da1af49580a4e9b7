// pg_rewind's command line, parsed as pg_rewind 18 parses it: glibc getopt_long over "cD:nNPR" and
// pg_rewind's long options (bundling, permutation, unambiguous prefixes, `--`), then main()'s checks
// in main()'s order and words, so HA managers that call pg_rewind by path see the same messages and
// statuses. walrewind's own options are long only and must be spelled in full: that way no
// pg_rewind abbreviation ever changes meaning, now or when walrewind grows an option.

import { formatUsage, formatVersion } from './usage.js'

export type SyncMethod = 'fsync' | 'syncfs'

export interface RewindArgs {
  targetPgdata: string
  source: { kind: 'local'; pgdata: string } | { kind: 'server'; conninfo: string }
  dryRun: boolean
  noSync: boolean
  progress: boolean
  debug: boolean
  restoreTargetWal: boolean
  /** false with --no-ensure-shutdown. */
  ensureShutdown: boolean
  writeRecoveryConf: boolean
  configFile: string | null
  syncMethod: SyncMethod
  /** --json: one JSON document / JSON-lines events on stdout. */
  json: boolean
  /** --jobs=N: parallel source connections or readers, 1..64; null = the library's default. */
  jobs: number | null
  /** --source-timeout=SECONDS: a source silent that long fails; 0 = never; null = the default. */
  timeoutSeconds: number | null
  /** --postgres-bindir=DIR; null = not given (postgres is looked for next to the program, then $PG_BINDIR, then PATH). */
  postgresBindir: string | null
  /**
   * Copy the source's postgresql.conf, pg_hba.conf, pg_ident.conf and postgresql.auto.conf over the
   * target's: always as pg_rewind (its behaviour), with --copy-config-files as walrewind.
   */
  copyConfigFiles: boolean
  /** --require-source-wal: refuse, before any write, when the source no longer has WAL the node needs. */
  requireSourceWal: boolean
  /** --replay-from=source-checkpoint|last-common-checkpoint; null = the environment's WALREWIND_REPLAY_FROM, else the library's default. */
  replayFrom: 'source-checkpoint' | 'last-common-checkpoint' | null
  /**
   * --compare=auto|wal|blocks: how changed blocks are found. 'wal' is pg_rewind's (its refusals when
   * the WAL cannot tell), the default as pg_rewind; 'auto' compares blocks when the WAL cannot tell,
   * walrewind's default; 'blocks' always compares.
   */
  compare: 'auto' | 'wal' | 'blocks'
  /**
   * --patch-blocks=auto|on|off: fetch changed blocks from a running source as patches of the
   * target's copies (only differing pieces cross the network). 'auto': when blocks are compared.
   */
  patchBlocks: 'auto' | 'on' | 'off'
}

export type ParsedArgs =
  | { kind: 'run'; options: RewindArgs }
  | { kind: 'help'; text: string }
  | { kind: 'version'; text: string }
  /**
   * Exit 1 after printing it with formatParseError(). Normally `${prog}: error: ${message}`; `raw`
   * marks getopt's own complaints, printed as they are (they carry argv[0], not the program name,
   * and may be empty: getopt is silent for --help or --version after the first argument).
   */
  | { kind: 'error'; message: string; hint: boolean; raw?: boolean }

export interface ParseContext {
  /**
   * argv[0] as the caller ran it (usually the path): glibc prefixes its complaints with argv[0]
   * (`/usr/lib/postgresql/18/bin/pg_rewind: invalid option -- 'x'`), pg_rewind's own messages use
   * the base name. Defaults to the program name.
   */
  argv0?: string
  /** Only POSIXLY_CORRECT is looked at: like glibc, it stops option parsing at the first operand. */
  env?: Readonly<Record<string, string | undefined>>
  /** syncfs exists only on Linux, as in PostgreSQL's HAVE_SYNCFS. Defaults to process.platform. */
  platform?: string
}

type OptionId =
  | 'c'
  | 'D'
  | 'n'
  | 'N'
  | 'P'
  | 'R'
  | '?'
  | 'V'
  | 'source-pgdata'
  | 'source-server'
  | 'debug'
  | 'no-ensure-shutdown'
  | 'config-file'
  | 'sync-method'
  | 'json'
  | 'jobs'
  | 'source-timeout'
  | 'postgres-bindir'
  | 'copy-config-files'
  | 'require-source-wal'
  | 'replay-from'
  | 'compare'
  | 'patch-blocks'

interface LongOption {
  readonly name: string
  readonly hasArg: boolean
  readonly id: OptionId
}

/** pg_rewind.c long_options[], in its order: glibc lists ambiguous candidates in table order. */
const PG_REWIND_LONG_OPTIONS: readonly LongOption[] = [
  { name: 'help', hasArg: false, id: '?' },
  { name: 'target-pgdata', hasArg: true, id: 'D' },
  { name: 'write-recovery-conf', hasArg: false, id: 'R' },
  { name: 'source-pgdata', hasArg: true, id: 'source-pgdata' },
  { name: 'source-server', hasArg: true, id: 'source-server' },
  { name: 'no-ensure-shutdown', hasArg: false, id: 'no-ensure-shutdown' },
  { name: 'config-file', hasArg: true, id: 'config-file' },
  { name: 'version', hasArg: false, id: 'V' },
  { name: 'restore-target-wal', hasArg: false, id: 'c' },
  { name: 'dry-run', hasArg: false, id: 'n' },
  { name: 'no-sync', hasArg: false, id: 'N' },
  { name: 'progress', hasArg: false, id: 'P' },
  { name: 'debug', hasArg: false, id: 'debug' },
  { name: 'sync-method', hasArg: true, id: 'sync-method' },
]

/** walrewind's own: matched by full name only, never by prefix (see the file comment). */
export const WALREWIND_LONG_OPTIONS: readonly LongOption[] = [
  { name: 'json', hasArg: false, id: 'json' },
  { name: 'jobs', hasArg: true, id: 'jobs' },
  { name: 'source-timeout', hasArg: true, id: 'source-timeout' },
  { name: 'postgres-bindir', hasArg: true, id: 'postgres-bindir' },
  { name: 'copy-config-files', hasArg: false, id: 'copy-config-files' },
  { name: 'require-source-wal', hasArg: false, id: 'require-source-wal' },
  { name: 'replay-from', hasArg: true, id: 'replay-from' },
  { name: 'compare', hasArg: true, id: 'compare' },
  { name: 'patch-blocks', hasArg: true, id: 'patch-blocks' },
]

export const PG_REWIND_LONG_OPTION_NAMES: readonly string[] = PG_REWIND_LONG_OPTIONS.map((o) => o.name)

/** pg_rewind's getopt string "cD:nNPR": the short options and whether each takes a value. */
const SHORT_OPTIONS: Readonly<Record<string, boolean>> = { c: false, D: true, n: false, N: false, P: false, R: false }

const JOBS_MAX = 64
/** setTimeout's longest delay is 2^31-1 ms; a longer one would fire at once. */
const TIMEOUT_MAX_SECONDS = 2147483

interface Draft {
  targetPgdata: string | null
  sourcePgdata: string | null
  sourceServer: string | null
  options: Omit<RewindArgs, 'targetPgdata' | 'source'>
}

type Failure = Extract<ParsedArgs, { kind: 'error' }>

/**
 * Parses pg_rewind's arguments (argv without the program). Never throws and does no I/O, except
 * reading package.json to answer --help or --version. The caller prints: help and version text
 * on stdout with exit 0, an 'error' through formatParseError() on stderr with exit 1 (pg_rewind's).
 */
export function parseRewindArgs(argv: readonly string[], programName: 'pg_rewind' | 'walrewind', context: ParseContext = {}): ParsedArgs {
  // Why only the first argument: pg_rewind checks argv[1] by strcmp before getopt ever runs.
  const first = argv[0]
  if (first === '--help' || first === '-?') return { kind: 'help', text: formatUsage(programName) }
  if (first === '--version' || first === '-V') return { kind: 'version', text: formatVersion(programName) }

  const argv0 = context.argv0 ?? programName
  const platform = context.platform ?? process.platform
  const requireOrder = context.env?.['POSIXLY_CORRECT'] !== undefined
  const draft: Draft = {
    targetPgdata: null,
    sourcePgdata: null,
    sourceServer: null,
    options: {
      dryRun: false,
      noSync: false,
      progress: false,
      debug: false,
      restoreTargetWal: false,
      ensureShutdown: true,
      writeRecoveryConf: false,
      configFile: null,
      syncMethod: 'fsync',
      json: false,
      jobs: null,
      timeoutSeconds: null,
      postgresBindir: null,
      // pg_rewind copies the source's configuration files; walrewind keeps the target's own.
      copyConfigFiles: programName === 'pg_rewind',
      requireSourceWal: false,
      replayFrom: null,
      compare: programName === 'pg_rewind' ? 'wal' : 'auto',
      patchBlocks: 'auto',
    },
  }
  // Operands in the order getopt's permutation leaves them: pg_rewind only reports the first.
  const operands: string[] = []

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      operands.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (requireOrder) {
        operands.push(...argv.slice(i))
        break
      }
      operands.push(arg)
      continue
    }

    if (arg.startsWith('--')) {
      const body = arg.slice(2)
      const eq = body.indexOf('=')
      const found = findLongOption(eq < 0 ? body : body.slice(0, eq), body, argv0)
      if ('kind' in found) return found
      let value: string | null = null
      if (eq >= 0) {
        if (!found.hasArg) return getoptFailure(`${argv0}: option '--${found.name}' doesn't allow an argument`)
        value = body.slice(eq + 1)
      } else if (found.hasArg) {
        if (i + 1 >= argv.length) return getoptFailure(`${argv0}: option '--${found.name}' requires an argument`)
        value = argv[++i]!
      }
      const failure = applyOption(draft, found.id, value, platform)
      if (failure !== null) return failure
      continue
    }

    // A bundle of short options (-nNP); one that takes a value ends it (-Ddir, -nD dir).
    const chars = Array.from(arg.slice(1))
    for (let j = 0; j < chars.length; j++) {
      const c = chars[j]!
      const hasArg = SHORT_OPTIONS[c]
      if (hasArg === undefined) return getoptFailure(`${argv0}: invalid option -- '${c}'`)
      let value: string | null = null
      if (hasArg) {
        if (j + 1 < chars.length) value = chars.slice(j + 1).join('')
        else if (i + 1 < argv.length) value = argv[++i]!
        else return getoptFailure(`${argv0}: option requires an argument -- '${c}'`)
      }
      const failure = applyOption(draft, c as OptionId, value, platform)
      if (failure !== null) return failure
      if (hasArg) break
    }
  }

  // pg_rewind 18 main(), in its order.
  if (draft.sourcePgdata === null && draft.sourceServer === null) {
    return usageFailure('no source specified (--source-pgdata or --source-server)')
  }
  if (draft.sourcePgdata !== null && draft.sourceServer !== null) {
    return usageFailure('only one of --source-pgdata or --source-server can be specified')
  }
  if (draft.targetPgdata === null) return usageFailure('no target data directory specified (--target-pgdata)')
  if (draft.options.writeRecoveryConf && draft.sourceServer === null) {
    return usageFailure('no source server information (--source-server) specified for --write-recovery-conf')
  }
  if (operands.length > 0) return usageFailure(`too many command-line arguments (first is "${operands[0]}")`)

  const source: RewindArgs['source'] =
    draft.sourceServer !== null ? { kind: 'server', conninfo: draft.sourceServer } : { kind: 'local', pgdata: draft.sourcePgdata! }
  return { kind: 'run', options: { targetPgdata: draft.targetPgdata, source, ...draft.options } }
}

/** The exact stderr text for a failed parse, as pg_rewind 15+ prints it (pg_logging's prefixes). */
export function formatParseError(failure: Failure, programName: 'pg_rewind' | 'walrewind'): string {
  let text = ''
  if (failure.raw === true) {
    if (failure.message !== '') text += `${failure.message}\n`
  } else {
    text += `${programName}: error: ${failure.message}\n`
  }
  if (failure.hint) text += `${programName}: hint: Try "${programName} --help" for more information.\n`
  return text
}

/**
 * glibc's long-option lookup: an exact name wins; otherwise a unique prefix of one of pg_rewind's
 * names. Several prefix matches are ambiguous unless they all mean the same option.
 */
function findLongOption(name: string, body: string, argv0: string): LongOption | Failure {
  const exact = PG_REWIND_LONG_OPTIONS.find((o) => o.name === name) ?? WALREWIND_LONG_OPTIONS.find((o) => o.name === name)
  if (exact !== undefined) return exact
  const matches = PG_REWIND_LONG_OPTIONS.filter((o) => o.name.startsWith(name))
  const first = matches[0]
  if (first === undefined) return getoptFailure(`${argv0}: unrecognized option '--${body}'`)
  const distinct = matches.filter((o) => o === first || o.hasArg !== first.hasArg || o.id !== first.id)
  if (distinct.length > 1) {
    const possibilities = distinct.map((o) => ` '--${o.name}'`).join('')
    return getoptFailure(`${argv0}: option '--${body}' is ambiguous; possibilities:${possibilities}`)
  }
  return first
}

/** The switch in pg_rewind's getopt loop. Value errors stop parsing at once, without the hint. */
function applyOption(draft: Draft, id: OptionId, value: string | null, platform: string): Failure | null {
  const options = draft.options
  switch (id) {
    case 'c':
      options.restoreTargetWal = true
      break
    case 'P':
      options.progress = true
      break
    case 'n':
      options.dryRun = true
      break
    case 'N':
      options.noSync = true
      break
    case 'R':
      options.writeRecoveryConf = true
      break
    case 'debug':
      options.debug = true
      break
    case 'D':
      draft.targetPgdata = value!
      break
    case 'source-pgdata':
      draft.sourcePgdata = value!
      break
    case 'source-server':
      draft.sourceServer = value!
      break
    case 'no-ensure-shutdown':
      options.ensureShutdown = false
      break
    case 'config-file':
      options.configFile = value!
      break
    case 'sync-method': {
      // fe_utils/option_utils.c parse_sync_method()
      if (value === 'fsync') options.syncMethod = 'fsync'
      else if (value !== 'syncfs') return valueFailure(`unrecognized sync method: ${value}`)
      else if (platform !== 'linux') return valueFailure('this build does not support sync method "syncfs"')
      else options.syncMethod = 'syncfs'
      break
    }
    case 'json':
      options.json = true
      break
    case 'jobs': {
      const jobs = parseIntOption(value!, '--jobs', 1, JOBS_MAX)
      if (typeof jobs !== 'number') return jobs
      options.jobs = jobs
      break
    }
    case 'source-timeout': {
      const seconds = parseIntOption(value!, '--source-timeout', 0, TIMEOUT_MAX_SECONDS)
      if (typeof seconds !== 'number') return seconds
      options.timeoutSeconds = seconds
      break
    }
    case 'postgres-bindir':
      options.postgresBindir = value!
      break
    case 'copy-config-files':
      options.copyConfigFiles = true
      break
    case 'require-source-wal':
      options.requireSourceWal = true
      break
    case 'replay-from':
      if (value !== 'source-checkpoint' && value !== 'last-common-checkpoint') {
        return valueFailure(`invalid value "${value}" for option --replay-from: source-checkpoint or last-common-checkpoint`)
      }
      options.replayFrom = value
      break
    case 'compare':
      if (value !== 'auto' && value !== 'wal' && value !== 'blocks')
        return valueFailure(`invalid value "${value}" for option --compare: auto, wal or blocks`)
      options.compare = value
      break
    case 'patch-blocks':
      if (value !== 'auto' && value !== 'on' && value !== 'off')
        return valueFailure(`invalid value "${value}" for option --patch-blocks: auto, on or off`)
      options.patchBlocks = value
      break
    // getopt_long returned '?' or 'V' for --help/--version after the first argument, silently;
    // pg_rewind's default case then prints only the hint.
    case '?':
    case 'V':
      return { kind: 'error', message: '', hint: true, raw: true }
  }
  return null
}

/**
 * PostgreSQL's option_parse_int() (fe_utils/option_utils.c) with its strtoint() underneath:
 * leading and trailing white space allowed, no digits at all reads as 0, and the same two messages.
 */
function parseIntOption(text: string, optname: string, min: number, max: number): number | Failure {
  const match = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)/.exec(text)
  // Why "no digits" is not an error by itself: strtol then returns 0 and leaves endptr at the start.
  const rest = match === null ? text : text.slice(match[0].length)
  if (!/^[ \t\n\v\f\r]*$/.test(rest)) return valueFailure(`invalid value "${text}" for option ${optname}`)
  const value = match === null ? 0 : Number(`${match[1]}${match[2]}`)
  if (value < min || value > max) return valueFailure(`${optname} must be in range ${min}..${max}`)
  return value
}

function getoptFailure(message: string): Failure {
  return { kind: 'error', message, hint: true, raw: true }
}

function usageFailure(message: string): Failure {
  return { kind: 'error', message, hint: true }
}

function valueFailure(message: string): Failure {
  return { kind: 'error', message, hint: false }
}
