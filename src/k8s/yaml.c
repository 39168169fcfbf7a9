/*
 * yaml.c -- YAML to jansson (see yaml.h).
 *
 * Layer: k8s. An event-driven libyaml parse with an explicit stack of open containers, so the
 * depth cap is checked before anything grows and no recursion depends on the input.
 */
#include "k8s/yaml.h"
#include "common/error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct frame {
    json_t *v; /* the open object or array (borrowed from its parent, or the root) */
    char *key; /* objects: the key waiting for its value (owned) */
} frame_t;

static json_t *scalar_value(const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
            return json_true();
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
            return json_false();
        if (!strcmp(s, "null") || !strcmp(s, "~") || !strcmp(s, "Null") || len == 0)
            return json_null();
        if (len < 19 && len > 0) {
            char *end;
            errno = 0;
            long long v = strtoll(s, &end, 10);
            if (!*end && !errno && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) &&
                !(s[0] == '0' && len > 1))
                return json_integer(v);
        }
    }
    return json_stringn(s, len);
}

/* Attach v to the top frame (or make it the document); takes the reference. */
static int attach(frame_t *st, size_t depth, json_t **doc, json_t *v, const char *what,
                  const yaml_event_t *ev)
{
    if (!v)
        return err_set(COFFER_ENOMEM, "out of memory");
    if (depth == 0) {
        *doc = v;
        return 0;
    }
    frame_t *f = &st[depth - 1];
    if (json_is_array(f->v))
        return json_array_append_new(f->v, v) ? err_set(COFFER_ENOMEM, "out of memory") : 0;
    if (!f->key) {
        /* a key: only scalars may be keys */
        if (!json_is_string(v)) {
            if (json_is_object(v) || json_is_array(v)) {
                json_decref(v);
                return err_set(COFFER_ECORRUPT,
                               "%s: line %zu column %zu: a mapping key must be a "
                               "scalar",
                               what, ev->start_mark.line + 1, ev->start_mark.column + 1);
            }
            /* true/1 as a key: keep its text */
            char *txt = json_dumps(v, JSON_ENCODE_ANY);
            json_decref(v);
            if (!txt)
                return err_set(COFFER_ENOMEM, "out of memory");
            f->key = txt;
            return 0;
        }
        f->key = strdup(json_string_value(v));
        json_decref(v);
        return f->key ? 0 : err_set(COFFER_ENOMEM, "out of memory");
    }
    int rc = json_object_set_new(f->v, f->key, v) ? err_set(COFFER_ENOMEM, "out of memory") : 0;
    free(f->key);
    f->key = NULL;
    return rc;
}

int k8s_yaml_parse_all(const char *data, size_t n, const char *what, json_t **out)
{
    if (n > K8S_YAML_MAX_BYTES)
        return err_set(COFFER_ELIMIT, "%s: larger than %u MiB", what, K8S_YAML_MAX_BYTES >> 20);
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return err_set(COFFER_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)data, n);
    frame_t st[K8S_YAML_MAX_DEPTH + 1];
    size_t depth = 0;
    json_t *docs = json_array(), *doc = NULL;
    int rc = docs ? 0 : err_set(COFFER_ENOMEM, "out of memory");
    bool done = false;
    while (!rc && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = err_set(COFFER_ECORRUPT, "%s: line %zu column %zu: %s", what,
                         p.problem_mark.line + 1, p.problem_mark.column + 1,
                         p.problem ? p.problem : "invalid YAML");
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            doc = NULL;
            break;
        case YAML_DOCUMENT_END_EVENT:
            if (doc && !json_is_null(doc)) {
                if (json_array_append_new(docs, doc))
                    rc = err_set(COFFER_ENOMEM, "out of memory");
            } else {
                json_decref(doc);
            }
            doc = NULL;
            break;
        case YAML_ALIAS_EVENT:
            rc = err_set(COFFER_ECORRUPT, "%s: line %zu column %zu: YAML aliases are not supported",
                         what, ev.start_mark.line + 1, ev.start_mark.column + 1);
            break;
        case YAML_SCALAR_EVENT:
            if (ev.data.scalar.anchor) {
                rc = err_set(COFFER_ECORRUPT, "%s: line %zu: YAML anchors are not supported", what,
                             ev.start_mark.line + 1);
                break;
            }
            rc = attach(st, depth, &doc, scalar_value(&ev), what, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            if (depth >= K8S_YAML_MAX_DEPTH) {
                rc = err_set(COFFER_ELIMIT, "%s: line %zu: nested deeper than %d levels", what,
                             ev.start_mark.line + 1, K8S_YAML_MAX_DEPTH);
                break;
            }
            if (depth > 0 && json_is_object(st[depth - 1].v) && !st[depth - 1].key) {
                rc = err_set(COFFER_ECORRUPT,
                             "%s: line %zu column %zu: a mapping key must be a "
                             "scalar",
                             what, ev.start_mark.line + 1, ev.start_mark.column + 1);
                break;
            }
            json_t *c = ev.type == YAML_SEQUENCE_START_EVENT ? json_array() : json_object();
            if (!c) {
                rc = err_set(COFFER_ENOMEM, "out of memory");
                break;
            }
            json_incref(c); /* one for the parent, one held by the frame until the end event */
            if ((rc = attach(st, depth, &doc, c, what, &ev))) {
                json_decref(c);
                break;
            }
            st[depth].v = c;
            st[depth].key = NULL;
            depth++;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0) {
                depth--;
                free(st[depth].key);
                json_decref(st[depth].v);
            }
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    while (depth > 0) {
        depth--;
        free(st[depth].key);
        json_decref(st[depth].v);
    }
    yaml_parser_delete(&p);
    if (rc) {
        json_decref(doc);
        json_decref(docs);
        return rc;
    }
    *out = docs;
    return 0;
}

int k8s_yaml_parse(const char *data, size_t n, const char *what, json_t **out)
{
    json_t *docs = NULL;
    int rc = k8s_yaml_parse_all(data, n, what, &docs);
    if (rc)
        return rc;
    if (json_array_size(docs) == 0) {
        json_decref(docs);
        return err_set(COFFER_ECORRUPT, "%s: no YAML document", what);
    }
    json_t *d = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    *out = d;
    return 0;
}
