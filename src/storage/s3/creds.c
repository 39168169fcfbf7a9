/*
 * creds.c -- S3 credential sources (see creds.h for the order).
 *
 * Layer: storage/s3. The INI reader understands what the AWS CLI writes: [profile] sections,
 * "key = value" lines, '#' and ';' comments; unknown keys are ignored. Files are capped at
 * CRED_FILE_MAX bytes. Every buffer that held a secret is wiped before it is freed.
 */
#include "storage/s3/creds.h"

#include "common/buf.h"
#include "common/error.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRED_FILE_MAX (1u << 20)
#define CRED_VALUE_MAX 4096

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void s3_creds_release(s3_creds_t *c)
{
    if (!c)
        return;
    wipe_free(c->access_key);
    wipe_free(c->secret_key);
    wipe_free(c->session_token);
    c->access_key = c->secret_key = c->session_token = NULL;
}

/* Whole file into b (wiped by the caller); `what` names it in messages. */
static int read_file(const char *path, const char *what, buf_t *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(errno == ENOENT ? COFFER_EINVAL : COFFER_EIO, "cannot read %s '%s': %s",
                       what, path, strerror(errno));
    char chunk[4096];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b->len + n > CRED_FILE_MAX) {
            rc = err_set(COFFER_ELIMIT, "%s '%s' is larger than %u bytes", what, path,
                         CRED_FILE_MAX);
            break;
        }
        if ((rc = buf_append(b, chunk, n)))
            break;
    }
    if (rc == 0 && ferror(f))
        rc = err_set(COFFER_EIO, "cannot read %s '%s'", what, path);
    OPENSSL_cleanse(chunk, sizeof chunk);
    fclose(f);
    return rc;
}

static char *trimmed_dup(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    return strndup(s, n);
}

