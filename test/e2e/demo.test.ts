// `walrewind demo` end to end, as a newcomer runs it after `npm install`: it must build the family,
// rewind three nodes, verify them, clean up, and say so.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { test } from 'node:test'
import { majorsUnderTest, PROJECT_ROOT } from '../kit/index.js'

function runDemo(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'walrewind.js'), 'demo', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      out += d
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code: code ?? 1, out }))
  })
}

const majors = majorsUnderTest()
const major = majors.includes(18) ? 18 : majors[majors.length - 1]!

test(`walrewind demo (PostgreSQL ${major})`, { timeout: 180_000 }, async () => {
  const started = Date.now()
  const { code, out } = await runDemo([`--major=${major}`])
  assert.equal(code, 0, out)
  assert.match(out, /timeline 4 forked from timeline 2/)
  for (const node of ['node1', 'node2', 'node4']) {
    assert.match(out, new RegExp(`${node}: diverged at [0-9A-F]+/[0-9A-F]+ on timeline \\d+; copied`))
    assert.match(out, new RegExp(`${node}: streaming from node3, data identical`))
  }
  assert.match(out, /done: 3 nodes rewound/)
  assert.ok(Date.now() - started < 120_000, `the demo took ${(Date.now() - started) / 1000} s`)
})
