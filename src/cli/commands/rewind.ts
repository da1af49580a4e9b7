// The rewind itself, with pg_rewind's command line: parse, refuse root, call the library's
// rewind(), render. Invoked as pg_rewind every failure exits 1, as pg_rewind's do; as walrewind
// the exit status tells what kind of failure it was (README "Exit codes"). --help, --version and a
// wrong command line answer before the rewind's modules (the WAL reader, node-postgres...) load.

import type { RewindError } from '../../errors.js'
import type { RewindResult } from '../../rewind/rewind.js'
import type { CliIo } from '../io.js'
import { formatParseError, parseRewindArgs } from '../rewind-options.js'

export async function rewindCommand(
  args: string[],
  io: CliIo,
  programName: string,
  argv1: string = process.argv[1] ?? programName,
): Promise<number> {
  const prog = programName === 'pg_rewind' ? 'pg_rewind' : 'walrewind'
  const parsed = parseRewindArgs(args, prog, { argv0: argv1, env: io.env })
  if (parsed.kind === 'help' || parsed.kind === 'version') {
    io.stdout.write(parsed.text)
    return 0
  }
  if (parsed.kind === 'error') {
    io.stderr.write(formatParseError(parsed, prog))
    return prog === 'pg_rewind' ? 1 : 2
  }
  const options = parsed.options
  const [{ exitStatusOf, RewindError: RewindErrorClass }, { errorJson, formatError, textRenderer }, { rewind }] = await Promise.all([
    import('../../errors.js'),
    import('../render.js'),
    import('../../rewind/rewind.js'),
  ])
  const fail = (err: RewindError): number => {
    if (options.json) io.stdout.write(JSON.stringify({ ok: false, error: errorJson(err) }, null, 2) + '\n')
    io.stderr.write(formatError(err, prog))
    return prog === 'pg_rewind' ? 1 : exitStatusOf(err)
  }
  if (typeof process.geteuid === 'function' && process.geteuid() === 0) {
    return fail(
      new RewindErrorClass('RUN_AS_ROOT', `cannot be executed by "root"`, { hint: `You must run ${prog} as the PostgreSQL superuser.` }),
    )
  }
  const emit = textRenderer(io, prog, { progress: options.progress, debug: options.debug })
  let result: RewindResult
  try {
    result = await rewind({
      targetPgdata: options.targetPgdata,
      source: options.source,
      dryRun: options.dryRun,
      sync: !options.noSync,
      syncMethod: options.syncMethod,
      restoreTargetWal: options.restoreTargetWal,
      ensureShutdown: options.ensureShutdown,
      writeRecoveryConf: options.writeRecoveryConf,
      configFile: options.configFile,
      postgresBindir: options.postgresBindir,
      programPath: argv1,
      programName: prog,
      copyConfigFiles: options.copyConfigFiles,
      requireSourceWal: options.requireSourceWal,
      replayFrom: options.replayFrom ?? replayFromEnv(io.env),
      compare: options.compare,
      ...(options.patchBlocks === 'auto' ? {} : { patchBlocks: options.patchBlocks === 'on' }),
      jobs: options.jobs,
      timeoutSeconds: options.timeoutSeconds,
      env: io.env,
      emit,
    })
  } catch (err) {
    if (err instanceof RewindErrorClass) return fail(err)
    throw err
  }
  if (options.json) io.stdout.write(JSON.stringify({ ok: true, ...result }, null, 2) + '\n')
  return 0
}

/**
 * WALREWIND_REPLAY_FROM: for an HA manager that calls walrewind by path with its own options only.
 * An unknown value is ignored with the default, so that a typo cannot stop a failover.
 */
function replayFromEnv(env: Readonly<Record<string, string | undefined>>): 'source-checkpoint' | 'last-common-checkpoint' | undefined {
  const value = env['WALREWIND_REPLAY_FROM']
  return value === 'source-checkpoint' || value === 'last-common-checkpoint' ? value : undefined
}
