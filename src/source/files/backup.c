/*
 * backup.c -- the files source's backup pipeline (see backup.h).
 *
 * Layer: source/files. Structure:
 *  - walk_dir (a walk-pool worker, or the caller for the root) lists a directory, stats every
 *    entry, builds its nodes sorted by name, then submits changed files to the file pool and
 *    each subdirectory to the walk pool (walking it inline when that queue is full);
 *  - a dir_job counts what is still outstanding in it (one hold for the walker, one per file in
 *    flight, one per unfinished subdirectory); whoever drops the count to zero encodes and
 *    stores the tree and releases the parent's count, so trees complete bottom-up without the
 *    walker waiting;
 *  - file_task reads a file's data regions (holes skipped), cuts chunks, hashes them and either
 *    stores them inline (single-chunk files) or hands them to the blob pool.
 * Node slots never move once a directory's nodes are sorted, so workers write extents and
 * subtree ids into them without locks (each slot has exactly one writer). Drain order at the
 * end: walk pool, file pool, blob pool (each only feeds the next).
 */
#include "source/files/backup.h"
#include "chunk/chunker.h"
#include "common/error.h"
#include "common/log.h"
#include "common/workq.h"
#include "source/files/fsmeta.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_AHEAD (512u * 1024) /* read size beyond a max-size chunk */
#define BLOB_QUEUE 2
#define FILE_QUEUE 64
#define WALK_QUEUE 32 /* directories queued for the walk pool (each holds an open fd) */

typedef struct bctx bctx_t;

typedef struct dir_job {
    bctx_t *c;
    struct dir_job *parent;
    size_t slot; /* our node's index in parent->tree */
    tree_t tree;
    atomic_int pending;
    int fd;     /* directory fd, -1 for the synthetic root */
    char *path; /* for messages */
} dir_job_t;

typedef struct file_job {
    dir_job_t *dir;
    size_t slot;
    int dirfd;             /* borrowed from dir (AT_FDCWD for root entries) */
    const char *open_name; /* name relative to dirfd: the node name, or a root path */
    char *path;            /* owned */
    bool is_new;           /* no node in the parent snapshot */
} file_job_t;

typedef struct blob_job {
    bctx_t *c;
    uint8_t *data;
    size_t n;
    uint8_t id[32];
} blob_job_t;

struct bctx {
    repo_t *r;
    writer_t *w;
    const files_backup_opts_t *o;
    workq_t *wq, *fq, *bq; /* walk, file and blob pools */
    snapshot_t *snap;
    pthread_mutex_t mu; /* snap errors, fatal error text */
    atomic_int failed;
    char fail_msg[1024];
    _Atomic uint64_t files_new, files_changed, files_unchanged, dirs, others, bytes_read;
    pthread_mutex_t done_mu;
    pthread_cond_t done_cv;
    bool root_done;
    uint8_t root_id[32];
};

static bool stopped(bctx_t *c)
{
    return atomic_load(&c->failed) != 0 || (c->o->stop && *c->o->stop);
}

static void fail(bctx_t *c, int rc)
{
    pthread_mutex_lock(&c->mu);
    if (!atomic_load(&c->failed)) {
        snprintf(c->fail_msg, sizeof c->fail_msg, "%s", err_msg());
        atomic_store(&c->failed, rc);
    }
    pthread_mutex_unlock(&c->mu);
}

static void record_error(bctx_t *c, const char *path, const char *msg)
{
    log_warn("%s: %s", path, msg);
    pthread_mutex_lock(&c->mu);
    if (snapshot_add_error(c->snap, path, msg))
        log_warn("cannot record error for %s", path);
    pthread_mutex_unlock(&c->mu);
}

static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/')
        p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

bool files_excluded(char *const *pats, size_t n, const char *path, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        const char *p = pats[i];
        if (strchr(p, '/') ? fnmatch(p, path, 0) == 0 : fnmatch(p, name, 0) == 0)
            return true;
    }
    return false;
}

/* ---- completion ---- */

static void dir_release(dir_job_t *d);

