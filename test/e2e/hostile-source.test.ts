// Everything a source says is untrusted. A source that lists paths outside the data directory,
// or links to lead writes elsewhere, is refused before the first write: the target stays byte for
// byte as it was and nothing appears outside it. The source here is a real stopped data directory
// behind a Source that adds one hostile entry to the listing or one hostile chunk to the data.

import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { RewindError } from '../../src/errors.js'
import { rewind } from '../../src/rewind/rewind.js'
import { LocalSource } from '../../src/source/local.js'
import type { ChunkSink, FileEntry } from '../../src/source/source.js'
import { Kit, majorsUnderTest, type Major } from '../kit/index.js'
import { forkedPair, snapshotDirectory, sql } from './rewind-harness.js'

class HostileListing extends LocalSource {
  constructor(
    root: string,
    private readonly extra: FileEntry[],
  ) {
    super(root)
  }
  override async listFiles(): Promise<FileEntry[]> {
    return [...(await super.listFiles()), ...this.extra]
  }
  override async flush(sink: ChunkSink): Promise<void> {
    // Whatever was asked for, also deliver data for every extra entry.
    for (const e of this.extra) if (e.type === 'file') await sink.chunk(e.path, 0, Buffer.from('owned'))
    await super.flush(sink)
  }
}

const HOSTILE: Array<[string, (outside: string) => FileEntry[]]> = [
  ['absolute path', (outside) => [{ path: `${outside}/owned`, type: 'file', size: 5 }]],
  ['.. path', () => [{ path: '../../../owned', type: 'file', size: 5 }]],
  [
    'relative tablespace link',
    () => [
      { path: 'pg_tblspc/99999', type: 'symlink', size: 0, linkTarget: '../../..' },
      { path: 'pg_tblspc/99999/owned', type: 'file', size: 5 },
    ],
  ],
  [
    'file below a stray link',
    (outside) => [
      { path: 'evil', type: 'symlink', size: 0, linkTarget: outside },
      { path: 'evil/owned', type: 'file', size: 5 },
    ],
  ],
]

async function hostileScenario(major: Major): Promise<void> {
  const kit = await Kit.create(`hostile-${major}`)
  try {
    const { primary, standby } = await forkedPair(kit, major, {
      afterPromotion: async (p, s) => {
        await sql(p, 'CREATE TABLE a (x int); INSERT INTO a VALUES (1)')
        await sql(s, 'CREATE TABLE b (x int); INSERT INTO b VALUES (1)')
      },
    })
    await primary.stop()
    await standby.stop()
    // The test process is root here; the files are the kit user's, and reading them is enough.
    const outside = await kit.makeDir('outside')
    for (const [what, entries] of HOSTILE) {
      const before = await snapshotDirectory(kit, primary.dataDir)
      await assert.rejects(
        rewind({
          targetPgdata: primary.dataDir,
          source: new HostileListing(standby.dataDir, entries(outside)),
          sync: false,
          ensureShutdown: false,
        }),
        (err: unknown) => err instanceof RewindError && err.code === 'SOURCE_UNSAFE_PATH' && !err.targetModified,
        what,
      )
      assert.equal(await snapshotDirectory(kit, primary.dataDir), before, `${what}: the target changed`)
      assert.deepEqual(await fs.readdir(outside), [], `${what}: something was written outside the target`)
      await fs.access(path.join(primary.dataDir, 'walrewind.resume')).then(
        () => assert.fail('resume file written'),
        () => {},
      )
    }
  } finally {
    await kit.cleanup()
  }
}

const majors = majorsUnderTest()
describe('hostile source listings', () => {
  test(`are refused before any write (PostgreSQL ${majors.includes(15) ? 15 : majors[0]})`, () =>
    hostileScenario(majors.includes(15) ? 15 : majors[0]!))
})
