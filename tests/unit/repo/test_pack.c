/*
 * test_pack.c -- unit tests for src/repo/pack.c: the plaintext header codec (round trip,
 * varint edge values, every truncation), the decoder's rejection of hostile input (counts
 * larger than the input or the cap, entries pointing past PACK_MAX_BYTES, too-short stored
 * lengths, unknown types and flags, oversized raw lengths, bad magic, trailing bytes),
 * pack_header_locate bounds, a whole pack streamed by packer_add_sealed/packer_finish into
 * mem: storage and read back through its name (SHA-256), locate, envelope_open, decode and
 * blob_open, and the packer's entry cap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "repo/envelope.h"
#include "crypto/crypto.h"
#include "repo/pack.h"
#include "storage/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void make_entries(pack_entry_t *e, size_t n)
{
    uint32_t off = 0;
    for (size_t i = 0; i < n; i++) {
        e[i].type = i % 3 ? BLOB_DATA : BLOB_TREE;
        e[i].compressed = i % 2;
        for (int k = 0; k < 32; k++)
            e[i].id[k] = (uint8_t)(i * 7 + k);
        e[i].offset = off;
        e[i].stored_len = (uint32_t)(BLOB_OVERHEAD + i * 1001);
        e[i].raw_len = i == n - 1 ? 64u << 20 : (uint32_t)(i * 1000);
        off += e[i].stored_len;
    }
}

static void assert_entries_equal(const pack_entry_t *a, const pack_entry_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(a[i].type, b[i].type);
        assert_int_equal(a[i].compressed, b[i].compressed);
        assert_memory_equal(a[i].id, b[i].id, 32);
        assert_int_equal(a[i].offset, b[i].offset);
        assert_int_equal(a[i].stored_len, b[i].stored_len);
        assert_int_equal(a[i].raw_len, b[i].raw_len);
    }
}

static void test_header_roundtrip(void **state)
{
    (void)state;
    enum { N = 300 };
    pack_entry_t *e = calloc(N, sizeof *e);
    assert_non_null(e);
    make_entries(e, N);
    buf_t b;
    buf_init(&b);
    assert_int_equal(pack_header_encode(e, N, &b), 0);
    assert_memory_equal(b.data, "CPH1", 4);
    pack_entry_t *d = NULL;
    size_t n = 0;
    assert_int_equal(pack_header_decode(b.data, b.len, "hdr", &d, &n), 0);
    assert_int_equal(n, N);
    assert_entries_equal(e, d, N);
    free(d);

    /* an empty header */
    buf_reset(&b);
    assert_int_equal(pack_header_encode(NULL, 0, &b), 0);
    assert_int_equal(pack_header_decode(b.data, b.len, "empty", &d, &n), 0);
    assert_int_equal(n, 0);
    free(d);

    /* the largest values the decoder allows */
    pack_entry_t big = {.type = BLOB_DATA,
                        .compressed = true,
                        .offset = PACK_MAX_BYTES - 28,
                        .stored_len = 28,
                        .raw_len = 64u << 20};
    buf_reset(&b);
    assert_int_equal(pack_header_encode(&big, 1, &b), 0);
    assert_int_equal(pack_header_decode(b.data, b.len, "big", &d, &n), 0);
    assert_int_equal(n, 1);
    assert_entries_equal(&big, d, 1);
    free(d);
    buf_release(&b);
    free(e);
}

static void test_header_every_truncation(void **state)
{
    (void)state;
    enum { N = 12 };
    pack_entry_t e[N];
    make_entries(e, N);
    buf_t b;
    buf_init(&b);
    assert_int_equal(pack_header_encode(e, N, &b), 0);
    for (size_t len = 0; len < b.len; len++) {
        uint8_t *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, b.data, len);
        pack_entry_t *d = (pack_entry_t *)(uintptr_t)1; /* must stay untouched */
        size_t n = 12345;
        int rc = pack_header_decode(p, len, "truncated", &d, &n);
        if (rc != COFFER_ECORRUPT)
            fail_msg("prefix %zu of %zu: expected COFFER_ECORRUPT, got %d", len, b.len, rc);
        assert_true(d == (pack_entry_t *)(uintptr_t)1);
        assert_int_equal(n, 12345);
        free(p);
    }
    buf_release(&b);
}

