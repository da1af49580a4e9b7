#!/usr/bin/env node
// `npm run build:exe`: walrewind as one self-contained executable for Linux, which runs on a host
// without Node.js (Node.js's single executable applications). Its last line of output is the path
// of the file it wrote.
//
//   node scripts/build-exe.js [--arch=x64|arm64] [--node=FILE] [--out-dir=DIR]
//
// 1. esbuild bundles scripts/exe/entry.js (the CLI) with everything it imports into one CommonJS
//    file. The native module cannot live inside it: walrewind's WAL scan and CRC-32C (the prebuilt
//    binary of prebuilds/linux-<arch>) goes in as a SEA asset, and the bundle loads it through
//    loadSeaAddon (src/pg/native.ts: written to a private temporary file, loaded,
//    removed). pg-protocol's parser, which src/source/server-wire.ts loads at run time through pg's
//    own require, is bundled instead. The package's name and version go in as
//    WALREWIND_PACKAGE_JSON (there is no package.json beside an executable).
// 2. node --experimental-sea-config writes the preparation blob (with V8's code cache when the
//    executable is built for this machine's architecture; a blob for another one must not have it).
// 3. postject injects the blob into a copy of the node binary (symbols stripped when a strip for
//    that architecture is there): for this architecture the node running this script, for another
//    one the node binary of the npm package node-linux-<arch> of the same version.
//
// Writes exe/linux-<arch>/walrewind (or DIR/walrewind).

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { recordedHash, sourcesHash } from './prebuild.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const SENTINEL_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
const ARCHES = { x64: { gnu: 'x64', strip: 'strip' }, arm64: { gnu: 'arm64', strip: 'aarch64-linux-gnu-strip' } }

function fail(message) {
  console.error(`build-exe: ${message}`)
  process.exit(1)
}

function option(name) {
  const arg = process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))
  return arg === undefined ? null : arg.slice(name.length + 3)
}

function run(cmd, args, opts = {}) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', ...opts })
  if (result.status !== 0) fail(`${cmd} ${args.join(' ')} failed: ${result.error?.message ?? ''}${result.stderr ?? ''}`)
  return result.stdout
}

function have(program) {
  return spawnSync('sh', ['-c', 'command -v "$1" >/dev/null', 'sh', program]).status === 0
}

/** An npm package's files (npm pack, by name and exact version), kept in exe/.cache. */
function npmPackage(name, version) {
  const dir = path.join(ROOT, 'exe', '.cache', `${name.replace('/', '+')}@${version}`)
  if (fs.existsSync(path.join(dir, 'package', 'package.json'))) return path.join(dir, 'package')
  fs.mkdirSync(dir, { recursive: true })
  console.log(`fetching ${name}@${version} with npm pack`)
  const file = run('npm', ['pack', '--silent', `${name}@${version}`], { cwd: dir })
    .trim()
    .split('\n')
    .pop()
  run('tar', ['xzf', file], { cwd: dir })
  fs.rmSync(path.join(dir, file))
  return path.join(dir, 'package')
}

/** The esbuild plugin for what a bundle inside an executable does differently. */
function seaPlugin() {
  return {
    name: 'walrewind-sea',
    setup(build) {
      // pg-protocol's parser, loaded through pg's require at run time: a plain require here, which
      // esbuild bundles (the same module pg itself uses). Fails the build if the code changed.
      build.onLoad({ filter: /[/\\]src[/\\]source[/\\]server-wire\.ts$/ }, (args) => {
        const text = fs.readFileSync(args.path, 'utf8')
        const loader = /const requireFromPg = createRequire\(createRequire\(import\.meta\.url\)\.resolve\('pg'\)\)\n/
        const use = "requireFromPg('pg-protocol/dist/parser.js')"
        if (!loader.test(text) || !text.includes(use)) {
          throw new Error('src/source/server-wire.ts no longer loads pg-protocol as scripts/build-exe.js expects: update seaPlugin there')
        }
        return { contents: text.replace(loader, '').replace(use, "require('pg-protocol/dist/parser.js')"), loader: 'ts' }
      })
    },
  }
}

