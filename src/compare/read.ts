// Positional reads of a local file for the comparison: a data directory on this machine (the
// target, or a stopped source read in place). Read-only; a short read means the file ends there.

import fs from 'node:fs/promises'
import { RewindError } from '../errors.js'
import { errText, isNotFound } from '../source/walk.js'

/**
 * Reads up to `length` bytes of `abs` at `position` into buf[0, length); resolves to the bytes
 * read (fewer where the file ends), or null when there is no such file.
 */
export async function readRange(abs: string, buf: Buffer, length: number, position: number): Promise<number | null> {
  let handle: fs.FileHandle
  try {
    handle = await fs.open(abs, 'r')
  } catch (err) {
    if (isNotFound(err)) return null
    throw new RewindError('FILE_IO', `could not open file "${abs}" for reading: ${errText(err)}`, { path: abs }, { cause: err })
  }
  try {
    let done = 0
    while (done < length) {
      const { bytesRead } = await handle.read(buf, done, length - done, position + done)
      if (bytesRead === 0) break
      done += bytesRead
    }
    return done
  } catch (err) {
    throw new RewindError('FILE_IO', `could not read file "${abs}": ${errText(err)}`, { path: abs }, { cause: err })
  } finally {
    await handle.close()
  }
}

/** readRange for a file that must hold every byte asked for (a stopped target as listed). */
export async function readExactly(abs: string, buf: Buffer, length: number, position: number): Promise<void> {
  const got = await readRange(abs, buf, length, position)
  if (got === null) throw new RewindError('FILE_IO', `could not open file "${abs}" for reading: No such file or directory`, { path: abs })
  if (got < length) throw new RewindError('FILE_IO', `unexpected EOF while reading file "${abs}"`, { path: abs })
}
