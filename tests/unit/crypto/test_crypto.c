/*
 * test_crypto.c -- unit tests for src/crypto/crypto.c: known-answer vectors (RFC 4231 HMAC,
 * RFC 5869 HKDF, GCM spec test case 16, RFC 7914 scrypt, RFC 4648 base64), tamper detection,
 * KDF caps, and HMAC on one shared key from several threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "crypto/crypto.h"

/* Decode a hex literal of known length into a fixed buffer. */
static void unhex(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(hex), 2 * n);
    assert_int_equal(hex_decode(hex, out, n), 0);
}

static void assert_hex(const uint8_t *got, size_t n, const char *want)
{
    char *h = malloc(2 * n + 1);
    assert_non_null(h);
    hex_encode(got, n, h);
    assert_string_equal(h, want);
    free(h);
}

static const char *const KEY32_HEX =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void test_sha256(void **state)
{
    (void)state;
    uint8_t d[CRYPTO_HASH_LEN];
    crypto_sha256("abc", 3, d);
    assert_hex(d, sizeof d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* RFC 4231 test case 2. "Jefe" is 4 bytes; HMAC zero-pads short keys to the block size, so
 * "Jefe" followed by 28 zero bytes is the same key. */
static void test_hmac_rfc4231_tc2(void **state)
{
    (void)state;
    uint8_t key[CRYPTO_KEY_LEN] = {'J', 'e', 'f', 'e'};
    const char *msg = "what do ya want for nothing?";
    crypto_hmac_t *h = NULL;
    uint8_t mac[CRYPTO_HASH_LEN];
    assert_int_equal(crypto_hmac_new(key, &h), 0);
    assert_int_equal(crypto_hmac(h, msg, strlen(msg), mac), 0);
    assert_hex(mac, sizeof mac, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    crypto_hmac_free(h);
    crypto_hmac_free(NULL);
}

/* Expected values from `openssl dgst -sha256 -mac HMAC -macopt hexkey:<KEY32_HEX>`. */
static void test_hmac_key32(void **state)
{
    (void)state;
    uint8_t key[CRYPTO_KEY_LEN];
    uint8_t mac[CRYPTO_HASH_LEN];
    crypto_hmac_t *h = NULL;
    unhex(KEY32_HEX, key, sizeof key);
    assert_int_equal(crypto_hmac_new(key, &h), 0);

    const char *msg = "coffer blob id test vector: the quick brown fox";
    assert_int_equal(crypto_hmac(h, msg, strlen(msg), mac), 0);
    assert_hex(mac, sizeof mac, "d13b8454818bdcbd4685743f5894b151166d1e868dbff15fad47679d5dcb4648");

    assert_int_equal(crypto_hmac(h, "", 0, mac), 0);
    assert_hex(mac, sizeof mac, "d38b42096d80f45f826b44a9d5607de72496a415d3f4a1a8c88e3bb9da8dc1cb");

    uint8_t *big = malloc(100000);
    assert_non_null(big);
    memset(big, 'a', 100000);
    assert_int_equal(crypto_hmac(h, big, 100000, mac), 0);
    assert_hex(mac, sizeof mac, "4f224e91da59a95ebba87f33e88ea4b0c98a3feb91d6195e78e31e71c098329f");
    /* The prepared key is not consumed by use. */
    assert_int_equal(crypto_hmac(h, msg, strlen(msg), mac), 0);
    assert_hex(mac, sizeof mac, "d13b8454818bdcbd4685743f5894b151166d1e868dbff15fad47679d5dcb4648");
    free(big);
    crypto_hmac_free(h);
}

struct hmac_thread_arg {
    const crypto_hmac_t *h;
    const uint8_t *data;
    size_t n;
    uint8_t want[CRYPTO_HASH_LEN];
    int mismatches;
};

static void *hmac_thread(void *p)
{
    struct hmac_thread_arg *a = p;
    for (int i = 0; i < 500; i++) {
        uint8_t mac[CRYPTO_HASH_LEN];
        size_t n = a->n - (size_t)(i % 7) * 100;
        if (crypto_hmac(a->h, a->data, n, mac) != 0)
            a->mismatches++;
        else if (n == a->n && memcmp(mac, a->want, sizeof mac) != 0)
            a->mismatches++;
    }
    return NULL;
}

static void test_hmac_threads(void **state)
{
    (void)state;
    uint8_t key[CRYPTO_KEY_LEN];
    crypto_hmac_t *h = NULL;
    unhex(KEY32_HEX, key, sizeof key);
    assert_int_equal(crypto_hmac_new(key, &h), 0);
    uint8_t *data = malloc(100000);
    assert_non_null(data);
    memset(data, 'a', 100000);
    struct hmac_thread_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct hmac_thread_arg){.h = h, .data = data, .n = 100000};
        unhex("4f224e91da59a95ebba87f33e88ea4b0c98a3feb91d6195e78e31e71c098329f", args[i].want,
              CRYPTO_HASH_LEN);
        assert_int_equal(pthread_create(&th[i], NULL, hmac_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].mismatches, 0);
    }
    free(data);
    crypto_hmac_free(h);
}

static void test_hkdf_rfc5869(void **state)
{
    (void)state;
    uint8_t ikm[22], salt[13], info[10], okm[42];
    memset(ikm, 0x0b, sizeof ikm);
    unhex("000102030405060708090a0b0c", salt, sizeof salt);
    unhex("f0f1f2f3f4f5f6f7f8f9", info, sizeof info);
    /* Test case 1. */
    assert_int_equal(crypto_hkdf(ikm, sizeof ikm, salt, sizeof salt, info, sizeof info, okm, 42),
                     0);
    assert_hex(
        okm, 42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    /* Test case 3: no salt, no info. */
    assert_int_equal(crypto_hkdf(ikm, sizeof ikm, NULL, 0, NULL, 0, okm, 42), 0);
    assert_hex(
        okm, 42,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
    /* Output longer than 255 hash lengths is refused, and okm is untouched. */
    static uint8_t big[255 * 32 + 1];
    assert_int_equal(crypto_hkdf(ikm, sizeof ikm, NULL, 0, NULL, 0, big, sizeof big),
                     COFFER_EINVAL);
    assert_int_equal(crypto_hkdf(ikm, sizeof ikm, NULL, 0, NULL, 0, big, sizeof big - 1), 0);
}

/* The GCM specification (McGrew and Viega), test case 16: AES-256, 96-bit IV, with AAD. */
static void test_gcm_vector(void **state)
{
    (void)state;
    uint8_t key[32], iv[12], pt[60], ad[20], want[60 + 16], got[60 + 16], back[60];
    unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", key, 32);
    unhex("cafebabefacedbaddecaf888", iv, 12);
    unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
          pt, 60);
    unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", ad, 20);
    unhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
          "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
          "76fc6ece0f4e1768cddf8853bb2d551b",
          want, 76);
    assert_int_equal(crypto_seal(key, iv, ad, sizeof ad, pt, sizeof pt, got), 0);
    assert_memory_equal(got, want, sizeof want);
    assert_int_equal(crypto_open(key, iv, ad, sizeof ad, got, sizeof got, back), 0);
    assert_memory_equal(back, pt, sizeof pt);
}

static void test_gcm_tamper(void **state)
{
    (void)state;
    uint8_t key[32], nonce[12], ad[8] = "adblobid";
    enum { N = 3000 };
    uint8_t *pt = malloc(N), *ct = malloc(N + 16), *back = malloc(N);
    assert_non_null(pt);
    assert_non_null(ct);
    assert_non_null(back);
    assert_int_equal(crypto_random(key, sizeof key), 0);
    assert_int_equal(crypto_random(nonce, sizeof nonce), 0);
    assert_int_equal(crypto_random(pt, N), 0);
    assert_int_equal(crypto_seal(key, nonce, ad, sizeof ad, pt, N, ct), 0);
    assert_int_equal(crypto_open(key, nonce, ad, sizeof ad, ct, N + 16, back), 0);
    assert_memory_equal(back, pt, N);

    /* A flipped bit anywhere in ciphertext or tag fails and leaves no plaintext behind. */
    const size_t spots[] = {0, 1, N / 2, N - 1, N, N + 15};
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        ct[spots[i]] ^= 0x04;
        memset(back, 0xAA, N);
        assert_int_equal(crypto_open(key, nonce, ad, sizeof ad, ct, N + 16, back), COFFER_ECORRUPT);
        for (size_t j = 0; j < N; j++)
            assert_int_equal(back[j], 0);
        ct[spots[i]] ^= 0x04;
    }
    /* Altered associated data, missing AD, wrong nonce, wrong key. */
    ad[3] ^= 1;
    assert_int_equal(crypto_open(key, nonce, ad, sizeof ad, ct, N + 16, back), COFFER_ECORRUPT);
    ad[3] ^= 1;
    assert_int_equal(crypto_open(key, nonce, NULL, 0, ct, N + 16, back), COFFER_ECORRUPT);
    nonce[11] ^= 1;
    assert_int_equal(crypto_open(key, nonce, ad, sizeof ad, ct, N + 16, back), COFFER_ECORRUPT);
    nonce[11] ^= 1;
    key[0] ^= 1;
    assert_int_equal(crypto_open(key, nonce, ad, sizeof ad, ct, N + 16, back), COFFER_ECORRUPT);
    key[0] ^= 1;
    /* Truncation: shorter than a tag, and a dropped byte. */
    assert_int_equal(crypto_open(key, nonce, ad, sizeof ad, ct, 15, back), COFFER_ECORRUPT);
    assert_int_equal(crypto_open(key, nonce, ad, sizeof ad, ct, N + 15, back), COFFER_ECORRUPT);
    /* Still fine afterwards (the per-thread context recovers), and in place works. */
    assert_int_equal(crypto_open(key, nonce, ad, sizeof ad, ct, N + 16, ct), 0);
    assert_memory_equal(ct, pt, N);
    /* Empty plaintext: just a tag. */
    uint8_t tag[16];
    assert_int_equal(crypto_seal(key, nonce, ad, sizeof ad, "", 0, tag), 0);
    assert_int_equal(crypto_open(key, nonce, ad, sizeof ad, tag, sizeof tag, back), 0);
    free(pt);
    free(ct);
    free(back);
}

