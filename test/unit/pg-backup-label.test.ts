// backup_label: pg_rewind's exact text (the label a real PG 15 pg_rewind wrote, formats.md §6) and
// the labels servers of every major wrote for a low-level backup.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RewindError } from '../../src/errors.js'
import { formatRewindBackupLabel, parseBackupLabel } from '../../src/pg/backup-label.js'
import { parseLsn, segmentFileName, segmentOf } from '../../src/pg/lsn.js'
import { profileForMajor } from '../../src/pg/versions.js'
import { fixtureMajors, loadFixture } from '../fixtures/load.js'

process.env['TZ'] = 'UTC'

describe('formatRewindBackupLabel', () => {
  it('writes what pg_rewind wrote', () => {
    const text = formatRewindBackupLabel({
      redo: parseLsn('0/6000028'),
      redoTli: 1,
      checkpoint: parseLsn('0/6000060'),
      segSize: 16 * 1024 * 1024,
      startTime: new Date(Date.UTC(2026, 10, 23, 18, 1, 38)),
    })
    assert.equal(
      text,
      'START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\n' +
        'CHECKPOINT LOCATION: 0/6000060\n' +
        'BACKUP METHOD: pg_rewind\n' +
        'BACKUP FROM: standby\n' +
        'START TIME: 2026-11-23 18:01:38 UTC\n',
    )
  })

  it('names the file by the checkpoint timeline and segment size, and reads back', () => {
    const text = formatRewindBackupLabel({
      redo: parseLsn('1/2345678'),
      redoTli: 3,
      checkpoint: parseLsn('1/23456B0'),
      segSize: 1024 * 1024,
      startTime: new Date(Date.UTC(2025, 0, 2, 3, 4, 5)),
      timeZoneName: 'CET',
    })
    assert.match(text, /^START WAL LOCATION: 1\/2345678 \(file 000000030000000100000023\)\n/)
    assert.match(text, /START TIME: 2025-01-02 03:04:05 CET\n$/)
    const label = parseBackupLabel(text)
    assert.equal(label.startWalLocation, parseLsn('1/2345678'))
    assert.equal(label.checkpointLocation, parseLsn('1/23456B0'))
    assert.equal(label.startWalFileTli, 3)
    assert.equal(label.backupMethod, 'pg_rewind')
    assert.equal(label.backupFrom, 'standby')
    assert.equal(label.label, undefined)
  })
})

describe('parseBackupLabel', () => {
  for (const major of fixtureMajors()) {
    it(`reads PostgreSQL ${major}'s own label`, () => {
      const f = loadFixture(major)
      const label = parseBackupLabel(f.text('backup_label'))
      assert.equal(
        label.startWalFile,
        segmentFileName(label.startWalFileTli, segmentOf(label.startWalLocation, f.json.segSize), f.json.segSize),
      )
      assert.equal(label.startWalFileTli, 2)
      assert.ok(label.checkpointLocation >= label.startWalLocation)
      assert.equal(label.backupMethod, 'streamed')
      assert.equal(label.backupFrom, profileForMajor(major).backupFromPrimary)
      assert.equal(label.label, 'walrewind fixture')
      assert.equal(label.startTimeline, 2)
      assert.match(label.startTime ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+$/)
    })
  }

  it('refuses labels recovery would refuse', () => {
    const bad = (text: string) =>
      assert.throws(
        () => parseBackupLabel(text),
        (err: unknown) => err instanceof RewindError && err.code === 'TARGET_DIR',
      )
    bad('')
    bad('START WAL LOCATION: 0/6000028\nCHECKPOINT LOCATION: 0/6000060\n')
    bad('START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\n')
    bad('CHECKPOINT LOCATION: 0/6000060\nSTART WAL LOCATION: 0/6000028 (file 000000010000000000000006)\n')
    bad('START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\nCHECKPOINT LOCATION: zz\n')
  })
})
