/*
 * config.c -- YAML configuration loader (schema in doc/config.md; contract in config.h).
 *
 * Layer: sched. Each file is loaded as a libyaml document (so every node keeps its line and
 * column) and walked by one function per section; every section checks its keys against a
 * fixed list, so a typo is an error naming the key, the place and the keys allowed. Aliases
 * are followed, but the number of nodes visited is capped (CFG_MAX_NODES) so an alias bomb
 * cannot make the walk explode. References between sections (a job's repositories, a copy
 * task's from/to) are resolved once every included file has been read.
 */
#include "sched/config.h"
#include "common/error.h"
#include "repo/retention.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define CFG_MAX_NODES 200000
#define CFG_MAX_SECRET 65536

typedef struct pctx {
    cfg_t *cfg;
    const char *file; /* borrowed from cfg->files */
    char *dir;        /* directory of file, for relative paths */
    yaml_document_t *doc;
    size_t *nodes; /* visit counter shared by all files */
    int depth;
    bool have_server;
    bool no_files; /* cfg_load_buffer(allow_files = false) */
    bool lenient;  /* manifest mode: unset ${VAR} kept, secret files not read (cfg_load_opts) */
    bool in_k8s;   /* inside kubernetes: (always substituted strictly) */
} pctx_t;

typedef yaml_node_t node_t;

/* ---- errors and small helpers ---------------------------------------------------------- */

