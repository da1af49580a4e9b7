// Version profiles: lookups by every identifying number, and the numbers themselves checked
// against the fixtures' real pg_control files, WAL pages and server-written labels.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RewindError } from '../../src/errors.js'
import {
  PG13,
  PG15,
  PG18,
  profileForMajor,
  profileFromCatalogVersion,
  profileFromPgVersionFile,
  profileFromWalMagic,
  SUPPORTED_MAJORS,
} from '../../src/pg/versions.js'
import { fixtureMajors, loadFixture } from '../fixtures/load.js'

const incompatible = (text: string) => (err: unknown) =>
  err instanceof RewindError && err.code === 'INCOMPATIBLE_VERSION' && err.message.includes(text)

describe('version profiles', () => {
  it('cover 13 to 18, frozen', () => {
    assert.deepEqual([...SUPPORTED_MAJORS], [13, 14, 15, 16, 17, 18])
    for (const major of SUPPORTED_MAJORS) {
      const p = profileForMajor(major)
      assert.equal(p.major, major)
      assert.ok(Object.isFrozen(p) && Object.isFrozen(p.codes) && Object.isFrozen(p.bimg) && Object.isFrozen(p.control))
      assert.equal(p.tablespaceVersionDirectory, `PG_${major}_${p.catalogVersion}`)
      assert.equal(profileFromCatalogVersion(p.catalogVersion), p)
      assert.equal(profileFromWalMagic(p.walPageMagic), p)
      assert.equal(profileFromPgVersionFile(`${major}\n`), p)
    }
  })

  it('name the unknown value when they refuse', () => {
    assert.throws(() => profileForMajor(12), incompatible('12'))
    assert.throws(() => profileFromPgVersionFile('19\n'), incompatible('19'))
    assert.throws(() => profileFromPgVersionFile('9.6\n'), incompatible('9.6'))
    assert.throws(() => profileFromCatalogVersion(201909212), incompatible('201909212'))
    assert.throws(() => profileFromWalMagic(0xd101), incompatible('0xD101'))
    assert.throws(() => profileFromWalMagic(0xd120), incompatible('0xD120'))
  })

  it('keep the differences that moved between majors', () => {
    assert.equal(PG13.bimg.APPLY, 0x04)
    assert.equal(PG15.bimg.APPLY, 0x02)
    assert.equal(PG13.codes.XLOG_DBASE_DROP, 0x10)
    assert.equal(PG15.codes.XLOG_DBASE_DROP, 0x20)
    assert.equal(PG15.codes.XLOG_DBASE_CREATE_WAL_LOG, 0x10)
    assert.equal(profileForMajor(16).codes.XLOG_CHECKPOINT_REDO, null)
    assert.equal(profileForMajor(17).codes.XLOG_CHECKPOINT_REDO, 0xe0)
    assert.equal(PG13.hasToplevelXidBlock, false)
    assert.equal(profileForMajor(14).hasToplevelXidBlock, true)
    assert.deepEqual(
      SUPPORTED_MAJORS.map((m) => profileForMajor(m).droppedStatsItemSize),
      [0, 0, 12, 12, 12, 16],
    )
    assert.deepEqual(
      SUPPORTED_MAJORS.map((m) => profileForMajor(m).control.crcOffset),
      [288, 288, 288, 288, 288, 292],
    )
    assert.deepEqual(
      SUPPORTED_MAJORS.map((m) => profileForMajor(m).pgControlVersion),
      [1300, 1300, 1300, 1300, 1700, 1800],
    )
    assert.equal(PG18.control.defaultCharSignednessOffset, 256)
  })

  for (const major of fixtureMajors()) {
    it(`match the real PostgreSQL ${major} files`, () => {
      const f = loadFixture(major)
      const p = profileForMajor(major)
      const control = f.file('pg_control')
      assert.equal(control.readUInt32LE(8), p.pgControlVersion)
      assert.equal(control.readUInt32LE(12), p.catalogVersion)
      assert.equal(f.json.control.system['catalog_version_no'], p.catalogVersion)
      for (const seg of f.segments.values()) assert.equal(seg.readUInt16LE(0), p.walPageMagic)
      assert.match(f.json.version, new RegExp(`^PostgreSQL ${major}\\.`))
      assert.match(f.text('backup_label'), new RegExp(`^BACKUP FROM: ${p.backupFromPrimary}$`, 'm'))
    })
  }
})
