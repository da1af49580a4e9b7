#!/usr/bin/env node
// The suite runner (`npm test` = `tsc -p . && node test/run.js`): runs the compiled unit and e2e
// test files with `node --test`, then fails the run if a PostgreSQL server started under the
// suite's tmp root is still alive. Plain JavaScript, so it runs before and without a build step.
//
//   node test/run.js [name-filter ...] [--node-test-option ...]
//   env: WALREWIND_TEST_CONCURRENCY (files in parallel, default 2), WALREWIND_TEST_MAJORS,
//        WALREWIND_TEST_TIMEOUT_MS (per test, default 20 min), WALREWIND_KEEP_TMP=1

import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const testDirs = ['dist/test/unit', 'dist/test/e2e']

const args = process.argv.slice(2)
const filters = args.filter((arg) => !arg.startsWith('--'))
const nodeOptions = args.filter((arg) => arg.startsWith('--'))

/** Every *.test.js below dir, sorted. */
function findTests(dir) {
  if (!fs.existsSync(dir)) return []
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.test.js'))
    .map((entry) => path.join(entry.parentPath ?? entry.path, entry.name))
    .sort()
}

const files = testDirs
  .flatMap((dir) => findTests(path.join(root, dir)))
  .filter((file) => filters.length === 0 || filters.some((filter) => path.relative(root, file).includes(filter)))

if (files.length === 0) {
  console.log(`no test files${filters.length ? ` matching ${filters.join(' ')}` : ''} under ${testDirs.join(', ')} (did tsc run?)`)
  console.log('0 passed, 1 failed')
  process.exit(1)
}

// Every kit of this run lives under one root, so leftovers can be found afterwards. It must be
// traversable by the unprivileged user the servers run as.
const suiteRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-suite-'))
fs.chmodSync(suiteRoot, 0o755)

const concurrency = Number(process.env.WALREWIND_TEST_CONCURRENCY || 2)
const timeoutMs = Number(process.env.WALREWIND_TEST_TIMEOUT_MS || 20 * 60_000)
const nodeArgs = [
  '--test',
  `--test-concurrency=${concurrency}`,
  `--test-timeout=${timeoutMs}`,
  '--test-reporter=spec',
  ...nodeOptions,
  ...files,
]
console.log(`running ${files.length} test file(s), ${concurrency} at a time, test root ${suiteRoot}`)

// Ctrl-C reaches the test processes directly; this one waits for them and still checks for leaks.
process.on('SIGINT', () => {})

const child = spawn(process.execPath, nodeArgs, {
  cwd: root,
  env: { ...process.env, WALREWIND_TEST_ROOT: suiteRoot },
  stdio: ['ignore', 'pipe', 'inherit'],
})
let recent = ''
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  recent = (recent + chunk.toString('utf8')).slice(-8192)
})
const status = await new Promise((resolve) => {
  child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)))
})

const counts = summary(recent)
const leaks = findLeakedServers(suiteRoot)
if (leaks.length === 0) {
  console.log(`leak check: ok, no PostgreSQL server left running under ${suiteRoot}`)
  if (process.env.WALREWIND_KEEP_TMP !== '1') fs.rmSync(suiteRoot, { recursive: true, force: true })
} else {
  console.log(`leak check: FAILED, ${leaks.length} PostgreSQL process(es) still running under ${suiteRoot}:`)
  for (const leak of leaks) console.log(`  pid ${leak.pid} ${leak.what} (${leak.dir})`)
  stopLeakedServers(suiteRoot)
  console.log(`  sent SIGQUIT to the postmasters named in their postmaster.pid; kept ${suiteRoot} for inspection`)
}

// The leak check counts as one more check, so that a red run never ends on "0 failed"; so does a
// non-zero exit of node --test without a failed test (a crash outside any test).
const testsFailed = counts ? counts.fail + counts.cancelled : 0
const passed = (counts?.pass ?? 0) + (leaks.length === 0 ? 1 : 0)
const failed = testsFailed + (leaks.length === 0 ? 0 : 1) + (status !== 0 && testsFailed === 0 ? 1 : 0)
console.log(`${passed} passed, ${failed} failed`)
process.exit(status !== 0 || leaks.length > 0 ? 1 : 0)

/** The last summary node's reporter printed ("ℹ pass 3" for spec, "# pass 3" for tap), or null. */
function summary(text) {
  const count = (name) => {
    const matches = [...text.matchAll(new RegExp(`^(?:ℹ|#) ${name} (\\d+)\\s*$`, 'gm'))]
    const last = matches[matches.length - 1]
    return last ? Number(last[1]) : null
  }
  const pass = count('pass')
  const fail = count('fail')
  if (pass === null || fail === null) return null
  return { pass, fail, cancelled: count('cancelled') ?? 0 }
}

/**
 * PostgreSQL processes working under `dir`: every postgres process (postmaster or child) has its
 * data directory as cwd. Found through /proc, never by signalling a name.
 */
function findLeakedServers(dir) {
  const leaks = []
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const comm = fs.readFileSync(`/proc/${name}/comm`, 'utf8').trim()
      if (comm !== 'postgres' && comm !== 'postmaster') continue
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8')
      if (stat[stat.lastIndexOf(')') + 2] === 'Z') continue
      const cwd = fs.readlinkSync(`/proc/${name}/cwd`)
      if (cwd !== dir && !cwd.startsWith(`${dir}/`)) continue
      const what = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')
      leaks.push({ pid: Number(name), what, dir: cwd })
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return leaks
}

/** SIGQUIT (immediate shutdown) to each postmaster named by a postmaster.pid under `dir`. */
function stopLeakedServers(dir) {
  const pidFiles = fs.readdirSync(dir, { recursive: true }).filter((file) => path.basename(String(file)) === 'postmaster.pid')
  for (const file of pidFiles) {
    const dataDir = path.dirname(path.join(dir, String(file)))
    try {
      const pid = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0])
      if (fs.readlinkSync(`/proc/${pid}/cwd`) === fs.realpathSync(dataDir)) process.kill(pid, 'SIGQUIT')
    } catch {
      // not running
    }
  }
}
