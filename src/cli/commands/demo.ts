// `walrewind demo`: the story walrewind exists for, on real PostgreSQL clusters. A primary
// (node1), two standbys (node2, node3) and a cascading standby (node4, of node2) are promoted one
// after the other onto timelines 2, 3 and 4, each writes its own history, then one becomes the
// primary again and the other three are rewound against it and follow it. It works wherever
// walrewind is installed (a checkout, the npm package, the single executable): the clusters are made
// by src/demo/, with PostgreSQL's server programs found by src/demo/postgres.ts (embedded packages
// where installed, else the host's, else --pg-bindir), and run as an ordinary user (src/demo/run-as.ts).

import path from 'node:path'
import { fileURLToPath } from 'node:url'
import fs from 'node:fs'
import { isSupportedMajor, NEWEST_MAJOR, OLDEST_MAJOR, SUPPORTED_RANGE, type Major } from '../../pg/versions.js'
import type { CliIo } from '../io.js'

const MAJORS = `${OLDEST_MAJOR}..${NEWEST_MAJOR}`
const USAGE = `Usage: walrewind demo [--major=${MAJORS}] [--primary=node1..node4] [--keep] [--pg-bindir=DIR] [--os-user=NAME]

Builds a 4-node PostgreSQL family with forked timelines (promotions of a standby, of another
standby and of a cascading standby), writes on every node, shows the timeline graph, makes one node
the primary again and rewinds the three others against it (over a normal connection, with -R), then
checks that all of them follow it with the same data. Takes about a minute.

It needs PostgreSQL's server programs (initdb, pg_ctl, postgres): the embedded PostgreSQL ${SUPPORTED_RANGE}
packages of a checkout of walrewind (npm install), else the host's PostgreSQL (pg_config --bindir,
the PATH, /usr/lib/postgresql/NN/bin, /usr/pgsql-NN/bin), else name them with --pg-bindir.
PostgreSQL does not run as root: as root the demo runs the servers as the user who ran sudo, or as
--os-user, or as a system user named walrewind if there is one; it never creates a user.

Options:
  --major=N        PostgreSQL major version (default: the newest found)
  --primary=NODE   the node that becomes the primary (default: node3)
  --keep           keep the clusters (stopped) and print where they are
  --pg-bindir=DIR  the directory of initdb, pg_ctl and postgres to use
  --os-user=NAME   as root: the user to run PostgreSQL and walrewind as
`

type DemoModules = [
  typeof import('../../demo/cluster.js'),
  typeof import('../../demo/family.js'),
  typeof import('../../demo/postgres.js'),
  typeof import('../../demo/run-as.js'),
  typeof import('../../pg/native.js'),
]
type DemoNode = InstanceType<DemoModules[0]['DemoNode']>

