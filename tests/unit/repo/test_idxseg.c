/*
 * test_idxseg.c -- unit tests for src/repo/idxseg.c: round trip of a segment with several
 * superseded ids and several packs (one empty, one large, mixed blob types), callbacks called
 * in order with exactly what was encoded, NULL callbacks, callback errors propagated, every
 * truncated prefix failing cleanly (no callback data leaked, ASan-checked reads), and hostile
 * counts, entries, magic and trailing bytes rejected.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "repo/envelope.h"
#include "repo/idxseg.h"

#include <stdlib.h>
#include <string.h>

enum { NPACKS = 4 };
static const size_t pack_sizes[NPACKS] = {3, 0, 500, 1};

typedef struct fixture {
    uint8_t sup[3][32];
    pack_entry_t *entries[NPACKS];
    idxseg_pack_t packs[NPACKS];
} fixture_t;

static void fixture_init(fixture_t *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < 3; i++)
        memset(f->sup[i], 0xe0 + i, 32);
    for (int p = 0; p < NPACKS; p++) {
        f->entries[p] = calloc(pack_sizes[p] ? pack_sizes[p] : 1, sizeof(pack_entry_t));
        assert_non_null(f->entries[p]);
        uint32_t off = 0;
        for (size_t i = 0; i < pack_sizes[p]; i++) {
            pack_entry_t *e = &f->entries[p][i];
            e->type = p == 3 ? BLOB_TREE : BLOB_DATA;
            e->compressed = (i % 3) == 0;
            for (int k = 0; k < 32; k++)
                e->id[k] = (uint8_t)(p * 101 + i * 7 + k);
            e->offset = off;
            e->stored_len = (uint32_t)(BLOB_OVERHEAD + i * 333);
            e->raw_len = (uint32_t)(i * 400 + 1);
            off += e->stored_len;
        }
        memset(f->packs[p].id, 0x10 + p, 32);
        memset(f->packs[p].session, 0x50 + p, 16);
        f->packs[p].entries = f->entries[p];
        f->packs[p].n = pack_sizes[p];
    }
}

static void fixture_release(fixture_t *f)
{
    for (int p = 0; p < NPACKS; p++)
        free(f->entries[p]);
}

typedef struct seen {
    const fixture_t *f;
    size_t n_sup, n_packs;
    int fail_at_pack; /* return an error from this pack callback (-1: never) */
} seen_t;

static int on_sup(void *ud, const uint8_t id[32])
{
    seen_t *s = ud;
    assert_true(s->n_sup < 3);
    assert_memory_equal(id, s->f->sup[s->n_sup], 32);
    s->n_sup++;
    return 0;
}

static int on_pack(void *ud, const uint8_t id[32], const uint8_t session[16], const pack_entry_t *e,
                   size_t n)
{
    seen_t *s = ud;
    if ((int)s->n_packs == s->fail_at_pack)
        return COFFER_EIO;
    assert_true(s->n_packs < NPACKS);
    const idxseg_pack_t *want = &s->f->packs[s->n_packs];
    assert_memory_equal(id, want->id, 32);
    assert_memory_equal(session, want->session, 16);
    assert_int_equal(n, want->n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(e[i].type, want->entries[i].type);
        assert_int_equal(e[i].compressed, want->entries[i].compressed);
        assert_memory_equal(e[i].id, want->entries[i].id, 32);
        assert_int_equal(e[i].offset, want->entries[i].offset);
        assert_int_equal(e[i].stored_len, want->entries[i].stored_len);
        assert_int_equal(e[i].raw_len, want->entries[i].raw_len);
    }
    s->n_packs++;
    return 0;
}

static void test_roundtrip(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f);
    buf_t b;
    buf_init(&b);
    assert_int_equal(idxseg_encode((const uint8_t(*)[32])f.sup, 3, f.packs, NPACKS, &b), 0);
    assert_memory_equal(b.data, "CIX1", 4);
    seen_t s = {.f = &f, .fail_at_pack = -1};
    idxseg_cb_t cb = {.ud = &s, .supersedes = on_sup, .pack = on_pack};
    assert_int_equal(idxseg_decode(b.data, b.len, "seg", &cb), 0);
    assert_int_equal(s.n_sup, 3);
    assert_int_equal(s.n_packs, NPACKS);

    /* NULL callbacks: decoding still validates and succeeds */
    idxseg_cb_t none = {0};
    assert_int_equal(idxseg_decode(b.data, b.len, "seg", &none), 0);

    /* an error from a callback stops decoding and is returned as is */
    seen_t s2 = {.f = &f, .fail_at_pack = 2};
    idxseg_cb_t cb2 = {.ud = &s2, .supersedes = on_sup, .pack = on_pack};
    assert_int_equal(idxseg_decode(b.data, b.len, "seg", &cb2), COFFER_EIO);
    assert_int_equal(s2.n_packs, 2);

    /* nothing at all */
    buf_reset(&b);
    assert_int_equal(idxseg_encode(NULL, 0, NULL, 0, &b), 0);
    assert_int_equal(b.len, 6);
    seen_t s3 = {.f = &f, .fail_at_pack = -1};
    idxseg_cb_t cb3 = {.ud = &s3, .supersedes = on_sup, .pack = on_pack};
    assert_int_equal(idxseg_decode(b.data, b.len, "empty", &cb3), 0);
    assert_int_equal(s3.n_sup + s3.n_packs, 0);
    buf_release(&b);
    fixture_release(&f);
}