/* A secret from a file: trimmed, non-empty, one line, at most CRED_VALUE_MAX bytes. */
static int value_from_file(const char *path, const char *what, char **out)
{
    buf_t b;
    buf_init(&b);
    int rc = read_file(path, what, &b);
    char *v = NULL;
    if (rc == 0) {
        v = trimmed_dup(b.data ? (const char *)b.data : "", b.len);
        if (!v)
            rc = err_set(COFFER_ENOMEM, "out of memory");
        else if (!v[0] || strlen(v) > CRED_VALUE_MAX || strpbrk(v, "\r\n"))
            rc = err_set(COFFER_EINVAL, "%s '%s' must hold one non-empty line", what, path);
    }
    if (b.data)
        OPENSSL_cleanse(b.data, b.cap);
    buf_release(&b);
    if (rc) {
        wipe_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

/* A pair of files (and an optional token file): both or neither. */
static int from_files(const char *ak_path, const char *sk_path, const char *tok_path,
                      const char *ak_name, const char *sk_name, s3_creds_t *c)
{
    if (!ak_path && !sk_path)
        return 1; /* not this source */
    if (!ak_path || !sk_path)
        return err_set(COFFER_EINVAL, "%s is set but %s is not: give both files",
                       ak_path ? ak_name : sk_name, ak_path ? sk_name : ak_name);
    int rc;
    if ((rc = value_from_file(ak_path, ak_name, &c->access_key)) ||
        (rc = value_from_file(sk_path, sk_name, &c->secret_key)))
        return rc;
    if (tok_path && (rc = value_from_file(tok_path, "session token file", &c->session_token)))
        return rc;
    snprintf(c->source, sizeof c->source, "%s/%s", ak_name, sk_name);
    return 0;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

static int dup_checked(const char *v, const char *what, char **out)
{
    if (strlen(v) > CRED_VALUE_MAX || strpbrk(v, "\r\n"))
        return err_set(COFFER_EINVAL, "%s must be one line of at most %d bytes", what,
                       CRED_VALUE_MAX);
    *out = strdup(v);
    return *out ? 0 : err_set(COFFER_ENOMEM, "out of memory");
}

static int from_env(s3_creds_t *c)
{
    const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");
    if (!ak && !sk)
        return 1;
    if (!ak || !sk)
        return err_set(COFFER_EINVAL, "%s is set but %s is not: set both",
                       ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                       ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
    int rc;
    if ((rc = dup_checked(ak, "AWS_ACCESS_KEY_ID", &c->access_key)) ||
        (rc = dup_checked(sk, "AWS_SECRET_ACCESS_KEY", &c->secret_key)))
        return rc;
    const char *tok = env("AWS_SESSION_TOKEN");
    if (tok && (rc = dup_checked(tok, "AWS_SESSION_TOKEN", &c->session_token)))
        return rc;
    snprintf(c->source, sizeof c->source, "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY");
    return 0;
}

/* Look up keys of [profile] in an AWS shared credentials file held in text. */
static int ini_profile(char *text, const char *profile, bool explicit_profile, const char *path,
                       s3_creds_t *c)
{
    bool in = false, found = false;
    int rc = 0;
    for (char *line = text, *nl; line && rc == 0; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = 0;
        while (*line == ' ' || *line == '\t')
            line++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = 0;
        if (!n || line[0] == '#' || line[0] == ';')
            continue;
        if (line[0] == '[') {
            char *end = strchr(line, ']');
            if (!end)
                continue;
            *end = 0;
            char *name = line + 1;
            while (*name == ' ')
                name++;
            size_t namelen = strlen(name);
            while (namelen && name[namelen - 1] == ' ')
                name[--namelen] = 0;
            in = strcmp(name, profile) == 0;
            found |= in;
            continue;
        }
        if (!in)
            continue;
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        char *key = trimmed_dup(line, strlen(line));
        char *val = trimmed_dup(eq + 1, strlen(eq + 1));
        if (!key || !val) {
            rc = err_set(COFFER_ENOMEM, "out of memory");
        } else {
            char **slot = NULL;
            if (strcmp(key, "aws_access_key_id") == 0)
                slot = &c->access_key;
            else if (strcmp(key, "aws_secret_access_key") == 0)
                slot = &c->secret_key;
            else if (strcmp(key, "aws_session_token") == 0)
                slot = &c->session_token;
            if (slot && val[0]) {
                wipe_free(*slot);
                *slot = val;
                val = NULL;
            }
        }
        free(key);
        wipe_free(val);
    }
    if (rc)
        return rc;
    if (!found && !explicit_profile)
        return 1; /* no [default]: not this source */
    if (!found)
        return err_set(COFFER_EINVAL,
                       "profile '%s' is not in the credentials file '%s': add it or choose "
                       "another with AWS_PROFILE or -o s3.profile=NAME",
                       profile, path);
    if (!c->access_key || !c->secret_key)
        return err_set(COFFER_EINVAL,
                       "profile '%s' in '%s' lacks aws_access_key_id or aws_secret_access_key",
                       profile, path);
    snprintf(c->source, sizeof c->source, "profile %.64s", profile);
    return 0;
}

static int from_shared_file(const storage_opts_t *opts, s3_creds_t *c)
{
    const char *profile = storage_opt(opts, "s3.profile");
    bool explicit_profile = profile || env("AWS_PROFILE");
    if (!profile)
        profile = env("AWS_PROFILE");
    if (!profile)
        profile = "default";
    const char *path = env("AWS_SHARED_CREDENTIALS_FILE");
    buf_t p, text;
    int rc;
    buf_init(&p);
    buf_init(&text);
    if (!path) {
        const char *home = env("HOME");
        if (!home) {
            rc = 1;
            goto out;
        }
        if ((rc = buf_printf(&p, "%s/.aws/credentials", home)))
            goto out;
        path = (const char *)p.data;
        FILE *f = fopen(path, "rb");
        if (!f) {
            rc = explicit_profile ? err_set(COFFER_EINVAL,
                                            "AWS profile '%s' was asked for but '%s' cannot "
                                            "be read: %s",
                                            profile, path, strerror(errno))
                                  : 1;
            goto out;
        }
        fclose(f);
    }
    if ((rc = read_file(path, "the AWS credentials file", &text)))
        goto out;
    rc =
        ini_profile(text.data ? (char *)text.data : (char *)"", profile, explicit_profile, path, c);
out:
    if (text.data)
        OPENSSL_cleanse(text.data, text.cap);
    buf_release(&text);
    buf_release(&p);
    return rc;
}

int s3_creds_load(const storage_opts_t *opts, s3_creds_t *out)
{
    s3_creds_t c = {0};
    int rc = from_files(
        storage_opt(opts, "s3.access-key-file"), storage_opt(opts, "s3.secret-key-file"),
        storage_opt(opts, "s3.session-token-file"), "s3.access-key-file", "s3.secret-key-file", &c);
    if (rc == 1)
        rc = from_files(env("AWS_ACCESS_KEY_ID_FILE"), env("AWS_SECRET_ACCESS_KEY_FILE"),
                        env("AWS_SESSION_TOKEN_FILE"), "AWS_ACCESS_KEY_ID_FILE",
                        "AWS_SECRET_ACCESS_KEY_FILE", &c);
    if (rc == 1)
        rc = from_env(&c);
    if (rc == 1)
        rc = from_shared_file(opts, &c);
    if (rc == 1)
        rc = err_set(COFFER_EINVAL,
                     "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
                     "AWS_ACCESS_KEY_ID_FILE and AWS_SECRET_ACCESS_KEY_FILE naming files that "
                     "hold them), or add a profile to ~/.aws/credentials");
    if (rc) {
        s3_creds_release(&c);
        return rc;
    }
    *out = c;
    return 0;
}
