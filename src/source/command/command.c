/*
 * command.c -- the command source (see command.h).
 *
 * Layer: source/command. The reader thread chunks and hashes; blobs go to a bounded worker
 * pool for compression, encryption and packing, so a dump uses every core.
 */
#include "source/command/command.h"
#include "chunk/chunker.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "common/workq.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define STREAM_BUF (8u << 20)

typedef struct sctx {
    writer_t *w;
    atomic_int failed;
    pthread_mutex_t mu;
    char msg[1024];
} sctx_t;

typedef struct sjob {
    sctx_t *c;
    uint8_t *data;
    size_t n;
    uint8_t id[32];
} sjob_t;

static void sjob_run(void *arg)
{
    sjob_t *j = arg;
    if (!atomic_load(&j->c->failed)) {
        uint8_t id[32];
        int rc = writer_add_blob(j->c->w, BLOB_DATA, j->data, j->n, j->id, id, NULL);
        if (rc) {
            pthread_mutex_lock(&j->c->mu);
            if (!atomic_load(&j->c->failed)) {
                snprintf(j->c->msg, sizeof j->c->msg, "%s", err_msg());
                atomic_store(&j->c->failed, rc);
            }
            pthread_mutex_unlock(&j->c->mu);
        }
    }
    free(j->data);
    free(j);
}

static int emit(repo_t *r, sctx_t *c, workq_t *q, node_t *n, const uint8_t *p, size_t len)
{
    uint8_t id[32];
    int rc = repo_blob_id(r, BLOB_DATA, p, len, id);
    if (!rc)
        rc = node_add_extent(n, id, len, false);
    if (rc)
        return rc;
    n->size += len;
    if (index_lookup(repo_index(r), id, NULL))
        return 0;
    sjob_t *j = malloc(sizeof *j);
    uint8_t *copy = malloc(len ? len : 1);
    if (!j || !copy) {
        free(j);
        free(copy);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    memcpy(copy, p, len);
    *j = (sjob_t){.c = c, .data = copy, .n = len};
    memcpy(j->id, id, 32);
    return workq_submit(q, sjob_run, j);
}

int command_store_stream(repo_t *r, writer_t *w, int fd, const char *name, int threads,
                         volatile sig_atomic_t *stop, _Atomic uint64_t *bytes_done,
                         node_t *out_node)
{
    sctx_t c = {.w = w};
    workq_t *q = NULL;
    uint8_t *buf = malloc(STREAM_BUF);
    node_t n;
    node_init(&n);
    chunker_t ch;
    int rc;
    pthread_mutex_init(&c.mu, NULL);
    if (!buf) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = workq_new(threads > 0 ? threads : workq_cpus(), 4, &q)))
        goto out;
    n.name = strdup(name);
    n.type = NODE_FILE;
    n.mode = 0600;
    n.uid = (uint32_t)getuid();
    n.gid = (uint32_t)getgid();
    n.mtime_ns = n.ctime_ns = time_now_ns();
    n.nlink = 1;
    if (!n.name) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    chunker_init(&ch, repo_chunker(r));
    size_t have = 0;
    for (;;) {
        if ((stop && *stop) || atomic_load(&c.failed))
            break;
        ssize_t got = read(fd, buf + have, STREAM_BUF - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = err_errno("cannot read the output of the command");
            break;
        }
        if (got == 0)
            break;
        if (bytes_done)
            atomic_fetch_add(bytes_done, (uint64_t)got);
        size_t scan = have, total = have + (size_t)got, start = 0;
        while (scan < total && !rc) {
            size_t cut = chunker_next(&ch, buf + scan, total - scan);
            if (!cut)
                break;
            scan += cut;
            rc = emit(r, &c, q, &n, buf + start, scan - start);
            start = scan;
        }
        if (rc)
            break;
        have = total - start;
        if (start && have)
            memmove(buf, buf + start, have);
        if (have == STREAM_BUF) { /* cannot happen: max chunk < buffer */
            rc = err_set(COFFER_ELIMIT, "chunk larger than the read buffer");
            break;
        }
    }
    if (!rc && have && !(stop && *stop))
        rc = emit(r, &c, q, &n, buf, have);
    workq_wait(q);
    if (!rc && atomic_load(&c.failed))
        rc = err_set(atomic_load(&c.failed), "%s", c.msg);
    if (!rc && stop && *stop)
        rc = err_set(COFFER_EINTR, "interrupted");
    if (!rc) {
        *out_node = n;
        node_init(&n);
    }