static void expect_bad(const buf_t *b, const char *why)
{
    pack_entry_t *d = NULL;
    size_t n = 0;
    int rc = pack_header_decode(b->data, b->len, why, &d, &n);
    if (rc != COFFER_ECORRUPT)
        fail_msg("%s: expected COFFER_ECORRUPT, got %d", why, rc);
    assert_null(d);
}

static void encode_one(buf_t *b, uint8_t type, uint8_t flags, uint64_t off, uint64_t sl,
                       uint64_t rl)
{
    uint8_t id[32] = {1};
    buf_reset(b);
    assert_int_equal(buf_append(b, "CPH1", 4), 0);
    assert_int_equal(buf_put_varint(b, 1), 0);
    assert_int_equal(buf_put_u8(b, type), 0);
    assert_int_equal(buf_put_u8(b, flags), 0);
    assert_int_equal(buf_append(b, id, 32), 0);
    assert_int_equal(buf_put_varint(b, off), 0);
    assert_int_equal(buf_put_varint(b, sl), 0);
    assert_int_equal(buf_put_varint(b, rl), 0);
}

static void test_header_rejects(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);

    /* sanity: the reference entry is accepted */
    encode_one(&b, BLOB_DATA, 1, 0, 100, 50);
    pack_entry_t *d = NULL;
    size_t n;
    assert_int_equal(pack_header_decode(b.data, b.len, "ok", &d, &n), 0);
    free(d);

    encode_one(&b, 'X', 0, 0, 100, 50);
    expect_bad(&b, "type");
    encode_one(&b, BLOB_DATA, 2, 0, 100, 50);
    expect_bad(&b, "flags");
    encode_one(&b, BLOB_DATA, 0, 0, BLOB_OVERHEAD - 1, 0);
    expect_bad(&b, "stored length below the overhead");
    encode_one(&b, BLOB_DATA, 0, PACK_MAX_BYTES, 28, 0);
    expect_bad(&b, "offset + length past the limit");
    encode_one(&b, BLOB_DATA, 0, PACK_MAX_BYTES - 27, 28, 0);
    expect_bad(&b, "one byte past the limit");
    encode_one(&b, BLOB_DATA, 0, 0, PACK_MAX_BYTES + 1ull, 0);
    expect_bad(&b, "stored length past the limit");
    encode_one(&b, BLOB_DATA, 0, UINT64_MAX, 28, 0);
    expect_bad(&b, "huge offset");
    encode_one(&b, BLOB_DATA, 0, 0, 28, (64u << 20) + 1);
    expect_bad(&b, "raw length");
    encode_one(&b, BLOB_DATA, 0, 0, 28, UINT64_MAX);
    expect_bad(&b, "huge raw length");

    /* bad magic; trailing bytes */
    encode_one(&b, BLOB_DATA, 0, 0, 28, 0);
    b.data[0] = 'X';
    expect_bad(&b, "magic");
    encode_one(&b, BLOB_DATA, 0, 0, 28, 0);
    assert_int_equal(buf_put_u8(&b, 0), 0);
    expect_bad(&b, "trailing");

    /* counts the input cannot hold, or above the cap (with enough bytes behind it) */
    uint64_t counts[] = {2, 38, 1000, PACK_HEADER_MAX_ENTRIES + 1ull, UINT64_MAX};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        encode_one(&b, BLOB_DATA, 0, 0, 28, 0);
        buf_t c;
        buf_init(&c);
        assert_int_equal(buf_append(&c, "CPH1", 4), 0);
        assert_int_equal(buf_put_varint(&c, counts[i]), 0);
        assert_int_equal(buf_append(&c, b.data + 5, b.len - 5), 0); /* one entry */
        expect_bad(&c, "count");
        buf_release(&c);
    }
    /* a count over the cap even when the bytes are there */
    buf_reset(&b);
    assert_int_equal(buf_append(&b, "CPH1", 4), 0);
    assert_int_equal(buf_put_varint(&b, PACK_HEADER_MAX_ENTRIES + 1ull), 0);
    assert_int_equal(buf_reserve(&b, 37u * (PACK_HEADER_MAX_ENTRIES + 1)), 0);
    memset(b.data + b.len, 0, 37u * (PACK_HEADER_MAX_ENTRIES + 1));
    b.len += 37u * (PACK_HEADER_MAX_ENTRIES + 1);
    expect_bad(&b, "over the cap");
    buf_release(&b);
}

