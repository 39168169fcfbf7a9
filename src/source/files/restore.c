/*
 * restore.c -- restore a tree into a directory (see restore.h).
 *
 * Layer: source/files. Pass 1 walks the trees: creates directories, specials and hardlinks
 * and opens every regular file (so directory mtimes are final once pass 1 is done), handing
 * the open fd to a worker that writes the content and the file's metadata. Pass 2 walks the
 * trees again, deepest first, and applies directory metadata (mode last, since a read-only
 * directory would block its children).
 */
#include "source/files/restore.h"
#include "common/error.h"
#include "common/log.h"
#include "common/workq.h"
#include "source/files/fsmeta.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct link_ent {
    uint64_t dev, inode;
    char *path; /* path relative to the target root */
} link_ent_t;

typedef struct rctx {
    repo_t *r;
    const files_restore_opts_t *o;
    workq_t *q;
    int rootfd;
    fsmeta_restore_opts_t mopts;
    _Atomic uint64_t files, dirs, others, bytes, errors, warnings;
    atomic_int failed;
    pthread_mutex_t mu;
    char fail_msg[1024];
    link_ent_t *links;
    size_t n_links, cap_links;
} rctx_t;

typedef struct file_task {
    rctx_t *c;
    int fd;
    node_t node;
    char *path;
    atomic_int parts_left; /* the part that drops it to 0 finishes the file */
    atomic_int rc;         /* first error of any part */
    pthread_mutex_t mu;    /* err_msg of that error */
    char msg[512];
} file_task_t;

/* A big file is written by several workers at once, each a contiguous run of extents. */
typedef struct file_part {
    file_task_t *t;
    size_t first, end; /* extents [first, end) */
    uint64_t off;      /* file offset of extent `first` */
} file_part_t;

#define PART_MIN_BYTES (16u << 20) /* files below this are written by one worker */

static bool stopped(rctx_t *c)
{
    return atomic_load(&c->failed) || (c->o->stop && *c->o->stop);
}

static void entry_error(rctx_t *c, const char *path, const char *msg)
{
    log_warn("cannot restore %s: %s", path, msg);
    atomic_fetch_add(&c->errors, 1);
}

