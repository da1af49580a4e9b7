// `walrewind controldata` and `walrewind waldump` run in-process on the fixtures: the text of
// pg_controldata (13–16) and pg_waldump -b (15) line for line, the JSON forms, the options and the
// errors with their exit statuses.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { main } from '../../src/cli/main.js'
import { segmentFileName } from '../../src/pg/lsn.js'
import { controlJsonAsSql, sqlControlView } from '../fixtures/control-sql.js'
import { fixtureMajors, loadFixture } from '../fixtures/load.js'

process.env['TZ'] = 'UTC'

async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough()
  const err = new PassThrough()
  const chunks: [Buffer[], Buffer[]] = [[], []]
  out.on('data', (c: Buffer) => chunks[0].push(c))
  err.on('data', (c: Buffer) => chunks[1].push(c))
  const code = await main(args, { stdout: out, stderr: err, env }, 'walrewind')
  return { code, stdout: Buffer.concat(chunks[0]).toString(), stderr: Buffer.concat(chunks[1]).toString() }
}

const dirs = new Map<number, string>()
before(() => {
  for (const major of fixtureMajors()) {
    const f = loadFixture(major)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `wr-cli-${major}-`))
    fs.mkdirSync(path.join(dir, 'global'))
    fs.mkdirSync(path.join(dir, 'pg_wal'))
    fs.writeFileSync(path.join(dir, 'global', 'pg_control'), f.file('pg_control'))
    for (const [segno, bytes] of f.segments) fs.writeFileSync(path.join(dir, 'pg_wal', segmentFileName(3, segno, f.json.segSize)), bytes)
    dirs.set(major, dir)
  }
})
after(() => {
  for (const dir of dirs.values()) fs.rmSync(dir, { recursive: true, force: true })
})

describe('walrewind controldata', () => {
  for (const major of fixtureMajors()) {
    it(`PostgreSQL ${major}: text and JSON`, async () => {
      const f = loadFixture(major)
      const text = await run(['controldata', dirs.get(major)!])
      assert.equal(text.code, 0)
      assert.match(text.stdout, /^pg_control version number: {12}\d+\nCatalog version number: {15}\d+\n/)
      if (f.json.control.controldata !== null) assert.equal(text.stdout, f.text(f.json.control.controldata))
      assert.equal(text.stdout.includes('Default char data signedness:         signed\n'), major >= 18)
      const json = await run(['controldata', '--json', dirs.get(major)!])
      assert.equal(json.code, 0)
      const doc = JSON.parse(json.stdout) as Record<string, unknown>
      assert.equal(doc['major'], major)
      assert.deepEqual(controlJsonAsSql(doc), sqlControlView(f.json.control))
      const fromEnv = await run(['controldata'], { PGDATA: dirs.get(major)! })
      assert.equal(fromEnv.stdout, text.stdout)
    })
  }

  it('fails with the right codes', async () => {
    const none = await run(['controldata'])
    assert.equal(none.code, 2)
    assert.match(none.stderr, /^walrewind: error: controldata: no data directory specified\n/)
    const missing = await run(['controldata', '/nonexistent/dir'])
    assert.equal(missing.code, 6)
    assert.match(missing.stderr, /could not open file "\/nonexistent\/dir\/global\/pg_control" for reading/)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wr-cli-bad-'))
    fs.mkdirSync(path.join(dir, 'global'))
    const bad = Buffer.from(loadFixture(fixtureMajors()[0]!).file('pg_control'))
    bad[100]! ^= 1
    fs.writeFileSync(path.join(dir, 'global', 'pg_control'), bad)
    const crc = await run(['controldata', dir])
    assert.equal(crc.code, 3)
    assert.equal(crc.stderr, 'walrewind: error: unexpected control file CRC\n')
    fs.rmSync(dir, { recursive: true })
    assert.equal((await run(['controldata', '--help'])).code, 0)
    assert.equal((await run(['controldata', '--bogus'])).code, 2)
  })
})

