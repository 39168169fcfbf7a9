/*
 * keyslot.c -- create and open key slots (see keyslot.h, doc/format.md §3).
 *
 * Layer: repo. The KEK derived from the password never leaves this file and is wiped after use.
 */
#include "repo/keyslot.h"
#include "common/error.h"
#include "common/timefmt.h"
#include "crypto/crypto.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define SLOT_MAX_BYTES 65536
static const char key_ad_label[] = "coffer/v1/key";

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end)
        return COFFER_EINVAL;
    *out = v;
    return 0;
}

int keyslot_kdf_from_env(keyslot_kdf_t *out)
{
    keyslot_kdf_t k = {
        .name = "argon2id", .ops = 3, .mem = 19u << 20, .n = 1u << 15, .r = 8, .p = 1};
    const char *e = getenv("COFFER_KDF");
    if (e && *e) {
        char tmp[256];
        size_t l = strlen(e);
        if (l >= sizeof tmp)
            return err_set(COFFER_EINVAL, "COFFER_KDF is too long");
        memcpy(tmp, e, l + 1);
        char *colon = strchr(tmp, ':');
        if (colon)
            *colon = 0;
        if (strcmp(tmp, "argon2id") == 0)
            k.name = "argon2id";
        else if (strcmp(tmp, "scrypt") == 0)
            k.name = "scrypt";
        else
            return err_set(COFFER_EINVAL,
                           "COFFER_KDF names unknown KDF \"%s\": use argon2id or scrypt", tmp);
        char *p = colon ? colon + 1 : NULL;
        while (p && *p) {
            char *comma = strchr(p, ',');
            if (comma)
                *comma = 0;
            char *eq = strchr(p, '=');
            uint64_t v;
            if (!eq || parse_u64(eq + 1, &v))
                return err_set(COFFER_EINVAL, "COFFER_KDF: bad parameter \"%s\"", p);
            *eq = 0;
            if (strcmp(p, "ops") == 0)
                k.ops = v;
            else if (strcmp(p, "mem") == 0)
                k.mem = v;
            else if (strcmp(p, "n") == 0)
                k.n = v;
            else if (strcmp(p, "r") == 0 && v <= UINT32_MAX)
                k.r = (uint32_t)v;
            else if (strcmp(p, "p") == 0 && v <= UINT32_MAX)
                k.p = (uint32_t)v;
            else
                return err_set(COFFER_EINVAL, "COFFER_KDF: unknown parameter \"%s\"", p);
            p = comma ? comma + 1 : NULL;
        }
    }
    *out = k;
    return 0;
}

static int derive_kek(const keyslot_kdf_t *kdf, const char *password, const uint8_t *salt,
                      size_t salt_len, uint8_t kek[32])
{
    size_t pl = strlen(password);
    if (strcmp(kdf->name, "argon2id") == 0)
        return crypto_argon2id(password, pl, salt, salt_len, kdf->ops, kdf->mem, kek, 32);
    return crypto_scrypt(password, pl, salt, salt_len, kdf->n, kdf->r, kdf->p, kek, 32);
}

static void make_ad(uint8_t ad[sizeof key_ad_label - 1 + 32], const uint8_t repo_id[32])
{
    memcpy(ad, key_ad_label, sizeof key_ad_label - 1);
    memcpy(ad + sizeof key_ad_label - 1, repo_id, 32);
}

static int set_b64(json_t *o, const char *key, const void *p, size_t n)
{
    char *s = NULL;
    int rc = crypto_b64_encode(p, n, &s);
    if (rc)
        return rc;
    rc = json_object_set_new(o, key, json_string(s)) ? COFFER_ENOMEM : 0;
    free(s);
    return rc;
}

int keyslot_create(const keyslot_kdf_t *kdf, const char *password, const uint8_t repo_id[32],
                   const uint8_t master[32], const char *host, const char *user, buf_t *out)
{
    uint8_t salt[16], nonce[12], kek[32], wrapped[48];
    uint8_t ad[sizeof key_ad_label - 1 + 32];
    char hex[65], ts[64];
    json_t *o = json_object();
    char *text = NULL;
    int rc;
    if (!o)
        return err_set(COFFER_ENOMEM, "out of memory");
    if ((rc = crypto_random(salt, sizeof salt)) || (rc = crypto_random(nonce, sizeof nonce)))
        goto out;
    if ((rc = derive_kek(kdf, password, salt, sizeof salt, kek)))
        goto out;
    make_ad(ad, repo_id);
    if ((rc = crypto_seal(kek, nonce, ad, sizeof ad, master, 32, wrapped)))
        goto out;
    hex_encode(repo_id, 32, hex);
    time_format_rfc3339(time_now_ns(), false, ts, sizeof ts);
    json_object_set_new(o, "version", json_integer(1));
    json_object_set_new(o, "kdf", json_string(kdf->name));
    if (strcmp(kdf->name, "argon2id") == 0) {
        json_object_set_new(o, "ops", json_integer((json_int_t)kdf->ops));
        json_object_set_new(o, "mem", json_integer((json_int_t)kdf->mem));
    } else {
        json_object_set_new(o, "n", json_integer((json_int_t)kdf->n));
        json_object_set_new(o, "r", json_integer(kdf->r));
        json_object_set_new(o, "p", json_integer(kdf->p));
    }
    if ((rc = set_b64(o, "salt", salt, sizeof salt)) ||
        (rc = set_b64(o, "nonce", nonce, sizeof nonce)) ||
        (rc = set_b64(o, "wrapped", wrapped, sizeof wrapped)))
        goto out;
    json_object_set_new(o, "repo", json_string(hex));
    json_object_set_new(o, "created", json_string(ts));
    if (host)
        json_object_set_new(o, "host", json_string(host));
    if (user)
        json_object_set_new(o, "user", json_string(user));
    text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text) {
        rc = err_set(COFFER_ENOMEM, "out of memory encoding a key slot");
        goto out;
    }
    buf_reset(out);
    if ((rc = buf_append_str(out, text)) || (rc = buf_append_str(out, "\n")))
        goto out;
