// The removals of a group, run in the thread pool beside its copy. While the copy runs they go one
// at a time: side by side, unlinks slow every other metadata call of the copy (measured). Once the
// copy has settled nothing else waits on the file system's metadata, and the rest go several at
// once: the unlink of a 16 MB WAL segment costs about 7 ms of the kernel's time here, and a
// rewind may remove hundreds of them (scale 200, local: 126 segments, 0.9 s one by one, most of it
// after the copy had ended). A removal marked `alone` (a directory or a link, after the files in
// it) starts once every removal before it has ended, and nothing starts beside it.

export class RemovalQueue {
  private readonly waiting: Array<{ run: () => Promise<void>; alone: boolean }> = []
  private running = 0
  private runningAlone = false
  private limit = 1
  private failure: { reason: unknown } | null = null
  private waiters: Array<() => void> = []

  add(run: () => Promise<void>, opts: { alone?: boolean } = {}): void {
    this.waiting.push({ run, alone: opts.alone ?? false })
    this.pump()
  }

  /** Lets `limit` removals run at once from now on. */
  widen(limit: number): void {
    this.limit = Math.max(this.limit, limit)
    this.pump()
  }

  /**
   * Resolves once every removal added has ended; rejects with the first failure, once the removals
   * running then have ended (none starts after a failure).
   */
  settled(): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.running > 0 || (this.failure === null && this.waiting.length > 0)) {
          this.waiters.push(check)
          return
        }
        if (this.failure !== null) reject(this.failure.reason)
        else resolve()
      }
      check()
    })
  }

  private pump(): void {
    while (this.failure === null && !this.runningAlone && this.waiting.length > 0) {
      const next = this.waiting[0]!
      if (next.alone ? this.running > 0 : this.running >= this.limit) return
      this.waiting.shift()
      this.running++
      this.runningAlone = next.alone
      Promise.resolve()
        .then(next.run)
        .catch((reason: unknown) => {
          this.failure ??= { reason }
        })
        .finally(() => {
          this.running--
          this.runningAlone = false
          this.pump()
          const waiters = this.waiters
          this.waiters = []
          for (const wake of waiters) wake()
        })
    }
  }
}
