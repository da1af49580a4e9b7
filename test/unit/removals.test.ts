// The removal queue of apply.ts: one at a time until widened, an `alone` removal after every one
// before it and with nothing beside it, the first failure reported after the running ones end.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { RemovalQueue } from '../../src/rewind/removals.js'

/** A removal that ends when `release` is called; logs its start and end. */
function gated(log: string[], name: string): { run: () => Promise<void>; release: (err?: Error) => void } {
  let settle: (err?: Error) => void = () => {}
  const done = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve())
  })
  return {
    run: async () => {
      log.push(`start ${name}`)
      await done
      log.push(`end ${name}`)
    },
    release: (err) => settle(err),
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('RemovalQueue', () => {
  test('one at a time, then as many as widened to', async () => {
    const log: string[] = []
    const queue = new RemovalQueue()
    const r = ['a', 'b', 'c', 'd'].map((name) => gated(log, name))
    for (const x of r) queue.add(x.run)
    await tick()
    assert.deepEqual(log, ['start a'])
    queue.widen(3)
    await tick()
    assert.deepEqual(log, ['start a', 'start b', 'start c'])
    r[1]!.release()
    await tick()
    assert.deepEqual(log.slice(3), ['end b', 'start d'])
    for (const x of r) x.release()
    await queue.settled()
    assert.equal(log.filter((line) => line.startsWith('end')).length, 4)
  })

  test('an alone removal waits for the ones before it, and the next waits for it', async () => {
    const log: string[] = []
    const queue = new RemovalQueue()
    queue.widen(4)
    const [a, b, dir, c] = ['a', 'b', 'dir', 'c'].map((name) => gated(log, name))
    queue.add(a!.run)
    queue.add(b!.run)
    queue.add(dir!.run, { alone: true })
    queue.add(c!.run)
    await tick()
    assert.deepEqual(log, ['start a', 'start b'])
    a!.release()
    await tick()
    assert.ok(!log.includes('start dir'), 'the directory went before a file in it was removed')
    b!.release()
    await tick()
    assert.deepEqual(log.slice(-1), ['start dir'])
    assert.ok(!log.includes('start c'))
    dir!.release()
    await tick()
    assert.deepEqual(log.slice(-2), ['end dir', 'start c'])
    c!.release()
    await queue.settled()
  })

  test('the first failure, once the running removals end; nothing starts after it', async () => {
    const log: string[] = []
    const queue = new RemovalQueue()
    queue.widen(2)
    const [a, b, c] = ['a', 'b', 'c'].map((name) => gated(log, name))
    queue.add(a!.run)
    queue.add(b!.run)
    queue.add(c!.run)
    await tick()
    a!.release(new Error('EACCES a'))
    let settled = false
    const result = queue.settled().finally(() => {
      settled = true
    })
    await tick()
    assert.equal(settled, false, 'settled before b ended')
    b!.release()
    await assert.rejects(result, /EACCES a/)
    assert.ok(!log.includes('start c'), 'a removal started after a failure')
  })

  test('settled with nothing added', async () => {
    await new RemovalQueue().settled()
  })
})
