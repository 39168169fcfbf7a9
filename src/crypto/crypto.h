/*
 * crypto.h -- the primitives coffer's repository format is built on (OpenSSL 3, libsodium).
 *
 * Layer: crypto (uses common only).
 *  - random bytes (OpenSSL RAND_bytes)
 *  - SHA-256, HMAC-SHA-256 (blob ids), HKDF-SHA-256 (key derivation)
 *  - AES-256-GCM seal/open with 12-byte nonce, 16-byte tag, associated data
 *  - password KDFs: scrypt (OpenSSL EVP_PBE_scrypt) and Argon2id (libsodium crypto_pwhash)
 *  - crypto_wipe: clear secrets (OPENSSL_cleanse)
 *
 * All functions are thread-safe. HMAC contexts are per-call or per-thread; a crypto_hmac_t
 * holds a prepared key so hashing many blobs does not re-derive pads.
 */
#ifndef COFFER_CRYPTO_CRYPTO_H
#define COFFER_CRYPTO_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CRYPTO_KEY_LEN 32
#define CRYPTO_HASH_LEN 32
#define CRYPTO_NONCE_LEN 12
#define CRYPTO_TAG_LEN 16

int crypto_random(void *out, size_t n);
void crypto_wipe(void *p, size_t n);

void crypto_sha256(const void *data, size_t n, uint8_t out[CRYPTO_HASH_LEN]);

/* Incremental SHA-256 (for objects written as a stream). begin: caller ends with
 * crypto_sha256_end (writes the digest and frees) or crypto_sha256_abort. */
typedef struct crypto_sha256_ctx crypto_sha256_ctx_t;
int crypto_sha256_begin(crypto_sha256_ctx_t **out);
int crypto_sha256_update(crypto_sha256_ctx_t *c, const void *data, size_t n);
int crypto_sha256_end(crypto_sha256_ctx_t *c, uint8_t out[CRYPTO_HASH_LEN]);
void crypto_sha256_abort(crypto_sha256_ctx_t *c); /* accepts NULL */

/* A prepared HMAC-SHA-256 key. crypto_hmac_new: caller frees with crypto_hmac_free.
 * crypto_hmac may be called from many threads on one crypto_hmac_t at once. */
typedef struct crypto_hmac crypto_hmac_t;
int crypto_hmac_new(const uint8_t key[CRYPTO_KEY_LEN], crypto_hmac_t **out);
void crypto_hmac_free(crypto_hmac_t *h);
int crypto_hmac(const crypto_hmac_t *h, const void *data, size_t n, uint8_t out[CRYPTO_HASH_LEN]);

/* HKDF-SHA-256 (RFC 5869): extract with salt (may be NULL/0), expand with info to out_len.
 * ikm must be non-empty and out_len 1..8160 (255 hashes), else COFFER_EINVAL. */
int crypto_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                const void *info, size_t info_len, uint8_t *out, size_t out_len);

/* AES-256-GCM. seal: out must hold n + CRYPTO_TAG_LEN bytes (ciphertext then tag).
 * open: in holds n bytes (ciphertext then tag, n >= CRYPTO_TAG_LEN); out holds n - TAG bytes.
 * open returns COFFER_ECORRUPT when the tag does not verify (wrong key or altered data) and then
 * zeroes out, so unauthenticated plaintext is never left behind. in and out may be the same
 * buffer (exactly, not partly overlapping). ad may be NULL when ad_len is 0. */
int crypto_seal(const uint8_t key[CRYPTO_KEY_LEN], const uint8_t nonce[CRYPTO_NONCE_LEN],
                const void *ad, size_t ad_len, const void *in, size_t n, uint8_t *out);
int crypto_open(const uint8_t key[CRYPTO_KEY_LEN], const uint8_t nonce[CRYPTO_NONCE_LEN],
                const void *ad, size_t ad_len, const void *in, size_t n, uint8_t *out);

/* Password KDFs. Parameters are validated against caps (scrypt N <= 2^22, r*p <= 2^20;
 * argon2id opslimit <= 64, memlimit <= 4 GiB) so a hostile key slot cannot exhaust memory.
 * scrypt also requires 128 * r * N <= 4 GiB (its memory use); argon2id needs a 16-byte salt.
 * Exceeding a cap is COFFER_ELIMIT; malformed parameters (N not a power of two, r or p zero,
 * out_len outside 1..1024, or 16..1024 for argon2id) are COFFER_EINVAL. */
int crypto_scrypt(const char *password, size_t pw_len, const uint8_t *salt, size_t salt_len,
                  uint64_t n, uint32_t r, uint32_t p, uint8_t *out, size_t out_len);
int crypto_argon2id(const char *password, size_t pw_len, const uint8_t *salt, size_t salt_len,
                    uint64_t opslimit, uint64_t memlimit, uint8_t *out, size_t out_len);

/* Base64 (standard alphabet, padded). encode: caller frees *out. decode: caller frees *out.
 * decode is strict: no whitespace, length a multiple of 4, canonical padding; anything else is
 * COFFER_EINVAL and leaves *out and *out_len untouched. */
int crypto_b64_encode(const void *in, size_t n, char **out);
int crypto_b64_decode(const char *in, uint8_t **out, size_t *out_len);

#endif
