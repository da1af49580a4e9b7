// pg_rewind's command line: each getopt and main() rule on its own, then a table of argument vectors
// run through the real pg_rewind 15 binary, whose stderr and exit status walrewind-as-pg_rewind must
// reproduce byte for byte (argument errors come before pg_rewind's root check, so running as root is
// fine). Vectors whose answer differs between pg_rewind 15 and 18 are listed and checked against 18.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { describe, test } from 'node:test'
import {
  formatParseError,
  parseRewindArgs,
  PG_REWIND_LONG_OPTION_NAMES,
  WALREWIND_LONG_OPTIONS,
  type ParsedArgs,
  type RewindArgs,
} from '../../src/cli/rewind-options.js'
import { formatUsage, formatVersion, readPackageInfo } from '../../src/cli/usage.js'

const PG_REWIND_15 = '/usr/lib/postgresql/15/bin/pg_rewind'
const HINT = 'pg_rewind: hint: Try "pg_rewind --help" for more information.\n'
const GOOD = ['-D', '/t', '--source-pgdata', '/s']

/** stderr as walrewind-as-pg_rewind would print it ('' for a run, help or version). */
function stderrOf(argv: string[], context: Parameters<typeof parseRewindArgs>[2] = {}): string {
  const parsed = parseRewindArgs(argv, 'pg_rewind', context)
  return parsed.kind === 'error' ? formatParseError(parsed, 'pg_rewind') : ''
}

function optionsOf(argv: string[]): RewindArgs {
  const parsed = parseRewindArgs(argv, 'pg_rewind')
  assert.equal(parsed.kind, 'run', `expected a run for ${JSON.stringify(argv)}, got ${JSON.stringify(parsed)}`)
  return (parsed as Extract<ParsedArgs, { kind: 'run' }>).options
}

const error = (message: string): string => `pg_rewind: error: ${message}\n${HINT}`

