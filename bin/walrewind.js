#!/bin/sh
':' //; exec node --max-semi-space-size=1 "$0" "$@"
// walrewind's executable, also installed as pg_rewind (a symlink or a copy of this file named
// pg_rewind: the name it is invoked by gives the personality). The only place that exits the
// process: everything else returns a status (see src/cli/main.ts).
//
// Run by its path, it is first a shell script (the line above: a no-op and a comment to
// JavaScript) that starts node with V8's young generation capped at 1 MB a semi-space, instead of
// the 16 MB it grows to under the garbage of decoding WAL and of the wire protocol: the peak RSS
// of a rewind from a running server went from 152 to 104 MB (bench/README.md), at no cost in time.
// `env -S` could say this in the first line, but BusyBox's env has no -S. `node bin/walrewind.js`
// runs the same program without the cap.
//
// A copy of this file placed anywhere must work, so it is written for that: only import()
// expressions, which an ES module and a CommonJS script both accept (a copy outside the package
// has no "type": "module" above it and is loaded as CommonJS), and walrewind's modules are looked
// for, in this order, in
//   1. the package this file really lives in (its path with symlinks resolved: any symlink works),
//   2. $WALREWIND_HOME (the directory of walrewind's package.json),
//   3. walrewind installed globally by this node's npm (<prefix>/lib/node_modules/walrewind).
// Invoked as pg_rewind, every failure exits 1 as pg_rewind's do, an internal error too.

const invoked = process.argv[1] ?? 'walrewind'
const baseName = invoked.slice(invoked.lastIndexOf('/') + 1).replace(/\.(c|m)?js$/, '')
const programName = baseName === 'pg_rewind' ? 'pg_rewind' : 'walrewind'
const internalStatus = programName === 'pg_rewind' ? 1 : 70
const MAIN = ['dist', 'src', 'cli', 'main.js']

Promise.all([import('node:fs'), import('node:path'), import('node:url')])
  .then(async ([{ default: fs }, { default: path }, { pathToFileURL }]) => {
    const dirs = []
    try {
      dirs.push(path.dirname(path.dirname(fs.realpathSync(invoked))))
    } catch {
      // not a file we can resolve (e.g. run through a pipe): only the other places
    }
    if (process.env.WALREWIND_HOME) dirs.push(path.resolve(process.env.WALREWIND_HOME))
    dirs.push(path.join(path.dirname(path.dirname(process.execPath)), 'lib', 'node_modules', 'walrewind'))
    const found = dirs.map((dir) => path.join(dir, ...MAIN)).find((file) => fs.existsSync(file))
    if (found === undefined) {
      process.stderr.write(
        `${programName}: error: cannot find walrewind's modules (${MAIN.join('/')}) for "${invoked}"\n` +
          `${programName}: detail: Looked in: ${dirs.join(', ')}.\n` +
          `${programName}: hint: Symlink this program to bin/walrewind.js of an installed walrewind instead of copying it, ` +
          'or set WALREWIND_HOME to the directory of that installation.\n',
      )
      process.exitCode = internalStatus
      return
    }
    const { main } = await import(pathToFileURL(found).href)
    process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }, invoked)
  })
  .catch((err) => {
    process.stderr.write(`${programName}: error: internal error: ${err?.stack ?? err}\n`)
    process.exitCode = internalStatus
  })
