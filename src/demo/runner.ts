// Runs programs as the clusters' OS user and collects their output. A non-zero exit is a result,
// not an error (callers look at it); a timeout is an error, because a hung child means something
// broke. Shared with the test kit (test/kit/runner.ts).

import { spawn } from 'node:child_process'
import os from 'node:os'
import type { OsUser } from './files.js'
export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

export interface RunOptions {
  env?: Record<string, string>
  timeoutMs?: number
  cwd?: string
  /** Text written to the child's stdin (closed afterwards). */
  input?: string
}

const DEFAULT_TIMEOUT_MS = 5 * 60_000

/** Runs children as one OS user with one base environment. */
export class Runner {
  constructor(
    readonly user: OsUser | null,
    readonly baseEnv: Record<string, string>,
    readonly defaultCwd: string,
  ) {}

  run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, {
        cwd: opts.cwd ?? this.defaultCwd,
        env: { ...this.baseEnv, ...opts.env },
        stdio: ['pipe', 'pipe', 'pipe'],
        ...(this.user ? { uid: this.user.uid, gid: this.user.gid } : {}),
      })
      const stdout: Buffer[] = []
      const stderr: Buffer[] = []
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        child.kill('SIGKILL')
      }, timeoutMs)
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
      child.stdin.on('error', () => {
        /* the child may exit without reading its input */
      })
      child.stdin.end(opts.input ?? '')
      child.once('error', (err) => {
        clearTimeout(timer)
        reject(new Error(`could not run ${cmd}: ${err.message}`, { cause: err }))
      })
      child.once('close', (code, signal) => {
        clearTimeout(timer)
        const result = {
          code: code ?? 128 + (signal ? os.constants.signals[signal] : 0),
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
        }
        if (timedOut) {
          reject(
            new Error(
              `${cmd} ${args.join(' ')}: no exit after ${timeoutMs} ms, killed\n` +
                `--- stdout\n${tail(result.stdout)}\n--- stderr\n${tail(result.stderr)}`,
            ),
          )
          return
        }
        resolve(result)
      })
    })
  }
}

/** The last `lines` lines of a text, for error messages. */
export function tail(text: string, lines = 40): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}
