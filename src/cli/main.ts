// Entry point of the walrewind executable: picks the subcommand and returns an exit status.
// Without a known subcommand the arguments are pg_rewind's, so `walrewind -D ... --source-...`
// (or walrewind installed under the name pg_rewind) is a drop-in for pg_rewind.

import path from 'node:path'
import type { CliIo, Command } from './io.js'

const SUBCOMMANDS: Record<string, () => Promise<Command>> = {
  controldata: async () => (await import('./commands/controldata.js')).controldata,
  waldump: async () => (await import('./commands/waldump.js')).waldump,
  demo: async () => (await import('./commands/demo.js')).demo,
  timelines: async () => (await import('./commands/timelines.js')).timelines,
  rewind: async () => (await import('./commands/rewind.js')).rewindCommand,
}

/** Runs walrewind with `argv` (without node and script), returns the exit status. */
export async function main(argv: string[], io: CliIo, argv1: string = process.argv[1] ?? 'walrewind'): Promise<number> {
  const invokedAs = path.basename(argv1).replace(/\.(c|m)?js$/, '')
  const programName = invokedAs === 'pg_rewind' ? 'pg_rewind' : 'walrewind'
  const first = argv[0]
  if (programName === 'walrewind' && first !== undefined && Object.hasOwn(SUBCOMMANDS, first)) {
    const command = await SUBCOMMANDS[first]!()
    return command(argv.slice(1), io, programName)
  }
  const rewind = await SUBCOMMANDS['rewind']!()
  return rewind(argv, io, programName)
}