out:
    crypto_wipe(kek, sizeof kek);
    free(text);
    json_decref(o);
    return rc;
}

static int get_b64(json_t *o, const char *key, size_t want, uint8_t *dst, const char *what)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return err_set(COFFER_ECORRUPT, "%s: field \"%s\" is missing", what, key);
    uint8_t *d = NULL;
    size_t n = 0;
    if (crypto_b64_decode(json_string_value(v), &d, &n) || n != want) {
        free(d);
        return err_set(COFFER_ECORRUPT, "%s: field \"%s\" is malformed", what, key);
    }
    memcpy(dst, d, want);
    free(d);
    return 0;
}

static int get_uint(json_t *o, const char *key, uint64_t max, uint64_t *out, const char *what)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 1 || (uint64_t)json_integer_value(v) > max)
        return err_set(COFFER_ECORRUPT, "%s: KDF parameter \"%s\" is missing or out of range", what,
                       key);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int parse_slot(const void *data, size_t n, const char *what, json_t **out)
{
    if (n > SLOT_MAX_BYTES)
        return err_set(COFFER_ECORRUPT, "%s is too large (%zu bytes)", what, n);
    json_error_t je;
    json_t *o = json_loadb(data, n, JSON_REJECT_DUPLICATES, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return err_set(COFFER_ECORRUPT, "%s is not a valid key slot: %s", what, je.text);
    }
    *out = o;
    return 0;
}

int keyslot_open(const void *data, size_t n, const char *password, const uint8_t repo_id[32],
                 const char *what, uint8_t out_master[32])
{
    json_t *o = NULL;
    uint8_t salt[16], nonce[12], wrapped[48], kek[32], master[32];
    uint8_t ad[sizeof key_ad_label - 1 + 32];
    int rc = parse_slot(data, n, what, &o);
    if (rc)
        return rc;
    keyslot_kdf_t kdf = {0};
    json_t *ver = json_object_get(o, "version");
    const char *name = json_string_value(json_object_get(o, "kdf"));
    if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
        rc = err_set(COFFER_ECORRUPT, "%s has an unsupported version", what);
        goto out;
    }
    if (name && strcmp(name, "argon2id") == 0) {
        kdf.name = "argon2id";
        if ((rc = get_uint(o, "ops", 64, &kdf.ops, what)) ||
            (rc = get_uint(o, "mem", 4ull << 30, &kdf.mem, what)))
            goto out;
    } else if (name && strcmp(name, "scrypt") == 0) {
        uint64_t r = 0, p = 0;
        kdf.name = "scrypt";
        if ((rc = get_uint(o, "n", 1u << 22, &kdf.n, what)) ||
            (rc = get_uint(o, "r", 1u << 20, &r, what)) ||
            (rc = get_uint(o, "p", 1u << 20, &p, what)))
            goto out;
        if (r * p > (1u << 20)) {
            rc = err_set(COFFER_ECORRUPT, "%s: scrypt r*p is out of range", what);
            goto out;
        }
        kdf.r = (uint32_t)r;
        kdf.p = (uint32_t)p;
    } else {
        rc = err_set(COFFER_ECORRUPT, "%s names an unknown KDF", what);
        goto out;
    }
    if ((rc = get_b64(o, "salt", sizeof salt, salt, what)) ||
        (rc = get_b64(o, "nonce", sizeof nonce, nonce, what)) ||
        (rc = get_b64(o, "wrapped", sizeof wrapped, wrapped, what)))
        goto out;
    if ((rc = derive_kek(&kdf, password, salt, sizeof salt, kek))) {
        rc = err_ctx(COFFER_ECORRUPT, "%s: KDF failed", what);
        goto out;
    }
    make_ad(ad, repo_id);
    if (crypto_open(kek, nonce, ad, sizeof ad, wrapped, sizeof wrapped, master)) {
        rc = err_set(COFFER_EPASSWORD, "%s does not open with this password", what);
        goto out;
    }
    memcpy(out_master, master, 32);
out:
    crypto_wipe(kek, sizeof kek);
    crypto_wipe(master, sizeof master);
    json_decref(o);
    return rc;
}

static char *dup_field(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? strdup(s) : NULL;
}

int keyslot_info(const void *data, size_t n, char **out_kdf, char **out_created, char **out_host,
                 char **out_user)
{
    json_t *o = NULL;
    int rc = parse_slot(data, n, "key slot", &o);
    if (rc)
        return rc;
    *out_kdf = dup_field(o, "kdf");
    *out_created = dup_field(o, "created");
    *out_host = dup_field(o, "host");
    *out_user = dup_field(o, "user");
    json_decref(o);
    return 0;
}
