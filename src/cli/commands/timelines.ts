// `walrewind timelines`: the timeline graph of a cluster family, drawn from data directories and
// servers, and for one ordered pair what a rewind would do. Read-only: servers are only queried,
// directories only read (the estimate is a dry run).

import path from 'node:path'
import { RewindError } from '../../errors.js'
import { formatLsn } from '../../pg/lsn.js'
import { findLastCommonCheckpointOf } from '../../rewind/pair.js'
import { describeNode, type NodeSpec } from '../../rewind/node-state.js'
import { rewind } from '../../rewind/rewind.js'
import { analysePair, buildTimelineGraph, drawTimelineGraph, type NodeState } from '../../rewind/timeline-graph.js'
import { isConninfoKeyword } from '../../source/conninfo-parse.js'
import type { CliIo } from '../io.js'
import { formatError } from '../render.js'

const USAGE = `Usage: walrewind timelines [--json] [--source NAME --target NAME] NODE...

Draws the timeline graph of the nodes of one cluster and, for a pair, what a rewind of the target
against the source would do. NODE is a data directory or a connection string, optionally named
NAME=DIR_OR_CONNSTR. Nothing is written; safe on running servers.

Options:
  --json           print the graph and the analysis as JSON
  --source NAME    with --target: analyse this pair (source = the node to follow)
  --target NAME
  --help           show this help
`

/**
 * One NODE argument: `NAME=DIR_OR_CONNSTR`, unless what comes before the first `=` is a libpq
 * keyword: then the whole argument is a keyword=value connection string (`host=a port=5433`, and
 * `target_session_attrs=any host=a` as much). A node without a name is named after its directory,
 * or node<N> for a connection string.
 */
export function parseNodeArg(arg: string, index: number): NodeSpec {
  const eq = arg.indexOf('=')
  const label = arg.slice(0, eq)
  if (eq > 0 && /^[A-Za-z][\w.-]*$/.test(label) && !isConninfoKeyword(label)) {
    return { name: label, spec: arg.slice(eq + 1) }
  }
  const name = arg.includes('=') || arg.includes('://') ? `node${index + 1}` : path.basename(path.resolve(arg))
  return { name, spec: arg }
}

