// The running-server source on real clusters of every major, in-process (the test runs as root,
// the servers as the kit's user): a role with only the four GRANTs pg_rewind documents and a
// password from a password file; listings and fetched bytes checked against the files on disk;
// a standby as the source; missing privileges, a silent server and a stopped server.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, beforeEach, describe, it, type TestContext } from 'node:test'
import { isRewindError, type RewindError } from '../../src/errors.js'
import { decodeControlFile } from '../../src/pg/control.js'
import { PATCH_PIECES, PIECE_DIGEST_LENGTH, pieceDigestsOf } from '../../src/compare/digest.js'
import { openServerSource, type ServerSource } from '../../src/source/server.js'
import { decodeChunkRow, fetchParameters, FetchQueue, MAX_CHUNK_SIZE } from '../../src/source/server-fetch.js'
import type { ChunkSink, FileEntry } from '../../src/source/source.js'
import { listDataDirectory } from '../../src/source/walk.js'
import { Kit, majorsUnderTest, parseLsn, type Node } from '../kit/index.js'

const ROLE = 'rewind_user'
const PASSWORD = "pw with 'quote' and \\ and :colon"
const GRANTS = [
  'GRANT EXECUTE ON function pg_catalog.pg_ls_dir(text, boolean, boolean) TO rewind_user',
  'GRANT EXECUTE ON function pg_catalog.pg_stat_file(text, boolean) TO rewind_user',
  'GRANT EXECUTE ON function pg_catalog.pg_read_binary_file(text) TO rewind_user',
  'GRANT EXECUTE ON function pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO rewind_user',
]

let kit: Kit
/** Where expectError reports the message it got (the running test's diagnostic). */
let diagnostic: ((message: string) => void) | undefined

before(async () => {
  kit = await Kit.create('server-source')
})

after(async () => {
  await kit?.cleanup()
})

/** A password file line, with `:` and `\` escaped as libpq wants. */
function passfileLine(node: Node, user: string, password: string): string {
  const esc = (s: string) => s.replace(/[\\:]/g, (c) => `\\${c}`)
  return `${node.host}:${node.port}:*:${esc(user)}:${esc(password)}\n`
}

/** Collects everything a flush delivers. */
function collector() {
  const chunks = new Map<string, Array<[number, Buffer]>>()
  const missing: string[] = []
  const sink: ChunkSink = {
    chunk: async (p, offset, data) => {
      const list = chunks.get(p) ?? []
      list.push([offset, Buffer.from(data)])
      chunks.set(p, list)
    },
    missing: async (p) => {
      missing.push(p)
    },
  }
  /** Bytes delivered for `p`, laid out at their offsets, from `start`. */
  const bytes = (p: string, start = 0): Buffer => {
    const list = (chunks.get(p) ?? []).sort((a, b) => a[0] - b[0])
    const end = list.reduce((m, [o, d]) => Math.max(m, o + d.length), start)
    const out = Buffer.alloc(end - start)
    for (const [o, d] of list) d.copy(out, o - start)
    return out
  }
  return { sink, chunks, missing, bytes }
}

// Files the server changes by itself while it runs, or only it has (excluded from comparison).
const VOLATILE =
  /^(pg_stat_tmp|pg_stat|pg_wal|pg_logical|pg_subtrans|pg_xact|pg_multixact|pg_notify|pg_snapshots|pg_replslot|pg_dynshmem|pg_serial)\/|^(postmaster\.pid|postmaster\.opts|current_logfiles)$|pgsql_tmp|pg_internal\.init/

function stable(entries: readonly FileEntry[]): Map<string, FileEntry> {
  return new Map(entries.filter((e) => !VOLATILE.test(e.path)).map((e) => [e.path, e]))
}

