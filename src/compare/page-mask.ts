// PostgreSQL's own answer to "is this the same page once replayed?": the masks of
// wal_consistency_checking (access/common/bufmask.c and the rm_mask of each access method), which
// blank what a server changes without WAL (hint bits, LP_DEAD flags, free-space hints, command
// ids, unused space, the LSN and checksum). Two versions of a block that are equal once masked
// differ only in what replay does not reproduce: a standby's page next to its primary's.
//
// The access method is told from the page itself (the size and id of its special space), the
// fork from the file name. Pages are in the byte order of this machine, as the server wrote them.

/** Which fork of a relation a page is of: the visibility map's pages are bitmaps, not item pages. */
export type PageFork = 'main' | 'vm' | 'init'

export type PageKind =
  | 'new' // all zeros (PageIsNew): compared as is
  | 'heap'
  | 'btree'
  | 'hash'
  | 'gist'
  | 'spgist'
  | 'gin'
  | 'brin'
  | 'sequence'
  | 'vm'
  | 'unknown' // a header no page has: compared as is

const PAGE_HEADER = 24
const MAXALIGN = 8

// page header fields (storage/bufpage.h)
const PD_CHECKSUM = 8
const PD_FLAGS = 10
const PD_LOWER = 12
const PD_UPPER = 14
const PD_SPECIAL = 16
const PD_PRUNE_XID = 20
const PD_HAS_FREE_LINES = 0x1
const PD_PAGE_FULL = 0x2
const PD_ALL_VISIBLE = 0x4

// line pointers (storage/itemid.h): lp_off:15, lp_flags:2, lp_len:15
const LP_NORMAL = 1

// heap tuple header (access/htup_details.h)
const T_CID = 8
const T_CTID = 12
const T_INFOMASK = 20
const HEAP_TUPLE_HEADER = 23
const HEAP_XACT_MASK = 0xfff0
const HEAP_XMIN_FROZEN = 0x0300
const HEAP_XMAX_COMMITTED = 0x0400
const HEAP_XMAX_INVALID = 0x0800
const SPEC_TOKEN_OFFSET = 0xfffe

// special spaces
const BTP_LEAF = 1
const BTP_DELETED = 4
const BTP_SPLIT_END = 1 << 5
const BTP_HAS_GARBAGE = 1 << 6
const MAX_BT_CYCLE_ID = 0xff7f
const HASHO_PAGE_ID = 0xff80
const GIST_PAGE_ID = 0xff81
const SPGIST_PAGE_ID = 0xff82
const LH_OVERFLOW_PAGE = 1
const LH_BUCKET_PAGE = 2
const LH_PAGE_TYPE = 0xf
const LH_PAGE_HAS_DEAD_TUPLES = 1 << 7
const F_LEAF = 1
const F_FOLLOW_RIGHT = 1 << 3
const F_HAS_GARBAGE = 1 << 4
const GIN_DELETED = 2
const BRIN_PAGETYPE_REGULAR = 0xf093
const BRIN_PAGETYPES = new Set([0xf091, 0xf092, BRIN_PAGETYPE_REGULAR])
const SEQUENCE_MAGIC = 0x1717

let zeros = Buffer.alloc(0)

export function isAllZero(page: Buffer): boolean {
  if (zeros.length < page.length) zeros = Buffer.alloc(page.length)
  return page.equals(zeros.subarray(0, page.length))
}

/** pd_lower, pd_upper and pd_special in order and inside the page (mask_unused_space's check). */
function saneHeader(page: Buffer): boolean {
  const lower = page.readUInt16LE(PD_LOWER)
  const upper = page.readUInt16LE(PD_UPPER)
  const special = page.readUInt16LE(PD_SPECIAL)
  return lower >= PAGE_HEADER && lower <= upper && upper <= special && special <= page.length && special % MAXALIGN === 0
}

