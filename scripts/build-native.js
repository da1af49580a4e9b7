#!/usr/bin/env node
// npm's install step: builds the optional native addon (native/: the WAL reader's window scan) with
// node-gyp. walrewind works without it (the reader then checks and decodes each record in
// JavaScript, at about half the speed on WAL of small records), so a machine without a C compiler
// gets a warning, not a failed install.
import { spawnSync } from 'node:child_process'

const nodeGyp = process.env.npm_config_node_gyp
const command = nodeGyp ? [process.execPath, [nodeGyp, 'rebuild']] : ['node-gyp', ['rebuild']]
const result = spawnSync(command[0], command[1], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
if (result.status !== 0) {
  const why = result.error?.message ?? result.stderr.split('\n').filter((l) => /ERR!/.test(l)).slice(0, 3).join('\n')
  console.warn(`walrewind: the native WAL scan was not built; WAL is checked in JavaScript instead (slower).\n${why}`)
}
