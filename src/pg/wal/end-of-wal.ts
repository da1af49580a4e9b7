// How reading WAL ends: like xlogreader, the first record that cannot be read ends the WAL, with
// the server's message (stale recycled pages, zeroed tails and torn records all end WAL there).

import type { Lsn } from '../lsn.js'

export type EndOfWalReason =
  | 'zero-length' // xl_tot_len is 0: the zeroed tail of a segment
  | 'bad-magic'
  | 'bad-pageaddr' // typically a recycled segment's old page
  | 'bad-page-header' // info bits, long header fields, timeline sequence
  | 'bad-record-header' // length, resource manager, offset
  | 'bad-crc'
  | 'bad-prev-link'
  | 'bad-contrecord' // a continuation page that does not continue the record
  | 'bad-record' // a record whose CRC holds but whose block headers do not add up
  | 'truncated-segment' // the segment file is shorter than a page that is needed

export interface EndOfWal {
  /** Where reading stopped: the start of the record that could not be read (xlogreader's EndRecPtr). */
  readonly lsn: Lsn
  readonly reason: EndOfWalReason
  /** The server's message for it, naming the LSN and, for page problems, the segment. */
  readonly message: string
}

export class WalEnd implements EndOfWal {
  constructor(
    readonly lsn: Lsn,
    readonly reason: EndOfWalReason,
    readonly message: string,
  ) {}
}
