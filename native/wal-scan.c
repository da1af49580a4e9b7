/*
 * See wal-scan.h. The walk follows the records of one page one after the other and goes from page
 * to page by the page headers (past the part that continues an earlier record); a record across
 * pages is followed through its continuation headers while they are in the window. Block headers
 * are decoded as DecodeXLogRecord (access/transam/xlogreader.c) does; a record that breaks any of
 * its rules is simply not marked decoded, and the caller's own decoder names the problem.
 */
#include "wal-scan.h"

#include <string.h>

#include "crc32c.h"

#define PAGE 8192u                 /* XLOG_BLCKSZ */
#define RECORD_HEADER 24u          /* SizeOfXLogRecord */
#define CRC_COVERED 20u            /* header bytes before xl_crc */
#define SHORT_PAGE_HEADER 24u
#define LONG_PAGE_HEADER 40u
#define XLP_FIRST_IS_CONTRECORD 0x0001u
#define XLP_LONG_HEADER 0x0002u
#define XLR_MAX_BLOCK_ID 32
#define XLR_BLOCK_ID_DATA_SHORT 255
#define XLR_BLOCK_ID_DATA_LONG 254
#define XLR_BLOCK_ID_ORIGIN 253
#define XLR_BLOCK_ID_TOPLEVEL_XID 252
#define BKPBLOCK_HAS_IMAGE 0x10u
#define BKPBLOCK_HAS_DATA 0x20u
#define BKPBLOCK_SAME_REL 0x80u

static uint32_t u16at(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }

static uint32_t u32at(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4); /* little-endian hosts only, as the on-disk format */
  return v;
}

