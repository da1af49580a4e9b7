// The executable itself: the personality from the name it is invoked by, a symlink or a copy of
// bin/walrewind.js anywhere, and the exit status of an internal error (1 as pg_rewind, as every
// pg_rewind failure; 70 as walrewind). Runs the real bin script with node.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { PassThrough, Writable } from 'node:stream'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { internalErrorStatus, main, personalityOf } from '../../src/cli/main.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const BIN = path.join(ROOT, 'bin', 'walrewind.js')
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-cli-entry-'))
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

function run(file: string, args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const { WALREWIND_HOME: _, ...base } = process.env
  const r = spawnSync(file, args, { encoding: 'utf8', env: { ...base, ...env } })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('the personality comes from the invoked name', () => {
  it('pg_rewind for a path named pg_rewind (or pg_rewind.js), walrewind otherwise', () => {
    assert.equal(personalityOf('/usr/lib/postgresql/15/bin/pg_rewind'), 'pg_rewind')
    assert.equal(personalityOf('/x/pg_rewind.js'), 'pg_rewind')
    assert.equal(personalityOf('/x/bin/walrewind.js'), 'walrewind')
    assert.equal(personalityOf('/x/pg_rewind15'), 'walrewind')
    assert.equal(internalErrorStatus('pg_rewind'), 1)
    assert.equal(internalErrorStatus('walrewind'), 70)
  })

  it('a symlink named pg_rewind anywhere runs walrewind as pg_rewind', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'link-'))
    fs.symlinkSync(BIN, path.join(dir, 'pg_rewind'))
    const r = run(path.join(dir, 'pg_rewind'), ['--version'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^pg_rewind \(PostgreSQL\) \d+\.\d+ \(walrewind /)
    const bad = run(path.join(dir, 'pg_rewind'), ['--bogus'])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /pg_rewind: hint: Try "pg_rewind --help"/)
  })

  it('a copy named pg_rewind finds the package through WALREWIND_HOME, else says how to fix it (exit 1 as pg_rewind, 70 as walrewind)', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'copy-'))
    fs.copyFileSync(BIN, path.join(dir, 'pg_rewind'))
    fs.copyFileSync(BIN, path.join(dir, 'walrewind'))
    fs.chmodSync(path.join(dir, 'pg_rewind'), 0o755)
    fs.chmodSync(path.join(dir, 'walrewind'), 0o755)
    const found = run(path.join(dir, 'pg_rewind'), ['--version'], { WALREWIND_HOME: ROOT })
    assert.equal(found.code, 0, found.stderr)
    assert.match(found.stdout, /^pg_rewind \(PostgreSQL\)/)
    const asWalrewind = run(path.join(dir, 'walrewind'), ['--version'], { WALREWIND_HOME: ROOT })
    assert.match(asWalrewind.stdout, /^walrewind /)
    // Without it (and no global install next to this node), a clear refusal
    const globalRoot = path.join(path.dirname(path.dirname(process.execPath)), 'lib', 'node_modules', 'walrewind')
    if (!fs.existsSync(globalRoot)) {
      const lost = run(path.join(dir, 'pg_rewind'), ['--version'])
      assert.equal(lost.code, 1)
      assert.match(lost.stderr, /^pg_rewind: error: cannot find walrewind's modules \(dist\/src\/cli\/main\.js\)/)
      assert.match(lost.stderr, /WALREWIND_HOME/)
      assert.equal(run(path.join(dir, 'walrewind'), ['--version']).code, 70)
    }
  })
})

describe('run by its path, the executable starts node itself', () => {
  it('as node --max-semi-space-size=1 <its path> <arguments>, arguments kept as given', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'launch-'))
    const argsFile = path.join(dir, 'node-args')
    // A stand-in node first on PATH, writing the arguments it got one per line.
    fs.writeFileSync(path.join(dir, 'node'), `#!/bin/sh\nprintf '%s\\n' "$@" > '${argsFile}'\n`, { mode: 0o755 })
    fs.symlinkSync(BIN, path.join(dir, 'pg_rewind'))
    const r = run(path.join(dir, 'pg_rewind'), ['--target-pgdata=/a b', '-n', '$HOME'], { PATH: `${dir}:${process.env['PATH'] ?? ''}` })
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(fs.readFileSync(argsFile, 'utf8').split('\n'), [
      '--max-semi-space-size=1',
      path.join(dir, 'pg_rewind'),
      '--target-pgdata=/a b',
      '-n',
      '$HOME',
      '',
    ])
  })

  it('the real node accepts the option: the program runs', () => {
    const r = run(BIN, ['--version'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^walrewind \d/)
  })
})

describe('an internal error', () => {
  /** An io whose stdout fails: the help text cannot be written, an error nobody foresaw. */
  async function failing(argv1: string): Promise<{ code: number; stderr: string }> {
    const stdout = new Writable({
      write() {
        throw new Error('stdout is gone')
      },
    })
    const stderr = new PassThrough()
    const chunks: Buffer[] = []
    stderr.on('data', (c: Buffer) => chunks.push(c))
    const code = await main(['--help'], { stdout, stderr, env: {} }, argv1)
    return { code, stderr: Buffer.concat(chunks).toString() }
  }

  it('exits 1 as pg_rewind, 70 as walrewind, with the error on stderr', async () => {
    const asPgRewind = await failing('/usr/lib/postgresql/15/bin/pg_rewind')
    assert.equal(asPgRewind.code, 1)
    assert.match(asPgRewind.stderr, /^pg_rewind: error: internal error: Error: stdout is gone/)
    const asWalrewind = await failing('/usr/local/bin/walrewind')
    assert.equal(asWalrewind.code, 70)
    assert.match(asWalrewind.stderr, /^walrewind: error: internal error: /)
  })
})
