/*
 * walrewind's native addon (src/pg/native.ts loads it): scanWalWindow, the WAL reader's batch of
 * record checks (wal-scan.h), and whether the CPU's CRC instruction is used.
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

static napi_value init(napi_env env, napi_value exports) {
  crc32c_init();
  napi_value fn, hw;
  napi_create_function(env, "scanWalWindow", NAPI_AUTO_LENGTH, scan_wal_window, NULL, &fn);
  napi_set_named_property(env, exports, "scanWalWindow", fn);
  napi_get_boolean(env, crc32c_hardware(), &hw);
  napi_set_named_property(env, exports, "hardware", hw);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
