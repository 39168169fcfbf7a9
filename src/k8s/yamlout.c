/*
 * yamlout.c -- JSON to block-style YAML through libyaml's emitter (yamlout.h).
 *
 * Layer: k8s. libyaml chooses a plain scalar whenever the characters allow one, but it does
 * not know YAML's implicit types: the string "true" or "0755" written plain would come back as
 * a boolean or a number. needs_quotes() decides that from the YAML 1.1 rules Kubernetes
 * readers use, and those strings are written double-quoted.
 */
#include "k8s/yamlout.h"
#include "common/error.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

static int write_cb(void *data, unsigned char *buffer, size_t size)
{
    return buf_append((buf_t *)data, buffer, size) == 0;
}

static bool needs_quotes(const char *s)
{
    static const char *const words[] = {"y",     "n",    "yes",  "no", "true", "false",
                                        "on",    "off",  "null", "~",  ".inf", "-.inf",
                                        "+.inf", ".nan", "=",    "<<", NULL};
    if (!*s)
        return true;
    for (size_t i = 0; words[i]; i++)
        if (!strcasecmp(s, words[i]))
            return true;
    /* numbers of every YAML 1.1 form (ints, octal, hex, floats, sexagesimal) start like this */
    const char *d = s;
    if (*d == '+' || *d == '-')
        d++;
    if (*d == '.')
        d++;
    if (isdigit((unsigned char)*d))
        return true;
    /* leading or trailing blanks would be lost */
    return isspace((unsigned char)s[0]) || isspace((unsigned char)s[strlen(s) - 1]);
}

static int emit(yaml_emitter_t *em, yaml_event_t *ev)
{
    if (!yaml_emitter_emit(em, ev))
        return err_set(COFFER_EINVAL, "cannot write YAML: %s",
                       em->problem ? em->problem : "emitter error");
    return 0;
}

static int scalar(yaml_emitter_t *em, const char *s, size_t len, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)len, 1, 1, style))
        return err_set(COFFER_ENOMEM, "out of memory");
    return emit(em, &ev);
}

static int value(yaml_emitter_t *em, const json_t *v, int depth)
{
    yaml_event_t ev;
    int rc;
    char num[64];
    if (depth > 100)
        return err_set(COFFER_EINVAL, "cannot write YAML: nested deeper than 100 levels");
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE))
            return err_set(COFFER_ENOMEM, "out of memory");
        if ((rc = emit(em, &ev)))
            return rc;
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            if ((rc = scalar(em, k, strlen(k),
                             needs_quotes(k) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                             : YAML_ANY_SCALAR_STYLE)) ||
                (rc = value(em, e, depth + 1)))
                return rc;
        }
        if (!yaml_mapping_end_event_initialize(&ev))
            return err_set(COFFER_ENOMEM, "out of memory");
        return emit(em, &ev);
    }
    case JSON_ARRAY: {
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE))
            return err_set(COFFER_ENOMEM, "out of memory");
        if ((rc = emit(em, &ev)))
            return rc;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if ((rc = value(em, e, depth + 1)))
                return rc;
        }
        if (!yaml_sequence_end_event_initialize(&ev))
            return err_set(COFFER_ENOMEM, "out of memory");
        return emit(em, &ev);
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (strlen(s) != n)
            return err_set(COFFER_EINVAL, "cannot write YAML: a string holds a NUL byte");
        yaml_scalar_style_t st = memchr(s, '\n', n) ? YAML_LITERAL_SCALAR_STYLE
                                 : needs_quotes(s)  ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                                    : YAML_ANY_SCALAR_STYLE;
        return scalar(em, s, n, st);
    }
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return scalar(em, num, strlen(num), YAML_PLAIN_SCALAR_STYLE);
    case JSON_REAL:
        snprintf(num, sizeof num, "%.17g", json_real_value(v));
        return scalar(em, num, strlen(num), YAML_PLAIN_SCALAR_STYLE);
    case JSON_TRUE:
        return scalar(em, "true", 4, YAML_PLAIN_SCALAR_STYLE);
    case JSON_FALSE:
        return scalar(em, "false", 5, YAML_PLAIN_SCALAR_STYLE);
    default:
        return scalar(em, "null", 4, YAML_PLAIN_SCALAR_STYLE);
    }
}

static int emit_all(const json_t *const *docs, size_t n, bool markers, buf_t *out)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&em))
        return err_set(COFFER_ENOMEM, "out of memory");
    yaml_emitter_set_output(&em, write_cb, out);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    yaml_emitter_set_indent(&em, 2);
    int rc = 0;
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING))
        rc = err_set(COFFER_ENOMEM, "out of memory");
    else
        rc = emit(&em, &ev);
    for (size_t i = 0; i < n && !rc; i++) {
        if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, !markers))
            rc = err_set(COFFER_ENOMEM, "out of memory");
        else if (!(rc = emit(&em, &ev)) && !(rc = value(&em, docs[i], 0))) {
            if (!yaml_document_end_event_initialize(&ev, 1))
                rc = err_set(COFFER_ENOMEM, "out of memory");
            else
                rc = emit(&em, &ev);
        }
    }
    if (!rc) {
        if (!yaml_stream_end_event_initialize(&ev))
            rc = err_set(COFFER_ENOMEM, "out of memory");
        else
            rc = emit(&em, &ev);
    }
    if (!rc && !yaml_emitter_flush(&em))
        rc = err_set(COFFER_ENOMEM, "cannot write YAML");
    yaml_emitter_delete(&em);
    return rc;
}

int k8s_yaml_emit_docs(const json_t *docs, buf_t *out)
{
    size_t n = json_array_size(docs);
    if (!n)
        return 0;
    const json_t **arr = calloc(n, sizeof *arr);
    if (!arr)
        return err_set(COFFER_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        arr[i] = json_array_get(docs, i);
    int rc = emit_all(arr, n, true, out);
    free(arr);
    return rc;
}

int k8s_yaml_emit(const json_t *v, buf_t *out)
{
    return emit_all(&v, 1, false, out);
}
