// Entry point of the walrewind executable: picks the subcommand and returns an exit status.
// Without a known subcommand the arguments are pg_rewind's, so `walrewind -D ... --source-...`
// (or walrewind installed under the name pg_rewind) is a drop-in for pg_rewind.
//
// Start-up time matters (HA managers run `pg_rewind --help` or `--version` to probe it, and a
// rewind's own clock starts here): this module and what --help and --version need load only
// node:fs/node:path/node:url; every subcommand, and the rewind itself, is imported when it runs.

import path from 'node:path'
import type { CliIo, Command } from './io.js'

const SUBCOMMANDS: Record<string, () => Promise<Command>> = {
  controldata: async () => (await import('./commands/controldata.js')).controldata,
  waldump: async () => (await import('./commands/waldump.js')).waldump,
  demo: async () => (await import('./commands/demo.js')).demo,
  timelines: async () => (await import('./commands/timelines.js')).timelines,
  rewind: async () => (await import('./commands/rewind.js')).rewindCommand,
  verify: async () => (await import('./commands/verify.js')).verifyCommand,
}

export type Personality = 'pg_rewind' | 'walrewind'

/**
 * Who we are, from the name we were invoked by (the path as run, symlinks not resolved): a link or
 * a copy named pg_rewind (or pg_rewind.js) behaves as pg_rewind, anything else as walrewind.
 */
export function personalityOf(argv1: string): Personality {
  return path.basename(argv1).replace(/\.(c|m)?js$/, '') === 'pg_rewind' ? 'pg_rewind' : 'walrewind'
}

/** Exit status of a failure walrewind did not foresee: pg_rewind exits 1 on every error. */
export function internalErrorStatus(programName: Personality): number {
  return programName === 'pg_rewind' ? 1 : 70
}

/**
 * Runs walrewind with `argv` (without node and script), returns the exit status. `argv1` is the
 * path the program was invoked by (process.argv[1]): it gives the personality, and postgres is
 * looked for next to it.
 */
export async function main(argv: string[], io: CliIo, argv1: string = process.argv[1] ?? 'walrewind'): Promise<number> {
  const programName = personalityOf(argv1)
  try {
    const first = argv[0]
    if (programName === 'walrewind' && first !== undefined && Object.hasOwn(SUBCOMMANDS, first)) {
      const command = await SUBCOMMANDS[first]!()
      return await command(argv.slice(1), io, programName, argv1)
    }
    const rewind = await SUBCOMMANDS['rewind']!()
    return await rewind(argv, io, programName, argv1)
  } catch (err) {
    io.stderr.write(`${programName}: error: internal error: ${(err as Error)?.stack ?? String(err)}\n`)
    return internalErrorStatus(programName)
  }
}
