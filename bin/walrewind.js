#!/usr/bin/env node
// The only place that exits the process: everything else returns a status (see src/cli/main.ts).
import { main } from '../dist/src/cli/main.js'

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env })
  .then((code) => { process.exitCode = code })
  .catch((err) => {
    process.stderr.write(`walrewind: internal error: ${err?.stack ?? err}\n`)
    process.exitCode = 70
  })