describe('walrewind waldump', () => {
  for (const major of fixtureMajors()) {
    const f = loadFixture(major)
    it(`PostgreSQL ${major}: lists every record, as text and as JSON lines`, async () => {
      const wal = path.join(dirs.get(major)!, 'pg_wal')
      const first = path.join(wal, segmentFileName(3, BigInt(f.json.wal.firstSegno), f.json.segSize))
      const text = await run(['waldump', first])
      assert.equal(text.code, 0)
      const lines = text.stdout.trimEnd().split('\n')
      assert.match(
        lines[0]!,
        /^rmgr: XLOG {8}len \(rec\/tot\): {4}114\/ {3}114, tx: {10}0, lsn: 0\/00[0-9A-F]{6}, prev 0\/[0-9A-F]{8}, desc: CHECKPOINT_SHUTDOWN$/,
      )
      assert.match(
        text.stderr,
        /^walrewind: end of WAL at 0\/[0-9A-F]+: invalid record length at 0\/[0-9A-F]+: expected at least 24, got 0\n$/,
      )
      const json = await run(['waldump', '--json', '-p', wal, '-t', '3', '-s', f.json.wal.anchors.switchpoint])
      const docs = json.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
      assert.equal(docs[0]!['lsn'], f.json.wal.anchors.switchpoint)
      assert.equal(docs[0]!['recordType'], 'END_OF_RECOVERY')
      assert.deepEqual(docs.at(-1), {
        type: 'end',
        lsn: docs.at(-2)!['endLsn'],
        reason: 'zero-length',
        message: `invalid record length at ${docs.at(-2)!['endLsn']}: expected at least 24, got 0`,
      })
      assert.equal(
        docs.length - 1,
        lines.length - lines.findIndex((l) => l.includes(`lsn: 0/00${f.json.wal.anchors.switchpoint.slice(2)}`)),
      )
      const limited = await run(['waldump', '--json', '--limit=3', '-p', wal, '-t', '3', '-s', f.json.wal.anchors.switchpoint])
      assert.equal(limited.stdout.trimEnd().split('\n').length, 3)
      assert.equal(limited.stderr, '')
      const end = await run(['waldump', '--json', '-p', wal, '-t', '3', '-s', String(docs[0]!['lsn']), '-e', String(docs[10]!['endLsn'])])
      assert.equal(end.stdout.trimEnd().split('\n').length, 11)
    })

    if (f.json.wal.waldump !== null) {
      it(`PostgreSQL ${major}: -b prints what pg_waldump -b printed, line for line`, async () => {
        const wal = path.join(dirs.get(major)!, 'pg_wal')
        const ours = await run(['waldump', '-b', '-p', wal, '-t', '3', '-s', f.json.wal.anchors.switchpoint])
        const theirs = f
          .text(f.json.wal.waldump!)
          .split('\n')
          .filter((l) => !l.startsWith('#'))
        assert.deepEqual(ours.stdout.split('\n'), theirs)
      })
    }
  }

  it('fails with the right codes', async () => {
    const wal = path.join(dirs.get(fixtureMajors()[0]!)!, 'pg_wal')
    const noStart = await run(['waldump', '-p', wal])
    assert.equal(noStart.code, 2)
    assert.match(noStart.stderr, /no start WAL location given/)
    assert.equal((await run(['waldump', '-s', 'junk', '-p', wal])).code, 2)
    assert.equal((await run(['waldump', '-t', 'x', '-s', '0/1', '-p', wal])).code, 2)
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'wr-cli-empty-'))
    const nothing = await run(['waldump', '-s', '0/1000000', '-p', empty])
    assert.equal(nothing.code, 4)
    assert.match(nothing.stderr, /could not find any WAL file/)
    fs.rmSync(empty, { recursive: true })
    const beyond = await run(['waldump', '-s', '0/1000000', '-p', wal, '-t', '3'])
    assert.equal(beyond.code, 4)
    assert.match(beyond.stderr, /could not open file ".*\/00000003[0-9A-F]{16}": No such file or directory/)
    assert.equal((await run(['waldump', '--help'])).code, 0)
  })
})