static void test_every_truncation(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f);
    /* a smaller third pack keeps the loop short while covering every field */
    f.packs[2].n = 20;
    buf_t b;
    buf_init(&b);
    assert_int_equal(idxseg_encode((const uint8_t(*)[32])f.sup, 3, f.packs, NPACKS, &b), 0);
    for (size_t len = 0; len < b.len; len++) {
        uint8_t *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, b.data, len);
        seen_t s = {.f = &f, .fail_at_pack = -1};
        idxseg_cb_t cb = {.ud = &s, .supersedes = on_sup, .pack = on_pack};
        int rc = idxseg_decode(p, len, "truncated", &cb);
        if (rc != COFFER_ECORRUPT)
            fail_msg("prefix %zu of %zu: expected COFFER_ECORRUPT, got %d", len, b.len, rc);
        /* a pack is reported only once all its entries were read */
        assert_true(s.n_packs < NPACKS);
        free(p);
    }
    buf_release(&b);
    fixture_release(&f);
}

static void put_entry(buf_t *b, uint8_t type, uint8_t flags, uint64_t off, uint64_t sl, uint64_t rl)
{
    uint8_t id[32] = {9};
    assert_int_equal(buf_put_u8(b, type), 0);
    assert_int_equal(buf_put_u8(b, flags), 0);
    assert_int_equal(buf_append(b, id, 32), 0);
    assert_int_equal(buf_put_varint(b, off), 0);
    assert_int_equal(buf_put_varint(b, sl), 0);
    assert_int_equal(buf_put_varint(b, rl), 0);
}

/* "CIX1" | 0 supersedes | 1 pack | id | session | nb */
static void seg_head(buf_t *b, uint64_t nb)
{
    uint8_t pid[32] = {1}, sid[16] = {2};
    buf_reset(b);
    assert_int_equal(buf_append(b, "CIX1", 4), 0);
    assert_int_equal(buf_put_varint(b, 0), 0);
    assert_int_equal(buf_put_varint(b, 1), 0);
    assert_int_equal(buf_append(b, pid, 32), 0);
    assert_int_equal(buf_append(b, sid, 16), 0);
    assert_int_equal(buf_put_varint(b, nb), 0);
}

static void expect_bad(const buf_t *b, const char *why)
{
    idxseg_cb_t none = {0};
    int rc = idxseg_decode(b->data, b->len, why, &none);
    if (rc != COFFER_ECORRUPT)
        fail_msg("%s: expected COFFER_ECORRUPT, got %d", why, rc);
}

static void test_rejects(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    idxseg_cb_t none = {0};

    seg_head(&b, 1);
    put_entry(&b, BLOB_DATA, 1, 10, 28, 5);
    assert_int_equal(idxseg_decode(b.data, b.len, "ok", &none), 0);

    seg_head(&b, 1);
    put_entry(&b, 'Q', 0, 10, 28, 5);
    expect_bad(&b, "type");
    seg_head(&b, 1);
    put_entry(&b, BLOB_DATA, 2, 10, 28, 5);
    expect_bad(&b, "flags");
    seg_head(&b, 1);
    put_entry(&b, BLOB_DATA, 0, 10, 27, 5);
    expect_bad(&b, "stored length below the overhead");
    seg_head(&b, 1);
    put_entry(&b, BLOB_DATA, 0, PACK_MAX_BYTES + 1ull, 28, 5);
    expect_bad(&b, "offset past the limit");
    seg_head(&b, 1);
    put_entry(&b, BLOB_DATA, 0, 0, PACK_MAX_BYTES + 1ull, 5);
    expect_bad(&b, "length past the limit");
    seg_head(&b, 1);
    put_entry(&b, BLOB_DATA, 0, 0, 28, (64u << 20) + 1);
    expect_bad(&b, "raw length");

    /* blob counts larger than the bytes behind them, or over the cap */
    uint64_t counts[] = {2, 1000, PACK_HEADER_MAX_ENTRIES + 1ull, UINT64_MAX};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        seg_head(&b, counts[i]);
        put_entry(&b, BLOB_DATA, 0, 0, 28, 0);
        expect_bad(&b, "blob count");
    }
    /* pack and supersedes counts larger than the input */
    uint64_t big[] = {1, 2, IDXSEG_MAX_PACKS + 1ull, UINT64_MAX};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        buf_reset(&b);
        assert_int_equal(buf_append(&b, "CIX1", 4), 0);
        assert_int_equal(buf_put_varint(&b, 0), 0);
        assert_int_equal(buf_put_varint(&b, big[i]), 0);
        assert_int_equal(buf_reserve(&b, 40), 0);
        memset(b.data + b.len, 0, 40);
        b.len += 40; /* less than one pack */
        expect_bad(&b, "pack count");
        buf_reset(&b);
        assert_int_equal(buf_append(&b, "CIX1", 4), 0);
        assert_int_equal(buf_put_varint(&b, big[i]), 0);
        assert_int_equal(buf_reserve(&b, 31), 0);
        memset(b.data + b.len, 0, 31);
        b.len += 31; /* less than one id */
        expect_bad(&b, "supersedes count");
    }

    /* magic, trailing bytes */
    seg_head(&b, 0);
    b.data[0] = 'c';
    expect_bad(&b, "magic");
    seg_head(&b, 0);
    assert_int_equal(idxseg_decode(b.data, b.len, "ok", &none), 0);
    assert_int_equal(buf_put_u8(&b, 0), 0);
    expect_bad(&b, "trailing");
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
