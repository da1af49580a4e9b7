// `walrewind timelines` NODE arguments: a NAME= label or a connection string, told apart with
// conninfo's keyword list (issue 17), so that any libpq keyword starts a connection string.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseNodeArg } from '../../src/cli/commands/timelines.js'

describe('timelines: parseNodeArg', () => {
  it('reads a keyword=value string as a connection string, whatever libpq keyword comes first', () => {
    for (const arg of [
      'host=a port=5433',
      'target_session_attrs=any host=a',
      'sslrootcert=system host=a',
      'load_balance_hosts=random host=a,b',
      'requiressl=1 host=a',
      'servicefile=/etc/s service=x',
    ]) {
      assert.deepEqual(parseNodeArg(arg, 2), { name: 'node3', spec: arg }, arg)
    }
  })
  it('reads NAME= as a label, before a directory or a connection string', () => {
    assert.deepEqual(parseNodeArg('primary=host=a port=5433', 0), { name: 'primary', spec: 'host=a port=5433' })
    assert.deepEqual(parseNodeArg('old=/data/old', 0), { name: 'old', spec: '/data/old' })
    assert.deepEqual(parseNodeArg('n1=postgresql://u@h/db', 0), { name: 'n1', spec: 'postgresql://u@h/db' })
  })
  it('names a URI node<N> and a directory after itself', () => {
    assert.deepEqual(parseNodeArg('postgresql://u@h/db?target_session_attrs=any', 0), {
      name: 'node1',
      spec: 'postgresql://u@h/db?target_session_attrs=any',
    })
    assert.deepEqual(parseNodeArg('/data/pg1', 1), { name: 'pg1', spec: '/data/pg1' })
  })
})
