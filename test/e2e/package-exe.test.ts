// The single executable (`npm run build:exe`) as it runs on a database host without Node.js: on a
// PATH with no node, a real rewind invoked as walrewind (over a connection, -R) and one through a
// symlink named pg_rewind (from a stopped source), each with the native WAL scan embedded in the
// executable, not the JavaScript fallback; and the pg_rewind personality's version line and errors.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Kit, majorsUnderTest } from '../kit/index.js'
import { startAsStandbyAndCompare } from './rewind-harness.js'
import { assertRewound, CHECKOUT, npmCli, onPath, packageTestMajor, rewindWith, scanLine } from './package-harness.js'

const major = packageTestMajor(majorsUnderTest())

describe('the single executable, on a PATH without node', () => {
  const kits: Kit[] = []
  let exe: string
  let pgRewind: string
  let env: Record<string, string>

  before(async () => {
    kits.push(await Kit.create('package-exe'))
  })
  after(async () => {
    for (const kit of kits) await kit.cleanup()
  })

  it('npm run build:exe writes one file and prints its path last', async (t) => {
    const started = Date.now()
    const build = spawnSync(process.execPath, [npmCli(), 'run', '--silent', 'build:exe'], {
      cwd: CHECKOUT,
      encoding: 'utf8',
      timeout: 300_000,
    })
    assert.equal(build.status, 0, `npm run build:exe failed:\n${build.stdout}\n${build.stderr}`)
    const built = build.stdout.trimEnd().split('\n').pop()!
    assert.ok(path.isAbsolute(built) && fs.existsSync(built), `the last line of npm run build:exe is not the file it wrote: ${built}`)
    t.diagnostic(
      `build:exe took ${((Date.now() - started) / 1000).toFixed(1)} s; ${built}: ${(fs.statSync(built).size / 1048576).toFixed(1)} MiB`,
    )
    // A copy of its own, in a directory the servers' OS user can read, with the pg_rewind link.
    const dir = path.join(kits[0]!.baseDir, 'exe-bin')
    fs.mkdirSync(dir, { mode: 0o755 })
    exe = path.join(dir, 'walrewind')
    fs.copyFileSync(built, exe)
    fs.chmodSync(exe, 0o755)
    pgRewind = path.join(dir, 'pg_rewind')
    fs.symlinkSync('walrewind', pgRewind)
    env = { PATH: dir }
    assert.ok(!onPath('node', env['PATH']!))
  })

  it('runs without node: --version, --help, the pg_rewind personality', async () => {
    const kit = kits[0]!
    const version = await kit.run(exe, ['--version'], { env })
    assert.equal(version.code, 0, version.stderr)
    assert.match(version.stdout, /^walrewind \d+\.\d+\.\d+ \(pg_rewind for PostgreSQL 13-18\)\n$/)
    const help = await kit.run(exe, ['--help'], { env })
    assert.equal(help.code, 0, help.stderr)
    for (const command of ['timelines', 'controldata', 'waldump', 'demo']) assert.match(help.stdout, new RegExp(`\\b${command}\\b`))
    // Through the symlink: pg_rewind's version line (walrewind's own version in the parenthesis).
    const pgVersion = await kit.run(pgRewind, ['--version'], { env })
    assert.equal(pgVersion.code, 0, pgVersion.stderr)
    assert.match(pgVersion.stdout, /^pg_rewind \(PostgreSQL\) \d+\.\d+ \(walrewind \d+\.\d+\.\d+\)\n$/)
    // Its errors, prefixed and with pg_rewind's exit status; by the bare name, found on the PATH.
    const bad = await kit.run('pg_rewind', ['--target-pgdata=/nonexistent'], { env })
    assert.equal(bad.code, 1, bad.stderr)
    assert.match(bad.stderr, /^pg_rewind: error: /m)
    assert.doesNotMatch(bad.stderr, /^walrewind/m)
    const usage = await kit.run(pgRewind, ['--bogus'], { env })
    assert.equal(usage.code, 1)
    assert.match(usage.stderr, /pg_rewind: hint: Try "pg_rewind --help" for more information\./)
  })

  it(`rewinds for real as walrewind, over a connection (PostgreSQL ${major})`, async () => {
    const { run, target, source } = await rewindWith(kits[0]!, major, exe, 'remote', env)
    assertRewound(run, exe)
    assert.match(scanLine(run.stderr), /checked by: native window scan, .*\(embedded in the executable\)/)
    await startAsStandbyAndCompare(target, source, 'remote')
  })

  it(`rewinds for real as pg_rewind, from a stopped source (PostgreSQL ${major})`, async () => {
    const kit = await Kit.create('package-exe-pg-rewind')
    kits.push(kit)
    const { run, target, source } = await rewindWith(kit, major, pgRewind, 'local', env)
    assertRewound(run, pgRewind)
    assert.match(scanLine(run.stderr), /checked by: native window scan, .*\(embedded in the executable\)/)
    assert.match(run.stderr, /^pg_rewind: /m)
    assert.doesNotMatch(run.stderr, /^walrewind: /m)
    await startAsStandbyAndCompare(target, source, 'local')
  })
})