describe('--help and --version', () => {
  test('are recognised only as the first argument', () => {
    assert.equal(parseRewindArgs(['--help'], 'pg_rewind').kind, 'help')
    assert.equal(parseRewindArgs(['-?', '--bogus'], 'pg_rewind').kind, 'help')
    assert.equal(parseRewindArgs(['--version'], 'pg_rewind').kind, 'version')
    assert.equal(parseRewindArgs(['-V', 'junk'], 'pg_rewind').kind, 'version')
    // getopt_long answers --help/--version later on silently; pg_rewind prints only the hint
    assert.equal(stderrOf(['-n', '--help']), HINT)
    assert.equal(stderrOf(['-n', '--version']), HINT)
    assert.equal(stderrOf(['--he']), HINT)
    assert.equal(stderrOf(['--vers']), HINT)
    // -V and -? are not in "cD:nNPR"
    assert.equal(stderrOf(['-n', '-V']), `pg_rewind: invalid option -- 'V'\n${HINT}`)
    assert.equal(stderrOf(['-n', '-?']), `pg_rewind: invalid option -- '?'\n${HINT}`)
  })

  test("usage is pg_rewind 18 usage() word for word, then walrewind's block", () => {
    const pkg = { version: '9.9.9', homepage: 'https://example.org/walrewind', bugs: 'https://example.org/walrewind/issues' }
    const text = formatUsage('pg_rewind', pkg)
    const pg18 = [
      'pg_rewind resynchronizes a PostgreSQL cluster with another copy of the cluster.',
      '',
      'Usage:',
      '  pg_rewind [OPTION]...',
      '',
      'Options:',
      '  -c, --restore-target-wal       use "restore_command" in target configuration to',
      '                                 retrieve WAL files from archives',
      '  -D, --target-pgdata=DIRECTORY  existing data directory to modify',
      '      --source-pgdata=DIRECTORY  source data directory to synchronize with',
      '      --source-server=CONNSTR    source server to synchronize with',
      '  -n, --dry-run                  stop before modifying anything',
      '  -N, --no-sync                  do not wait for changes to be written',
      '                                 safely to disk',
      '  -P, --progress                 write progress messages',
      '  -R, --write-recovery-conf      write configuration for replication',
      '                                 (requires --source-server)',
      '      --config-file=FILENAME     use specified main server configuration',
      '                                 file when running target cluster',
      '      --debug                    write a lot of debug messages',
      '      --no-ensure-shutdown       do not automatically fix unclean shutdown',
      '      --sync-method=METHOD       set method for syncing files to disk',
      '  -V, --version                  output version information, then exit',
      '  -?, --help                     show this help, then exit',
      '',
    ].join('\n')
    assert.ok(text.startsWith(pg18), text)
    for (const option of WALREWIND_LONG_OPTIONS) assert.match(text, new RegExp(`^      --${option.name}\\b`, 'm'))
    assert.ok(
      text.endsWith('\nReport bugs to <https://example.org/walrewind/issues>.\nwalrewind home page: <https://example.org/walrewind>\n'),
    )
    assert.doesNotMatch(text, /pgsql-bugs/)
    // walrewind's own lines stay within 79 columns (pg_rewind 18's -c line is 81, kept verbatim)
    for (const line of text.slice(pg18.length).split('\n')) assert.ok(line.length <= 79, line)
    assert.ok(formatUsage('walrewind', pkg).startsWith('walrewind resynchronizes a PostgreSQL cluster'))
    assert.match(formatUsage('walrewind', pkg), /^ {2}walrewind \[OPTION\]\.\.\.$/m)
    // without bugs/homepage in package.json, no report lines at all
    assert.ok(formatUsage('pg_rewind', { version: '1', homepage: null, bugs: null }).endsWith('default as pg_rewind)\n'))
  })

  test('version text, with the version read from package.json', () => {
    const pkg = readPackageInfo()
    const json = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
    assert.equal(pkg.version, json.version)
    assert.equal(formatVersion('pg_rewind'), `pg_rewind (PostgreSQL) 18.4 (walrewind ${json.version})\n`)
    assert.equal(formatVersion('walrewind'), `walrewind ${json.version} (pg_rewind for PostgreSQL 13-18)\n`)
    const parsed = parseRewindArgs(['--version'], 'pg_rewind')
    assert.deepEqual(parsed, { kind: 'version', text: formatVersion('pg_rewind') })
    // the shape parsers expect: "<prog> (PostgreSQL) X.Y"
    assert.match(formatVersion('pg_rewind'), /^pg_rewind \(PostgreSQL\) \d+\.\d+ /)
  })
})

