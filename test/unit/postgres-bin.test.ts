// Where walrewind finds the target's `postgres`: next to the program as invoked (a symlink's
// directory), then next to the program with its symlinks resolved (pg_rewind's find_other_exec),
// then --postgres-bindir, $PG_BINDIR and the PATH. Fake postgres scripts that only answer -V.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { isRewindError } from '../../src/errors.js'
import { findPostgres, postgresCandidates } from '../../src/rewind/postgres-bin.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-postgres-bin-'))
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

let n = 0
/** A directory holding a fake postgres of `version` (or none), and a program file or link in it. */
function binDir(version: string | null): string {
  const dir = path.join(tmp, `bin${n++}`)
  fs.mkdirSync(dir)
  if (version !== null) {
    fs.writeFileSync(path.join(dir, 'postgres'), `#!/bin/sh\necho "postgres (PostgreSQL) ${version}"\n`, { mode: 0o755 })
  }
  return dir
}

const NO_POSTGRES_PATH = '/usr/bin:/bin'

describe('postgres next to the program, as pg_rewind looks for it', () => {
  it('looks next to the invoked path, then next to its real path, then the options, without repeating a directory', () => {
    const real = binDir(null)
    fs.writeFileSync(path.join(real, 'walrewind.js'), '')
    const links = binDir(null)
    fs.symlinkSync(path.join(real, 'walrewind.js'), path.join(links, 'pg_rewind'))
    const order = postgresCandidates(
      { programPath: path.join(links, 'pg_rewind'), bindir: '/opt/pg/bin' },
      { PG_BINDIR: '/opt/pg/bin', PATH: `/usr/bin:${real}:/bin` },
    )
    assert.deepEqual(
      order.map((c) => `${c.via}: ${c.dir}`),
      [
        `the directory of the program: ${links}`,
        `the directory of the program with symlinks resolved: ${real}`,
        '--postgres-bindir: /opt/pg/bin',
        'PATH: /usr/bin',
        'PATH: /bin',
      ],
    )
    // a bare name is the one on the PATH (find_my_exec), its directory first, then its real one
    fs.chmodSync(path.join(real, 'walrewind.js'), 0o755)
    assert.deepEqual(
      postgresCandidates({ programPath: 'pg_rewind' }, { PATH: `/bin:${links}` }).map((c) => c.dir),
      [links, real, '/bin'],
    )
    assert.deepEqual(
      postgresCandidates({ programPath: 'pg_rewind' }, { PATH: '/bin' }).map((c) => c.dir),
      ['/bin'],
    )
  })

  it('finds postgres in the directory of a symlink named pg_rewind, with a PATH that has none', async () => {
    const dir = binDir('15.18 (Debian 15.18-0+deb12u1)')
    fs.symlinkSync('/nonexistent/walrewind.js', path.join(dir, 'pg_rewind'))
    const found = await findPostgres(15, { programPath: path.join(dir, 'pg_rewind') }, { PATH: NO_POSTGRES_PATH })
    assert.deepEqual(found, { path: path.join(dir, 'postgres'), version: '15.18', foundVia: 'the directory of the program' })
  })

  it('finds postgres next to the program with its symlinks resolved (/usr/bin/pg_rewind -> /usr/lib/postgresql/N/bin/pg_rewind)', async () => {
    const real = binDir('16.4')
    fs.writeFileSync(path.join(real, 'pg_rewind'), '')
    const links = binDir(null)
    fs.symlinkSync(path.join(real, 'pg_rewind'), path.join(links, 'pg_rewind'))
    const found = await findPostgres(16, { programPath: path.join(links, 'pg_rewind') }, { PATH: NO_POSTGRES_PATH })
    assert.equal(found.path, path.join(real, 'postgres'))
    assert.equal(found.foundVia, 'the directory of the program with symlinks resolved')
  })

  it('passes over another major next to the program (walrewind serves them all) for --postgres-bindir or $PG_BINDIR', async () => {
    const beside = binDir('15.18')
    const other = binDir('17.2')
    const program = path.join(beside, 'pg_rewind')
    assert.equal(
      (await findPostgres(17, { programPath: program, bindir: other }, { PATH: NO_POSTGRES_PATH })).foundVia,
      '--postgres-bindir',
    )
    assert.equal((await findPostgres(17, { programPath: program }, { PG_BINDIR: other, PATH: NO_POSTGRES_PATH })).foundVia, 'PG_BINDIR')
    assert.equal(
      (await findPostgres(15, { programPath: program, bindir: other }, { PATH: NO_POSTGRES_PATH })).foundVia,
      'the directory of the program',
    )
  })

  it('refuses another major in a directory it was told, and says where it looked when there is none', async () => {
    const other = binDir('14.9')
    await assert.rejects(findPostgres(15, { bindir: other }, { PATH: NO_POSTGRES_PATH }), (err: unknown) => {
      assert.ok(isRewindError(err) && err.code === 'POSTGRES_NOT_FOUND')
      assert.match(err.message, /found in --postgres-bindir .* is version 14, but the target cluster is PostgreSQL 15/)
      return true
    })
    const empty = binDir(null)
    const beside = binDir('13.1')
    await assert.rejects(
      findPostgres(15, { programPath: path.join(empty, 'pg_rewind'), programName: 'pg_rewind' }, { PATH: `${NO_POSTGRES_PATH}:${beside}` }),
      (err: unknown) => {
        assert.ok(isRewindError(err) && err.code === 'POSTGRES_NOT_FOUND')
        assert.equal(
          err.message,
          `program "postgres" of PostgreSQL 15 is needed by pg_rewind but was not found in the same directory as "${path.join(empty, 'pg_rewind')}", in --postgres-bindir, $PG_BINDIR or the PATH`,
        )
        assert.match(err.info.hint ?? '', new RegExp(`Tried: ${path.join(beside, 'postgres')} \\(13\\.1\\)`))
        return true
      },
    )
  })
})
