// How the target's writer copies a whole file from a data directory: compared a megabyte at a
// time and written only where it differs, cut to the source's length, and synced only if written;
// a copy readied for chunks (a server source) overwrites the file in place and is cut at close, with
// nothing of the old contents left.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, test } from 'node:test'
import { TargetDir } from '../../src/rewind/target-dir.js'

const MB = 1024 * 1024

describe('target dir: whole-file copies', () => {
  let root: string
  let target: string
  let source: string
  let dir: TargetDir

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-target-dir-'))
    target = path.join(root, 'target')
    source = path.join(root, 'source')
    fs.mkdirSync(path.join(target, 'base/5'), { recursive: true })
    fs.mkdirSync(source)
    dir = new TargetDir(target, { dirMode: 0o700, fileMode: 0o600 })
  })
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }))

  /** Bytes 0..n-1 as i * 7 + seed, so that two files differ only where the seed differs. */
  function pattern(n: number, seed = 0): Buffer {
    const buf = Buffer.alloc(n)
    for (let i = 0; i < n; i++) buf[i] = (i * 7 + seed) & 0xff
    return buf
  }

  /** Copies `from` over base/5/f; returns the bytes copied. */
  async function copy(from: Buffer): Promise<number> {
    fs.writeFileSync(path.join(source, 'f'), from)
    await dir.truncateForCopy('base/5/f')
    const copied = await dir.copyFileFrom('base/5/f', path.join(source, 'f'))
    await dir.closeAll()
    return copied
  }

  function inode(rel: string): { ino: number; mtimeMs: number } {
    const st = fs.statSync(path.join(target, rel))
    return { ino: st.ino, mtimeMs: st.mtimeMs }
  }

  test('an equal file is not written: same inode, same modification time, nothing to sync', async () => {
    const data = pattern(3 * MB + 100)
    fs.writeFileSync(path.join(target, 'base/5/f'), data)
    fs.utimesSync(path.join(target, 'base/5/f'), 1000, 1000)
    const before = inode('base/5/f')
    const touched = (dir as unknown as { touched: Set<string> }).touched
    fs.writeFileSync(path.join(source, 'f'), data)
    await dir.truncateForCopy('base/5/f')
    assert.equal(await dir.copyFileFrom('base/5/f', path.join(source, 'f')), data.length)
    await dir.closeAll()
    assert.deepEqual(inode('base/5/f'), before)
    assert.equal(touched.has('base/5/f'), false, 'an unwritten file is not synced')
    assert.deepEqual(fs.readFileSync(path.join(target, 'base/5/f')), data)
  })

  test('a file that differs in one megabyte gets the source contents and is synced', async () => {
    const ours = pattern(3 * MB)
    const theirs = Buffer.from(ours)
    theirs[MB + 5] = (theirs[MB + 5]! + 1) & 0xff
    fs.writeFileSync(path.join(target, 'base/5/f'), ours)
    const touched = (dir as unknown as { touched: Set<string> }).touched
    fs.writeFileSync(path.join(source, 'f'), theirs)
    await dir.truncateForCopy('base/5/f')
    await dir.copyFileFrom('base/5/f', path.join(source, 'f'))
    await dir.closeAll()
    assert.equal(touched.has('base/5/f'), true)
    assert.deepEqual(fs.readFileSync(path.join(target, 'base/5/f')), theirs)
  })

  test('a longer target file is cut to the source length; a shorter one grows; a new one is made', async () => {
    fs.writeFileSync(path.join(target, 'base/5/f'), pattern(2 * MB + 10))
    assert.equal(await copy(pattern(MB - 3)), MB - 3)
    assert.deepEqual(fs.readFileSync(path.join(target, 'base/5/f')), pattern(MB - 3))
    const longer = pattern(2 * MB, 1)
    await copy(longer)
    assert.deepEqual(fs.readFileSync(path.join(target, 'base/5/f')), longer)
    fs.rmSync(path.join(target, 'base/5/f'))
    await copy(pattern(10, 2))
    assert.deepEqual(fs.readFileSync(path.join(target, 'base/5/f')), pattern(10, 2))
    assert.equal(fs.statSync(path.join(target, 'base/5/f')).mode & 0o777, 0o600)
  })

  test('readied for chunks: written in place, cut at close to where the chunks end; emptied or made when none comes', async () => {
    const old = pattern(3 * MB, 9)
    fs.writeFileSync(path.join(target, 'base/5/a'), old)
    fs.writeFileSync(path.join(target, 'base/5/b'), pattern(5000))
    const before = inode('base/5/a')
    await dir.truncateForCopy('base/5/a')
    await dir.truncateForCopy('base/5/b')
    await dir.truncateForCopy('base/5/new')
    // Chunks in any order (several connections), the last one short: the source file is shorter.
    const theirs = pattern(MB + 700, 4)
    await dir.writeAt('base/5/a', MB, theirs.subarray(MB))
    assert.equal(fs.statSync(path.join(target, 'base/5/a')).size, old.length, 'nothing is cut before the group ends')
    await dir.writeAt('base/5/a', 0, theirs.subarray(0, MB))
    await dir.writeAt('base/5/a', 2 * MB, Buffer.alloc(0)) // past the source's end: no data
    await dir.closeAll()
    assert.deepEqual(fs.readFileSync(path.join(target, 'base/5/a')), theirs)
    assert.equal(inode('base/5/a').ino, before.ino, 'overwritten in place, not made again')
    assert.equal(fs.statSync(path.join(target, 'base/5/b')).size, 0)
    assert.equal(fs.statSync(path.join(target, 'base/5/new')).size, 0)
    const touched = dir.takeTouched()
    for (const rel of ['base/5/a', 'base/5/b', 'base/5/new']) assert.ok(touched.includes(rel), `${rel} is synced`)
  })

  test('readied for chunks: what no chunk covered below the end is zeroed, not left as it was', async () => {
    // A file the source shrank and grew again between two chunks: the first came short.
    fs.writeFileSync(path.join(target, 'base/5/a'), pattern(3 * MB, 9))
    await dir.truncateForCopy('base/5/a')
    await dir.writeAt('base/5/a', 0, pattern(100, 1))
    await dir.writeAt('base/5/a', MB, pattern(MB, 2))
    await dir.writeAt('base/5/a', 2 * MB, pattern(10, 3))
    await dir.closeAll()
    const got = fs.readFileSync(path.join(target, 'base/5/a'))
    assert.equal(got.length, 2 * MB + 10)
    assert.ok(got.subarray(0, 100).equals(pattern(100, 1)))
    assert.ok(got.subarray(100, MB).equals(Buffer.alloc(MB - 100)), 'the hole is zeros')
    assert.ok(got.subarray(MB, 2 * MB).equals(pattern(MB, 2)))
    assert.ok(got.subarray(2 * MB).equals(pattern(10, 3)))
  })

  test('a path through a symlink that PostgreSQL does not place is refused before the write', async () => {
    fs.mkdirSync(path.join(root, 'elsewhere'))
    fs.symlinkSync(path.join(root, 'elsewhere'), path.join(target, 'base/6'))
    fs.writeFileSync(path.join(source, 'f'), pattern(10))
    await assert.rejects(dir.copyFileFrom('base/6/f', path.join(source, 'f')), /unsafe/)
    assert.deepEqual(fs.readdirSync(path.join(root, 'elsewhere')), [])
  })

  test('a recycled WAL segment is renamed with its contents; its directory is synced with the group; a rerun is nothing', async () => {
    fs.mkdirSync(path.join(target, 'pg_wal'))
    fs.writeFileSync(path.join(target, 'pg_wal/000000010000000000000003'), pattern(8192, 3))
    dir.takeTouched()
    await dir.recycle('pg_wal/000000010000000000000003', 'pg_wal/000000020000000000000009')
    assert.deepEqual(fs.readdirSync(path.join(target, 'pg_wal')), ['000000020000000000000009'])
    assert.ok(fs.readFileSync(path.join(target, 'pg_wal/000000020000000000000009')).equals(pattern(8192, 3)))
    assert.deepEqual(dir.takeTouched(), ['pg_wal'])
    await dir.recycle('pg_wal/000000010000000000000003', 'pg_wal/000000020000000000000009')
    assert.deepEqual(fs.readdirSync(path.join(target, 'pg_wal')), ['000000020000000000000009'])
    await assert.rejects(dir.recycle('pg_wal/x', '../outside'), /unsafe|invalid|path/)
  })
})
