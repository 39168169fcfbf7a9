/*
 * keyslot.h -- key slots: the master secret wrapped under a password (doc/format.md §3).
 *
 * Layer: repo. A slot is a small JSON object stored as keys/<sha256 of the object>. Parsing is
 * strict and bounded (fuzzed): unknown kdf names, out-of-range KDF parameters, bad base64 or
 * wrong lengths are COFFER_ECORRUPT naming the slot.
 */
#ifndef COFFER_REPO_KEYSLOT_H
#define COFFER_REPO_KEYSLOT_H

#include "common/buf.h"

#include <stdint.h>

typedef struct keyslot_kdf {
    const char *name; /* "argon2id" (default) or "scrypt" */
    uint64_t ops;     /* argon2id opslimit */
    uint64_t mem;     /* argon2id memlimit, bytes */
    uint64_t n;       /* scrypt N */
    uint32_t r, p;    /* scrypt r, p */
} keyslot_kdf_t;

/* Defaults: argon2id ops 3, mem 19 MiB (OWASP's recommended m=19 MiB with one more pass; more
 * memory would set every command's peak RSS); scrypt N 2^15, r 8, p 1. The environment variable
 * COFFER_KDF may override for init and key add: "argon2id:ops=1,mem=8388608" or
 * "scrypt:n=16384,r=8,p=1" (documented in README; used by tests to keep them fast). */
int keyslot_kdf_from_env(keyslot_kdf_t *out);

/* Make a slot wrapping master (32 bytes) for repo_id under password. out (reset first) holds
 * the JSON text. host/user are informational (may be NULL). */
int keyslot_create(const keyslot_kdf_t *kdf, const char *password, const uint8_t repo_id[32],
                   const uint8_t master[32], const char *host, const char *user, buf_t *out);

/* Try to open a slot. 0 and out_master on success; COFFER_EPASSWORD when the password does
 * not open it; COFFER_ECORRUPT (naming `what`) when the slot is malformed. */
int keyslot_open(const void *json, size_t n, const char *password, const uint8_t repo_id[32],
                 const char *what, uint8_t out_master[32]);

/* Informational fields for `key list` (caller frees the strings; any may be NULL). */
int keyslot_info(const void *json, size_t n, char **out_kdf, char **out_created, char **out_host,
                 char **out_user);

#endif
