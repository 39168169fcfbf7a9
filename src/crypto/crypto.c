/*
 * crypto.c -- coffer's cryptographic primitives on OpenSSL 3 and libsodium (see crypto.h).
 *
 * Layer: crypto (uses common only).
 * Invariants:
 *  - Algorithms (SHA2-256, AES-256-GCM, HKDF) are fetched once under pthread_once and then
 *    only read. Explicit fetching avoids OpenSSL 3's per-call implicit fetch and its locks.
 *  - A crypto_hmac_t is immutable after crypto_hmac_new: it holds two SHA-256 states that have
 *    already absorbed key^ipad and key^opad (RFC 2104). crypto_hmac copies them into a
 *    per-thread scratch context, so any number of threads can hash under one key at once and
 *    no pad is ever recomputed.
 *  - Per-thread scratch (one EVP_MD_CTX, one EVP_CIPHER_CTX) is allocated on first use and
 *    freed by a pthread key destructor at thread exit. The cipher context keeps the last key
 *    schedule until the thread's next seal/open or exit; keys themselves live in the caller's
 *    memory for a session anyway, and re-using the context saves an allocation per blob.
 *  - Stack copies of secrets (HMAC pads) are wiped before return. crypto_open clears its
 *    output when the tag does not verify, so unauthenticated plaintext never reaches a caller.
 *  - Every size a caller (or a key slot read from the repository) controls is capped before
 *    it reaches a library that would allocate from it.
 */
#include "crypto/crypto.h"
#include "common/error.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <sodium.h>

#define SHA256_BLOCK 64
#define HKDF_OUT_MAX (255u * CRYPTO_HASH_LEN)    /* RFC 5869 limit for SHA-256 */
#define KDF_OUT_MAX 1024u                        /* password KDF output; keys are 32 bytes */
#define GCM_MAX_BYTES ((UINT64_C(1) << 36) - 32) /* NIST SP 800-38D plaintext limit */
#define EVP_STEP ((size_t)1 << 30)               /* EVP lengths are int: feed in 1 GiB steps */

#define SCRYPT_N_MAX (UINT64_C(1) << 22)
#define SCRYPT_RP_MAX (UINT64_C(1) << 20)
#define SCRYPT_MEM_MAX (UINT64_C(4) << 30) /* 128 * r * N, same bound as argon2id memlimit */
#define ARGON2_OPS_MAX 64u
#define ARGON2_MEM_MAX (UINT64_C(4) << 30)

#define B64_IN_MAX ((size_t)(INT_MAX / 4 - 1) * 3) /* EVP_EncodeBlock takes and returns int */

struct crypto_hmac {
    EVP_MD_CTX *inner; /* SHA-256 after absorbing key ^ ipad; never updated again */
    EVP_MD_CTX *outer; /* SHA-256 after absorbing key ^ opad; never updated again */
};