async function main() {
  const arch = option('arch') ?? process.arch
  const target = ARCHES[arch]
  if (process.platform !== 'linux' || !target) fail(`builds for linux-x64 and linux-arm64 only (asked: ${process.platform}-${arch})`)
  const [major, minor] = process.versions.node.split('.').map(Number)
  if (major < 20 || (major === 20 && minor < 12))
    fail(`Node.js ${process.versions.node} cannot embed the native modules: SEA assets need 20.12 or newer`)
  const native = arch === process.arch
  const outDir = path.resolve(option('out-dir') ?? path.join(ROOT, 'exe', `linux-${arch}`))
  const exe = path.join(outDir, 'walrewind')

  // The WAL scan: the prebuilt binary, which must be of the current sources.
  const addon = path.join(ROOT, 'prebuilds', `linux-${arch}`, 'walrewind.glibc.node')
  if (!fs.existsSync(addon)) fail(`${path.relative(ROOT, addon)} is missing: run npm run build:prebuilds`)
  if (recordedHash() !== sourcesHash()) fail('prebuilds/ were built from other sources than native/: run npm run build:prebuilds')

  const nodeBinary =
    option('node') ?? (native ? process.execPath : path.join(npmPackage(`node-linux-${arch}`, process.versions.node), 'bin', 'node'))
  if (!fs.existsSync(nodeBinary)) fail(`${nodeBinary}: no such node binary`)

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-exe-'))
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
    const bundle = path.join(work, 'walrewind.cjs')
    const esbuild = require('esbuild')
    await esbuild.build({
      entryPoints: [path.join(ROOT, 'scripts', 'exe', 'entry.js')],
      outfile: bundle,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      // import.meta.url of a bundled module: the executable (createRequire needs a file; only
      // node: built-ins are loaded through it inside an executable).
      banner: { js: "const __walrewind_import_meta_url = require('node:url').pathToFileURL(process.execPath).href;" },
      define: {
        'import.meta.url': '__walrewind_import_meta_url',
        WALREWIND_PACKAGE_JSON: JSON.stringify(
          JSON.stringify({ name: pkg.name, version: pkg.version, homepage: pkg.homepage, bugs: pkg.bugs }),
        ),
      },
      external: ['pg-native'],
      plugins: [seaPlugin()],
      logLevel: 'warning',
    })

    const blob = path.join(work, 'sea-prep.blob')
    const config = path.join(work, 'sea-config.json')
    fs.writeFileSync(
      config,
      JSON.stringify(
        {
          main: bundle,
          output: blob,
          disableExperimentalSEAWarning: true,
          useCodeCache: native,
          assets: { 'walrewind_native.node': addon },
        },
        null,
        2,
      ),
    )
    run(process.execPath, ['--experimental-sea-config', config])

    fs.mkdirSync(outDir, { recursive: true })
    const partial = `${exe}.partial`
    fs.copyFileSync(nodeBinary, partial)
    fs.chmodSync(partial, 0o755)
    if (have(target.strip)) run(target.strip, ['--strip-all', partial])
    else console.log(`${target.strip} not found: the node binary keeps its symbols (larger file)`)
    const { inject } = require('postject')
    // postject's LIEF complains about node's many note sections; nothing is wrong.
    const warn = console.warn
    console.warn = () => {}
    try {
      await inject(partial, 'NODE_SEA_BLOB', fs.readFileSync(blob), { sentinelFuse: SENTINEL_FUSE })
    } finally {
      console.warn = warn
    }
    fs.renameSync(partial, exe)
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }

  if (native) {
    const check = spawnSync(exe, ['--version'], { encoding: 'utf8' })
    if (check.status !== 0 || !/^walrewind /.test(check.stdout)) fail(`${exe} --version failed: ${check.stdout}${check.stderr}`)
  }
  console.log(
    `linux-${arch} executable: ${(fs.statSync(exe).size / 1048576).toFixed(1)} MiB (node ${process.versions.node}${native ? '' : ', not run here'})`,
  )
  console.log(exe)
}

main().catch((err) => fail(err?.stack ?? String(err)))
