/*
 * buf.c -- growable buffer, read cursor and hex helpers (see buf.h).
 *
 * Layer: common. Every size computation is overflow-checked; nothing grows past BUF_MAX.
 */
#include "common/buf.h"
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_release(buf_t *b)
{
    if (!b)
        return;
    free(b->data);
    buf_init(b);
}

void buf_reset(buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

int buf_reserve(buf_t *b, size_t extra)
{
    size_t need;
    if (size_add(b->len, extra, &need) || size_add(need, 1, &need) || need > BUF_MAX)
        return err_set(COFFER_ELIMIT, "buffer would exceed %zu bytes", (size_t)BUF_MAX);
    if (need <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap = ncap > BUF_MAX / 2 ? need : ncap * 2;
    uint8_t *nd = realloc(b->data, ncap);
    if (!nd)
        return err_set(COFFER_ENOMEM, "out of memory growing a buffer to %zu bytes", ncap);
    if (!b->data)
        nd[0] = 0; /* a fresh buffer is an empty string */
    b->data = nd;
    b->cap = ncap;
    return 0;
}

int buf_append(buf_t *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int buf_append_str(buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return err_set(COFFER_EINVAL, "bad format string");
    int rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int buf_put_u8(buf_t *b, uint8_t v)
{
    return buf_append(b, &v, 1);
}

int buf_put_u32le(buf_t *b, uint32_t v)
{
    uint8_t t[4];
    put_u32le(t, v);
    return buf_append(b, t, 4);
}

int buf_put_u64le(buf_t *b, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    return buf_append(b, t, 8);
}

int buf_put_varint(buf_t *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        t[n++] = c | (v ? 0x80 : 0);
    } while (v);
    return buf_append(b, t, n);
}

int buf_put_bytes(buf_t *b, const void *p, size_t n)
{
    int rc = buf_put_varint(b, n);
    return rc ? rc : buf_append(b, p, n);
}

uint8_t *buf_steal(buf_t *b, size_t *out_len)
{
    uint8_t *d = b->data;
    if (out_len)
        *out_len = b->len;
    buf_init(b);
    return d;
}

void rd_init(rd_t *r, const void *p, size_t n, const char *what)
{
    r->p = p;
    r->left = n;
    r->what = what ? what : "object";
}

static int underrun(rd_t *r)
{
    return err_set(COFFER_ECORRUPT, "%s is truncated or malformed", r->what);
}

int rd_u8(rd_t *r, uint8_t *out)
{
    if (r->left < 1)
        return underrun(r);
    *out = *r->p++;
    r->left--;
    return 0;
}

int rd_u32le(rd_t *r, uint32_t *out)
{
    if (r->left < 4)
        return underrun(r);
    *out = get_u32le(r->p);
    r->p += 4;
    r->left -= 4;
    return 0;
}

int rd_u64le(rd_t *r, uint64_t *out)
{
    if (r->left < 8)
        return underrun(r);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    *out = v;
    r->p += 8;
    r->left -= 8;
    return 0;
}

int rd_varint(rd_t *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->left < 1)
            return underrun(r);
        uint8_t c = *r->p++;
        r->left--;
        if (shift == 63 && (c & 0x7e))
            return underrun(r);
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            if (c == 0 && shift > 0)
                return err_set(COFFER_ECORRUPT, "%s has a non-canonical number", r->what);
            *out = v;
            return 0;
        }
    }
    return underrun(r);
}

int rd_raw(rd_t *r, size_t n, const uint8_t **out)
{
    if (r->left < n)
        return underrun(r);
    *out = r->p;
    r->p += n;
    r->left -= n;
    return 0;
}

int rd_bytes(rd_t *r, size_t max, const uint8_t **out, size_t *out_len)
{
    uint64_t n;
    int rc = rd_varint(r, &n);
    if (rc)
        return rc;
    if (n > max || n > r->left)
        return underrun(r);
    *out_len = (size_t)n;
    return rd_raw(r, (size_t)n, out);
}

void put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

uint32_t get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void put_u64be(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

void hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hex_decode(const char *in, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!in[2 * i] || !in[2 * i + 1])
            return COFFER_EINVAL;
        int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return COFFER_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return in[2 * n] == 0 ? 0 : COFFER_EINVAL;
}

int size_add(size_t a, size_t b, size_t *out)
{
    if (a > SIZE_MAX - b)
        return COFFER_ELIMIT;
    *out = a + b;
    return 0;
}

int size_mul(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a)
        return COFFER_ELIMIT;
    *out = a * b;
    return 0;
}
