// Resource manager names, record type names per major, and the main-data decoders on the bytes
// formats.md shows and on malformed input.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RewindError } from '../../src/errors.js'
import { PG13, PG15, PG18, profileForMajor, SUPPORTED_MAJORS } from '../../src/pg/versions.js'
import {
  decodeCheckpoint,
  decodeDbaseCreateFileCopy,
  decodeDbaseCreateWalLog,
  decodeDbaseDrop,
  decodeEndOfRecovery,
  decodeRelmapUpdate,
  decodeSmgrCreate,
  decodeSmgrTruncate,
  decodeXactCommitAbort,
  decodeXactDroppedRelations,
  recordTypeName,
  RM,
  rmgrName,
} from '../../src/pg/wal/rmgr.js'

const invalid = (err: unknown) => err instanceof RewindError && err.code === 'WAL_INVALID'
const hex = (s: string) => Buffer.from(s.replace(/[ |]/g, ''), 'hex')

describe('names', () => {
  it('names built-in and custom resource managers', () => {
    assert.equal(rmgrName(RM.XLOG), 'XLOG')
    assert.equal(rmgrName(RM.XACT), 'Transaction')
    assert.equal(rmgrName(RM.SMGR), 'Storage')
    assert.equal(rmgrName(RM.LOGICALMSG), 'LogicalMessage')
    assert.equal(rmgrName(128), 'custom128')
    assert.equal(rmgrName(255), 'custom255')
  })

  it('names record types as each major does', () => {
    assert.equal(recordTypeName(RM.DBASE, 0x10, PG13), 'DROP')
    assert.equal(recordTypeName(RM.DBASE, 0x10, profileForMajor(14)), 'DROP')
    assert.equal(recordTypeName(RM.DBASE, 0x10, PG15), 'CREATE_WAL_LOG')
    assert.equal(recordTypeName(RM.DBASE, 0x21, PG15), 'DROP')
    assert.equal(recordTypeName(RM.DBASE, 0x00, PG13), 'CREATE')
    assert.equal(recordTypeName(RM.DBASE, 0x01, PG15), 'CREATE_FILE_COPY')
    assert.equal(recordTypeName(RM.XLOG, 0xe0, profileForMajor(16)), 'UNKNOWN (e0)')
    assert.equal(recordTypeName(RM.XLOG, 0xe0, profileForMajor(17)), 'CHECKPOINT_REDO')
    assert.deepEqual(
      SUPPORTED_MAJORS.map((m) => recordTypeName(RM.HEAP2, 0x10, profileForMajor(m))),
      ['CLEAN', 'PRUNE', 'PRUNE', 'PRUNE', 'PRUNE_ON_ACCESS', 'PRUNE_ON_ACCESS'],
    )
    assert.equal(recordTypeName(RM.HEAP2, 0xd0, PG18), 'MULTI_INSERT+INIT')
    assert.equal(recordTypeName(RM.HEAP, 0x80, PG18), 'INSERT+INIT')
    assert.equal(recordTypeName(RM.HEAP, 0x90, PG18), 'UNKNOWN (90)')
    // Transaction names ignore XLOG_XACT_HAS_INFO and the generic low bits.
    assert.equal(recordTypeName(RM.XACT, 0xa1, PG15), 'ABORT')
    assert.equal(recordTypeName(RM.XACT, 0x60, PG13), 'UNKNOWN (60)')
    assert.equal(recordTypeName(RM.XACT, 0x60, PG15), 'INVALIDATION')
    assert.equal(recordTypeName(RM.GENERIC, 0x30, PG15), 'Generic')
    assert.equal(recordTypeName(200, 0x30, PG15), 'UNKNOWN (30)')
  })
})