static void test_locate_bounds(void **state)
{
    (void)state;
    uint8_t t[4];
    uint64_t off = 7;
    uint32_t len = 7;
    const uint64_t min = 4 + ENVELOPE_OVERHEAD;

    /* total too small to hold any header */
    put_u32le(t, ENVELOPE_OVERHEAD);
    assert_int_equal(pack_header_locate(t, min - 1, "p", &off, &len), COFFER_ECORRUPT);
    assert_int_equal(pack_header_locate(t, 0, "p", &off, &len), COFFER_ECORRUPT);
    assert_int_equal(off, 7);
    assert_int_equal(len, 7);
    /* the smallest header that fills the whole pack */
    assert_int_equal(pack_header_locate(t, min, "p", &off, &len), 0);
    assert_int_equal(off, 0);
    assert_int_equal(len, ENVELOPE_OVERHEAD);
    /* header shorter than an envelope */
    put_u32le(t, ENVELOPE_OVERHEAD - 1);
    assert_int_equal(pack_header_locate(t, 1000, "p", &off, &len), COFFER_ECORRUPT);
    put_u32le(t, 0);
    assert_int_equal(pack_header_locate(t, 1000, "p", &off, &len), COFFER_ECORRUPT);
    /* header exactly filling the pack, and one byte too long */
    put_u32le(t, 996);
    assert_int_equal(pack_header_locate(t, 1000, "p", &off, &len), 0);
    assert_int_equal(off, 0);
    assert_int_equal(len, 996);
    put_u32le(t, 997);
    assert_int_equal(pack_header_locate(t, 1000, "p", &off, &len), COFFER_ECORRUPT);
    put_u32le(t, UINT32_MAX);
    assert_int_equal(pack_header_locate(t, 1000, "p", &off, &len), COFFER_ECORRUPT);
    /* ordinary case; sizes beyond 4 GiB */
    put_u32le(t, 100);
    assert_int_equal(pack_header_locate(t, 1000, "p", &off, &len), 0);
    assert_int_equal(off, 896);
    assert_int_equal(len, 100);
    assert_int_equal(pack_header_locate(t, 1ull << 40, "p", &off, &len), 0);
    assert_true(off == (1ull << 40) - 104);
}

