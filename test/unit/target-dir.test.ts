// How the target's writer copies a whole file from a data directory: compared a megabyte at a
// time and written only where it differs, cut to the source's length, and synced only if written;
// a copy readied for chunks (a server source) empties the file before the first one, or at close.

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

  test('readied for chunks: emptied before the first chunk, or at close when none comes', async () => {
    fs.writeFileSync(path.join(target, 'base/5/a'), pattern(5000))
    fs.writeFileSync(path.join(target, 'base/5/b'), pattern(5000))
    await dir.truncateForCopy('base/5/a')
    await dir.truncateForCopy('base/5/b')
    await dir.truncateForCopy('base/5/new')
    // nothing is emptied before data comes (or the group ends)
    assert.equal(fs.statSync(path.join(target, 'base/5/a')).size, 5000)
    await dir.writeAt('base/5/a', 100, Buffer.from('xyz'))
    await dir.closeAll()
    const a = fs.readFileSync(path.join(target, 'base/5/a'))
    assert.equal(a.length, 103)
    assert.ok(a.subarray(0, 100).equals(Buffer.alloc(100)), 'what was there before is gone')
    assert.equal(fs.statSync(path.join(target, 'base/5/b')).size, 0)
    assert.equal(fs.statSync(path.join(target, 'base/5/new')).size, 0)
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
