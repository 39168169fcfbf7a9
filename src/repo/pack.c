/*
 * pack.c -- pack building and header codec (see pack.h, doc/format.md §6).
 *
 * Layer: repo. The decoder is fuzzed (tests/fuzz/fuzz_pack_header.c): every length and
 * offset is bounds-checked, counts are capped.
 */
#include "repo/pack.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void packer_init(packer_t *p)
{
    memset(p, 0, sizeof *p);
    buf_init(&p->scratch);
}

void packer_release(packer_t *p)
{
    if (!p)
        return;
    storage_upload_abort(p->up);
    crypto_sha256_abort(p->hash);
    buf_release(&p->scratch);
    free(p->entries);
    packer_init(p);
}

static int grow_entries(packer_t *p)
{
    if (p->n < p->cap)
        return 0;
    size_t nc = p->cap ? p->cap * 2 : 64;
    pack_entry_t *ne = realloc(p->entries, nc * sizeof *ne);
    if (!ne)
        return err_set(COFFER_ENOMEM, "out of memory building a pack");
    p->entries = ne;
    p->cap = nc;
    return 0;
}

static int pack_write(packer_t *p, const void *data, size_t n)
{
    int rc = storage_upload_write(p->up, data, n);
    if (!rc)
        rc = crypto_sha256_update(p->hash, data, n);
    if (!rc)
        p->len += n;
    return rc;
}

int packer_add_sealed(packer_t *p, storage_t *st, session_t *s, uint8_t type, const uint8_t id[32],
                      bool compressed, uint32_t raw_len, const void *payload, size_t n)
{
    size_t sealed = n + BLOB_OVERHEAD;
    int rc;
    if (p->len + sealed > PACK_MAX_BYTES || p->n >= PACK_HEADER_MAX_ENTRIES)
        return err_set(COFFER_ELIMIT, "pack would exceed its size limit");
    if ((rc = grow_entries(p)))
        return rc;
    if (!p->up) {
        if ((rc = storage_upload_begin(st, &p->up)))
            return rc;
        if ((rc = crypto_sha256_begin(&p->hash)))
            return rc;
    }
    buf_reset(&p->scratch);
    if ((rc = blob_seal(s, type, id, payload, n, &p->scratch)) ||
        (rc = pack_write(p, p->scratch.data, p->scratch.len)))
        return rc;
    pack_entry_t *e = &p->entries[p->n++];
    e->type = type;
    e->compressed = compressed;
    memcpy(e->id, id, 32);
    e->offset = (uint32_t)(p->len - sealed);
    e->stored_len = (uint32_t)sealed;
    e->raw_len = raw_len;
    if (p->scratch.cap > (8u << 20)) /* keep the staging buffer small between big blobs */
        buf_release(&p->scratch);
    return 0;
}

int packer_finish(packer_t *p, session_t *s, uint8_t out_id[32])
{
    buf_t hdr, sealed;
    buf_init(&hdr);
    buf_init(&sealed);
    uint8_t len4[4];
    char name[96], hex[65];
    int rc = p->up ? 0 : err_set(COFFER_EINVAL, "empty pack");
    if (!rc)
        rc = pack_header_encode(p->entries, p->n, &hdr);
    if (!rc)
        rc = envelope_seal(s, ENV_PACK_HEADER, NULL, hdr.data, hdr.len, true, &sealed);
    if (!rc)
        rc = pack_write(p, sealed.data, sealed.len);
    put_u32le(len4, (uint32_t)sealed.len);
    if (!rc)
        rc = pack_write(p, len4, 4);
    if (!rc) {
        rc = crypto_sha256_end(p->hash, out_id);
        p->hash = NULL;
    }
    if (!rc) {
        hex_encode(out_id, 32, hex);
        snprintf(name, sizeof name, "data/%.2s/%s", hex, hex);
        rc = storage_upload_commit(p->up, name, NULL);
        p->up = NULL;
        if (rc == COFFER_EEXIST) { /* the same bytes are stored already */
            err_clear();
            rc = 0;
        }
    }
    buf_release(&hdr);
    buf_release(&sealed);
    return rc;
}

