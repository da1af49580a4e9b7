/*
 * The WAL records of a read window, found and checked in one pass: where each record starts,
 * whether its CRC holds and, for a record wholly on one page, its decoded block references, origin,
 * top-level xid and main-data length. The addon exports these layouts (scanLayout), which
 * src/pg/wal/window-scan.ts checks against its own.
 */
#ifndef WALREWIND_WAL_SCAN_H
#define WALREWIND_WAL_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* params[]: what differs between majors (from the version profile). */
enum {
  SCAN_OVERWRITE_FLAG,  /* XLP_FIRST_IS_OVERWRITE_CONTRECORD, 0 before 15 */
  SCAN_BIMG_HAS_HOLE,
  SCAN_BIMG_APPLY,
  SCAN_BIMG_COMPRESSED, /* every compression bit of the major */
  SCAN_TOPLEVEL_XID,    /* 1 if XLR_BLOCK_ID_TOPLEVEL_XID exists (14+) */
  SCAN_MAX_BUILTIN_RMGR,
  SCAN_CUSTOM_RMGRS,    /* 1 if ids 128-255 are valid (15+) */
  SCAN_BLOCK_SIZE,      /* BLCKSZ, for image holes */
  SCAN_PARAMS
};

/* A row of recs[] per record. */
enum {
  REC_START,       /* offset in the window */
  REC_FLAGS,
  REC_BLOCKS,      /* the rest only with REC_DECODED */
  REC_FIRST_BLOCK, /* its first row in blocks[] */
  REC_MAIN_LEN,
  REC_FPI_LEN,
  REC_ORIGIN,
  REC_TOPLEVEL_XID,
  REC_STRIDE
};
#define REC_CRC_OK 1
#define REC_DECODED 2 /* on one page, valid length and resource manager, CRC holds, body adds up */
#define REC_HAS_ORIGIN 4
#define REC_HAS_TOPLEVEL_XID 8

/* A row of blocks[] per block reference. */
enum {
  BLK_ID,
  BLK_FORK_FLAGS,
  BLK_DATA_LEN,
  BLK_SPC,
  BLK_DB,
  BLK_REL,
  BLK_NUMBER,
  BLK_BIMG_LEN, /* the image fields are 0 without BKPBLOCK_HAS_IMAGE */
  BLK_HOLE_OFFSET,
  BLK_HOLE_LEN,
  BLK_BIMG_INFO,
  BLK_STRIDE
};

/*
 * Walks the `len` bytes of `buf` (a window of a segment, starting on a page boundary) from the
 * record at `start` as a reader would, and fills recs[] (room for rec_cap rows) and blocks[] (room
 * for block_cap rows). Returns the number of records. Nothing it says is final: a record it cannot
 * reach, check or decode is left to the caller.
 */
uint32_t wal_scan_window(const uint8_t *buf, size_t len, size_t start, const int32_t *params, int32_t *recs, size_t rec_cap,
                         int32_t *blocks, size_t block_cap);

#endif
