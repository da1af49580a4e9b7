// The path and symlink policy (src/source/path-policy.ts), the boundary against a hostile source:
// every rule with the names an attacker would try, then the three users of it (the walk of a
// directory, the writer of the target, preflight) on real directories.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import { RewindError } from '../../src/errors.js'
import { storageDirOf } from '../../src/rewind/preflight.js'
import { TargetDir } from '../../src/rewind/target-dir.js'
import {
  blockingAncestor,
  checkRelativePath,
  checkSourceSymlinks,
  followedLinkOf,
  isFollowedSymlink,
  isSafeLinkTarget,
  isSafeRelativePath,
  isTablespaceLink,
} from '../../src/source/path-policy.js'
import type { FileEntry } from '../../src/source/source.js'
import { listDataDirectory } from '../../src/source/walk.js'

const file = (p: string, size = 1): FileEntry => ({ path: p, type: 'file', size })
const dir = (p: string): FileEntry => ({ path: p, type: 'directory', size: 0 })
const link = (p: string, linkTarget?: string): FileEntry =>
  linkTarget === undefined ? { path: p, type: 'symlink', size: 0 } : { path: p, type: 'symlink', size: 0, linkTarget }
const listing = (...entries: FileEntry[]) => new Map(entries.map((e) => [e.path, e]))
const unsafe = (pattern: RegExp) => (err: unknown) =>
  err instanceof RewindError && err.code === 'SOURCE_UNSAFE_PATH' && pattern.test(err.message)

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-path-policy-'))
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe('relative paths', () => {
  const safe = [
    'PG_VERSION',
    'base/5/16384',
    'base/5/16384.1',
    'pg_tblspc/16400/PG_15_202209061/5/16384',
    'pg_wal/000000010000000000000003',
    '.hidden',
    'a..b',
    'x.',
    '...',
    'pg_tblspc/abc',
  ]
  const hostile: Array<[string, string]> = [
    ['empty', ''],
    ['absolute', '/etc/passwd'],
    ['the root', '/'],
    ['..', '..'],
    ['.. first', '../../../owned'],
    ['.. inside', 'base/../../etc/passwd'],
    ['.. last', 'base/..'],
    ['.. below pg_tblspc', 'pg_tblspc/../x'],
    ['.. as a tablespace', 'pg_tblspc/..'],
    ['.', '.'],
    ['. first', './global/pg_control'],
    ['. last', 'base/.'],
    ['an empty component', 'base//x'],
    ['a trailing slash', 'base/'],
    ['a NUL byte', 'base/x\0y'],
    ['a NUL byte after a good name', 'PG_VERSION\0/../../x'],
    ['backslashes as separators', 'base\\..\\..\\x'],
    ['a backslash in a name', 'a\\b'],
  ]

  test('names a data directory holds are accepted, unchanged', () => {
    for (const rel of safe) {
      assert.equal(isSafeRelativePath(rel), true, rel)
      assert.equal(checkRelativePath(rel), rel)
    }
  })

  for (const [what, rel] of hostile) {
    test(`refused: ${what}`, () => {
      assert.equal(isSafeRelativePath(rel), false)
      assert.throws(
        () => checkRelativePath(rel),
        (err: unknown) =>
          err instanceof RewindError && err.code === 'SOURCE_UNSAFE_PATH' && err.message === `target file path is unsafe: "${rel}"`,
      )
    })
  }

  test('the message names what the path is for', () => {
    assert.throws(() => checkRelativePath('../x', 'directory'), unsafe(/^target directory path is unsafe: "\.\.\/x"$/))
    assert.throws(() => checkRelativePath('/x', 'symlink'), unsafe(/^target symlink path is unsafe/))
  })
})