/** What kind of page `page` is, from its special space (and the fork it lies in). */
export function pageKind(page: Buffer, fork: PageFork): PageKind {
  if (page.length < PAGE_HEADER || isAllZero(page)) return 'new'
  if (!saneHeader(page)) return 'unknown'
  if (fork === 'vm') return 'vm'
  const special = page.readUInt16LE(PD_SPECIAL)
  const size = page.length - special
  if (size === 0) return 'heap'
  const lastId = page.readUInt16LE(page.length - 2)
  if (size === 16) {
    if (lastId === HASHO_PAGE_ID) return 'hash'
    if (lastId === GIST_PAGE_ID) return 'gist'
    if (lastId <= MAX_BT_CYCLE_ID) return 'btree'
    return 'unknown'
  }
  if (size === 8) {
    if (lastId === SPGIST_PAGE_ID) return 'spgist'
    if (BRIN_PAGETYPES.has(lastId)) return 'brin'
    // sequence_magic, then padding; a sequence's page holds its one tuple.
    if (page.readUInt32LE(special) === SEQUENCE_MAGIC && page.readUInt32LE(special + 4) === 0 && maxOffset(page) === 1) return 'sequence'
    return 'gin'
  }
  return 'unknown'
}

function maskLsnAndChecksum(page: Buffer): void {
  page.fill(0, 0, 8)
  page.writeUInt16LE(0, PD_CHECKSUM)
}

/** mask_page_hint_bits: pd_prune_xid and the header's hint flags. */
function maskPageHintBits(page: Buffer): void {
  page.writeUInt32LE(0, PD_PRUNE_XID)
  page.writeUInt16LE(page.readUInt16LE(PD_FLAGS) & ~(PD_HAS_FREE_LINES | PD_PAGE_FULL | PD_ALL_VISIBLE), PD_FLAGS)
}

function maskUnusedSpace(page: Buffer): void {
  if (saneHeader(page)) page.fill(0, page.readUInt16LE(PD_LOWER), page.readUInt16LE(PD_UPPER))
}

/** mask_page_content: everything after the header, and pd_lower and pd_upper. */
function maskPageContent(page: Buffer): void {
  page.fill(0, PAGE_HEADER)
  page.writeUInt16LE(0, PD_LOWER)
  page.writeUInt16LE(0, PD_UPPER)
}

function maxOffset(page: Buffer): number {
  const lower = page.readUInt16LE(PD_LOWER)
  return lower <= PAGE_HEADER ? 0 : Math.floor((lower - PAGE_HEADER) / 4)
}

/** mask_lp_flags: every used line pointer made LP_UNUSED (LP_DEAD is set without WAL). */
function maskLpFlags(page: Buffer): void {
  for (let off = 1; off <= maxOffset(page); off++) {
    const at = PAGE_HEADER + (off - 1) * 4
    const lp = page.readUInt32LE(at)
    if (((lp >>> 15) & 3) !== 0) page.writeUInt32LE((lp & ~(3 << 15)) >>> 0, at)
  }
}

/** heap_mask: the page's hints, then each tuple's hint bits, command id, speculative token and padding. */
function maskHeap(page: Buffer, relationBlock: number): void {
  maskLsnAndChecksum(page)
  maskPageHintBits(page)
  maskUnusedSpace(page)
  for (let off = 1; off <= maxOffset(page); off++) {
    const lp = page.readUInt32LE(PAGE_HEADER + (off - 1) * 4)
    const lpOff = lp & 0x7fff
    const lpFlags = (lp >>> 15) & 3
    const lpLen = lp >>> 17
    if (lpFlags === LP_NORMAL && lpOff + HEAP_TUPLE_HEADER <= page.length) {
      const infomask = page.readUInt16LE(lpOff + T_INFOMASK)
      // Hint bits of a tuple whose xmin is not frozen are set without WAL; xmax's always are.
      const masked =
        (infomask & HEAP_XMIN_FROZEN) !== HEAP_XMIN_FROZEN
          ? infomask & ~HEAP_XACT_MASK
          : infomask & ~(HEAP_XMAX_COMMITTED | HEAP_XMAX_INVALID)
      page.writeUInt16LE(masked, lpOff + T_INFOMASK)
      // Replay sets the command id to FirstCommandId.
      page.writeUInt32LE(0, lpOff + T_CID)
      // A speculative insertion's token is not logged: replay leaves ctid pointing at the tuple.
      if (page.readUInt16LE(lpOff + T_CTID + 4) === SPEC_TOKEN_OFFSET) {
        page.writeUInt16LE((relationBlock >>> 16) & 0xffff, lpOff + T_CTID)
        page.writeUInt16LE(relationBlock & 0xffff, lpOff + T_CTID + 2)
        page.writeUInt16LE(off, lpOff + T_CTID + 4)
      }
    }
    if (lpLen > 0) {
      const padEnd = Math.min(page.length, lpOff + Math.ceil(lpLen / MAXALIGN) * MAXALIGN)
      if (lpOff + lpLen < padEnd) page.fill(0, lpOff + lpLen, padEnd)
    }
  }
}