static int at_err(const pctx_t *p, const node_t *n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int at_err(const pctx_t *p, const node_t *n, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(code, "%s:%zu:%zu: %s", p->file, n ? n->start_mark.line + 1 : 1,
                   n ? n->start_mark.column + 1 : 1, msg);
}

static const char *type_name(const node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

static cfg_loc_t loc_of(const pctx_t *p, const node_t *n)
{
    cfg_loc_t l = {p->file, (int)n->start_mark.line + 1, (int)n->start_mark.column + 1};
    return l;
}

static node_t *node_get(pctx_t *p, yaml_node_item_t i)
{
    (*p->nodes)++;
    return yaml_document_get_node(p->doc, i);
}

static int visit(pctx_t *p, const node_t *n)
{
    if (*p->nodes > CFG_MAX_NODES)
        return at_err(p, n, COFFER_ELIMIT,
                      "the configuration has more than %d nodes (aliases "
                      "expanding too far?)",
                      CFG_MAX_NODES);
    return 0;
}

/* Grow *arr (n elements of size sz) by one zeroed element; returns it or NULL. */
static void *grow(void *arrp, size_t *n, size_t sz)
{
    void **arr = arrp;
    if (*n >= CFG_MAX_ITEMS)
        return NULL;
    void *na = realloc(*arr, (*n + 1) * sz);
    if (!na)
        return NULL;
    *arr = na;
    void *e = (char *)na + *n * sz;
    memset(e, 0, sz);
    (*n)++;
    return e;
}

static int grow_err(const pctx_t *p, const node_t *n)
{
    return at_err(p, n, COFFER_ELIMIT, "too many entries (limit %d) or out of memory",
                  CFG_MAX_ITEMS);
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t d[41][41];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c)
                c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c)
                c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

static int unknown_key(const pctx_t *p, const node_t *k, const char *where,
                       const char *const *allowed)
{
    char list[512] = "", hint[96] = "";
    size_t best = 3;
    size_t used = 0;
    for (size_t i = 0; allowed[i]; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", allowed[i]);
        if (w > 0 && (size_t)w < sizeof list - used)
            used += (size_t)w;
        size_t d = edit_distance((const char *)k->data.scalar.value, allowed[i]);
        if (d < best) {
            best = d;
            snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", allowed[i]);
        }
    }
    return at_err(p, k, COFFER_EINVAL, "unknown key \"%s\" in %s%s; expected one of: %s",
                  (const char *)k->data.scalar.value, where, hint, list);
}

/* Check that n is a mapping whose keys are scalars, unique, and in allowed. */
static int check_map(pctx_t *p, const node_t *n, const char *where, const char *const *allowed)
{
    int rc;
    if ((rc = visit(p, n)))
        return rc;
    if (n->type != YAML_MAPPING_NODE)
        return at_err(p, n, COFFER_EINVAL, "%s: expected a mapping (key: value lines), got %s",
                      where, type_name(n));
    for (yaml_node_pair_t *a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top; a++) {
        node_t *k = node_get(p, a->key);
        if (!k || k->type != YAML_SCALAR_NODE)
            return at_err(p, k ? k : n, COFFER_EINVAL, "%s: keys must be plain names", where);
        const char *ks = (const char *)k->data.scalar.value;
        if (allowed) {
            bool ok = false;
            for (size_t i = 0; allowed[i] && !ok; i++)
                ok = strcmp(ks, allowed[i]) == 0;
            if (!ok)
                return unknown_key(p, k, where, allowed);
        }
        for (yaml_node_pair_t *b = n->data.mapping.pairs.start; b < a; b++) {
            node_t *k2 = node_get(p, b->key);
            if (k2 && k2->type == YAML_SCALAR_NODE &&
                strcmp((const char *)k2->data.scalar.value, ks) == 0)
                return at_err(p, k, COFFER_EINVAL, "%s: key \"%s\" appears twice", where, ks);
        }
    }
    return 0;
}

/* Loop over the pairs of mapping `map`: knode is the key node, kname its text, val the value
 * node. Distinct knode names keep nested loops apart. */
#define FOR_PAIRS(p, map, knode, kname, val)                                                       \
    for (yaml_node_pair_t *pr_##knode = (map)->data.mapping.pairs.start;                           \
         pr_##knode < (map)->data.mapping.pairs.top; pr_##knode++)                                 \
        for (node_t *knode = node_get(p, pr_##knode->key), *val = node_get(p, pr_##knode->value);  \
             knode && val; knode = NULL)                                                           \
            for (const char *kname = (const char *)knode->data.scalar.value; kname; kname = NULL)

/* ---- scalars with ${VAR} substitution -------------------------------------------------- */

static int subst(const pctx_t *p, const node_t *n, const char *in, char **out)
{
    buf_t b;
    buf_init(&b);
    int rc = 0;
    for (const char *s = in; *s && !rc;) {
        if (s[0] == '$' && s[1] == '$') {
            rc = buf_append(&b, "$", 1);
            s += 2;
        } else if (s[0] == '$' && s[1] == '{') {
            const char *name = s + 2, *e = name;
            while (isalnum((unsigned char)*e) || *e == '_')
                e++;
            size_t nl = (size_t)(e - name);
            const char *def = NULL, *close = NULL;
            if (e[0] == ':' && e[1] == '-') {
                def = e + 2;
                close = strchr(def, '}');
            } else if (*e == '}') {
                close = e;
            }
            if (nl == 0 || isdigit((unsigned char)name[0]) || !close || nl > 200) {
                rc = at_err(p, n, COFFER_EINVAL,
                            "bad variable reference in \"%.60s\": write ${NAME} or "
                            "${NAME:-default} (and $$ for a literal $)",
                            in);
                break;
            }
            char vn[256];
            memcpy(vn, name, nl);
            vn[nl] = 0;
            const char *v = getenv(vn);
            if (p->lenient && !p->in_k8s)
                rc = buf_append(&b, s, (size_t)(close + 1 - s)); /* expanded in the pod */
            else if (def && (!v || !*v))
                rc = buf_append(&b, def, (size_t)(close - def));
            else if (!v)
                rc = at_err(p, n, COFFER_EINVAL,
                            "environment variable %s is not set (set it, or give a default: "
                            "${%s:-default})",
                            vn, vn);
            else
                rc = buf_append_str(&b, v);
            s = close + 1;
        } else {
            rc = buf_append(&b, s, 1);
            s++;
        }
    }
    if (!rc && !b.data)
        rc = buf_append(&b, "", 0);
    if (rc) {
        buf_release(&b);
        return rc;
    }
    *out = (char *)buf_steal(&b, NULL);
    return 0;
}

static int get_str(pctx_t *p, const node_t *n, const char *what, char **out)
{
    int rc;
    if ((rc = visit(p, n)))
        return rc;
    if (n->type != YAML_SCALAR_NODE)
        return at_err(p, n, COFFER_EINVAL, "%s: expected a string, got %s", what, type_name(n));
    char *v = NULL;
    if ((rc = subst(p, n, (const char *)n->data.scalar.value, &v)))
        return rc;
    free(*out);
    *out = v;
    return 0;
}

static int get_nonempty(pctx_t *p, const node_t *n, const char *what, char **out)
{
    int rc = get_str(p, n, what, out);
    if (!rc && !**out)
        return at_err(p, n, COFFER_EINVAL, "%s: must not be empty", what);
    return rc;
}

static int get_long(pctx_t *p, const node_t *n, const char *what, long min, long max, long *out)
{
    char *s = NULL;
    int rc = get_str(p, n, what, &s);
    if (rc)
        return rc;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    bool bad = errno || end == s || *end || v < min || v > max;
    if (bad)
        rc = at_err(p, n, COFFER_EINVAL, "%s: expected a whole number from %ld to %ld, got \"%s\"",
                    what, min, max, s);
    free(s);
    if (!rc)
        *out = v;
    return rc;
}

static int get_int(pctx_t *p, const node_t *n, const char *what, int min, int max, int *out)
{
    long v;
    int rc = get_long(p, n, what, min, max, &v);
    if (!rc)
        *out = (int)v;
    return rc;
}

static int get_bool(pctx_t *p, const node_t *n, const char *what, bool *out)
{
    char *s = NULL;
    int rc = get_str(p, n, what, &s);
    if (rc)
        return rc;
    if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
        *out = true;
    else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
        *out = false;
    else
        rc = at_err(p, n, COFFER_EINVAL, "%s: expected true or false, got \"%s\"", what, s);
    free(s);
    return rc;
}

/* "90", "90s", "5m", "2h", "1d" -> seconds */
static int get_seconds(pctx_t *p, const node_t *n, const char *what, int min, int max, int *out)
{
    char *s = NULL;
    int rc = get_str(p, n, what, &s);
    if (rc)
        return rc;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    long mul = 1;
    if (end != s && *end && !end[1])
        mul = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : *end == 'd' ? 86400 : 0;
    else if (*end)
        mul = 0;
    if (errno || end == s || mul == 0 || v < 0 || v > INT_MAX / mul || v * mul < min ||
        v * mul > max)
        rc = at_err(p, n, COFFER_EINVAL,
                    "%s: expected a duration such as 30s, 10m, 2h or 1d (from %d to %d "
                    "seconds), got \"%s\"",
                    what, min, max, s);
    else
        *out = (int)(v * mul);
    free(s);
    return rc;
}

/* A scalar or a list of scalars. */
static int get_list(pctx_t *p, const node_t *n, const char *what, char ***arr, size_t *cnt)
{
    int rc;
    if ((rc = visit(p, n)))
        return rc;
    if (n->type == YAML_SCALAR_NODE) {
        char **e = grow(arr, cnt, sizeof **arr);
        if (!e)
            return grow_err(p, n);
        return get_str(p, n, what, e);
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return at_err(p, n, COFFER_EINVAL, "%s: expected a string or a list of strings, got %s",
                      what, type_name(n));
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
        node_t *it = node_get(p, *i);
        char **e = grow(arr, cnt, sizeof **arr);
        if (!e)
            return grow_err(p, n);
        if ((rc = get_str(p, it, what, e)))
            return rc;
    }
    return 0;
}

static int read_secret(pctx_t *p, const node_t *n, const char *what, const char *path, char **out)
{
    if (p->no_files)
        return at_err(p, n, COFFER_EINVAL, "%s: reading files is disabled here", what);
    if (p->lenient) { /* the file is read in the pod, not here */
        char *e = strdup("");
        if (!e)
            return err_set(COFFER_ENOMEM, "out of memory");
        free(*out);
        *out = e;
        return 0;
    }
    char full[PATH_MAX];
    if (path[0] == '/')
        snprintf(full, sizeof full, "%s", path);
    else
        snprintf(full, sizeof full, "%s/%s", p->dir, path);
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return at_err(p, n, e == ENOENT ? COFFER_ENOENT : COFFER_EIO,
                      "%s: cannot read secret file %s: %s (create it or fix the path)", what, full,
                      strerror(e));
    }
    buf_t b;
    buf_init(&b);
    int rc = 0;
    for (;;) {
        if ((rc = buf_reserve(&b, 4096)))
            break;
        ssize_t got = read(fd, b.data + b.len, 4096);
        if (got < 0) {
            rc = at_err(p, n, COFFER_EIO, "%s: cannot read secret file %s: %s", what, full,
                        strerror(errno));
            break;
        }
        if (got == 0)
            break;
        b.len += (size_t)got;
        if (b.len > CFG_MAX_SECRET) {
            rc = at_err(p, n, COFFER_ELIMIT, "%s: secret file %s is larger than %d bytes", what,
                        full, CFG_MAX_SECRET);
            break;
        }
    }
    close(fd);
    if (rc) {
        buf_release(&b);
        return rc;
    }
    while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
        b.len--;
    if ((rc = buf_append(&b, "", 0)))
        return rc;
    b.data[b.len] = 0;
    free(*out);
    *out = (char *)buf_steal(&b, NULL);
    return 0;
}

/* A mapping of NAME: value (env, headers); NAME_file: path reads the value from a file. */
static int get_kv_map(pctx_t *p, const node_t *n, const char *what, bool secret, bool file_keys,
                      cfg_kv_t **arr, size_t *cnt)
{
    int rc;
    if ((rc = check_map(p, n, what, NULL)))
        return rc;
    FOR_PAIRS(p, n, k_, key, v)
    {
        size_t kl = strlen(key);
        if (!kl || kl > 200)
            return at_err(p, k_, COFFER_EINVAL, "%s: bad name \"%s\"", what, key);
        cfg_kv_t *e = grow(arr, cnt, sizeof **arr);
        if (!e)
            return grow_err(p, n);
        e->secret = secret;
        bool is_file = file_keys && kl > 5 && strcmp(key + kl - 5, "_file") == 0;
        e->key = strndup(key, is_file ? kl - 5 : kl);
        if (!e->key)
            return err_set(COFFER_ENOMEM, "out of memory");
        if (is_file) {
            char *path = NULL;
            if (!(rc = get_nonempty(p, v, what, &path)))
                rc = read_secret(p, v, what, path, &e->value);
            free(path);
            if (rc)
                return rc;
        } else if ((rc = get_str(p, v, what, &e->value))) {
            return rc;
        }
    }
    return 0;
}

static bool valid_name(const char *s)
{
    if (!*s || strlen(s) > 100)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
            return false;
    return true;
}

static int get_name(pctx_t *p, const node_t *n, const char *what, char **out)
{
    int rc = get_str(p, n, what, out);
    if (!rc && !valid_name(*out))
        rc = at_err(p, n, COFFER_EINVAL,
                    "%s: \"%s\" is not a valid name (1-100 letters, digits, '-', '_', '.')", what,
                    *out);
    return rc;
}

/* ---- sections --------------------------------------------------------------------------- */

static int parse_repo(pctx_t *p, const node_t *knode, const node_t *n)
{
    static const char *const keys[] = {"url", "password", "password_file", "env", "options", NULL};
    const char *name = (const char *)knode->data.scalar.value;
    char where[160];
    snprintf(where, sizeof where, "repository \"%.100s\"", name);
    int rc = check_map(p, n, where, keys);
    if (rc)
        return rc;
    if (!valid_name(name))
        return at_err(p, knode, COFFER_EINVAL,
                      "repository name \"%s\" is not valid (letters, digits, '-', '_', '.')", name);
    if (cfg_find_repo(p->cfg, name))
        return at_err(p, knode, COFFER_EINVAL, "repository \"%s\" is defined twice", name);
    cfg_repo_t *r = grow(&p->cfg->repos, &p->cfg->n_repos, sizeof *r);
    if (!r)
        return grow_err(p, n);
    r->loc = loc_of(p, knode);
    if (!(r->name = strdup(name)))
        return err_set(COFFER_ENOMEM, "out of memory");
    const node_t *pw = NULL, *pwf = NULL;
    FOR_PAIRS(p, n, k_, key, v)
    {
        if (!strcmp(key, "url"))
            rc = get_nonempty(p, v, "url", &r->url);
        else if (!strcmp(key, "password"))
            rc = get_nonempty(p, (pw = v), "password", &r->password);
        else if (!strcmp(key, "password_file"))
            rc = get_nonempty(p, (pwf = v), "password_file", &r->password_file);
        else if (!strcmp(key, "env"))
            rc = get_kv_map(p, v, "env", true, true, &r->env, &r->n_env);
        else if (!strcmp(key, "options"))
            rc = get_kv_map(p, v, "options", false, false, &r->options, &r->n_options);
        if (rc)
            return rc;
    }
    if (!r->url)
        return at_err(p, n, COFFER_EINVAL, "%s: url is required (e.g. url: /srv/backup)", where);
    if (pw && pwf)
        return at_err(p, pwf, COFFER_EINVAL, "%s: give password or password_file, not both", where);
    if (!pw && !pwf)
        return at_err(p, n, COFFER_EINVAL,
                      "%s: password or password_file is required (e.g. password: "
                      "${COFFER_PASSWORD})",
                      where);
    if (pwf)
        return read_secret(p, pwf, "password_file", r->password_file, &r->password);
    return 0;
}

static int parse_retention(pctx_t *p, const node_t *n, cfg_retention_t *r)
{
    static const char *const keys[] = {
        "keep_last",   "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly",
        "keep_yearly", "keep_within", "keep_tags",  "days",        "weeks",
        "months",      "prune",       NULL};
    int rc = check_map(p, n, "retention", keys);
    if (rc)
        return rc;
    r->set = true;
    int *counts[] = {&r->keep_last,   &r->keep_hourly,  &r->keep_daily,
                     &r->keep_weekly, &r->keep_monthly, &r->keep_yearly};
    int dwm[3] = {0, 0, 0};
    const node_t *dwm_node = NULL;
    FOR_PAIRS(p, n, k_, key, v)
    {
        for (int i = 0; i < 6; i++)
            if (!strcmp(key, keys[i]))
                rc = get_int(p, v, key, RETENTION_UNLIMITED, 1000000, counts[i]);
        for (int i = 0; i < 3; i++)
            if (!strcmp(key, keys[8 + i])) {
                rc = get_int(p, v, key, 0, 1000000, &dwm[i]);
                dwm_node = v;
            }
        if (!rc && !strcmp(key, "keep_within")) {
            int64_t s;
            if (!(rc = get_nonempty(p, v, key, &r->keep_within)) &&
                retention_parse_duration(r->keep_within, &s))
                rc = at_err(p, v, COFFER_EINVAL, "keep_within: %s", err_msg());
        }
        if (!rc && !strcmp(key, "keep_tags"))
            rc = get_list(p, v, key, &r->keep_tags, &r->n_keep_tags);
        if (!rc && !strcmp(key, "prune"))
            rc = get_bool(p, v, key, &r->prune);
        if (rc)
            return rc;
    }
    /* nxs-backup's days/weeks/months map onto keep_daily/weekly/monthly */
    int *dst[3] = {&r->keep_daily, &r->keep_weekly, &r->keep_monthly};
    for (int i = 0; i < 3; i++) {
        if (!dwm[i])
            continue;
        if (*dst[i])
            return at_err(p, dwm_node, COFFER_EINVAL,
                          "retention: %s and %s say the same thing; give one of them", keys[8 + i],
                          keys[2 + i]);
        *dst[i] = dwm[i];
    }
    return 0;
}

static int parse_hooks(pctx_t *p, const node_t *n, cfg_job_t *j)
{
    static const char *const keys[] = {"before", "after", NULL};
    static const char *const hkeys[] = {"command", "timeout", "on_error", NULL};
    int rc = check_map(p, n, "hooks", keys);
    if (rc)
        return rc;
    FOR_PAIRS(p, n, k_, key, v)
    {
        bool before = !strcmp(key, "before");
        cfg_hook_t **arr = before ? &j->before : &j->after;
        size_t *cnt = before ? &j->n_before : &j->n_after;
        if ((rc = visit(p, v)))
            return rc;
        if (v->type != YAML_SEQUENCE_NODE)
            return at_err(p, v, COFFER_EINVAL,
                          "hooks.%s: expected a list of commands (- \"cmd\" or - command: cmd), "
                          "got %s",
                          key, type_name(v));
        for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top;
             i++) {
            node_t *it = node_get(p, *i);
            cfg_hook_t *h = grow(arr, cnt, sizeof *h);
            if (!h)
                return grow_err(p, v);
            h->timeout_s = 300;
            h->on_error = CFG_ON_ERROR_FAIL;
            if (it->type == YAML_SCALAR_NODE) {
                if ((rc = get_nonempty(p, it, "hook command", &h->command)))
                    return rc;
                continue;
            }
            if ((rc = check_map(p, it, "hook", hkeys)))
                return rc;
            FOR_PAIRS(p, it, hk_, hk, hv)
            {
                if (!strcmp(hk, "command")) {
                    rc = get_nonempty(p, hv, "hook command", &h->command);
                } else if (!strcmp(hk, "timeout")) {
                    rc = get_seconds(p, hv, "hook timeout", 1, 7 * 86400, &h->timeout_s);
                } else {
                    char *s = NULL;
                    if (!(rc = get_str(p, hv, "on_error", &s))) {
                        if (!strcmp(s, "fail"))
                            h->on_error = CFG_ON_ERROR_FAIL;
                        else if (!strcmp(s, "continue"))
                            h->on_error = CFG_ON_ERROR_CONTINUE;
                        else
                            rc = at_err(p, hv, COFFER_EINVAL,
                                        "on_error: expected fail or continue, got \"%s\"", s);
                    }
                    free(s);
                }
                if (rc)
                    return rc;
            }
            if (!h->command)
                return at_err(p, it, COFFER_EINVAL, "hook: command is required");
        }
    }
    return 0;
}

static int parse_limits(pctx_t *p, const node_t *n, cfg_limits_t *l)
{
    static const char *const keys[] = {"nice", "ionice", "threads", "upload", "download", NULL};
    int rc = check_map(p, n, "limits", keys);
    if (rc)
        return rc;
    FOR_PAIRS(p, n, k_, key, v)
    {
        if (!strcmp(key, "nice")) {
            rc = get_int(p, v, "nice", -20, 19, &l->nice);
            l->has_nice = true;
        } else if (!strcmp(key, "threads")) {
            rc = get_int(p, v, "threads", 1, 256, &l->threads);
        } else if (!strcmp(key, "upload")) {
            rc = get_int(p, v, "upload (KiB/s)", 1, 1 << 30, &l->upload_kib);
        } else if (!strcmp(key, "download")) {
            rc = get_int(p, v, "download (KiB/s)", 1, 1 << 30, &l->download_kib);
        } else {
            char *s = NULL;
            if ((rc = get_str(p, v, "ionice", &s)))
                return rc;
            char *colon = strchr(s, ':');
            int level = 4;
            if (colon) {
                *colon = 0;
                char *end;
                long lv = strtol(colon + 1, &end, 10);
                if (end == colon + 1 || *end || lv < 0 || lv > 7)
                    level = -1;
                else
                    level = (int)lv;
            }
            if (!strcmp(s, "idle") && !colon)
                l->ionice_class = CFG_IONICE_IDLE;
            else if (!strcmp(s, "best-effort") && level >= 0)
                l->ionice_class = CFG_IONICE_BEST_EFFORT;
            else if (!strcmp(s, "realtime") && level >= 0)
                l->ionice_class = CFG_IONICE_REALTIME;
            else
                rc = at_err(p, v, COFFER_EINVAL,
                            "ionice: expected idle, best-effort[:0-7] or realtime[:0-7]");
            l->ionice_level = level;
            free(s);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_targets(pctx_t *p, const node_t *n, cfg_job_t *j)
{
    static const char *const keys[] = {"name", "retention", NULL};
    int rc;
    if ((rc = visit(p, n)))
        return rc;
    if (n->type == YAML_SCALAR_NODE) {
        cfg_target_t *t = grow(&j->targets, &j->n_targets, sizeof *t);
        if (!t)
            return grow_err(p, n);
        t->loc = loc_of(p, n);
        return get_nonempty(p, n, "repositories", &t->repo_name);
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return at_err(p, n, COFFER_EINVAL,
                      "repositories: expected a list of repository names (or name/retention "
                      "mappings), got %s",
                      type_name(n));
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
        node_t *it = node_get(p, *i);
        cfg_target_t *t = grow(&j->targets, &j->n_targets, sizeof *t);
        if (!t)
            return grow_err(p, n);
        t->loc = loc_of(p, it);
        if (it->type == YAML_SCALAR_NODE) {
            if ((rc = get_nonempty(p, it, "repositories", &t->repo_name)))
                return rc;
            continue;
        }
        if ((rc = check_map(p, it, "job repository", keys)))
            return rc;
        FOR_PAIRS(p, it, hk_, key, v)
        {
            if (!strcmp(key, "name"))
                rc = get_nonempty(p, v, "name", &t->repo_name);
            else
                rc = parse_retention(p, v, &t->retention);
            if (rc)
                return rc;
        }
        if (!t->repo_name)
            return at_err(p, it, COFFER_EINVAL, "job repository: name is required");
    }
    return 0;
}

static int parse_schedule(pctx_t *p, const node_t *n, char **text, cron_expr_t *c)
{
    int rc = get_nonempty(p, n, "schedule", text);
    if (!rc && cron_parse(*text, c))
        rc = at_err(p, n, COFFER_EINVAL, "schedule: %s", err_msg());
    return rc;
}

static int parse_tz(pctx_t *p, const node_t *n, char **out)
{
    int rc = get_nonempty(p, n, "timezone", out);
    if (!rc && cron_tz_check(*out))
        rc = at_err(p, n, COFFER_EINVAL, "timezone: %s", err_msg());
    return rc;
}

static const char *const job_types[] = {"files", "command", "postgres", "mysql",
                                        "redis", "ldap",    "k8s",      NULL};

static int parse_options(pctx_t *p, const node_t *n, cfg_job_t *j)
{
    int rc = check_map(p, n, "options", NULL);
    if (rc)
        return rc;
    FOR_PAIRS(p, n, k_, key, v)
    {
        for (const char *c = key; *c; c++)
            if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) && *c != '_' &&
                *c != '-')
                return at_err(p, k_, COFFER_EINVAL,
                              "options: \"%s\" is not an option name (lower-case letters, "
                              "digits, '_' and '-'); each option becomes --NAME VALUE",
                              key);
        if ((rc = visit(p, v)))
            return rc;
        const node_t *vals[1] = {v};
        size_t nv = 1;
        const yaml_node_item_t *items = NULL;
        if (v->type == YAML_SEQUENCE_NODE) {
            items = v->data.sequence.items.start;
            nv = (size_t)(v->data.sequence.items.top - items);
        }
        for (size_t i = 0; i < nv; i++) {
            const node_t *vn = items ? node_get(p, items[i]) : vals[0];
            cfg_kv_t *e = grow(&j->options, &j->n_options, sizeof *e);
            if (!e)
                return grow_err(p, n);
            if (!(e->key = strdup(key)))
                return err_set(COFFER_ENOMEM, "out of memory");
            if ((rc = get_str(p, vn, key, &e->value)))
                return rc;
            if (!strcmp(e->value, "true")) { /* a bare flag */
                free(e->value);
                e->value = NULL;
            }
            if (strstr(key, "password") || strstr(key, "secret"))
                return at_err(p, k_, COFFER_EINVAL,
                              "options: \"%s\" would put a secret on a command line; give it "
                              "through env: (e.g. env: {PGPASSWORD_file: /run/secrets/pg})",
                              key);
        }
    }
    return 0;
}

static int parse_k8s_job(pctx_t *p, const node_t *n, cfg_job_t *j);
static void k8s_pod_init(cfg_k8s_pod_t *o);

static int parse_job(pctx_t *p, const node_t *n)
{
    static const char *const keys[] = {
        "name",  "type",   "paths",    "exclude",  "command",      "filename",  "options",
        "env",   "host",   "schedule", "timezone", "repositories", "retention", "tags",
        "hooks", "limits", "run_on",   "fan_out",  "kubernetes",   NULL};
    int rc = check_map(p, n, "job", keys);
    if (rc)
        return rc;
    cfg_job_t *j = grow(&p->cfg->jobs, &p->cfg->n_jobs, sizeof *j);
    if (!j)
        return grow_err(p, n);
    j->loc = loc_of(p, n);
    j->k8s.run_as_user = -1;
    k8s_pod_init(&j->k8s.pod);
    const node_t *paths_n = NULL, *cmd_n = NULL, *opt_n = NULL, *type_n = NULL;
    FOR_PAIRS(p, n, k_, key, v)
    {
        if (!strcmp(key, "name")) {
            rc = get_name(p, v, "job name", &j->name);
        } else if (!strcmp(key, "type")) {
            type_n = v;
            if (!(rc = get_str(p, v, "type", &j->type))) {
                bool ok = false;
                for (size_t i = 0; job_types[i] && !ok; i++)
                    ok = !strcmp(j->type, job_types[i]);
                if (!ok)
                    rc = at_err(p, v, COFFER_EINVAL,
                                "type: \"%s\" is not a job type; expected files, command, "
                                "postgres, mysql, redis, ldap or k8s",
                                j->type);
            }
        } else if (!strcmp(key, "paths")) {
            paths_n = v;
            rc = get_list(p, v, "paths", &j->paths, &j->n_paths);
        } else if (!strcmp(key, "exclude")) {
            rc = get_list(p, v, "exclude", &j->excludes, &j->n_excludes);
        } else if (!strcmp(key, "command")) {
            cmd_n = v;
            if (v->type == YAML_SCALAR_NODE) {
                char *s = NULL;
                if (!(rc = get_nonempty(p, v, "command", &s))) {
                    const char *sh[] = {"/bin/sh", "-c", s};
                    for (int i = 0; i < 3 && !rc; i++) {
                        char **e = grow(&j->command, &j->n_command, sizeof *e);
                        if (!e || !(*e = strdup(sh[i])))
                            rc = grow_err(p, v);
                    }
                }
                free(s);
            } else {
                rc = get_list(p, v, "command", &j->command, &j->n_command);
            }
        } else if (!strcmp(key, "filename")) {
            rc = get_nonempty(p, v, "filename", &j->filename);
            if (!rc && strchr(j->filename, '/'))
                rc = at_err(p, v, COFFER_EINVAL, "filename: a plain file name, without '/'");
        } else if (!strcmp(key, "options")) {
            opt_n = v;
            rc = parse_options(p, v, j);
        } else if (!strcmp(key, "env")) {
            rc = get_kv_map(p, v, "env", true, true, &j->env, &j->n_env);
        } else if (!strcmp(key, "host")) {
            rc = get_nonempty(p, v, "host", &j->host);
        } else if (!strcmp(key, "schedule")) {
            j->has_schedule = true;
            rc = parse_schedule(p, v, &j->schedule, &j->cron);
        } else if (!strcmp(key, "timezone")) {
            rc = parse_tz(p, v, &j->timezone);
        } else if (!strcmp(key, "repositories")) {
            rc = parse_targets(p, v, j);
        } else if (!strcmp(key, "retention")) {
            rc = parse_retention(p, v, &j->retention);
        } else if (!strcmp(key, "tags")) {
            rc = get_list(p, v, "tags", &j->tags, &j->n_tags);
        } else if (!strcmp(key, "hooks")) {
            rc = parse_hooks(p, v, j);
        } else if (!strcmp(key, "limits")) {
            rc = parse_limits(p, v, &j->limits);
        } else if (!strcmp(key, "run_on")) {
            rc = get_list(p, v, "run_on", &j->run_on, &j->n_run_on);
        } else if (!strcmp(key, "fan_out")) {
            char *fo = NULL;
            if (!(rc = get_str(p, v, "fan_out", &fo))) {
                if (!strcmp(fo, "copy"))
                    j->fan_out_copy = true;
                else if (strcmp(fo, "backup") != 0)
                    rc = at_err(p, v, COFFER_EINVAL,
                                "fan_out: \"%s\": expected backup (into each repository) or "
                                "copy (back up once, then copy)",
                                fo);
            }
            free(fo);
        } else if (!strcmp(key, "kubernetes")) {
            rc = parse_k8s_job(p, v, j);
        }
        if (rc)
            return rc;
    }
    if (!j->name)
        return at_err(p, n, COFFER_EINVAL, "job: name is required");
    for (size_t i = 0; i + 1 < p->cfg->n_jobs; i++)
        if (!strcmp(p->cfg->jobs[i].name, j->name))
            return at_err(p, n, COFFER_EINVAL, "job \"%s\" is defined twice (first at %s:%d)",
                          j->name, p->cfg->jobs[i].loc.file, p->cfg->jobs[i].loc.line);
    if (!j->type)
        return at_err(p, n, COFFER_EINVAL,
                      "job \"%s\": type is required (files, command, postgres, mysql, redis, "
                      "ldap or k8s)",
                      j->name);
    if (!j->n_targets)
        return at_err(p, n, COFFER_EINVAL,
                      "job \"%s\": repositories is required (the names of repositories to "
                      "back up into)",
                      j->name);
    bool files = !strcmp(j->type, "files"), cmd = !strcmp(j->type, "command");
    if (files && !j->n_paths)
        return at_err(p, n, COFFER_EINVAL, "job \"%s\": type files needs paths", j->name);
    if (!files && paths_n)
        return at_err(p, paths_n, COFFER_EINVAL, "job \"%s\": paths is only for type files",
                      j->name);
    if (cmd && !j->n_command)
        return at_err(p, n, COFFER_EINVAL, "job \"%s\": type command needs command", j->name);
    if (!cmd && cmd_n)
        return at_err(p, cmd_n, COFFER_EINVAL, "job \"%s\": command is only for type command",
                      j->name);
    if ((files || cmd) && opt_n)
        return at_err(p, opt_n, COFFER_EINVAL,
                      "job \"%s\": options is for service and k8s jobs; type %s has none", j->name,
                      j->type);
    (void)type_n;
    if (cmd && !j->filename && asprintf(&j->filename, "%s.out", j->name) < 0) {
        j->filename = NULL;
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    return 0;
}

static int parse_copy(pctx_t *p, const node_t *n)
{
    static const char *const keys[] = {"name",     "from",     "to",     "every",
                                       "schedule", "timezone", "run_on", NULL};
    int rc = check_map(p, n, "copy task", keys);
    if (rc)
        return rc;
    cfg_copy_t *c = grow(&p->cfg->copies, &p->cfg->n_copies, sizeof *c);
    if (!c)
        return grow_err(p, n);
    c->loc = loc_of(p, n);
    FOR_PAIRS(p, n, k_, key, v)
    {
        if (!strcmp(key, "name"))
            rc = get_name(p, v, "copy task name", &c->name);
        else if (!strcmp(key, "from"))
            rc = get_nonempty(p, v, "from", &c->from_name);
        else if (!strcmp(key, "to"))
            rc = get_nonempty(p, v, "to", &c->to_name);
        else if (!strcmp(key, "every"))
            rc = get_seconds(p, v, "every", 60, 366 * 86400, &c->every_s);
        else if (!strcmp(key, "schedule")) {
            c->has_schedule = true;
            rc = parse_schedule(p, v, &c->schedule, &c->cron);
        } else if (!strcmp(key, "timezone"))
            rc = parse_tz(p, v, &c->timezone);
        else if (!strcmp(key, "run_on"))
            rc = get_list(p, v, "run_on", &c->run_on, &c->n_run_on);
        if (rc)
            return rc;
    }
    if (!c->from_name || !c->to_name)
        return at_err(p, n, COFFER_EINVAL,
                      "copy task: from and to (repository names) are "
                      "required");
    if ((c->every_s > 0) == c->has_schedule)
        return at_err(p, n, COFFER_EINVAL,
                      "copy task: give exactly one of every (e.g. every: 10m) and schedule");
    if (!c->name && asprintf(&c->name, "%s-to-%s", c->from_name, c->to_name) < 0) {
        c->name = NULL;
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    return 0;
}

static int parse_level(pctx_t *p, const node_t *v, int *out)
{
    char *s = NULL;
    int rc = get_str(p, v, "level", &s);
    if (rc)
        return rc;
    if (!strcmp(s, "info"))
        *out = CFG_LEVEL_INFO;
    else if (!strcmp(s, "warning"))
        *out = CFG_LEVEL_WARNING;
    else if (!strcmp(s, "error"))
        *out = CFG_LEVEL_ERROR;
    else
        rc = at_err(p, v, COFFER_EINVAL, "level: expected error, warning or info, got \"%s\"", s);
    free(s);
    return rc;
}

static int parse_notify(pctx_t *p, const node_t *n)
{
    static const char *const keys[] = {
        "name",     "type",          "level",    "jobs",     "timeout", "retries",
        "url",      "headers",       "smtp_url", "starttls", "ca_file", "username",
        "password", "password_file", "from",     "to",       "subject", NULL};
    int rc = check_map(p, n, "notification", keys);
    if (rc)
        return rc;
    cfg_notify_t *t = grow(&p->cfg->notify, &p->cfg->n_notify, sizeof *t);
    if (!t)
        return grow_err(p, n);
    t->loc = loc_of(p, n);
    t->level = CFG_LEVEL_ERROR;
    t->timeout_s = 10;
    t->retries = 3;
    const node_t *pw = NULL, *pwf = NULL;
    char *pw_file = NULL;
    FOR_PAIRS(p, n, k_, key, v)
    {
        if (!strcmp(key, "name"))
            rc = get_name(p, v, "notification name", &t->name);
        else if (!strcmp(key, "type")) {
            char *s = NULL;
            if (!(rc = get_str(p, v, "type", &s))) {
                if (!strcmp(s, "webhook"))
                    t->kind = CFG_NOTIFY_WEBHOOK;
                else if (!strcmp(s, "email"))
                    t->kind = CFG_NOTIFY_EMAIL;
                else
                    rc = at_err(p, v, COFFER_EINVAL, "type: expected webhook or email, got \"%s\"",
                                s);
            }
            free(s);
        } else if (!strcmp(key, "level"))
            rc = parse_level(p, v, &t->level);
        else if (!strcmp(key, "jobs"))
            rc = get_list(p, v, "jobs", &t->jobs, &t->n_jobs);
        else if (!strcmp(key, "timeout"))
            rc = get_seconds(p, v, "timeout", 1, 600, &t->timeout_s);
        else if (!strcmp(key, "retries"))
            rc = get_int(p, v, "retries", 0, 20, &t->retries);
        else if (!strcmp(key, "url"))
            rc = get_nonempty(p, v, "url", &t->url);
        else if (!strcmp(key, "headers"))
            rc = get_kv_map(p, v, "headers", true, false, &t->headers, &t->n_headers);
        else if (!strcmp(key, "smtp_url"))
            rc = get_nonempty(p, v, "smtp_url", &t->smtp_url);
        else if (!strcmp(key, "starttls"))
            rc = get_bool(p, v, "starttls", &t->starttls);
        else if (!strcmp(key, "ca_file"))
            rc = get_nonempty(p, v, "ca_file", &t->ca_file);
        else if (!strcmp(key, "username"))
            rc = get_nonempty(p, v, "username", &t->username);
        else if (!strcmp(key, "password"))
            rc = get_str(p, (pw = v), "password", &t->password);
        else if (!strcmp(key, "password_file"))
            rc = get_nonempty(p, (pwf = v), "password_file", &pw_file);
        else if (!strcmp(key, "from"))
            rc = get_nonempty(p, v, "from", &t->from);
        else if (!strcmp(key, "to"))
            rc = get_list(p, v, "to", &t->to, &t->n_to);
        else if (!strcmp(key, "subject"))
            rc = get_str(p, v, "subject", &t->subject);
        if (rc) {
            free(pw_file);
            return rc;
        }
    }
    if (pwf) {
        rc = pw ? at_err(p, pwf, COFFER_EINVAL, "give password or password_file, not both")
                : read_secret(p, pwf, "password_file", pw_file, &t->password);
        free(pw_file);
        if (rc)
            return rc;
    }
    if (!t->kind)
        return at_err(p, n, COFFER_EINVAL, "notification: type is required (webhook or email)");
    /* these go into mail and HTTP headers: one line each */
    const char *hdr[] = {t->from, t->subject, t->username};
    for (size_t i = 0; i < 3; i++)
        if (hdr[i] && strpbrk(hdr[i], "\r\n"))
            return at_err(p, n, COFFER_EINVAL,
                          "notification: from, subject and username must "
                          "be one line");
    for (size_t i = 0; i < t->n_to; i++)
        if (strpbrk(t->to[i], "\r\n,"))
            return at_err(p, n, COFFER_EINVAL, "notification: each to: entry is one address");
    for (size_t i = 0; i < t->n_headers; i++)
        if (strpbrk(t->headers[i].key, "\r\n:") || strpbrk(t->headers[i].value, "\r\n"))
            return at_err(p, n, COFFER_EINVAL, "notification: header %s must be one line",
                          t->headers[i].key);
    if (t->kind == CFG_NOTIFY_WEBHOOK) {
        if (!t->url)
            return at_err(p, n, COFFER_EINVAL, "webhook notification: url is required");
        if (strncmp(t->url, "http://", 7) && strncmp(t->url, "https://", 8))
            return at_err(p, n, COFFER_EINVAL, "webhook url must start with http:// or https://");
        if (t->smtp_url || t->n_to || t->from)
            return at_err(p, n, COFFER_EINVAL,
                          "webhook notification: smtp_url, from and to are for type email");
    } else {
        if (!t->smtp_url || !t->from || !t->n_to)
            return at_err(p, n, COFFER_EINVAL,
                          "email notification: smtp_url, from and to are required");
        if (strncmp(t->smtp_url, "smtp://", 7) && strncmp(t->smtp_url, "smtps://", 8))
            return at_err(p, n, COFFER_EINVAL,
                          "smtp_url must start with smtp:// (STARTTLS with starttls: true) or "
                          "smtps:// (TLS)");
        if (t->url || t->n_headers)
            return at_err(p, n, COFFER_EINVAL,
                          "email notification: url and headers are for "
                          "type webhook");
    }
    if (!t->name && !(t->name = strdup(t->kind == CFG_NOTIFY_WEBHOOK ? "webhook" : "email")))
        return err_set(COFFER_ENOMEM, "out of memory");
    return 0;
}

static int parse_server(pctx_t *p, const node_t *n)
{
    static const char *const keys[] = {
        "listen",         "pushgateway", "textfile_dir",     "state_file",
        "max_concurrent", "missed",      "repository_stats", NULL};
    int rc = check_map(p, n, "server", keys);
    if (rc)
        return rc;
    if (p->have_server)
        return at_err(p, n, COFFER_EINVAL, "server: defined twice (give it in one file)");
    p->have_server = true;
    cfg_server_t *s = &p->cfg->server;
    FOR_PAIRS(p, n, k_, key, v)
    {
        if (!strcmp(key, "listen")) {
            rc = get_nonempty(p, v, "listen", &s->listen);
            if (!rc && !strrchr(s->listen, ':'))
                rc = at_err(p, v, COFFER_EINVAL, "listen: expected HOST:PORT, e.g. 0.0.0.0:9100");
        } else if (!strcmp(key, "pushgateway")) {
            rc = get_nonempty(p, v, "pushgateway", &s->pushgateway);
        } else if (!strcmp(key, "textfile_dir")) {
            rc = get_nonempty(p, v, "textfile_dir", &s->textfile_dir);
        } else if (!strcmp(key, "state_file")) {
            rc = get_nonempty(p, v, "state_file", &s->state_file);
        } else if (!strcmp(key, "max_concurrent")) {
            rc = get_int(p, v, "max_concurrent", 1, 64, &s->max_concurrent);
        } else if (!strcmp(key, "repository_stats")) {
            rc = get_bool(p, v, "repository_stats", &s->repo_stats);
        } else {
            char *m = NULL;
            if (!(rc = get_str(p, v, "missed", &m))) {
                if (!strcmp(m, "run-once"))
                    s->run_missed = true;
                else if (!strcmp(m, "skip"))
                    s->run_missed = false;
                else
                    rc = at_err(p, v, COFFER_EINVAL, "missed: expected run-once or skip");
            }
            free(m);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- kubernetes: (manifests) ------------------------------------------------------------ */

static bool valid_k8s_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (!n || n > max || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-' || *s == '.'))
            return false;
    return true;
}

/* A Kubernetes object name (Secret, claim, ServiceAccount, namespace...). */
static int get_k8s_name(pctx_t *p, const node_t *n, const char *what, char **out)
{
    int rc = get_nonempty(p, n, what, out);
    if (!rc && !valid_k8s_name(*out, 253))
        rc = at_err(p, n, COFFER_EINVAL,
                    "%s: \"%s\" is not a Kubernetes name (lower-case letters, digits, '-' and "
                    "'.', starting and ending with a letter or digit)",
                    what, *out);
    return rc;
}

static int get_path(pctx_t *p, const node_t *n, const char *what, char **out)
{
    int rc = get_nonempty(p, n, what, out);
    if (!rc && (*out)[0] != '/')
        rc = at_err(p, n, COFFER_EINVAL, "%s: \"%s\" must be an absolute path", what, *out);
    return rc;
}

/* {secret: NAME, key: KEY} */
static int get_secret_ref(pctx_t *p, const node_t *n, const char *what, char **secret, char **key)
{
    static const char *const keys[] = {"secret", "key", NULL};
    int rc = check_map(p, n, what, keys);
    if (rc)
        return rc;
    FOR_PAIRS(p, n, k_, k, v)
    {
        rc = !strcmp(k, "secret") ? get_k8s_name(p, v, "secret", secret)
                                  : get_nonempty(p, v, "key", key);
        if (rc)
            return rc;
    }
    if (!*secret || !*key)
        return at_err(p, n, COFFER_EINVAL,
                      "%s: give the Secret and its key, e.g. {secret: coffer-repo, key: password}",
                      what);
    return 0;
}

static int get_k8s_names(pctx_t *p, const node_t *n, const char *what, char ***arr, size_t *cnt)
{
    size_t before = *cnt;
    int rc = get_list(p, n, what, arr, cnt);
    for (size_t i = before; i < *cnt && !rc; i++)
        if (!valid_k8s_name((*arr)[i], 253))
            rc =
                at_err(p, n, COFFER_EINVAL, "%s: \"%s\" is not a Kubernetes name", what, (*arr)[i]);
    return rc;
}

static int parse_k8s_resources(pctx_t *p, const node_t *n, cfg_k8s_pod_t *o)
{
    static const char *const keys[] = {"requests", "limits", NULL};
    int rc = check_map(p, n, "kubernetes.resources", keys);
    if (rc)
        return rc;
    o->has_resources = true;
    FOR_PAIRS(p, n, k_, k, v)
    {
        bool req = !strcmp(k, "requests");
        cfg_kv_t **arr = req ? &o->requests : &o->limits;
        size_t *cnt = req ? &o->n_requests : &o->n_limits;
        if ((rc = get_kv_map(p, v, req ? "resources.requests" : "resources.limits", false, false,
                             arr, cnt)))
            return rc;
        for (size_t i = 0; i < *cnt; i++)
            if (!*(*arr)[i].value)
                return at_err(p, v, COFFER_EINVAL,
                              "resources: %s needs a quantity (e.g. cpu: 100m, memory: 256Mi)",
                              (*arr)[i].key);
    }
    return 0;
}

static int parse_k8s_tolerations(pctx_t *p, const node_t *n, cfg_k8s_pod_t *o)
{
    static const char *const keys[] = {"key", "operator", "value", "effect", "seconds", NULL};
    int rc;
    if ((rc = visit(p, n)))
        return rc;
    if (n->type != YAML_SEQUENCE_NODE)
        return at_err(p, n, COFFER_EINVAL,
                      "tolerations: expected a list of {key, operator, value, effect}, got %s",
                      type_name(n));
    o->has_tolerations = true;
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
        node_t *it = node_get(p, *i);
        if ((rc = check_map(p, it, "toleration", keys)))
            return rc;
        cfg_k8s_toleration_t *t = grow(&o->tolerations, &o->n_tolerations, sizeof *t);
        if (!t)
            return grow_err(p, n);
        FOR_PAIRS(p, it, k_, k, v)
        {
            if (!strcmp(k, "key"))
                rc = get_nonempty(p, v, "toleration key", &t->key);
            else if (!strcmp(k, "value"))
                rc = get_str(p, v, "toleration value", &t->value);
            else if (!strcmp(k, "seconds")) {
                t->has_seconds = true;
                rc = get_long(p, v, "toleration seconds", 0, 1L << 40, &t->seconds);
            } else if (!strcmp(k, "operator")) {
                if (!(rc = get_str(p, v, "operator", &t->op)) && strcmp(t->op, "Exists") &&
                    strcmp(t->op, "Equal"))
                    rc = at_err(p, v, COFFER_EINVAL,
                                "toleration operator: expected Exists or Equal, got \"%s\"", t->op);
            } else {
                if (!(rc = get_str(p, v, "effect", &t->effect)) &&
                    strcmp(t->effect, "NoSchedule") && strcmp(t->effect, "PreferNoSchedule") &&
                    strcmp(t->effect, "NoExecute"))
                    rc = at_err(p, v, COFFER_EINVAL,
                                "toleration effect: expected NoSchedule, PreferNoSchedule or "
                                "NoExecute, got \"%s\"",
                                t->effect);
            }
            if (rc)
                return rc;
        }
        if (t->op && !strcmp(t->op, "Exists") && t->value && *t->value)
            return at_err(p, it, COFFER_EINVAL, "toleration: operator Exists takes no value");
    }
    return 0;
}

/* The keys shared by the top-level section and a job's: sets rc, returns true when k was one. */
static bool parse_k8s_pod_key(pctx_t *p, const char *k, const node_t *v, cfg_k8s_pod_t *o, int *rc)
{
    if (!strcmp(k, "node_selector")) {
        *rc =
            get_kv_map(p, v, "node_selector", false, false, &o->node_selector, &o->n_node_selector);
    } else if (!strcmp(k, "resources")) {
        *rc = parse_k8s_resources(p, v, o);
    } else if (!strcmp(k, "tolerations")) {
        *rc = parse_k8s_tolerations(p, v, o);
    } else if (!strcmp(k, "env_from")) {
        *rc = get_k8s_names(p, v, "env_from (Secret names)", &o->env_from, &o->n_env_from);
    } else if (!strcmp(k, "env")) {
        if ((*rc = check_map(p, v, "kubernetes.env", NULL)))
            return true;
        FOR_PAIRS(p, v, ek_, name, ev)
        {
            cfg_k8s_secret_env_t *e = grow(&o->env, &o->n_env, sizeof *e);
            if (!e) {
                *rc = grow_err(p, v);
                return true;
            }
            if (!(e->name = strdup(name))) {
                *rc = err_set(COFFER_ENOMEM, "out of memory");
                return true;
            }
            char what[160];
            snprintf(what, sizeof what, "kubernetes.env.%.100s", name);
            if ((*rc = get_secret_ref(p, ev, what, &e->secret, &e->key)))
                return true;
        }
    } else if (!strcmp(k, "backoff_limit")) {
        *rc = get_long(p, v, k, 0, 100, &o->backoff_limit);
    } else if (!strcmp(k, "successful_jobs_history")) {
        *rc = get_long(p, v, k, 0, 100, &o->successful_history);
    } else if (!strcmp(k, "failed_jobs_history")) {
        *rc = get_long(p, v, k, 0, 100, &o->failed_history);
    } else if (!strcmp(k, "active_deadline")) {
        int s = 0;
        *rc = get_seconds(p, v, k, 1, 366 * 86400, &s);
        o->active_deadline_s = s;
    } else if (!strcmp(k, "starting_deadline")) {
        int s = 0;
        *rc = get_seconds(p, v, k, 10, 366 * 86400, &s);
        o->starting_deadline_s = s;
    } else {
        return false;
    }
    return true;
}

static void k8s_pod_init(cfg_k8s_pod_t *o)
{
    o->backoff_limit = o->successful_history = o->failed_history = -1;
    o->active_deadline_s = o->starting_deadline_s = -1;
}

/* claim: NAME or host_path: /PATH, read_only; with_mount: also volume: NAME and path: /MOUNT */
static int parse_k8s_volume(pctx_t *p, const node_t *n, cfg_k8s_volume_t *vol, bool in_job)
{
    static const char *const top_keys[] = {"claim", "host_path", "read_only", NULL};
    static const char *const job_keys[] = {"volume", "claim",     "host_path",
                                           "path",   "read_only", NULL};
    int rc = check_map(p, n, in_job ? "kubernetes.volumes entry" : "kubernetes volume",
                       in_job ? job_keys : top_keys);
    if (rc)
        return rc;
    vol->loc = loc_of(p, n);
    vol->read_only = true;
    FOR_PAIRS(p, n, k_, k, v)
    {
        if (!strcmp(k, "volume"))
            rc = get_nonempty(p, v, "volume", &vol->name);
        else if (!strcmp(k, "claim"))
            rc = get_k8s_name(p, v, "claim", &vol->claim);
        else if (!strcmp(k, "host_path"))
            rc = get_path(p, v, "host_path", &vol->host_path);
        else if (!strcmp(k, "path"))
            rc = get_path(p, v, "path (mount path)", &vol->mount);
        else
            rc = get_bool(p, v, "read_only", &vol->read_only);
        if (rc)
            return rc;
    }
    int kinds = !!vol->claim + !!vol->host_path + (in_job && vol->name);
    if (kinds != 1)
        return at_err(p, n, COFFER_EINVAL,
                      in_job ? "kubernetes.volumes entry: give exactly one of volume (a name "
                               "under the top-level kubernetes.volumes), claim (a "
                               "PersistentVolumeClaim) and host_path"
                             : "kubernetes volume: give exactly one of claim (a "
                               "PersistentVolumeClaim) and host_path");
    if (in_job && !vol->mount)
        return at_err(p, n, COFFER_EINVAL,
                      "kubernetes.volumes entry: path (where the container sees it) is required");
    return 0;
}

static int parse_k8s_top(pctx_t *p, const node_t *n)
{
    static const char *const keys[] = {"namespace",
                                       "image",
                                       "image_pull_policy",
                                       "service_account",
                                       "name_prefix",
                                       "labels",
                                       "repositories",
                                       "volumes",
                                       "node_selector",
                                       "resources",
                                       "tolerations",
                                       "env",
                                       "env_from",
                                       "backoff_limit",
                                       "successful_jobs_history",
                                       "failed_jobs_history",
                                       "active_deadline",
                                       "starting_deadline",
                                       NULL};
    static const char *const rkeys[] = {"password", "env_from", NULL};
    int rc = check_map(p, n, "kubernetes", keys);
    if (rc)
        return rc;
    cfg_k8s_t *k8 = &p->cfg->k8s;
    if (k8->set)
        return at_err(p, n, COFFER_EINVAL, "kubernetes: defined twice (give it in one file)");
    k8->set = true;
    k8->loc = loc_of(p, n);
    bool saved = p->in_k8s;
    p->in_k8s = true;
    FOR_PAIRS(p, n, k_, k, v)
    {
        if (parse_k8s_pod_key(p, k, v, &k8->pod, &rc)) {
            /* done */
        } else if (!strcmp(k, "namespace")) {
            rc = get_k8s_name(p, v, "namespace", &k8->namespace_);
            if (!rc && (strlen(k8->namespace_) > 63 || strchr(k8->namespace_, '.')))
                rc = at_err(p, v, COFFER_EINVAL,
                            "namespace: \"%s\" is not a namespace name (up to 63 lower-case "
                            "letters, digits and '-')",
                            k8->namespace_);
        } else if (!strcmp(k, "image")) {
            rc = get_nonempty(p, v, "image", &k8->image);
        } else if (!strcmp(k, "image_pull_policy")) {
            if (!(rc = get_str(p, v, k, &k8->pull_policy)) && strcmp(k8->pull_policy, "Always") &&
                strcmp(k8->pull_policy, "IfNotPresent") && strcmp(k8->pull_policy, "Never"))
                rc = at_err(p, v, COFFER_EINVAL,
                            "image_pull_policy: expected Always, IfNotPresent or Never, got "
                            "\"%s\"",
                            k8->pull_policy);
        } else if (!strcmp(k, "service_account")) {
            rc = get_k8s_name(p, v, "service_account", &k8->service_account);
        } else if (!strcmp(k, "name_prefix")) {
            rc = get_k8s_name(p, v, "name_prefix", &k8->name_prefix);
            if (!rc && strlen(k8->name_prefix) > 20)
                rc = at_err(p, v, COFFER_EINVAL, "name_prefix: at most 20 characters");
        } else if (!strcmp(k, "labels")) {
            rc = get_kv_map(p, v, "labels", false, false, &k8->labels, &k8->n_labels);
        } else if (!strcmp(k, "repositories")) {
            if ((rc = check_map(p, v, "kubernetes.repositories", NULL)))
                break;
            FOR_PAIRS(p, v, rk_, rname, rv)
            {
                char where[160];
                snprintf(where, sizeof where, "kubernetes.repositories.%.100s", rname);
                if ((rc = check_map(p, rv, where, rkeys)))
                    break;
                cfg_k8s_repo_t *r = grow(&k8->repos, &k8->n_repos, sizeof *r);
                if (!r) {
                    rc = grow_err(p, v);
                    break;
                }
                r->loc = loc_of(p, rk_);
                if (!(r->repo = strdup(rname))) {
                    rc = err_set(COFFER_ENOMEM, "out of memory");
                    break;
                }
                FOR_PAIRS(p, rv, rrk_, rk, rrv)
                {
                    if (!rc && !strcmp(rk, "password")) {
                        snprintf(where, sizeof where, "kubernetes.repositories.%.100s.password",
                                 rname);
                        rc = get_secret_ref(p, rrv, where, &r->secret, &r->key);
                    } else if (!rc) {
                        rc = get_k8s_names(p, rrv, "env_from (Secret names)", &r->env_from,
                                           &r->n_env_from);
                    }
                }
                if (!rc && !r->secret)
                    rc = at_err(p, rv, COFFER_EINVAL,
                                "%s: password is required: the Secret key holding the "
                                "repository password, e.g. password: {secret: coffer-repo, key: "
                                "password}",
                                where);
                if (rc)
                    break;
            }
        } else if (!strcmp(k, "volumes")) {
            if ((rc = check_map(p, v, "kubernetes.volumes", NULL)))
                break;
            FOR_PAIRS(p, v, vk_, vname, vv)
            {
                if (!rc && !valid_k8s_name(vname, 63))
                    rc = at_err(p, vk_, COFFER_EINVAL,
                                "kubernetes.volumes: \"%s\" is not a volume name (lower-case "
                                "letters, digits and '-')",
                                vname);
                cfg_k8s_volume_t *vol = rc ? NULL : grow(&k8->volumes, &k8->n_volumes, sizeof *vol);
                if (!rc && !vol)
                    rc = grow_err(p, v);
                if (!rc && !(vol->name = strdup(vname)))
                    rc = err_set(COFFER_ENOMEM, "out of memory");
                if (!rc)
                    rc = parse_k8s_volume(p, vv, vol, false);
            }
        }
        if (rc)
            break;
    }
    p->in_k8s = saved;
    return rc;
}

static int parse_k8s_job(pctx_t *p, const node_t *n, cfg_job_t *j)
{
    static const char *const keys[] = {"volumes",
                                       "node",
                                       "run_as_user",
                                       "node_selector",
                                       "resources",
                                       "tolerations",
                                       "env",
                                       "env_from",
                                       "backoff_limit",
                                       "successful_jobs_history",
                                       "failed_jobs_history",
                                       "active_deadline",
                                       "starting_deadline",
                                       NULL};
    int rc = check_map(p, n, "job kubernetes", keys);
    if (rc)
        return rc;
    cfg_k8s_job_t *kj = &j->k8s;
    kj->set = true;
    kj->loc = loc_of(p, n);
    bool saved = p->in_k8s;
    p->in_k8s = true;
    FOR_PAIRS(p, n, k_, k, v)
    {
        if (parse_k8s_pod_key(p, k, v, &kj->pod, &rc)) {
            /* done */
        } else if (!strcmp(k, "node")) {
            rc = get_nonempty(p, v, "node", &kj->node);
        } else if (!strcmp(k, "run_as_user")) {
            rc = get_long(p, v, "run_as_user", 0, 2147483647L, &kj->run_as_user);
        } else {
            if ((rc = visit(p, v)))
                break;
            if (v->type != YAML_SEQUENCE_NODE) {
                rc = at_err(p, v, COFFER_EINVAL,
                            "kubernetes.volumes: expected a list of {volume: NAME, path: /MOUNT} "
                            "(or claim:/host_path: instead of volume:), got %s",
                            type_name(v));
                break;
            }
            for (yaml_node_item_t *i = v->data.sequence.items.start;
                 i < v->data.sequence.items.top && !rc; i++) {
                cfg_k8s_volume_t *vol = grow(&kj->mounts, &kj->n_mounts, sizeof *vol);
                rc = vol ? parse_k8s_volume(p, node_get(p, *i), vol, true) : grow_err(p, v);
            }
        }
        if (rc)
            break;
    }
    p->in_k8s = saved;
    return rc;
}

/* ---- files and includes ----------------------------------------------------------------- */

static int load_text(cfg_t *c, const char *name, const char *text, size_t len, const char *dir,
                     int depth, size_t *nodes, bool *have_server, bool no_files);

static int load_file(cfg_t *c, const char *path, int depth, size_t *nodes, bool *have_server,
                     const pctx_t *from, const node_t *from_node)
{
    if (depth > CFG_MAX_INCLUDE_DEPTH)
        return at_err(from, from_node, COFFER_ELIMIT,
                      "includes nest deeper than %d levels (an include loop?)",
                      CFG_MAX_INCLUDE_DEPTH);
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (from)
            return at_err(from, from_node, e == ENOENT ? COFFER_ENOENT : COFFER_EIO,
                          "cannot read included file %s: %s", path, strerror(e));
        return err_set(e == ENOENT ? COFFER_ENOENT : COFFER_EIO,
                       "cannot read config file %s: %s (give an existing file with --config)", path,
                       strerror(e));
    }
    buf_t b;
    buf_init(&b);
    int rc = 0;
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + got > CFG_MAX_FILE_SIZE) {
            rc = err_set(COFFER_ELIMIT, "config file %s is larger than %u bytes", path,
                         CFG_MAX_FILE_SIZE);
            break;
        }
        if ((rc = buf_append(&b, chunk, got)))
            break;
    }
    if (!rc && ferror(f))
        rc = err_set(COFFER_EIO, "cannot read config file %s", path);
    fclose(f);
    if (!rc) {
        char *dcopy = strdup(path);
        if (!dcopy) {
            rc = err_set(COFFER_ENOMEM, "out of memory");
        } else {
            char *slash = strrchr(dcopy, '/');
            const char *dir = slash ? (slash == dcopy ? "/" : (*slash = 0, dcopy)) : ".";
            rc = load_text(c, path, b.data ? (char *)b.data : "", b.len, dir, depth, nodes,
                           have_server, false);
            free(dcopy);
        }
    }
    buf_release(&b);
    return rc;
}

static int do_includes(pctx_t *p, const node_t *n)
{
    char **pats = NULL;
    size_t np = 0;
    if (p->no_files)
        return at_err(p, n, COFFER_EINVAL, "include: reading files is disabled here");
    int rc = get_list(p, n, "include", &pats, &np);
    for (size_t i = 0; i < np && !rc; i++) {
        char full[PATH_MAX];
        if (pats[i][0] == '/')
            snprintf(full, sizeof full, "%s", pats[i]);
        else
            snprintf(full, sizeof full, "%s/%s", p->dir, pats[i]);
        glob_t g;
        int gr = glob(full, GLOB_ERR, NULL, &g);
        if (gr == GLOB_NOMATCH) {
            /* a glob that matches nothing is fine (an empty conf.d); a plain name is not */
            if (!strpbrk(pats[i], "*?["))
                rc = at_err(p, n, COFFER_ENOENT, "include: %s does not exist", full);
            continue;
        }
        if (gr != 0) {
            rc = at_err(p, n, COFFER_EIO, "include: cannot expand %s", full);
            continue;
        }
        for (size_t k = 0; k < g.gl_pathc && !rc; k++)
            rc = load_file(p->cfg, g.gl_pathv[k], p->depth + 1, p->nodes, &p->have_server, p, n);
        globfree(&g);
    }
    for (size_t i = 0; i < np; i++)
        free(pats[i]);
    free(pats);
    return rc;
}

/* The node as JSON with every scalar as its unsubstituted text (cfg_t.raw). */
static int raw_json(pctx_t *p, const node_t *n, int depth, json_t **out)
{
    int rc;
    if ((rc = visit(p, n)))
        return rc;
    if (depth > 64)
        return at_err(p, n, COFFER_ELIMIT, "nested deeper than 64 levels");
    json_t *j = NULL;
    if (n->type == YAML_SCALAR_NODE) {
        j = json_stringn((const char *)n->data.scalar.value, n->data.scalar.length);
        if (!j)
            return at_err(p, n, COFFER_EINVAL, "a value is not valid UTF-8");
    } else if (n->type == YAML_SEQUENCE_NODE) {
        j = json_array();
        for (yaml_node_item_t *i = n->data.sequence.items.start;
             j && i < n->data.sequence.items.top; i++) {
            json_t *e = NULL;
            if ((rc = raw_json(p, node_get(p, *i), depth + 1, &e))) {
                json_decref(j);
                return rc;
            }
            json_array_append_new(j, e);
        }
    } else if (n->type == YAML_MAPPING_NODE) {
        j = json_object();
        FOR_PAIRS(p, n, k_, key, v)
        {
            json_t *e = NULL;
            if (!j || k_->type != YAML_SCALAR_NODE)
                break;
            if ((rc = raw_json(p, v, depth + 1, &e))) {
                json_decref(j);
                return rc;
            }
            json_object_set_new(j, key, e);
        }
    } else {
        j = json_null();
    }
    if (!j)
        return err_set(COFFER_ENOMEM, "out of memory");
    *out = j;
    return 0;
}

/* Merge the top-level value v of key into cfg_t.raw (lists are concatenated over includes). */
static int raw_merge(pctx_t *p, const char *key, const node_t *v)
{
    json_t *j = NULL;
    int rc = raw_json(p, v, 0, &j);
    if (rc)
        return rc;
    json_t *have = json_object_get(p->cfg->raw, key);
    if (have && json_is_array(have) && json_is_array(j))
        json_array_extend(have, j);
    else if (have && json_is_object(have) && json_is_object(j))
        json_object_update(have, j);
    else
        json_object_set(p->cfg->raw, key, j);
    json_decref(j);
    return 0;
}

static int walk_top(pctx_t *p, const node_t *root)
{
    static const char *const keys[] = {"include",       "repositories", "jobs",       "copy",
                                       "notifications", "server",       "kubernetes", NULL};
    int rc = check_map(p, root, "the top level", keys);
    if (rc)
        return rc;
    FOR_PAIRS(p, root, k_, key, v)
    {
        if (!strcmp(key, "include")) {
            rc = do_includes(p, v);
        } else if (!strcmp(key, "repositories")) {
            if (!(rc = check_map(p, v, "repositories", NULL)))
                FOR_PAIRS(p, v, rk_, rname, rv)
                {
                    if (!rc)
                        rc = parse_repo(p, rk_, rv);
                    (void)rname;
                }
        } else if (!strcmp(key, "server")) {
            rc = parse_server(p, v);
        } else if (!strcmp(key, "kubernetes")) {
            rc = parse_k8s_top(p, v);
        } else {
            if ((rc = visit(p, v)))
                return rc;
            if (v->type != YAML_SEQUENCE_NODE)
                return at_err(p, v, COFFER_EINVAL, "%s: expected a list (- name: ...), got %s", key,
                              type_name(v));
            for (yaml_node_item_t *i = v->data.sequence.items.start;
                 i < v->data.sequence.items.top && !rc; i++) {
                node_t *it = node_get(p, *i);
                rc = !strcmp(key, "jobs")   ? parse_job(p, it)
                     : !strcmp(key, "copy") ? parse_copy(p, it)
                                            : parse_notify(p, it);
            }
        }
        if (!rc && p->cfg->raw && strcmp(key, "include"))
            rc = raw_merge(p, key, v);
        if (rc)
            return rc;
    }
    return 0;
}

static int load_text(cfg_t *c, const char *name, const char *text, size_t len, const char *dir,
                     int depth, size_t *nodes, bool *have_server, bool no_files)
{
    if (c->n_files >= CFG_MAX_FILES)
        return err_set(COFFER_ELIMIT, "more than %d config files (includes)", CFG_MAX_FILES);
    for (size_t i = 0; i < c->n_files; i++)
        if (!strcmp(c->files[i], name))
            return err_set(COFFER_EINVAL, "config file %s is included twice (an include loop?)",
                           name);
    char **nf = realloc(c->files, (c->n_files + 1) * sizeof *nf);
    if (!nf)
        return err_set(COFFER_ENOMEM, "out of memory");
    c->files = nf;
    if (!(c->files[c->n_files] = strdup(name)))
        return err_set(COFFER_ENOMEM, "out of memory");
    const char *fname = c->files[c->n_files++];

    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return err_set(COFFER_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = 0;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = err_set(COFFER_EINVAL, "%s:%zu:%zu: YAML syntax error: %s%s%s", fname,
                     parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                     parser.problem ? parser.problem : "unknown problem", parser.context ? " " : "",
                     parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return rc;
    }
    yaml_parser_delete(&parser);
    pctx_t p = {.cfg = c,
                .file = fname,
                .doc = &doc,
                .nodes = nodes,
                .depth = depth,
                .have_server = *have_server,
                .no_files = no_files,
                .lenient = c->raw != NULL};
    p.dir = strdup(dir);
    if (!p.dir) {
        yaml_document_delete(&doc);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    node_t *root = yaml_document_get_root_node(&doc);
    if (root) /* an empty file is an empty config */
        rc = walk_top(&p, root);
    *have_server = p.have_server;
    free(p.dir);
    yaml_document_delete(&doc);
    return rc;
}

static int resolve_repo(const cfg_t *c, const char *name, const cfg_loc_t *loc, const char *what,
                        size_t *out)
{
    for (size_t i = 0; i < c->n_repos; i++)
        if (!strcmp(c->repos[i].name, name)) {
            *out = i;
            return 0;
        }
    char list[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < c->n_repos; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", c->repos[i].name);
        if (w > 0 && (size_t)w < sizeof list - used)
            used += (size_t)w;
    }
    return err_set(COFFER_EINVAL,
                   "%s:%d:%d: %s: repository \"%s\" is not defined under repositories: (%s%s)",
                   loc->file, loc->line, loc->col, what, name,
                   c->n_repos ? "defined: " : "none are defined", list);
}

static int resolve(cfg_t *c)
{
    int rc;
    for (size_t i = 0; i < c->n_jobs; i++) {
        cfg_job_t *j = &c->jobs[i];
        for (size_t t = 0; t < j->n_targets; t++) {
            if ((rc = resolve_repo(c, j->targets[t].repo_name, &j->targets[t].loc, j->name,
                                   &j->targets[t].repo)))
                return rc;
            for (size_t u = 0; u < t; u++)
                if (j->targets[u].repo == j->targets[t].repo)
                    return err_set(COFFER_EINVAL,
                                   "%s:%d:%d: job \"%s\": repository \"%s\" is "
                                   "listed twice",
                                   j->targets[t].loc.file, j->targets[t].loc.line,
                                   j->targets[t].loc.col, j->name, j->targets[t].repo_name);
        }
    }
    for (size_t i = 0; i < c->n_copies; i++) {
        cfg_copy_t *k = &c->copies[i];
        if ((rc = resolve_repo(c, k->from_name, &k->loc, "copy from", &k->from)) ||
            (rc = resolve_repo(c, k->to_name, &k->loc, "copy to", &k->to)))
            return rc;
        if (k->from == k->to)
            return err_set(COFFER_EINVAL,
                           "%s:%d:%d: copy task \"%s\": from and to are the "
                           "same repository",
                           k->loc.file, k->loc.line, k->loc.col, k->name);
    }
    for (size_t i = 0; i < c->n_notify; i++)
        for (size_t k = 0; k < c->notify[i].n_jobs; k++)
            if (!cfg_find_job(c, c->notify[i].jobs[k]))
                return err_set(COFFER_EINVAL,
                               "%s:%d:%d: notification \"%s\": job \"%s\" is "
                               "not defined",
                               c->notify[i].loc.file, c->notify[i].loc.line, c->notify[i].loc.col,
                               c->notify[i].name, c->notify[i].jobs[k]);
    for (size_t i = 0; i < c->k8s.n_repos; i++) {
        const cfg_k8s_repo_t *r = &c->k8s.repos[i];
        size_t idx;
        if ((rc = resolve_repo(c, r->repo, &r->loc, "kubernetes.repositories", &idx)))
            return rc;
    }
    for (size_t i = 0; i < c->n_jobs; i++) {
        const cfg_job_t *j = &c->jobs[i];
        for (size_t m = 0; m < j->k8s.n_mounts; m++) {
            const cfg_k8s_volume_t *v = &j->k8s.mounts[m];
            bool found = !v->name;
            for (size_t k = 0; k < c->k8s.n_volumes && !found; k++)
                found = !strcmp(c->k8s.volumes[k].name, v->name);
            if (!found) {
                char list[256] = "";
                size_t used = 0;
                for (size_t k = 0; k < c->k8s.n_volumes; k++) {
                    int w = snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "",
                                     c->k8s.volumes[k].name);
                    if (w > 0 && (size_t)w < sizeof list - used)
                        used += (size_t)w;
                }
                return err_set(COFFER_EINVAL,
                               "%s:%d:%d: job \"%s\": volume \"%s\" is not defined under "
                               "kubernetes.volumes (%s%s)",
                               v->loc.file, v->loc.line, v->loc.col, j->name, v->name,
                               c->k8s.n_volumes ? "defined: " : "none are defined", list);
            }
            for (size_t k = 0; k < m; k++)
                if (!strcmp(j->k8s.mounts[k].mount, v->mount))
                    return err_set(COFFER_EINVAL,
                                   "%s:%d:%d: job \"%s\": two volumes are mounted at %s",
                                   v->loc.file, v->loc.line, v->loc.col, j->name, v->mount);
        }
    }
    if (!c->server.max_concurrent)
        c->server.max_concurrent = 1;
    return 0;
}

static int load_common(cfg_t *c, int rc, cfg_t **out)
{
    if (!rc)
        rc = resolve(c);
    if (rc) {
        cfg_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static cfg_t *cfg_new(void)
{
    cfg_t *c = calloc(1, sizeof *c);
    if (c) {
        c->server.run_missed = true;
        c->server.repo_stats = true;
        k8s_pod_init(&c->k8s.pod);
    }
    return c;
}

int cfg_load(const char *path, cfg_t **out)
{
    return cfg_load_opts(path, NULL, out);
}

int cfg_load_opts(const char *path, const cfg_load_opts_t *o, cfg_t **out)
{
    cfg_t *c = cfg_new();
    if (!c)
        return err_set(COFFER_ENOMEM, "out of memory");
    if (o && o->manifest && !(c->raw = json_object())) {
        cfg_free(c);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    size_t nodes = 0;
    bool have_server = false;
    int rc = load_file(c, path, 0, &nodes, &have_server, NULL, NULL);
    return load_common(c, rc, out);
}

int cfg_load_buffer(const char *name, const char *text, size_t len, bool allow_files, cfg_t **out)
{
    cfg_t *c = cfg_new();
    if (!c)
        return err_set(COFFER_ENOMEM, "out of memory");
    size_t nodes = 0;
    bool have_server = false;
    int rc = load_text(c, name, text, len, ".", 0, &nodes, &have_server, !allow_files);
    return load_common(c, rc, out);
}

/* ---- lookup, free ---------------------------------------------------------------------- */

const cfg_job_t *cfg_find_job(const cfg_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_jobs; i++)
        if (c->jobs[i].name && !strcmp(c->jobs[i].name, name))
            return &c->jobs[i];
    return NULL;
}

const cfg_repo_t *cfg_find_repo(const cfg_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_repos; i++)
        if (c->repos[i].name && !strcmp(c->repos[i].name, name))
            return &c->repos[i];
    return NULL;
}

const cfg_k8s_repo_t *cfg_k8s_find_repo(const cfg_t *c, const char *name)
{
    for (size_t i = 0; i < c->k8s.n_repos; i++)
        if (!strcmp(c->k8s.repos[i].repo, name))
            return &c->k8s.repos[i];
    return NULL;
}

const cfg_retention_t *cfg_target_retention(const cfg_job_t *j, const cfg_target_t *t)
{
    return t->retention.set ? &t->retention : &j->retention;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static void wipe(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void free_kv(cfg_kv_t *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        if (kv[i].secret)
            wipe(kv[i].value);
        else
            free(kv[i].value);
    }
    free(kv);
}

static void free_retention(cfg_retention_t *r)
{
    free(r->keep_within);
    free_list(r->keep_tags, r->n_keep_tags);
}

static void free_k8s_volumes(cfg_k8s_volume_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].claim);
        free(v[i].host_path);
        free(v[i].mount);
    }
    free(v);
}

static void free_k8s_pod(cfg_k8s_pod_t *o)
{
    free_kv(o->node_selector, o->n_node_selector);
    free_kv(o->requests, o->n_requests);
    free_kv(o->limits, o->n_limits);
    for (size_t i = 0; i < o->n_env; i++) {
        free(o->env[i].name);
        free(o->env[i].secret);
        free(o->env[i].key);
    }
    free(o->env);
    free_list(o->env_from, o->n_env_from);
    for (size_t i = 0; i < o->n_tolerations; i++) {
        free(o->tolerations[i].key);
        free(o->tolerations[i].op);
        free(o->tolerations[i].value);
        free(o->tolerations[i].effect);
    }
    free(o->tolerations);
}

void cfg_free(cfg_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_repos; i++) {
        cfg_repo_t *r = &c->repos[i];
        free(r->name);
        free(r->url);
        wipe(r->password);
        free(r->password_file);
        free_kv(r->env, r->n_env);
        free_kv(r->options, r->n_options);
    }
    free(c->repos);
    for (size_t i = 0; i < c->n_jobs; i++) {
        cfg_job_t *j = &c->jobs[i];
        free(j->name);
        free(j->type);
        free_list(j->paths, j->n_paths);
        free_list(j->excludes, j->n_excludes);
        free_list(j->command, j->n_command);
        free(j->filename);
        free_kv(j->options, j->n_options);
        free_kv(j->env, j->n_env);
        free(j->host);
        free(j->schedule);
        free(j->timezone);
        for (size_t t = 0; t < j->n_targets; t++) {
            free(j->targets[t].repo_name);
            free_retention(&j->targets[t].retention);
        }
        free(j->targets);
        free_retention(&j->retention);
        free_list(j->tags, j->n_tags);
        for (size_t h = 0; h < j->n_before; h++)
            free(j->before[h].command);
        for (size_t h = 0; h < j->n_after; h++)
            free(j->after[h].command);
        free(j->before);
        free(j->after);
        free_list(j->run_on, j->n_run_on);
        free_k8s_volumes(j->k8s.mounts, j->k8s.n_mounts);
        free(j->k8s.node);
        free_k8s_pod(&j->k8s.pod);
    }
    free(c->jobs);
    for (size_t i = 0; i < c->n_copies; i++) {
        cfg_copy_t *k = &c->copies[i];
        free(k->name);
        free(k->from_name);
        free(k->to_name);
        free(k->schedule);
        free(k->timezone);
        free_list(k->run_on, k->n_run_on);
    }
    free(c->copies);
    for (size_t i = 0; i < c->n_notify; i++) {
        cfg_notify_t *t = &c->notify[i];
        free(t->name);
        free_list(t->jobs, t->n_jobs);
        free(t->url);
        free_kv(t->headers, t->n_headers);
        free(t->smtp_url);
        free(t->ca_file);
        free(t->username);
        wipe(t->password);
        free(t->from);
        free_list(t->to, t->n_to);
        free(t->subject);
    }
    free(c->notify);
    free(c->server.listen);
    free(c->server.pushgateway);
    free(c->server.textfile_dir);
    free(c->server.state_file);
    free(c->k8s.namespace_);
    free(c->k8s.image);
    free(c->k8s.pull_policy);
    free(c->k8s.service_account);
    free(c->k8s.name_prefix);
    free_kv(c->k8s.labels, c->k8s.n_labels);
    for (size_t i = 0; i < c->k8s.n_repos; i++) {
        free(c->k8s.repos[i].repo);
        free(c->k8s.repos[i].secret);
        free(c->k8s.repos[i].key);
        free_list(c->k8s.repos[i].env_from, c->k8s.repos[i].n_env_from);
    }
    free(c->k8s.repos);
    free_k8s_volumes(c->k8s.volumes, c->k8s.n_volumes);
    free_k8s_pod(&c->k8s.pod);
    json_decref(c->raw);
    free_list(c->files, c->n_files);
    free(c);
}

const char *cfg_level_name(int level)
{
    return level == CFG_LEVEL_INFO ? "info" : level == CFG_LEVEL_WARNING ? "warning" : "error";
}

/* ---- printing ---------------------------------------------------------------------------- */

static int q(buf_t *o, const char *s)
{
    json_t *j = json_string(s ? s : "");
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!t)
        return buf_append_str(o, "\"?\""); /* not valid UTF-8 */
    int rc = buf_append_str(o, t);
    free(t);
    return rc;
}

static int pr_str(buf_t *o, const char *ind, const char *key, const char *v)
{
    if (!v)
        return 0;
    int rc = buf_printf(o, "%s%s: ", ind, key);
    if (!rc)
        rc = q(o, v);
    return rc ? rc : buf_append_str(o, "\n");
}

static int pr_list(buf_t *o, const char *ind, const char *key, char *const *l, size_t n)
{
    if (!n)
        return 0;
    int rc = buf_printf(o, "%s%s: [", ind, key);
    for (size_t i = 0; i < n && !rc; i++) {
        if (i)
            rc = buf_append_str(o, ", ");
        if (!rc)
            rc = q(o, l[i]);
    }
    return rc ? rc : buf_append_str(o, "]\n");
}

static int pr_kv(buf_t *o, const char *ind, const char *key, const cfg_kv_t *kv, size_t n)
{
    if (!n)
        return 0;
    int rc = buf_printf(o, "%s%s:\n", ind, key);
    for (size_t i = 0; i < n && !rc; i++) {
        rc = buf_printf(o, "%s  ", ind);
        if (!rc)
            rc = q(o, kv[i].key);
        if (!rc)
            rc = buf_append_str(o, ": ");
        if (!rc)
            rc = kv[i].secret  ? buf_append_str(o, "\"***\"")
                 : kv[i].value ? q(o, kv[i].value)
                               : buf_append_str(o, "true");
        if (!rc)
            rc = buf_append_str(o, "\n");
    }
    return rc;
}

static int pr_retention(buf_t *o, const char *ind, const cfg_retention_t *r)
{
    if (!r->set)
        return 0;
    int rc = buf_printf(o, "%sretention:\n", ind);
    const char *names[] = {"keep_last",   "keep_hourly",  "keep_daily",
                           "keep_weekly", "keep_monthly", "keep_yearly"};
    const int vals[] = {r->keep_last,   r->keep_hourly,  r->keep_daily,
                        r->keep_weekly, r->keep_monthly, r->keep_yearly};
    char in2[32];
    snprintf(in2, sizeof in2, "%s  ", ind);
    for (int i = 0; i < 6 && !rc; i++)
        if (vals[i])
            rc = buf_printf(o, "%s%s: %d\n", in2, names[i], vals[i]);
    if (!rc)
        rc = pr_str(o, in2, "keep_within", r->keep_within);
    if (!rc)
        rc = pr_list(o, in2, "keep_tags", r->keep_tags, r->n_keep_tags);
    if (!rc && r->prune)
        rc = buf_printf(o, "%sprune: true\n", in2);
    return rc;
}

int cfg_print(const cfg_t *c, buf_t *o)
{
    buf_reset(o);
    int rc =
        buf_printf(o, "# effective configuration from %zu file(s); secrets masked\n", c->n_files);
    if (!rc && c->n_repos)
        rc = buf_append_str(o, "repositories:\n");
    for (size_t i = 0; i < c->n_repos && !rc; i++) {
        const cfg_repo_t *r = &c->repos[i];
        rc = buf_printf(o, "  %s:\n", r->name);
        if (!rc)
            rc = pr_str(o, "    ", "url", r->url);
        if (!rc)
            rc = r->password_file ? pr_str(o, "    ", "password_file", r->password_file)
                                  : buf_append_str(o, "    password: \"***\"\n");
        if (!rc)
            rc = pr_kv(o, "    ", "env", r->env, r->n_env);
        if (!rc && r->n_options)
            rc = pr_kv(o, "    ", "options", r->options, r->n_options);
    }
    if (!rc && c->n_jobs)
        rc = buf_append_str(o, "jobs:\n");
    for (size_t i = 0; i < c->n_jobs && !rc; i++) {
        const cfg_job_t *j = &c->jobs[i];
        const char *in = "    ";
        rc = buf_printf(o, "  - name: %s\n", j->name);
        if (!rc)
            rc = pr_str(o, in, "type", j->type);
        if (!rc)
            rc = pr_list(o, in, "paths", j->paths, j->n_paths);
        if (!rc)
            rc = pr_list(o, in, "exclude", j->excludes, j->n_excludes);
        if (!rc)
            rc = pr_list(o, in, "command", j->command, j->n_command);
        if (!rc)
            rc = pr_str(o, in, "filename", j->filename);
        if (!rc)
            rc = pr_kv(o, in, "options", j->options, j->n_options);
        if (!rc)
            rc = pr_kv(o, in, "env", j->env, j->n_env);
        if (!rc)
            rc = pr_str(o, in, "host", j->host);
        if (!rc)
            rc = pr_str(o, in, "schedule", j->schedule);
        if (!rc)
            rc = pr_str(o, in, "timezone", j->timezone);
        if (!rc)
            rc = buf_printf(o, "%srepositories:\n", in);
        for (size_t t = 0; t < j->n_targets && !rc; t++) {
            rc = buf_printf(o, "%s  - name: %s\n", in, c->repos[j->targets[t].repo].name);
            if (!rc)
                rc = pr_retention(o, "        ", &j->targets[t].retention);
        }
        if (!rc)
            rc = pr_retention(o, in, &j->retention);
        if (!rc)
            rc = pr_list(o, in, "tags", j->tags, j->n_tags);
        if (!rc && (j->n_before || j->n_after)) {
            rc = buf_printf(o, "%shooks:\n", in);
            for (int w = 0; w < 2 && !rc; w++) {
                const cfg_hook_t *h = w ? j->after : j->before;
                size_t n = w ? j->n_after : j->n_before;
                if (n)
                    rc = buf_printf(o, "%s  %s:\n", in, w ? "after" : "before");
                for (size_t k = 0; k < n && !rc; k++) {
                    rc = buf_printf(o, "%s    - command: ", in);
                    if (!rc)
                        rc = q(o, h[k].command);
                    if (!rc)
                        rc = buf_printf(o, "\n%s      timeout: %ds\n%s      on_error: %s\n", in,
                                        h[k].timeout_s, in,
                                        h[k].on_error == CFG_ON_ERROR_FAIL ? "fail" : "continue");
                }
            }
        }
        const cfg_limits_t *l = &j->limits;
        if (!rc && (l->has_nice || l->ionice_class || l->threads)) {
            static const char *const cls[] = {"", "realtime", "best-effort", "idle"};
            rc = buf_printf(o, "%slimits:\n", in);
            if (!rc && l->has_nice)
                rc = buf_printf(o, "%s  nice: %d\n", in, l->nice);
            if (!rc && l->ionice_class == CFG_IONICE_IDLE)
                rc = buf_printf(o, "%s  ionice: idle\n", in);
            else if (!rc && l->ionice_class)
                rc =
                    buf_printf(o, "%s  ionice: %s:%d\n", in, cls[l->ionice_class], l->ionice_level);
            if (!rc && l->threads)
                rc = buf_printf(o, "%s  threads: %d\n", in, l->threads);
        }
        if (!rc)
            rc = pr_list(o, in, "run_on", j->run_on, j->n_run_on);
        if (!rc && j->fan_out_copy)
            rc = buf_printf(o, "%sfan_out: copy\n", in);
    }
    if (!rc && c->n_copies)
        rc = buf_append_str(o, "copy:\n");
    for (size_t i = 0; i < c->n_copies && !rc; i++) {
        const cfg_copy_t *k = &c->copies[i];
        rc = buf_printf(o, "  - name: %s\n    from: %s\n    to: %s\n", k->name,
                        c->repos[k->from].name, c->repos[k->to].name);
        if (!rc && k->every_s)
            rc = buf_printf(o, "    every: %ds\n", k->every_s);
        if (!rc)
            rc = pr_str(o, "    ", "schedule", k->schedule);
        if (!rc)
            rc = pr_str(o, "    ", "timezone", k->timezone);
        if (!rc)
            rc = pr_list(o, "    ", "run_on", k->run_on, k->n_run_on);
    }
    if (!rc && c->n_notify)
        rc = buf_append_str(o, "notifications:\n");
    for (size_t i = 0; i < c->n_notify && !rc; i++) {
        const cfg_notify_t *t = &c->notify[i];
        const char *in = "    ";
        rc = buf_printf(o, "  - name: %s\n    type: %s\n    level: %s\n", t->name,
                        t->kind == CFG_NOTIFY_WEBHOOK ? "webhook" : "email",
                        cfg_level_name(t->level));
        if (!rc)
            rc = pr_list(o, in, "jobs", t->jobs, t->n_jobs);
        if (!rc)
            rc = buf_printf(o, "    timeout: %ds\n    retries: %d\n", t->timeout_s, t->retries);
        if (!rc)
            rc = pr_str(o, in, "url", t->url);
        if (!rc)
            rc = pr_kv(o, in, "headers", t->headers, t->n_headers);
        if (!rc)
            rc = pr_str(o, in, "smtp_url", t->smtp_url);
        if (!rc && t->starttls)
            rc = buf_append_str(o, "    starttls: true\n");
        if (!rc)
            rc = pr_str(o, in, "ca_file", t->ca_file);
        if (!rc)
            rc = pr_str(o, in, "username", t->username);
        if (!rc && t->password)
            rc = buf_append_str(o, "    password: \"***\"\n");
        if (!rc)
            rc = pr_str(o, in, "from", t->from);
        if (!rc)
            rc = pr_list(o, in, "to", t->to, t->n_to);
        if (!rc)
            rc = pr_str(o, in, "subject", t->subject);
    }
    const cfg_server_t *s = &c->server;
    if (!rc)
        rc = buf_append_str(o, "server:\n");
    if (!rc)
        rc = pr_str(o, "  ", "listen", s->listen);
    if (!rc)
        rc = pr_str(o, "  ", "pushgateway", s->pushgateway);
    if (!rc)
        rc = pr_str(o, "  ", "textfile_dir", s->textfile_dir);
    if (!rc)
        rc = pr_str(o, "  ", "state_file", s->state_file);
    if (!rc)
        rc = buf_printf(o, "  max_concurrent: %d\n  missed: %s\n  repository_stats: %s\n",
                        s->max_concurrent, s->run_missed ? "run-once" : "skip",
                        s->repo_stats ? "true" : "false");
    return rc;
}