static void dir_finish(dir_job_t *d)
{
    bctx_t *c = d->c;
    while (d) {
        uint8_t id[32];
        buf_t b;
        buf_init(&b);
        int rc = tree_encode(&d->tree, &b);
        if (!rc)
            rc = writer_add_blob(c->w, BLOB_TREE, b.data, b.len, NULL, id, NULL);
        buf_release(&b);
        if (rc) {
            err_ctx(rc, "while storing the tree of %s", d->path);
            fail(c, rc);
            memset(id, 0, sizeof id);
        }
        dir_job_t *p = d->parent;
        size_t slot = d->slot;
        if (d->fd >= 0)
            close(d->fd);
        tree_release(&d->tree);
        free(d->path);
        free(d);
        if (!p) {
            pthread_mutex_lock(&c->done_mu);
            memcpy(c->root_id, id, 32);
            c->root_done = true;
            pthread_cond_broadcast(&c->done_cv);
            pthread_mutex_unlock(&c->done_mu);
            return;
        }
        memcpy(p->tree.nodes[slot].subtree, id, 32);
        d = atomic_fetch_sub(&p->pending, 1) == 1 ? p : NULL;
    }
}

static void dir_release(dir_job_t *d)
{
    if (atomic_fetch_sub(&d->pending, 1) == 1)
        dir_finish(d);
}

/* ---- blob pool ---- */

static void blob_task(void *arg)
{
    blob_job_t *j = arg;
    bctx_t *c = j->c;
    if (!atomic_load(&c->failed)) {
        uint8_t id[32];
        int rc = writer_add_blob(c->w, BLOB_DATA, j->data, j->n, j->id, id, NULL);
        if (rc)
            fail(c, rc);
    }
    free(j->data);
    free(j);
}

/* ---- file reading ---- */

typedef struct file_reader {
    bctx_t *c;
    node_t *n;
    bool inline_blobs;
    chunker_t ch;
    uint8_t *buf; /* per-thread, buf_len bytes (read_buffer) */
    size_t buf_len;
} file_reader_t;

static int emit_chunk(file_reader_t *fr, const uint8_t *p, size_t len)
{
    bctx_t *c = fr->c;
    uint8_t id[32];
    int rc = repo_blob_id(c->r, BLOB_DATA, p, len, id);
    if (rc)
        return rc;
    if ((rc = node_add_extent(fr->n, id, len, false)))
        return rc;
    blob_loc_t loc;
    if (index_lookup(repo_index(c->r), id, &loc))
        return 0; /* stored already, or being stored by another thread */
    if (fr->inline_blobs)
        return writer_add_blob(c->w, BLOB_DATA, p, len, id, id, NULL);
    blob_job_t *j = malloc(sizeof *j);
    uint8_t *copy = malloc(len ? len : 1);
    if (!j || !copy) {
        free(j);
        free(copy);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    memcpy(copy, p, len);
    j->c = c;
    j->data = copy;
    j->n = len;
    memcpy(j->id, id, 32);
    return workq_submit(c->bq, blob_task, j);
}

/* Read [off, off+len) through the chunker. */
static int read_region(file_reader_t *fr, int fd, uint64_t off, uint64_t len, const char *path)
{
    size_t have = 0; /* bytes in buf belonging to the current chunk */
    uint64_t pos = off, end = off + len;
    chunker_init(&fr->ch, repo_chunker(fr->c->r));
    while (pos < end) {
        if (stopped(fr->c))
            return COFFER_EINTR;
        size_t want = fr->buf_len - have;
        if (want > end - pos)
            want = (size_t)(end - pos);
        ssize_t got = pread(fd, fr->buf + have, want, (off_t)pos);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return err_errno("cannot read %s", path);
        }
        if (got == 0)
            break; /* shrank while read: detected by the caller's fstat */
        atomic_fetch_add(&fr->c->bytes_read, (uint64_t)got);
        if (fr->c->o->progress)
            atomic_fetch_add(&fr->c->o->progress->bytes_done, (uint64_t)got);
        size_t scan = have, total = have + (size_t)got;
        size_t start = 0;
        pos += (uint64_t)got;
        while (scan < total) {
            size_t cut = chunker_next(&fr->ch, fr->buf + scan, total - scan);
            if (!cut)
                break;
            scan += cut;
            int rc = emit_chunk(fr, fr->buf + start, scan - start);
            if (rc)
                return rc;
            start = scan;
        }
        /* keep the unfinished chunk at the front of the buffer */
        have = total - start;
        if (start && have)
            memmove(fr->buf, fr->buf + start, have);
    }
    if (have)
        return emit_chunk(fr, fr->buf, have);
    return 0;
}

