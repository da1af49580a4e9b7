/*
 * CRC-32C of many WAL records in one call (walrewind's reader, src/pg/wal/crc-batch.ts).
 *
 * Why this exists: a WAL record is usually a few hundred bytes, and a call into a native CRC
 * library per record costs more than the hashing; JavaScript table lookups are several times
 * slower than the CPU's CRC instruction. So the reader hands over all the records of a window
 * at once. Each record's CRC covers its body [24, xl_tot_len) and then its header [0, 20), as
 * PostgreSQL computes it. Uses SSE4.2 (x86-64) or the ARMv8 CRC extension when the CPU has them,
 * a table otherwise.
 */
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#elif defined(__aarch64__)
#include <sys/auxv.h>
#include <asm/hwcap.h>
#endif

#define SIZE_OF_XLOG_RECORD 24
#define XL_CRC 20

static uint32_t table[8][256];

static void make_table(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[0][n] = c;
  }
  for (uint32_t n = 0; n < 256; n++)
    for (int k = 1; k < 8; k++) table[k][n] = table[0][table[k - 1][n] & 0xff] ^ (table[k - 1][n] >> 8);
}

/* Raw register update (no pre/post inversion) over len bytes. */
static uint32_t crc_table(uint32_t c, const uint8_t *p, size_t len) {
  while (len >= 8) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
        table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^ table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
    p += 8;
    len -= 8;
  }
  while (len--) c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t len) {
  uint64_t c64 = c;
  while (len >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c64 = _mm_crc32_u64(c64, v);
    p += 8;
    len -= 8;
  }
  c = (uint32_t)c64;
  while (len--) c = _mm_crc32_u8(c, *p++);
  return c;
}
static int have_hw(void) { return __builtin_cpu_supports("sse4.2"); }
#elif defined(__aarch64__)
__attribute__((target("+crc"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t len) {
  while (len >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = __builtin_aarch64_crc32cx(c, v);
    p += 8;
    len -= 8;
  }
  while (len--) c = __builtin_aarch64_crc32cb(c, *p++);
  return c;
}
static int have_hw(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
#else
static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t len) { return crc_table(c, p, len); }
static int have_hw(void) { return 0; }
#endif

static uint32_t (*crc_update)(uint32_t, const uint8_t *, size_t) = crc_table;

static int typed_array(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *length) {
  bool is;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &type, length, data, NULL, NULL) != napi_ok) return 0;
  return type == want;
}

/*
 * recordCrcs(buf: Uint8Array, starts: Int32Array, count: number, out: Int32Array): number
 * For each of the first `count` offsets in `starts`, the CRC of the record there, into `out`.
 * Stops at the first record that is not wholly inside `buf` (xl_tot_len below 24 or past the end)
 * and returns how many were computed.
 */
static napi_value record_crcs(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *buf;
  int32_t *starts, *out;
  size_t buf_len, starts_len, out_len;
  uint32_t count;
  if (argc < 4 || !typed_array(env, argv[0], napi_uint8_array, (void **)&buf, &buf_len) ||
      !typed_array(env, argv[1], napi_int32_array, (void **)&starts, &starts_len) ||
      napi_get_value_uint32(env, argv[2], &count) != napi_ok ||
      !typed_array(env, argv[3], napi_int32_array, (void **)&out, &out_len)) {
    napi_throw_type_error(env, NULL, "recordCrcs(buf: Uint8Array, starts: Int32Array, count: number, out: Int32Array)");
    return NULL;
  }
  if (count > starts_len) count = (uint32_t)starts_len;
  if (count > out_len) count = (uint32_t)out_len;
  uint32_t done = 0;
  for (; done < count; done++) {
    int32_t s = starts[done];
    if (s < 0 || (size_t)s + SIZE_OF_XLOG_RECORD > buf_len) break;
    uint32_t tot_len;
    memcpy(&tot_len, buf + s, 4);
    if (tot_len < SIZE_OF_XLOG_RECORD || tot_len > buf_len - (size_t)s) break;
    uint32_t c = crc_update(0xFFFFFFFFu, buf + s + SIZE_OF_XLOG_RECORD, tot_len - SIZE_OF_XLOG_RECORD);
    c = crc_update(c, buf + s, XL_CRC);
    out[done] = (int32_t)~c;
  }
  napi_value result;
  napi_create_uint32(env, done, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  make_table();
  if (have_hw()) crc_update = crc_hw;
  napi_value fn, hw;
  napi_create_function(env, "recordCrcs", NAPI_AUTO_LENGTH, record_crcs, NULL, &fn);
  napi_set_named_property(env, exports, "recordCrcs", fn);
  napi_get_boolean(env, crc_update == crc_hw, &hw);
  napi_set_named_property(env, exports, "hardware", hw);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
