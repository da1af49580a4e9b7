// Where the source cluster's files come from. One interface, two implementations (local.ts for a
// stopped data directory, server.ts for a running server); no caller knows which it has.
// Everything a Source returns is untrusted input: paths are checked by the planner and by the
// target writer before anything is written.

import type { ControlFile } from '../pg/control.js'
import type { Lsn } from '../pg/lsn.js'

export type FileType = 'file' | 'directory' | 'symlink'

/** One entry of a data directory listing; `path` is relative to the data directory, '/'-separated. */
export interface FileEntry {
  readonly path: string
  readonly type: FileType
  /** Bytes, for regular files; 0 otherwise. */
  readonly size: number
  /** For symlinks (pg_wal, tablespaces): where the link points, as the link says. */
  readonly linkTarget?: string
}

/** Receives fetched data. Chunks of one file may arrive in any order; offsets are absolute. */
export interface ChunkSink {
  /**
   * Data for `path` at `offset`. A chunk shorter than requested means the file shrank. `data` is
   * lent until the returned promise settles (a source may reuse it for the next chunk): copy it to keep it.
   */
  chunk(path: string, offset: number, data: Buffer): Promise<void>
  /** The file disappeared from the source while it was being fetched. */
  missing(path: string): Promise<void>
  /**
   * Optional fast path for a source on this machine: copy the whole file at `absSourcePath` itself
   * (target-dir.ts writes only what differs); resolves to the bytes copied. A sink without it gets
   * chunks instead.
   */
  copyWholeFile?(path: string, absSourcePath: string): Promise<number>
  /**
   * A block queued with queueBlockPatch, made the source's by writing `pieces` ([offset, bytes],
   * absolute) over the target's copy of [offset, offset + length); `pieces` may be empty (the
   * block was equal). A sink without it gets each piece as a chunk.
   */
  patch?(path: string, offset: number, length: number, pieces: ReadonlyArray<readonly [number, Buffer]>): Promise<void>
}

/** Where the source's WAL ends now, for the new pg_control's minRecoveryPoint. */
export interface SourceWalEnd {
  readonly lsn: Lsn
  readonly tli: number
}

/**
 * How block digests are computed: SHA-256, which every supported server has in SQL, FIPS builds
 * included, and which CPUs with SHA extensions hash about twice as fast as MD5.
 */
export type DigestAlgorithm = 'sha256'

/** Blocks [firstBlock, firstBlock + count) of one file, whose digests are asked for. */
export interface BlockDigestRange {
  readonly path: string
  readonly firstBlock: number
  readonly count: number
}

export interface BlockDigests {
  readonly algorithm: DigestAlgorithm
  /**
   * Per range, in order: a digest per block the file holds in the range (the last one over the
   * bytes there when the file ends inside a block), fewer when it ends sooner; null when the
   * source has no such file.
   */
  readonly ranges: ReadonlyArray<readonly Buffer[] | null>
}

export interface Source {
  /** What the source is, for messages and reports; behaviour follows the capabilities below. */
  readonly kind: 'local' | 'server'
  /**
   * A running server: its files and WAL change while they are copied, and what it reports is read
   * as it is now. Otherwise a stopped directory, which must not change at all.
   */
  readonly running: boolean
  /** For messages: the directory, or the server as host:port. */
  readonly description: string
  /** Whether what is fetched crosses a network: not for a directory, a Unix socket or a loopback address. */
  readonly overNetwork: boolean
  /** The data directory, when the source is a stopped one on this machine: its WAL is read in place. */
  readonly localDataDir?: string
  /** Every file, directory and symlink of the data directory, following pg_wal and tablespaces. */
  listFiles(): Promise<FileEntry[]>
  /** The files in pg_wal now (not its subdirectories): WAL written since listFiles. */
  listWalFiles(): Promise<FileEntry[]>
  /** A whole small file (pg_control, PG_VERSION, timeline history); throws FILE_IO if absent. */
  readFile(path: string): Promise<Buffer>
  /** Reads a small file, or returns null if the source does not have it. */
  readFileIfExists(path: string): Promise<Buffer | null>
  /** Queue bytes [offset, offset+length) of `path` for the next flush. */
  queueRange(path: string, offset: number, length: number): void
  /** Queue a whole file, listed with `expectedSize` bytes; copies what the file holds at fetch time. */
  queueFile(path: string, expectedSize: number): void
  /**
   * Optional: queue block `block` of `path` to be fetched as a patch of the target's copy.
   * `pieceDigests` are the digests of that copy's pieces (compare/digest.ts pieceDigestsOf); only
   * the pieces whose digest differs cross the network, to sink.patch. A block the source holds
   * shorter comes as a chunk of what it holds; a file it no longer has, to sink.missing.
   */
  queueBlockPatch?(path: string, block: number, blockSize: number, pieceDigests: Buffer): void
  /** Fetch everything queued, delivering it to `sink`; resolves when all of it was delivered. */
  flush(sink: ChunkSink): Promise<void>
  /**
   * Digests of block ranges, computed where the files are, so that only digests cross the network
   * (src/compare). Several calls may run at once, but not alongside flush(). Optional: without
   * it, the comparison fetches the bytes through queueRange and flush.
   */
  blockDigests?(ranges: readonly BlockDigestRange[], blockSize: number): Promise<BlockDigests>
  /**
   * End of the source's WAL for minRecoveryPoint: for a stopped directory its last checkpoint,
   * for a primary the insert location, for a standby its minRecoveryPoint.
   */
  walEnd(sourceControl: ControlFile): Promise<SourceWalEnd>
  /**
   * The primary_conninfo value -R writes for following this source (as pg_rewind builds it from
   * the connection), or null for a data directory.
   */
  recoveryConninfo(): string | null
  close(): Promise<void>
}
