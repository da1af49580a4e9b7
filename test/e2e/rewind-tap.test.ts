// pg_rewind's t/002_databases.pl, t/003_extrafiles.pl, t/004_pg_xlog_symlink.pl and
// t/005_same_timeline.pl, on every major, from a stopped source directory.

import { describe, test } from 'node:test'
import { majorsUnderTest } from '../kit/index.js'
import { databasesScenario, extraFilesScenario, sameTimelineScenario, walSymlinkScenario } from './scenarios.js'

for (const major of majorsUnderTest()) {
  describe(`PostgreSQL ${major}: pg_rewind TAP 002-005, local`, () => {
    test('002 databases, group access', () => databasesScenario(major, 'local'))
    test('003 extra files', () => extraFilesScenario(major, 'local'))
    test('004 pg_wal symlink', () => walSymlinkScenario(major, 'local'))
    test('005 same timeline', () => sameTimelineScenario(major))
  })
}
