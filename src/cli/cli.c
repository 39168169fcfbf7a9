/*
 * cli.c -- shared command-line plumbing (see cli.h).
 *
 * Layer: cli. Passwords are read from the environment, a file or the terminal; never from a
 * flag, never logged, wiped after use.
 */
#include "cli/cli.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "crypto/crypto.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t cli_stop;

static void on_signal(int sig)
{
    (void)sig;
    if (cli_stop) /* second signal: give up at once */
        _exit(EXIT_INTERRUPTED);
    cli_stop = 1;
}

void cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int read_secret_file(const char *path, const char *what, char **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_errno("cannot read %s from file %s", what, path);
    char buf[4096];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == sizeof buf - 1)
            break;
    }
    close(fd);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = 0;
    *out = strdup(buf);
    crypto_wipe(buf, sizeof buf);
    return *out ? 0 : err_set(COFFER_ENOMEM, "out of memory");
}

static int prompt_tty(const char *env, const char *env_file, const char *prompt, char **out)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return err_set(COFFER_EINVAL, "no password given: set %s or %s (no terminal to ask on)",
                       env, env_file);
    struct termios old, quiet;
    bool restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    ssize_t w = write(fd, prompt, strlen(prompt));
    (void)w;
    char buf[1024];
    size_t n = 0;
    char ch;
    while (n < sizeof buf - 1 && read(fd, &ch, 1) == 1 && ch != '\n')
        buf[n++] = ch;
    buf[n] = 0;
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &old);
    w = write(fd, "\n", 1);
    close(fd);
    *out = strdup(buf);
    crypto_wipe(buf, sizeof buf);
    return *out ? 0 : err_set(COFFER_ENOMEM, "out of memory");
}

int cli_get_secret(const char *env, const char *env_file, const char *prompt, bool confirm,
                   char **out)
{
    const char *p = getenv(env);
    if (p) {
        *out = strdup(p);
        return *out ? 0 : err_set(COFFER_ENOMEM, "out of memory");
    }
    const char *f = getenv(env_file);
    if (f && *f)
        return read_secret_file(f, "the password", out);
    char *a = NULL, *b = NULL;
    int rc = prompt_tty(env, env_file, prompt, &a);
    if (rc || !confirm) {
        *out = a;
        return rc;
    }
    if ((rc = prompt_tty(env, env_file, "enter it again: ", &b))) {
        cli_free_password(a);
        return rc;
    }
    if (strcmp(a, b) != 0) {
        cli_free_password(a);
        cli_free_password(b);
        return err_set(COFFER_EINVAL, "the passwords do not match");
    }
    cli_free_password(b);
    *out = a;
    return 0;
}

int cli_get_password(const char *prompt, bool confirm, char **out)
{
    int rc = cli_get_secret("COFFER_PASSWORD", "COFFER_PASSWORD_FILE",
                            prompt ? prompt : "repository password: ", confirm, out);
    if (!rc && !**out) {
        cli_free_password(*out);
        *out = NULL;
        return err_set(COFFER_EINVAL, "the password is empty: set a non-empty password");
    }
    return rc;
}

int cli_get_new_password(char **out)
{
    int rc = cli_get_secret("COFFER_NEW_PASSWORD", "COFFER_NEW_PASSWORD_FILE",
                            "new password: ", true, out);
    if (!rc && !**out) {
        cli_free_password(*out);
        *out = NULL;
        return err_set(COFFER_EINVAL, "the new password is empty");
    }
    return rc;
}

void cli_free_password(char *p)
{
    if (!p)
        return;
    crypto_wipe(p, strlen(p));
    free(p);
}

int cli_open_repo(cli_t *cli, repo_t **out)
{
    if (!cli->repo || !*cli->repo)
        return err_set(COFFER_EINVAL, "no repository given: use -r/--repo or set "
                                      "COFFER_REPOSITORY");
    char *pw = NULL;
    int rc = cli_get_password(NULL, false, &pw);
    if (rc)
        return rc;
    storage_opts_t so = cli_storage_opts(cli);
    rc = repo_open_opts(cli->repo, &so, pw, out);
    cli_free_password(pw);
    return rc;
}

storage_opts_t cli_storage_opts(const cli_t *cli)
{
    storage_opts_t so = {.kv = cli->opts, .n = (size_t)cli->n_opts};
    return so;
}

int cli_exit_code(int rc)
{
    switch (rc) {
    case 0:
        return EXIT_OK;
    case COFFER_EPARTIAL:
        return EXIT_PARTIAL;
    case COFFER_ENOREPO:
        return EXIT_NOREPO;
    case COFFER_ELEASE:
        return EXIT_LEASE;
    case COFFER_EPASSWORD:
        return EXIT_PASSWORD;
    case COFFER_EINTR:
        return EXIT_INTERRUPTED;
    default:
        return EXIT_FAIL;
    }
}

