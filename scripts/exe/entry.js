// The single executable's main script (bundled by scripts/build-exe.js with everything it imports
// into one CommonJS file). bin/walrewind.js does the same for a package install.
//
// In a single executable, process.argv[0] is the executable's own path and argv[1] the name it was
// run by, as typed (`pg_rewind`, `./pg_rewind`, `/usr/lib/postgresql/16/bin/pg_rewind`): that name
// gives the personality. A bare name was found on the PATH: its full path there is what
// `postgres` is looked for next to, as for any other invocation.

import fs from 'node:fs'
import path from 'node:path'
import { internalErrorStatus, main, personalityOf } from '../../src/cli/main.ts'

function invokedPath(typed) {
  if (typed.includes('/')) return typed
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue
    const file = path.join(dir, typed)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      return path.resolve(file)
    } catch {
      // not in this directory
    }
  }
  return typed
}

const invoked = invokedPath(process.argv[1] ?? process.execPath)
main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }, invoked)
  .then((code) => {
    process.exitCode = code
  })
  .catch((err) => {
    const programName = personalityOf(invoked)
    process.stderr.write(`${programName}: error: internal error: ${err?.stack ?? String(err)}\n`)
    process.exitCode = internalErrorStatus(programName)
  })
