/*
 * selector.c -- label selectors (see selector.h).
 *
 * Layer: source/k8s. A small hand-written scanner: the grammar has no nesting beyond one
 * parenthesised value list.
 */
#include "source/k8s/selector.h"
#include "common/error.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define SEL_MAX_REQ 64
#define SEL_MAX_VALUES 64

typedef enum { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOT_EXISTS } sel_op_t;

typedef struct req {
    sel_op_t op;
    char *key;
    char *values[SEL_MAX_VALUES];
    size_t n_values;
} req_t;

struct k8s_selector {
    req_t r[SEL_MAX_REQ];
    size_t n;
};

void k8s_selector_free(k8s_selector_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->r[i].key);
        for (size_t k = 0; k < s->r[i].n_values; k++)
            free(s->r[i].values[k]);
    }
    free(s);
}

static bool key_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == '/';
}

static void skip_ws(const char **p)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
}

static int word(const char **p, char **out)
{
    const char *s = *p;
    while (key_char(**p))
        (*p)++;
    *out = strndup(s, (size_t)(*p - s));
    return *out ? 0 : err_set(COFFER_ENOMEM, "out of memory");
}

int k8s_selector_parse(const char *str, k8s_selector_t **out)
{
    k8s_selector_t *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(COFFER_ENOMEM, "out of memory");
    const char *p = str;
    int rc = 0;
    while (!rc) {
        skip_ws(&p);
        if (!*p)
            break;
        if (s->n == SEL_MAX_REQ) {
            rc = err_set(COFFER_ELIMIT, "label selector \"%s\": more than %d requirements", str,
                         SEL_MAX_REQ);
            break;
        }
        req_t *r = &s->r[s->n];
        bool neg = false;
        if (*p == '!') {
            neg = true;
            p++;
            skip_ws(&p);
        }
        if ((rc = word(&p, &r->key)))
            break;
        s->n++;
        if (!r->key[0]) {
            rc = err_set(COFFER_EINVAL, "label selector \"%s\": a requirement has no key", str);
            break;
        }
        skip_ws(&p);
        if (neg) {
            r->op = OP_NOT_EXISTS;
        } else if (*p == ',' || !*p) {
            r->op = OP_EXISTS;
        } else if (p[0] == '!' && p[1] == '=') {
            r->op = OP_NE;
            p += 2;
        } else if (p[0] == '=' && p[1] == '=') {
            r->op = OP_EQ;
            p += 2;
        } else if (p[0] == '=') {
            r->op = OP_EQ;
            p++;
        } else if (!strncmp(p, "in", 2) || !strncmp(p, "notin", 5)) {
            r->op = p[0] == 'i' ? OP_IN : OP_NOTIN;
            p += r->op == OP_IN ? 2 : 5;
            skip_ws(&p);
            if (*p != '(') {
                rc = err_set(COFFER_EINVAL, "label selector \"%s\": expected ( after %s", str,
                             r->op == OP_IN ? "in" : "notin");
                break;
            }
            p++;
            for (;;) {
                skip_ws(&p);
                if (r->n_values == SEL_MAX_VALUES) {
                    rc = err_set(COFFER_ELIMIT, "label selector \"%s\": too many values", str);
                    break;
                }
                if ((rc = word(&p, &r->values[r->n_values])))
                    break;
                r->n_values++;
                skip_ws(&p);
                if (*p == ',') {
                    p++;
                    continue;
                }
                if (*p == ')') {
                    p++;
                    break;
                }
                rc = err_set(COFFER_EINVAL,
                             "label selector \"%s\": expected , or ) in a value "
                             "list",
                             str);
                break;
            }
            if (rc)
                break;
        } else {
            rc = err_set(COFFER_EINVAL, "label selector \"%s\": cannot parse at \"%s\"", str, p);
            break;
        }
        if (r->op == OP_EQ || r->op == OP_NE) {
            skip_ws(&p);
            if ((rc = word(&p, &r->values[0])))
                break;
            r->n_values = 1;
        }
        skip_ws(&p);
        if (*p == ',')
            p++;
        else if (*p) {
            rc = err_set(COFFER_EINVAL, "label selector \"%s\": cannot parse at \"%s\"", str, p);
            break;
        }
    }
    if (rc) {
        k8s_selector_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

bool k8s_selector_match(const k8s_selector_t *s, json_t *obj)
{
    if (!s)
        return true;
    json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    for (size_t i = 0; i < s->n; i++) {
        const req_t *r = &s->r[i];
        const char *v = json_string_value(json_object_get(labels, r->key));
        bool in = false;
        for (size_t k = 0; v && k < r->n_values; k++)
            in |= strcmp(v, r->values[k]) == 0;
        bool ok;
        switch (r->op) {
        case OP_EQ:
        case OP_IN:
            ok = v && in;
            break;
        case OP_NE:
        case OP_NOTIN:
            ok = !v || !in;
            break;
        case OP_EXISTS:
            ok = v != NULL;
            break;
        default:
            ok = v == NULL;
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}
