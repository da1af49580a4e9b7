// Last line of defence against leaked servers: when a test process exits (or is interrupted)
// without Kit.cleanup, every postmaster listed in a live kit's pid files gets SIGQUIT (immediate
// shutdown). It has to be synchronous, since an 'exit' handler cannot wait.

import { runningPostmaster } from './node.js'

export interface Reapable {
  /** Data directories whose postmaster.pid may name a running server. */
  dataDirs(): string[]
  /** Synchronous release of what the kit holds (port locks). */
  releaseSync(): void
}

// Module state on purpose: the process has one set of exit handlers, shared by all kits in it.
const live = new Set<Reapable>()
let installed = false

export function register(kit: Reapable): void {
  live.add(kit)
  if (installed) return
  installed = true
  process.on('exit', reapAll)
  for (const [signal, status] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.once(signal, () => {
      reapAll()
      process.exit(status)
    })
  }
}

export function unregister(kit: Reapable): void {
  live.delete(kit)
}

function reapAll(): void {
  for (const kit of live) {
    for (const dataDir of kit.dataDirs()) {
      const pid = runningPostmaster(dataDir)
      if (pid === null) continue
      try {
        process.kill(pid, 'SIGQUIT')
        process.stderr.write(`walrewind test kit: server in ${dataDir} still running at exit, sent SIGQUIT to pid ${pid}\n`)
      } catch {
        // already gone
      }
    }
    kit.releaseSync()
  }
  live.clear()
}
