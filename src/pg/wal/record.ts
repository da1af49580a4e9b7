// WAL records (access/xlogrecord.h): the 24-byte XLogRecord header, the CRC over body-then-header,
// and DecodeXLogRecord's walk over block references, origin, top-level xid and main data with all
// of its length accounting. Records decode in place: block fields are read from the buffer the
// record sits in and mainData is a view of it, so nothing is copied.

import { RewindError } from '../../errors.js'
import { crc32cRange } from '../crc32c.js'
import { u16, u32 } from './bytes.js'
import { maxAlign, type Lsn } from '../lsn.js'
import type { BimgBits, Compression, VersionProfile } from '../versions.js'

/** SizeOfXLogRecord. */
export const SIZE_OF_XLOG_RECORD = 24

// XLogRecord, access/xlogrecord.h
const XL_TOT_LEN = 0 /* uint32 */,
  XL_XID = 4 /* TransactionId */,
  XL_PREV = 8 /* XLogRecPtr */
const XL_INFO = 16 /* uint8 */,
  XL_RMID = 17 /* RmgrId */,
  XL_CRC = 20 /* pg_crc32c */

/** XLR_MAX_BLOCK_ID and the special fragment ids. */
export const XLR_MAX_BLOCK_ID = 32
export const XLR_BLOCK_ID_DATA_SHORT = 255
export const XLR_BLOCK_ID_DATA_LONG = 254
export const XLR_BLOCK_ID_ORIGIN = 253
export const XLR_BLOCK_ID_TOPLEVEL_XID = 252

// fork_flags of XLogRecordBlockHeader
export const BKPBLOCK_FORK_MASK = 0x0f
export const BKPBLOCK_HAS_IMAGE = 0x10
export const BKPBLOCK_HAS_DATA = 0x20
export const BKPBLOCK_WILL_INIT = 0x40
export const BKPBLOCK_SAME_REL = 0x80

export interface BlockImage {
  readonly bimg_len: number
  readonly hole_offset: number
  readonly hole_length: number
  readonly bimg_info: number
  readonly compression: Compression
}

export interface BlockRef {
  readonly block_id: number
  readonly fork_flags: number
  readonly forkNumber: number
  readonly spcOid: number
  readonly dbOid: number
  readonly relNumber: number
  readonly blockNumber: number
  readonly hasImage: boolean
  readonly applyImage: boolean
  readonly hasData: boolean
  readonly willInit: boolean
  readonly data_length: number
  readonly image?: BlockImage
}

export interface WalRecord {
  /** Where the record starts. */
  readonly lsn: Lsn
  /** xlogreader's EndRecPtr: MAXALIGNed end, or the next segment's start after XLOG_SWITCH. */
  readonly endLsn: Lsn
  readonly xl_tot_len: number
  readonly xl_xid: number
  readonly xl_prev: Lsn
  readonly xl_info: number
  readonly xl_rmid: number
  readonly xl_crc: number
  readonly blocks: readonly BlockRef[]
  /** Replication origin (XLR_BLOCK_ID_ORIGIN), if the record has one. */
  readonly origin?: number
  /** XLR_BLOCK_ID_TOPLEVEL_XID (14+), if the record has one. */
  readonly toplevelXid?: number
  /**
   * The main data: a view of the buffer the record was decoded from, which the reader reuses. Valid
   * until the reader has read a few windows further or is closed (then reading it throws); copy it
   * to keep it longer. The other fields stay valid.
   */
  readonly mainData: Buffer
  readonly main_data_len: number
  /** Σ bimg_len over the blocks: pg_waldump's "fpi" length; rec = xl_tot_len − fpiLength. */
  readonly fpiLength: number
}

const NO_BLOCKS: readonly BlockRef[] = Object.freeze([])
const NO_DATA = Buffer.alloc(0)

function big(hi: number, lo: number): Lsn {
  return (BigInt(hi) << 32n) | BigInt(lo)
}

class DecodedImage implements BlockImage {
  bimg_len = 0
  hole_offset = 0
  hole_length = 0
  bimg_info = 0
  compression: Compression = 'none'