function maskBtree(page: Buffer): void {
  maskLsnAndChecksum(page)
  maskPageHintBits(page)
  maskUnusedSpace(page)
  const special = page.readUInt16LE(PD_SPECIAL)
  const flags = page.readUInt16LE(special + 12)
  if ((flags & BTP_DELETED) !== 0) {
    // Replay initializes a deleted page anew.
    maskPageContent(page)
    return
  }
  if ((flags & BTP_LEAF) !== 0) maskLpFlags(page)
  page.writeUInt16LE(flags & ~(BTP_HAS_GARBAGE | BTP_SPLIT_END), special + 12)
  page.writeUInt16LE(0, special + 14)
}

function maskHash(page: Buffer): void {
  maskLsnAndChecksum(page)
  maskPageHintBits(page)
  maskUnusedSpace(page)
  const special = page.readUInt16LE(PD_SPECIAL)
  const flag = page.readUInt16LE(special + 12)
  const type = flag & LH_PAGE_TYPE
  if (type === 0) maskPageContent(page)
  else if (type === LH_BUCKET_PAGE || type === LH_OVERFLOW_PAGE) maskLpFlags(page)
  if (type !== 0) page.writeUInt16LE(flag & ~LH_PAGE_HAS_DEAD_TUPLES, special + 12)
}

function maskGist(page: Buffer): void {
  maskLsnAndChecksum(page)
  maskPageHintBits(page)
  maskUnusedSpace(page)
  const special = page.readUInt16LE(PD_SPECIAL)
  page.fill(0, special, special + 8) // the NSN, an LSN too
  const flags = page.readUInt16LE(special + 12)
  if ((flags & F_LEAF) !== 0) maskLpFlags(page)
  page.writeUInt16LE(flags & ~(F_FOLLOW_RIGHT | F_HAS_GARBAGE), special + 12)
}

function maskGin(page: Buffer): void {
  maskLsnAndChecksum(page)
  maskPageHintBits(page)
  const special = page.readUInt16LE(PD_SPECIAL)
  if ((page.readUInt16LE(special + 6) & GIN_DELETED) !== 0) maskPageContent(page)
  else maskUnusedSpace(page)
}

/** A copy of `page` with what replay is not bound to reproduce blanked, as PostgreSQL masks it. */
export function maskedPage(page: Buffer, kind: PageKind, relationBlock: number): Buffer {
  const copy = Buffer.from(page)
  switch (kind) {
    case 'new':
    case 'unknown':
      break
    case 'heap':
      maskHeap(copy, relationBlock)
      break
    case 'btree':
      maskBtree(copy)
      break
    case 'hash':
      maskHash(copy)
      break
    case 'gist':
      maskGist(copy)
      break
    case 'gin':
      maskGin(copy)
      break
    case 'spgist':
      maskLsnAndChecksum(copy)
      maskPageHintBits(copy)
      maskUnusedSpace(copy)
      break
    case 'brin':
      maskLsnAndChecksum(copy)
      maskPageHintBits(copy)
      if (copy.readUInt16LE(copy.length - 2) === BRIN_PAGETYPE_REGULAR) maskUnusedSpace(copy)
      break
    case 'sequence': {
      // A primary hands out values from the page and logs them ahead: a standby's page holds the
      // logged state. The one tuple is not compared.
      maskLsnAndChecksum(copy)
      maskUnusedSpace(copy)
      copy.fill(0, copy.readUInt16LE(PD_UPPER), copy.readUInt16LE(PD_SPECIAL))
      break
    }
    case 'vm':
      maskLsnAndChecksum(copy)
      break
  }
  return copy
}

/**
 * Whether two versions of a block are the same page once masked: then they differ only in what
 * a server changes without WAL. Pages of different kinds never are.
 */
export function sameMaskedPage(a: Buffer, b: Buffer, fork: PageFork, relationBlock: number): { same: boolean; kind: PageKind } {
  const kind = pageKind(a, fork)
  if (a.length !== b.length || kind !== pageKind(b, fork)) return { same: false, kind }
  return { same: maskedPage(a, kind, relationBlock).equals(maskedPage(b, kind, relationBlock)), kind }
}
