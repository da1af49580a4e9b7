// The native window scan under AddressSanitizer and UndefinedBehaviorSanitizer: test/native/scan-fuzz.c
// feeds it random windows of every fixture's real WAL, each in an allocation of exactly its
// length, corrupted or not, from a page's first record or from anywhere. A read outside a window
// (a record running past a short last page, say) aborts the run. Needs a C compiler, as npm
// install does for the addon itself.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { PROJECT_ROOT } from '../kit/index.js'
import { fixtureMajors, loadFixture } from '../fixtures/load.js'
import { scanParams } from '../../src/pg/wal/window-scan.js'

const ITERATIONS = 20000

describe('native window scan under the sanitizers', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-asan-'))
  after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const exe = path.join(dir, 'scan-fuzz')
  const env = { ...process.env, ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1', UBSAN_OPTIONS: 'print_stacktrace=1' }

  it('builds with -fsanitize=address,undefined', () => {
    const native = path.join(PROJECT_ROOT, 'native')
    const result = spawnSync(
      process.env['CC'] ?? 'cc',
      [
        '-O1',
        '-g',
        '-fsanitize=address,undefined',
        '-fno-sanitize-recover=all',
        '-I',
        native,
        path.join(PROJECT_ROOT, 'test/native/scan-fuzz.c'),
        path.join(native, 'crc32c.c'),
        path.join(native, 'wal-scan.c'),
        '-o',
        exe,
      ],
      { encoding: 'utf8' },
    )
    assert.equal(result.status, 0, `${result.error?.message ?? ''}${result.stderr}`)
  })

  for (const major of fixtureMajors()) {
    it(`never reads outside a window of PostgreSQL ${major} WAL`, () => {
      const fixture = loadFixture(major)
      const wal = path.join(dir, `wal-${major}`)
      fs.writeFileSync(wal, Buffer.concat([...fixture.segments.values()]))
      const params = [...scanParams(fixture.profile, 8192)].map(String)
      const result = spawnSync(exe, [wal, String(ITERATIONS), ...params], { encoding: 'utf8', env })
      assert.equal(result.status, 0, result.stderr)
      const m = /^ok (\d+) rows, (\d+) decoded$/m.exec(result.stdout)
      assert.ok(m !== null, result.stdout)
      // The windows did reach records and decode them, not only garbage.
      assert.ok(Number(m[1]) > ITERATIONS && Number(m[2]) > ITERATIONS, result.stdout)
    })
  }
})