struct crypto_tls {
    EVP_MD_CTX *md;
    EVP_CIPHER_CTX *gcm;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static EVP_MD *g_sha256;
static EVP_CIPHER *g_gcm;
static EVP_KDF *g_hkdf;
static bool g_tls_key_ok;
static pthread_key_t g_tls_key;
static _Thread_local struct crypto_tls *t_tls;

static pthread_once_t g_sodium_once = PTHREAD_ONCE_INIT;
static int g_sodium_rc = -1;

/* Record the most specific OpenSSL reason in our error record and clear OpenSSL's per-thread
 * queue, so a stale entry never shows up in a later, unrelated message. */
static int ossl_fail(int code, const char *what)
{
    char reason[256] = "no detail from OpenSSL";
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    return err_set(code, "%s failed: %s", what, reason);
}

static void tls_destroy(void *p)
{
    struct crypto_tls *t = p;
    if (!t)
        return;
    EVP_MD_CTX_free(t->md);
    EVP_CIPHER_CTX_free(t->gcm);
    free(t);
}

static void global_init(void)
{
    g_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    g_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    g_hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    g_tls_key_ok = pthread_key_create(&g_tls_key, tls_destroy) == 0;
}

static int ensure_init(void)
{
    pthread_once(&g_once, global_init);
    if (!g_sha256 || !g_gcm || !g_hkdf)
        return ossl_fail(COFFER_EINVAL, "loading SHA2-256, AES-256-GCM and HKDF from OpenSSL "
                                        "(check the OpenSSL provider configuration)");
    if (!g_tls_key_ok)
        return err_set(COFFER_ENOMEM, "cannot create the crypto thread-local key");
    return 0;
}

/* The calling thread's scratch contexts, created on first use. NULL on failure, with the
 * error record set (err_code() gives the code). */
static struct crypto_tls *tls_get(void)
{
    if (ensure_init())
        return NULL;
    if (t_tls)
        return t_tls;
    struct crypto_tls *t = calloc(1, sizeof *t);
    if (t) {
        t->md = EVP_MD_CTX_new();
        t->gcm = EVP_CIPHER_CTX_new();
    }
    if (!t || !t->md || !t->gcm || pthread_setspecific(g_tls_key, t) != 0) {
        tls_destroy(t);
        err_set(COFFER_ENOMEM, "out of memory allocating crypto thread state");
        return NULL;
    }
    t_tls = t;
    return t;
}

int crypto_random(void *out, size_t n)
{
    uint8_t *p = out;
    while (n > 0) {
        size_t step = n < EVP_STEP ? n : EVP_STEP;
        if (RAND_bytes(p, (int)step) != 1)
            return ossl_fail(COFFER_EIO, "reading random bytes from OpenSSL (is the system "
                                         "entropy source available?)");
        p += step;
        n -= step;
    }
    return 0;
}

void crypto_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

void crypto_sha256(const void *data, size_t n, uint8_t out[CRYPTO_HASH_LEN])
{
    /* The contract has no error path: SHA-256 fails only when OpenSSL is broken or memory is
     * exhausted, and returning a wrong pack id silently would be worse than stopping. */
    if (ensure_init() || !EVP_Digest(data, n, out, NULL, g_sha256, NULL))
        abort();
}

struct crypto_sha256_ctx {
    EVP_MD_CTX *md;
};

int crypto_sha256_begin(crypto_sha256_ctx_t **out)
{
    crypto_sha256_ctx_t *c = calloc(1, sizeof *c);
    if (!c || ensure_init() || !(c->md = EVP_MD_CTX_new()) ||
        !EVP_DigestInit_ex(c->md, g_sha256, NULL)) {
        crypto_sha256_abort(c);
        return err_set(COFFER_ENOMEM, "cannot start a SHA-256 digest");
    }
    *out = c;
    return 0;
}

int crypto_sha256_update(crypto_sha256_ctx_t *c, const void *data, size_t n)
{
    if (!EVP_DigestUpdate(c->md, data, n))
        return err_set(COFFER_EIO, "SHA-256 update failed");
    return 0;
}

int crypto_sha256_end(crypto_sha256_ctx_t *c, uint8_t out[CRYPTO_HASH_LEN])
{
    int rc = EVP_DigestFinal_ex(c->md, out, NULL) ? 0 : err_set(COFFER_EIO, "SHA-256 failed");
    crypto_sha256_abort(c);
    return rc;
}

void crypto_sha256_abort(crypto_sha256_ctx_t *c)
{
    if (!c)
        return;
    EVP_MD_CTX_free(c->md);
    free(c);
}

static int hmac_absorb_pad(EVP_MD_CTX *ctx, const uint8_t key[CRYPTO_KEY_LEN], uint8_t fill)
{
    uint8_t pad[SHA256_BLOCK];
    memset(pad, fill, sizeof pad);
    for (size_t i = 0; i < CRYPTO_KEY_LEN; i++)
        pad[i] ^= key[i];
    int ok = EVP_DigestInit_ex2(ctx, g_sha256, NULL) && EVP_DigestUpdate(ctx, pad, sizeof pad);
    OPENSSL_cleanse(pad, sizeof pad);
    return ok ? 0 : ossl_fail(COFFER_ENOMEM, "preparing an HMAC-SHA-256 key");
}

int crypto_hmac_new(const uint8_t key[CRYPTO_KEY_LEN], crypto_hmac_t **out)
{
    crypto_hmac_t *h = NULL;
    int rc = ensure_init();
    if (rc)
        goto out;
    h = calloc(1, sizeof *h);
    if (!h) {
        rc = err_set(COFFER_ENOMEM, "out of memory preparing an HMAC key");
        goto out;
    }
    h->inner = EVP_MD_CTX_new();
    h->outer = EVP_MD_CTX_new();
    if (!h->inner || !h->outer) {
        rc = err_set(COFFER_ENOMEM, "out of memory preparing an HMAC key");
        goto out;
    }
    /* The key is 32 bytes, shorter than the 64-byte block: RFC 2104 zero-pads it, no pre-hash. */
    rc = hmac_absorb_pad(h->inner, key, 0x36);
    if (!rc)
        rc = hmac_absorb_pad(h->outer, key, 0x5c);
    if (rc)
        goto out;
    *out = h;
    h = NULL;
out:
    crypto_hmac_free(h);
    return rc;
}

void crypto_hmac_free(crypto_hmac_t *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->inner); /* frees the provider state with OPENSSL_clear_free */
    EVP_MD_CTX_free(h->outer);
    free(h);
}

