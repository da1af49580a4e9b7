// The one error type of walrewind. Library code throws RewindError and never exits; the CLI maps
// `code` to an exit status through EXIT_STATUS below. Messages keep pg_rewind's wording (lowercase,
// quoted paths, X/X LSNs) so existing log scrapers still match.

/** Stable error codes. The catalogue (meaning, exit status) is in README.md "Exit codes". */
export type RewindCode =
  // the command line was wrong
  | 'USAGE'
  // a precondition failed before anything was written (target untouched)
  | 'RUN_AS_ROOT'
  | 'TARGET_DIR'
  | 'CONTROL_FILE_INVALID'
  | 'DIFFERENT_SYSTEMS'
  | 'INCOMPATIBLE_VERSION'
  | 'NO_CHECKSUMS_OR_HINTS'
  | 'TARGET_NOT_SHUT_DOWN'
  | 'SOURCE_NOT_SHUT_DOWN'
  | 'SOURCE_FULL_PAGE_WRITES_OFF'
  | 'TIMELINE_HISTORY_INVALID'
  | 'NO_COMMON_ANCESTOR'
  | 'CRASH_RECOVERY_FAILED'
  | 'POSTGRES_NOT_FOUND'
  | 'TARGET_NO_SPACE'
  | 'TARGET_NOT_WRITABLE'
  // --require-source-wal: the source no longer has WAL the rewound node must replay
  | 'SOURCE_WAL_MISSING'
  // an interrupted rewind's journal that cannot be resumed
  | 'JOURNAL_INVALID'
  | 'JOURNAL_CONFLICT'
  | 'RESTORE_COMMAND'
  // WAL could not be read (target untouched)
  | 'WAL_MISSING'
  | 'WAL_INVALID'
  | 'WAL_UNSUPPORTED_RECORD'
  // the source failed or changed
  | 'SOURCE_CONNECTION'
  | 'SOURCE_PRIVILEGE'
  | 'SOURCE_QUERY'
  | 'SOURCE_TIMEOUT'
  | 'SOURCE_UNSAFE_PATH'
  | 'SOURCE_FILE_CHANGED'
  | 'SOURCE_FILE_LIST'
  | 'SOURCE_CHANGED'
  | 'SOURCE_DATABASE_COPY'
  // reading or writing local files
  | 'FILE_IO'
  | 'FILE_TYPE_MISMATCH'
  | 'INTERNAL'

export interface RewindErrorInfo {
  /** File or directory the error is about, relative to a data directory or absolute. */
  path?: string
  /** WAL location, formatted X/X. */
  lsn?: string
  /** WAL segment file name. */
  segment?: string
  /** Second line, as PostgreSQL's errdetail. */
  detail?: string
  /** Advice, as PostgreSQL's errhint. */
  hint?: string
}

export class RewindError extends Error {
  readonly code: RewindCode
  readonly info: RewindErrorInfo
  /** Set by the pipeline once it has started writing the target (the point of no return). */
  targetModified = false

  /**
   * Whether running the same command again can finish the rewind: the target was modified, and
   * its journal says how to go on. A journal that cannot be used leaves only a new copy.
   */
  get rerun(): boolean {
    return this.targetModified && this.code !== 'JOURNAL_INVALID' && this.code !== 'JOURNAL_CONFLICT' && this.code !== 'USAGE'
  }

  constructor(code: RewindCode, message: string, info: RewindErrorInfo = {}, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'RewindError'
    this.code = code
    this.info = info
  }
}

/**
 * Exit status per error code for walrewind's own interface. Invoked as pg_rewind, every error
 * exits 1 like pg_rewind does. The numbers group what an operator or an HA manager acts on:
 * 2 the command line, 3 a refused precondition, 4 WAL, 5 the source, 6 local I/O,
 * 7 a failure after the target was modified (it needs a new rewind or a base backup).
 */
const EXIT_STATUS: Record<RewindCode, number> = {
  USAGE: 2,
  RUN_AS_ROOT: 3,
  TARGET_DIR: 3,
  CONTROL_FILE_INVALID: 3,
  DIFFERENT_SYSTEMS: 3,
  INCOMPATIBLE_VERSION: 3,
  NO_CHECKSUMS_OR_HINTS: 3,
  TARGET_NOT_SHUT_DOWN: 3,
  SOURCE_NOT_SHUT_DOWN: 3,
  SOURCE_FULL_PAGE_WRITES_OFF: 3,
  TIMELINE_HISTORY_INVALID: 3,
  NO_COMMON_ANCESTOR: 3,
  CRASH_RECOVERY_FAILED: 3,
  POSTGRES_NOT_FOUND: 3,
  TARGET_NO_SPACE: 3,
  TARGET_NOT_WRITABLE: 3,
  SOURCE_WAL_MISSING: 3,
  JOURNAL_INVALID: 3,
  JOURNAL_CONFLICT: 3,
  RESTORE_COMMAND: 4,
  WAL_MISSING: 4,
  WAL_INVALID: 4,
  WAL_UNSUPPORTED_RECORD: 4,
  SOURCE_CONNECTION: 5,
  SOURCE_PRIVILEGE: 5,
  SOURCE_QUERY: 5,
  SOURCE_TIMEOUT: 5,
  SOURCE_UNSAFE_PATH: 5,
  SOURCE_FILE_CHANGED: 5,
  SOURCE_FILE_LIST: 5,
  SOURCE_CHANGED: 5,
  SOURCE_DATABASE_COPY: 5,
  FILE_IO: 6,
  FILE_TYPE_MISMATCH: 3,
  INTERNAL: 70,
}

/** Exit status when the target was modified before the failure, whatever the code. */
export const EXIT_TARGET_MODIFIED = 7

export function exitStatusOf(err: RewindError): number {
  if (err.targetModified && err.code !== 'USAGE') return EXIT_TARGET_MODIFIED
  return EXIT_STATUS[err.code]
}

export function isRewindError(err: unknown): err is RewindError {
  return err instanceof RewindError
}