static void fatal(rctx_t *c, int rc)
{
    pthread_mutex_lock(&c->mu);
    if (!atomic_load(&c->failed)) {
        snprintf(c->fail_msg, sizeof c->fail_msg, "%s", err_msg());
        atomic_store(&c->failed, rc);
    }
    pthread_mutex_unlock(&c->mu);
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

/* 0: not matched, 1: matched (restore it and everything below), 2: may match below */
static int include_state(const rctx_t *c, const char *path, bool is_dir)
{
    if (!c->o->n_includes)
        return 1;
    for (size_t i = 0; i < c->o->n_includes; i++)
        if (fnmatch(c->o->includes[i], path, 0) == 0)
            return 1;
    if (!is_dir)
        return 0;
    /* a pattern whose leading components match this directory may match below it */
    size_t pl = strlen(path);
    for (size_t i = 0; i < c->o->n_includes; i++) {
        const char *pat = c->o->includes[i];
        char prefix[8192];
        size_t k = 0;
        int depth = 0;
        for (const char *s = path; *s; s++)
            depth += *s == '/';
        /* take as many components of the pattern as the path has */
        const char *q = pat;
        int seen = 0;
        while (*q && k < sizeof prefix - 1) {
            if (*q == '/' && ++seen > depth)
                break;
            prefix[k++] = *q++;
        }
        prefix[k] = 0;
        if (fnmatch(prefix, path, 0) == 0 || strncmp(pat, path, pl) == 0)
            return 2;
    }
    return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    static const uint8_t z[4096];
    while (n >= sizeof z) {
        if (memcmp(p, z, sizeof z) != 0)
            return false;
        p += sizeof z;
        n -= sizeof z;
    }
    return memcmp(p, z, n) == 0;
}

static int write_content(rctx_t *c, file_task_t *t, size_t first, size_t end, uint64_t off)
{
    buf_t b;
    buf_init(&b);
    int rc = 0;
    for (size_t i = first; i < end && !rc; i++) {
        const node_extent_t *e = &t->node.extents[i];
        if (stopped(c) || atomic_load(&t->rc)) {
            rc = COFFER_EINTR;
            break;
        }
        if (!e->hole) {
            buf_reset(&b);
            if ((rc = repo_read_blob(c->r, BLOB_DATA, e->id, &b)))
                break;
            if (b.len != e->len) {
                rc = err_set(COFFER_ECORRUPT, "blob length does not match the tree");
                break;
            }
            if (!c->o->verify_only && !all_zero(b.data, b.len)) {
                size_t done = 0;
                while (done < b.len) {
                    ssize_t w = pwrite(t->fd, b.data + done, b.len - done, (off_t)(off + done));
                    if (w < 0 && errno == EINTR)
                        continue;
                    if (w < 0) {
                        rc = err_errno("cannot write %s", t->path);
                        break;
                    }
                    done += (size_t)w;
                }
            }
            atomic_fetch_add(&c->bytes, b.len);
            if (c->o->bytes_done)
                atomic_fetch_add(c->o->bytes_done, b.len);
        }
        off += e->len;
    }
    buf_release(&b);
    return rc;
}

static void file_task_free(file_task_t *t)
{
    if (t->fd >= 0)
        close(t->fd);
    node_release(&t->node);
    pthread_mutex_destroy(&t->mu);
    free(t->path);
    free(t);
}

/* The last part of a file: report its outcome and apply its metadata. */
static void file_done(rctx_t *c, file_task_t *t)
{
    int rc = atomic_load(&t->rc);
    if (rc == COFFER_EINTR)
        rc = stopped(c) ? COFFER_EINTR : 0;
    if (rc)
        err_set(rc, "%s", t->msg);
    if (rc == COFFER_ENOSPC || rc == COFFER_ENOMEM) {
        fatal(c, err_ctx(rc, "while restoring %s", t->path));
    } else if (rc && rc != COFFER_EINTR) {
        entry_error(c, t->path, err_msg());
    } else if (!rc && !c->o->verify_only) {
        unsigned warn = 0;
        if (fsmeta_restore_fd(t->fd, t->path, &t->node, &c->mopts, &warn))
            entry_error(c, t->path, err_msg());
        atomic_fetch_add(&c->warnings, warn);
        atomic_fetch_add(&c->files, 1);
    } else if (!rc) {
        atomic_fetch_add(&c->files, 1);
    }
    if (!rc && c->o->files_done)
        atomic_fetch_add(c->o->files_done, 1);
    file_task_free(t);
}

static void file_worker(void *arg)
{
    file_part_t *p = arg;
    file_task_t *t = p->t;
    rctx_t *c = t->c;
    if (!stopped(c)) {
        int rc = write_content(c, t, p->first, p->end, p->off);
        if (rc) {
            pthread_mutex_lock(&t->mu);
            int expected = 0;
            if (atomic_compare_exchange_strong(&t->rc, &expected, rc))
                snprintf(t->msg, sizeof t->msg, "%s", err_msg());
            pthread_mutex_unlock(&t->mu);
        }
    } else {
        int expected = 0;
        atomic_compare_exchange_strong(&t->rc, &expected, COFFER_EINTR);
    }
    free(p);
    if (atomic_fetch_sub(&t->parts_left, 1) == 1)
        file_done(c, t);
}

/* Split the file into parts of about equal bytes and queue them. */
static int submit_file(rctx_t *c, file_task_t *t)
{
    size_t parts = 1;
    int threads = c->o->threads > 0 ? c->o->threads : workq_cpus();
    if (t->node.size >= PART_MIN_BYTES && t->node.n_extents >= 2 * (size_t)threads)
        parts = (size_t)threads;
    if (!c->o->verify_only && ftruncate(t->fd, (off_t)t->node.size) != 0) {
        err_errno("cannot set the size of %s", t->path);
        entry_error(c, t->path, err_msg());
        file_task_free(t);
        return 0;
    }
    atomic_init(&t->parts_left, (int)parts);
    uint64_t per = t->node.size / parts + 1, off = 0, acc = 0;
    size_t first = 0;
    for (size_t k = 0; k < parts; k++) {
        size_t end = first;
        if (k == parts - 1) {
            end = t->node.n_extents;
        } else {
            while (end < t->node.n_extents && acc < per * (k + 1))
                acc += t->node.extents[end++].len;
        }
        file_part_t *p = calloc(1, sizeof *p);
        if (!p) {
            /* the parts already queued finish the file; account for the missing ones */
            int expected = 0;
            atomic_compare_exchange_strong(&t->rc, &expected, COFFER_ENOMEM);
            snprintf(t->msg, sizeof t->msg, "out of memory");
            if (atomic_fetch_sub(&t->parts_left, (int)(parts - k)) == (int)(parts - k))
                file_done(c, t);
            return err_set(COFFER_ENOMEM, "out of memory");
        }
        p->t = t;
        p->first = first;
        p->end = end;
        p->off = off;
        for (size_t i = first; i < end; i++)
            off += t->node.extents[i].len;
        first = end;
        workq_submit(c->q, file_worker, p);
    }
    return 0;
}

static const char *find_link(rctx_t *c, const node_t *n)
{
    for (size_t i = 0; i < c->n_links; i++)
        if (c->links[i].dev == n->dev && c->links[i].inode == n->inode)
            return c->links[i].path;
    return NULL;
}

static void add_link(rctx_t *c, const node_t *n, const char *relpath)
{
    if (c->n_links == c->cap_links) {
        size_t nc = c->cap_links ? c->cap_links * 2 : 64;
        link_ent_t *nl = realloc(c->links, nc * sizeof *nl);
        if (!nl)
            return;
        c->links = nl;
        c->cap_links = nc;
    }
    char *p = strdup(relpath);
    if (!p)
        return;
    c->links[c->n_links++] = (link_ent_t){n->dev, n->inode, p};
}

/* Remove whatever is at name unless it is a directory we can reuse. */
static void clear_entry(int dirfd, const char *name, bool want_dir)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        if (!want_dir)
            unlinkat(dirfd, name, AT_REMOVEDIR);
        return;
    }
    unlinkat(dirfd, name, 0);
}

