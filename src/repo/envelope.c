/*
 * envelope.c -- session keys, blob sealing and sealed objects (see envelope.h and
 * doc/format.md §2, §8).
 *
 * Layer: repo. Nonce = 8-byte big-endian session counter | 4 zero bytes; a session never
 * reuses a counter value (atomic increment), and each session has its own key, so nonces never
 * repeat under one key. The keyring caches derived session keys in a small open-addressing
 * table guarded by a mutex; the table is capped (KEYRING_MAX) and reset when full.
 */
#include "repo/envelope.h"
#include "common/error.h"
#include "compress/compress.h"
#include "crypto/crypto.h"

#include <stdlib.h>
#include <string.h>

#define KEYRING_SLOTS 4096 /* power of two */
#define KEYRING_MAX (KEYRING_SLOTS / 2)
#define ENVELOPE_PAYLOAD_MAX (64u << 20)

typedef struct key_slot {
    bool used;
    uint8_t sid[SESSION_ID_LEN];
    uint8_t key[32];
} key_slot_t;

struct keyring {
    uint8_t root[32];
    pthread_mutex_t mu;
    size_t n;
    key_slot_t *slots;
};

int keyring_new(const uint8_t enc_root[32], keyring_t **out)
{
    keyring_t *k = calloc(1, sizeof *k);
    if (!k)
        return err_set(COFFER_ENOMEM, "out of memory creating the keyring");
    k->slots = calloc(KEYRING_SLOTS, sizeof *k->slots);
    if (!k->slots) {
        free(k);
        return err_set(COFFER_ENOMEM, "out of memory creating the keyring");
    }
    memcpy(k->root, enc_root, 32);
    pthread_mutex_init(&k->mu, NULL);
    *out = k;
    return 0;
}

void keyring_free(keyring_t *k)
{
    if (!k)
        return;
    crypto_wipe(k->slots, KEYRING_SLOTS * sizeof *k->slots);
    crypto_wipe(k->root, sizeof k->root);
    pthread_mutex_destroy(&k->mu);
    free(k->slots);
    free(k);
}

static int derive_session_key(const uint8_t root[32], const uint8_t sid[SESSION_ID_LEN],
                              uint8_t out[32])
{
    static const char info[] = "coffer/v1/session";
    return crypto_hkdf(root, 32, sid, SESSION_ID_LEN, info, sizeof info - 1, out, 32);
}

int keyring_session_key(keyring_t *k, const uint8_t sid[SESSION_ID_LEN], uint8_t out[32])
{
    uint32_t h = get_u32le(sid) & (KEYRING_SLOTS - 1);
    pthread_mutex_lock(&k->mu);
    for (uint32_t i = h;; i = (i + 1) & (KEYRING_SLOTS - 1)) {
        key_slot_t *s = &k->slots[i];
        if (!s->used)
            break;
        if (memcmp(s->sid, sid, SESSION_ID_LEN) == 0) {
            memcpy(out, s->key, 32);
            pthread_mutex_unlock(&k->mu);
            return 0;
        }
    }
    uint8_t key[32];
    int rc = derive_session_key(k->root, sid, key);
    if (rc) {
        pthread_mutex_unlock(&k->mu);
        return rc;
    }
    if (k->n >= KEYRING_MAX) {
        crypto_wipe(k->slots, KEYRING_SLOTS * sizeof *k->slots);
        memset(k->slots, 0, KEYRING_SLOTS * sizeof *k->slots);
        k->n = 0;
    }
    uint32_t i = h;
    while (k->slots[i].used)
        i = (i + 1) & (KEYRING_SLOTS - 1);
    k->slots[i].used = true;
    memcpy(k->slots[i].sid, sid, SESSION_ID_LEN);
    memcpy(k->slots[i].key, key, 32);
    k->n++;
    pthread_mutex_unlock(&k->mu);
    memcpy(out, key, 32);
    crypto_wipe(key, sizeof key);
    return 0;
}

int session_start(const keyring_t *k, session_t *out)
{
    session_t s;
    memset(&s, 0, sizeof s);
    int rc = crypto_random(s.id, sizeof s.id);
    if (!rc)
        rc = derive_session_key(k->root, s.id, s.key);
    if (rc)
        return rc;
    memcpy(out->id, s.id, sizeof s.id);
    memcpy(out->key, s.key, sizeof s.key);
    atomic_store(&out->counter, 1);
    crypto_wipe(&s, sizeof s);
    return 0;
}

void session_wipe(session_t *s)
{
    if (s)
        crypto_wipe(s->key, sizeof s->key);
}

static void next_nonce(session_t *s, uint8_t nonce[12])
{
    uint64_t c = atomic_fetch_add(&s->counter, 1);
    put_u64be(nonce, c);
    memset(nonce + 8, 0, 4);
}

static void make_ad(uint8_t ad[34], uint8_t type, const uint8_t *id)
{
    ad[0] = FORMAT_VERSION;
    ad[1] = type;
    if (id)
        memcpy(ad + 2, id, 32);
    else
        memset(ad + 2, 0, 32);
}

int blob_seal(session_t *s, uint8_t type, const uint8_t id[32], const void *plain, size_t n,
              buf_t *out)
{
    int rc = buf_reserve(out, n + BLOB_OVERHEAD);
    if (rc)
        return rc;
    uint8_t ad[34];
    make_ad(ad, type, id);
    uint8_t *p = out->data + out->len;
    next_nonce(s, p);
    rc = crypto_seal(s->key, p, ad, sizeof ad, plain, n, p + 12);
    if (rc)
        return rc;
    out->len += n + BLOB_OVERHEAD;
    return 0;
}

