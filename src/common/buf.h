/*
 * buf.h -- growable byte buffer, hex helpers and bounds-checked little readers/writers.
 *
 * Layer: common. A buf_t owns its data; buf_release frees it. Growth is checked against
 * overflow and against BUF_MAX (a cap on anything one object can grow to).
 * The data is always NUL-terminated one byte past len (not counted), so text can be used as a
 * C string.
 */
#ifndef COFFER_COMMON_BUF_H
#define COFFER_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

#define BUF_MAX ((size_t)1 << 31) /* 2 GiB: no single object or message grows past this */

typedef struct buf {
    uint8_t *data; /* owned; NULL when cap == 0 */
    size_t len;
    size_t cap;
} buf_t;

void buf_init(buf_t *b);
void buf_release(buf_t *b);              /* frees data; b is reusable after buf_init or as is */
void buf_reset(buf_t *b);                /* len = 0, keeps memory */
int buf_reserve(buf_t *b, size_t extra); /* ensure cap >= len + extra (+1 for NUL) */
int buf_append(buf_t *b, const void *p, size_t n);
int buf_append_str(buf_t *b, const char *s);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_put_u8(buf_t *b, uint8_t v);
int buf_put_u32le(buf_t *b, uint32_t v);
int buf_put_u64le(buf_t *b, uint64_t v);
int buf_put_varint(buf_t *b, uint64_t v);             /* LEB128 */
int buf_put_bytes(buf_t *b, const void *p, size_t n); /* varint length + bytes */
/* Take the data out: *out owns it (caller frees); b is emptied. */
uint8_t *buf_steal(buf_t *b, size_t *out_len);

/* A read cursor over borrowed bytes. All getters return 0 or COFFER_ECORRUPT on underrun
 * (with an err_set message naming `what`). */
typedef struct rd {
    const uint8_t *p;
    size_t left;
    const char *what; /* object being parsed, for messages; borrowed */
} rd_t;

void rd_init(rd_t *r, const void *p, size_t n, const char *what);
int rd_u8(rd_t *r, uint8_t *out);
int rd_u32le(rd_t *r, uint32_t *out);
int rd_u64le(rd_t *r, uint64_t *out);
int rd_varint(rd_t *r, uint64_t *out);
int rd_raw(rd_t *r, size_t n, const uint8_t **out); /* borrowed pointer into input */
int rd_bytes(rd_t *r, size_t max, const uint8_t **out, size_t *out_len); /* varint-prefixed */

void put_u32le(uint8_t *p, uint32_t v);
uint32_t get_u32le(const uint8_t *p);
void put_u64be(uint8_t *p, uint64_t v);

/* Hex: out must hold 2*n+1 chars. */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* Parse exactly 2*n hex digits; returns 0 or COFFER_EINVAL. */
int hex_decode(const char *in, uint8_t *out, size_t n);

/* Overflow-checked arithmetic helpers: return 0, or COFFER_ELIMIT on overflow. */
int size_add(size_t a, size_t b, size_t *out);
int size_mul(size_t a, size_t b, size_t *out);

#endif