int pack_header_encode(const pack_entry_t *e, size_t n, buf_t *out)
{
    int rc = buf_append(out, "CPH1", 4);
    if (!rc)
        rc = buf_put_varint(out, n);
    for (size_t i = 0; i < n && !rc; i++) {
        if ((rc = buf_put_u8(out, e[i].type)) || (rc = buf_put_u8(out, e[i].compressed ? 1 : 0)) ||
            (rc = buf_append(out, e[i].id, 32)) || (rc = buf_put_varint(out, e[i].offset)) ||
            (rc = buf_put_varint(out, e[i].stored_len)) || (rc = buf_put_varint(out, e[i].raw_len)))
            break;
    }
    return rc;
}

int pack_header_decode(const void *data, size_t n, const char *what, pack_entry_t **out,
                       size_t *out_n)
{
    rd_t r;
    rd_init(&r, data, n, what);
    const uint8_t *magic;
    uint64_t count;
    int rc = rd_raw(&r, 4, &magic);
    if (rc)
        return rc;
    if (memcmp(magic, "CPH1", 4) != 0)
        return err_set(COFFER_ECORRUPT, "%s: bad pack header magic", what);
    if ((rc = rd_varint(&r, &count)))
        return rc;
    /* every entry takes at least 37 bytes: reject counts the input cannot hold */
    if (count > PACK_HEADER_MAX_ENTRIES || count > r.left / 37)
        return err_set(COFFER_ECORRUPT, "%s: pack header count %llu is invalid", what,
                       (unsigned long long)count);
    pack_entry_t *e = calloc(count ? count : 1, sizeof *e);
    if (!e)
        return err_set(COFFER_ENOMEM, "out of memory reading %s", what);
    for (size_t i = 0; i < count; i++) {
        uint8_t flags;
        const uint8_t *id;
        uint64_t off, sl, rl;
        if ((rc = rd_u8(&r, &e[i].type)) || (rc = rd_u8(&r, &flags)) ||
            (rc = rd_raw(&r, 32, &id)) || (rc = rd_varint(&r, &off)) || (rc = rd_varint(&r, &sl)) ||
            (rc = rd_varint(&r, &rl)))
            goto fail;
        if ((e[i].type != BLOB_DATA && e[i].type != BLOB_TREE) || flags > 1 ||
            off > PACK_MAX_BYTES || sl > PACK_MAX_BYTES || off + sl > PACK_MAX_BYTES ||
            sl < BLOB_OVERHEAD || rl > (64u << 20)) {
            rc = err_set(COFFER_ECORRUPT, "%s: pack header entry %zu is invalid", what, i);
            goto fail;
        }
        e[i].compressed = flags & 1;
        memcpy(e[i].id, id, 32);
        e[i].offset = (uint32_t)off;
        e[i].stored_len = (uint32_t)sl;
        e[i].raw_len = (uint32_t)rl;
    }
    if (r.left) {
        rc = err_set(COFFER_ECORRUPT, "%s: trailing bytes after the pack header", what);
        goto fail;
    }
    *out = e;
    *out_n = (size_t)count;
    return 0;
fail:
    free(e);
    return rc;
}

int pack_header_locate(const uint8_t *tail4, uint64_t total_size, const char *what,
                       uint64_t *out_off, uint32_t *out_len)
{
    if (total_size < 4 + ENVELOPE_OVERHEAD)
        return err_set(COFFER_ECORRUPT, "%s is truncated (%llu bytes)", what,
                       (unsigned long long)total_size);
    uint32_t hl = get_u32le(tail4);
    if (hl < ENVELOPE_OVERHEAD || (uint64_t)hl > total_size - 4)
        return err_set(COFFER_ECORRUPT, "%s: header length %u does not fit the pack", what, hl);
    *out_off = total_size - 4 - hl;
    *out_len = hl;
    return 0;
}