/* Each file worker keeps one read buffer for its whole life: allocating it per file would
 * make glibc raise its mmap threshold and keep freed buffers in the heap (peak RSS). */
static pthread_key_t rbuf_key;
static pthread_once_t rbuf_once = PTHREAD_ONCE_INIT;

static void rbuf_key_init(void)
{
    pthread_key_create(&rbuf_key, free);
}

typedef struct rbuf {
    size_t cap;
    uint8_t data[];
} rbuf_t;

/* A buffer of at least `need` bytes, kept per thread. */
static uint8_t *read_buffer(size_t need)
{
    pthread_once(&rbuf_once, rbuf_key_init);
    rbuf_t *b = pthread_getspecific(rbuf_key);
    if (b && b->cap >= need)
        return b->data;
    rbuf_t *nb = malloc(sizeof *nb + need);
    if (!nb || pthread_setspecific(rbuf_key, nb) != 0) {
        free(nb);
        return NULL;
    }
    free(b);
    nb->cap = need;
    return nb->data;
}

static bool same_stat(const node_t *n, const struct stat *st)
{
    int64_t mt = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    int64_t ct = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
    return (uint64_t)st->st_size == n->size && mt == n->mtime_ns && ct == n->ctime_ns &&
           (uint64_t)st->st_ino == n->inode;
}

static void set_node_error(node_t *n, uint32_t flag, const char *msg)
{
    n->flags |= flag;
    free(n->error);
    n->error = strdup(msg);
}

