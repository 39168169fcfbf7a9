/*
 * snapshot.c -- snapshot JSON codec (see snapshot.h).
 *
 * Layer: repo.
 */
#include "repo/snapshot.h"
#include "common/error.h"
#include "common/timefmt.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define SNAP_JSON_MAX (16u << 20)

void snapshot_init(snapshot_t *s)
{
    memset(s, 0, sizeof *s);
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void snapshot_release(snapshot_t *s)
{
    if (!s)
        return;
    free(s->host);
    free(s->user);
    free(s->job);
    free(s->kind);
    free(s->status);
    free(s->program);
    free_strv(s->paths, s->n_paths);
    free_strv(s->tags, s->n_tags);
    free_strv(s->command_argv, s->n_command_argv);
    for (size_t i = 0; i < s->n_errors; i++) {
        free(s->errors[i].path);
        free(s->errors[i].message);
    }
    free(s->errors);
    snapshot_init(s);
}

static int strv_add(char ***v, size_t *n, size_t max, const char *str)
{
    if (*n >= max)
        return err_set(COFFER_ELIMIT, "too many entries (limit %zu)", max);
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return err_set(COFFER_ENOMEM, "out of memory");
    *v = nv;
    nv[*n] = strdup(str);
    if (!nv[*n])
        return err_set(COFFER_ENOMEM, "out of memory");
    (*n)++;
    return 0;
}

int snapshot_add_path(snapshot_t *s, const char *p)
{
    return strv_add(&s->paths, &s->n_paths, SNAP_MAX_PATHS, p);
}

int snapshot_add_tag(snapshot_t *s, const char *t)
{
    if (snapshot_has_tag(s, t))
        return 0;
    return strv_add(&s->tags, &s->n_tags, SNAP_MAX_TAGS, t);
}

bool snapshot_has_tag(const snapshot_t *s, const char *t)
{
    for (size_t i = 0; i < s->n_tags; i++)
        if (strcmp(s->tags[i], t) == 0)
            return true;
    return false;
}

int snapshot_add_error(snapshot_t *s, const char *path, const char *msg)
{
    s->summary.errors++;
    if (s->n_errors >= SNAP_MAX_ERRORS)
        return 0;
    snap_error_t *ne = realloc(s->errors, (s->n_errors + 1) * sizeof *ne);
    if (!ne)
        return err_set(COFFER_ENOMEM, "out of memory");
    s->errors = ne;
    ne[s->n_errors].path = strdup(path ? path : "");
    ne[s->n_errors].message = strdup(msg ? msg : "");
    if (!ne[s->n_errors].path || !ne[s->n_errors].message) {
        free(ne[s->n_errors].path);
        free(ne[s->n_errors].message);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    s->n_errors++;
    return 0;
}

static json_t *strv_json(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

int snapshot_encode(const snapshot_t *s, buf_t *out)
{
    char ts[64], hex[65];
    json_t *o = json_object();
    json_t *sum = json_object();
    if (!o || !sum) {
        json_decref(o);
        json_decref(sum);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    time_format_rfc3339(s->time_ns, true, ts, sizeof ts);
    json_object_set_new(o, "version", json_integer(1));
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "host", json_string(s->host ? s->host : ""));
    json_object_set_new(o, "user", json_string(s->user ? s->user : ""));
    json_object_set_new(o, "job", json_string(s->job ? s->job : ""));
    json_object_set_new(o, "kind", json_string(s->kind ? s->kind : "files"));
    json_object_set_new(o, "paths", strv_json(s->paths, s->n_paths));
    json_object_set_new(o, "tags", strv_json(s->tags, s->n_tags));
    hex_encode(s->tree, 32, hex);
    json_object_set_new(o, "tree", json_string(hex));
    if (s->has_parent) {
        hex_encode(s->parent, 32, hex);
        json_object_set_new(o, "parent", json_string(hex));
    }
    if (s->has_original) {
        hex_encode(s->original, 32, hex);
        json_object_set_new(o, "original", json_string(hex));
    }
    json_object_set_new(o, "status", json_string(s->status ? s->status : "complete"));
    json_object_set_new(sum, "files_new", json_integer((json_int_t)s->summary.files_new));
    json_object_set_new(sum, "files_changed", json_integer((json_int_t)s->summary.files_changed));
    json_object_set_new(sum, "files_unchanged",
                        json_integer((json_int_t)s->summary.files_unchanged));
    json_object_set_new(sum, "dirs", json_integer((json_int_t)s->summary.dirs));
    json_object_set_new(sum, "others", json_integer((json_int_t)s->summary.others));
    json_object_set_new(sum, "bytes_read", json_integer((json_int_t)s->summary.bytes_read));
    json_object_set_new(sum, "bytes_added", json_integer((json_int_t)s->summary.bytes_added));
    json_object_set_new(sum, "bytes_stored", json_integer((json_int_t)s->summary.bytes_stored));
    json_object_set_new(sum, "blobs_added", json_integer((json_int_t)s->summary.blobs_added));
    json_object_set_new(sum, "duration_s", json_real(s->summary.duration_s));
    json_object_set_new(sum, "errors", json_integer((json_int_t)s->summary.errors));
    json_object_set_new(o, "summary", sum);
    if (s->n_errors) {
        json_t *a = json_array();
        for (size_t i = 0; i < s->n_errors; i++)
            json_array_append_new(a, json_pack("{s:s,s:s}", "path", s->errors[i].path, "message",
                                               s->errors[i].message));
        json_object_set_new(o, "errors", a);
    }
    if (s->n_command_argv || s->has_exit_status) {
        json_t *c = json_object();
        json_object_set_new(c, "argv", strv_json(s->command_argv, s->n_command_argv));
        if (s->has_exit_status)
            json_object_set_new(c, "exit_status", json_integer(s->exit_status));
        json_object_set_new(o, "command", c);
    }
    json_object_set_new(o, "program", json_string(s->program ? s->program : "coffer"));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return err_set(COFFER_ENOMEM, "out of memory encoding a snapshot");
    int rc = buf_append_str(out, text);
    free(text);
    return rc;
}

static int dup_opt(json_t *o, const char *key, char **out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return COFFER_ECORRUPT;
    *out = strdup(json_string_value(v));
    return *out ? 0 : COFFER_ENOMEM;
}

static int load_strv(json_t *o, const char *key, size_t max, char ***v, size_t *n)
{
    json_t *a = json_object_get(o, key);
    if (!a)
        return 0;
    if (!json_is_array(a) || json_array_size(a) > max)
        return COFFER_ECORRUPT;
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e)
    {
        if (!json_is_string(e))
            return COFFER_ECORRUPT;
        int rc = strv_add(v, n, max, json_string_value(e));
        if (rc)
            return rc;
    }
    return 0;
}

static uint64_t get_u64(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

int snapshot_decode(const void *data, size_t n, const char *what, snapshot_t *s)
{
    if (n > SNAP_JSON_MAX)
        return err_set(COFFER_ECORRUPT, "%s is too large", what);
    json_error_t je;
    json_t *o = json_loadb(data, n, 0, &je);
    int rc = 0;
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return err_set(COFFER_ECORRUPT, "%s is not valid JSON: %s", what, je.text);
    }
    const char *t = json_string_value(json_object_get(o, "time"));
    const char *tree = json_string_value(json_object_get(o, "tree"));
    const char *parent = json_string_value(json_object_get(o, "parent"));
    const char *original = json_string_value(json_object_get(o, "original"));
    if (!t || time_parse_rfc3339(t, &s->time_ns) || !tree || hex_decode(tree, s->tree, 32)) {
        rc = COFFER_ECORRUPT;
        goto out;
    }
    if (parent) {
        if (hex_decode(parent, s->parent, 32)) {
            rc = COFFER_ECORRUPT;
            goto out;
        }
        s->has_parent = true;
    }
    if (original) {
        if (hex_decode(original, s->original, 32)) {
            rc = COFFER_ECORRUPT;
            goto out;
        }
        s->has_original = true;
    }
    if ((rc = dup_opt(o, "host", &s->host)) || (rc = dup_opt(o, "user", &s->user)) ||
        (rc = dup_opt(o, "job", &s->job)) || (rc = dup_opt(o, "kind", &s->kind)) ||
        (rc = dup_opt(o, "status", &s->status)) || (rc = dup_opt(o, "program", &s->program)) ||
        (rc = load_strv(o, "paths", SNAP_MAX_PATHS, &s->paths, &s->n_paths)) ||
        (rc = load_strv(o, "tags", SNAP_MAX_TAGS, &s->tags, &s->n_tags)))
        goto out;
    json_t *sum = json_object_get(o, "summary");
    if (json_is_object(sum)) {
        s->summary.files_new = get_u64(sum, "files_new");
        s->summary.files_changed = get_u64(sum, "files_changed");
        s->summary.files_unchanged = get_u64(sum, "files_unchanged");
        s->summary.dirs = get_u64(sum, "dirs");
        s->summary.others = get_u64(sum, "others");
        s->summary.bytes_read = get_u64(sum, "bytes_read");
        s->summary.bytes_added = get_u64(sum, "bytes_added");
        s->summary.bytes_stored = get_u64(sum, "bytes_stored");
        s->summary.blobs_added = get_u64(sum, "blobs_added");
        s->summary.errors = get_u64(sum, "errors");
        s->summary.duration_s = json_number_value(json_object_get(sum, "duration_s"));
    }
    json_t *errs = json_object_get(o, "errors");
    if (json_is_array(errs)) {
        size_t i;
        json_t *e;
        uint64_t count = s->summary.errors;
        json_array_foreach(errs, i, e)
        {
            const char *p = json_string_value(json_object_get(e, "path"));
            const char *m = json_string_value(json_object_get(e, "message"));
            if (i >= SNAP_MAX_ERRORS)
                break;
            if ((rc = snapshot_add_error(s, p ? p : "", m ? m : "")))
                goto out;
        }
        s->summary.errors = count;
    }
    json_t *cmd = json_object_get(o, "command");
    if (json_is_object(cmd)) {
        if ((rc = load_strv(cmd, "argv", 4096, &s->command_argv, &s->n_command_argv)))
            goto out;
        json_t *es = json_object_get(cmd, "exit_status");
        if (json_is_integer(es)) {
            s->has_exit_status = true;
            s->exit_status = (int)json_integer_value(es);
        }
    }
out:
    json_decref(o);
    if (rc) {
        snapshot_release(s);
        if (rc == COFFER_ECORRUPT)
            err_set(rc, "%s is malformed (missing or invalid fields)", what);
    }
    return rc;
}