async function expectError(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<RewindError> {
  try {
    await promise
  } catch (err) {
    assert.ok(isRewindError(err), `expected a RewindError, got ${String(err)}`)
    diagnostic?.(`${err.code}: ${err.message}`)
    assert.equal(err.code, code, err.message)
    assert.match(err.message, pattern)
    return err
  }
  assert.fail(`expected ${code}`)
}

/** A CA and a server certificate for `db.example.test` only (no IP in it), made with openssl. */
function makeCertificates(
  dir: string,
  owner: { uid: number; gid: number } | null,
): { ca: string; otherCa: string; cert: string; key: string } {
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`)
  }
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=DNS:db.example.test\n')
  run([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=walrewind test CA',
  ])
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=db.example.test'])
  run([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'other-ca.key',
    '-out',
    'other-ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=another CA',
  ])
  run([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'san.ext',
  ])
  for (const f of ['server.crt', 'server.key']) {
    fs.chmodSync(path.join(dir, f), 0o600)
    if (owner) fs.chownSync(path.join(dir, f), owner.uid, owner.gid)
  }
  return {
    ca: path.join(dir, 'ca.crt'),
    otherCa: path.join(dir, 'other-ca.crt'),
    cert: path.join(dir, 'server.crt'),
    key: path.join(dir, 'server.key'),
  }
}

async function sessionsOf(node: Node, user: string, appName?: string): Promise<number[]> {
  const rows = await node.query<{ pid: number }>(
    'select pid from pg_stat_activity where usename = $1 and ($2::text is null or application_name = $2)',
    [user, appName ?? null],
  )
  return rows.map((r) => r.pid)
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const until = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

// The request queue needs no server: what each query asks for.
describe('fetch batches', () => {
  it('merges contiguous ranges of a file and cuts them in 1 MiB chunks, 1000 or 32 MiB to a query', () => {
    const q = new FetchQueue()
    for (let block = 0; block < 300; block++) q.addRange('base/1/2', block * 8192, 8192)
    q.addRange('base/1/3', 0, 10)
    q.addFile('small', 100)
    q.addFile('huge', 70 * MAX_CHUNK_SIZE + 1)
    for (let block = 0; block < 2500; block += 2) q.addRange('base/1/4', block * 8192, 8192)
    assert.equal(q.fitsOneBatch, false)
    const batches = [...q.takeBatches()]
    assert.ok(q.isEmpty)
    const one = new FetchQueue()
    one.addRange('pg_wal/000000010000000000000001', 0, 8 * MAX_CHUNK_SIZE)
    one.addFile('small', 100)
    assert.equal(one.fitsOneBatch, true, 'a WAL chunk and a small file: one query')
    assert.equal([...one.takeBatches()].length, 1)
    // 32 MiB a query at most, and 1000 chunks
    assert.deepEqual(
      batches.map((b) => b.length),
      [34, 32, 1000, 260],
    )
    for (const b of batches) assert.ok(b.reduce((n, r) => n + r.length, 0) <= 33 * MAX_CHUNK_SIZE)
    assert.deepEqual(batches[0]!.slice(0, 6), [
      { path: 'base/1/2', offset: 0, length: MAX_CHUNK_SIZE },
      { path: 'base/1/2', offset: MAX_CHUNK_SIZE, length: MAX_CHUNK_SIZE },
      { path: 'base/1/2', offset: 2 * MAX_CHUNK_SIZE, length: 300 * 8192 - 2 * MAX_CHUNK_SIZE },
      { path: 'base/1/3', offset: 0, length: 10 },
      // a small file is asked for a whole chunk, in case it grew since it was listed
      { path: 'small', offset: 0, length: MAX_CHUNK_SIZE },
      { path: 'huge', offset: 0, length: MAX_CHUNK_SIZE },
    ])
    assert.deepEqual(batches[2]!.slice(8, 11), [
      { path: 'huge', offset: 69 * MAX_CHUNK_SIZE, length: MAX_CHUNK_SIZE },
      { path: 'huge', offset: 70 * MAX_CHUNK_SIZE, length: 1 },
      { path: 'base/1/4', offset: 0, length: 8192 },
    ])
  })
  it('formats array parameters with quotes and backslashes escaped', () => {
    assert.deepEqual(
      fetchParameters([
        { path: 'a"b', offset: 0, length: 1 },
        { path: 'c\\d e', offset: 8192, length: 2 },
      ]),
      ['{"a\\"b","c\\\\d e"}', '{0,8192}', '{1,2}'],
    )
  })
  it('decodes binary rows and refuses malformed ones', () => {
    const begin = Buffer.alloc(8)
    begin.writeBigInt64BE(3n * 2n ** 32n)
    assert.deepEqual(decodeChunkRow([Buffer.from('base/1/2'), begin, Buffer.from('xy')], true), {
      path: 'base/1/2',
      offset: 3 * 2 ** 32,
      data: Buffer.from('xy'),
    })
    assert.deepEqual(decodeChunkRow([Buffer.from('f'), begin, null], true), { path: 'f', offset: 3 * 2 ** 32, data: null })
    assert.throws(
      () => decodeChunkRow([Buffer.from('f'), Buffer.alloc(4), null], true),
      /unexpected result length while fetching remote files/,
    )
    assert.throws(() => decodeChunkRow([null, begin, null], true), /unexpected null values in result while fetching remote files/)
    assert.throws(() => decodeChunkRow(['f', begin, null], true), /unexpected result format while fetching remote files/)
    assert.deepEqual(decodeChunkRow(['f', '12', '\\x00ff'], false), { path: 'f', offset: 12, data: Buffer.from([0, 255]) })
  })
})

for (const major of majorsUnderTest()) {
  describe(`server source on PostgreSQL ${major}`, () => {
    let primary: Node
    let standby: Node
    let homeDir: string
    let passfile: string
    const open = (
      node: Node,
      extra: { user?: string; env?: NodeJS.ProcessEnv; jobs?: number; timeoutMs?: number; appName?: string; conninfo?: string } = {},
    ): Promise<ServerSource> =>
      openServerSource(
        extra.conninfo ??
          `host=${node.host} port=${node.port} user=${extra.user ?? ROLE} dbname=postgres${extra.appName ? ` application_name=${extra.appName}` : ''}`,
        {
          env: extra.env ?? { HOME: homeDir },
          osUser: 'nobody',
          jobs: extra.jobs ?? 3,
          timeoutMs: extra.timeoutMs ?? 20_000,
        },
      )

    beforeEach((t) => {
      diagnostic = (m) => (t as TestContext).diagnostic(m)
    })

    before(async () => {
      primary = await kit.initNode(`primary${major}`, major, {
        hba: [`host all ${ROLE} 127.0.0.1/32 scram-sha-256`, 'host all nogrant_user 127.0.0.1/32 scram-sha-256'],
      })
      await primary.start()
      const tablespace = await kit.makeDir(`tblspc${major}`)
      await primary.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD.replace(/'/g, "''")}'`)
      for (const grant of GRANTS) await primary.query(grant)
      await primary.query("CREATE ROLE nogrant_user LOGIN PASSWORD 'nogrant'")
      // CONNECT only where it is granted: the role has nothing PUBLIC would give it.
      await primary.query(`REVOKE CONNECT ON DATABASE postgres FROM PUBLIC; GRANT CONNECT ON DATABASE postgres TO ${ROLE}, nogrant_user`)
      await primary.query(`CREATE TABLESPACE ts LOCATION '${tablespace}'`)
      await primary.query(`CREATE TABLE big AS SELECT g, repeat(md5(g::text), 16) AS filler FROM generate_series(1, 8000) g;
        CREATE TABLE spaced (x int) TABLESPACE ts; INSERT INTO spaced SELECT generate_series(1, 1000);
        CHECKPOINT`)
      if (major >= 16) {
        const client = await primary.connect()
        try {
          await client.query('SET allow_in_place_tablespaces = on')
          await client.query("CREATE TABLESPACE inplace LOCATION ''")
        } finally {
          await client.end()
        }
      }
      homeDir = await kit.makeDir(`home${major}`)
      fs.writeFileSync(
        path.join(homeDir, '.pgpass'),
        passfileLine(primary, ROLE, PASSWORD) +
          passfileLine(primary, 'nogrant_user', 'nogrant') +
          // libpq looks a password up by host name, not by the address it connects to.
          `db.example.test:${primary.port}:postgres:${ROLE}:${PASSWORD.replace(/[\\:]/g, (ch) => `\\${ch}`)}\n`,
        { mode: 0o600 },
      )
      // The standby replays the in-place tablespace's creation: it must allow them too.
      standby = await kit.createStandby(primary, `standby${major}`, major >= 16 ? { conf: { allow_in_place_tablespaces: true } } : {})
      passfile = path.join(homeDir, 'standby.pgpass')
      fs.writeFileSync(passfile, passfileLine(standby, '*', PASSWORD), { mode: 0o600 })
    })

    it('lists the data directory as it is on disk, tablespaces included', async () => {
      const source = await open(primary)
      try {
        assert.equal(source.description, `127.0.0.1:${primary.port}`)
        assert.equal(Math.floor(source.serverVersionNum / 10000), major)
        const listed = stable(await source.listFiles())
        const onDisk = stable(await listDataDirectory(primary.dataDir))
        assert.deepEqual([...listed.keys()].sort(), [...onDisk.keys()].sort())
        for (const [p, entry] of onDisk) {
          const got = listed.get(p)!
          if (entry.type === 'file' && p.startsWith('base/')) assert.equal(got.size, entry.size, p)
          if (entry.type === 'directory') assert.equal(got.type, 'directory', p)
        }
        const oid = await primary.queryValue<number>("SELECT oid FROM pg_tablespace WHERE spcname = 'ts'")
        const ts = listed.get(`pg_tblspc/${oid}`)
        assert.deepEqual(ts, {
          path: `pg_tblspc/${oid}`,
          type: 'symlink',
          size: 0,
          linkTarget: await primary.queryValue(`SELECT pg_tablespace_location(${oid})`),
        })
        const spaced = await primary.queryValue<string>("SELECT pg_relation_filepath('spaced')")
        assert.equal(listed.get(spaced)?.type, 'file')
        if (major >= 16) {
          const inplace = await primary.queryValue<number>("SELECT oid FROM pg_tablespace WHERE spcname = 'inplace'")
          assert.equal(listed.get(`pg_tblspc/${inplace}`)?.type, 'directory')
        }
      } finally {
        await source.close()
      }
    })

    it('fetches whole files, ranges and small files with the bytes on disk', async () => {
      const source = await open(primary)
      try {
        const big = await primary.queryValue<string>("SELECT pg_relation_filepath('big')")
        const bigOnDisk = fs.readFileSync(path.join(primary.dataDir, big))
        assert.ok(bigOnDisk.length > 3 * 1024 * 1024, `big is ${bigOnDisk.length} bytes`)
        assert.deepEqual(await source.readFile('PG_VERSION'), fs.readFileSync(path.join(primary.dataDir, 'PG_VERSION')))
        assert.equal(await source.readFileIfExists('no/such/file'), null)
        await expectError(source.readFile('no/such/file'), 'FILE_IO', /^could not fetch remote file "no\/such\/file": could not open file/)

        // A small file that grew after it was listed still comes whole (pg_rewind's 1 MiB rule).
        const grown = path.join(primary.dataDir, 'tst_grown')
        fs.writeFileSync(grown, 'first line\n')
        fs.chownSync(grown, kit.osUser?.uid ?? process.getuid!(), kit.osUser?.gid ?? process.getgid!())
        const listedSize = fs.statSync(grown).size
        fs.appendFileSync(grown, 'second line\n')

        const c = collector()
        source.queueFile(big, bigOnDisk.length)
        source.queueFile('tst_grown', listedSize)
        source.queueRange('global/pg_filenode.map', 0, 512)
        // Blocks 100-299 of big: crosses 1 MiB boundaries, merged then cut again.
        for (let block = 100; block < 300; block++) source.queueRange(big, block * 8192, 8192)
        await source.flush(c.sink)
        assert.deepEqual(c.missing, [])
        assert.ok(c.bytes(big).equals(bigOnDisk), 'big file')
        assert.equal(c.bytes('tst_grown').toString(), 'first line\nsecond line\n')
        assert.ok(
          c.bytes('global/pg_filenode.map').equals(fs.readFileSync(path.join(primary.dataDir, 'global/pg_filenode.map')).subarray(0, 512)),
        )
        // No chunk is bigger than 1 MiB, none reaches past what was asked.
        for (const [, list] of c.chunks) for (const [, d] of list) assert.ok(d.length <= 1024 * 1024)

        // A file that goes away between listing and fetching is reported missing, once.
        const gone = 'tst_gone'
        fs.writeFileSync(path.join(primary.dataDir, gone), Buffer.alloc(3 * 1024 * 1024, 7))
        source.queueFile(gone, 3 * 1024 * 1024)
        source.queueRange(gone, 0, 8192)
        fs.unlinkSync(path.join(primary.dataDir, gone))
        const d = collector()
        await source.flush(d.sink)
        assert.deepEqual(d.missing, [gone])
        assert.equal(d.chunks.size, 0)
      } finally {
        await source.close()
      }
    })

    it('fetches blocks as patches: only the pieces whose digest differs from the given ones', async () => {
      const source = await open(primary)
      try {
        const big = await primary.queryValue<string>("SELECT pg_relation_filepath('big')")
        const onDisk = fs.readFileSync(path.join(primary.dataDir, big))
        const B = 8192
        const piece = B / PATCH_PIECES
        const sourceBlock = (n: number) => onDisk.subarray(n * B, (n + 1) * B)
        // The target's copies: 0 equal, 1 one byte off in piece 3, 2 off in pieces 0 and 1, 3 all off.
        const targets = new Map<number, Buffer>([0, 1, 2, 3].map((n) => [n, Buffer.from(sourceBlock(n))]))
        targets.get(1)![3 * piece + 17]! ^= 0xff
        targets.get(2)![5]! ^= 1
        targets.get(2)![piece + 9]! ^= 1
        for (let i = 0; i < B; i++) targets.get(3)![i] = ~targets.get(3)![i]! & 0xff
        const digests = (block: Buffer) => {
          const out = Buffer.alloc(PATCH_PIECES * PIECE_DIGEST_LENGTH)
          pieceDigestsOf(block, out, 0)
          return out
        }
        for (const [n, block] of targets) source.queueBlockPatch(big, n, B, digests(block))
        const pastEnd = Math.ceil(onDisk.length / B)
        source.queueBlockPatch(big, pastEnd, B, digests(Buffer.alloc(B)))
        source.queueBlockPatch('tst_no_such_file', 0, B, digests(Buffer.alloc(B)))
        source.queueRange('global/pg_filenode.map', 0, 512)

        const patches = new Map<number, Array<readonly [number, Buffer]>>()
        const chunks: Array<[string, number, Buffer]> = []
        const missing: string[] = []
        await source.flush({
          chunk: async (p, offset, data) => {
            chunks.push([p, offset, Buffer.from(data)])
          },
          missing: async (p) => {
            missing.push(p)
          },
          patch: async (p, offset, length, pieces) => {
            assert.equal(p, big)
            assert.equal(length, B)
            patches.set(
              offset / B,
              pieces.map(([at, bytes]) => [at, Buffer.from(bytes)] as const),
            )
          },
        })
        assert.deepEqual(missing, ['tst_no_such_file'])
        assert.deepEqual(
          chunks.map(([p, offset, data]) => [p, offset, data.length]).sort((a, b) => String(b[0]).localeCompare(String(a[0]))),
          [
            ['global/pg_filenode.map', 0, 512],
            [big, pastEnd * B, 0],
          ],
        )
        const sent = (n: number) => patches.get(n)!.map(([at, bytes]) => [at - n * B, bytes.length])
        assert.deepEqual(sent(0), [])
        assert.deepEqual(sent(1), [[3 * piece, piece]])
        assert.deepEqual(sent(2), [[0, 2 * piece]])
        assert.deepEqual(sent(3), [[0, B]])
        for (const [n, block] of targets) {
          for (const [at, bytes] of patches.get(n)!) bytes.copy(block, at - n * B)
          assert.ok(block.equals(sourceBlock(n)), `block ${n} patched`)
        }
      } finally {
        await source.close()
      }
    })

    it("reports where a primary's WAL ends, and the primary_conninfo -R writes", async () => {
      const source = await open(primary)
      try {
        const before = await primary.currentLsn()
        const control = decodeControlFile(await source.readFile('global/pg_control'))
        const end = await source.walEnd(control)
        assert.ok(end.lsn >= parseLsn(before), `${end.lsn} < ${before}`)
        assert.equal(end.tli, 1)
        const conninfo = source.recoveryConninfo()
        assert.equal(
          conninfo,
          `user=${ROLE} passfile='${path.join(homeDir, '.pgpass')}' host=127.0.0.1 port=${primary.port}${major >= 18 ? ' dbname=postgres' : ''}`,
        )
      } finally {
        await source.close()
      }
    })

    it('works from a standby, with PGPASSFILE', async () => {
      await standby.waitForReplay(await primary.currentLsn())
      const source = await open(standby, { env: { PGPASSFILE: passfile, HOME: '/nonexistent' } })
      try {
        const listed = await source.listFiles()
        assert.ok(listed.some((e) => e.path === 'standby.signal'))
        const big = await primary.queryValue<string>("SELECT pg_relation_filepath('big')")
        const c = collector()
        source.queueFile(big, 0)
        source.queueRange(big, 8192 * 7, 8192)
        await source.flush(c.sink)
        assert.ok(c.bytes(big).equals(fs.readFileSync(path.join(standby.dataDir, big)).subarray(0, 1024 * 1024)))
        const control = decodeControlFile(await source.readFile('global/pg_control'))
        const end = await source.walEnd(control)
        assert.deepEqual(end, { lsn: control.minRecoveryPoint, tli: control.minRecoveryPointTLI })
        assert.ok(end.lsn > 0n)
      } finally {
        await source.close()
      }
    })

    it('names the function and the server when a privilege is missing', async () => {
      const a = await open(primary, { user: 'nogrant_user' })
      const err = await expectError(
        a.listFiles(),
        'SOURCE_PRIVILEGE',
        new RegExp(
          `^could not fetch file list: permission denied for function pg_ls_dir \\(source server 127\\.0\\.0\\.1:${primary.port}\\)$`,
        ),
      )
      assert.match(err.info.hint ?? '', /pg_read_binary_file\(text, bigint, bigint, boolean\)/)
      await a.close()
      const b = await open(primary, { user: 'nogrant_user' })
      await expectError(b.readFile('PG_VERSION'), 'SOURCE_PRIVILEGE', /permission denied for function pg_read_binary_file .*127\.0\.0\.1/)
      await b.close()
      await waitFor('nogrant_user sessions to end', async () => (await sessionsOf(primary, 'nogrant_user')).length === 0)
    })

    it("refuses bad or missing passwords with the server's message", async () => {
      await expectError(
        open(primary, { env: { HOME: '/nonexistent' } }),
        'SOURCE_CONNECTION',
        new RegExp(`^connection to server at "127\\.0\\.0\\.1", port ${primary.port} failed: fe_sendauth: no password supplied$`),
      )
      await expectError(
        open(primary, { env: { PGPASSWORD: 'wrong' } }),
        'SOURCE_CONNECTION',
        /failed: FATAL: {2}password authentication failed for user "rewind_user"/,
      )
    })

    it('takes every host of a list, in order, as target_session_attrs asks', async () => {
      const both = `host=127.0.0.1,127.0.0.1 user=${ROLE} dbname=postgres`
      const a = await open(primary, {
        conninfo: `${both} port=${primary.port},${standby.port} target_session_attrs=standby`,
        env: { HOME: homeDir, PGPASSFILE: passfile },
      })
      assert.equal(a.description, `127.0.0.1:${standby.port}`)
      await a.close()
      const b = await open(primary, { conninfo: `${both} port=${standby.port},${primary.port} target_session_attrs=read-write` })
      assert.equal(b.description, `127.0.0.1:${primary.port}`)
      await b.close()
      // A host that is down is skipped (its port is the standby's, stopped for a moment).
      await standby.stop()
      try {
        const c = await open(primary, { conninfo: `${both} port=${standby.port},${primary.port}` })
        assert.equal(c.description, `127.0.0.1:${primary.port}`)
        await c.close()
        await expectError(
          open(primary, { conninfo: `host=127.0.0.1 port=${standby.port} user=${ROLE} connect_timeout=2` }),
          'SOURCE_CONNECTION',
          new RegExp(
            `^connection to server at "127\\.0\\.0\\.1", port ${standby.port} failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections\\?$`,
          ),
        )
      } finally {
        await standby.start()
      }
    })

    it('speaks TLS as sslmode says: verify-ca, verify-full by host name, and require', async () => {
      const dir = await kit.makeDir(`tls${major}`)
      const { ca, otherCa, cert, key } = makeCertificates(dir, kit.osUser)
      await primary.setConf({ ssl: true, ssl_cert_file: cert, ssl_key_file: key })
      try {
        const base = `port=${primary.port} user=${ROLE} dbname=postgres application_name=tlscheck`
        const encrypted = async () =>
          (
            await primary.query<{ ssl: boolean }>(
              "select s.ssl from pg_stat_ssl s join pg_stat_activity a using (pid) where a.application_name = 'tlscheck'",
            )
          ).map((r) => r.ssl)
        const vca = await open(primary, { conninfo: `host=127.0.0.1 ${base} sslmode=verify-ca sslrootcert=${ca}` })
        try {
          assert.deepEqual(await encrypted(), [true])
        } finally {
          await vca.close()
        }
        await expectError(
          open(primary, { conninfo: `host=127.0.0.1 ${base} sslmode=verify-full sslrootcert=${ca}` }),
          'SOURCE_CONNECTION',
          /^connection to server at "127\.0\.0\.1", port \d+ failed: SSL error: .*(altnames|does not match)/i,
        )
        const vfull = await open(primary, {
          conninfo: `host=db.example.test hostaddr=127.0.0.1 ${base} sslmode=verify-full sslrootcert=${ca}`,
        })
        try {
          assert.equal(vfull.description, `db.example.test:${primary.port}`)
          assert.match(
            vfull.recoveryConninfo(),
            /host=db\.example\.test hostaddr=127\.0\.0\.1 port=\d+ application_name=tlscheck sslmode='verify-full' sslrootcert='.*ca\.crt'/,
          )
        } finally {
          await vfull.close()
        }
        const req = await open(primary, { conninfo: `host=127.0.0.1 ${base} sslmode=require` })
        await req.close()
        // A CA that did not sign the server's certificate: verification fails.
        await expectError(
          open(primary, { conninfo: `host=127.0.0.1 ${base} sslmode=verify-ca sslrootcert=${otherCa}` }),
          'SOURCE_CONNECTION',
          /failed: SSL error: /,
        )
      } finally {
        await primary.setConf({ ssl: false })
      }
    })

    it('refuses a server without TLS when TLS is required, and one without full_page_writes', async () => {
      await expectError(
        open(primary, { conninfo: `host=127.0.0.1 port=${primary.port} user=${ROLE} dbname=postgres sslmode=require` }),
        'SOURCE_CONNECTION',
        /failed: server does not support SSL, but SSL was required$/,
      )
      await primary.setConf({ full_page_writes: false })
      try {
        await expectError(
          open(primary),
          'SOURCE_FULL_PAGE_WRITES_OFF',
          major >= 17
            ? /^"full_page_writes" must be enabled in the source server$/
            : /^full_page_writes must be enabled in the source server$/,
        )
      } finally {
        await primary.setConf({ full_page_writes: true })
      }
      await waitFor(`no ${ROLE} session left`, async () => (await sessionsOf(primary, ROLE)).length === 0)
    })

    it('does not take a slow sink for a silent server', async () => {
      const source = await open(primary, { jobs: 1, timeoutMs: 1000 })
      try {
        const big = await primary.queryValue<string>("SELECT pg_relation_filepath('big')")
        const onDisk = fs.readFileSync(path.join(primary.dataDir, big))
        source.queueFile(big, onDisk.length)
        let first = true
        const c = collector()
        await source.flush({
          chunk: async (p, offset, data) => {
            if (first) {
              first = false
              await new Promise((r) => setTimeout(r, 2500))
            }
            await c.sink.chunk(p, offset, data)
          },
          missing: c.sink.missing,
        })
        assert.ok(c.bytes(big).equals(onDisk))
      } finally {
        await source.close()
      }
    })

    it('fails with SOURCE_TIMEOUT when the server stops answering in the middle of a flush', async () => {
      const source = await open(primary, { jobs: 1, timeoutMs: 1500, appName: 'stopme' })
      const pids = await sessionsOf(primary, ROLE, 'stopme')
      assert.equal(pids.length, 1)
      const pid = pids[0]!
      const big = await primary.queryValue<string>("SELECT pg_relation_filepath('big')")
      // 3000 separate one-byte ranges: three queries of 1000 chunks each.
      for (let i = 0; i < 3000; i++) source.queueRange(big, i * 1000, 1)
      let stopped = false
      const started = Date.now()
      try {
        await expectError(
          source.flush({
            chunk: async () => {
              if (!stopped) {
                stopped = true
                process.kill(pid, 'SIGSTOP')
              }
            },
            missing: async () => {},
          }),
          'SOURCE_TIMEOUT',
          /^unexpected result while fetching remote files: source server 127\.0\.0\.1:\d+ did not answer for 1\.5 s$/,
        )
        assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`)
      } finally {
        process.kill(pid, 'SIGCONT')
      }
      await source.close()
      // Our end was closed: the backend notices and goes away.
      await waitFor('the stopped backend to exit', async () => !(await sessionsOf(primary, ROLE)).includes(pid))
    })

    it('fails with SOURCE_QUERY when the server shuts down in the middle of a flush', async () => {
      const source = await open(primary, { jobs: 2 })
      const big = await primary.queryValue<string>("SELECT pg_relation_filepath('big')")
      for (let i = 0; i < 4000; i++) source.queueRange(big, i * 1000, 1)
      let stopping: Promise<void> | null = null
      const started = Date.now()
      await expectError(
        source.flush({
          chunk: async () => {
            if (stopping === null) stopping = primary.stop('fast')
            await new Promise((r) => setTimeout(r, 1))
          },
          missing: async () => {},
        }),
        'SOURCE_QUERY',
        new RegExp(`\\(source server 127\\.0\\.0\\.1:${primary.port}\\)$`),
      )
      assert.ok(Date.now() - started < 20_000)
      await stopping
      await source.close()
      await primary.start()
    })
  })
}