export async function timelines(args: string[], io: CliIo): Promise<number> {
  let json = false
  let sourceName: string | null = null
  let targetName: string | null = null
  const specs: NodeSpec[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '--help' || a === '-?') {
      io.stdout.write(USAGE)
      return 0
    }
    if (a === '--json') json = true
    else if (a === '--source' || a === '--target') {
      const v = args[++i]
      if (v === undefined) {
        io.stderr.write(`walrewind timelines: option ${a} needs a node name\n`)
        return 2
      }
      if (a === '--source') sourceName = v
      else targetName = v
    } else if (a.startsWith('--source=')) sourceName = a.slice(9)
    else if (a.startsWith('--target=')) targetName = a.slice(9)
    else if (a.startsWith('-')) {
      io.stderr.write(`walrewind timelines: unknown option "${a}"\n${USAGE}`)
      return 2
    } else specs.push(parseNodeArg(a, specs.length))
  }
  if (specs.length === 0) {
    io.stderr.write(USAGE)
    return 2
  }
  if ((sourceName === null) !== (targetName === null)) {
    io.stderr.write('walrewind timelines: --source and --target go together\n')
    return 2
  }

  let nodes: Awaited<ReturnType<typeof describeNode>>[]
  try {
    nodes = await Promise.all(specs.map((s) => describeNode(s, io.env)))
  } catch (err) {
    if (err instanceof RewindError) {
      io.stderr.write(formatError(err, 'walrewind').replace(/^walrewind: the target.*\n/m, ''))
      return 3
    }
    throw err
  }
  const graph = buildTimelineGraph(nodes)
  const pairs = []
  for (const s of nodes) for (const t of nodes) if (s !== t) pairs.push(analysePair(s, t))

  let detail: Record<string, unknown> | null = null
  if (sourceName !== null) {
    const source = nodes.find((n) => n.name === sourceName)
    const target = nodes.find((n) => n.name === targetName)
    if (!source || !target) {
      io.stderr.write(`walrewind timelines: no node named "${!source ? sourceName : targetName}"\n`)
      return 2
    }
    detail = await pairDetail(source, target, specs, io.env)
  }

  if (json) {
    io.stdout.write(
      JSON.stringify(
        {
          nodes: nodes.map((n) => ({
            name: n.name,
            kind: n.kind,
            state: n.state,
            timeline: n.tli,
            walEnd: formatLsn(n.walEnd),
            history: n.history.map((e) => ({ tli: e.tli, begin: formatLsn(e.begin), end: e.end === null ? null : formatLsn(e.end) })),
          })),
          timelines: [...graph.timelines.values()].map((t) => ({
            tli: t.tli,
            parent: t.parent,
            begin: formatLsn(t.begin),
            nodes: t.nodes,
          })),
          conflicts: graph.conflicts,
          pairs: pairs.map((p) => ({ ...p, divergence: p.divergence === null ? null : formatLsn(p.divergence) })),
          ...(detail ? { pair: detail } : {}),
        },
        null,
        2,
      ) + '\n',
    )
    return 0
  }
  io.stdout.write(drawTimelineGraph(graph, nodes))
  io.stdout.write('\nrewind needed? (row = target, column = source)\n')
  io.stdout.write(matrix(nodes, pairs))
  if (detail) {
    io.stdout.write(`\n${targetName} rewound against ${sourceName}:\n`)
    io.stdout.write(describePair(detail))
  }
  return 0
}

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`
}

function describePair(d: Record<string, unknown>): string {
  const lines: string[] = []
  if (d['verdict'] === 'unrelated') return '  the two histories share no timeline: not the same cluster family\n'
  if (d['verdict'] === 'same-timeline') return `  both are on timeline ${d['commonTimeline']}: no rewind required\n`
  lines.push(`  common timeline        ${d['commonTimeline']}`)
  lines.push(`  divergence             ${d['divergence']}`)
  lines.push(
    `  rewind needed          ${d['rewindNeeded'] ? 'yes: the target wrote WAL after the divergence' : 'no: the target can follow as it is'}`,
  )
  const cp = d['lastCommonCheckpoint'] as { lsn: string; redo: string; timeline: number } | null
  if (cp) lines.push(`  last common checkpoint ${cp.lsn} (redo ${cp.redo}) on timeline ${cp.timeline}`)
  const est = d['estimate'] as {
    copyBytes?: number
    blocks?: number
    sourceBytes?: number
    files?: Record<string, number>
    unavailable?: string
  } | null
  if (est?.unavailable) lines.push(`  estimate               unavailable: ${est.unavailable}`)
  else if (est) {
    lines.push(
      `  estimate               ${mb(est.copyBytes!)} to copy (${est.blocks} changed blocks) of a ${mb(est.sourceBytes!)} source directory`,
    )
    lines.push(
      `                         files: ${est.files!['copy']} copied whole, ${est.files!['copy-tail']} extended, ${est.files!['truncate']} truncated, ${est.files!['remove']} removed`,
    )
  } else if (d['rewindNeeded']) lines.push('  estimate               needs the target as a stopped data directory')
  return lines.join('\n') + '\n'
}

function matrix(nodes: readonly NodeState[], pairs: ReturnType<typeof analysePair>[]): string {
  const width = Math.max(8, ...nodes.map((n) => n.name.length)) + 2
  let out = ''.padEnd(width) + nodes.map((n) => n.name.padEnd(width)).join('') + '\n'
  for (const t of nodes) {
    out += t.name.padEnd(width)
    for (const s of nodes) {
      const p = pairs.find((x) => x.source === s.name && x.target === t.name)
      out += (s === t ? '·' : p?.verdict === 'rewind' ? 'rewind' : p?.verdict === 'unrelated' ? 'n/a' : 'follow').padEnd(width)
    }
    out += '\n'
  }
  return out
}

async function pairDetail(
  source: Awaited<ReturnType<typeof describeNode>>,
  target: Awaited<ReturnType<typeof describeNode>>,
  specs: NodeSpec[],
  env: NodeJS.ProcessEnv,
): Promise<Record<string, unknown>> {
  const analysis = analysePair(source, target)
  const detail: Record<string, unknown> = {
    commonTimeline: analysis.commonTimeline,
    divergence: analysis.divergence === null ? null : formatLsn(analysis.divergence),
    rewindNeeded: analysis.verdict === 'rewind',
    verdict: analysis.verdict,
    lastCommonCheckpoint: null,
    estimate: null,
  }
  const targetSpec = specs.find((s) => s.name === target.name)!.spec
  const sourceSpec = specs.find((s) => s.name === source.name)!.spec
  if (analysis.verdict !== 'rewind' || target.kind !== 'local') return detail
  try {
    const checkpoint = await findLastCommonCheckpointOf(targetSpec, target, analysis.divergence!)
    detail['lastCommonCheckpoint'] = { lsn: formatLsn(checkpoint.lsn), redo: formatLsn(checkpoint.redo), timeline: checkpoint.tli }
    const dry = await rewind({
      targetPgdata: targetSpec,
      dryRun: true,
      ensureShutdown: false,
      env,
      source: source.kind === 'local' ? { kind: 'local', pgdata: sourceSpec } : { kind: 'server', conninfo: sourceSpec },
    })
    if (dry.plan) {
      detail['estimate'] = {
        copyBytes: dry.plan.totals.fetchBytes,
        blocks: dry.plan.totals.blockCount,
        sourceBytes: dry.plan.totals.sourceBytes,
        files: dry.plan.totals.actions,
      }
    }
  } catch (err) {
    detail['estimate'] = { unavailable: err instanceof Error ? err.message : String(err) }
  }
  return detail
}
