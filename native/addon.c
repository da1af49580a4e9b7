/*
 * walrewind's native addon (src/pg/native.ts loads it): scanWalWindow, the WAL reader's batch of
 * record checks (wal-scan.h), with scanLayout, the row layout it writes; crc32c, CRC-32C of a byte
 * range; and whether the CPU's CRC instruction is used.
 */
#include <node_api.h>
#include <stdbool.h>

#include "crc32c.h"
#include "wal-scan.h"

static int typed_array(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *length) {
  bool is;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &type, length, data, NULL, NULL) != napi_ok) return 0;
  return type == want;
}

/*
 * scanWalWindow(buf: Uint8Array, len: number, start: number, params: Int32Array, recs: Int32Array,
 *               blocks: Int32Array): number
 */
static napi_value scan_wal_window(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *buf;
  int32_t *params, *recs, *blocks;
  size_t buf_len, params_len, recs_len, blocks_len;
  uint32_t len, start;
  if (argc < 6 || !typed_array(env, argv[0], napi_uint8_array, (void **)&buf, &buf_len) ||
      napi_get_value_uint32(env, argv[1], &len) != napi_ok || napi_get_value_uint32(env, argv[2], &start) != napi_ok ||
      !typed_array(env, argv[3], napi_int32_array, (void **)&params, &params_len) ||
      !typed_array(env, argv[4], napi_int32_array, (void **)&recs, &recs_len) ||
      !typed_array(env, argv[5], napi_int32_array, (void **)&blocks, &blocks_len) || params_len < SCAN_PARAMS) {
    napi_throw_type_error(env, NULL,
                          "scanWalWindow(buf: Uint8Array, len: number, start: number, params: Int32Array, recs: Int32Array, "
                          "blocks: Int32Array)");
    return NULL;
  }
  uint32_t count = 0;
  if (len <= buf_len && start <= len) {
    count = wal_scan_window(buf, len, start, params, recs, recs_len / REC_STRIDE, blocks, blocks_len / BLK_STRIDE);
  }
  napi_value result;
  napi_create_uint32(env, count, &result);
  return result;
}

/* crc32c(buf: Uint8Array, start: number, end: number, previous: number): number, chaining like pg_crc32c. */
static napi_value crc32c_range(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *buf;
  size_t buf_len;
  uint32_t start, end, previous;
  if (argc < 4 || !typed_array(env, argv[0], napi_uint8_array, (void **)&buf, &buf_len) ||
      napi_get_value_uint32(env, argv[1], &start) != napi_ok || napi_get_value_uint32(env, argv[2], &end) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &previous) != napi_ok) {
    napi_throw_type_error(env, NULL, "crc32c(buf: Uint8Array, start: number, end: number, previous: number)");
    return NULL;
  }
  if (start > end || end > buf_len) {
    napi_throw_range_error(env, NULL, "crc32c: the range is not within the buffer");
    return NULL;
  }
  napi_value result;
  napi_create_uint32(env, ~crc32c_update(~previous, buf + start, end - start), &result);
  return result;
}

static void set_int(napi_env env, napi_value object, const char *name, int32_t value) {
  napi_value v;
  napi_create_int32(env, value, &v);
  napi_set_named_property(env, object, name, v);
}

/* wal-scan.h's params[] indexes and row layouts, by their names there. */
static napi_value scan_layout(napi_env env) {
  napi_value o;
  napi_create_object(env, &o);
#define FIELD(name) set_int(env, o, #name, name)
  FIELD(SCAN_OVERWRITE_FLAG);
  FIELD(SCAN_BIMG_HAS_HOLE);
  FIELD(SCAN_BIMG_APPLY);
  FIELD(SCAN_BIMG_COMPRESSED);
  FIELD(SCAN_TOPLEVEL_XID);
  FIELD(SCAN_MAX_BUILTIN_RMGR);
  FIELD(SCAN_CUSTOM_RMGRS);
  FIELD(SCAN_BLOCK_SIZE);
  FIELD(SCAN_PARAMS);
  FIELD(REC_START);
  FIELD(REC_FLAGS);
  FIELD(REC_BLOCKS);
  FIELD(REC_FIRST_BLOCK);
  FIELD(REC_MAIN_LEN);
  FIELD(REC_FPI_LEN);
  FIELD(REC_ORIGIN);
  FIELD(REC_TOPLEVEL_XID);
  FIELD(REC_STRIDE);
  FIELD(REC_CRC_OK);
  FIELD(REC_DECODED);
  FIELD(REC_HAS_ORIGIN);
  FIELD(REC_HAS_TOPLEVEL_XID);
  FIELD(BLK_ID);
  FIELD(BLK_FORK_FLAGS);
  FIELD(BLK_DATA_LEN);
  FIELD(BLK_SPC);
  FIELD(BLK_DB);
  FIELD(BLK_REL);
  FIELD(BLK_NUMBER);
  FIELD(BLK_BIMG_LEN);
  FIELD(BLK_HOLE_OFFSET);
  FIELD(BLK_HOLE_LEN);
  FIELD(BLK_BIMG_INFO);
  FIELD(BLK_STRIDE);
#undef FIELD
  return o;
}

static napi_value init(napi_env env, napi_value exports) {
  crc32c_init();
  napi_value scan, crc, hw;
  napi_create_function(env, "scanWalWindow", NAPI_AUTO_LENGTH, scan_wal_window, NULL, &scan);
  napi_set_named_property(env, exports, "scanWalWindow", scan);
  napi_set_named_property(env, exports, "scanLayout", scan_layout(env));
  napi_create_function(env, "crc32c", NAPI_AUTO_LENGTH, crc32c_range, NULL, &crc);
  napi_set_named_property(env, exports, "crc32c", crc);
  napi_get_boolean(env, crc32c_hardware(), &hw);
  napi_set_named_property(env, exports, "hardware", hw);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
