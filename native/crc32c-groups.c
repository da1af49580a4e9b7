/*
 * CRC-32C of many lists of byte ranges in one call, for walrewind's WAL reader
 * (src/pg/crc32c-groups.ts says why). Uses SSE4.2 (x86-64) or the ARMv8 CRC extension when the
 * CPU has them, a table otherwise.
 */
#include <node_api.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#elif defined(__aarch64__)
#include <sys/auxv.h>
#include <asm/hwcap.h>
#endif

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
  if (len >= 4) {
    uint32_t v;
    memcpy(&v, p, 4);
    c = _mm_crc32_u32(c, v);
    p += 4;
    len -= 4;
  }
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

/* Whether ranges [from, to) of `ranges` (pairs start, end) all lie inside a buffer of buf_len bytes. */
static int ranges_inside(const int32_t *ranges, size_t from, size_t to, size_t buf_len) {
  for (size_t r = from; r < to; r++) {
    int32_t s = ranges[2 * r], e = ranges[2 * r + 1];
    if (s < 0 || e < s || (size_t)e > buf_len) return 0;
  }
  return 1;
}

/*
 * Three ranges at once: the CRC instruction takes three cycles but can start every cycle, so
 * independent checksums interleaved go about three times as fast as one after the other. Each
 * stream runs in step with the others while they all have 8 bytes left, then two by two, then alone.
 */
#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static void crc_hw3(uint32_t c[3], const uint8_t *p[3], size_t len[3]) {
  for (;;) {
    int live[3], n = 0;
    for (int k = 0; k < 3; k++)
      if (len[k] >= 8) live[n++] = k;
    if (n < 2) break;
    size_t m = SIZE_MAX;
    for (int k = 0; k < n; k++)
      if (len[live[k]] < m) m = len[live[k]];
    m &= ~(size_t)7;
    if (n == 3) {
      uint64_t a = c[0], b = c[1], d = c[2];
      for (size_t i = 0; i < m; i += 8) {
        uint64_t va, vb, vd;
        memcpy(&va, p[0] + i, 8);
        memcpy(&vb, p[1] + i, 8);
        memcpy(&vd, p[2] + i, 8);
        a = _mm_crc32_u64(a, va);
        b = _mm_crc32_u64(b, vb);
        d = _mm_crc32_u64(d, vd);
      }
      c[0] = (uint32_t)a;
      c[1] = (uint32_t)b;
      c[2] = (uint32_t)d;
    } else {
      int x = live[0], y = live[1];
      uint64_t a = c[x], b = c[y];
      for (size_t i = 0; i < m; i += 8) {
        uint64_t va, vb;
        memcpy(&va, p[x] + i, 8);
        memcpy(&vb, p[y] + i, 8);
        a = _mm_crc32_u64(a, va);
        b = _mm_crc32_u64(b, vb);
      }
      c[x] = (uint32_t)a;
      c[y] = (uint32_t)b;
    }
    for (int k = 0; k < n; k++) {
      p[live[k]] += m;
      len[live[k]] -= m;
    }
  }
  for (int k = 0; k < 3; k++) c[k] = crc_hw(c[k], p[k], len[k]);
}
#define HAVE_HW3 1
#endif
/*
 * crc32cGroups(buf: Uint8Array, ranges: Int32Array, ends: Int32Array, count: number, out: Int32Array): number
 * Group g is the ranges [ends[g-1], ends[g]) of `ranges` (ends[-1] = 0), each range a pair
 * (start, end) of offsets into `buf`; out[g] gets the CRC-32C of the bytes of its ranges one
 * after the other, as int32. Stops at the first group with a range outside `buf` and returns how
 * many groups were computed.
 */
static napi_value crc32c_groups(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *buf;
  int32_t *ranges, *ends, *out;
  size_t buf_len, ranges_len, ends_len, out_len;
  uint32_t count;
  if (argc < 5 || !typed_array(env, argv[0], napi_uint8_array, (void **)&buf, &buf_len) ||
      !typed_array(env, argv[1], napi_int32_array, (void **)&ranges, &ranges_len) ||
      !typed_array(env, argv[2], napi_int32_array, (void **)&ends, &ends_len) ||
      napi_get_value_uint32(env, argv[3], &count) != napi_ok ||
      !typed_array(env, argv[4], napi_int32_array, (void **)&out, &out_len)) {
    napi_throw_type_error(env, NULL,
                          "crc32cGroups(buf: Uint8Array, ranges: Int32Array, ends: Int32Array, count: number, out: Int32Array)");
    return NULL;
  }
  if (count > ends_len) count = (uint32_t)ends_len;
  if (count > out_len) count = (uint32_t)out_len;
  uint32_t done = 0;
  size_t first = 0;
  for (; done < count; done++) {
    size_t last = (size_t)ends[done];
    if (last < first || 2 * last > ranges_len) break;
    if (!ranges_inside(ranges, first, last, buf_len)) break;
#ifdef HAVE_HW3
    /* Three groups of two ranges each (a WAL record on one page: body, then header) in step. */
    if (crc_update == crc_hw && done + 3 <= count && last - first == 2 && (size_t)ends[done + 1] == last + 2 &&
        (size_t)ends[done + 2] == last + 4 && 2 * (last + 4) <= ranges_len) {
      if (ranges_inside(ranges, last, last + 4, buf_len)) {
        uint32_t c[3];
        const uint8_t *p[3];
        size_t len[3];
        for (int k = 0; k < 3; k++) {
          size_t r = first + 2 * (size_t)k;
          c[k] = 0xFFFFFFFFu;
          p[k] = buf + ranges[2 * r];
          len[k] = (size_t)(ranges[2 * r + 1] - ranges[2 * r]);
        }
        crc_hw3(c, p, len);
        for (int k = 0; k < 3; k++) {
          size_t r = first + 2 * (size_t)k + 1;
          p[k] = buf + ranges[2 * r];
          len[k] = (size_t)(ranges[2 * r + 1] - ranges[2 * r]);
        }
        crc_hw3(c, p, len);
        for (int k = 0; k < 3; k++) out[done + (uint32_t)k] = (int32_t)~c[k];
        done += 2;
        first = last + 4;
        continue;
      }
    }
#endif
    uint32_t c = 0xFFFFFFFFu;
    for (size_t r = first; r < last; r++) c = crc_update(c, buf + ranges[2 * r], (size_t)(ranges[2 * r + 1] - ranges[2 * r]));
    out[done] = (int32_t)~c;
    first = last;
  }
  napi_value result;
  napi_create_uint32(env, done, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  make_table();
  if (have_hw()) crc_update = crc_hw;
  napi_value fn, hw;
  napi_create_function(env, "crc32cGroups", NAPI_AUTO_LENGTH, crc32c_groups, NULL, &fn);
  napi_set_named_property(env, exports, "crc32cGroups", fn);
  napi_get_boolean(env, crc_update == crc_hw, &hw);
  napi_set_named_property(env, exports, "hardware", hw);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