int blob_open(const uint8_t key[32], uint8_t type, const uint8_t id[32], const void *sealed,
              size_t n, buf_t *out)
{
    char hex[65];
    if (n < BLOB_OVERHEAD) {
        hex_encode(id, 32, hex);
        return err_set(COFFER_ECORRUPT, "blob %s is truncated (%zu bytes)", hex, n);
    }
    buf_reset(out);
    int rc = buf_reserve(out, n - BLOB_OVERHEAD);
    if (rc)
        return rc;
    uint8_t ad[34];
    make_ad(ad, type, id);
    const uint8_t *p = sealed;
    rc = crypto_open(key, p, ad, sizeof ad, p + 12, n - 12, out->data);
    if (rc) {
        hex_encode(id, 32, hex);
        return err_set(COFFER_ECORRUPT, "blob %s does not decrypt: the pack is damaged", hex);
    }
    out->len = n - BLOB_OVERHEAD;
    out->data[out->len] = 0;
    return 0;
}

int envelope_seal(session_t *s, uint8_t type, const uint8_t *id, const void *payload, size_t n,
                  bool compress, buf_t *out)
{
    buf_t plain;
    buf_init(&plain);
    compressor_t *c = NULL;
    int rc;
    bool compressed = false;
    if (compress && n > 64) {
        buf_t z;
        buf_init(&z);
        if ((rc = compressor_new(COMPRESS_LEVEL_DEFAULT, &c)) ||
            (rc = compressor_run(c, payload, n, &z, &compressed))) {
            buf_release(&z);
            goto out;
        }
        if (compressed) {
            if ((rc = buf_put_u8(&plain, 1)) || (rc = buf_put_varint(&plain, n)) ||
                (rc = buf_append(&plain, z.data, z.len))) {
                buf_release(&z);
                goto out;
            }
        }
        buf_release(&z);
    }
    if (!compressed) {
        if ((rc = buf_put_u8(&plain, 0)) || (rc = buf_append(&plain, payload, n)))
            goto out;
    }
    buf_reset(out);
    if ((rc = buf_reserve(out, plain.len + ENVELOPE_OVERHEAD)))
        goto out;
    out->data[0] = FORMAT_VERSION;
    out->data[1] = type;
    memcpy(out->data + 2, s->id, SESSION_ID_LEN);
    uint8_t *nonce = out->data + 2 + SESSION_ID_LEN;
    next_nonce(s, nonce);
    uint8_t ad[34];
    make_ad(ad, type, id);
    if ((rc = crypto_seal(s->key, nonce, ad, sizeof ad, plain.data, plain.len,
                          out->data + ENVELOPE_HDR_LEN)))
        goto out;
    out->len = plain.len + ENVELOPE_OVERHEAD;
out:
    compressor_free(c);
    buf_release(&plain);
    return rc;
}

int envelope_open(keyring_t *k, uint8_t type, const uint8_t *id, const void *data, size_t n,
                  const char *what, buf_t *out)
{
    const uint8_t *p = data;
    buf_t plain;
    buf_init(&plain);
    int rc;
    if (n < ENVELOPE_OVERHEAD + 1)
        return err_set(COFFER_ECORRUPT, "%s is truncated (%zu bytes)", what, n);
    if (p[0] != FORMAT_VERSION)
        return err_set(p[0] > FORMAT_VERSION ? COFFER_EVERSION : COFFER_ECORRUPT,
                       "%s has format version %u; this coffer reads version %d%s", what, p[0],
                       FORMAT_VERSION, p[0] > FORMAT_VERSION ? ": upgrade coffer" : "");
    if (p[1] != type)
        return err_set(COFFER_ECORRUPT, "%s has object type '%c', expected '%c'", what,
                       p[1] >= 32 && p[1] < 127 ? p[1] : '?', type);
    uint8_t key[32];
    if ((rc = keyring_session_key(k, p + 2, key)))
        return rc;
    if ((rc = buf_reserve(&plain, n - ENVELOPE_OVERHEAD)))
        goto out;
    uint8_t ad[34];
    make_ad(ad, type, id);
    if (crypto_open(key, p + 2 + SESSION_ID_LEN, ad, sizeof ad, p + ENVELOPE_HDR_LEN,
                    n - ENVELOPE_HDR_LEN, plain.data)) {
        rc = err_set(COFFER_ECORRUPT, "%s does not decrypt: it is damaged or was altered", what);
        goto out;
    }
    plain.len = n - ENVELOPE_OVERHEAD;
    rd_t r;
    rd_init(&r, plain.data, plain.len, what);
    uint8_t comp;
    if ((rc = rd_u8(&r, &comp)))
        goto out;
    if (comp == 0) {
        buf_reset(out);
        rc = buf_append(out, r.p, r.left);
    } else if (comp == 1) {
        uint64_t raw;
        if ((rc = rd_varint(&r, &raw)))
            goto out;
        if (raw > ENVELOPE_PAYLOAD_MAX) {
            rc = err_set(COFFER_ELIMIT, "%s claims %llu bytes, above the limit", what,
                         (unsigned long long)raw);
            goto out;
        }
        if ((rc = compress_decompress(r.p, r.left, (size_t)raw, out)))
            rc = err_ctx(rc, "while reading %s", what);
    } else {
        rc = err_set(COFFER_ECORRUPT, "%s has unknown compression %u", what, comp);
    }
out:
    crypto_wipe(key, sizeof key);
    buf_release(&plain);
    return rc;
}
