/*
 * envelope.h -- sessions (per-writer keys with counter nonces) and sealed objects
 * (doc/format.md §2, §8).
 *
 * Layer: repo. A keyring holds the encryption root E and caches session keys derived from it
 * (HKDF(E, salt = session id)), so reading blobs of many packs derives each key once.
 * A session_t is the writer side: its id, its key and an atomic nonce counter; many threads
 * may seal with one session at once.
 */
#ifndef COFFER_REPO_ENVELOPE_H
#define COFFER_REPO_ENVELOPE_H

#include "common/buf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define FORMAT_VERSION 1
#define SESSION_ID_LEN 16
#define ENVELOPE_HDR_LEN (2 + SESSION_ID_LEN + 12)
#define ENVELOPE_OVERHEAD (ENVELOPE_HDR_LEN + 16)
#define BLOB_OVERHEAD (12 + 16) /* nonce + tag around a blob in a pack */

/* Envelope and blob type bytes. */
enum {
    ENV_CONFIG = 'C',
    ENV_PACK_HEADER = 'H',
    ENV_INDEX = 'I',
    ENV_SNAPSHOT = 'S',
    ENV_SESSION = 'W',
    ENV_LEASE = 'L',
    ENV_CONDEMNED = 'X',
    BLOB_DATA = 'D',
    BLOB_TREE = 'T',
};

typedef struct session {
    uint8_t id[SESSION_ID_LEN];
    uint8_t key[32];
    _Atomic uint64_t counter;
} session_t;

typedef struct keyring keyring_t;

/* enc_root: the 32-byte encryption root E (copied). Caller frees with keyring_free. */
int keyring_new(const uint8_t enc_root[32], keyring_t **out);
void keyring_free(keyring_t *k);

/* Start a new writer session: random id, derived key, counter at 1. */
int session_start(const keyring_t *k, session_t *out);
void session_wipe(session_t *s);

/* The key for session id `sid` (derived once, then cached; thread-safe). */
int keyring_session_key(keyring_t *k, const uint8_t sid[SESSION_ID_LEN], uint8_t out[32]);

/* Seal one blob for a pack: appends nonce | ciphertext | tag to out. AD binds version, type
 * and id. */
int blob_seal(session_t *s, uint8_t type, const uint8_t id[32], const void *plain, size_t n,
              buf_t *out);
/* Open a sealed blob (nonce | ct | tag) with the session key of its pack; plaintext into out
 * (reset first). COFFER_ECORRUPT when it does not verify. */
int blob_open(const uint8_t key[32], uint8_t type, const uint8_t id[32], const void *sealed,
              size_t n, buf_t *out);

/* Seal an object: out (reset first) = version | type | session id | nonce | ct | tag with
 * plaintext = compression byte | payload (zstd when compress is set). id may be NULL (zeros). */
int envelope_seal(session_t *s, uint8_t type, const uint8_t *id, const void *payload, size_t n,
                  bool compress, buf_t *out);
/* Open an envelope of the expected type; payload into out (reset first). `what` names the
 * object in errors. COFFER_ECORRUPT on any mismatch; COFFER_EVERSION for a newer version. */
int envelope_open(keyring_t *k, uint8_t type, const uint8_t *id, const void *data, size_t n,
                  const char *what, buf_t *out);

#endif