describe('which symlinks PostgreSQL makes', () => {
  test('a tablespace link is pg_tblspc/<oid>: digits only, directly in pg_tblspc', () => {
    for (const rel of ['pg_tblspc/16400', 'pg_tblspc/1', 'pg_tblspc/4294967295']) assert.equal(isTablespaceLink(rel), true, rel)
    for (const rel of [
      'pg_tblspc',
      'pg_tblspc/',
      'pg_tblspc/abc',
      'pg_tblspc/16400a',
      'pg_tblspc/-1',
      'pg_tblspc/1 ',
      'pg_tblspc/16400\n',
      'pg_tblspc/\uff11\uff12',
      'pg_tblspc/..',
      'pg_tblspc/../16400',
      'pg_tblspc/16400/PG_15_202209061',
      'pg_tblspc//16400',
      'x/pg_tblspc/16400',
      '/pg_tblspc/16400',
      'pg_tblspc\\16400',
    ]) {
      assert.equal(isTablespaceLink(rel), false, JSON.stringify(rel))
    }
  })

  test('followed: pg_wal and tablespace links, nothing else', () => {
    for (const rel of ['pg_wal', 'pg_tblspc/16400']) assert.equal(isFollowedSymlink(rel), true, rel)
    for (const rel of [
      'pg_wal/x',
      'pg_xlog',
      'pg_walx',
      'base/pg_wal',
      'pg_tblspc',
      'pg_tblspc/abc',
      'pg_tblspc/16400/x',
      'log',
      'global/pg_control',
    ]) {
      assert.equal(isFollowedSymlink(rel), false, rel)
    }
  })

  test('a followed link points to an absolute location with no NUL', () => {
    for (const target of ['/srv/ts', '/', '/var/lib/postgresql/wal']) assert.equal(isSafeLinkTarget(target), true, target)
    for (const target of ['', 'ts', '../../etc', './x', '~/x', '/srv/x\0y'])
      assert.equal(isSafeLinkTarget(target), false, JSON.stringify(target))
  })

  test('the followed link a path is or lies below', () => {
    assert.equal(followedLinkOf('pg_wal'), 'pg_wal')
    assert.equal(followedLinkOf('pg_wal/000000010000000000000003'), 'pg_wal')
    assert.equal(followedLinkOf('pg_tblspc/16400'), 'pg_tblspc/16400')
    assert.equal(followedLinkOf('pg_tblspc/16400/PG_15_202209061/5/16384'), 'pg_tblspc/16400')
    for (const rel of ['pg_tblspc', 'pg_tblspc/abc', 'pg_tblspc/abc/x', 'pg_walx/y', 'base/5/16384', 'x/pg_wal/y', 'x/pg_tblspc/16400/y']) {
      assert.equal(followedLinkOf(rel), null, rel)
    }
  })
})

