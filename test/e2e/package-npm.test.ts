// The npm package as a user gets it: `npm pack`, then installed into an empty directory with
// install scripts disabled and no compiler on the PATH. It must hold the prebuilt native WAL scan
// for linux-x64 and linux-arm64 (built from the current native/), rewind for real with the native
// scan (not the JavaScript fallback), and run `walrewind demo`, which finds no PostgreSQL of its
// own there: it says what it needs, then runs on the one named with --pg-bindir.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { binDir, Kit, majorsUnderTest } from '../kit/index.js'
import { startAsStandbyAndCompare } from './rewind-harness.js'
import {
  assertRewound,
  BUILD_TOOLS,
  CHECKOUT,
  nodeOnlyBin,
  npm,
  onPath,
  openToAll,
  packageTestMajor,
  rewindWith,
  scanLine,
} from './package-harness.js'

const major = packageTestMajor(majorsUnderTest())

describe('the npm package, installed without a compiler or install scripts', () => {
  let kit: Kit
  let tarball: string
  let installDir: string
  let bin: string
  let env: Record<string, string>

  before(async () => {
    kit = await Kit.create('package-npm')
    const work = path.join(kit.baseDir, 'package')
    fs.mkdirSync(work, { mode: 0o755 })
    env = { PATH: nodeOnlyBin(path.join(work, 'bin')) }
    for (const tool of BUILD_TOOLS) assert.ok(!onPath(tool, env['PATH']!), `${tool} is on the test's PATH`)
  })
  after(async () => {
    await kit?.cleanup()
  })

  it('packs the prebuilt native scan for linux-x64 and linux-arm64, made from the current native/', (t) => {
    const check = spawnSync(process.execPath, [path.join(CHECKOUT, 'scripts', 'prebuild.js'), '--check'], { encoding: 'utf8' })
    assert.equal(check.status, 0, check.stderr)
    // --ignore-scripts: prepare would rebuild dist/ under the other tests running now.
    const out = npm(['pack', '--ignore-scripts', '--json', `--pack-destination=${path.join(kit.baseDir, 'package')}`], { cwd: CHECKOUT })
    const [info] = JSON.parse(out) as Array<{ filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> }>
    assert.ok(info)
    tarball = path.join(kit.baseDir, 'package', path.basename(info.filename))
    const files = info.files.map((f) => f.path)
    for (const arch of ['x64', 'arm64'])
      assert.ok(files.includes(`prebuilds/linux-${arch}/walrewind.glibc.node`), `no linux-${arch} prebuild in ${files.join(', ')}`)
    assert.ok(files.includes('bin/walrewind.js') && files.includes('dist/src/cli/main.js') && files.includes('scripts/build-native.js'))
    assert.ok(
      !files.some((f) => f.startsWith('dist/test/') || f.startsWith('build/') || f.startsWith('exe/') || f.endsWith('.map')),
      `unexpected files packed: ${files.filter((f) => /^(dist\/test|build|exe)\/|\.map$/.test(f)).join(', ')}`,
    )
    // The prebuilt binaries are what they claim: ELF shared objects for x86-64 (62) and AArch64 (183).
    for (const [arch, machine] of [
      ['x64', 62],
      ['arm64', 183],
    ] as const) {
      const elf = fs.readFileSync(path.join(CHECKOUT, 'prebuilds', `linux-${arch}`, 'walrewind.glibc.node'))
      assert.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF')
      assert.equal(elf.readUInt16LE(18), machine, `prebuilds/linux-${arch} is for machine ${elf.readUInt16LE(18)}`)
    }
    t.diagnostic(`package: ${info.size} bytes packed, ${info.unpackedSize} bytes unpacked, ${files.length} files`)
  })

  it('installs into an empty directory with --ignore-scripts and no compiler on the PATH', (t) => {
    installDir = path.join(kit.baseDir, 'package', 'install')
    fs.mkdirSync(installDir, { mode: 0o755 })
    fs.writeFileSync(path.join(installDir, 'package.json'), JSON.stringify({ name: 'walrewind-install-test', private: true }))
    const started = Date.now()
    npm(['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', tarball], {
      cwd: installDir,
      env: { ...process.env, PATH: env['PATH']! },
    })
    t.diagnostic(`npm install took ${Date.now() - started} ms`)
    openToAll(installDir)
    const pkg = path.join(installDir, 'node_modules', 'walrewind')
    assert.ok(!fs.existsSync(path.join(pkg, 'build')), 'something was compiled')
    bin = path.join(installDir, 'node_modules', '.bin', 'walrewind')
    assert.ok(fs.existsSync(bin))
  })

  it(`rewinds for real with the prebuilt native scan (PostgreSQL ${major})`, async () => {
    const { run, target, source } = await rewindWith(kit, major, bin, 'remote', env)
    assertRewound(run, bin)
    assert.match(scanLine(run.stderr), /checked by: native window scan, .*\(prebuilt, prebuilds\/linux-x64\)/)
    await startAsStandbyAndCompare(target, source, 'remote')
  })

  it('walrewind demo says what it needs when it finds no PostgreSQL, then runs with --pg-bindir', async (t) => {
    // Its clusters go under the kit's directory, where the suite's leak check looks.
    const tmp = await kit.makeDir('demo-tmp')
    const demoEnv = { ...env, TMPDIR: tmp }
    // Where the demo looks besides the PATH (which here holds only node): the refusal is checked
    // for a major that no PostgreSQL there has (the host may have one of its own).
    const versionDirs = (parent: string) => (fs.existsSync(parent) ? fs.readdirSync(parent).map((v) => path.join(parent, v)) : [])
    const hostMajors = new Set(
      [
        ...versionDirs('/usr/lib/postgresql'),
        ...versionDirs('/usr/local/lib/postgresql'),
        ...versionDirs('/usr').filter((d) => /\/pgsql-\d+$/.test(d)),
        '/usr/local/pgsql',
      ].flatMap((dir) => {
        const v = spawnSync(path.join(dir, 'bin', 'postgres'), ['-V'], { encoding: 'utf8' })
        const m = /\(PostgreSQL\) (\d+)/.exec(v.stdout ?? '')
        return m ? [Number(m[1])] : []
      }),
    )
    const absent = [13, 14, 15, 16, 17, 18].find((m) => !hostMajors.has(m))
    assert.ok(absent !== undefined, 'the host has PostgreSQL 13 to 18 all installed: no major left to find missing')
    const none = await kit.run(bin, ['demo', `--major=${absent}`], { env: demoEnv })
    assert.equal(none.code, 1, none.stderr)
    assert.match(
      none.stderr,
      new RegExp(`needs PostgreSQL's server programs \\(initdb, pg_ctl and postgres\\) of PostgreSQL ${absent}, and found none`),
    )
    assert.match(none.stderr, /--pg-bindir=/)
    const started = Date.now()
    const demo = await kit.run(bin, ['demo', `--major=${major}`, `--pg-bindir=${binDir(major)}`], { env: demoEnv, timeoutMs: 240_000 })
    const out = demo.stdout + demo.stderr
    assert.equal(demo.code, 0, out)
    assert.match(out, new RegExp(`PostgreSQL ${major}\\.\\d+ from .* \\(--pg-bindir\\)`))
    assert.match(out, /timeline 4 forked from timeline 2/)
    for (const node of ['node1', 'node2', 'node4']) {
      assert.match(out, new RegExp(`${node}: diverged at [0-9A-F]+/[0-9A-F]+ on timeline \\d+; copied`))
      assert.match(out, new RegExp(`${node}: streaming from node3, data identical`))
    }
    assert.match(out, /done: 3 nodes rewound/)
    assert.deepEqual(fs.readdirSync(tmp), [], 'the demo left files behind')
    t.diagnostic(`demo from the installed package: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  })
})