static int read_file(bctx_t *c, file_job_t *j, node_t *n)
{
    file_reader_t fr = {.c = c, .n = n};
    fsmeta_region_t *regions = NULL;
    size_t nreg = 0;
    struct stat st, st2;
    int rc = 0;
    int fd =
        openat(j->dirfd, j->open_name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_NOATIME);
    if (fd < 0 && errno == EPERM)
        fd = openat(j->dirfd, j->open_name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        err_errno("cannot open");
        char msg[512];
        snprintf(msg, sizeof msg, "%s",
                 e == ENOENT ? "vanished before it could be read" : err_msg());
        set_node_error(n, NODE_F_ERROR, msg);
        n->size = 0;
        record_error(c, j->path, msg);
        return 0;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_node_error(n, NODE_F_ERROR, "changed type before it could be read");
        n->size = 0;
        record_error(c, j->path, "changed type before it could be read");
        goto out;
    }
    if (!same_stat(n, &st)) {
        /* changed between walk and open: describe what we read */
        n->size = (uint64_t)st.st_size;
        n->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        n->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
        n->inode = st.st_ino;
    }
    fr.inline_blobs = n->size <= repo_params(c->r)->chunk_min;
    /* one buffer holds a max-size chunk plus read-ahead; inline files (<= chunk_min) fit */
    fr.buf_len = (size_t)repo_params(c->r)->chunk_max + READ_AHEAD;
    fr.buf = read_buffer(fr.buf_len);
    if (!fr.buf) {
        rc = err_set(COFFER_ENOMEM, "out of memory reading %s", j->path);
        goto out;
    }
    if ((uint64_t)st.st_blocks * 512 >= n->size) {
        /* every byte has a block: no holes, no need to ask SEEK_DATA/SEEK_HOLE */
        regions = malloc(sizeof *regions);
        if (!regions) {
            rc = err_set(COFFER_ENOMEM, "out of memory reading %s", j->path);
            goto out;
        }
        regions[0] = (fsmeta_region_t){0, n->size};
        nreg = n->size ? 1 : 0;
    } else if ((rc = fsmeta_data_regions(fd, n->size, &regions, &nreg))) {
        goto out;
    }
    uint64_t at = 0;
    for (size_t i = 0; i < nreg && !rc; i++) {
        if (regions[i].off > at)
            rc = node_add_extent(n, NULL, regions[i].off - at, true);
        if (!rc) {
            size_t before = n->n_extents;
            uint64_t before_len = 0;
            for (size_t k = 0; k < before; k++)
                before_len += n->extents[k].len;
            if (fr.inline_blobs) {
                /* small file: one read, one chunk */
                size_t want = (size_t)regions[i].len, have = 0;
                while (have < want) {
                    ssize_t g =
                        pread(fd, fr.buf + have, want - have, (off_t)(regions[i].off + have));
                    if (g < 0 && errno == EINTR)
                        continue;
                    if (g < 0) {
                        rc = err_errno("cannot read %s", j->path);
                        break;
                    }
                    if (g == 0)
                        break;
                    have += (size_t)g;
                }
                atomic_fetch_add(&c->bytes_read, have);
                if (c->o->progress)
                    atomic_fetch_add(&c->o->progress->bytes_done, have);
                if (!rc && have)
                    rc = emit_chunk(&fr, fr.buf, have);
            } else {
                rc = read_region(&fr, fd, regions[i].off, regions[i].len, j->path);
            }
            uint64_t after_len = 0;
            for (size_t k = 0; k < n->n_extents; k++)
                after_len += n->extents[k].len;
            at = regions[i].off + (after_len - before_len);
        }
    }
    if (!rc && at < n->size)
        rc = node_add_extent(n, NULL, n->size - at, true);
    if (rc == COFFER_EIO) {
        /* a read error on this file: record it, keep going */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", err_msg());
        free(n->extents);
        n->extents = NULL;
        n->n_extents = 0;
        n->size = 0;
        set_node_error(n, NODE_F_ERROR, msg);
        record_error(c, j->path, msg);
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    if (fstat(fd, &st2) != 0 || st2.st_size != st.st_size ||
        st2.st_mtim.tv_sec != st.st_mtim.tv_sec || st2.st_mtim.tv_nsec != st.st_mtim.tv_nsec ||
        st2.st_ctim.tv_sec != st.st_ctim.tv_sec || st2.st_ctim.tv_nsec != st.st_ctim.tv_nsec) {
        set_node_error(n, NODE_F_CHANGED, "changed while it was read: content may be torn");
        record_error(c, j->path, "changed while it was read: content may be torn");
    }
    /* extents must add up to the recorded size */
    uint64_t sum = 0;
    for (size_t k = 0; k < n->n_extents; k++)
        sum += n->extents[k].len;
    n->size = sum;
out:
    free(regions);
    close(fd);
    return rc;
}

static void file_task(void *arg)
{
    file_job_t *j = arg;
    bctx_t *c = j->dir->c;
    node_t *n = &j->dir->tree.nodes[j->slot];
    if (!stopped(c)) {
        int rc = read_file(c, j, n);
        if (rc && rc != COFFER_EINTR)
            fail(c, err_ctx(rc, "while backing up %s", j->path));
        else if (!rc) {
            atomic_fetch_add(j->is_new ? &c->files_new : &c->files_changed, 1);
            if (c->o->progress)
                atomic_fetch_add(&c->o->progress->files_done, 1);
        }
    }
    dir_job_t *d = j->dir;
    free(j->path);
    free(j);
    dir_release(d);
}

/* ---- walking ---- */

/* Reuse the parent's content when the file is unchanged and every blob is still indexed. */
static bool reuse_parent(bctx_t *c, node_t *n, const node_t *pn)
{
    if (!pn || pn->type != NODE_FILE || pn->flags || pn->size != n->size ||
        pn->mtime_ns != n->mtime_ns || pn->ctime_ns != n->ctime_ns || pn->inode != n->inode)
        return false;
    for (size_t i = 0; i < pn->n_extents; i++) {
        blob_loc_t loc;
        if (!pn->extents[i].hole && (!index_lookup(repo_index(c->r), pn->extents[i].id, &loc) ||
                                     loc.pack == INDEX_PACK_PENDING))
            return false;
    }
    if (pn->n_extents) {
        n->extents = malloc(pn->n_extents * sizeof *n->extents);
        if (!n->extents)
            return false;
        memcpy(n->extents, pn->extents, pn->n_extents * sizeof *n->extents);
        n->n_extents = pn->n_extents;
    }
    return true;
}

static int stat_entry(bctx_t *c, int dirfd, const char *name, const char *path, node_t *out)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        int e = errno;
        err_errno("cannot stat");
        record_error(c, path, e == ENOENT ? "vanished before it could be read" : err_msg());
        return COFFER_ENOENT;
    }
    node_init(out);
    int rc = fsmeta_read(dirfd, name, &st, out);
    if (rc) {
        node_release(out);
        record_error(c, path, err_msg());
        return rc == COFFER_ENOMEM ? rc : COFFER_ENOENT;
    }
    if (!out->name) {
        out->name = strdup(name);
        if (!out->name)
            return err_set(COFFER_ENOMEM, "out of memory");
    }
    return 0;
}

