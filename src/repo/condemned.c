/*
 * condemned.c -- condemned list codec (see condemned.h).
 *
 * Layer: repo. JSON with hex ids: {"packs":[...],"sessions":[...],"indexes":[...]}.
 */
#include "repo/condemned.h"
#include "common/error.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void condemned_init(condemned_t *c)
{
    memset(c, 0, sizeof *c);
}

void condemned_release(condemned_t *c)
{
    if (!c)
        return;
    free(c->packs);
    free(c->sessions);
    free(c->indexes);
    condemned_init(c);
}

static json_t *hex_array(const uint8_t *ids, size_t n, size_t len)
{
    json_t *a = json_array();
    char hex[65];
    for (size_t i = 0; a && i < n; i++) {
        hex_encode(ids + i * len, len, hex);
        json_array_append_new(a, json_string(hex));
    }
    return a;
}

int condemned_encode(const condemned_t *c, buf_t *out)
{
    json_t *o = json_object();
    if (!o)
        return err_set(COFFER_ENOMEM, "out of memory");
    json_object_set_new(o, "packs", hex_array((const uint8_t *)c->packs, c->n_packs, 32));
    json_object_set_new(o, "sessions", hex_array((const uint8_t *)c->sessions, c->n_sessions, 16));
    json_object_set_new(o, "indexes", hex_array((const uint8_t *)c->indexes, c->n_indexes, 32));
    char *t = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!t)
        return err_set(COFFER_ENOMEM, "out of memory");
    int rc = buf_append_str(out, t);
    free(t);
    return rc;
}

static int load_ids(json_t *o, const char *key, size_t len, uint8_t **out, size_t *out_n,
                    const char *what)
{
    json_t *a = json_object_get(o, key);
    if (!json_is_array(a) || json_array_size(a) > CONDEMNED_MAX)
        return err_set(COFFER_ECORRUPT, "%s: \"%s\" is missing or too long", what, key);
    size_t n = json_array_size(a);
    uint8_t *ids = malloc(n ? n * len : 1);
    if (!ids)
        return err_set(COFFER_ENOMEM, "out of memory reading %s", what);
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s || hex_decode(s, ids + i * len, len)) {
            free(ids);
            return err_set(COFFER_ECORRUPT, "%s: bad id in \"%s\"", what, key);
        }
    }
    *out = ids;
    *out_n = n;
    return 0;
}

int condemned_decode(const void *data, size_t n, const char *what, condemned_t *c)
{
    json_error_t je;
    json_t *o = json_loadb(data, n, 0, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return err_set(COFFER_ECORRUPT, "%s is not valid JSON", what);
    }
    uint8_t *p = NULL, *s = NULL, *x = NULL;
    int rc;
    if ((rc = load_ids(o, "packs", 32, &p, &c->n_packs, what)) ||
        (rc = load_ids(o, "sessions", 16, &s, &c->n_sessions, what)) ||
        (rc = load_ids(o, "indexes", 32, &x, &c->n_indexes, what))) {
        free(p);
        free(s);
        free(x);
        json_decref(o);
        return rc;
    }
    c->packs = (uint8_t(*)[32])p;
    c->sessions = (uint8_t(*)[16])s;
    c->indexes = (uint8_t(*)[32])x;
    json_decref(o);
    return 0;
}