static void test_packer_whole_pack(void **state)
{
    (void)state;
    uint8_t root[32];
    memset(root, 0x5a, sizeof root);
    keyring_t *k;
    assert_int_equal(keyring_new(root, &k), 0);
    session_t s;
    assert_int_equal(session_start(k, &s), 0);
    uint8_t key[32];
    assert_int_equal(keyring_session_key(k, s.id, key), 0);
    storage_t *st;
    assert_int_equal(storage_open("mem:test-pack-whole", true, &st), 0);

    enum { N = 40 };
    packer_t p;
    packer_init(&p);
    uint8_t ids[N][32];
    buf_t obj, plain;
    buf_init(&obj);
    buf_init(&plain);
    uint64_t data_len = 0;
    for (size_t i = 0; i < N; i++) {
        uint8_t data[3000];
        size_t n = (i * 97) % sizeof data;
        for (size_t j = 0; j < n; j++)
            data[j] = (uint8_t)(i + j * 3);
        memset(ids[i], (int)i, 32);
        assert_int_equal(
            packer_add_sealed(&p, st, &s, BLOB_DATA, ids[i], i % 2, (uint32_t)n, data, n), 0);
        data_len += n + BLOB_OVERHEAD;
        assert_true(p.len == data_len);
    }
    assert_int_equal(p.n, N);
    pack_entry_t *mine = malloc(N * sizeof *mine);
    assert_non_null(mine);
    memcpy(mine, p.entries, N * sizeof *mine);
    uint8_t pid[32];
    assert_int_equal(packer_finish(&p, &s, pid), 0);

    /* stored as data/<xx>/<id>, id = SHA-256 of the bytes */
    char hex[65], name[96];
    hex_encode(pid, 32, hex);
    snprintf(name, sizeof name, "data/%.2s/%s", hex, hex);
    assert_int_equal(storage_get(st, name, 0, 0, &obj), 0);
    uint8_t h[32];
    crypto_sha256(obj.data, obj.len, h);
    assert_memory_equal(h, pid, 32);

    /* locate the header from the last 4 bytes */
    uint64_t off;
    uint32_t len;
    assert_int_equal(pack_header_locate(obj.data + obj.len - 4, obj.len, "pack", &off, &len), 0);
    assert_true(off == data_len);
    assert_int_equal(off + len + 4, obj.len);
    assert_int_equal(obj.data[off], FORMAT_VERSION);
    assert_int_equal(obj.data[off + 1], ENV_PACK_HEADER);
    assert_memory_equal(obj.data + off + 2, s.id, SESSION_ID_LEN);
    assert_int_equal(envelope_open(k, ENV_PACK_HEADER, NULL, obj.data + off, len, "pack", &plain),
                     0);
    pack_entry_t *e;
    size_t n;
    assert_int_equal(pack_header_decode(plain.data, plain.len, "pack", &e, &n), 0);
    assert_int_equal(n, N);
    assert_entries_equal(mine, e, N);
    /* every blob opens at its offset, in order, back to back */
    uint64_t expect_off = 0;
    for (size_t i = 0; i < n; i++) {
        assert_memory_equal(e[i].id, ids[i], 32);
        assert_true(e[i].offset == expect_off);
        expect_off += e[i].stored_len;
        assert_int_equal(
            blob_open(key, BLOB_DATA, e[i].id, obj.data + e[i].offset, e[i].stored_len, &plain), 0);
        assert_int_equal(plain.len, e[i].raw_len);
        for (size_t j = 0; j < plain.len; j++)
            assert_int_equal(plain.data[j], (uint8_t)(i + j * 3));
    }
    assert_true(expect_off == data_len);
    free(e);
    free(mine);
    packer_release(&p);
    packer_release(NULL);

    /* an empty packer stores nothing */
    packer_init(&p);
    assert_int_equal(packer_finish(&p, &s, pid), COFFER_EINVAL);
    packer_release(&p);
    buf_release(&obj);
    buf_release(&plain);
    storage_close(st);
    session_wipe(&s);
    keyring_free(k);
}

static void test_packer_entry_cap(void **state)
{
    (void)state;
    uint8_t root[32] = {1};
    keyring_t *k;
    assert_int_equal(keyring_new(root, &k), 0);
    session_t s;
    assert_int_equal(session_start(k, &s), 0);
    storage_t *st;
    assert_int_equal(storage_open("mem:test-pack-cap", true, &st), 0);
    packer_t p;
    packer_init(&p);
    uint8_t id[32] = {0};
    for (uint32_t i = 0; i < PACK_HEADER_MAX_ENTRIES; i++) {
        memcpy(id, &i, sizeof i);
        if (packer_add_sealed(&p, st, &s, BLOB_DATA, id, false, 0, NULL, 0) != 0)
            fail_msg("packer_add_sealed failed at entry %u: %s", i, err_msg());
    }
    assert_int_equal(packer_add_sealed(&p, st, &s, BLOB_DATA, id, false, 0, NULL, 0),
                     COFFER_ELIMIT);
    assert_int_equal(p.n, PACK_HEADER_MAX_ENTRIES);
    /* a full packer's header still decodes (the decoder's cap equals the packer's) */
    buf_t b;
    buf_init(&b);
    assert_int_equal(pack_header_encode(p.entries, p.n, &b), 0);
    pack_entry_t *e;
    size_t n;
    assert_int_equal(pack_header_decode(b.data, b.len, "full", &e, &n), 0);
    assert_int_equal(n, PACK_HEADER_MAX_ENTRIES);
    free(e);
    buf_release(&b);
    packer_release(&p); /* aborts the upload: nothing stored */
    storage_close(st);
    session_wipe(&s);
    keyring_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_roundtrip),  cmocka_unit_test(test_header_every_truncation),
        cmocka_unit_test(test_header_rejects),    cmocka_unit_test(test_locate_bounds),
        cmocka_unit_test(test_packer_whole_pack), cmocka_unit_test(test_packer_entry_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