int crypto_hmac(const crypto_hmac_t *h, const void *data, size_t n, uint8_t out[CRYPTO_HASH_LEN])
{
    struct crypto_tls *t = tls_get();
    uint8_t ih[CRYPTO_HASH_LEN];
    int rc = 0;
    if (!t)
        return err_code();
    if (!EVP_MD_CTX_copy_ex(t->md, h->inner) || !EVP_DigestUpdate(t->md, data, n) ||
        !EVP_DigestFinal_ex(t->md, ih, NULL) || !EVP_MD_CTX_copy_ex(t->md, h->outer) ||
        !EVP_DigestUpdate(t->md, ih, sizeof ih) || !EVP_DigestFinal_ex(t->md, out, NULL))
        rc = ossl_fail(COFFER_ENOMEM, "HMAC-SHA-256");
    OPENSSL_cleanse(ih, sizeof ih);
    return rc;
}

int crypto_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                const void *info, size_t info_len, uint8_t *out, size_t out_len)
{
    EVP_KDF_CTX *kctx = NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[5];
    OSSL_PARAM *p = params;
    int rc = ensure_init();
    if (rc)
        goto out;
    if (ikm_len == 0 || out_len == 0 || out_len > HKDF_OUT_MAX) {
        rc = err_set(COFFER_EINVAL,
                     "HKDF-SHA-256: key length %zu and output length %zu must be non-zero, "
                     "output at most %u bytes",
                     ikm_len, out_len, HKDF_OUT_MAX);
        goto out;
    }
    kctx = EVP_KDF_CTX_new(g_hkdf);
    if (!kctx) {
        rc = ossl_fail(COFFER_ENOMEM, "creating an HKDF context");
        goto out;
    }
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    if (salt_len)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    if (info_len)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    *p = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, out_len, params) != 1)
        rc = ossl_fail(COFFER_EINVAL, "HKDF-SHA-256 key derivation");
out:
    EVP_KDF_CTX_free(kctx); /* clears the copied key, salt and info */
    return rc;
}

/* Feed associated data in int-sized steps; works for either direction of the context. */
static int gcm_aad(EVP_CIPHER_CTX *ctx, const uint8_t *ad, size_t ad_len)
{
    while (ad_len > 0) {
        size_t step = ad_len < EVP_STEP ? ad_len : EVP_STEP;
        int len;
        if (!EVP_CipherUpdate(ctx, NULL, &len, ad, (int)step))
            return -1;
        ad += step;
        ad_len -= step;
    }
    return 0;
}

static int gcm_body(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t n, uint8_t *out)
{
    while (n > 0) {
        size_t step = n < EVP_STEP ? n : EVP_STEP;
        int len;
        if (!EVP_CipherUpdate(ctx, out, &len, in, (int)step) || (size_t)len != step)
            return -1;
        in += step;
        out += step;
        n -= step;
    }
    return 0;
}

int crypto_seal(const uint8_t key[CRYPTO_KEY_LEN], const uint8_t nonce[CRYPTO_NONCE_LEN],
                const void *ad, size_t ad_len, const void *in, size_t n, uint8_t *out)
{
    struct crypto_tls *t = tls_get();
    int len;
    assert(ad || !ad_len);
    if (!t)
        return err_code();
    if ((uint64_t)n > GCM_MAX_BYTES)
        return err_set(COFFER_ELIMIT, "AES-256-GCM: %zu bytes exceed the per-nonce limit", n);
    /* GCM's default IV length is 12 bytes (CRYPTO_NONCE_LEN), so no IVLEN control is needed. */
    if (!EVP_EncryptInit_ex2(t->gcm, g_gcm, key, nonce, NULL) || gcm_aad(t->gcm, ad, ad_len) ||
        gcm_body(t->gcm, in, n, out) || !EVP_EncryptFinal_ex(t->gcm, out + n, &len) ||
        !EVP_CIPHER_CTX_ctrl(t->gcm, EVP_CTRL_GCM_GET_TAG, CRYPTO_TAG_LEN, out + n))
        return ossl_fail(COFFER_ENOMEM, "AES-256-GCM encryption");
    return 0;
}

