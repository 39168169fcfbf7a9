/*
 * service.c -- shared machinery of the service sources (see service.h).
 *
 * Layer: source. Programs are started with fork + execve of a full path found in PATH first,
 * with an environment built before fork (the child only calls async-signal-safe functions).
 * A thread drains each program's stderr so a chatty program never blocks on a full pipe,
 * keeping the tail for error messages.
 */
#include "source/service.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "repo/writer.h"
#include "source/command/command.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- programs ---------------------------------------------------------------------------- */

int svc_find_tool(const char *service, const char *name, const char *package, char **out_path)
{
    const char *path = getenv("PATH");
    if (strchr(name, '/')) {
        if (access(name, X_OK) == 0) {
            char *p = strdup(name);
            if (!p)
                return err_set(COFFER_ENOMEM, "out of memory");
            *out_path = p;
            return 0;
        }
        return err_set(COFFER_ENOENT, "%s: %s is not an executable program: install %s", service,
                       name, package);
    }
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    const char *s = path;
    while (*s) {
        const char *e = strchr(s, ':');
        size_t dl = e ? (size_t)(e - s) : strlen(s);
        char full[PATH_MAX];
        int k = snprintf(full, sizeof full, "%.*s/%s", (int)(dl ? dl : 1), dl ? s : ".", name);
        struct stat st;
        if (k > 0 && (size_t)k < sizeof full && stat(full, &st) == 0 && S_ISREG(st.st_mode) &&
            access(full, X_OK) == 0) {
            char *p = strdup(full);
            if (!p)
                return err_set(COFFER_ENOMEM, "out of memory");
            *out_path = p;
            return 0;
        }
        if (!e)
            break;
        s = e + 1;
    }
    return err_set(COFFER_ENOENT, "%s: %s not found in PATH: install %s", service, name, package);
}

void svc_argv_init(svc_argv_t *a)
{
    a->v = NULL;
    a->n = a->cap = 0;
}

void svc_argv_release(svc_argv_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    svc_argv_init(a);
}

static int argv_push(svc_argv_t *a, char *s)
{
    if (!s)
        return err_set(COFFER_ENOMEM, "out of memory");
    if (a->n + 2 > SVC_MAX_ARGS) {
        free(s);
        return err_set(COFFER_ELIMIT, "too many arguments (more than %d)", SVC_MAX_ARGS);
    }
    if (a->n + 2 > a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 16;
        char **nv = realloc(a->v, nc * sizeof *nv);
        if (!nv) {
            free(s);
            return err_set(COFFER_ENOMEM, "out of memory");
        }
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
    return 0;
}

int svc_argv_add(svc_argv_t *a, const char *s)
{
    return argv_push(a, strdup(s));
}

int svc_argv_addf(svc_argv_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int k = vasprintf(&s, fmt, ap);
    va_end(ap);
    return argv_push(a, k < 0 ? NULL : s);
}

/* environ with env_add's entries replacing same-named ones (array only; strings borrowed). */
static char **build_env(char *const *env_add)
{
    size_t ne = 0, na = 0;
    while (environ && environ[ne])
        ne++;
    while (env_add && env_add[na])
        na++;
    char **envp = calloc(ne + na + 1, sizeof *envp);
    if (!envp)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < ne; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        bool replaced = false;
        for (size_t j = 0; j < na && !replaced; j++)
            replaced = strncmp(env_add[j], environ[i], nl) == 0 && env_add[j][nl] == '=';
        if (!replaced)
            envp[k++] = environ[i];
    }
    for (size_t j = 0; j < na; j++)
        envp[k++] = env_add[j];
    envp[k] = NULL;
    return envp;
}

