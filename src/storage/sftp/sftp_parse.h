/*
 * sftp_parse.h -- the SFTP driver's parsers of untrusted input: the location a user gives and
 * the extension list of a server's SSH_FXP_VERSION reply. Pure functions (no I/O), so they can
 * be unit-tested and fuzzed (tests/fuzz/fuzz_sftp_parse.c).
 *
 * Layer: storage driver (sftp.c only).
 */
#ifndef COFFER_STORAGE_SFTP_PARSE_H
#define COFFER_STORAGE_SFTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sftp_location {
    char *user;
    char *host;  /* without the brackets of an IPv6 literal */
    int port;    /* 22 unless given */
    char *root;  /* "/abs/path", "rel/path" (from /~/rel) or "." (from /~); no trailing '/' */
    char *shown; /* "sftp://user@host:port/path" for messages (holds no secret) */
} sftp_location_t;

/* Parse "//USER@HOST[:PORT]/PATH" (a location after "sftp:"). On success *out owns its strings
 * (sftp_location_release frees them); on failure *out is untouched and the error (EINVAL with
 * the accepted forms, ENOMEM) is set. A password in the URL is refused and never quoted. */
int sftp_location_parse(const char *path, sftp_location_t *out);
void sftp_location_release(sftp_location_t *loc); /* accepts NULL and a zeroed struct */

/* Whether the extension pairs of an SSH_FXP_VERSION body (after the type byte and the version
 * number: string name, string data, ...) name `ext`. Stops at the first malformed pair. */
bool sftp_version_has(const uint8_t *pairs, size_t len, const char *ext);

#endif