int crypto_open(const uint8_t key[CRYPTO_KEY_LEN], const uint8_t nonce[CRYPTO_NONCE_LEN],
                const void *ad, size_t ad_len, const void *in, size_t n, uint8_t *out)
{
    struct crypto_tls *t = tls_get();
    uint8_t tag[CRYPTO_TAG_LEN];
    int len;
    assert(ad || !ad_len);
    if (!t)
        return err_code();
    if (n < CRYPTO_TAG_LEN)
        return err_set(COFFER_ECORRUPT,
                       "encrypted data is %zu bytes, shorter than its %d-byte tag: truncated", n,
                       CRYPTO_TAG_LEN);
    size_t body = n - CRYPTO_TAG_LEN;
    if ((uint64_t)body > GCM_MAX_BYTES)
        return err_set(COFFER_ELIMIT, "AES-256-GCM: %zu bytes exceed the per-nonce limit", body);
    /* Copy the tag first: out may be the same buffer as in. */
    memcpy(tag, (const uint8_t *)in + body, sizeof tag);
    if (!EVP_DecryptInit_ex2(t->gcm, g_gcm, key, nonce, NULL) || gcm_aad(t->gcm, ad, ad_len) ||
        gcm_body(t->gcm, in, body, out) ||
        !EVP_CIPHER_CTX_ctrl(t->gcm, EVP_CTRL_GCM_SET_TAG, CRYPTO_TAG_LEN, tag))
        return ossl_fail(COFFER_ENOMEM, "AES-256-GCM decryption");
    if (EVP_DecryptFinal_ex(t->gcm, out + body, &len) != 1) {
        OPENSSL_cleanse(out, body);
        ERR_clear_error();
        return err_set(COFFER_ECORRUPT, "AES-256-GCM authentication failed: the data was "
                                        "altered or the key is wrong");
    }
    return 0;
}

int crypto_scrypt(const char *password, size_t pw_len, const uint8_t *salt, size_t salt_len,
                  uint64_t n, uint32_t r, uint32_t p, uint8_t *out, size_t out_len)
{
    if (n < 2 || (n & (n - 1)) != 0 || r == 0 || p == 0 || out_len == 0 || out_len > KDF_OUT_MAX)
        return err_set(COFFER_EINVAL,
                       "scrypt parameters N=%llu r=%u p=%u (output %zu bytes) are invalid: N "
                       "must be a power of two >= 2, r and p >= 1, output 1..%u bytes",
                       (unsigned long long)n, r, p, out_len, KDF_OUT_MAX);
    /* r <= 2^32 and N <= 2^22 bound every product below well inside 64 bits. */
    uint64_t mem_v = 128 * (uint64_t)r * n;
    if (n > SCRYPT_N_MAX || (uint64_t)r * p > SCRYPT_RP_MAX || mem_v > SCRYPT_MEM_MAX)
        return err_set(COFFER_ELIMIT,
                       "scrypt parameters N=%llu r=%u p=%u exceed the caps (N <= 2^22, r*p <= "
                       "2^20, 128*r*N <= 4 GiB): the key slot is damaged or hostile",
                       (unsigned long long)n, r, p);
    /* OpenSSL needs 128*r*(N+2) for V plus 128*r*p for B; give exactly that. */
    uint64_t maxmem = 128 * (uint64_t)r * (n + 2) + 128 * (uint64_t)r * p;
    if (EVP_PBE_scrypt(password, pw_len, salt, salt_len, n, r, p, maxmem, out, out_len) != 1)
        return ossl_fail(COFFER_ENOMEM, "scrypt key derivation");
    return 0;
}

static void sodium_once_init(void)
{
    g_sodium_rc = sodium_init();
}