describe('getopt_long grammar', () => {
  test('defaults', () => {
    assert.deepEqual(optionsOf(GOOD), {
      targetPgdata: '/t',
      source: { kind: 'local', pgdata: '/s' },
      dryRun: false,
      noSync: false,
      progress: false,
      debug: false,
      restoreTargetWal: false,
      ensureShutdown: true,
      writeRecoveryConf: false,
      configFile: null,
      syncMethod: 'fsync',
      json: false,
      jobs: null,
      timeoutSeconds: null,
      postgresBindir: null,
      copyConfigFiles: true,
      requireSourceWal: false,
      replayFrom: null,
      compare: 'wal',
      patchBlocks: 'auto',
    })
  })

  test('every option, long names', () => {
    assert.deepEqual(
      optionsOf([
        '--target-pgdata=/t',
        '--source-server',
        'host=h port=5',
        '--dry-run',
        '--no-sync',
        '--progress',
        '--debug',
        '--restore-target-wal',
        '--no-ensure-shutdown',
        '--write-recovery-conf',
        '--config-file',
        '/c.conf',
        '--sync-method=syncfs',
        '--json',
        '--jobs=8',
        '--source-timeout',
        '30',
        '--postgres-bindir=/usr/lib/postgresql/17/bin',
      ]),
      {
        targetPgdata: '/t',
        source: { kind: 'server', conninfo: 'host=h port=5' },
        dryRun: true,
        noSync: true,
        progress: true,
        debug: true,
        restoreTargetWal: true,
        ensureShutdown: false,
        writeRecoveryConf: true,
        configFile: '/c.conf',
        syncMethod: process.platform === 'linux' ? 'syncfs' : 'fsync',
        json: true,
        jobs: 8,
        timeoutSeconds: 30,
        postgresBindir: '/usr/lib/postgresql/17/bin',
        copyConfigFiles: true,
        requireSourceWal: false,
        replayFrom: null,
        compare: 'wal',
        patchBlocks: 'auto',
      },
    )
  })

  test('short options bundle; -D takes the rest of its word or the next word', () => {
    const o = optionsOf(['-nNPc', '-Dt', '--source-pgdata=/s'])
    assert.deepEqual([o.dryRun, o.noSync, o.progress, o.restoreTargetWal, o.targetPgdata], [true, true, true, true, 't'])
    assert.equal(optionsOf(['-nD', '/t', '--source-pgdata=/s']).targetPgdata, '/t')
    assert.equal(optionsOf(['-nD/t', '--source-pgdata=/s']).targetPgdata, '/t')
    // a value is taken even when it looks like an option
    assert.equal(optionsOf(['-D', '-n', '--source-pgdata=/s']).targetPgdata, '-n')
    assert.equal(optionsOf(['-D', '--', '--source-pgdata=/s']).targetPgdata, '--')
    assert.equal(optionsOf(['--source-pgdata', '--x', '-D/t']).source.kind, 'local')
    assert.equal(optionsOf(['-D/a', '-D/b', '--source-pgdata=/s']).targetPgdata, '/b') // last wins
    assert.equal(optionsOf(['-D', '', '--source-pgdata=']).targetPgdata, '') // empty is given
    assert.equal(stderrOf(['-nx']), `pg_rewind: invalid option -- 'x'\n${HINT}`)
    assert.equal(stderrOf(['-:']), `pg_rewind: invalid option -- ':'\n${HINT}`)
    assert.equal(stderrOf(['-n', '-D']), `pg_rewind: option requires an argument -- 'D'\n${HINT}`)
    assert.equal(stderrOf(['-nD']), `pg_rewind: option requires an argument -- 'D'\n${HINT}`)
  })

  test('long options: =value or next word, unambiguous prefixes', () => {
    assert.equal(optionsOf(['--target=/t', '--source-p', '/s']).targetPgdata, '/t')
    const o = optionsOf([
      '--t',
      '/t',
      '--source-se=h',
      '--dr',
      '--no-s',
      '--no-e',
      '--de',
      '--pro',
      '--res',
      '--w',
      '--c=/c',
      '--sy',
      'fsync',
    ])
    assert.deepEqual(
      [o.dryRun, o.noSync, o.ensureShutdown, o.debug, o.progress, o.restoreTargetWal, o.writeRecoveryConf, o.configFile, o.source],
      [true, true, false, true, true, true, true, '/c', { kind: 'server', conninfo: 'h' }],
    )
    assert.equal(optionsOf(['--target-pgdata=', '--source-pgdata=/s']).targetPgdata, '')
    assert.equal(optionsOf(['--target-pgdata=a=b', '--source-pgdata=/s']).targetPgdata, 'a=b')
  })

  test('getopt complaints name the full option and use argv[0]', () => {
    assert.equal(stderrOf(['--dry=yes']), `pg_rewind: option '--dry-run' doesn't allow an argument\n${HINT}`)
    assert.equal(stderrOf(['--debug=']), `pg_rewind: option '--debug' doesn't allow an argument\n${HINT}`)
    assert.equal(stderrOf(['--target']), `pg_rewind: option '--target-pgdata' requires an argument\n${HINT}`)
    assert.equal(stderrOf(['--foo=bar']), `pg_rewind: unrecognized option '--foo=bar'\n${HINT}`)
    assert.equal(
      stderrOf(['--source=x']),
      `pg_rewind: option '--source=x' is ambiguous; possibilities: '--source-pgdata' '--source-server'\n${HINT}`,
    )
    assert.equal(stderrOf(['--d']), `pg_rewind: option '--d' is ambiguous; possibilities: '--dry-run' '--debug'\n${HINT}`)
    assert.equal(
      stderrOf(['--s']),
      `pg_rewind: option '--s' is ambiguous; possibilities: '--source-pgdata' '--source-server' '--sync-method'\n${HINT}`,
    )
    // an empty name is a prefix of every option: glibc lists them all, in pg_rewind's table order
    assert.equal(
      stderrOf(['--=x']),
      `pg_rewind: option '--=x' is ambiguous; possibilities:${PG_REWIND_LONG_OPTION_NAMES.map((n) => ` '--${n}'`).join('')}\n${HINT}`,
    )
    assert.equal(
      stderrOf(['-x'], { argv0: '/usr/lib/postgresql/18/bin/pg_rewind' }),
      `/usr/lib/postgresql/18/bin/pg_rewind: invalid option -- 'x'\n${HINT}`,
    )
    // the first complaint stops parsing
    assert.equal(stderrOf(['-x', '--foo']), `pg_rewind: invalid option -- 'x'\n${HINT}`)
  })

  test('operands are permuted to the end; -- ends the options', () => {
    assert.equal(stderrOf(['a', ...GOOD, 'b']), error('too many command-line arguments (first is "a")'))
    assert.equal(stderrOf([...GOOD, '--', '-n']), error('too many command-line arguments (first is "-n")'))
    assert.equal(stderrOf(['a', ...GOOD, '--', 'b']), error('too many command-line arguments (first is "a")'))
    assert.equal(stderrOf([...GOOD, '-']), error('too many command-line arguments (first is "-")'))
    assert.equal(parseRewindArgs([...GOOD, '--'], 'pg_rewind').kind, 'run')
    // options after an operand still count
    assert.equal(stderrOf(['a', '-x']), `pg_rewind: invalid option -- 'x'\n${HINT}`)
  })

  test('POSIXLY_CORRECT stops at the first operand, like glibc', () => {
    const env = { POSIXLY_CORRECT: '' }
    assert.equal(stderrOf(['a', '-x'], { env }), error('no source specified (--source-pgdata or --source-server)'))
    assert.equal(stderrOf([...GOOD, 'a', '-x'], { env }), error('too many command-line arguments (first is "a")'))
  })
})