int cli_fail(cli_t *cli, int rc)
{
    if (rc == 0)
        return 0;
    int code = cli_exit_code(rc);
    if (cli && cli->json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:i}", "message_type", "error", "code", err_name(rc),
                              "message", err_msg(), "exit_code", code);
        char *t = json_dumps(o, JSON_COMPACT);
        fprintf(stderr, "%s\n", t ? t : "{}");
        free(t);
        json_decref(o);
    } else {
        fprintf(stderr, "coffer: error: %s\n", err_msg());
    }
    return code;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "coffer %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(run `coffer help %s` for usage)\n", cmd);
    return EXIT_USAGE;
}

void cli_json_line(json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (t) {
        fputs(t, stdout);
        fputc('\n', stdout);
        free(t);
    }
    json_decref(v);
}

void cli_json_doc(json_t *v)
{
    char *t = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (t) {
        fputs(t, stdout);
        fputc('\n', stdout);
        free(t);
    }
    json_decref(v);
}

void cli_fmt_bytes(uint64_t n, char *out, size_t len)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, len, "%llu B", (unsigned long long)n);
    else
        snprintf(out, len, "%.2f %s", v, units[u]);
}

/* ---- progress ---- */

struct cli_progress {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    const char *verb;
    _Atomic uint64_t *bytes, *items;
    _Atomic uint64_t total; /* 0 = unknown (no percentage, no ETA) */
    int64_t start;
};