static int walk_dir(bctx_t *c, dir_job_t *d, const tree_t *ptree);

/* A subdirectory to walk (on the walk pool, or inline). */
typedef struct walk_task {
    dir_job_t *d;
    bool has_parent;
    uint8_t parent_tree[32]; /* the directory's tree in the parent snapshot */
} walk_task_t;

static void walk_task(void *arg)
{
    walk_task_t *wt = arg;
    bctx_t *c = wt->d->c;
    tree_t ptree;
    tree_init(&ptree);
    bool have = false;
    if (wt->has_parent) {
        if (repo_load_tree(c->r, wt->parent_tree, &ptree) == 0) {
            have = true;
        } else {
            log_debug("parent tree for %s unreadable: %s", wt->d->path, err_msg());
            err_clear();
        }
    }
    int rc = walk_dir(c, wt->d, have ? &ptree : NULL);
    if (rc && rc != COFFER_EINTR)
        fail(c, rc);
    tree_release(&ptree);
    free(wt);
}

/* Process the sorted nodes of d: submit files, recurse into dirs. ptree: parent snapshot's
 * version of this directory (may be NULL). Ends by releasing the walker's hold on d. */
static int process_nodes(bctx_t *c, dir_job_t *d, const tree_t *ptree, bool root)
{
    int rc = 0;
    for (size_t i = 0; i < d->tree.n && !rc; i++) {
        node_t *n = &d->tree.nodes[i];
        const node_t *pn = ptree ? tree_find(ptree, n->name) : NULL;
        if (c->o->progress)
            atomic_fetch_add(&c->o->progress->entries_seen, 1);
        if (stopped(c)) {
            rc = COFFER_EINTR;
            break;
        }
        int dirfd = root ? AT_FDCWD : d->fd;
        const char *open_name = root ? c->snap->paths[i] : n->name;
        if (n->type == NODE_FILE) {
            if (reuse_parent(c, n, pn)) {
                atomic_fetch_add(&c->files_unchanged, 1);
                if (c->o->progress) {
                    atomic_fetch_add(&c->o->progress->files_done, 1);
                    atomic_fetch_add(&c->o->progress->bytes_done, n->size);
                }
                continue;
            }
            file_job_t *j = calloc(1, sizeof *j);
            char *path = join_path(d->path, n->name);
            if (!j || !path) {
                free(j);
                free(path);
                rc = err_set(COFFER_ENOMEM, "out of memory");
                break;
            }
            if (root) { /* root entries: the path itself names the file */
                free(path);
                path = strdup(c->snap->paths[i]);
            }
            j->dir = d;
            j->slot = i;
            j->dirfd = dirfd;
            j->open_name = open_name;
            j->path = path;
            j->is_new = !pn || pn->type != NODE_FILE;
            atomic_fetch_add(&d->pending, 1);
            workq_submit(c->fq, file_task, j);
        } else if (n->type == NODE_DIR) {
            atomic_fetch_add(&c->dirs, 1);
            dir_job_t *sub = calloc(1, sizeof *sub);
            if (!sub) {
                rc = err_set(COFFER_ENOMEM, "out of memory");
                break;
            }
            sub->c = c;
            sub->parent = d;
            sub->slot = i;
            sub->path = root ? strdup(c->snap->paths[i]) : join_path(d->path, n->name);
            atomic_init(&sub->pending, 1);
            atomic_fetch_add(&d->pending, 1);
            sub->fd = openat(dirfd, open_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub->fd < 0) {
                err_errno("cannot open directory");
                record_error(c, sub->path ? sub->path : n->name, err_msg());
                set_node_error(n, NODE_F_ERROR, err_msg());
                dir_release(sub);
                continue;
            }
            walk_task_t *wt = calloc(1, sizeof *wt);
            if (!wt) {
                dir_release(sub);
                rc = err_set(COFFER_ENOMEM, "out of memory");
                break;
            }
            wt->d = sub;
            if (pn && pn->type == NODE_DIR) {
                memcpy(wt->parent_tree, pn->subtree, 32);
                wt->has_parent = true;
            }
            /* walk the subdirectory on the walk pool; when its queue is full, right here
             * (a walk task never blocks on its own pool) */
            if (workq_try_submit(c->wq, walk_task, wt) != 0)
                walk_task(wt);
        } else {
            atomic_fetch_add(&c->others, 1);
        }
    }
    dir_release(d);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(bctx_t *c, dir_job_t *d, const tree_t *ptree)
{
    int rc = 0;
    char **names = NULL;
    size_t nn = 0, cap = 0;
    int dfd = dup(d->fd);
    DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!dir) {
        if (dfd >= 0)
            close(dfd);
        err_errno("cannot list directory");
        record_error(c, d->path, err_msg());
        dir_release(d);
        return 0;
    }
    struct dirent *de;
    errno = 0;
    while ((de = readdir(dir))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (nn == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nnames = realloc(names, ncap * sizeof *nnames);
            if (!nnames) {
                rc = err_set(COFFER_ENOMEM, "out of memory");
                goto out;
            }
            names = nnames;
            cap = ncap;
        }
        names[nn] = strdup(de->d_name);
        if (!names[nn]) {
            rc = err_set(COFFER_ENOMEM, "out of memory");
            goto out;
        }
        nn++;
    }
    if (nn > 1)
        qsort(names, nn, sizeof *names, cmp_str);
    for (size_t i = 0; i < nn; i++) {
        char *path = join_path(d->path, names[i]);
        if (!path) {
            rc = err_set(COFFER_ENOMEM, "out of memory");
            goto out;
        }
        if (files_excluded(c->o->excludes, c->o->n_excludes, path, names[i])) {
            free(path);
            continue;
        }
        node_t n;
        int src = stat_entry(c, d->fd, names[i], path, &n);
        free(path);
        if (src == COFFER_ENOMEM) {
            rc = src;
            goto out;
        }
        if (src)
            continue;
        if ((rc = tree_add(&d->tree, &n))) {
            node_release(&n);
            goto out;
        }
    }
out:
    closedir(dir);
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    if (rc) {
        dir_release(d);
        return rc;
    }
    return process_nodes(c, d, ptree, false);
}