  /** @internal */
  set(bimgLen: number, holeOffset: number, holeLength: number, bimgInfo: number, bimg: BimgBits): void {
    this.bimg_len = bimgLen
    this.hole_offset = holeOffset
    this.hole_length = holeLength
    this.bimg_info = bimgInfo
    this.compression =
      (bimgInfo & bimg.COMPRESS_PGLZ) !== 0
        ? 'pglz'
        : (bimgInfo & bimg.COMPRESS_LZ4) !== 0
          ? 'lz4'
          : (bimgInfo & bimg.COMPRESS_ZSTD) !== 0
            ? 'zstd'
            : 'none'
  }
}

class DecodedBlock implements BlockRef {
  block_id = 0
  fork_flags = 0
  forkNumber = 0
  spcOid = 0
  dbOid = 0
  relNumber = 0
  blockNumber = 0
  hasImage = false
  applyImage = false
  hasData = false
  willInit = false
  data_length = 0
  image: DecodedImage | undefined = undefined
  /** Kept when the block is reused for a record without an image, for the next one that has one. */
  #spareImage: DecodedImage | null = null

  /** @internal the image object to fill for this block (kept from record to record). */
  imageSlot(): DecodedImage {
    return (this.#spareImage ??= new DecodedImage())
  }

  /** @internal `image` (from imageSlot) is undefined without BKPBLOCK_HAS_IMAGE. */
  set(
    blockId: number,
    forkFlags: number,
    spcOid: number,
    dbOid: number,
    relNumber: number,
    blockNumber: number,
    dataLength: number,
    image: DecodedImage | undefined,
    bimg: BimgBits,
  ): void {
    this.block_id = blockId
    this.fork_flags = forkFlags
    this.forkNumber = forkFlags & BKPBLOCK_FORK_MASK
    this.spcOid = spcOid
    this.dbOid = dbOid
    this.relNumber = relNumber
    this.blockNumber = blockNumber
    this.hasImage = image !== undefined
    this.applyImage = image !== undefined && (image.bimg_info & bimg.APPLY) !== 0
    this.hasData = (forkFlags & BKPBLOCK_HAS_DATA) !== 0
    this.willInit = (forkFlags & BKPBLOCK_WILL_INIT) !== 0
    this.data_length = dataLength
    this.image = image
  }
}

/**
 * A record decoded in place; LSNs and mainData are made on first use. The reader fills one object
 * per record, or (forEachRecord with reuseRecord) the same object, blocks and all, for every record,
 * as xlogreader reuses its decode buffer.
 */
class DecodedRecord implements WalRecord {
  xl_tot_len = 0
  xl_xid = 0
  xl_info = 0
  xl_rmid = 0
  xl_crc = 0
  blocks: readonly BlockRef[] = NO_BLOCKS
  origin: number | undefined = undefined
  toplevelXid: number | undefined = undefined
  main_data_len = 0
  fpiLength = 0
  #buf: Buffer = NO_DATA
  #owner: BufferOwner | null = null
  #gen = 0
  #mainOff = 0
  #lsnHi = 0
  #lsnLo = 0
  #prevHi = 0
  #prevLo = 0
  #endHi = 0
  #endLo = 0
  /** The block objects of this record object, kept for the next record it is refilled with. */
  #pool: DecodedBlock[] | null = null
  /** #lists[n]: the first n of #pool, made once (the pool's objects stay in place). */
  #lists: DecodedBlock[][] | null = null