static int restore_file(rctx_t *c, int dirfd, bool fresh, const node_t *n, const char *relpath)
{
    if (n->nlink > 1 && n->type == NODE_FILE && !c->o->verify_only) {
        const char *first = find_link(c, n);
        if (first) {
            if (!fresh)
                clear_entry(dirfd, n->name, false);
            if (linkat(c->rootfd, first, dirfd, n->name, 0) == 0) {
                atomic_fetch_add(&c->files, 1);
                return 0;
            }
            /* fall through: restore as its own file */
        } else {
            add_link(c, n, relpath);
        }
    }
    file_task_t *t = calloc(1, sizeof *t);
    if (!t)
        return err_set(COFFER_ENOMEM, "out of memory");
    t->c = c;
    t->fd = -1;
    if (!c->o->verify_only) {
        if (!fresh)
            clear_entry(dirfd, n->name, false);
        t->fd = openat(dirfd, n->name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (t->fd < 0) {
            err_errno("cannot create");
            entry_error(c, relpath, err_msg());
            free(t);
            return 0;
        }
    }
    t->path = strdup(relpath);
    pthread_mutex_init(&t->mu, NULL);
    int rc = node_copy(&t->node, n);
    if (!t->path || rc) {
        rc = rc ? rc : err_set(COFFER_ENOMEM, "out of memory");
        file_task_free(t);
        return rc;
    }
    return submit_file(c, t);
}

/* Pass 1 over one directory. Returns how many entries were restored in *out_count. */
static int pass1(rctx_t *c, int dirfd, bool fresh, const uint8_t tree_id[32], const char *snap_path,
                 const char *relpath, bool matched, uint64_t *out_count)
{
    tree_t t;
    tree_init(&t);
    int rc = repo_load_tree(c->r, tree_id, &t);
    uint64_t count = 0;
    if (rc) {
        entry_error(c, snap_path[0] ? snap_path : "/", err_msg());
        err_clear();
        *out_count = 0;
        return 0;
    }
    for (size_t i = 0; i < t.n && !rc; i++) {
        const node_t *n = &t.nodes[i];
        if (stopped(c)) {
            rc = COFFER_EINTR;
            break;
        }
        char *sp = join(snap_path, n->name);
        char *rp = relpath[0] ? join(relpath, n->name) : strdup(n->name);
        if (!sp || !rp) {
            free(sp);
            free(rp);
            rc = err_set(COFFER_ENOMEM, "out of memory");
            break;
        }
        int st = matched ? 1 : include_state(c, sp, n->type == NODE_DIR);
        if (st == 0) {
            free(sp);
            free(rp);
            continue;
        }
        if (n->type == NODE_DIR) {
            int sub = -1;
            bool sub_fresh = false;
            if (!c->o->verify_only) {
                if (!fresh)
                    clear_entry(dirfd, n->name, true);
                /* a directory we create is empty: nothing inside needs clearing */
                if (mkdirat(dirfd, n->name, 0700) == 0)
                    sub_fresh = true;
                else if (errno != EEXIST) {
                    err_errno("cannot create directory");
                    entry_error(c, rp, err_msg());
                    free(sp);
                    free(rp);
                    continue;
                }
                sub = openat(dirfd, n->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0) {
                    err_errno("cannot open directory");
                    entry_error(c, rp, err_msg());
                    free(sp);
                    free(rp);
                    continue;
                }
            }
            uint64_t inner = 0;
            rc = pass1(c, sub, sub_fresh, n->subtree, sp, rp, st == 1, &inner);
            if (sub >= 0)
                close(sub);
            if (st == 2 && inner == 0 && !c->o->verify_only)
                unlinkat(dirfd, n->name, AT_REMOVEDIR); /* nothing included below */
            else {
                atomic_fetch_add(&c->dirs, 1);
                count++;
            }
            count += inner;
        } else if (n->type == NODE_FILE) {
            rc = restore_file(c, dirfd, fresh, n, rp);
            count++;
        } else {
            count++;
            if (!c->o->verify_only) {
                unsigned warn = 0;
                if (!fresh)
                    clear_entry(dirfd, n->name, false);
                if (fsmeta_create_special(dirfd, n->name, n) ||
                    fsmeta_restore(dirfd, n->name, n, &c->mopts, &warn))
                    entry_error(c, rp, err_msg());
                else
                    atomic_fetch_add(&c->others, 1);
                atomic_fetch_add(&c->warnings, warn);
            }
        }
        free(sp);
        free(rp);
    }
    tree_release(&t);
    *out_count = count;
    return rc;
}

/* Pass 2: directory metadata, children first. */
static void pass2(rctx_t *c, int dirfd, const uint8_t tree_id[32], const char *snap_path,
                  bool matched)
{
    tree_t t;
    tree_init(&t);
    if (repo_load_tree(c->r, tree_id, &t)) {
        err_clear();
        return;
    }
    for (size_t i = 0; i < t.n; i++) {
        const node_t *n = &t.nodes[i];
        if (n->type != NODE_DIR)
            continue;
        char *sp = join(snap_path, n->name);
        if (!sp)
            break;
        int st = matched ? 1 : include_state(c, sp, true);
        int sub = st ? openat(dirfd, n->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
        if (sub >= 0) {
            pass2(c, sub, n->subtree, sp, st == 1);
            close(sub);
            unsigned warn = 0;
            if (fsmeta_restore(dirfd, n->name, n, &c->mopts, &warn))
                entry_error(c, sp, err_msg());
            atomic_fetch_add(&c->warnings, warn);
        }
        free(sp);
    }
    tree_release(&t);
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp)
        return err_set(COFFER_EINVAL, "restore target \"%s\" is empty or too long", path);
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == 0) {
            char saved = tmp[i];
            tmp[i] = 0;
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return err_errno("cannot create restore target %s", tmp);
            tmp[i] = saved;
        }
    }
    return 0;
}