static void draw(cli_progress_t *p, bool final)
{
    double el = (double)(time_monotonic_ns() - p->start) / 1e9;
    uint64_t b = p->bytes ? atomic_load(p->bytes) : 0;
    uint64_t it = p->items ? atomic_load(p->items) : 0;
    char bs[32], rate[32], eta[32] = "";
    cli_fmt_bytes(b, bs, sizeof bs);
    cli_fmt_bytes(el > 0 ? (uint64_t)((double)b / el) : 0, rate, sizeof rate);
    uint64_t total = atomic_load(&p->total);
    if (total && b && b < total && el > 0.5) {
        double left = (double)(total - b) / ((double)b / el);
        snprintf(eta, sizeof eta, " ETA %d:%02d", (int)left / 60, (int)left % 60);
    }
    char pct[16] = "";
    if (total)
        snprintf(pct, sizeof pct, " %3.0f%%",
                 100.0 * (double)(b < total ? b : total) / (double)total);
    fprintf(stderr, "\r\033[K[%d:%02d]%s %s %llu items, %s, %s/s%s", (int)el / 60, (int)el % 60,
            pct, p->verb, (unsigned long long)it, bs, rate, eta);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

static void *progress_thread(void *arg)
{
    cli_progress_t *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        if (!p->stop)
            draw(p, false);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

cli_progress_t *cli_progress_start(cli_t *cli, const char *verb, _Atomic uint64_t *bytes,
                                   _Atomic uint64_t *items, uint64_t total_bytes)
{
    if (cli->quiet || cli->json || !isatty(2))
        return NULL;
    cli_progress_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->verb = verb;
    p->bytes = bytes;
    p->items = items;
    atomic_init(&p->total, total_bytes);
    p->start = time_monotonic_ns();
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, progress_thread, p) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

void cli_progress_set_total(cli_progress_t *p, uint64_t total)
{
    if (p)
        atomic_store(&p->total, total);
}

void cli_progress_stop(cli_progress_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    draw(p, true);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

/* ---- snapshots ---- */

bool cli_snap_matches(const snapshot_t *s, const snap_filter_t *f)
{
    if (!f)
        return true;
    if (f->host && (!s->host || strcmp(s->host, f->host) != 0))
        return false;
    for (size_t i = 0; i < f->n_tags; i++)
        if (!snapshot_has_tag(s, f->tags[i]))
            return false;
    if (f->path) {
        bool found = false;
        for (size_t i = 0; i < s->n_paths && !found; i++)
            found = strcmp(s->paths[i], f->path) == 0;
        if (!found)
            return false;
    }
    return true;
}

typedef struct id_match {
    const char *prefix;
    size_t len, n;
    uint8_t id[32];
} id_match_t;

static int match_name(void *ud, const char *name, const storage_stat_t *st)
{
    (void)st;
    id_match_t *m = ud;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    if (strlen(base) == 64 && strncasecmp(base, m->prefix, m->len) == 0 &&
        hex_decode(base, m->id, 32) == 0)
        m->n++;
    return 0;
}

static bool is_hex(const char *s)
{
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s))
            return false;
    return true;
}

int cli_find_snapshot(repo_t *r, const char *spec, const snap_filter_t *f, snapshot_t *out)
{
    /* An id (prefix) is found from the object names alone: one listing of names, then one
     * snapshot read, instead of reading and decrypting every snapshot. */
    size_t len = strlen(spec);
    if (len >= 4 && len <= 64 && is_hex(spec)) {
        id_match_t m = {.prefix = spec, .len = len};
        int rc = storage_list(repo_storage(r), "snapshots/", match_name, &m);
        if (rc)
            return rc;
        if (m.n > 1)
            return err_set(COFFER_EINVAL, "snapshot prefix \"%s\" is ambiguous: give more digits",
                           spec);
        if (m.n == 0)
            return err_set(COFFER_ENOENT,
                           "no snapshot with id \"%s\": `coffer snapshots` lists them", spec);
        snapshot_t s;
        if ((rc = repo_load_snapshot(r, m.id, &s)))
            return rc;
        if (!cli_snap_matches(&s, f)) {
            snapshot_release(&s);
            return err_set(COFFER_ENOENT,
                           "snapshot %s does not match the --host/--tag/--path "
                           "filter given",
                           spec);
        }
        *out = s;
        return 0;
    }
    snapshot_t *all = NULL;
    size_t n = 0, k = 0, idx;
    int rc = repo_list_snapshots(r, &all, &n, NULL);
    if (rc)
        return rc;
    /* filter in place (keeping order), releasing the rest */
    bool latest = strcmp(spec, "latest") == 0;
    for (size_t i = 0; i < n; i++) {
        bool keep = cli_snap_matches(&all[i], f);
        if (latest && all[i].status && strcmp(all[i].status, "failed") == 0)
            keep = false;
        if (keep)
            all[k++] = all[i];
        else
            snapshot_release(&all[i]);
    }
    rc = repo_resolve_snapshot(all, k, spec, &idx);
    if (!rc) {
        *out = all[idx];
        snapshot_init(&all[idx]);
    }
    repo_free_snapshots(all, k);
    return rc;
}

json_t *cli_snapshot_json(const snapshot_t *s)
{
    char hex[65], ptree[65], ts[64];
    hex_encode(s->id, 32, hex);
    hex_encode(s->tree, 32, ptree);
    time_format_rfc3339(s->time_ns, true, ts, sizeof ts);
    json_t *paths = json_array(), *tags = json_array();
    for (size_t i = 0; i < s->n_paths; i++)
        json_array_append_new(paths, json_string(s->paths[i]));
    for (size_t i = 0; i < s->n_tags; i++)
        json_array_append_new(tags, json_string(s->tags[i]));
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:s,s:s}", "id", hex, "short_id",
                  (char[9]){hex[0], hex[1], hex[2], hex[3], hex[4], hex[5], hex[6], hex[7], 0},
                  "time", ts, "host", s->host ? s->host : "", "user", s->user ? s->user : "",
                  "kind", s->kind ? s->kind : "files", "paths", paths, "tags", tags, "tree", ptree,
                  "status", s->status ? s->status : "complete");
    if (s->job && *s->job)
        json_object_set_new(o, "job", json_string(s->job));
    if (s->has_parent) {
        hex_encode(s->parent, 32, hex);
        json_object_set_new(o, "parent", json_string(hex));
    }
    if (s->has_original) {
        hex_encode(s->original, 32, hex);
        json_object_set_new(o, "original", json_string(hex));
    }
    json_t *sum = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I}", "files_new", (json_int_t)s->summary.files_new,
        "files_changed", (json_int_t)s->summary.files_changed, "files_unchanged",
        (json_int_t)s->summary.files_unchanged, "dirs", (json_int_t)s->summary.dirs, "bytes_read",
        (json_int_t)s->summary.bytes_read, "bytes_added", (json_int_t)s->summary.bytes_added,
        "bytes_stored", (json_int_t)s->summary.bytes_stored, "duration_s", s->summary.duration_s,
        "errors", (json_int_t)s->summary.errors);
    json_object_set_new(o, "summary", sum);
    if (s->has_exit_status)
        json_object_set_new(o, "exit_status", json_integer(s->exit_status));
    /* service snapshots (doc/services.md): server and database from their tags */
    for (size_t i = 0; s->kind && strcmp(s->kind, "files") != 0 && i < s->n_tags; i++) {
        if (strncmp(s->tags[i], "server=", 7) == 0)
            json_object_set_new(o, "server", json_string(s->tags[i] + 7));
        else if (strncmp(s->tags[i], "database=", 9) == 0)
            json_object_set_new(o, "database", json_string(s->tags[i] + 9));
    }
    return o;
}