export async function demo(args: string[], io: CliIo): Promise<number> {
  let major: number | null = null
  let primaryName = 'node3'
  let keep = false
  let pgBindir: string | null = null
  let osUser: string | null = null
  for (const a of args) {
    if (a === '--help' || a === '-?') {
      io.stdout.write(USAGE)
      return 0
    }
    if (a === '--keep') keep = true
    else if (a.startsWith('--major=')) major = Number(a.slice(8))
    else if (a.startsWith('--primary=')) primaryName = a.slice(10)
    else if (a.startsWith('--pg-bindir=') && a.length > 12) pgBindir = a.slice(12)
    else if (a.startsWith('--os-user=') && a.length > 10) osUser = a.slice(10)
    else {
      io.stderr.write(`walrewind demo: unknown argument "${a}"\n${USAGE}`)
      return 2
    }
  }
  if (major !== null && !isSupportedMajor(major)) {
    io.stderr.write(`walrewind demo: --major must be ${OLDEST_MAJOR} to ${NEWEST_MAJOR}\n`)
    return 2
  }
  if (!/^node[1-4]$/.test(primaryName)) {
    io.stderr.write(`walrewind demo: --primary must be node1 to node4\n`)
    return 2
  }

  const [{ DemoClusters }, { buildFamily, REWIND_ROLE }, { findDemoPostgres }, { demoUser, inaccessible }, { isSingleExecutable }] =
    (await Promise.all([
      import('../../demo/cluster.js'),
      import('../../demo/family.js'),
      import('../../demo/postgres.js'),
      import('../../demo/run-as.js'),
      import('../../pg/native.js'),
    ])) as DemoModules
  const fail = (message: string) => {
    io.stderr.write(`walrewind demo: ${message}\n`)
    return 1
  }

  // walrewind itself, as the demo runs it: this executable, or node with this package's bin script.
  const packageRoot = isSingleExecutable() ? null : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..')
  const walrewind = packageRoot === null ? [process.execPath] : [process.execPath, path.join(packageRoot, 'bin', 'walrewind.js')]

  const found = findDemoPostgres({ major: major as Major | null, pgBindir, packageRoot, env: io.env })
  if (!found.ok) return fail(found.message)
  const pg = found.install
  const runAs = demoUser(osUser, io.env)
  if (!runAs.ok) return fail(runAs.message)
  if (runAs.user !== null) {
    const needs: Array<['-r' | '-x', string]> = [
      ['-x', process.execPath],
      ...walrewind.slice(1).map((f): ['-r', string] => ['-r', f]),
      ['-x', path.join(pg.binDir, 'postgres')],
    ]
    if (packageRoot !== null) needs.push(['-x', path.join(packageRoot, 'dist', 'src')])
    const denied = inaccessible(runAs.user, needs)
    if (denied.length > 0) {
      return fail(
        `the servers would run as ${runAs.user.name}, who cannot read ${denied.join(', ')}: make them readable (chmod o+rX, ` +
          'and every parent directory), or run the demo as a user who can',
      )
    }
  }

  const started = Date.now()
  const tty = io.stdout.isTTY === true
  const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s)
  const say = (text: string) => io.stdout.write(`${bold(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s]`)} ${text}\n`)
  say(`PostgreSQL ${pg.version} from ${pg.binDir} (${pg.via})${runAs.why ? `, running ${runAs.why}` : ''}`)

  const clusters = DemoClusters.create(pg.binDir, runAs.user)
  const runWalrewind = (walrewindArgs: string[]) => clusters.run(walrewind[0]!, [...walrewind.slice(1), ...walrewindArgs])
  let ok = false
  try {
    const family = await buildFamily(clusters, pg.major, { onStep: say })
    const nodes = family as Record<string, DemoNode>
    const primary = nodes[primaryName]!
    const others = Object.values(nodes).filter((n) => n !== primary)
    for (const n of others) await n.stop()

    say('the timeline graph:')
    const graph = await runWalrewind([
      'timelines',
      ...Object.values(nodes).map((n) => `${n.name}=${n === primary ? primary.connectionString({ user: REWIND_ROLE }) : n.dataDir}`),
    ])
    if (graph.code !== 0) throw new Error(`walrewind timelines failed:\n${graph.stderr}`)
    io.stdout.write(graph.stdout.trimEnd().replace(/^/gm, '    ') + '\n')

    const clusterBytes = Number(await primary.queryValue<string>('SELECT sum(pg_database_size(oid))::bigint FROM pg_database'))
    say(`${primaryName} is the new primary; rewinding ${others.map((n) => n.name).join(', ')} against it`)
    let copiedTotal = 0
    let fullCopyTotal = 0
    for (const target of others) {
      const conf = path.join(target.dataDir, 'postgresql.conf')
      const ownConf = fs.readFileSync(conf)
      const t0 = Date.now()
      const run = await runWalrewind([
        '--target-pgdata',
        target.dataDir,
        '--source-server',
        primary.connectionString({ user: REWIND_ROLE }),
        '--write-recovery-conf',
        '--json',
        `--postgres-bindir=${target.binDir}`,
      ])
      if (run.code !== 0) throw new Error(`rewinding ${target.name} failed (exit ${run.code}):\n${run.stderr}`)
      fs.writeFileSync(conf, ownConf) // its own port and paths, not the primary's
      const result = JSON.parse(run.stdout) as {
        outcome: string
        divergence?: { lsn: string; tli: number }
        fetchedBytes?: number
        plan?: { totals: { sourceBytes: number; blockCount: number } }
      }
      copiedTotal += result.fetchedBytes ?? 0
      fullCopyTotal += result.plan?.totals.sourceBytes ?? 0
      const what =
        result.outcome === 'rewound'
          ? `diverged at ${result.divergence!.lsn} on timeline ${result.divergence!.tli}; copied ${mb(result.fetchedBytes ?? 0)} ` +
            `(${result.plan?.totals.blockCount ?? 0} changed blocks, the rest WAL and small files) instead of ${mb(result.plan?.totals.sourceBytes ?? 0)}`
          : 'no rewind required'
      say(`  ${target.name}: ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
    }

    say('starting the rewound nodes as standbys of the new primary')
    await primary.query("INSERT INTO events (node, payload) VALUES ('new primary', 'after the rewind')")
    const lsn = await primary.currentLsn()
    const expected = await primary.fingerprint()
    for (const target of others) {
      await target.start()
      await target.waitForReplay(lsn)
      const got = await target.fingerprint()
      if (JSON.stringify(got) !== JSON.stringify(expected))
        throw new Error(`${target.name} does not hold the new primary's data after the rewind`)
      say(`  ${target.name}: streaming from ${primaryName}, data identical (${Object.keys(got.tables).length} tables)`)
    }
    say(
      `done: ${others.length} nodes rewound in ${((Date.now() - started) / 1000).toFixed(1)} s; ${mb(copiedTotal)} copied in all, ` +
        `where full copies of the data directory would have been ${mb(fullCopyTotal)} (databases: ${mb(clusterBytes)})`,
    )
    ok = true
    return 0
  } catch (err) {
    io.stderr.write(`walrewind demo: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  } finally {
    try {
      await clusters.cleanup(keep && ok)
    } catch (err) {
      io.stderr.write(`walrewind demo: cleanup: ${(err as Error).message}\n`)
    }
    if (keep && ok)
      say(
        `kept: ${clusters.baseDir} (stopped; start a node with ${path.join(pg.binDir, 'pg_ctl')} -D ${clusters.baseDir}/NODE/data -l ${clusters.baseDir}/NODE/postgres.log start)`,
      )
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`
}
