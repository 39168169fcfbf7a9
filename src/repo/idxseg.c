/*
 * idxseg.c -- index segment codec (see idxseg.h, doc/format.md §7).
 *
 * Layer: repo.
 */
#include "repo/idxseg.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

int idxseg_encode(const uint8_t (*supersedes)[32], size_t n_sup, const idxseg_pack_t *packs,
                  size_t n_packs, buf_t *out)
{
    int rc = buf_append(out, "CIX1", 4);
    if (!rc)
        rc = buf_put_varint(out, n_sup);
    for (size_t i = 0; i < n_sup && !rc; i++)
        rc = buf_append(out, supersedes[i], 32);
    if (!rc)
        rc = buf_put_varint(out, n_packs);
    for (size_t p = 0; p < n_packs && !rc; p++) {
        const idxseg_pack_t *pk = &packs[p];
        if ((rc = buf_append(out, pk->id, 32)) || (rc = buf_append(out, pk->session, 16)) ||
            (rc = buf_put_varint(out, pk->n)))
            break;
        for (size_t i = 0; i < pk->n && !rc; i++) {
            const pack_entry_t *e = &pk->entries[i];
            if ((rc = buf_put_u8(out, e->type)) || (rc = buf_put_u8(out, e->compressed ? 1 : 0)) ||
                (rc = buf_append(out, e->id, 32)) || (rc = buf_put_varint(out, e->offset)) ||
                (rc = buf_put_varint(out, e->stored_len)))
                break;
            rc = buf_put_varint(out, e->raw_len);
        }
    }
    return rc;
}

int idxseg_decode(const void *data, size_t n, const char *what, const idxseg_cb_t *cb)
{
    rd_t r;
    rd_init(&r, data, n, what);
    const uint8_t *magic, *id;
    uint64_t n_sup, n_packs;
    pack_entry_t *ents = NULL;
    size_t ents_cap = 0;
    int rc = rd_raw(&r, 4, &magic);
    if (rc)
        return rc;
    if (memcmp(magic, "CIX1", 4) != 0)
        return err_set(COFFER_ECORRUPT, "%s: bad index segment magic", what);
    if ((rc = rd_varint(&r, &n_sup)))
        return rc;
    if (n_sup > IDXSEG_MAX_SUPERSEDES || n_sup > r.left / 32)
        return err_set(COFFER_ECORRUPT, "%s: invalid supersedes count", what);
    for (uint64_t i = 0; i < n_sup; i++) {
        if ((rc = rd_raw(&r, 32, &id)))
            return rc;
        if (cb->supersedes && (rc = cb->supersedes(cb->ud, id)))
            return rc;
    }
    if ((rc = rd_varint(&r, &n_packs)))
        return rc;
    if (n_packs > IDXSEG_MAX_PACKS || n_packs > r.left / 49)
        return err_set(COFFER_ECORRUPT, "%s: invalid pack count", what);
    for (uint64_t p = 0; p < n_packs; p++) {
        const uint8_t *pid, *sid;
        uint64_t nb;
        if ((rc = rd_raw(&r, 32, &pid)) || (rc = rd_raw(&r, 16, &sid)) || (rc = rd_varint(&r, &nb)))
            goto out;
        if (nb > PACK_HEADER_MAX_ENTRIES || nb > r.left / 37) {
            rc = err_set(COFFER_ECORRUPT, "%s: invalid blob count", what);
            goto out;
        }
        if (nb > ents_cap) {
            pack_entry_t *ne = realloc(ents, (size_t)nb * sizeof *ne);
            if (!ne) {
                rc = err_set(COFFER_ENOMEM, "out of memory reading %s", what);
                goto out;
            }
            ents = ne;
            ents_cap = (size_t)nb;
        }
        for (uint64_t i = 0; i < nb; i++) {
            uint8_t flags;
            uint64_t off, sl, rl;
            pack_entry_t *e = &ents[i];
            if ((rc = rd_u8(&r, &e->type)) || (rc = rd_u8(&r, &flags)) ||
                (rc = rd_raw(&r, 32, &id)) || (rc = rd_varint(&r, &off)) ||
                (rc = rd_varint(&r, &sl)) || (rc = rd_varint(&r, &rl)))
                goto out;
            if ((e->type != 'D' && e->type != 'T') || flags > 1 || off > PACK_MAX_BYTES ||
                sl > PACK_MAX_BYTES || off + sl > PACK_MAX_BYTES || sl < 28 || rl > (64u << 20)) {
                rc = err_set(COFFER_ECORRUPT, "%s: invalid blob entry", what);
                goto out;
            }
            e->compressed = flags & 1;
            memcpy(e->id, id, 32);
            e->offset = (uint32_t)off;
            e->stored_len = (uint32_t)sl;
            e->raw_len = (uint32_t)rl;
        }
        if (cb->pack && (rc = cb->pack(cb->ud, pid, sid, ents, (size_t)nb)))
            goto out;
    }
    if (r.left)
        rc = err_set(COFFER_ECORRUPT, "%s: trailing bytes after the index segment", what);
out:
    free(ents);
    return rc;
}
