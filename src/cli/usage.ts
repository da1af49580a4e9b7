// What `pg_rewind --help` and `pg_rewind --version` print when walrewind runs as pg_rewind (or as
// walrewind without a subcommand). The pg_rewind block is pg_rewind 18's usage() word for word,
// because HA managers grep it (e.g. for "--restore-target-wal"); walrewind's own options follow in
// a block of their own. walrewind's version is read from package.json when asked, never copied.

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { SUPPORTED_RANGE } from '../pg/versions.js'

/**
 * The pg_rewind release whose command line and messages walrewind reproduces (usage text, option
 * grammar, validation order). Printed as the "PostgreSQL" version when invoked as pg_rewind.
 */
export const PG_REWIND_COMPAT_VERSION = '18.4'

/** The PostgreSQL majors whose clusters walrewind can rewind, as "OLDEST-NEWEST" (src/pg/versions.ts). */
export const SUPPORTED_MAJORS = SUPPORTED_RANGE

/** package.json's fields, defined by scripts/build-exe.js in the single executable; undefined otherwise. */
declare const WALREWIND_PACKAGE_JSON: string | undefined

export interface PackageInfo {
  version: string
  homepage: string | null
  bugs: string | null
}

/**
 * Reads walrewind's own package.json: the nearest one named "walrewind" above this module, so the
 * same code works from dist/src/cli and from an installed package.
 */
export function readPackageInfo(): PackageInfo {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (true) {
    // The single executable has no package.json beside it: its bundler puts the fields here.
    const pkg =
      typeof WALREWIND_PACKAGE_JSON === 'string'
        ? (JSON.parse(WALREWIND_PACKAGE_JSON) as Record<string, unknown>)
        : readJson(path.join(dir, 'package.json'))
    if (pkg !== null && pkg['name'] === 'walrewind') {
      const bugs = pkg['bugs']
      return {
        version: typeof pkg['version'] === 'string' ? pkg['version'] : 'unknown',
        homepage: typeof pkg['homepage'] === 'string' ? pkg['homepage'] : null,
        bugs:
          typeof bugs === 'string'
            ? bugs
            : typeof bugs === 'object' && bugs !== null && typeof (bugs as Record<string, unknown>)['url'] === 'string'
              ? (bugs as Record<string, string>)['url']!
              : null,
      }
    }
    const parent = path.dirname(dir)
    // Why not throw: --version and --help must work even from an odd install layout.
    if (parent === dir) return { version: 'unknown', homepage: null, bugs: null }
    dir = parent
  }
}

function readJson(file: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(readFileSync(file, 'utf8'))
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null
  } catch {
    return null
  }
}

/**
 * The --version line. As pg_rewind it keeps pg_rewind's `pg_rewind (PostgreSQL) X.Y` shape and puts
 * walrewind's own version in the trailing parenthesis, where distributions put theirs
 * (`pg_rewind (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`), so existing parsers still read X.Y.
 */
export function formatVersion(programName: 'pg_rewind' | 'walrewind', pkg: PackageInfo = readPackageInfo()): string {
  if (programName === 'pg_rewind') return `pg_rewind (PostgreSQL) ${PG_REWIND_COMPAT_VERSION} (walrewind ${pkg.version})\n`
  return `walrewind ${pkg.version} (pg_rewind for PostgreSQL ${SUPPORTED_MAJORS})\n`
}

/** The --help text, pg_rewind 18's usage() with `programName` where pg_rewind prints its name. */
export function formatUsage(programName: 'pg_rewind' | 'walrewind', pkg: PackageInfo = readPackageInfo()): string {
  const lines = [
    `${programName} resynchronizes a PostgreSQL cluster with another copy of the cluster.`,
    '',
    'Usage:',
    `  ${programName} [OPTION]...`,
    ...(programName === 'walrewind'
      ? [
          '  walrewind COMMAND [ARGUMENT]...',
          '',
          "Without a COMMAND, walrewind rewinds a data directory, with pg_rewind's options below.",
          '',
          'Commands (walrewind COMMAND --help for each):',
          '  timelines                      the timeline graph of a cluster family, and',
          '                                 which nodes need a rewind',
          `  controldata                    what pg_controldata shows, for PostgreSQL ${SUPPORTED_RANGE}`,
          '  waldump                        decode WAL records, as pg_waldump does',
          '  verify                         compare a stopped data directory with a',
          '                                 source, block by block; read-only',
          '  demo                           a 4-node cluster family, forked and rewound',
          '                                 on real PostgreSQL clusters',
        ]
      : []),
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
    'walrewind options (full names only):',
    '      --json                     write the result and events as JSON on stdout',
    '      --jobs=NUM                 use NUM parallel source connections or readers',
    '                                 (1..64)',
    '      --source-timeout=SECONDS   fail when the source sends nothing for SECONDS',
    '                                 (0 waits forever)',
    '      --postgres-bindir=DIR      where the target\'s "postgres" program is',
    '                                 (default: next to this program, then',
    '                                 $PG_BINDIR, then PATH)',
    '      --require-source-wal       fail before writing anything if the source',
    '                                 no longer has WAL the rewound node needs',
    '                                 (default: a warning)',
    '      --replay-from=WHERE        source-checkpoint (default: copy blocks',
    '                                 changed on either side, replay from the',
    "                                 source's checkpoint) or",
    "                                 last-common-checkpoint (pg_rewind's way)",
    '      --compare=HOW              find changed blocks from the WAL (wal), by',
    '                                 comparing them with the source (blocks), or',
    '                                 by comparing when the WAL cannot tell (auto;',
    '                                 the default as walrewind, wal as pg_rewind)',
    '      --patch-blocks=WHEN        fetch changed blocks from a running source as',
    "                                 patches of the target's copies, only their",
    '                                 differing pieces (on, off, or auto: when',
    '                                 comparing blocks, the default)',
    ...(programName === 'walrewind'
      ? [
          "      --copy-config-files        copy the source's postgresql.conf, pg_hba.conf,",
          '                                 pg_ident.conf, postgresql.auto.conf as pg_rewind',
          "                                 does (default: keep the target's own)",
        ]
      : [
          "      --copy-config-files        copy the source's configuration files (the",
          '                                 default as pg_rewind)',
        ]),
  ]
  // pg_rewind's bug-report lines name PostgreSQL's list; walrewind's name its own tracker.
  if (pkg.bugs !== null || pkg.homepage !== null) lines.push('')
  if (pkg.bugs !== null) lines.push(`Report bugs to <${pkg.bugs}>.`)
  if (pkg.homepage !== null) lines.push(`walrewind home page: <${pkg.homepage}>`)
  return lines.join('\n') + '\n'
}
