/*
 * proc.c -- child processes for the job runner (contract in proc.h).
 *
 * Layer: sched. fork + execve with an environment array built beforehand; between fork and
 * exec the child only calls async-signal-safe functions (setpgid, setpriority, syscall,
 * dup2, close, execve, _exit). The parent polls both pipes with a 200 ms tick so it notices
 * the deadline and the stop flag.
 */
#include "sched/proc.h"
#include "common/error.h"
#include "common/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_WHO_PROCESS 1

void proc_result_init(proc_result_t *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->out);
    buf_init(&r->err);
}

void proc_result_release(proc_result_t *r)
{
    buf_release(&r->out);
    buf_release(&r->err);
}

/* environ with o->env applied; the strings are owned by *strs (one block per entry). */
static int build_env(const proc_opts_t *o, char ***out_env, char ***out_owned, size_t *n_owned)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + o->n_env + 1, sizeof *env);
    char **owned = calloc(o->n_env + 1, sizeof *owned);
    if (!env || !owned) {
        free(env);
        free(owned);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    size_t k = 0, no = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t e = 0; e < o->n_env && !replaced; e++) {
            size_t kl = strlen(o->env[e].key);
            replaced = strncmp(environ[i], o->env[e].key, kl) == 0 && environ[i][kl] == '=';
        }
        if (!replaced)
            env[k++] = environ[i];
    }
    for (size_t e = 0; e < o->n_env; e++) {
        if (!o->env[e].value)
            continue;
        /* a later entry for the same key wins */
        bool later = false;
        for (size_t f = e + 1; f < o->n_env && !later; f++)
            later = strcmp(o->env[e].key, o->env[f].key) == 0;
        if (later)
            continue;
        size_t kl = strlen(o->env[e].key), vl = strlen(o->env[e].value);
        char *s = malloc(kl + vl + 2);
        if (!s) {
            for (size_t i = 0; i < no; i++)
                free(owned[i]);
            free(owned);
            free(env);
            return err_set(COFFER_ENOMEM, "out of memory");
        }
        memcpy(s, o->env[e].key, kl);
        s[kl] = '=';
        memcpy(s + kl + 1, o->env[e].value, vl + 1);
        owned[no++] = s;
        env[k++] = s;
    }
    env[k] = NULL;
    *out_env = env;
    *out_owned = owned;
    *n_owned = no;
    return 0;
}

static void free_env(char **env, char **owned, size_t n_owned)
{
    for (size_t i = 0; i < n_owned; i++) {
        explicit_bzero(owned[i], strlen(owned[i]));
        free(owned[i]);
    }
    free(owned);
    free(env);
}

static void child(const proc_opts_t *o, char **env, int out_w, int err_w)
{
    setpgid(0, 0);
    if (o->has_nice)
        setpriority(PRIO_PROCESS, 0, o->nice);
    if (o->ionice_class) {
        int data = o->ionice_class == 3 ? 0 : o->ionice_level;
        syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0,
                (o->ionice_class << IOPRIO_CLASS_SHIFT) | data);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
        dup2(devnull, 0);
        close(devnull);
    }
    dup2(out_w, 1);
    dup2(err_w, 2);
    if (out_w > 2)
        close(out_w);
    if (err_w > 2)
        close(err_w);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(o->path, o->argv, env);
    static const char msg[] = "coffer: cannot execute the child program\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(127);
}

static void take(int fd, buf_t *b, bool pass, bool *open_)
{
    char chunk[8192];
    ssize_t got = read(fd, chunk, sizeof chunk);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (got <= 0) {
        *open_ = false;
        return;
    }
    if (b->len < PROC_MAX_CAPTURE) {
        size_t keep = (size_t)got;
        if (keep > PROC_MAX_CAPTURE - b->len)
            keep = PROC_MAX_CAPTURE - b->len;
        (void)buf_append(b, chunk, keep);
    }
    if (pass) {
        ssize_t w = write(2, chunk, (size_t)got);
        (void)w;
    }
}

int proc_run(const proc_opts_t *o, proc_result_t *res)
{
    char **env = NULL, **owned = NULL;
    size_t n_owned = 0;
    int rc = build_env(o, &env, &owned, &n_owned);
    if (rc)
        return rc;
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC)) {
        rc = err_errno("cannot create a pipe for %s", o->path);
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        rc = err_errno("cannot start %s", o->path);
        goto out;
    }
    if (pid == 0)
        child(o, env, po[1], pe[1]);
    setpgid(pid, pid); /* also in the parent, so a signal never misses the group */
    close(po[1]);
    close(pe[1]);
    po[1] = pe[1] = -1;
    bool out_open = true, err_open = true;
    int64_t start = time_monotonic_ns();
    int64_t deadline = o->timeout_s > 0 ? start + (int64_t)o->timeout_s * 1000000000 : 0;
    int64_t kill_at = 0;
    int status = 0;
    bool reaped = false;
    while (out_open || err_open || !reaped) {
        if (!out_open && !err_open) {
            /* pipes closed (or handed to a daemonised grandchild): wait for the child */
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid) {
                reaped = true;
                break;
            }
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
        } else {
            struct pollfd fds[2] = {{out_open ? po[0] : -1, POLLIN, 0},
                                    {err_open ? pe[0] : -1, POLLIN, 0}};
            int pr = poll(fds, 2, 200);
            if (pr > 0) {
                if (fds[0].revents)
                    take(po[0], &res->out, false, &out_open);
                if (fds[1].revents)
                    take(pe[0], &res->err, o->passthrough_stderr, &err_open);
            }
        }
        int64_t now = time_monotonic_ns();
        if (deadline && !res->timed_out && now >= deadline) {
            res->timed_out = true;
            kill(-pid, SIGTERM);
            kill_at = now + 5000000000LL;
        }
        if (o->stop && *o->stop && !res->stopped) {
            res->stopped = true;
            kill(-pid, o->stop_signal ? o->stop_signal : SIGINT);
        }
        if (kill_at && now >= kill_at) {
            kill(-pid, SIGKILL);
            kill_at = 0;
        }
    }
    if (!reaped)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    res->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
out:
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    free_env(env, owned, n_owned);
    return rc;
}