  get lsn(): Lsn {
    return big(this.#lsnHi, this.#lsnLo)
  }
  get endLsn(): Lsn {
    return big(this.#endHi, this.#endLo)
  }
  get xl_prev(): Lsn {
    return big(this.#prevHi, this.#prevLo)
  }
  /**
   * @internal Whether xl_prev points before this record (and is not 0), and where, as halves:
   * the reader's walk back needs no bigint per record.
   */
  prevIsBefore(): boolean {
    const hi = this.#prevHi
    const lo = this.#prevLo
    return (hi !== 0 || lo !== 0) && (hi < this.#lsnHi || (hi === this.#lsnHi && lo < this.#lsnLo))
  }
  /** @internal */ get prevHi(): number {
    return this.#prevHi
  }
  /** @internal */ get prevLo(): number {
    return this.#prevLo
  }
  /** @internal */ get lsnHi(): number {
    return this.#lsnHi
  }
  /** @internal */ get lsnLo(): number {
    return this.#lsnLo
  }
  get mainData(): Buffer {
    if (this.#owner !== null && this.#owner.gen !== this.#gen) {
      throw new RewindError(
        'INTERNAL',
        `the data of the WAL record at ${lsnText(this.#lsnHi, this.#lsnLo)} was released: ` +
          "use a record's main data before reading a few windows further",
      )
    }
    return this.#buf.subarray(this.#mainOff, this.#mainOff + this.main_data_len)
  }

  /**
   * @internal the header fields of the record `at`, once its body is decoded (setBody): its main
   * data is then the last main_data_len bytes of the record in at.buf, unless setMainData moves it.
   */
  setHeader(at: RecordBytes): void {
    const { buf, words, start } = at
    this.xl_tot_len = word(buf, words, start + XL_TOT_LEN)
    this.xl_xid = word(buf, words, start + XL_XID)
    this.xl_info = buf[start + XL_INFO]!
    this.xl_rmid = buf[start + XL_RMID]!
    this.xl_crc = word(buf, words, start + XL_CRC)
    this.#lsnHi = at.lsnHi
    this.#lsnLo = at.lsnLo
    this.#prevLo = word(buf, words, start + XL_PREV)
    this.#prevHi = word(buf, words, start + XL_PREV + 4)
    this.setMainData(buf, at.owner, start + at.totLen - this.main_data_len)
  }

  /** @internal where the main data is: at `off` of `buf`, valid while `owner` (if any) keeps its generation. */
  setMainData(buf: Buffer, owner: BufferOwner | null, off: number): void {
    this.#buf = buf
    this.#owner = owner
    this.#gen = owner === null ? 0 : owner.gen
    this.#mainOff = off
  }

  /** @internal what DecodeXLogRecord finds after the header; the first `nBlocks` block slots are filled. */
  setBody(nBlocks: number, origin: number | undefined, toplevelXid: number | undefined, mainLen: number, fpiLength: number): void {
    this.setBlockCount(nBlocks)
    this.origin = origin
    this.toplevelXid = toplevelXid
    this.main_data_len = mainLen
    this.fpiLength = fpiLength
  }

  /** @internal set by whoever knows where the next record starts. */
  setEnd(hi: number, lo: number): void {
    this.#endHi = hi
    this.#endLo = lo
  }

  /** @internal the `i`th block of the record being decoded (i counts from 0 without gaps). */
  blockSlot(i: number): DecodedBlock {
    const pool = (this.#pool ??= [])
    if (i === pool.length) pool.push(new DecodedBlock())
    return pool[i]!
  }

  private setBlockCount(n: number): void {
    if (n === 0) {
      this.blocks = NO_BLOCKS
      return
    }
    const lists = (this.#lists ??= [])
    this.blocks = lists[n] ??= this.#pool!.slice(0, n)
  }

  /** For JSON.stringify and debugging: the fields, LSNs as X/X (JSON has no bigint). */
  toJSON(): Record<string, unknown> {
    return {
      lsn: lsnText(this.#lsnHi, this.#lsnLo),
      endLsn: lsnText(this.#endHi, this.#endLo),
      xl_tot_len: this.xl_tot_len,
      xl_xid: this.xl_xid,
      xl_prev: lsnText(this.#prevHi, this.#prevLo),
      xl_info: this.xl_info,
      xl_rmid: this.xl_rmid,
      xl_crc: this.xl_crc,
      blocks: this.blocks,
      origin: this.origin,
      toplevelXid: this.toplevelXid,
      main_data_len: this.main_data_len,
      fpiLength: this.fpiLength,
    }
  }
}

/** @internal A reused buffer: its generation changes whenever it is refilled. */
export interface BufferOwner {
  readonly gen: number
}

/** @internal A record's bytes as the reader has them, and its LSN as two halves. */
export interface RecordBytes {
  readonly buf: Buffer
  /** A Uint32Array over the same memory as `buf`, for one load per header field (see word()), or null. */
  readonly words: Uint32Array | null
  /** What the bytes depend on: set when `buf` will be refilled, so that a late use of mainData fails loudly. */
  readonly owner: BufferOwner | null
  readonly start: number
  readonly totLen: number
  /** How many of the totLen bytes follow `start` in `buf`: fewer for a record in pieces on several pages. */
  readonly available: number
  readonly lsnHi: number
  readonly lsnLo: number
}

/** @internal What decoding a record depends on besides its bytes. */
export interface DecodeRules {
  readonly profile: VersionProfile
  /** BLCKSZ (data pages), for block image holes. */
  readonly blockSize: number
}

/**
 * The uint32 at `i`, a multiple of 4 (record headers start MAXALIGNed): one load from `words`, a
 * Uint32Array over the same memory as `buf`, when there is one.
 */
function word(buf: Buffer, words: Uint32Array | null, i: number): number {
  return words !== null ? words[i >>> 2]! : u32(buf, i)
}

function lsnText(hi: number, lo: number): string {
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`
}

/** @internal decodeBody's answer when a record's headers go past the bytes it was given. */
export const NEED_MORE = 'headers continue on the next page'

/** Out of header bytes: the record is short, or its headers go on past what decodeBody was given. */
function short(hdrEnd: number, end: number, lsnHi: number, lsnLo: number): string {
  return hdrEnd < end ? NEED_MORE : shortData(lsnHi, lsnLo)
}

function shortData(lsnHi: number, lsnLo: number): string {
  return `record with invalid length at ${lsnText(lsnHi, lsnLo)}`
}

/** The record CRC: body [24, tot_len) first, then header bytes [0, 20). `words`: see crc32cRange. */
export function recordCrcMatches(buf: Buffer, start: number, totLen: number, words: Uint32Array | null = null): boolean {
  // Records start MAXALIGNed, so with a word view both ranges start on a word boundary.
  const w = words !== null && (start & 3) === 0 ? words : null
  const bodyCrc = crc32cRange(buf, start + SIZE_OF_XLOG_RECORD, start + totLen, 0, w)
  return crc32cRange(buf, start, start + XL_CRC, bodyCrc, w) === u32(buf, start + XL_CRC)
}

/** RmgrIdIsValid: a built-in id, or from 15 a custom one (128–255). */
export function isValidRmgrId(rmid: number, profile: VersionProfile): boolean {
  return rmid <= profile.maxBuiltinRmgrId || (profile.customRmgrs && rmid >= 128 && rmid <= 255)
}

/**
 * DecodeXLogRecord over the `totLen` bytes at `start`: the block headers, origin, top-level xid and
 * main-data header, then the check that the payloads add up to exactly the rest of the record.
 * Returns the server's message on failure.
 */
function decodeBody(rec: DecodedRecord, at: RecordBytes, rules: DecodeRules): string | null {
  const { buf, start, lsnHi, lsnLo } = at
  const { profile, blockSize } = rules
  const end = start + at.totLen
  // Headers are read only from the `available` bytes; a record whose headers go further needs
  // gathering first (NEED_MORE), which the reader does.
  const hdrEnd = start + at.available
  let p = start + SIZE_OF_XLOG_RECORD
  let datatotal = 0
  let mainLen = 0
  let fpiLength = 0
  let origin: number | undefined
  let toplevelXid: number | undefined
  let nBlocks = 0
  let maxBlockId = -1
  let spcOid = 0
  let dbOid = 0
  let relNumber = 0
  let haveRel = false
  const bimg = profile.bimg
  const compressMask = bimg.COMPRESS_PGLZ | bimg.COMPRESS_LZ4 | bimg.COMPRESS_ZSTD

  while (end - p > datatotal) {
    if (p >= hdrEnd) return NEED_MORE
    const id = buf[p++]!
    if (id === XLR_BLOCK_ID_DATA_SHORT) {
      if (hdrEnd - p < 1) return short(hdrEnd, end, lsnHi, lsnLo)
      mainLen = buf[p++]!
      datatotal += mainLen
      break // the main data header is always last
    } else if (id === XLR_BLOCK_ID_DATA_LONG) {
      if (hdrEnd - p < 4) return short(hdrEnd, end, lsnHi, lsnLo)
      mainLen = u32(buf, p)
      p += 4
      datatotal += mainLen
      break
    } else if (id === XLR_BLOCK_ID_ORIGIN) {
      if (hdrEnd - p < 2) return short(hdrEnd, end, lsnHi, lsnLo)
      origin = u16(buf, p)
      p += 2
    } else if (id === XLR_BLOCK_ID_TOPLEVEL_XID && profile.hasToplevelXidBlock) {
      if (hdrEnd - p < 4) return short(hdrEnd, end, lsnHi, lsnLo)
      toplevelXid = u32(buf, p)
      p += 4
    } else if (id <= XLR_MAX_BLOCK_ID) {
      if (id <= maxBlockId) return `out-of-order block_id ${id} at ${lsnText(lsnHi, lsnLo)}`
      maxBlockId = id
      if (hdrEnd - p < 3) return short(hdrEnd, end, lsnHi, lsnLo)
      const forkFlags = buf[p]!
      const dataLength = u16(buf, p + 1)
      p += 3
      const hasData = (forkFlags & BKPBLOCK_HAS_DATA) !== 0
      if (hasData && dataLength === 0) return `BKPBLOCK_HAS_DATA set, but no data included at ${lsnText(lsnHi, lsnLo)}`
      if (!hasData && dataLength !== 0) return `BKPBLOCK_HAS_DATA not set, but data length is ${dataLength} at ${lsnText(lsnHi, lsnLo)}`
      datatotal += dataLength
      const ref = rec.blockSlot(nBlocks++)
      let image: DecodedImage | undefined
      if ((forkFlags & BKPBLOCK_HAS_IMAGE) !== 0) {
        if (hdrEnd - p < 5) return short(hdrEnd, end, lsnHi, lsnLo)
        const bimgLen = u16(buf, p)
        const holeOffset = u16(buf, p + 2)
        const bimgInfo = buf[p + 4]!
        p += 5
        const compressed = (bimgInfo & compressMask) !== 0
        const hasHole = (bimgInfo & bimg.HAS_HOLE) !== 0
        let holeLength: number
        if (compressed) {
          if (hasHole) {
            if (hdrEnd - p < 2) return short(hdrEnd, end, lsnHi, lsnLo)
            holeLength = u16(buf, p)
            p += 2
          } else {
            holeLength = 0
          }
        } else {
          holeLength = blockSize - bimgLen
        }
        datatotal += bimgLen
        fpiLength += bimgLen
        if (hasHole && (holeOffset === 0 || holeLength === 0 || bimgLen === blockSize)) {
          return `BKPIMAGE_HAS_HOLE set, but hole offset ${holeOffset} length ${holeLength} block image length ${bimgLen} at ${lsnText(lsnHi, lsnLo)}`
        }
        if (!hasHole && (holeOffset !== 0 || holeLength !== 0)) {
          return `BKPIMAGE_HAS_HOLE not set, but hole offset ${holeOffset} length ${holeLength} at ${lsnText(lsnHi, lsnLo)}`
        }
        if (compressed && bimgLen === blockSize)
          return `BKPIMAGE_COMPRESSED set, but block image length ${bimgLen} at ${lsnText(lsnHi, lsnLo)}`
        if (!hasHole && !compressed && bimgLen !== blockSize) {
          return `neither BKPIMAGE_HAS_HOLE nor BKPIMAGE_COMPRESSED set, but block image length is ${bimgLen} at ${lsnText(lsnHi, lsnLo)}`
        }
        image = ref.imageSlot()
        image.set(bimgLen, holeOffset, holeLength, bimgInfo, bimg)
      }
      if ((forkFlags & BKPBLOCK_SAME_REL) === 0) {
        if (hdrEnd - p < 12) return short(hdrEnd, end, lsnHi, lsnLo)
        spcOid = u32(buf, p)
        dbOid = u32(buf, p + 4)
        relNumber = u32(buf, p + 8)
        p += 12
        haveRel = true
      } else if (!haveRel) {
        return `BKPBLOCK_SAME_REL set but no previous rel at ${lsnText(lsnHi, lsnLo)}`
      }
      if (hdrEnd - p < 4) return short(hdrEnd, end, lsnHi, lsnLo)
      const blockNumber = u32(buf, p)
      p += 4
      ref.set(id, forkFlags, spcOid, dbOid, relNumber, blockNumber, dataLength, image, bimg)
    } else {
      return `invalid block_id ${id} at ${lsnText(lsnHi, lsnLo)}`
    }
  }
  if (end - p !== datatotal) return shortData(lsnHi, lsnLo)
  rec.setBody(nBlocks, origin, toplevelXid, mainLen, fpiLength)
  return null
}

/**
 * @internal The reader's entry point: decodes the CRC-checked record `at`, whose header the caller
 * has validated, into `rec`. Returns the server's message on failure, or NEED_MORE when its headers
 * go past at.available (a record in pieces: the reader gathers it and tries again). The main data
 * is taken to be the end of at.buf's bytes: a record in pieces places it with rec.setMainData.
 */
export function decodeRecordAt(rec: DecodedRecord, at: RecordBytes, rules: DecodeRules): DecodedRecord | string {
  const bad = decodeBody(rec, at, rules)
  if (bad !== null) return bad
  rec.setHeader(at)
  return rec
}

export { DecodedRecord }

/**
 * Decodes one whole record (`bytes` = exactly xl_tot_len bytes, page headers already removed) found
 * at `lsn`. Checks the length, resource manager id, CRC and every length in the body; throws
 * WAL_INVALID with the server's message. `endLsn` defaults to lsn + MAXALIGN(xl_tot_len).
 */
export function decodeRecord(bytes: Buffer, lsn: Lsn, profile: VersionProfile, endLsn?: Lsn, blockSize = 8192): WalRecord {
  const hi = Number(lsn >> 32n)
  const lo = Number(lsn & 0xffffffffn)
  const fail = (message: string): RewindError => new RewindError('WAL_INVALID', message, { lsn: lsnText(hi, lo) })
  if (bytes.length < SIZE_OF_XLOG_RECORD) {
    throw fail(`invalid record length at ${lsnText(hi, lo)}: expected at least ${SIZE_OF_XLOG_RECORD}, got ${bytes.length}`)
  }
  const totLen = bytes.readUInt32LE(XL_TOT_LEN)
  if (totLen !== bytes.length) throw fail(`record length ${totLen} at ${lsnText(hi, lo)} does not match the ${bytes.length} bytes given`)
  const rmid = bytes[XL_RMID]!
  if (!isValidRmgrId(rmid, profile)) throw fail(`invalid resource manager ID ${rmid} at ${lsnText(hi, lo)}`)
  if (!recordCrcMatches(bytes, 0, totLen)) throw fail(`incorrect resource manager data checksum in record at ${lsnText(hi, lo)}`)
  const at: RecordBytes = { buf: bytes, words: null, owner: null, start: 0, totLen, available: totLen, lsnHi: hi, lsnLo: lo }
  const rec = decodeRecordAt(new DecodedRecord(), at, { profile, blockSize })
  if (typeof rec === 'string') throw fail(rec)
  const end = endLsn ?? lsn + maxAlign(BigInt(totLen))
  rec.setEnd(Number(end >> 32n), Number(end & 0xffffffffn))
  return rec
}

/**
 * Header fields of the record at `start` straight from a buffer, for the reader's checks before the
 * record is decoded. `words`: a Uint32Array over the same memory, for one load per field (see
 * word()), or null.
 */
export const RecordHeader = Object.freeze({
  totLen: (buf: Buffer, words: Uint32Array | null, start: number): number => word(buf, words, start + XL_TOT_LEN),
  rmid: (buf: Buffer, start: number): number => buf[start + XL_RMID]!,
  prevLo: (buf: Buffer, words: Uint32Array | null, start: number): number => word(buf, words, start + XL_PREV),
  prevHi: (buf: Buffer, words: Uint32Array | null, start: number): number => word(buf, words, start + XL_PREV + 4),
  crc: (buf: Buffer, words: Uint32Array | null, start: number): number => word(buf, words, start + XL_CRC),
  /** How many header bytes the record CRC covers after the body: those before xl_crc. */
  crcCoveredLength: XL_CRC,
})
