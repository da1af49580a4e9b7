// Fetches a WAL segment the target lacks through its own restore_command (-c), as the server
// would during archive recovery: %f is the file name, %p the path to write, %% a percent sign.

import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import { RewindError } from '../errors.js'

/** Builds the shell command for one file; %r has no meaning outside a running server. */
export function expandRestoreCommand(command: string, fileName: string, destPath: string): string {
  return command.replace(/%(.)/g, (match, c: string) => {
    if (c === 'f') return fileName
    if (c === 'p') return destPath
    if (c === '%') return '%'
    if (c === 'r') throw new RewindError('RESTORE_COMMAND', 'cannot use restore_command with %r placeholder')
    return match
  })
}

/**
 * Runs restore_command for `fileName` into `destPath`. True if the file arrived whole; false if
 * the archive does not have it. A restore_command killed by a signal is fatal, as in the server.
 */
export async function restoreWalSegment(command: string, fileName: string, destPath: string, segSize: number): Promise<boolean> {
  const shellCommand = expandRestoreCommand(command, fileName, destPath)
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', shellCommand], { stdio: ['ignore', 'ignore', 'inherit'] })
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal }))
  })
  if (signal !== null || (code !== null && code > 125)) {
    throw new RewindError(
      'RESTORE_COMMAND',
      `restore_command failed: ${signal ? `child process was terminated by signal ${signal}` : `child process exited with exit code ${code}`}`,
      { detail: `The failed command was: ${shellCommand}` },
    )
  }
  if (code !== 0) return false
  let size: number
  try {
    size = (await fs.stat(destPath)).size
  } catch (err) {
    throw new RewindError('RESTORE_COMMAND', `could not open file "${destPath}" restored from archive: ${(err as Error).message}`, {
      path: destPath,
    })
  }
  if (size !== segSize) {
    throw new RewindError('RESTORE_COMMAND', `unexpected file size for "${destPath}": ${size} instead of ${segSize}`, { path: destPath })
  }
  return true
}
