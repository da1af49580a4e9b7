#!/usr/bin/env node
// npm's install step, the last resort for the native WAL scan (native/). The package ships it
// prebuilt for linux-x64 and linux-arm64 (prebuilds/, found at run time by node-gyp-build: see
// src/pg/native.ts), so on those nothing is compiled and no compiler is needed; installing with
// scripts disabled changes nothing there. Elsewhere (another platform or libc), or in a checkout
// whose native/ no longer matches the prebuilt binaries, this compiles it with node-gyp. walrewind
// works without it (the reader then checks and decodes each record in JavaScript, at about half
// the speed on WAL of small records), so a machine without a C compiler gets a warning, not a
// failed install.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { sourcesHash } from './native-sources.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** The prebuilt binary for this platform if it loads and was built from these sources, else why not. */
function usablePrebuild() {
  let file
  try {
    const nodeGypBuild = createRequire(import.meta.url)('node-gyp-build')
    process.env.PREBUILDS_ONLY = '1'
    file = nodeGypBuild.resolve(root)
  } catch {
    return { ok: false, why: `no prebuilt binary for ${process.platform}-${process.arch}` }
  } finally {
    delete process.env.PREBUILDS_ONLY
  }
  // A checkout whose native/ changed since the prebuilt binaries were made (scripts/prebuild.js
  // records what they were built from): build the current sources instead.
  const recorded = readOrNull(path.join(root, 'prebuilds', 'SOURCES.sha256'))
    ?.trim()
    .split(/\s+/)[0]
  if (fs.existsSync(path.join(root, 'native')) && recorded !== sourcesHash(root)) {
    return { ok: false, why: 'native/ differs from the sources of the prebuilt binaries' }
  }
  const probe = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', file], { encoding: 'utf8' })
  if (probe.status !== 0) return { ok: false, why: `${path.relative(root, file)} does not load: ${probe.stderr.split('\n')[0]}` }
  return { ok: true, file }
}

function readOrNull(file) {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return null
  }
}

const prebuild = usablePrebuild()
if (!prebuild.ok) {
  const nodeGyp = process.env.npm_config_node_gyp
  const command = nodeGyp ? [process.execPath, [nodeGyp, 'rebuild']] : ['node-gyp', ['rebuild']]
  const result = spawnSync(command[0], command[1], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
  if (result.status !== 0) {
    const why =
      result.error?.message ??
      result.stderr
        .split('\n')
        .filter((l) => /ERR!/.test(l))
        .slice(0, 3)
        .join('\n')
    console.warn(`walrewind: the native WAL scan was not built (${prebuild.why}); WAL is checked in JavaScript instead (slower).\n${why}`)
  }
}