describe('checks after parsing, in pg_rewind 18 order', () => {
  const cases: [string, string[], string][] = [
    ['no source', ['-D', '/t', 'extra'], 'no source specified (--source-pgdata or --source-server)'],
    [
      'both sources',
      ['--source-pgdata=/s', '--source-server=h', 'extra'],
      'only one of --source-pgdata or --source-server can be specified',
    ],
    ['no target', ['--source-pgdata=/s', '-R', 'extra'], 'no target data directory specified (--target-pgdata)'],
    [
      '-R needs --source-server',
      [...GOOD, '-R', 'extra'],
      'no source server information (--source-server) specified for --write-recovery-conf',
    ],
    ['operands', [...GOOD, 'extra', 'more'], 'too many command-line arguments (first is "extra")'],
  ]
  for (const [name, argv, message] of cases) {
    test(name, () => assert.equal(stderrOf(argv), error(message)))
  }
  test('-R with --source-server is fine', () => {
    assert.equal(optionsOf(['-R', '-D', '/t', '--source-server', 'host=h']).writeRecoveryConf, true)
  })
})

describe('option values', () => {
  test('--sync-method is checked where it appears, without the hint (parse_sync_method)', () => {
    assert.equal(optionsOf([...GOOD, '--sync-method=fsync']).syncMethod, 'fsync')
    assert.equal(stderrOf(['--sync-method=fdatasync', '-x']), 'pg_rewind: error: unrecognized sync method: fdatasync\n')
    assert.equal(stderrOf(['--sync-method', '']), 'pg_rewind: error: unrecognized sync method: \n')
    assert.equal(stderrOf(['-x', '--sync-method=bad']), `pg_rewind: invalid option -- 'x'\n${HINT}`)
    assert.equal(
      stderrOf(['--sync-method=syncfs'], { platform: 'darwin' }),
      'pg_rewind: error: this build does not support sync method "syncfs"\n',
    )
    assert.equal(parseRewindArgs([...GOOD, '--sync-method=syncfs'], 'pg_rewind', { platform: 'linux' }).kind, 'run')
  })

  test('--replay-from takes source-checkpoint or last-common-checkpoint, under either name', () => {
    for (const prog of ['walrewind', 'pg_rewind'] as const) {
      const parsed = parseRewindArgs(['-D', '/t', '--source-pgdata=/s', '--replay-from=last-common-checkpoint'], prog)
      assert.equal(parsed.kind === 'run' && parsed.options.replayFrom, 'last-common-checkpoint')
    }
    const bad = parseRewindArgs(['-D', '/t', '--source-pgdata=/s', '--replay-from=fork'], 'walrewind')
    assert.equal(bad.kind, 'error')
    assert.match(bad.kind === 'error' ? bad.message : '', /invalid value "fork" for option --replay-from/)
  })

  test('--patch-blocks takes auto, on or off, under either name', () => {
    assert.equal(optionsOf(GOOD).patchBlocks, 'auto')
    for (const value of ['on', 'off', 'auto'] as const) assert.equal(optionsOf([...GOOD, `--patch-blocks=${value}`]).patchBlocks, value)
    const asWalrewind = parseRewindArgs([...GOOD, '--patch-blocks', 'on'], 'walrewind')
    assert.equal(asWalrewind.kind === 'run' && asWalrewind.options.patchBlocks, 'on')
    assert.equal(stderrOf(['--patch-blocks=yes']), 'pg_rewind: error: invalid value "yes" for option --patch-blocks: auto, on or off\n')
  })

  test('--jobs follows option_parse_int', () => {
    assert.equal(optionsOf([...GOOD, '--jobs=1']).jobs, 1)
    assert.equal(optionsOf([...GOOD, '--jobs', ' +64 ']).jobs, 64)
    assert.equal(optionsOf([...GOOD, '--jobs=2', '--jobs=3']).jobs, 3)
    for (const bad of ['x', '4x', '0x10', '-', '1.5', '']) {
      const expected = bad === '' ? '--jobs must be in range 1..64' : `invalid value "${bad}" for option --jobs`
      assert.equal(stderrOf(['--jobs', bad]), `pg_rewind: error: ${expected}\n`, bad)
    }
    for (const bad of ['0', '65', '-1', '99999999999999999999', '  ']) {
      assert.equal(stderrOf([`--jobs=${bad}`]), 'pg_rewind: error: --jobs must be in range 1..64\n', bad)
    }
    assert.equal(stderrOf(['--jobs']), `pg_rewind: option '--jobs' requires an argument\n${HINT}`)
  })

  test('--source-timeout: 0 (never) up to what setTimeout can wait', () => {
    assert.equal(optionsOf([...GOOD, '--source-timeout=0']).timeoutSeconds, 0)
    assert.equal(optionsOf([...GOOD, '--source-timeout=2147483']).timeoutSeconds, 2147483)
    assert.equal(stderrOf(['--source-timeout=2147484']), 'pg_rewind: error: --source-timeout must be in range 0..2147483\n')
    assert.equal(stderrOf(['--source-timeout=10s']), 'pg_rewind: error: invalid value "10s" for option --source-timeout\n')
  })

  test('--json and --postgres-bindir', () => {
    assert.equal(optionsOf([...GOOD, '--json']).json, true)
    assert.equal(stderrOf(['--json=1']), `pg_rewind: option '--json' doesn't allow an argument\n${HINT}`)
    assert.equal(optionsOf([...GOOD, '--postgres-bindir', '/opt/pg/bin']).postgresBindir, '/opt/pg/bin')
  })

  test('--require-source-wal, accepted under both names, off by default', () => {
    assert.equal(optionsOf(GOOD).requireSourceWal, false)
    assert.equal(optionsOf([...GOOD, '--require-source-wal']).requireSourceWal, true)
    const asWalrewind = parseRewindArgs([...GOOD, '--require-source-wal'], 'walrewind')
    assert.ok(asWalrewind.kind === 'run' && asWalrewind.options.requireSourceWal)
    assert.equal(stderrOf(['--require-source-wal=yes']), `pg_rewind: option '--require-source-wal' doesn't allow an argument\n${HINT}`)
    assert.equal(stderrOf(['--require-source']), `pg_rewind: unrecognized option '--require-source'\n${HINT}`)
  })

  test('configuration files: copied as pg_rewind, kept as walrewind unless --copy-config-files', () => {
    assert.equal(optionsOf(GOOD).copyConfigFiles, true)
    assert.equal(optionsOf([...GOOD, '--copy-config-files']).copyConfigFiles, true)
    const walrewind = (argv: string[]) => {
      const parsed = parseRewindArgs(argv, 'walrewind')
      assert.equal(parsed.kind, 'run')
      return (parsed as Extract<ParsedArgs, { kind: 'run' }>).options
    }
    assert.equal(walrewind(GOOD).copyConfigFiles, false)
    assert.equal(walrewind([...GOOD, '--copy-config-files']).copyConfigFiles, true)
    // --co is still pg_rewind's --config-file, never walrewind's own
    assert.equal(optionsOf([...GOOD, '--co=/x.conf']).configFile, '/x.conf')
  })
})