static uint64_t max_align(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

static uint32_t page_header_size(uint32_t info) { return (info & XLP_LONG_HEADER) ? LONG_PAGE_HEADER : SHORT_PAGE_HEADER; }

/* Where the first record starting on the page at `page` or a later one in the window is; -1 if none. */
static int64_t first_record_from(const uint8_t *buf, size_t len, uint64_t page) {
  for (; page + PAGE <= len; page += PAGE) {
    uint32_t info = u16at(buf + page + 2);
    uint64_t first = page_header_size(info);
    if (info & XLP_FIRST_IS_CONTRECORD) first += max_align(u32at(buf + page + 16));
    if (first < PAGE) return (int64_t)(page + first);
  }
  return -1;
}

static int valid_rmgr(uint32_t rmid, const int32_t *params) {
  return rmid <= (uint32_t)params[SCAN_MAX_BUILTIN_RMGR] || (params[SCAN_CUSTOM_RMGRS] && rmid >= 128);
}

/*
 * DecodeXLogRecord's walk over the record of tot_len bytes at `rec`, into row `out` and block rows
 * from `blocks` on (room for `room`). Returns the number of blocks, or -1 if any rule is broken.
 */
static int decode_body(const uint8_t *rec, uint32_t tot_len, const int32_t *params, int32_t *out, int32_t *blocks, size_t room) {
  const uint8_t *p = rec + RECORD_HEADER;
  const uint8_t *end = rec + tot_len;
  int64_t datatotal = 0;
  int32_t main_len = 0, fpi_len = 0, flags = 0, origin = 0, toplevel_xid = 0;
  int n = 0, max_id = -1, have_rel = 0;
  uint32_t spc = 0, db = 0, rel = 0;
  const uint32_t has_hole_bit = (uint32_t)params[SCAN_BIMG_HAS_HOLE];
  const uint32_t compressed_bits = (uint32_t)params[SCAN_BIMG_COMPRESSED];
  const int32_t block_size = params[SCAN_BLOCK_SIZE];

  while (end - p > datatotal) {
    uint32_t id = *p++;
    if (id == XLR_BLOCK_ID_DATA_SHORT) {
      if (end - p < 1) return -1;
      main_len = *p++;
      datatotal += main_len;
      break;
    } else if (id == XLR_BLOCK_ID_DATA_LONG) {
      if (end - p < 4) return -1;
      uint32_t v = u32at(p);
      p += 4;
      if (v > tot_len) return -1;
      main_len = (int32_t)v;
      datatotal += main_len;
      break;
    } else if (id == XLR_BLOCK_ID_ORIGIN) {
      if (end - p < 2) return -1;
      origin = (int32_t)u16at(p);
      flags |= REC_HAS_ORIGIN;
      p += 2;
    } else if (id == XLR_BLOCK_ID_TOPLEVEL_XID && params[SCAN_TOPLEVEL_XID]) {
      if (end - p < 4) return -1;
      toplevel_xid = (int32_t)u32at(p);
      flags |= REC_HAS_TOPLEVEL_XID;
      p += 4;
    } else if (id <= XLR_MAX_BLOCK_ID) {
      if ((int)id <= max_id || (size_t)n >= room) return -1;
      max_id = (int)id;
      if (end - p < 3) return -1;
      uint32_t fork_flags = p[0];
      uint32_t data_len = u16at(p + 1);
      p += 3;
      int has_data = (fork_flags & BKPBLOCK_HAS_DATA) != 0;
      if (has_data != (data_len != 0)) return -1;
      datatotal += data_len;
      int32_t *b = blocks + (size_t)n * BLK_STRIDE;
      b[BLK_BIMG_LEN] = b[BLK_HOLE_OFFSET] = b[BLK_HOLE_LEN] = b[BLK_BIMG_INFO] = 0;
      if (fork_flags & BKPBLOCK_HAS_IMAGE) {
        if (end - p < 5) return -1;
        int32_t bimg_len = (int32_t)u16at(p);
        int32_t hole_offset = (int32_t)u16at(p + 2);
        uint32_t bimg_info = p[4];
        p += 5;
        int compressed = (bimg_info & compressed_bits) != 0;
        int has_hole = (bimg_info & has_hole_bit) != 0;
        int32_t hole_len = 0;
        if (compressed) {
          if (has_hole) {
            if (end - p < 2) return -1;
            hole_len = (int32_t)u16at(p);
            p += 2;
          }
        } else {
          hole_len = block_size - bimg_len;
        }
        datatotal += bimg_len;
        fpi_len += bimg_len;
        if (has_hole && (hole_offset == 0 || hole_len == 0 || bimg_len == block_size)) return -1;
        if (!has_hole && (hole_offset != 0 || hole_len != 0)) return -1;
        if (compressed && bimg_len == block_size) return -1;
        if (!has_hole && !compressed && bimg_len != block_size) return -1;
        b[BLK_BIMG_LEN] = bimg_len;
        b[BLK_HOLE_OFFSET] = hole_offset;
        b[BLK_HOLE_LEN] = hole_len;
        b[BLK_BIMG_INFO] = (int32_t)bimg_info;
      }
      if (!(fork_flags & BKPBLOCK_SAME_REL)) {
        if (end - p < 12) return -1;
        spc = u32at(p);
        db = u32at(p + 4);
        rel = u32at(p + 8);
        p += 12;
        have_rel = 1;
      } else if (!have_rel) {
        return -1;
      }
      if (end - p < 4) return -1;
      b[BLK_ID] = (int32_t)id;
      b[BLK_FORK_FLAGS] = (int32_t)fork_flags;
      b[BLK_DATA_LEN] = (int32_t)data_len;
      b[BLK_SPC] = (int32_t)spc;
      b[BLK_DB] = (int32_t)db;
      b[BLK_REL] = (int32_t)rel;
      b[BLK_NUMBER] = (int32_t)u32at(p);
      p += 4;
      n++;
    } else {
      return -1;
    }
  }
  if (end - p != datatotal) return -1;
  out[REC_FLAGS] |= flags;
  out[REC_MAIN_LEN] = main_len;
  out[REC_FPI_LEN] = fpi_len;
  out[REC_ORIGIN] = origin;
  out[REC_TOPLEVEL_XID] = toplevel_xid;
  return n;
}

/* Records on one page wait here to have their CRCs computed three at a time. */
struct crc_queue {
  int32_t *row[3];
  const uint8_t *body[3];
  size_t body_len[3];
  const uint8_t *header[3];
  int n;
};

static void queue_flush(struct crc_queue *q) {
  if (q->n == 0) return;
  for (int k = q->n; k < 3; k++) { /* pad with a copy of the first (its result is dropped) */
    q->body[k] = q->body[0];
    q->body_len[k] = q->body_len[0];
    q->header[k] = q->header[0];
  }
  uint32_t crc[3];
  crc32c_records3(q->body, q->body_len, q->header, crc);
  for (int k = 0; k < q->n; k++) q->row[k][REC_FLAGS] = crc[k] == u32at(q->header[k] + CRC_COVERED) ? REC_CRC_OK : 0;
  q->n = 0;
}

static void queue_add(struct crc_queue *q, int32_t *row, const uint8_t *rec, uint32_t tot_len) {
  q->row[q->n] = row;
  q->body[q->n] = rec + RECORD_HEADER;
  q->body_len[q->n] = tot_len - RECORD_HEADER;
  q->header[q->n] = rec;
  if (++q->n == 3) queue_flush(q);
}

uint32_t wal_scan_window(const uint8_t *buf, size_t len, size_t start, const int32_t *params, int32_t *recs, size_t rec_cap,
                         int32_t *blocks, size_t block_cap) {
  const uint32_t overwrite_flag = (uint32_t)params[SCAN_OVERWRITE_FLAG];
  struct crc_queue queue = {.n = 0};
  size_t n = 0;
  uint64_t p = start;

  while (n < rec_cap && p + RECORD_HEADER <= len) {
    uint64_t in_page = p % PAGE;
    if (in_page == 0 || in_page > PAGE - RECORD_HEADER) {
      /* At a page start, or a header that goes on past its page (the caller gathers those). */
      int64_t next = first_record_from(buf, len, p - in_page + (in_page == 0 ? 0 : PAGE));
      if (next < 0) break;
      p = (uint64_t)next;
      continue;
    }
    const uint8_t *rec = buf + p;
    uint32_t tot_len = u32at(rec);
    if (tot_len < RECORD_HEADER) break;
    int32_t *row = recs + n * REC_STRIDE;
    if (in_page + tot_len <= PAGE) {
      if (p + tot_len > len) break; /* a short read */
      queue_add(&queue, row, rec, tot_len);
      p += max_align(tot_len);
    } else {
      /* Across pages: the body piece by piece, as long as all of it is in this window. */
      if (p - in_page + PAGE > len) break;
      uint32_t crc = crc32c_update(0xFFFFFFFFu, rec + RECORD_HEADER, PAGE - in_page - RECORD_HEADER);
      uint64_t got = PAGE - in_page;
      uint64_t page = p - in_page;
      int64_t after = -1;
      while (got < tot_len) {
        page += PAGE;
        if (page + PAGE > len) break;
        uint32_t info = u16at(buf + page + 2);
        if (!(info & XLP_FIRST_IS_CONTRECORD) || (info & overwrite_flag)) break;
        uint32_t hdr = page_header_size(info);
        uint64_t piece = tot_len - got < PAGE - hdr ? tot_len - got : PAGE - hdr;
        crc = crc32c_update(crc, buf + page + hdr, piece);
        got += piece;
        if (got == tot_len) after = (int64_t)(page + hdr + max_align(piece));
      }
      if (after < 0) break;
      crc = ~crc32c_update(crc, rec, CRC_COVERED);
      row[REC_FLAGS] = crc == u32at(rec + CRC_COVERED) ? REC_CRC_OK : 0;
      p = (uint64_t)after;
    }
    row[REC_START] = (int32_t)(rec - buf);
    n++;
  }
  queue_flush(&queue);

  size_t used = 0;
  for (size_t i = 0; i < n; i++) {
    int32_t *row = recs + i * REC_STRIDE;
    const uint8_t *rec = buf + row[REC_START];
    const uint32_t tot_len = u32at(rec);
    row[REC_BLOCKS] = 0;
    row[REC_FIRST_BLOCK] = (int32_t)used;
    if (row[REC_FLAGS] == REC_CRC_OK && (uint64_t)row[REC_START] % PAGE + tot_len <= PAGE && valid_rmgr(rec[17], params)) {
      int nb = decode_body(rec, tot_len, params, row, blocks + used * BLK_STRIDE, block_cap - used);
      if (nb >= 0) {
        row[REC_FLAGS] |= REC_DECODED;
        row[REC_BLOCKS] = nb;
        used += (size_t)nb;
      }
    }
  }
  return (uint32_t)n;
}