int crypto_argon2id(const char *password, size_t pw_len, const uint8_t *salt, size_t salt_len,
                    uint64_t opslimit, uint64_t memlimit, uint8_t *out, size_t out_len)
{
    pthread_once(&g_sodium_once, sodium_once_init);
    if (g_sodium_rc < 0)
        return err_set(COFFER_EIO, "libsodium failed to initialize (is /dev/urandom readable?)");
    if (opslimit > ARGON2_OPS_MAX || memlimit > ARGON2_MEM_MAX || memlimit > SIZE_MAX)
        return err_set(COFFER_ELIMIT,
                       "argon2id parameters ops=%llu mem=%llu exceed the caps (ops <= %u, mem "
                       "<= 4 GiB): the key slot is damaged or hostile",
                       (unsigned long long)opslimit, (unsigned long long)memlimit, ARGON2_OPS_MAX);
    if (opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
        memlimit < crypto_pwhash_argon2id_MEMLIMIT_MIN ||
        salt_len != crypto_pwhash_argon2id_SALTBYTES ||
        out_len < crypto_pwhash_argon2id_BYTES_MIN || out_len > KDF_OUT_MAX ||
        pw_len > crypto_pwhash_argon2id_PASSWD_MAX)
        return err_set(COFFER_EINVAL,
                       "argon2id parameters are invalid (ops=%llu >= %u, mem=%llu >= %u, salt %zu "
                       "bytes must be %u, output %zu bytes must be %u..%u)",
                       (unsigned long long)opslimit, (unsigned)crypto_pwhash_argon2id_OPSLIMIT_MIN,
                       (unsigned long long)memlimit, (unsigned)crypto_pwhash_argon2id_MEMLIMIT_MIN,
                       salt_len, (unsigned)crypto_pwhash_argon2id_SALTBYTES, out_len,
                       (unsigned)crypto_pwhash_argon2id_BYTES_MIN, KDF_OUT_MAX);
    if (crypto_pwhash(out, out_len, password, pw_len, salt, opslimit, (size_t)memlimit,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return err_set(COFFER_ENOMEM, "argon2id could not allocate %llu bytes of memory",
                       (unsigned long long)memlimit);
    return 0;
}

int crypto_b64_encode(const void *in, size_t n, char **out)
{
    if (n > B64_IN_MAX)
        return err_set(COFFER_ELIMIT, "base64: %zu bytes are too many to encode at once", n);
    size_t olen = 4 * ((n + 2) / 3);
    char *s = malloc(olen + 1);
    if (!s)
        return err_set(COFFER_ENOMEM, "out of memory encoding %zu bytes as base64", n);
    int w = EVP_EncodeBlock((unsigned char *)s, in, (int)n); /* also writes the NUL */
    assert(w >= 0 && (size_t)w == olen);
    (void)w;
    *out = s;
    return 0;
}

/* Value of a base64 digit, or -1. */
static int b64_val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

int crypto_b64_decode(const char *in, uint8_t **out, size_t *out_len)
{
    size_t len = strnlen(in, B64_IN_MAX + 1);
    if (len > B64_IN_MAX)
        return err_set(COFFER_ELIMIT, "base64 text longer than %zu characters", B64_IN_MAX);
    /* EVP_DecodeBlock skips whitespace and counts padding as data, so the strict checks are
     * ours: length a multiple of 4, only alphabet characters, at most two '=' at the end and
     * zero bits under them (one canonical text per byte string). */
    size_t pad = 0;
    if (len >= 1 && in[len - 1] == '=')
        pad++;
    if (pad == 1 && len >= 2 && in[len - 2] == '=')
        pad++;
    if (len % 4 != 0)
        return err_set(COFFER_EINVAL,
                       "base64 text of %zu characters is not a multiple of 4: "
                       "truncated or not base64",
                       len);
    for (size_t i = 0; i < len - pad; i++)
        if (b64_val((unsigned char)in[i]) < 0)
            return err_set(COFFER_EINVAL, "base64 text has an invalid character at offset %zu", i);
    if (pad > 0) {
        int last = b64_val((unsigned char)in[len - pad - 1]);
        if ((pad == 1 && (last & 0x3)) || (pad == 2 && (last & 0xf)))
            return err_set(COFFER_EINVAL, "base64 text is not canonical (non-zero pad bits)");
    }
    size_t dlen = len / 4 * 3;
    uint8_t *d = malloc(dlen + 1);
    if (!d)
        return err_set(COFFER_ENOMEM, "out of memory decoding %zu base64 characters", len);
    int r = EVP_DecodeBlock(d, (const unsigned char *)in, (int)len);
    if (r < 0 || (size_t)r != dlen) {
        free(d);
        ERR_clear_error();
        return err_set(COFFER_EINVAL, "base64 text does not decode");
    }
    *out = d;
    *out_len = dlen - pad;
    return 0;
}