describe("walrewind's own options leave pg_rewind's abbreviations alone", () => {
  test('no own option name is a prefix of a pg_rewind option name, or the other way round', () => {
    for (const own of WALREWIND_LONG_OPTIONS) {
      for (const pg of PG_REWIND_LONG_OPTION_NAMES) {
        assert.ok(!pg.startsWith(own.name) && !own.name.startsWith(pg), `${own.name} vs ${pg}`)
      }
    }
  })

  test('own options match by full name only', () => {
    assert.equal(optionsOf([...GOOD, '--p']).progress, true) // --postgres-bindir does not make --p ambiguous
    assert.equal(stderrOf(['--jso']), `pg_rewind: unrecognized option '--jso'\n${HINT}`)
    assert.equal(stderrOf(['--j']), `pg_rewind: unrecognized option '--j'\n${HINT}`)
    assert.equal(stderrOf(['--source-t=5']), `pg_rewind: unrecognized option '--source-t=5'\n${HINT}`)
    assert.equal(
      stderrOf(['--source-=x']),
      `pg_rewind: option '--source-=x' is ambiguous; possibilities: '--source-pgdata' '--source-server'\n${HINT}`,
    )
  })

  test('invoked as walrewind, messages carry that name', () => {
    const parsed = parseRewindArgs(['-D', '/t'], 'walrewind')
    assert.equal(parsed.kind, 'error')
    assert.equal(
      formatParseError(parsed as Extract<ParsedArgs, { kind: 'error' }>, 'walrewind'),
      'walrewind: error: no source specified (--source-pgdata or --source-server)\n' +
        'walrewind: hint: Try "walrewind --help" for more information.\n',
    )
  })
})

