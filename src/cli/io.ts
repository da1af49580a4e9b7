// What a CLI command may touch of the outside world, so that tests and the library can run
// commands without a process of their own.

export interface CliIo {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean }
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean }
  readonly env: NodeJS.ProcessEnv
}

/**
 * A subcommand: gets the arguments after its name, returns the exit status. `argv1` is the path
 * the program was invoked by (process.argv[1]).
 */
export type Command = (args: string[], io: CliIo, programName: string, argv1?: string) => Promise<number>
