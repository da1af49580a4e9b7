// The timeline graph of a cluster family, from the histories of its nodes: which timeline forked
// from which, where, and where each node stands. Pure data and a text drawing; `walrewind
// timelines` fills it from data directories and servers.

import { formatLsn, type Lsn } from '../pg/lsn.js'
import { findCommonAncestor, type TimelineEntry } from '../pg/timeline.js'

export interface NodeState {
  readonly name: string
  readonly tli: number
  readonly history: readonly TimelineEntry[]
  /** Where the node's WAL ends (its last checkpoint or replay position, or insert position). */
  readonly walEnd: Lsn
  readonly state: string
}

export interface TimelineNode {
  readonly tli: number
  readonly parent: number | null
  /** Where it forked from its parent (0 for a root). */
  readonly begin: Lsn
  readonly children: number[]
  readonly nodes: string[]
}

export interface TimelineGraph {
  readonly timelines: ReadonlyMap<number, TimelineNode>
  readonly roots: readonly number[]
  /** Timeline numbers that two histories give different parents or fork points: a split brain. */
  readonly conflicts: readonly number[]
}

export function buildTimelineGraph(nodes: readonly NodeState[]): TimelineGraph {
  const timelines = new Map<number, { tli: number; parent: number | null; begin: Lsn; children: number[]; nodes: string[] }>()
  const conflicts = new Set<number>()
  for (const node of nodes) {
    node.history.forEach((entry, i) => {
      const parent = i === 0 ? null : node.history[i - 1]!.tli
      const known = timelines.get(entry.tli)
      if (!known) timelines.set(entry.tli, { tli: entry.tli, parent, begin: entry.begin, children: [], nodes: [] })
      else if (known.parent !== parent || known.begin !== entry.begin) conflicts.add(entry.tli)
    })
    timelines.get(node.tli)?.nodes.push(node.name)
  }
  const roots: number[] = []
  for (const t of timelines.values()) {
    if (t.parent === null || !timelines.has(t.parent)) roots.push(t.tli)
    else timelines.get(t.parent)!.children.push(t.tli)
  }
  for (const t of timelines.values()) t.children.sort((a, b) => Number(timelines.get(a)!.begin - timelines.get(b)!.begin) || a - b)
  return { timelines, roots: roots.sort((a, b) => a - b), conflicts: [...conflicts].sort((a, b) => a - b) }
}

/** A terminal drawing of the graph: one line per timeline and per node, branches indented. */
export function drawTimelineGraph(graph: TimelineGraph, nodes: readonly NodeState[]): string {
  const byName = new Map(nodes.map((n) => [n.name, n]))
  const lines: string[] = []
  const visit = (tli: number, prefix: string, last: boolean, depth: number) => {
    const t = graph.timelines.get(tli)!
    const branch = depth === 0 ? '' : last ? '└─ ' : '├─ '
    const fork = t.parent === null ? '' : ` forked from timeline ${t.parent} at ${formatLsn(t.begin)}`
    const conflict = graph.conflicts.includes(tli) ? '  (!) other nodes used this timeline number from another fork point' : ''
    lines.push(`${prefix}${branch}timeline ${tli}${fork}${conflict}`)
    const childPrefix = depth === 0 ? '' : prefix + (last ? '   ' : '│  ')
    const items = [...t.nodes.map((n) => ({ node: n })), ...t.children.map((c) => ({ child: c }))]
    items.forEach((item, i) => {
      const isLast = i === items.length - 1
      if ('node' in item) {
        const n = byName.get(item.node!)!
        lines.push(`${childPrefix}${isLast ? '└─ ' : '├─ '}● ${n.name}: ${n.state}, WAL ends at ${formatLsn(n.walEnd)}`)
      } else {
        visit(item.child!, childPrefix, isLast, depth + 1)
      }
    })
  }
  graph.roots.forEach((root, i) => visit(root, '', i === graph.roots.length - 1, 0))
  return lines.join('\n') + '\n'
}

export interface PairAnalysis {
  readonly source: string
  readonly target: string
  /** The most recent timeline both histories contain, and where they part (null = same timeline). */
  readonly commonTimeline: number | null
  readonly divergence: Lsn | null
  /** 'rewind' when the target wrote past the fork; 'none' when it can follow the source as it is. */
  readonly verdict: 'rewind' | 'none' | 'same-timeline' | 'unrelated'
}

/** The pg_rewind view of one ordered pair, from histories and WAL ends alone. */
export function analysePair(source: NodeState, target: NodeState): PairAnalysis {
  const base = { source: source.name, target: target.name }
  const common = findCommonAncestor(source.history, target.history)
  if (common === null) return { ...base, commonTimeline: null, divergence: null, verdict: 'unrelated' }
  if (source.tli === target.tli) return { ...base, commonTimeline: common.tli, divergence: null, verdict: 'same-timeline' }
  const divergence = common.lsn ?? target.walEnd
  return { ...base, commonTimeline: common.tli, divergence, verdict: target.walEnd > divergence ? 'rewind' : 'none' }
}