describe('main data decoders', () => {
  it('decode the PG 15 abort of formats.md §3.4 (dropped relation and dropped stats)', () => {
    const data = hex('8fbf1d27f4030300 | 44010000 | 01000000 | 7f060000 05000000 13400000 | 01000000 | 02000000 05000000 13400000')
    const rel = { spcOid: 1663, dbOid: 5, relNumber: 0x4013 }
    assert.deepEqual(decodeXactDroppedRelations(0xa1, data, PG15), [rel])
    const d = decodeXactCommitAbort(0xa1, data, PG15)!
    assert.equal(d.op, 'abort')
    assert.equal(d.xinfo, 0x144)
    assert.deepEqual(d.rels, [rel])
    assert.equal(d.nstats, 1)
    // The same bytes with an 18-sized stats item run short.
    assert.throws(() => decodeXactCommitAbort(0xa1, data, PG18), invalid)
    assert.deepEqual(decodeXactDroppedRelations(0xa1, data, PG18), [rel])
    assert.deepEqual(decodeXactDroppedRelations(0x10, data, PG15), [])
    assert.equal(decodeXactCommitAbort(0x50, data, PG15), null)
    // A commit without xinfo is just a timestamp.
    assert.deepEqual(decodeXactDroppedRelations(0x00, hex('8fbf1d27f4030300'), PG15), [])
    assert.throws(() => decodeXactDroppedRelations(0x80, hex('8fbf1d27f4030300 04000000 ffffffff'), PG15), invalid)
    assert.throws(() => decodeXactDroppedRelations(0x80, hex('8fbf1d27f4030300 04000000 02000000 7f060000'), PG15), invalid)
  })

  it('decode a commit-prepared with subtransactions, invalidations, a GID and an origin', () => {
    const parts = [
      '0100000000000000', // xact_time
      'bb000000', // xinfo: DBINFO | SUBXACTS | INVALS | TWOPHASE | ORIGIN | GID
      '05000000 7f060000', // db, ts
      '02000000 e9030000 ea030000', // 2 subxacts
      '01000000',
      '00'.repeat(16), // 1 invalidation message
      '2a000000',
      Buffer.from('gid-1\0').toString('hex'), // two-phase xid, GID
      '0800000000000000 0900000000000000', // origin lsn, timestamp
    ]
    const d = decodeXactCommitAbort(0xb0, hex(parts.join('')), PG15)!
    assert.deepEqual(
      { ...d, xact_time: 0n },
      {
        op: 'commit_prepared',
        xact_time: 0n,
        xinfo: 0xbb,
        dbId: 5,
        tsId: 1663,
        subxacts: [1001, 1002],
        rels: [],
        nstats: 0,
        nmsgs: 1,
        twophase_xid: 42,
        twophase_gid: 'gid-1',
        origin_lsn: 8n,
        origin_timestamp: 9n,
      },
    )
  })

  it('decode storage, database, relmap and end-of-recovery records', () => {
    assert.deepEqual(decodeSmgrTruncate(hex('01000000 7f060000 05000000 00400000 07000000')), {
      blkno: 1,
      spcOid: 1663,
      dbOid: 5,
      relNumber: 16384,
      flags: 7,
    })
    assert.deepEqual(decodeSmgrCreate(hex('7f060000 05000000 00400000 02000000')), { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 2 })
    assert.deepEqual(decodeDbaseCreateFileCopy(hex('0a400000 7f060000 01000000 7f060000')), {
      db_id: 16394,
      tablespace_id: 1663,
      src_db_id: 1,
      src_tablespace_id: 1663,
    })
    assert.deepEqual(decodeDbaseCreateWalLog(hex('0a400000 7f060000')), { db_id: 16394, tablespace_id: 1663 })
    assert.deepEqual(decodeDbaseDrop(hex('0a400000 02000000 7f060000 09400000')), { db_id: 16394, tablespace_ids: [1663, 16393] })
    const map = decodeRelmapUpdate(hex('05000000 7f060000 04000000 17275900'))
    assert.deepEqual({ ...map, data: map.data.toString('hex') }, { dbid: 5, tsid: 1663, nbytes: 4, data: '17275900' })
    const eor16 = hex('0100000000000000 03000000 02000000')
    assert.deepEqual(decodeEndOfRecovery(eor16, PG15), { end_time: 1n, ThisTimeLineID: 3, PrevTimeLineID: 2 })
    assert.deepEqual(decodeEndOfRecovery(hex('0100000000000000 03000000 02000000 01000000 00000000'), PG18), {
      end_time: 1n,
      ThisTimeLineID: 3,
      PrevTimeLineID: 2,
      wal_level: 1,
    })
    assert.throws(() => decodeEndOfRecovery(eor16, PG18), invalid)
    for (const short of [hex('01'), hex('')]) {
      for (const fn of [
        decodeSmgrCreate,
        decodeSmgrTruncate,
        decodeDbaseCreateFileCopy,
        decodeDbaseCreateWalLog,
        decodeDbaseDrop,
        decodeRelmapUpdate,
      ]) {
        assert.throws(() => fn(short), invalid)
      }
      assert.throws(() => decodeCheckpoint(short, PG15), invalid)
    }
    assert.throws(() => decodeDbaseDrop(hex('0a400000 05000000 7f060000')), invalid)
    assert.throws(() => decodeDbaseDrop(hex('0a400000 ffffffff')), invalid)
    assert.throws(() => decodeRelmapUpdate(hex('05000000 7f060000 ff000000 17275900')), invalid)
  })
})
