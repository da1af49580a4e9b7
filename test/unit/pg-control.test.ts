// pg_control of every major: decoded fields against what the server's pg_control_*() functions
// returned for the same bytes, the text against Debian's pg_controldata 15 (which reads the 13–16
// layout), pg_rewind's checks in its order, and the image pg_rewind writes back.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { controlFileJson, formatControlData } from '../../src/cli/commands/controldata.js'
import { RewindError } from '../../src/errors.js'
import { crc32c } from '../../src/pg/crc32c.js'
import { dbStateName, DBState, decodeControlFile, PG_CONTROL_FILE_SIZE, updateControlFile } from '../../src/pg/control.js'
import { parseLsn } from '../../src/pg/lsn.js'
import { profileForMajor } from '../../src/pg/versions.js'
import { controlJsonAsSql, sqlControlView } from '../fixtures/control-sql.js'
import { fixtureMajors, loadFixture } from '../fixtures/load.js'

process.env['TZ'] = 'UTC'

/** A copy of `buf` with `edit` applied and the CRC made valid again for `crcOffset`. */
function recrc(buf: Buffer, crcOffset: number, edit: (b: Buffer) => void): Buffer {
  const out = Buffer.from(buf)
  edit(out)
  out.writeUInt32LE(crc32c(out.subarray(0, crcOffset)), crcOffset)
  return out
}

const code = (c: string, text?: string) => (err: unknown) =>
  err instanceof RewindError && err.code === c && (text === undefined || err.message === text)

describe('decodeControlFile on real files', () => {
  for (const major of fixtureMajors()) {
    const f = loadFixture(major)
    const bytes = f.file('pg_control')

    it(`PostgreSQL ${major}: every field equals pg_control_*()`, () => {
      const cf = decodeControlFile(bytes)
      assert.equal(cf.profile.major, major)
      assert.equal(cf.system_identifier.toString(), f.json.systemIdentifier)
      assert.deepEqual(controlJsonAsSql(controlFileJson(cf)), sqlControlView(f.json.control))
      assert.equal(cf.state, DBState.IN_PRODUCTION)
      assert.equal(cf.maxAlign, 8)
      assert.equal(cf.floatFormat, 1234567.0)
      assert.equal(cf.wal_log_hints, true)
      assert.equal(cf.data_checksum_version, 1)
      assert.equal(cf.checkPointCopy.wal_level !== undefined, major >= 17)
      assert.equal(cf.default_char_signedness, major >= 18 ? true : undefined)
    })

    if (f.json.control.controldata !== null) {
      it(`PostgreSQL ${major}: the text is pg_controldata's`, () => {
        assert.equal(formatControlData(decodeControlFile(bytes)), f.text(f.json.control.controldata!))
      })
    }

    it(`PostgreSQL ${major}: an unchanged image round-trips byte for byte; changes get a fresh CRC`, () => {
      assert.ok(updateControlFile(bytes, {}).equals(bytes))
      const changed = updateControlFile(bytes, {
        state: DBState.IN_ARCHIVE_RECOVERY,
        minRecoveryPoint: parseLsn('0/7000B18'),
        minRecoveryPointTLI: 2,
      })
      assert.equal(changed.length, PG_CONTROL_FILE_SIZE)
      const cf = decodeControlFile(changed)
      assert.equal(cf.state, DBState.IN_ARCHIVE_RECOVERY)
      assert.equal(cf.minRecoveryPoint, 0x7000b18n)
      assert.equal(cf.minRecoveryPointTLI, 2)
      const before = decodeControlFile(bytes)
      assert.deepEqual(
        { ...cf, state: 0, minRecoveryPoint: 0n, minRecoveryPointTLI: 0, crc: 0 },
        { ...before, state: 0, minRecoveryPoint: 0n, minRecoveryPointTLI: 0, crc: 0 },
      )
      // Only the three fields and the CRC differ.
      const diff = [...changed.keys()].filter((i) => changed[i] !== bytes[i])
      const crcOffset = profileForMajor(major).control.crcOffset
      assert.ok(
        diff.every((i) => (i >= 16 && i < 20) || (i >= 136 && i < 148) || (i >= crcOffset && i < crcOffset + 4)),
        `changed bytes ${diff}`,
      )
    })

    it(`PostgreSQL ${major}: pg_rewind's checks, in its order`, () => {
      const p = profileForMajor(major)
      assert.throws(
        () => decodeControlFile(bytes.subarray(0, 8191)),
        code('CONTROL_FILE_INVALID', 'unexpected control file size 8191, expected 8192'),
      )
      assert.throws(
        () => decodeControlFile(Buffer.concat([bytes, Buffer.alloc(1)])),
        code('CONTROL_FILE_INVALID', 'unexpected control file size 8193, expected 8192'),
      )
      const badSeg = recrc(bytes, p.control.crcOffset, (b) => b.writeUInt32LE(3 * 1024 * 1024, 228))
      const segMessage =
        major >= 17
          ? 'invalid WAL segment size in control file (3145728 bytes)'
          : 'WAL segment size must be a power of two between 1 MB and 1 GB, but the control file specifies 3145728 bytes'
      assert.throws(() => decodeControlFile(badSeg), code('CONTROL_FILE_INVALID', segMessage))
      // The segment size is checked before the CRC, as digestControlFile does.
      const badSegAndCrc = Buffer.from(badSeg)
      badSegAndCrc[40]! ^= 1
      assert.throws(() => decodeControlFile(badSegAndCrc), code('CONTROL_FILE_INVALID', segMessage))
      for (const at of [0, 40, 136, 252, p.control.crcOffset - 1, p.control.crcOffset]) {
        const flipped = Buffer.from(bytes)
        flipped[at]! ^= 0x10
        assert.throws(() => decodeControlFile(flipped), code('CONTROL_FILE_INVALID', 'unexpected control file CRC'), `byte ${at}`)
      }
      // Bytes after the CRC are not covered, as in PostgreSQL.
      const tail = Buffer.from(bytes)
      tail[4000] = 1
      assert.doesNotThrow(() => decodeControlFile(tail))
    })
  }
})

describe('decodeControlFile on other majors', () => {
  it('refuses an intact file of a major it does not know, naming the version', () => {
    const base = loadFixture(fixtureMajors()[0]!).file('pg_control')
    // A PostgreSQL 12 file: control version 1201, its catalog version, CRC at 288.
    const pg12 = recrc(base, 288, (b) => {
      b.writeUInt32LE(1201, 8)
      b.writeUInt32LE(201909212, 12)
    })
    assert.throws(
      () => decodeControlFile(pg12),
      (err: unknown) =>
        err instanceof RewindError &&
        err.code === 'INCOMPATIBLE_VERSION' &&
        err.message.includes('1201') &&
        err.message.includes('201909212'),
    )
    // A 1300 file whose catalog number belongs to no supported release.
    const future = recrc(base, 288, (b) => b.writeUInt32LE(202999999, 12))
    assert.throws(() => decodeControlFile(future), code('INCOMPATIBLE_VERSION'))
    // Catalog and control versions that do not belong together.
    const mixed = recrc(base, 288, (b) => b.writeUInt32LE(1700, 8))
    assert.throws(() => decodeControlFile(mixed), code('INCOMPATIBLE_VERSION'))
  })

  it('names the states as pg_controldata does', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map(dbStateName), [
      'starting up',
      'shut down',
      'shut down in recovery',
      'shutting down',
      'in crash recovery',
      'in archive recovery',
      'in production',
      'unrecognized status code',
    ])
  })
})
