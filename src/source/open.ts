// The source factory: what the caller names as the source (a stopped data directory or a
// connection string) opened as a Source. The one place that knows both implementations; everything
// past it holds a Source. The server source (and node-postgres with it) is loaded only when asked for.

import type { Emit } from '../events.js'
import { LocalSource } from './local.js'
import type { Source } from './source.js'

export type SourceSpec = { readonly kind: 'local'; readonly pgdata: string } | { readonly kind: 'server'; readonly conninfo: string }

/** Opens the source named by `spec`. */
export async function openSource(
  spec: SourceSpec,
  opts: { env: NodeJS.ProcessEnv; jobs?: number | null; timeoutSeconds?: number | null; emit: Emit },
): Promise<Source> {
  if (spec.kind === 'local') return new LocalSource(spec.pgdata, opts.jobs ?? 4)
  const { openServerSource } = await import('./server.js')
  const source = await openServerSource(spec.conninfo, {
    env: opts.env,
    ...(opts.jobs ? { jobs: opts.jobs } : {}),
    ...(opts.timeoutSeconds ? { timeoutMs: opts.timeoutSeconds * 1000 } : {}),
    emit: opts.emit,
  })
  opts.emit({ type: 'step', message: 'connected to server' })
  return source
}
