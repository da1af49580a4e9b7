#!/usr/bin/env node
// `npm run build:prebuilds`: builds the native WAL scan (native/, binding.gyp) for the platforms the npm
// package ships it for, with prebuildify, into prebuilds/<platform>-<arch>/ where node-gyp-build
// finds it at run time (src/pg/native.ts). They are committed (two stripped files of a few tens of
// KB): the package must install without a compiler, and `npm pack` on a clean checkout (CI) has no
// cross compiler. prebuilds/SOURCES.sha256 records which sources they were built from; the package
// test fails when native/ changed and this was not run again.
//
//   node scripts/prebuild.js [--arch=x64,arm64] [--check]
//
// linux-x64 is built with the host's compiler, linux-arm64 with gcc-aarch64-linux-gnu (Debian:
// apt-get install gcc-aarch64-linux-gnu). N-API, so one file serves every Node.js version >= 20.
// The build runs in a scratch copy of the sources, so a checkout's own build/ is left alone.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { sourcesHash as nativeSourcesHash } from './native-sources.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const PREBUILDS = path.join(ROOT, 'prebuilds')
const HASH_FILE = path.join(PREBUILDS, 'SOURCES.sha256')

/** What a prebuild is made of (scripts/native-sources.js). */
export function sourcesHash(root = ROOT) {
  return nativeSourcesHash(root)
}

/** The hash the committed prebuilds were made from, or null. */
export function recordedHash() {
  try {
    return fs.readFileSync(HASH_FILE, 'utf8').trim().split(/\s+/)[0] ?? null
  } catch {
    return null
  }
}

const TOOLCHAINS = {
  x64: { env: {}, strip: 'strip', needs: ['cc', 'strip'] },
  arm64: {
    env: { CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++', LINK: 'aarch64-linux-gnu-gcc', AR: 'aarch64-linux-gnu-ar' },
    strip: 'aarch64-linux-gnu-strip',
    needs: ['aarch64-linux-gnu-gcc', 'aarch64-linux-gnu-strip'],
  },
}

function have(program) {
  return spawnSync('sh', ['-c', `command -v "$1" >/dev/null`, 'sh', program]).status === 0
}

/** npm's own node-gyp (npm run sets npm_config_node_gyp; else next to this node's npm). */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(path.dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ]
  const found = candidates.find((file) => file && fs.existsSync(file))
  if (!found) throw new Error('node-gyp not found (it comes with npm)')
  return found
}

/** Where node's headers are: npm's nodedir setting, else the prefix this node is installed in. */
function nodeDir() {
  const candidates = [process.env.npm_config_nodedir, path.dirname(path.dirname(process.execPath))]
  const found = candidates.find((dir) => dir && fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h')))
  if (!found) throw new Error(`node's headers (include/node/node_api.h) not found under ${candidates.filter(Boolean).join(' or ')}`)
  return found
}

function build(arch, scratch) {
  const toolchain = TOOLCHAINS[arch]
  if (!toolchain) throw new Error(`no toolchain known for ${arch}`)
  const missing = toolchain.needs.filter((program) => !have(program))
  if (missing.length > 0) {
    throw new Error(
      `linux-${arch}: ${missing.join(', ')} not found` + (arch === 'arm64' ? ' (Debian: apt-get install gcc-aarch64-linux-gnu)' : ''),
    )
  }
  const prebuildify = path.join(ROOT, 'node_modules', 'prebuildify', 'bin.js')
  // N-API: built once against this node's headers (no download: the headers installed with node).
  const result = spawnSync(
    process.execPath,
    [
      prebuildify,
      '--napi',
      '--strip',
      '--tag-libc',
      `--target=node@${process.versions.node}`,
      `--arch=${arch}`,
      '--platform=linux',
      `--cwd=${scratch}`,
    ],
    {
      stdio: 'inherit',
      env: {
        ...process.env,
        ...toolchain.env,
        PREBUILD_STRIP_BIN: toolchain.strip,
        PREBUILD_NODE_GYP: nodeGyp(),
        npm_config_nodedir: nodeDir(),
      },
    },
  )
  if (result.status !== 0) throw new Error(`linux-${arch}: prebuildify failed (exit ${result.status})`)
  // A fresh build/ for the next architecture.
  fs.rmSync(path.join(scratch, 'build'), { recursive: true, force: true })
}

function main() {
  const args = process.argv.slice(2)
  if (args.includes('--check')) {
    const want = sourcesHash()
    const got = recordedHash()
    if (got !== want) {
      console.error(
        `prebuilds/ were built from other sources than native/ and binding.gyp now (${got ?? 'none recorded'} != ${want}): run npm run build:prebuilds`,
      )
      process.exit(1)
    }
    console.log(`prebuilds/ match native/ (${want})`)
    return
  }
  const archArg = args.find((a) => a.startsWith('--arch='))
  const arches = archArg ? archArg.slice(7).split(',') : ['x64', 'arm64']
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-prebuild-'))
  try {
    fs.copyFileSync(path.join(ROOT, 'binding.gyp'), path.join(scratch, 'binding.gyp'))
    fs.cpSync(path.join(ROOT, 'native'), path.join(scratch, 'native'), { recursive: true })
    fs.writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'walrewind', private: true }))
    for (const arch of arches) build(arch, scratch)
    for (const arch of arches) {
      const from = path.join(scratch, 'prebuilds', `linux-${arch}`)
      const to = path.join(PREBUILDS, `linux-${arch}`)
      fs.rmSync(to, { recursive: true, force: true })
      fs.mkdirSync(to, { recursive: true })
      for (const name of fs.readdirSync(from)) {
        fs.copyFileSync(path.join(from, name), path.join(to, name))
        fs.chmodSync(path.join(to, name), 0o644)
        console.log(`${path.relative(ROOT, path.join(to, name))}: ${fs.statSync(path.join(to, name)).size} bytes`)
      }
    }
    const complete = ['x64', 'arm64'].every((arch) => fs.existsSync(path.join(PREBUILDS, `linux-${arch}`)))
    if (arches.length === 2 || complete) {
      fs.writeFileSync(HASH_FILE, `${sourcesHash()}  binding.gyp native/*\n`)
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true })
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main()
  } catch (err) {
    console.error(`prebuild: ${err.message}`)
    process.exit(1)
  }
}
