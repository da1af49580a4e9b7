// A record wholly on one page, most of them: taken from the window scan's row when the scan
// checked and decoded it (then only its prev link is left to check), else checked
// (ValidXLogRecordHeader, CRC) and decoded here, which names any problem.

import { maxAlign } from '../lsn.js'
import type { WalEnd } from './end-of-wal.js'
import { decodeRecordAt, recordCrcMatches, type DecodedRecord, type DecodeRules } from './record.js'
import type { RecordChecks, RecordSite } from './record-site.js'
import type { WindowScan } from './window-scan.js'

export class OnePageRecords {
  constructor(
    private readonly checks: RecordChecks,
    private readonly rules: DecodeRules,
    private readonly scan: WindowScan | null,
  ) {}

  read(site: RecordSite): DecodedRecord | WalEnd {
    const scan = this.scan
    if (scan === null) return this.checkAndDecode(site, -1)
    const row = scan.find(site.window, site.start)
    if (row < 0 || !scan.decoded(row) || !site.cursor.acceptsPrevLinkOf(site)) return this.checkAndDecode(site, row)
    const rec = site.cursor.record()
    scan.fill(rec, row)
    rec.setHeader(site)
    return site.cursor.pass(rec, site.seg, site.recOff + maxAlign(site.totLen))
  }

  /** What the scan did not decode (row -1: did not reach), checked and decoded here. */
  private checkAndDecode(site: RecordSite, row: number): DecodedRecord | WalEnd {
    const c = site.cursor
    const bad = this.checks.header(site, site.start, site)
    if (bad !== null) return bad
    const crcOk = row >= 0 ? this.scan!.crcOk(row) : recordCrcMatches(site.buf, site.start, site.totLen, site.words)
    if (!crcOk) return this.checks.badCrc(site)
    const rec = decodeRecordAt(c.record(), site, this.rules)
    if (typeof rec === 'string') return c.end('bad-record', rec)
    return c.pass(rec, site.seg, site.recOff + maxAlign(site.totLen))
  }
}