/* RFC 7914 section 12, vectors 1 and 2. */
static void test_scrypt_rfc7914(void **state)
{
    (void)state;
    uint8_t out[64];
    assert_int_equal(crypto_scrypt("", 0, (const uint8_t *)"", 0, 16, 1, 1, out, 64), 0);
    assert_hex(out, 64,
               "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
               "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906");
    assert_int_equal(crypto_scrypt("password", 8, (const uint8_t *)"NaCl", 4, 1024, 8, 16, out, 64),
                     0);
    assert_hex(out, 64,
               "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
               "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
}

static void test_scrypt_caps(void **state)
{
    (void)state;
    uint8_t out[32];
    const uint8_t salt[16] = {0};
    assert_int_equal(crypto_scrypt("pw", 2, salt, 16, 1000, 8, 1, out, 32), COFFER_EINVAL);
    assert_int_equal(crypto_scrypt("pw", 2, salt, 16, 1, 8, 1, out, 32), COFFER_EINVAL);
    assert_int_equal(crypto_scrypt("pw", 2, salt, 16, 1024, 0, 1, out, 32), COFFER_EINVAL);
    assert_int_equal(crypto_scrypt("pw", 2, salt, 16, 1024, 8, 0, out, 32), COFFER_EINVAL);
    assert_int_equal(crypto_scrypt("pw", 2, salt, 16, 1024, 8, 1, out, 0), COFFER_EINVAL);
    assert_int_equal(crypto_scrypt("pw", 2, salt, 16, UINT64_C(1) << 23, 1, 1, out, 32),
                     COFFER_ELIMIT);
    assert_int_equal(crypto_scrypt("pw", 2, salt, 16, UINT64_C(1) << 63, 1, 1, out, 32),
                     COFFER_ELIMIT);
    assert_int_equal(crypto_scrypt("pw", 2, salt, 16, 1024, 1u << 10, (1u << 10) + 1, out, 32),
                     COFFER_ELIMIT);
    /* Within N and r*p caps but 128*r*N = 2^49 bytes: refused before any allocation. */
    assert_int_equal(crypto_scrypt("pw", 2, salt, 16, UINT64_C(1) << 22, 1u << 20, 1, out, 32),
                     COFFER_ELIMIT);
    assert_non_null(strstr(err_msg(), "scrypt"));
}

static void test_argon2id(void **state)
{
    (void)state;
    uint8_t a[32], b[32], c[32];
    const uint8_t salt[16] = "coffer-salt-0001";
    const uint64_t mem = 8u << 20;
    assert_int_equal(crypto_argon2id("secret", 6, salt, 16, 2, mem, a, 32), 0);
    assert_int_equal(crypto_argon2id("secret", 6, salt, 16, 2, mem, b, 32), 0);
    assert_memory_equal(a, b, 32);
    assert_int_equal(crypto_argon2id("secreT", 6, salt, 16, 2, mem, c, 32), 0);
    assert_memory_not_equal(a, c, 32);
    assert_int_equal(crypto_argon2id("secret", 6, salt, 16, 1, mem, c, 32), 0);
    assert_memory_not_equal(a, c, 32);

    assert_int_equal(crypto_argon2id("secret", 6, salt, 16, 65, mem, c, 32), COFFER_ELIMIT);
    assert_int_equal(crypto_argon2id("secret", 6, salt, 16, 2, (UINT64_C(4) << 30) + 1024, c, 32),
                     COFFER_ELIMIT);
    assert_int_equal(crypto_argon2id("secret", 6, salt, 16, UINT64_MAX, UINT64_MAX, c, 32),
                     COFFER_ELIMIT);
    assert_int_equal(crypto_argon2id("secret", 6, salt, 16, 0, mem, c, 32), COFFER_EINVAL);
    assert_int_equal(crypto_argon2id("secret", 6, salt, 16, 2, 1024, c, 32), COFFER_EINVAL);
    assert_int_equal(crypto_argon2id("secret", 6, salt, 8, 2, mem, c, 32), COFFER_EINVAL);
    assert_int_equal(crypto_argon2id("secret", 6, salt, 16, 2, mem, c, 8), COFFER_EINVAL);
}

static void test_b64(void **state)
{
    (void)state;
    /* RFC 4648 section 10. */
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        char *s = NULL;
        uint8_t *d = NULL;
        size_t n = 99;
        assert_int_equal(crypto_b64_encode(plain[i], strlen(plain[i]), &s), 0);
        assert_string_equal(s, enc[i]);
        assert_int_equal(crypto_b64_decode(s, &d, &n), 0);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(d, plain[i], n);
        free(s);
        free(d);
    }
    /* Random binary round trip, every length mod 3. */
    for (size_t len = 0; len < 100; len++) {
        uint8_t in[100];
        char *s = NULL;
        uint8_t *d = NULL;
        size_t n = 0;
        assert_int_equal(crypto_random(in, sizeof in), 0);
        assert_int_equal(crypto_b64_encode(in, len, &s), 0);
        assert_int_equal(crypto_b64_decode(s, &d, &n), 0);
        assert_int_equal(n, len);
        if (len)
            assert_memory_equal(d, in, len);
        free(s);
        free(d);
    }
    const char *bad[] = {"Zg=",      "Zg",       "Z===",     "====", "Zm9v!A==", "Zm=v",
                         "Zg==Zg==", " Zm9v",    "Zm9v\n",   "Zh==", "Zm9=",     "Zm-v",
                         "Zm9vYg=a", "Zm9vY===", "Zm9vYmF_", "=Zm9v"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *d = (uint8_t *)0x1;
        size_t n = 77;
        assert_int_equal(crypto_b64_decode(bad[i], &d, &n), COFFER_EINVAL);
        assert_ptr_equal(d, (uint8_t *)0x1); /* outputs untouched on failure */
        assert_int_equal(n, 77);
    }
}

static void test_random_wipe(void **state)
{
    (void)state;
    uint8_t a[64] = {0}, b[64] = {0}, z[64] = {0};
    assert_int_equal(crypto_random(a, sizeof a), 0);
    assert_int_equal(crypto_random(b, sizeof b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    crypto_wipe(a, sizeof a);
    assert_memory_equal(a, z, sizeof a);
    crypto_wipe(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),       cmocka_unit_test(test_hmac_rfc4231_tc2),
        cmocka_unit_test(test_hmac_key32),   cmocka_unit_test(test_hmac_threads),
        cmocka_unit_test(test_hkdf_rfc5869), cmocka_unit_test(test_gcm_vector),
        cmocka_unit_test(test_gcm_tamper),   cmocka_unit_test(test_scrypt_rfc7914),
        cmocka_unit_test(test_scrypt_caps),  cmocka_unit_test(test_argon2id),
        cmocka_unit_test(test_b64),          cmocka_unit_test(test_random_wipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
