// What apply writes of a fetched chunk: runs of changed blocks are fetched with their small gaps,
// and only the changed blocks (and a copy-tail's tail, and whole copies) are written.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { changedParts, coalesce, maxGapBlocks } from '../../src/rewind/apply.js'
import type { PlanEntry } from '../../src/rewind/plan.js'

const B = 8192

function entry(action: PlanEntry['action'], blocks: Array<[number, number]>, sizes: { source: number; target: number }): PlanEntry {
  return {
    path: 'base/5/16384',
    isRelFile: true,
    action,
    blocks,
    bytes: 0,
    source: { type: 'file', size: sizes.source },
    target: { type: 'file', size: sizes.target },
  }
}

describe('apply', () => {
  test('a coalesced run writes only its changed blocks', () => {
    const e = entry(
      'none',
      [
        [0, 2],
        [5, 1],
        [9, 3],
      ],
      { source: 20 * B, target: 20 * B },
    )
    const [run] = coalesce(e.blocks, maxGapBlocks({ kind: 'local' }))
    assert.deepEqual(run, [0, 12])
    // From a server, gaps are not fetched.
    assert.deepEqual(coalesce(e.blocks, maxGapBlocks({ kind: 'server' })), [
      [0, 2],
      [5, 1],
      [9, 3],
    ])
    assert.deepEqual(changedParts(e, B, 0, 12 * B), [
      [0, 2 * B],
      [5 * B, B],
      [9 * B, 3 * B],
    ])
  })

  test('chunks that cut a run in the middle (1 MiB chunks of a server source) write their share', () => {
    const e = entry(
      'none',
      [
        [0, 200],
        [300, 10],
      ],
      { source: 400 * B, target: 400 * B },
    )
    assert.deepEqual(changedParts(e, B, 128 * B, 128 * B), [[128 * B, 72 * B]])
    assert.deepEqual(changedParts(e, B, 256 * B, 128 * B), [[300 * B, 10 * B]])
    assert.deepEqual(changedParts(e, B, 201 * B, 50 * B), [])
  })

  test('copy-tail: the tail whole, the blocks before it only where changed, also in one merged chunk', () => {
    const e = entry(
      'copy-tail',
      [
        [1, 1],
        [7, 1],
      ],
      { source: 12 * B, target: 8 * B },
    )
    assert.deepEqual(changedParts(e, B, 7 * B, 5 * B), [[7 * B, 5 * B]])
    assert.deepEqual(changedParts(e, B, 0, 12 * B), [
      [B, B],
      [7 * B, 5 * B],
    ])
    assert.deepEqual(changedParts(e, B, 8 * B, 4 * B), [[8 * B, 4 * B]])
  })

  test('a whole-file copy is written whole', () => {
    const e = entry('copy', [], { source: 3 * B, target: 0 })
    assert.deepEqual(changedParts(e, B, 0, 3 * B), [[0, 3 * B]])
  })
})
