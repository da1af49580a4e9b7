// Relation file paths and pg_rewind's isRelDataFile: main-fork segments only, and exactly what
// GetRelationPath would produce (the paths are the ones observed in formats.md §7).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ForkNumber, forkName, parseRelationDataFile, relationFilePath } from '../../src/pg/relpath.js'
import { PG15, PG18, SUPPORTED_MAJORS, profileForMajor } from '../../src/pg/versions.js'

describe('relationFilePath', () => {
  it('builds global, base and tablespace paths with fork and segment suffixes', () => {
    assert.equal(relationFilePath({ spcOid: 1664, dbOid: 0, relNumber: 1262 }, ForkNumber.MAIN, 0, PG15), 'global/1262')
    assert.equal(relationFilePath({ spcOid: 1663, dbOid: 5, relNumber: 16384 }, ForkNumber.MAIN, 0, PG15), 'base/5/16384')
    assert.equal(relationFilePath({ spcOid: 1663, dbOid: 5, relNumber: 16384 }, ForkNumber.FSM, 1, PG15), 'base/5/16384_fsm.1')
    assert.equal(relationFilePath({ spcOid: 1663, dbOid: 5, relNumber: 16384 }, ForkNumber.VISIBILITYMAP, 0, PG15), 'base/5/16384_vm')
    assert.equal(relationFilePath({ spcOid: 1663, dbOid: 5, relNumber: 16384 }, ForkNumber.INIT, 0, PG15), 'base/5/16384_init')
    assert.equal(
      relationFilePath({ spcOid: 16393, dbOid: 5, relNumber: 16394 }, ForkNumber.MAIN, 0, PG15),
      'pg_tblspc/16393/PG_15_202209061/5/16394',
    )
    assert.equal(
      relationFilePath({ spcOid: 16393, dbOid: 5, relNumber: 16394 }, ForkNumber.MAIN, 3, PG18),
      'pg_tblspc/16393/PG_18_202506291/5/16394.3',
    )
    assert.equal(forkName(2), 'vm')
    assert.equal(forkName(9), '9')
  })
})

describe('parseRelationDataFile', () => {
  it('accepts main-fork segments and round-trips them', () => {
    for (const major of SUPPORTED_MAJORS) {
      const p = profileForMajor(major)
      const cases: [string, { spcOid: number; dbOid: number; relNumber: number; segno: number }][] = [
        ['global/1262', { spcOid: 1664, dbOid: 0, relNumber: 1262, segno: 0 }],
        ['global/1262.4', { spcOid: 1664, dbOid: 0, relNumber: 1262, segno: 4 }],
        ['base/1/2600', { spcOid: 1663, dbOid: 1, relNumber: 2600, segno: 0 }],
        ['base/13396/16384.12', { spcOid: 1663, dbOid: 13396, relNumber: 16384, segno: 12 }],
        [`pg_tblspc/16393/${p.tablespaceVersionDirectory}/5/4294967295`, { spcOid: 16393, dbOid: 5, relNumber: 4294967295, segno: 0 }],
      ]
      for (const [path, want] of cases) {
        assert.deepEqual(parseRelationDataFile(path, p), want, path)
        assert.equal(relationFilePath(want, ForkNumber.MAIN, want.segno, p), path)
      }
    }
  })

  it("rejects other forks, temp relations, junk and other majors' tablespace directories", () => {
    for (const path of [
      'base/5/16384_fsm',
      'base/5/16384_vm.1',
      'base/5/16384_init',
      'base/5/t3_16400',
      'base/5/pg_filenode.map',
      'base/5/PG_VERSION',
      'base/5/016384',
      'base/5/16384.0',
      'base/5/16384.',
      'base/5/16384x',
      'global/pg_control',
      'base/5',
      'base/5/',
      'base/05/16384',
      'global/4294967296',
      'pg_tblspc/16393/PG_14_202107181/5/16394',
      'pg_tblspc/1663/PG_15_202209061/5/16394',
      'pg_tblspc/16393/PG_15_202209061/5/16394/x',
      '/base/5/16384',
      'pg_wal/000000010000000000000001',
      'base/5/16384.1.2',
      'base/5/pgsql_tmp/pgsql_tmp123.0',
    ]) {
      assert.equal(parseRelationDataFile(path, PG15), null, path)
    }
  })
})