static void *err_reader(void *arg)
{
    svc_proc_t *p = arg;
    char tmp[8192];
    for (;;) {
        ssize_t got = read(p->err_fd, tmp, sizeof tmp);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (p->err.len + (size_t)got > SVC_STDERR_KEEP) {
            /* keep the tail: drop the oldest half */
            size_t drop = p->err.len / 2 + (size_t)got;
            if (drop > p->err.len)
                drop = p->err.len;
            memmove(p->err.data, p->err.data + drop, p->err.len - drop);
            p->err.len -= drop;
            p->err_dropped = true;
        }
        size_t take = (size_t)got > SVC_STDERR_KEEP ? SVC_STDERR_KEEP : (size_t)got;
        if (buf_append(&p->err, tmp + (size_t)got - take, take) != 0)
            break;
    }
    return NULL;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int svc_proc_start(svc_proc_t *p, char *const *argv, char *const *env_add, unsigned flags)
{
    int inp[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, exp[2] = {-1, -1};
    int devnull = -1, rc = 0;
    char **envp = NULL;
    *p = (svc_proc_t){.pid = -1, .in_fd = -1, .out_fd = -1, .err_fd = -1};
    buf_init(&p->err);
    if (!(envp = build_env(env_add))) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    if (((flags & SVC_IN_PIPE) && pipe2(inp, O_CLOEXEC) != 0) ||
        ((flags & SVC_OUT_PIPE) && pipe2(outp, O_CLOEXEC) != 0) || pipe2(errp, O_CLOEXEC) != 0 ||
        pipe2(exp, O_CLOEXEC) != 0) {
        rc = err_errno("cannot create a pipe for %s", argv[0]);
        goto out;
    }
    if ((devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
        rc = err_errno("cannot open /dev/null");
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        rc = err_errno("cannot start %s", argv[0]);
        goto out;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        dup2((flags & SVC_IN_PIPE) ? inp[0] : devnull, 0);
        dup2((flags & SVC_OUT_PIPE) ? outp[1] : (flags & SVC_OUT_STDERR) ? errp[1] : devnull, 1);
        dup2(errp[1], 2);
        execve(argv[0], argv, envp);
        int e = errno;
        ssize_t wr = write(exp[1], &e, sizeof e);
        (void)wr;
        _exit(127);
    }
    p->pid = pid;
    close_fd(&exp[1]);
    close_fd(&errp[1]);
    close_fd(&inp[0]);
    close_fd(&outp[1]);
    int exec_errno = 0;
    ssize_t got;
    while ((got = read(exp[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR)
        ;
    if (got == (ssize_t)sizeof exec_errno) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        p->pid = -1;
        rc = err_set(COFFER_EINVAL, "cannot run %s: %s", argv[0], strerror(exec_errno));
        goto out;
    }
    p->err_fd = errp[0];
    errp[0] = -1;
    p->in_fd = inp[1];
    inp[1] = -1;
    p->out_fd = outp[0];
    outp[0] = -1;
    if (pthread_create(&p->err_tid, NULL, err_reader, p) == 0)
        p->err_thread = true;
out:
    for (int i = 0; i < 2; i++) {
        close_fd(&inp[i]);
        close_fd(&outp[i]);
        close_fd(&errp[i]);
        close_fd(&exp[i]);
    }
    close_fd(&devnull);
    free(envp);
    return rc;
}

void svc_proc_close_in(svc_proc_t *p)
{
    close_fd(&p->in_fd);
}

void svc_proc_close_out(svc_proc_t *p)
{
    close_fd(&p->out_fd);
}

void svc_proc_wait(svc_proc_t *p, int *out_status, bool *out_signaled)
{
    int status = 0;
    close_fd(&p->in_fd);
    close_fd(&p->out_fd);
    if (p->pid > 0)
        while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
            ;
    p->pid = -1;
    if (p->err_thread) {
        pthread_join(p->err_tid, NULL);
        p->err_thread = false;
    }
    close_fd(&p->err_fd);
    bool sig = WIFSIGNALED(status);
    if (out_status)
        *out_status = sig ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    if (out_signaled)
        *out_signaled = sig;
}

void svc_proc_release(svc_proc_t *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        svc_proc_wait(p, NULL, NULL);
    }
    close_fd(&p->in_fd);
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
    buf_release(&p->err);
}

const char *svc_proc_last_line(svc_proc_t *p)
{
    if (!p->err.len)
        return "";
    char *s = (char *)p->err.data;
    size_t n = p->err.len;
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    s[n] = 0;
    p->err.len = n;
    /* the last line that reports an error, else the last line */
    static const char *const marks[] = {"error", "ERROR", "FATAL", "Error", "denied", NULL};
    char *best = NULL;
    for (char *line = s; line && *line;) {
        char *nl = strchr(line, '\n');
        for (size_t i = 0; marks[i]; i++) {
            char *m = strstr(line, marks[i]);
            if (m && (!nl || m < nl)) {
                best = line;
                break;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    if (!best) {
        char *nl = strrchr(s, '\n');
        best = nl ? nl + 1 : s;
    }
    while (*best == ' ' || *best == '\t')
        best++;
    char *nl = strchr(best, '\n');
    if (nl) {
        /* return a copy of one line: keep p->err intact for logging */
        size_t l = (size_t)(nl - best);
        memmove(p->line, best, l < sizeof p->line - 1 ? l : sizeof p->line - 1);
        p->line[l < sizeof p->line - 1 ? l : sizeof p->line - 1] = 0;
        return p->line;
    }
    return best;
}

void svc_proc_log_stderr(svc_proc_t *p, int lvl, const char *prefix)
{
    if (!p->err.len)
        return;
    if (p->err_dropped)
        log_msg((enum log_level)lvl, "%s: (earlier output dropped)", prefix);
    char *s = (char *)p->err.data, *end = s + p->err.len;
    while (s < end) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t l = nl ? (size_t)(nl - s) : (size_t)(end - s);
        if (l)
            log_msg((enum log_level)lvl, "%s: %.*s", prefix, (int)l, s);
        s += l + 1;
    }
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int proc_error(svc_proc_t *p, const char *what, int status, bool sig)
{
    const char *line = svc_proc_last_line(p);
    if (sig)
        return err_set(COFFER_EIO, "%s was killed by signal %d%s%s", what, status - 128,
                       *line ? ": " : "", line);
    return err_set(COFFER_EIO, "%s failed (exit %d)%s%s", what, status, *line ? ": " : "", line);
}

int svc_capture(char *const *argv, char *const *env_add, const char *stdin_data, const char *what,
                buf_t *out)
{
    svc_proc_t p;
    buf_t b;
    buf_init(&b);
    int rc = svc_proc_start(&p, argv, env_add, SVC_OUT_PIPE | (stdin_data ? SVC_IN_PIPE : 0));
    if (rc)
        return err_ctx(rc, "%s", what);
    if (stdin_data) {
        size_t left = strlen(stdin_data);
        const char *s = stdin_data;
        while (left) {
            ssize_t w = write(p.in_fd, s, left);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break; /* the program exited early: its status tells why */
            s += w;
            left -= (size_t)w;
        }
        svc_proc_close_in(&p);
    }
    char tmp[65536];
    for (;;) {
        ssize_t got = read(p.out_fd, tmp, sizeof tmp);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (b.len + (size_t)got > SVC_CAPTURE_MAX) {
            rc = err_set(COFFER_ELIMIT, "%s: output larger than %u MiB", what,
                         SVC_CAPTURE_MAX >> 20);
            kill(p.pid, SIGTERM);
            break;
        }
        if ((rc = buf_append(&b, tmp, (size_t)got)))
            break;
    }
    int status;
    bool sig;
    svc_proc_wait(&p, &status, &sig);
    if (!rc && (status || sig))
        rc = proc_error(&p, what, status, sig);
    svc_proc_release(&p);
    if (!rc) {
        buf_release(out);
        *out = b;
        buf_init(&b);
    }
    buf_release(&b);
    return rc;
}

int svc_run(char *const *argv, char *const *env_add, const char *what)
{
    svc_proc_t p;
    int rc = svc_proc_start(&p, argv, env_add, 0);
    if (rc)
        return err_ctx(rc, "%s", what);
    int status;
    bool sig;
    svc_proc_wait(&p, &status, &sig);
    if (status || sig)
        rc = proc_error(&p, what, status, sig);
    else
        svc_proc_log_stderr(&p, LOG_INFO, base_name(argv[0]));
    svc_proc_release(&p);
    return rc;
}

/* ---- secrets and private files ----------------------------------------------------------- */

void svc_secret_free(char *s)
{
    if (!s)
        return;
    volatile char *v = s;
    while (*v)
        *v++ = 0;
    free(s);
}

int svc_secret_from_env(const char *name, char **out)
{
    const char *v = getenv(name);
    *out = NULL;
    if (v) {
        char *s = strdup(v);
        if (!s)
            return err_set(COFFER_ENOMEM, "out of memory");
        *out = s;
        return 0;
    }
    char fvar[256];
    snprintf(fvar, sizeof fvar, "%s_FILE", name);
    const char *path = getenv(fvar);
    if (!path)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_errno("cannot read the password file %s (from %s)", path, fvar);
    char *s = malloc(SVC_SECRET_MAX + 1);
    size_t n = 0;
    int rc = 0;
    if (!s) {
        close(fd);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    for (;;) {
        ssize_t got = read(fd, s + n, SVC_SECRET_MAX + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = err_errno("cannot read the password file %s (from %s)", path, fvar);
            break;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > SVC_SECRET_MAX) {
            rc = err_set(COFFER_ELIMIT, "the password file %s (from %s) is larger than %d bytes",
                         path, fvar, SVC_SECRET_MAX);
            break;
        }
    }
    close(fd);
    if (!rc && n && s[n - 1] == '\n')
        n--;
    if (!rc && n && s[n - 1] == '\r')
        n--;
    s[n <= SVC_SECRET_MAX ? n : SVC_SECRET_MAX] = 0;
    if (!rc && memchr(s, 0, n))
        rc = err_set(COFFER_EINVAL, "the password file %s (from %s) contains a NUL byte", path,
                     fvar);
    if (rc) {
        memset(s, 0, SVC_SECRET_MAX + 1);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int svc_tmpdir_new(char **out_path)
{
    const char *t = getenv("TMPDIR");
    char *p = NULL;
    if (!t || !*t)
        t = "/tmp";
    if (asprintf(&p, "%s/coffer-svc.XXXXXX", t) < 0)
        return err_set(COFFER_ENOMEM, "out of memory");
    if (!mkdtemp(p)) {
        int rc = err_errno("cannot create a private directory in %s (set TMPDIR)", t);
        free(p);
        return rc;
    }
    *out_path = p;
    return 0;
}

void svc_tmpdir_remove(const char *path)
{
    if (!path)
        return;
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    if (rmdir(path) != 0)
        log_warn("cannot remove the temporary directory %s: %s", path, strerror(errno));
}

int svc_write_private(const char *dir, const char *name, const void *data, size_t n,
                      char **out_path)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return err_set(COFFER_ENOMEM, "out of memory");
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc = err_errno("cannot create %s", p);
        free(p);
        return rc;
    }
    const uint8_t *s = data;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int rc = err_errno("cannot write %s", p);
            close(fd);
            unlink(p);
            free(p);
            return rc;
        }
        s += w;
        n -= (size_t)w;
    }
    close(fd);
    *out_path = p;
    return 0;
}

/* ---- snapshots ---------------------------------------------------------------------------- */

void svc_server_dirname(const char *server, char *out, size_t len)
{
    size_t k = 0;
    for (const char *s = server; *s && k + 1 < len; s++)
        out[k++] = (*s == '/' || *s == ':') ? '_' : *s;
    out[k] = 0;
    if (k == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
        snprintf(out, len, "default");
}

/* Wrap node n (a file or directory) in a directory named name: *io becomes the new dir. */
static int wrap_dir(writer_t *w, node_t *io, const char *name)
{
    tree_t t;
    tree_init(&t);
    buf_t b;
    buf_init(&b);
    node_t d;
    node_init(&d);
    int rc = tree_add(&t, io);
    if (!rc)
        rc = tree_encode(&t, &b);
    if (!rc)
        rc = writer_add_blob(w, BLOB_TREE, b.data, b.len, NULL, d.subtree, NULL);
    if (!rc && !(d.name = strdup(name)))
        rc = err_set(COFFER_ENOMEM, "out of memory");
    if (!rc) {
        d.type = NODE_DIR;
        d.mode = 0700;
        d.uid = (uint32_t)getuid();
        d.gid = (uint32_t)getgid();
        d.mtime_ns = d.ctime_ns = time_now_ns();
        d.nlink = 2;
        node_release(io);
        *io = d;
        node_init(&d);
    }
    node_release(&d);
    buf_release(&b);
    tree_release(&t);
    return rc;
}

static int find_parent(repo_t *r, const snapshot_t *snap, uint8_t out[32], bool *found)
{
    snapshot_t *all = NULL;
    size_t cnt = 0;
    *found = false;
    int rc = repo_list_snapshots(r, &all, &cnt, NULL);
    if (rc)
        return rc;
    for (size_t i = cnt; i-- > 0 && !*found;) {
        const snapshot_t *s = &all[i];
        if ((s->status && strcmp(s->status, "failed") == 0) || !s->kind || !s->host ||
            strcmp(s->kind, snap->kind) != 0 || strcmp(s->host, snap->host) != 0 ||
            s->n_paths != 1 || strcmp(s->paths[0], snap->paths[0]) != 0)
            continue;
        memcpy(out, s->id, 32);
        *found = true;
    }
    repo_free_snapshots(all, cnt);
    return 0;
}

static int fill_snapshot(snapshot_t *snap, const svc_common_t *c, const svc_dump_t *d,
                         const char *path)
{
    char hostbuf[256] = "";
    const char *host = c->host;
    if (!host || !*host) {
        gethostname(hostbuf, sizeof hostbuf - 1);
        host = hostbuf;
    }
    const char *user = getenv("USER");
    snap->time_ns = time_now_ns();
    snap->host = strdup(host);
    snap->user = strdup(user ? user : "");
    snap->job = strdup(c->job ? c->job : "");
    snap->kind = strdup(d->kind);
    snap->program = strdup("coffer " COFFER_VERSION_STR);
    if (!snap->host || !snap->user || !snap->job || !snap->kind || !snap->program)
        return err_set(COFFER_ENOMEM, "out of memory");
    int rc = snapshot_add_path(snap, path);
    char tag[1024];
    snprintf(tag, sizeof tag, "kind=%s", d->kind);
    if (!rc)
        rc = snapshot_add_tag(snap, tag);
    snprintf(tag, sizeof tag, "server=%s", d->server);
    if (!rc)
        rc = snapshot_add_tag(snap, tag);
    snprintf(tag, sizeof tag, "database=%s", d->database);
    if (!rc)
        rc = snapshot_add_tag(snap, tag);
    for (size_t i = 0; i < c->n_tags && !rc; i++)
        if (!snapshot_has_tag(snap, c->tags[i]))
            rc = snapshot_add_tag(snap, c->tags[i]);
    for (size_t i = 0; d->argv[i] && !rc; i++) {
        char **nv = realloc(snap->command_argv, (snap->n_command_argv + 1) * sizeof *nv);
        if (!nv)
            return err_set(COFFER_ENOMEM, "out of memory");
        snap->command_argv = nv;
        if (!(nv[snap->n_command_argv] = strdup(i == 0 ? base_name(d->argv[0]) : d->argv[i])))
            return err_set(COFFER_ENOMEM, "out of memory");
        snap->n_command_argv++;
    }
    return rc;
}

/* Ends the dump program as soon as the stop flag is set, whichever thread got the signal
 * (the reader may be blocked in read() on a dump that produces nothing, e.g. waiting for a
 * lock). */
typedef struct stopwatch {
    volatile sig_atomic_t *stop;
    pid_t pid;
    atomic_bool done;
} stopwatch_t;

static void *stopwatch_run(void *arg)
{
    stopwatch_t *s = arg;
    while (!atomic_load(&s->done)) {
        if (*s->stop) {
            kill(s->pid, SIGTERM);
            break;
        }
        usleep(50000);
    }
    return NULL;
}

int svc_backup_dump(repo_t *r, const svc_common_t *c, const svc_dump_t *d, svc_report_fn report,
                    void *ctx)
{
    int64_t t0 = time_monotonic_ns();
    writer_t *w = NULL;
    snapshot_t snap;
    snapshot_init(&snap);
    svc_proc_t p;
    bool started = false, saved = false;
    node_t n;
    node_init(&n);
    char sdir[256], path[1024];
    int status = 0;
    bool sig = false;
    svc_server_dirname(d->server, sdir, sizeof sdir);
    snprintf(path, sizeof path, "/%s/%s/%s", d->kind, sdir, d->file_name);
    int rc = fill_snapshot(&snap, c, d, path);
    if (rc)
        goto out;
    writer_opts_t wo = {.purpose = "backup"};
    if ((rc = writer_open(r, &wo, &w)))
        goto out;
    if ((rc = find_parent(r, &snap, snap.parent, &snap.has_parent)))
        goto out;
    if ((rc = svc_proc_start(&p, d->argv, d->env_add, SVC_OUT_PIPE)))
        goto out;
    started = true;
    log_debug("%s: dumping %s on %s", d->kind, d->database, d->server);
    stopwatch_t sw = {.stop = c->stop, .pid = p.pid};
    pthread_t swt;
    bool watching = c->stop && pthread_create(&swt, NULL, stopwatch_run, &sw) == 0;
    rc = command_store_stream(r, w, p.out_fd, d->file_name, c->threads, c->stop, c->bytes_done, &n);
    if (rc)
        kill(p.pid, SIGTERM); /* the repository failed or we were stopped: end the dump */
    svc_proc_close_out(&p);
    if (watching) {
        atomic_store(&sw.done, true);
        pthread_join(swt, NULL);
    }
    svc_proc_wait(&p, &status, &sig);
    if (rc) {
        if (rc == COFFER_EINTR) {
            int crc = writer_flush(w); /* keep what was uploaded for the next run */
            if (crc)
                log_warn("could not save progress: %s", err_msg());
            rc = err_set(COFFER_EINTR, "%s: dump of %s interrupted: no snapshot was written",
                         d->kind, d->database);
        }
        goto out;
    }
    snap.summary.bytes_read = n.size;
    snap.summary.files_new = 1;
    snap.summary.dirs = 2;
    if ((rc = wrap_dir(w, &n, sdir)) || (rc = wrap_dir(w, &n, d->kind)))
        goto out;
    {
        tree_t t;
        tree_init(&t);
        buf_t b;
        buf_init(&b);
        if (!(rc = tree_add(&t, &n)) && !(rc = tree_encode(&t, &b)))
            rc = writer_add_blob(w, BLOB_TREE, b.data, b.len, NULL, snap.tree, NULL);
        buf_release(&b);
        tree_release(&t);
        if (rc)
            goto out;
    }
    if ((rc = writer_flush(w)))
        goto out;
    const writer_stats_t *ws = writer_stats(w);
    snap.summary.bytes_added = atomic_load(&ws->bytes_added);
    snap.summary.bytes_stored = atomic_load(&ws->bytes_stored);
    snap.summary.blobs_added = atomic_load(&ws->blobs_added);
    snap.summary.duration_s = (double)(time_monotonic_ns() - t0) / 1e9;
    snap.has_exit_status = true;
    snap.exit_status = status;
    bool failed = status != 0 || sig;
    if (!(snap.status = strdup(failed ? "failed" : "complete"))) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = writer_save_snapshot(w, &snap)))
        goto out;
    saved = true;
    if (failed) {
        char hex[65];
        hex_encode(snap.id, 32, hex);
        const char *line = svc_proc_last_line(&p);
        rc = err_set(COFFER_EIO,
                     "%s: dump of %s on %s %s %d%s%s; snapshot %.8s is marked failed and will "
                     "not be used as a parent or kept by retention",
                     d->kind, d->database, d->server,
                     sig ? "was killed by signal" : "failed with exit status",
                     sig ? status - 128 : status, *line ? ": " : "", line, hex);
    } else {
        svc_proc_log_stderr(&p, LOG_DEBUG, base_name(d->argv[0]));
    }
out:
    if (rc && !saved && rc != COFFER_EINTR)
        rc = err_ctx(rc, "%s: while storing the dump of %s on %s (no snapshot was written)",
                     d->kind, d->database, d->server);
    if (report) {
        svc_result_t res = {.kind = d->kind,
                            .server = d->server,
                            .database = d->database,
                            .rc = rc,
                            .message = rc ? err_msg() : NULL,
                            .snap = saved ? &snap : NULL};
        report(ctx, &res);
    }
    if (started)
        svc_proc_release(&p);
    node_release(&n);
    writer_free(w);
    snapshot_release(&snap);
    return rc;
}

const char *svc_snapshot_tag(const snapshot_t *s, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < s->n_tags; i++)
        if (strncmp(s->tags[i], key, kl) == 0 && s->tags[i][kl] == '=')
            return s->tags[i] + kl + 1;
    return NULL;
}

int svc_snapshot_file(repo_t *r, const snapshot_t *s, const char *kind, bool force, node_t *out)
{
    char hex[65];
    hex_encode(s->id, 32, hex);
    if (!s->kind || strcmp(s->kind, kind) != 0)
        return err_set(COFFER_EINVAL,
                       "snapshot %.8s is a %s snapshot, not %s: pick a %s snapshot (`coffer "
                       "snapshots --tag kind=%s`)",
                       hex, s->kind ? s->kind : "files", kind, kind, kind);
    if (s->status && strcmp(s->status, "failed") == 0 && !force)
        return err_set(COFFER_EINVAL,
                       "snapshot %.8s is a failed dump (status failed): it may be incomplete; "
                       "restore an earlier snapshot, or add --force to restore it anyway",
                       hex);
    if (s->n_paths != 1)
        return err_set(COFFER_ECORRUPT, "snapshot %.8s has %zu paths, a %s dump has one", hex,
                       s->n_paths, kind);
    int rc = repo_find_path(r, s->tree, s->paths[0], out);
    if (rc)
        return err_ctx(rc, "%s dump %s in snapshot %.8s", kind, s->paths[0], hex);
    if (out->type != NODE_FILE) {
        node_release(out);
        return err_set(COFFER_ECORRUPT, "%s in snapshot %.8s is not a file", s->paths[0], hex);
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return err_errno("cannot write to the restore program");
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int svc_write_file(repo_t *r, const node_t *n, int fd, volatile sig_atomic_t *stop,
                   svc_filter_fn filter, void *fctx)
{
    static const uint8_t zeros[65536];
    buf_t b;
    buf_init(&b);
    int rc = 0;
    for (size_t i = 0; i < n->n_extents && !rc; i++) {
        const node_extent_t *e = &n->extents[i];
        bool last = i + 1 == n->n_extents;
        if (stop && *stop) {
            rc = err_set(COFFER_EINTR, "interrupted");
            break;
        }
        if (e->hole) {
            for (uint64_t left = e->len; left && !rc;) {
                size_t k = left < sizeof zeros ? (size_t)left : sizeof zeros;
                left -= k;
                rc = filter ? filter(fctx, fd, zeros, k, last && !left) : write_all(fd, zeros, k);
            }
            continue;
        }
        buf_reset(&b);
        if ((rc = repo_read_blob(r, BLOB_DATA, e->id, &b)))
            break;
        if (b.len != e->len) {
            rc = err_set(COFFER_ECORRUPT,
                         "a blob of %s has %zu bytes, the tree says %llu: run "
                         "`coffer check`",
                         n->name, b.len, (unsigned long long)e->len);
            break;
        }
        rc = filter ? filter(fctx, fd, b.data, b.len, last) : write_all(fd, b.data, b.len);
    }
    if (!rc && filter && n->n_extents == 0)
        rc = filter(fctx, fd, (const uint8_t *)"", 0, true);
    buf_release(&b);
    return rc;
}

int svc_restore_pipe(repo_t *r, const node_t *n, char *const *argv, char *const *env_add,
                     const char *what, volatile sig_atomic_t *stop, svc_filter_fn filter,
                     void *fctx)
{
    svc_proc_t p;
    int rc = svc_proc_start(&p, argv, env_add, SVC_IN_PIPE);
    if (rc)
        return err_ctx(rc, "%s", what);
    rc = svc_write_file(r, n, p.in_fd, stop, filter, fctx);
    svc_proc_close_in(&p);
    if (rc == COFFER_EINTR)
        kill(p.pid, SIGTERM);
    int status;
    bool sig;
    svc_proc_wait(&p, &status, &sig);
    if (status || sig) {
        int prc = rc;
        svc_proc_log_stderr(&p, LOG_WARN, base_name(argv[0]));
        rc = proc_error(&p, what, status, sig);
        if (prc == COFFER_EINTR)
            rc = err_set(COFFER_EINTR, "%s interrupted", what);
    } else if (rc) {
        rc = err_ctx(rc, "%s", what);
    } else {
        svc_proc_log_stderr(&p, LOG_INFO, base_name(argv[0]));
    }
    svc_proc_release(&p);
    return rc;
}

static bool in_list(const char *s, char *const *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, l[i]) == 0)
            return true;
    return false;
}

int svc_select(const char *service, const char *server, char *const *avail, size_t n_avail,
               char *const *names, size_t n_names, bool all, char *const *excl, size_t n_excl,
               const char ***out, size_t *out_n)
{
    const char **v = calloc((all ? n_avail : 0) + n_names + 1, sizeof *v);
    size_t n = 0;
    if (!v)
        return err_set(COFFER_ENOMEM, "out of memory");
    for (size_t i = 0; i < n_names; i++) {
        if (!in_list(names[i], avail, n_avail)) {
            buf_t b;
            buf_init(&b);
            for (size_t k = 0; k < n_avail && k < 20; k++)
                buf_printf(&b, "%s%s", k ? ", " : "", avail[k]);
            int rc = err_set(COFFER_ENOENT,
                             "%s: database \"%s\" does not exist on %s: check --database "
                             "(databases there: %s)",
                             service, names[i], server, b.len ? (char *)b.data : "none");
            buf_release(&b);
            free(v);
            return rc;
        }
        if (!in_list(names[i], (char *const *)v, n))
            v[n++] = names[i];
    }
    for (size_t i = 0; all && i < n_avail; i++)
        if (!in_list(avail[i], excl, n_excl) && !in_list(avail[i], (char *const *)v, n))
            v[n++] = avail[i];
    if (n == 0) {
        free(v);
        return err_set(COFFER_EINVAL,
                       "%s: no database to back up on %s: give --database NAME or "
                       "--all-databases (every database was excluded)",
                       service, server);
    }
    *out = v;
    *out_n = n;
    return 0;
}
