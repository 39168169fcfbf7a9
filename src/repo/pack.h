/*
 * pack.h -- the pack format (doc/format.md §6): building a pack from sealed blobs, and
 * encoding/decoding its encrypted header.
 *
 * Layer: repo. A packer_t streams sealed blobs of one type into a storage upload (a temp file
 * for the local driver, so a pack is never held in memory), hashing as it goes; finishing
 * appends the sealed header and its length and publishes the pack under its SHA-256.
 * Not thread-safe: the writer serializes access to each packer.
 */
#ifndef COFFER_REPO_PACK_H
#define COFFER_REPO_PACK_H

#include "common/buf.h"
#include "crypto/crypto.h"
#include "repo/envelope.h"
#include "storage/storage.h"

#include <stdbool.h>
#include <stdint.h>

#define PACK_HEADER_MAX_ENTRIES 200000
#define PACK_MAX_BYTES (256u << 20)

typedef struct pack_entry {
    uint8_t type; /* BLOB_DATA or BLOB_TREE */
    bool compressed;
    uint8_t id[32];
    uint32_t offset;
    uint32_t stored_len;
    uint32_t raw_len;
} pack_entry_t;

typedef struct packer {
    storage_upload_t *up;      /* open upload; NULL before the first blob */
    crypto_sha256_ctx_t *hash; /* SHA-256 of the bytes written so far (the pack id) */
    buf_t scratch;             /* one sealed blob on its way to the upload */
    uint64_t len;              /* bytes written */
    pack_entry_t *entries;
    size_t n, cap;
} packer_t;

void packer_init(packer_t *p);
/* Abort an unfinished upload and free everything. */
void packer_release(packer_t *p);
/* Seal a blob (blob_seal) and stream it into the pack, starting the upload on the first. */
int packer_add_sealed(packer_t *p, storage_t *st, session_t *s, uint8_t type, const uint8_t id[32],
                      bool compressed, uint32_t raw_len, const void *payload, size_t n);
/* Append the sealed header and its length, compute the pack id, and store the pack as
 * data/<xx>/<id> (create-only; an existing identical pack counts as stored). */
int packer_finish(packer_t *p, session_t *s, uint8_t out_id[32]);

/* Encode / decode the plaintext header ("CPH1" ...). decode: *out malloc'd, caller frees. */
int pack_header_encode(const pack_entry_t *e, size_t n, buf_t *out);
int pack_header_decode(const void *data, size_t n, const char *what, pack_entry_t **out,
                       size_t *out_n);

/* Given the whole pack or its tail (at least the header and the trailing length), locate the
 * sealed header: *out_off is its offset within `total_size`, *out_len its length. */
int pack_header_locate(const uint8_t *tail4, uint64_t total_size, const char *what,
                       uint64_t *out_off, uint32_t *out_len);

#endif