out:
    workq_free(q);
    node_release(&n);
    free(buf);
    pthread_mutex_destroy(&c.mu);
    return rc;
}

/* Variables that carry repository passwords: never passed to the program. */
static bool secret_var(const char *kv)
{
    static const char *const hide[] = {
        "COFFER_PASSWORD=",          "COFFER_PASSWORD_FILE=", "COFFER_NEW_PASSWORD=",
        "COFFER_NEW_PASSWORD_FILE=", "COFFER_TO_PASSWORD=",   "COFFER_TO_PASSWORD_FILE="};
    for (size_t i = 0; i < sizeof hide / sizeof hide[0]; i++)
        if (strncmp(kv, hide[i], strlen(hide[i])) == 0)
            return true;
    return false;
}

int command_backup(repo_t *r, writer_t *w, const command_opts_t *o, snapshot_t *snap,
                   command_result_t *out_res)
{
    int pfd[2], errp[2];
    int rc;
    if (!o->argv || !o->argv[0])
        return err_set(COFFER_EINVAL, "no command given after --");
    /* The program gets our environment (its own secrets come that way) without the repository
     * passwords; built before fork, since the child of a threaded process may not allocate. */
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    char **envp = calloc(n_env + 1, sizeof *envp);
    if (!envp)
        return err_set(COFFER_ENOMEM, "out of memory");
    for (size_t i = 0, k = 0; i < n_env; i++)
        if (!secret_var(environ[i]))
            envp[k++] = environ[i];
    if (pipe2(pfd, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        free(envp);
        return err_errno("cannot create a pipe");
    }
    pid_t pid = fork();
    if (pid < 0) {
        free(envp);
        close(pfd[0]);
        close(pfd[1]);
        close(errp[0]);
        close(errp[1]);
        return err_errno("cannot start %s", o->argv[0]);
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        execvpe(o->argv[0], o->argv, envp);
        int e = errno;
        ssize_t wr = write(errp[1], &e, sizeof e);
        (void)wr;
        _exit(127);
    }
    free(envp);
    close(pfd[1]);
    close(errp[1]);
    int exec_errno = 0;
    ssize_t got = read(errp[0], &exec_errno, sizeof exec_errno);
    close(errp[0]);
    if (got == (ssize_t)sizeof exec_errno) {
        close(pfd[0]);
        waitpid(pid, NULL, 0);
        return err_set(COFFER_EINVAL, "cannot run \"%s\": %s", o->argv[0], strerror(exec_errno));
    }
    node_t n;
    node_init(&n);
    rc = command_store_stream(r, w, pfd[0], o->name, o->threads, o->stop, o->bytes_done, &n);
    close(pfd[0]);
    if (rc)
        kill(pid, SIGTERM);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    command_result_t res = {0};
    if (WIFSIGNALED(status)) {
        res.signaled = true;
        res.exit_status = 128 + WTERMSIG(status);
    } else {
        res.exit_status = WEXITSTATUS(status);
    }
    res.bytes = n.size;
    if (rc) {
        node_release(&n);
        return rc;
    }
    /* root tree with one file */
    tree_t t;
    tree_init(&t);
    buf_t b;
    buf_init(&b);
    uint64_t size = n.size;
    if (!(rc = tree_add(&t, &n)) && !(rc = tree_encode(&t, &b)))
        rc = writer_add_blob(w, BLOB_TREE, b.data, b.len, NULL, snap->tree, NULL);
    buf_release(&b);
    tree_release(&t);
    node_release(&n);
    if (rc)
        return rc;
    for (size_t i = 0; o->argv[i]; i++) {
        char **nv = realloc(snap->command_argv, (snap->n_command_argv + 1) * sizeof *nv);
        if (!nv)
            return err_set(COFFER_ENOMEM, "out of memory");
        snap->command_argv = nv;
        nv[snap->n_command_argv] = strdup(o->argv[i]);
        if (!nv[snap->n_command_argv])
            return err_set(COFFER_ENOMEM, "out of memory");
        snap->n_command_argv++;
    }
    snap->has_exit_status = true;
    snap->exit_status = res.exit_status;
    snap->summary.bytes_read = size;
    snap->summary.files_new = 1;
    *out_res = res;
    return 0;
}
