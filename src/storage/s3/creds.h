/*
 * creds.h -- where the S3 driver gets its credentials.
 *
 * Layer: storage/s3 (uses common, storage.h for options). Sources, first match wins:
 *  1. files named by -o s3.access-key-file=PATH and s3.secret-key-file=PATH (optional
 *     s3.session-token-file), e.g. a Kubernetes Secret mounted as files;
 *  2. files named by AWS_ACCESS_KEY_ID_FILE / AWS_SECRET_ACCESS_KEY_FILE
 *     (AWS_SESSION_TOKEN_FILE);
 *  3. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN);
 *  4. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials),
 *     profile from -o s3.profile, else AWS_PROFILE, else "default".
 * A file's content is trimmed of surrounding whitespace. Half a pair (a key id without a
 * secret) is an error, never silently skipped.
 * Secrets never appear in messages: errors name the variable, option or file, not the value.
 * Ownership: s3_creds_release wipes and frees what s3_creds_load filled in.
 */
#ifndef COFFER_STORAGE_S3_CREDS_H
#define COFFER_STORAGE_S3_CREDS_H

#include "storage/storage.h"

typedef struct s3_creds {
    char *access_key;
    char *secret_key;
    char *session_token; /* NULL when none */
    char source[128];    /* where they came from, for messages: "AWS_ACCESS_KEY_ID", ... */
} s3_creds_t;

/* Fill *out (written only on success). COFFER_EINVAL with a message saying which variables to
 * set when no source has credentials, or naming the file/variable that is unusable. */
int s3_creds_load(const storage_opts_t *opts, s3_creds_t *out);
void s3_creds_release(s3_creds_t *c); /* accepts NULL and a zeroed struct */

#endif