describe('symlinks and what lies below them in a source listing', () => {
  const good = [
    dir('base'),
    link('pg_wal', '/wal'),
    file('pg_wal/000000010000000000000003'),
    dir('pg_tblspc'),
    link('pg_tblspc/16400', '/srv/ts'),
    dir('pg_tblspc/16400/PG_15_202209061'),
    file('pg_tblspc/16400/PG_15_202209061/5'),
  ]

  test('pg_wal and tablespace links with absolute targets, and files below them, are accepted from any source', () => {
    for (const kind of ['local', 'server'] as const) checkSourceSymlinks(listing(...good), kind)
  })

  const refusedFromAny: Array<[string, FileEntry[], RegExp]> = [
    [
      'a tablespace link with a relative target',
      [link('pg_tblspc/16400', '../../etc')],
      /symbolic link "pg_tblspc\/16400" -> "\.\.\/\.\.\/etc" is unsafe/,
    ],
    ['a tablespace link with no target', [link('pg_tblspc/16400')], /symbolic link "pg_tblspc\/16400" -> "" is unsafe/],
    ['a tablespace link with a NUL in its target', [link('pg_tblspc/16400', '/srv/x\0/../etc')], /symbolic link "pg_tblspc\/16400"/],
    ['pg_wal linked relatively', [link('pg_wal', 'elsewhere')], /symbolic link "pg_wal"/],
    [
      'a file below a tablespace link it made relative',
      [link('pg_tblspc/16401', 'x'), file('pg_tblspc/16401/PG_15_202209061/x')],
      /pg_tblspc\/16401/,
    ],
    [
      'a file below a file',
      [file('global/pg_filenode.map', 512), file('global/pg_filenode.map/x')],
      /"global\/pg_filenode.map\/x" lies below "global\/pg_filenode.map", which is not a directory/,
    ],
    ['a file below a stray link', [link('evil', '/tmp'), file('evil/owned')], /"evil"/],
    ['a file below a non-numeric tablespace name', [link('pg_tblspc/abc', '/srv/ts'), file('pg_tblspc/abc/x')], /"pg_tblspc\/abc"/],
    [
      'links below links',
      [link('pg_tblspc/16400', '/srv/ts'), link('pg_tblspc/16400/evil', '/etc'), file('pg_tblspc/16400/evil/passwd')],
      /"pg_tblspc\/16400\/evil"/,
    ],
    ['a tablespace below a pg_tblspc that is a link', [link('pg_tblspc', '/elsewhere'), link('pg_tblspc/16400', '/srv/ts')], /"pg_tblspc"/],
    ['a file deep below a stray link', [link('base', '/etc'), dir('base/5'), file('base/5/16384')], /"base"/],
  ]
  // A server is refused at the stray link already; a directory source at what lies below it.
  for (const [what, entries, message] of refusedFromAny) {
    for (const kind of ['local', 'server'] as const) {
      test(`refused from a ${kind} source: ${what}`, () => {
        assert.throws(() => checkSourceSymlinks(listing(...entries), kind), unsafe(message))
      })
    }
  }

  test('the refusals name the entry: a link a server lists, or the stray link a file lies below', () => {
    assert.throws(
      () => checkSourceSymlinks(listing(link('pg_tblspc/abc', '/srv/ts'), file('pg_tblspc/abc/x')), 'local'),
      unsafe(/^source file path is unsafe: "pg_tblspc\/abc\/x" lies below "pg_tblspc\/abc", which is not a directory$/),
    )
    assert.throws(
      () => checkSourceSymlinks(listing(link('pg_tblspc/abc', '/srv/ts'), file('pg_tblspc/abc/x')), 'server'),
      (err: unknown) =>
        unsafe(/^source symbolic link "pg_tblspc\/abc" -> "\/srv\/ts" is unsafe$/)(err) &&
        /pg_tblspc\/OID/.test((err as RewindError).info.detail ?? ''),
    )
  })

  const strays: Array<[string, FileEntry]> = [
    ['a link outside pg_tblspc', link('base/5/evil', '/etc')],
    ['a link at the top', link('log', '/var/log/pg')],
    ['a non-numeric tablespace name', link('pg_tblspc/abc', '/srv/ts')],
    ['a link below a tablespace link', link('pg_tblspc/16400/PG_15_202209061', '/etc')],
    ['a link below pg_wal', link('pg_wal/archive_status', '/etc')],
    ['pg_tblspc itself a link', link('pg_tblspc', '/elsewhere')],
  ]
  for (const [what, entry] of strays) {
    test(`${what}: a stray link a directory source may hold (nothing below it), a server may not list`, () => {
      const entries = entry.path.startsWith('pg_tblspc/16400/') ? [link('pg_tblspc/16400', '/srv/ts'), entry] : [entry]
      checkSourceSymlinks(listing(...entries), 'local')
      assert.throws(() => checkSourceSymlinks(listing(...entries), 'server'), unsafe(/is unsafe/))
    })
  }

  test('the first entry on the way down that is neither a directory nor a followed link', () => {
    const l = listing(dir('base'), file('base/f'), link('pg_wal', '/wal'), link('log', 'x'), link('pg_tblspc/16400', '/ts'))
    assert.equal(blockingAncestor('base/5/16384', l), undefined)
    assert.equal(blockingAncestor('pg_wal/x', l), undefined)
    assert.equal(blockingAncestor('pg_tblspc/16400/PG_15/5/1', l), undefined)
    assert.equal(blockingAncestor('unlisted/parent/x', l), undefined)
    assert.equal(blockingAncestor('base/f/x', l)?.path, 'base/f')
    assert.equal(blockingAncestor('log/a/b', l)?.path, 'log')
    assert.equal(blockingAncestor('log', l), undefined) // the link itself is not below anything
  })
})