/* Unique basename for a root entry: "name", then "name-1", "name-2"... */
static char *root_name(const tree_t *t, const char *path)
{
    const char *end = path + strlen(path);
    while (end > path + 1 && end[-1] == '/')
        end--;
    const char *start = end;
    while (start > path && start[-1] != '/')
        start--;
    size_t len = (size_t)(end - start);
    char base[NODE_NAME_MAX + 32];
    if (len == 0 || (len == 1 && *start == '/'))
        snprintf(base, sizeof base, "root");
    else
        snprintf(base, sizeof base, "%.*s", (int)len, start);
    char cand[NODE_NAME_MAX + 48];
    snprintf(cand, sizeof cand, "%s", base);
    for (int k = 1; k < 100000; k++) {
        bool clash = false;
        for (size_t i = 0; i < t->n && !clash; i++)
            clash = strcmp(t->nodes[i].name, cand) == 0;
        if (!clash)
            return strdup(cand);
        snprintf(cand, sizeof cand, "%s-%d", base, k);
    }
    return NULL;
}

int files_backup(repo_t *r, writer_t *w, const files_backup_opts_t *o, snapshot_t *snap)
{
    bctx_t *c = calloc(1, sizeof *c);
    dir_job_t *root = NULL;
    tree_t ptree;
    tree_init(&ptree);
    int rc = 0;
    if (!c)
        return err_set(COFFER_ENOMEM, "out of memory");
    c->r = r;
    c->w = w;
    c->o = o;
    c->snap = snap;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->done_mu, NULL);
    pthread_cond_init(&c->done_cv, NULL);
    int threads = o->threads > 0 ? o->threads : workq_cpus();
    if ((rc = workq_new(threads, WALK_QUEUE, &c->wq)) ||
        (rc = workq_new(threads, FILE_QUEUE, &c->fq)) ||
        (rc = workq_new(threads, BLOB_QUEUE, &c->bq)))
        goto out;
    if (o->parent_tree && repo_load_tree(r, o->parent_tree, &ptree)) {
        log_warn("parent snapshot unreadable, reading every file: %s", err_msg());
        err_clear();
    }
    root = calloc(1, sizeof *root);
    if (!root) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    root->c = c;
    root->fd = -1;
    root->path = strdup("");
    atomic_init(&root->pending, 1);
    /* root entries: one per path, named by its basename */
    for (size_t i = 0; i < o->n_paths; i++) {
        const char *p = o->paths[i];
        struct stat st;
        node_t n;
        node_init(&n);
        if (lstat(p, &st) != 0) {
            rc = err_errno("cannot back up %s", p);
            goto out;
        }
        if ((rc = fsmeta_read(AT_FDCWD, p, &st, &n)))
            goto out;
        free(n.name);
        n.name = root_name(&root->tree, p);
        if (!n.name || (rc = tree_add(&root->tree, &n))) {
            node_release(&n);
            rc = rc ? rc : err_set(COFFER_ENOMEM, "out of memory");
            goto out;
        }
        if ((rc = snapshot_add_path(snap, p)))
            goto out;
    }
    /* The encoded tree must be sorted by name and slots are fixed once jobs start, so sort
     * now, permuting the recorded paths alongside. */
    for (size_t i = 1; i < root->tree.n; i++)
        for (size_t k = i;
             k > 0 && strcmp(root->tree.nodes[k - 1].name, root->tree.nodes[k].name) > 0; k--) {
            node_t tn = root->tree.nodes[k];
            root->tree.nodes[k] = root->tree.nodes[k - 1];
            root->tree.nodes[k - 1] = tn;
            char *tp = snap->paths[k];
            snap->paths[k] = snap->paths[k - 1];
            snap->paths[k - 1] = tp;
        }
    {
        dir_job_t *rj = root;
        root = NULL; /* owned by the completion chain from here on */
        rc = process_nodes(c, rj, ptree.n ? &ptree : NULL, true);
    }
    /* walk tasks feed file tasks, which feed blob tasks: drain in that order */
    workq_wait(c->wq);
    workq_wait(c->fq);
    workq_wait(c->bq);
    pthread_mutex_lock(&c->done_mu);
    while (!c->root_done)
        pthread_cond_wait(&c->done_cv, &c->done_mu);
    pthread_mutex_unlock(&c->done_mu);
    if (!rc && atomic_load(&c->failed)) {
        rc = atomic_load(&c->failed);
        err_set(rc, "%s", c->fail_msg);
    }
    if (!rc && o->stop && *o->stop)
        rc = err_set(COFFER_EINTR, "interrupted");
    if (!rc) {
        memcpy(snap->tree, c->root_id, 32);
        snap->summary.files_new = c->files_new;
        snap->summary.files_changed = c->files_changed;
        snap->summary.files_unchanged = c->files_unchanged;
        snap->summary.dirs = c->dirs;
        snap->summary.others = c->others;
        snap->summary.bytes_read = c->bytes_read;
    }
out:
    if (root) {
        tree_release(&root->tree);
        free(root->path);
        free(root);
    }
    workq_free(c->wq);
    workq_free(c->fq);
    workq_free(c->bq);
    tree_release(&ptree);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->done_mu);
    pthread_cond_destroy(&c->done_cv);
    free(c);
    return rc;
}
