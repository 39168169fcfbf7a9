/*
 * sftp_parse.c -- parsers of the SFTP driver (see sftp_parse.h).
 *
 * Layer: storage driver. Invariants: every length read from a server reply is checked against
 * the bytes that remain; a location is bounded by the generic layer (LOCATION_MAX_LEN) and
 * only copied, never interpreted (no %-decoding).
 */
#include "storage/sftp/sftp_parse.h"

#include "common/buf.h"
#include "common/error.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE "use sftp://USER@HOST[:PORT]/ABSOLUTE/PATH or sftp://USER@HOST/~/PATH"

void sftp_location_release(sftp_location_t *loc)
{
    if (!loc)
        return;
    free(loc->user);
    free(loc->host);
    free(loc->root);
    free(loc->shown);
    memset(loc, 0, sizeof *loc);
}

int sftp_location_parse(const char *path, sftp_location_t *out)
{
    sftp_location_t l = {.port = 22};
    int rc = 0;
    if (strncmp(path, "//", 2) != 0)
        return err_set(COFFER_EINVAL, "sftp location is not a URL: " USAGE);
    const char *p = path + 2;
    const char *slash = strchr(p, '/');
    if (!slash || !slash[1])
        return err_set(COFFER_EINVAL, "sftp location has no path after the host: " USAGE);
    const char *at = memchr(p, '@', (size_t)(slash - p));
    if (!at || at == p)
        return err_set(COFFER_EINVAL, "sftp location names no user: " USAGE);
    if (memchr(p, ':', (size_t)(at - p)))
        return err_set(COFFER_EINVAL,
                       "sftp location must not hold a password: give it in COFFER_SFTP_PASSWORD "
                       "or COFFER_SFTP_PASSWORD_FILE, or use a key file");
    const char *h = at + 1, *hend, *port = NULL;
    if (*h == '[') {
        hend = memchr(h, ']', (size_t)(slash - h));
        if (!hend)
            return err_set(COFFER_EINVAL, "sftp location has an unclosed '[': " USAGE);
        if (hend + 1 < slash) {
            if (hend[1] != ':')
                return err_set(COFFER_EINVAL, "sftp location has junk after ']': " USAGE);
            port = hend + 2;
        }
        h++;
    } else {
        const char *colon = memchr(h, ':', (size_t)(slash - h));
        hend = colon ? colon : slash;
        if (colon)
            port = colon + 1;
    }
    if (hend == h)
        return err_set(COFFER_EINVAL, "sftp location names no host: " USAGE);
    if (port) {
        long v = 0;
        const char *q = port;
        for (; q < slash && isdigit((unsigned char)*q) && v <= 65535; q++)
            v = v * 10 + (*q - '0');
        if (q != slash || q == port || v < 1 || v > 65535)
            return err_set(COFFER_EINVAL, "sftp location has a bad port (1-65535): " USAGE);
        l.port = (int)v;
    }
    for (const char *q = p; q < hend; q++) {
        if (q == at || (h > at + 1 && q == at + 1))
            continue; /* the '@' and an IPv6 literal's '[' */
        if ((unsigned char)*q <= ' ' || *q == '@' || *q == '[' || *q == ']')
            return err_set(COFFER_EINVAL, "sftp location has a space, control character, "
                                          "bracket or second '@' in the user or host");
    }
    for (const char *q = slash; *q; q++)
        if ((unsigned char)*q < ' ')
            return err_set(COFFER_EINVAL, "sftp location path has a control character");
    l.user = strndup(p, (size_t)(at - p));
    l.host = strndup(h, (size_t)(hend - h));
    /* Path: "/~" or "/~/rel" is relative to the login directory, else absolute. */
    if (!strcmp(slash, "/~") || !strcmp(slash, "/~/"))
        l.root = strdup(".");
    else if (!strncmp(slash, "/~/", 3))
        l.root = strdup(slash + 3);
    else
        l.root = strdup(slash);
    if (!l.user || !l.host || !l.root) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    size_t n = strlen(l.root);
    while (n > 1 && l.root[n - 1] == '/')
        l.root[--n] = 0;
    bool v6 = strchr(l.host, ':') != NULL;
    buf_t shown;
    buf_init(&shown);
    rc = buf_printf(&shown, "sftp://%s@%s%s%s:%d%s%s", l.user, v6 ? "[" : "", l.host, v6 ? "]" : "",
                    l.port, l.root[0] == '/' ? "" : "/~/", l.root);
    if (!rc)
        l.shown = (char *)buf_steal(&shown, NULL);
    buf_release(&shown);
out:
    if (rc) {
        sftp_location_release(&l);
        return rc;
    }
    *out = l;
    return 0;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

bool sftp_version_has(const uint8_t *pairs, size_t len, const char *ext)
{
    size_t elen = strlen(ext), i = 0;
    while (len - i >= 4) {
        uint32_t nl = rd32(pairs + i);
        if (nl > len - i - 4)
            return false;
        const uint8_t *nm = pairs + i + 4;
        i += 4 + (size_t)nl;
        if (len - i < 4)
            return false;
        uint32_t dl = rd32(pairs + i);
        if (dl > len - i - 4)
            return false;
        i += 4 + (size_t)dl;
        if (nl == elen && memcmp(nm, ext, elen) == 0)
            return true;
    }
    return false;
}