describe('the walk follows only the links PostgreSQL makes', () => {
  test('pg_wal and pg_tblspc/<oid> are walked into; pg_tblspc/abc and other links are recorded only', async () => {
    const root = fs.mkdtempSync(path.join(tmp, 'walk-'))
    const outside = fs.mkdtempSync(path.join(tmp, 'outside-'))
    for (const name of ['wal', 'ts', 'abc', 'log']) {
      fs.mkdirSync(path.join(outside, name))
      fs.writeFileSync(path.join(outside, name, 'f'), 'x')
    }
    const data = path.join(root, 'data')
    fs.mkdirSync(path.join(data, 'pg_tblspc'), { recursive: true })
    fs.symlinkSync(path.join(outside, 'wal'), path.join(data, 'pg_wal'))
    fs.symlinkSync(path.join(outside, 'ts'), path.join(data, 'pg_tblspc', '16400'))
    fs.symlinkSync(path.join(outside, 'abc'), path.join(data, 'pg_tblspc', 'abc'))
    fs.symlinkSync(path.join(outside, 'log'), path.join(data, 'log'))
    const entries = await listDataDirectory(data)
    assert.deepEqual(entries.map((e) => `${e.type} ${e.path}`).sort(), [
      'directory pg_tblspc',
      'file pg_tblspc/16400/f',
      'file pg_wal/f',
      'symlink log',
      'symlink pg_tblspc/16400',
      'symlink pg_tblspc/abc',
      'symlink pg_wal',
    ])
    checkSourceSymlinks(listing(...entries), 'local')
  })
})

describe('the writer of the target', () => {
  test('refuses unsafe paths and writes below a link that is not followed; writes through the followed ones', async () => {
    const root = fs.mkdtempSync(path.join(tmp, 'target-'))
    const outside = fs.mkdtempSync(path.join(tmp, 'outside-'))
    const target = new TargetDir(root, { dirMode: 0o700, fileMode: 0o600 })
    await assert.rejects(target.writeFile('../owned', 'x'), unsafe(/target file path is unsafe: "\.\.\/owned"/))
    await assert.rejects(target.createDirectory('pg_tblspc/../../owned'), unsafe(/target directory path is unsafe/))
    await assert.rejects(target.createSymlink('/abs', outside), unsafe(/target symlink path is unsafe/))
    await target.createDirectory('pg_tblspc')
    // A followed link must point to an absolute location.
    await assert.rejects(target.createSymlink('pg_tblspc/16401', '../../owned'), unsafe(/target symbolic link "pg_tblspc\/16401"/))
    // Stray links: recorded, never written through.
    await target.createSymlink('evil', outside)
    await target.createSymlink('pg_tblspc/abc', outside)
    await assert.rejects(target.writeFile('evil/owned', 'x'), unsafe(/passes through "evil"/))
    await assert.rejects(target.writeFile('pg_tblspc/abc/owned', 'x'), unsafe(/passes through "pg_tblspc\/abc"/))
    assert.deepEqual(fs.readdirSync(outside), [])
    // A tablespace link: its location is made, and files go through it.
    const location = path.join(outside, 'ts')
    await target.createSymlink('pg_tblspc/16400', location)
    await target.writeFile('pg_tblspc/16400/f', 'x')
    assert.equal(fs.readFileSync(path.join(location, 'f'), 'utf8'), 'x')
    await target.closeAll()
  })

  test('preflight counts a file against the file system of the followed link it lies below', () => {
    const created = new Map([['pg_tblspc/16400', '/srv/ts']])
    assert.equal(storageDirOf('/t', 'base/5/1', created), '/t')
    assert.equal(storageDirOf('/t', 'pg_wal/000000010000000000000003', created), '/t/pg_wal')
    assert.equal(storageDirOf('/t', 'pg_tblspc/16400/PG_15_202209061/5/1', created), '/srv/ts')
    assert.equal(storageDirOf('/t', 'pg_tblspc/16401/PG_15_202209061/5/1', created), '/t/pg_tblspc/16401')
    assert.equal(storageDirOf('/t', 'pg_tblspc/abc/x', created), '/t')
  })
})
