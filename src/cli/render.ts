// Renders rewind events and errors as text on stderr, the way pg_rewind's logging prints them
// (`prog: message`, `prog: error: …`, `prog: detail: …`), so log scrapers written for pg_rewind
// keep working. The JSON renderer lives with the command: it only prints the final document.

import type { RewindError } from '../errors.js'
import type { Emit } from '../events.js'
import type { CliIo } from './io.js'

export function textRenderer(io: CliIo, programName: string, opts: { progress: boolean; debug: boolean }): Emit {
  const tty = io.stderr.isTTY === true
  let progressOpen = false
  const line = (text: string) => {
    if (progressOpen) {
      io.stderr.write('\n')
      progressOpen = false
    }
    io.stderr.write(`${programName}: ${text}\n`)
  }
  return (event) => {
    switch (event.type) {
      case 'info':
        line(event.message)
        break
      case 'step':
        if (opts.progress) line(event.message)
        break
      case 'debug':
        if (opts.debug) line(`debug: ${event.message}`)
        break
      case 'warning':
        line(`warning: ${event.message}`)
        break
      case 'progress': {
        if (!opts.progress) break
        const total = Math.max(event.total, event.done)
        const totalKb = String(Math.floor(total / 1024))
        const doneKb = String(Math.floor(event.done / 1024)).padStart(totalKb.length)
        const percent = total ? Math.min(100, Math.floor((event.done * 100) / total)) : 0
        const final = event.done >= total
        io.stderr.write(`${doneKb}/${totalKb} kB (${percent}%) copied${!final && tty ? '\r' : '\n'}`)
        progressOpen = !final && tty
        break
      }
      case 'compare-progress': {
        if (!opts.progress) break
        const mb = (bytes: number) => (bytes / 1048576).toFixed(0)
        const seconds = Math.max((Date.now() - event.startedAt) / 1000, 0.001)
        const percent = event.total ? Math.min(100, Math.floor((event.compared * 100) / event.total)) : 100
        const final = event.compared >= event.total
        io.stderr.write(
          `${mb(event.compared)}/${mb(event.total)} MB compared (${percent}%), ${mb(event.differing)} MB to copy, ` +
            `${(event.compared / 1048576 / seconds).toFixed(0)} MB/s${!final && tty ? '\r' : '\n'}`,
        )
        progressOpen = !final && tty
        break
      }
    }
  }
}

/** pg_rewind-style error text, plus whether the target was touched (an operator's first question). */
export function formatError(err: RewindError, programName: string): string {
  let text = `${programName}: error: ${err.message}\n`
  if (err.info.detail) for (const d of err.info.detail.split('\n')) text += `${programName}: detail: ${d}\n`
  if (err.info.hint) text += `${programName}: hint: ${err.info.hint}\n`
  if (err.code !== 'USAGE') {
    text += err.rerun
      ? `${programName}: the target data directory was modified and cannot be started until the rewind is finished: run the same command again to finish it (the rewind resumes from walrewind.resume in the target)\n`
      : err.targetModified
        ? `${programName}: the target data directory was modified and is not usable as it is: restore it from a base backup or a new copy of the source\n`
        : `${programName}: the target data directory was not modified\n`
  }
  return text
}

export function errorJson(err: RewindError): Record<string, unknown> {
  return { code: err.code, message: err.message, ...err.info, targetModified: err.targetModified, rerun: err.rerun }
}
