// BlockMap.addAll: the source's blocks, found by a scan of their own, joined to the target's.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BlockMap } from '../../src/block-map.js'

describe('BlockMap.addAll', () => {
  it('joins the blocks of both maps, growing a shorter bitmap, and leaves the other map as it was', () => {
    const target = new BlockMap()
    target.add('base/5/16384', 1)
    target.add('base/5/16385', 3)
    const source = new BlockMap()
    source.add('base/5/16384', 2)
    source.add('base/5/16384', 700)
    source.add('base/5/16386', 0)
    target.addAll(source)
    assert.deepEqual(target.ranges('base/5/16384'), [
      [1, 2],
      [700, 1],
    ])
    assert.deepEqual(target.ranges('base/5/16385'), [[3, 1]])
    assert.deepEqual(target.ranges('base/5/16386'), [[0, 1]])
    target.add('base/5/16386', 5)
    assert.equal(source.has('base/5/16386', 5), false)
    assert.deepEqual([...source.paths()].sort(), ['base/5/16384', 'base/5/16386'])
  })
})
