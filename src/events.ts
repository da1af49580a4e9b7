// What a rewind tells the outside world while it runs. The library emits these (the pipeline in
// rewind/, a server source in source/); the CLI renders them as pg_rewind-style text, JSON lines
// or a progress bar. Nothing here prints. At the top of src/, next to errors.ts, so that every
// layer imports them from below.

export type RewindEvent =
  /** A step pg_rewind reports with pg_log_info (always shown in text mode). */
  | { type: 'info'; message: string }
  /** A step pg_rewind only reports with --progress. */
  | { type: 'step'; message: string }
  | { type: 'debug'; message: string }
  | { type: 'warning'; code: string; message: string }
  /** Bytes copied so far out of the planned total. */
  | { type: 'progress'; done: number; total: number }
  /** Block comparison: bytes compared so far of the total, bytes found different (to copy), since `startedAt` (ms). */
  | { type: 'compare-progress'; compared: number; total: number; differing: number; startedAt: number }

export type Emit = (event: RewindEvent) => void

export const silent: Emit = () => {}