/**
 * Vectors left out of the comparison because pg_rewind 15 and 18 answer them differently (or
 * pg_rewind knows nothing of them); the tests above pin the 18 answer for each, and the last test
 * below checks that each still differs from 15, so the list stays honest.
 */
const VERSION_DEPENDENT: readonly [string[], string][] = [
  [['--sync-method=fsync'], '15 has no --sync-method (unrecognized option)'],
  [['--sy=fsync'], '15: unrecognized; 18: prefix of --sync-method'],
  [['--s'], '18 adds --sync-method to the ambiguous list'],
  [['--=x'], '18 adds --sync-method to the list of every option'],
  [['--help'], '18 quotes "restore_command" and lists --sync-method (stdout)'],
  [['--version'], 'the version line'],
  [['--json'], "walrewind's own options: unrecognized by any pg_rewind"],
  [['--jobs=2'], "walrewind's own"],
  [['--source-timeout=5'], "walrewind's own"],
  [['--postgres-bindir=/x'], "walrewind's own"],
]

describe('same stderr and exit status as the real pg_rewind 15', () => {
  const T = '/nonexistent/walrewind-test-target'
  const S = '/nonexistent/walrewind-test-source'
  const bad: string[][] = [
    [],
    ['-x'],
    ['-nx'],
    ['-:'],
    ['-D'],
    ['-nD'],
    ['-n', '-D'],
    ['--foo'],
    ['--foo=bar'],
    ['--source=x'],
    ['--source', 'x'],
    ['--source-=x'],
    ['--no'],
    ['--d'],
    ['--dry-run=yes'],
    ['--dry=yes'],
    ['--debug='],
    ['--target'],
    ['--target-pgdata'],
    ['--source-pgdata'],
    ['--config-file'],
    ['--no-ensure-shutdown=1'],
    ['--progress=1'],
    ['--write=1'],
    ['--jso'],
    ['--'],
    ['-'],
    ['-DP'],
    ['-D', T],
    ['--target-pgdata=' + T],
    ['--source-pgdata=' + S],
    ['-D', T, '--source-pgdata=' + S, '--source-server=host=h'],
    ['--source-pgdata=' + S, '-R'],
    ['--source-pgdata=' + S, '-R', '-D', T],
    ['-R', '--source-pgdata=' + S, '-D', T, 'extra'],
    ['-D', T, '--source-pgdata', S, 'extra'],
    ['extra', '-D', T, '--source-pgdata', S, 'more'],
    ['-D', T, '--source-pgdata', S, '--', '-n'],
    ['a', '-D', T, '--', 'b', '--source-pgdata', S],
    ['-D', T, '--source-pgdata', S, '-'],
    ['-n', '--help'],
    ['-n', '--version'],
    ['-n', '-V'],
    ['-n', '-?'],
    ['--he'],
    ['--ver'],
    ['-D', T, '--source-pgdata', S, '--help'],
    ['-D', '--source-pgdata=' + S],
    ['--source-pgdata', '-D', T],
    ['-x', '--foo'],
    ['a', '-x'],
    ['--source-server=', '-D', T, 'extra'],
    ['-nNPcR', '-D', T, '--source-pgdata', S],
  ]
  const good: string[][] = [
    ['-D', T, '--source-pgdata', S],
    ['-nNPc', '-D' + T, '--source-server', 'host=/nonexistent dbname=x'],
    ['--target=' + T, '--source-se=host=/nonexistent', '--dry', '--no-s', '--no-e', '--deb', '--pro', '--con=/c', '--res', '--wr'],
    ['-R', '--source-server', 'host=/nonexistent', '-D', T, '--'],
  ]

  function runReal(argv: string[]): { status: number | null; stdout: string; stderr: string } {
    // LC_ALL=C: untranslated messages; no POSIXLY_CORRECT or PG_COLOR from the caller's environment
    const result = spawnSync(PG_REWIND_15, argv, { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' } })
    return { status: result.status, stdout: result.stdout, stderr: result.stderr }
  }

  test('pg_rewind 15 is installed', () => {
    // A comparison that silently compares nothing is worse than a red test.
    assert.ok(fs.existsSync(PG_REWIND_15), `${PG_REWIND_15} is missing (Debian postgresql-15)`)
  })

  for (const argv of bad) {
    test(`rejects ${JSON.stringify(argv)}`, () => {
      const real = runReal(argv)
      const parsed = parseRewindArgs(argv, 'pg_rewind', { argv0: PG_REWIND_15, env: {}, platform: 'linux' })
      assert.equal(parsed.kind, 'error')
      assert.equal(real.status, 1)
      assert.equal(formatParseError(parsed as Extract<ParsedArgs, { kind: 'error' }>, 'pg_rewind'), real.stderr)
    })
  }

  for (const [argv, why] of VERSION_DEPENDENT) {
    test(`differs, as listed: ${JSON.stringify(argv)} (${why})`, () => {
      const real = runReal(argv)
      const parsed = parseRewindArgs(argv, 'pg_rewind', { argv0: PG_REWIND_15, env: {}, platform: 'linux' })
      const ours = parsed.kind === 'error' ? formatParseError(parsed, 'pg_rewind') : parsed.kind === 'run' ? '' : parsed.text
      assert.notEqual(ours, real.stdout + real.stderr)
    })
  }

  for (const argv of good) {
    test(`accepts ${JSON.stringify(argv)}`, () => {
      const real = runReal(argv)
      assert.equal(parseRewindArgs(argv, 'pg_rewind', { argv0: PG_REWIND_15, env: {} }).kind, 'run')
      // past the argument checks pg_rewind stops at the root check, or (not root) at the target dir
      assert.equal(real.status, 1)
      assert.match(real.stderr, /^pg_rewind: error: (cannot be executed by "root"|could not read permissions of directory)/)
    })
  }
})