int files_restore(repo_t *r, const uint8_t root_tree[32], const char *target,
                  const files_restore_opts_t *o, files_restore_stats_t *out_stats)
{
    rctx_t *c = calloc(1, sizeof *c);
    int rc;
    if (!c)
        return err_set(COFFER_ENOMEM, "out of memory");
    c->r = r;
    c->o = o;
    c->rootfd = -1;
    c->mopts.owner = geteuid() == 0;
    c->mopts.xattrs = true;
    pthread_mutex_init(&c->mu, NULL);
    if (!o->verify_only) {
        if ((rc = mkdir_p(target)))
            goto out;
        c->rootfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c->rootfd < 0) {
            rc = err_errno("cannot open restore target %s", target);
            goto out;
        }
    }
    if ((rc = workq_new(o->threads > 0 ? o->threads : workq_cpus(), 64, &c->q)))
        goto out;
    uint64_t count = 0;
    rc = pass1(c, c->rootfd, false, root_tree, "", "", false, &count);
    workq_wait(c->q);
    if (!rc && atomic_load(&c->failed)) {
        rc = atomic_load(&c->failed);
        err_set(rc, "%s", c->fail_msg);
    }
    if (!rc && o->stop && *o->stop)
        rc = err_set(COFFER_EINTR, "interrupted");
    if (!rc && !o->verify_only)
        pass2(c, c->rootfd, root_tree, "", false);
    if (!rc && o->n_includes && count == 0)
        rc = err_set(COFFER_ENOENT, "no entry of the snapshot matches the --include patterns");
    if (out_stats) {
        out_stats->files = c->files;
        out_stats->dirs = c->dirs;
        out_stats->others = c->others;
        out_stats->bytes = c->bytes;
        out_stats->errors = c->errors;
        out_stats->warnings = c->warnings;
    }
out:
    workq_free(c->q);
    if (c->rootfd >= 0)
        close(c->rootfd);
    for (size_t i = 0; i < c->n_links; i++)
        free(c->links[i].path);
    free(c->links);
    pthread_mutex_destroy(&c->mu);
    free(c);
    return rc;
}
