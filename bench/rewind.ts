// Benchmark (not a test): the same saved state rewound by walrewind and by pg_rewind 15, from a
// stopped source directory, side by side. Wall time and peak memory (max RSS) per run, median of
// N runs each. Usage: node dist/bench/rewind-local.js [--scale=50] [--runs=3] [--mode=local|remote]
// Needs Debian's PostgreSQL 15 client tools (pg_rewind, pgbench) in /usr/lib/postgresql/15/bin.

import { Kit, REWIND_GRANTS } from '../test/kit/index.js'
import { PROJECT_ROOT } from '../test/kit/majors.js'
import path from 'node:path'

const PG15 = '/usr/lib/postgresql/15/bin'

function arg(name: string, fallback: string): string {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`))
  return found ? found.slice(name.length + 3) : fallback
}

interface Measure { wallSeconds: number; maxRssMb: number }

function parseTime(stderr: string): Measure {
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(stderr)
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)
  if (!wall || !rss) throw new Error(`cannot read /usr/bin/time output:\n${stderr}`)
  const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3])
  return { wallSeconds: seconds, maxRssMb: Number(rss[1]) / 1024 }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

async function main(): Promise<void> {
  const scale = Number(arg('scale', '50'))
  const runs = Number(arg('runs', '3'))
  const mode = arg('mode', 'local')
  const kit = await Kit.create(`bench-${mode}`)
  try {
    const primary = await kit.initNode('primary', 15, { walLogHints: true, conf: { max_wal_size: '4GB', wal_keep_size: '8GB' } })
    await primary.start()
    await primary.query('CREATE ROLE rewind_user LOGIN')
    for (const grant of REWIND_GRANTS) await primary.query(grant)
    const pgbench = (node: typeof primary, args: string[]) => kit.run(path.join(PG15, 'pgbench'), ['-h', node.host, '-p', String(node.port), '-U', 'postgres', ...args, 'postgres'], { timeoutMs: 3_600_000 })
    // --follow-load: the standby exists before the bulk load and streams it, as a standby that has
    // followed for a while does; both then hold the same WAL from before the fork.
    const followLoad = process.argv.includes('--follow-load')
    let standby = followLoad ? await kit.createStandby(primary, 'standby') : null
    console.error(`preparing: pgbench -i -s ${scale}${followLoad ? ' (standby streaming)' : ''}`)
    let r = await pgbench(primary, ['-i', '-q', '-s', String(scale)])
    if (r.code !== 0) throw new Error(r.stderr)
    await primary.query('CHECKPOINT')
    standby ??= await kit.createStandby(primary, 'standby')
    await standby.waitForReplay(await primary.currentLsn())
    await standby.promote()
    console.error('diverging: 20 s of pgbench on the old primary, 5 s on the new one')
    r = await pgbench(primary, ['-T', '20', '-c', '4', '-j', '2'])
    if (r.code !== 0) throw new Error(r.stderr)
    r = await pgbench(standby, ['-T', '5', '-c', '2'])
    if (r.code !== 0) throw new Error(r.stderr)
    // pg_rewind 15 takes the timeline from the last checkpoint only: without this it would answer
    // "no rewind required" against a source promoted a moment ago (walrewind does not need it).
    await standby.query('CHECKPOINT')
    const size = await primary.queryValue<string>('SELECT pg_size_pretty(pg_database_size(current_database()))')
    await primary.stop()
    if (mode === 'local') await standby.stop()
    // remote: the source keeps running and only the target is put back between runs
    await kit.saveState('bench', mode === 'local' ? [primary, standby] : [primary])

    const source = mode === 'local' ? [`--source-pgdata=${standby.dataDir}`] : [`--source-server=${standby.connectionString({ user: 'rewind_user' })}`]
    const tools: Record<string, string[]> = {
      'pg_rewind 15': [path.join(PG15, 'pg_rewind'), `--target-pgdata=${primary.dataDir}`, ...source],
      walrewind: [process.execPath, path.join(PROJECT_ROOT, 'bin', 'walrewind.js'), `--target-pgdata=${primary.dataDir}`, ...source],
    }
    const results: Record<string, Measure[]> = {}
    for (let i = 0; i < runs; i++) {
      for (const [tool, argv] of Object.entries(tools)) {
        await kit.restoreState('bench')
        await kit.run('sync', [])
        const run = await kit.run('/usr/bin/time', ['-v', ...argv], { timeoutMs: 3_600_000 })
        if (run.code !== 0) throw new Error(`${tool} failed:\n${run.stderr}`)
        const m = parseTime(run.stderr)
        ;(results[tool] ??= []).push(m)
        console.error(`${tool} run ${i + 1}: ${m.wallSeconds.toFixed(2)} s, ${m.maxRssMb.toFixed(0)} MB`)
      }
    }
    console.log(`\nPostgreSQL 15, ${mode} source, pgbench scale ${scale} (database ${size})${followLoad ? ', standby followed the load' : ''}, ${runs} runs each, median:`)
    console.log('| tool | wall time (s) | peak RSS (MB) |\n|---|---|---|')
    for (const [tool, ms] of Object.entries(results)) {
      console.log(`| ${tool} | ${median(ms.map((m) => m.wallSeconds)).toFixed(2)} | ${median(ms.map((m) => m.maxRssMb)).toFixed(0)} |`)
    }
  } finally {
    if (process.argv.includes('--keep')) console.error(`kept: ${kit.baseDir}`)
    else await kit.cleanup()
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
