// pg_rewind's t/001_basic.pl from a stopped source directory: local mode (with the refusals of a
// running target and source, and a dry run) and archive mode (target WAL only in the archive, -c).

import { describe, test } from 'node:test'
import { majorsUnderTest } from '../kit/index.js'
import { basicScenario } from './scenarios.js'

for (const major of majorsUnderTest()) {
  describe(`PostgreSQL ${major}: 001 basic`, () => {
    test('local', () => basicScenario(major, 'local'))
    test('archive (-c, target WAL only in the archive)', () => basicScenario(major, 'archive'))
  })
}
