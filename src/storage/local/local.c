/*
 * local.c -- storage driver for a directory on a local (or mounted) filesystem.
 *
 * Layer: storage driver (reached only through storage.c; names arrive already validated).
 * Layout: object "data/ab/cd..." is the file <root>/data/ab/cd...; directories are created on
 * demand with mode 0700, files with 0600.
 * Invariants:
 * - An object appears whole or not at all: put writes ".tmp-<random>" in the object's own
 *   directory, fsyncs it (opts->sync, on by default), then publishes it under its name with
 *   renameat2(RENAME_NOREPLACE), or linkat() where the filesystem lacks that flag, or rename()
 *   for overwrite; then fsyncs the directory. A failed put removes its temp file.
 * - ".tmp-*" files are never listed (storage.c also forbids such names for objects).
 * - All paths are resolved relative to a directory fd opened once, so the driver does not
 *   depend on the current directory after open; the state is read-only after open, so calls
 *   from many threads need no locking (temp names are random and created with O_EXCL).
 * Clock: now() is this kernel's CLOCK_REALTIME, the same clock that stamps file mtimes on a
 * local filesystem. On network filesystems (NFS, SMB, FUSE, 9P, Ceph, AFS) the server stamps
 * mtimes, so now() instead writes a temp file and reads back its mtime.
 */
#include "storage/storage_intern.h"

#include "common/buf.h"
#include "common/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define TMP_PREFIX ".tmp-"
#define TMP_NAME_MAX 1100   /* object name (<= 1024) + ".tmp-" + 16 hex digits */
#define LIST_DEPTH_MAX 1024 /* a directory path longer than a name cannot hold objects */

/* Open descriptors of recently read packs: a restore reads many blobs of one pack in a row,
 * and packs never change (they are content-addressed), so a descriptor stays valid to read
 * even after a concurrent prune unlinks the file. */
#define FD_CACHE 16
typedef struct fd_slot {
    char name[96];
    int fd;
    uint64_t size;
    unsigned refs;
    uint64_t used;
} fd_slot_t;

struct local {
    char *root;  /* absolute, no trailing '/' (except "/" itself) */
    int fd;      /* root directory, O_RDONLY|O_DIRECTORY */
    bool remote; /* the filesystem's server stamps mtimes */
    pthread_mutex_t cache_mu;
    fd_slot_t cache[FD_CACHE];
    uint64_t clock;
};

/* The object's directory part, "" for a top-level name. */
static size_t dir_len(const char *name)
{
    const char *slash = strrchr(name, '/');
    return slash ? (size_t)(slash - name) : 0;
}

static int io_err(const struct local *l, int e, const char *what, const char *path)
{
    if (e == ENOSPC || e == EDQUOT)
        return err_set(COFFER_ENOSPC,
                       "the disk at %s is full (%s): nothing was written; free space or move "
                       "the repository, then run again",
                       l->root, strerror(e));
    return err_set(COFFER_EIO, "cannot %s %s/%s: %s", what, l->root, path, strerror(e));
}

static void buf_truncate_to(buf_t *b, size_t len)
{
    b->len = len;
    if (b->data)
        b->data[len] = 0;
}

static int missing(const struct local *l)
{
    return err_set(COFFER_ENOENT, "no such object in %s", l->root);
}

static void random_hex(char *out, size_t nbytes)
{
    uint8_t rnd[16];
    if (nbytes > sizeof rnd)
        nbytes = sizeof rnd;
    if (getrandom(rnd, nbytes, 0) != (ssize_t)nbytes) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t v = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
        for (size_t i = 0; i < nbytes; i++)
            rnd[i] = (uint8_t)(v >> (8 * (i % 8)));
    }
    hex_encode(rnd, nbytes, out);
}

static int fsync_dir(const struct local *l, const char *rel)
{
    int fd = rel[0] ? openat(l->fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : l->fd;
    if (fd < 0)
        return io_err(l, errno, "open directory", rel);
    int rc = 0;
    /* Some filesystems cannot fsync a directory (EINVAL); there is nothing more to do there. */
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = io_err(l, errno, "sync directory", rel);
    if (fd != l->fd)
        close(fd);
    return rc;
}

/* mkdir -p for the first dlen bytes of name, relative to the root. */
static int make_parents(const struct local *l, const char *name, size_t dlen, bool sync)
{
    char path[TMP_NAME_MAX];
    for (size_t i = 1; i <= dlen; i++) {
        if (i < dlen && name[i] != '/')
            continue;
        memcpy(path, name, i);
        path[i] = 0;
        if (mkdirat(l->fd, path, 0700) == 0) {
            if (sync) {
                char *slash = strrchr(path, '/');
                if (slash)
                    *slash = 0;
                int rc = fsync_dir(l, slash ? path : "");
                if (rc)
                    return rc;
            }
        } else if (errno != EEXIST) {
            return io_err(l, errno, "create directory", path);
        }
    }
    return 0;
}

/* Create and open a fresh temp file next to where `name` will live. */
static int tmp_create(const struct local *l, const char *name, bool sync, char *tmp, int *out_fd)
{
    size_t dlen = dir_len(name);
    bool made_dirs = false;
    for (int tries = 0;; tries++) {
        char hex[17];
        random_hex(hex, 8);
        snprintf(tmp, TMP_NAME_MAX, "%.*s%s" TMP_PREFIX "%s", (int)dlen, name, dlen ? "/" : "",
                 hex);
        int fd = openat(l->fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            *out_fd = fd;
            return 0;
        }
        if (errno == ENOENT && dlen && !made_dirs) {
            int rc = make_parents(l, name, dlen, sync);
            if (rc)
                return rc;
            made_dirs = true;
            continue;
        }
        if (errno == EEXIST && tries < 8)
            continue; /* random collision: draw another name */
        return io_err(l, errno, "create", tmp);
    }
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int local_put(void *state, const char *name, const void *data, size_t len,
                     const storage_put_opts_t *opts, bool *transient)
{
    struct local *l = state;
    bool overwrite = opts ? opts->overwrite : false;
    bool sync = opts ? opts->sync : true;
    char tmp[TMP_NAME_MAX];
    char dir[TMP_NAME_MAX];
    bool have_tmp = false;
    int fd = -1;
    int cfd;
    int rc;

    (void)transient;
    rc = tmp_create(l, name, sync, tmp, &fd);
    if (rc)
        goto out;
    have_tmp = true;
    if (write_all(fd, data, len) != 0) {
        rc = io_err(l, errno, "write", tmp);
        goto out;
    }
    if (sync && fsync(fd) != 0) {
        rc = io_err(l, errno, "sync", tmp);
        goto out;
    }
    cfd = fd;
    fd = -1;
    if (close(cfd) != 0) { /* NFS reports write errors here */
        rc = io_err(l, errno, "write", tmp);
        goto out;
    }

    if (overwrite) {
        if (renameat(l->fd, tmp, l->fd, name) != 0) {
            rc = io_err(l, errno, "rename temp file to", name);
            goto out;
        }
        have_tmp = false;
    } else if (renameat2(l->fd, tmp, l->fd, name, RENAME_NOREPLACE) == 0) {
        have_tmp = false;
    } else if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
        rc = errno == EEXIST ? COFFER_EEXIST : io_err(l, errno, "rename temp file to", name);
        goto out;
    } else if (linkat(l->fd, tmp, l->fd, name, 0) != 0) {
        /* The filesystem cannot rename without replacing: a hard link is create-only too.
         * The temp file is removed below either way. */
        rc = errno == EEXIST ? COFFER_EEXIST : io_err(l, errno, "link temp file to", name);
        goto out;
    }
    if (sync) {
        snprintf(dir, sizeof dir, "%.*s", (int)dir_len(name), name);
        rc = fsync_dir(l, dir);
    }
out:
    if (rc == COFFER_EEXIST)
        err_set(COFFER_EEXIST,
                "an object with this name already exists in %s (objects are "
                "written once)",
                l->root);
    if (fd >= 0)
        close(fd);
    if (have_tmp)
        unlinkat(l->fd, tmp, 0);
    return rc;
}

/* ---- streaming uploads: a temp file at the root, renamed into place at commit ---- */

typedef struct local_upload {
    struct local *l;
    int fd;
    char tmp[TMP_NAME_MAX];
} local_upload_t;

static int local_upload_begin(void *state, void **out)
{
    struct local *l = state;
    local_upload_t *u = calloc(1, sizeof *u);
    if (!u)
        return err_set(COFFER_ENOMEM, "out of memory");
    u->l = l;
    int rc = tmp_create(l, "upload", false, u->tmp, &u->fd);
    if (rc) {
        free(u);
        return rc;
    }
    *out = u;
    return 0;
}

static int local_upload_write(void *upload, const void *data, size_t len)
{
    local_upload_t *u = upload;
    if (write_all(u->fd, data, len) != 0)
        return io_err(u->l, errno, "write", u->tmp);
    return 0;
}

static void local_upload_abort(void *upload)
{
    local_upload_t *u = upload;
    if (!u)
        return;
    if (u->fd >= 0)
        close(u->fd);
    unlinkat(u->l->fd, u->tmp, 0);
    free(u);
}

static int local_upload_commit(void *upload, const char *name, const storage_put_opts_t *opts)
{
    local_upload_t *u = upload;
    struct local *l = u->l;
    bool overwrite = opts ? opts->overwrite : false;
    bool sync = opts ? opts->sync : true;
    char dir[TMP_NAME_MAX];
    int rc = 0;
    size_t dlen = dir_len(name);
    if (sync && fsync(u->fd) != 0) {
        rc = io_err(l, errno, "sync", u->tmp);
        goto out;
    }
    int cfd = u->fd;
    u->fd = -1;
    if (close(cfd) != 0) {
        rc = io_err(l, errno, "write", u->tmp);
        goto out;
    }
    if (dlen && (rc = make_parents(l, name, dlen, sync)))
        goto out;
    if (overwrite) {
        if (renameat(l->fd, u->tmp, l->fd, name) != 0)
            rc = io_err(l, errno, "rename temp file to", name);
    } else if (renameat2(l->fd, u->tmp, l->fd, name, RENAME_NOREPLACE) != 0) {
        if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
            rc = errno == EEXIST ? COFFER_EEXIST : io_err(l, errno, "rename temp file to", name);
        else if (linkat(l->fd, u->tmp, l->fd, name, 0) != 0)
            rc = errno == EEXIST ? COFFER_EEXIST : io_err(l, errno, "link temp file to", name);
    }
    if (!rc && sync) {
        snprintf(dir, sizeof dir, "%.*s", (int)dlen, name);
        rc = fsync_dir(l, dir);
    }
out:
    if (rc == COFFER_EEXIST)
        err_set(COFFER_EEXIST, "an object with this name already exists in %s", l->root);
    local_upload_abort(u); /* closes and removes the temp name if it is still there */
    return rc;
}

/* ---- cleanup of temp files left by crashed writers ---- */

static void cleanup_dir(int dfd, int depth, int64_t cutoff, uint64_t *removed)
{
    int dup_fd = dup(dfd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0)
            close(dup_fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *en = de->d_name;
        struct stat st;
        if (!strcmp(en, ".") || !strcmp(en, "..") ||
            fstatat(dfd, en, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < 3) {
            int sub = openat(dfd, en, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                cleanup_dir(sub, depth + 1, cutoff, removed);
                close(sub);
            }
        } else if (S_ISREG(st.st_mode) && !strncmp(en, TMP_PREFIX, strlen(TMP_PREFIX)) &&
                   (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec < cutoff &&
                   unlinkat(dfd, en, 0) == 0) {
            (*removed)++;
        }
    }
    closedir(d);
}

static int local_cleanup(void *state, int64_t older_than_ns, uint64_t *out_removed)
{
    struct local *l = state;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    cleanup_dir(l->fd, 0, now - older_than_ns, out_removed);
    return 0;
}

/* Open a regular file for reading; directories and other non-objects are ENOENT. */
static int open_object(const struct local *l, const char *name, int *out_fd, struct stat *out_st)
{
    int fd = openat(l->fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
            return missing(l);
        return io_err(l, errno, "open", name);
    }
    if (fstat(fd, out_st) != 0) {
        int rc = io_err(l, errno, "stat", name);
        close(fd);
        return rc;
    }
    if (!S_ISREG(out_st->st_mode)) {
        close(fd);
        return missing(l);
    }
    *out_fd = fd;
    return 0;
}

/* A cached descriptor for a pack (refs taken), or -1. */
static int cache_get(struct local *l, const char *name, uint64_t *out_size, int *out_slot)
{
    int fd = -1;
    pthread_mutex_lock(&l->cache_mu);
    for (int i = 0; i < FD_CACHE; i++) {
        fd_slot_t *c = &l->cache[i];
        if (c->fd >= 0 && strcmp(c->name, name) == 0) {
            c->refs++;
            c->used = ++l->clock;
            fd = c->fd;
            *out_size = c->size;
            *out_slot = i;
            break;
        }
    }
    pthread_mutex_unlock(&l->cache_mu);
    return fd;
}

/* Offer a freshly opened pack descriptor to the cache; returns the slot (refs taken) or -1
 * when no slot is free (the caller then closes fd itself). */
static int cache_put(struct local *l, const char *name, int fd, uint64_t size)
{
    int slot = -1;
    if (strlen(name) >= sizeof l->cache[0].name)
        return -1;
    pthread_mutex_lock(&l->cache_mu);
    for (int i = 0; i < FD_CACHE && slot < 0; i++) /* an empty slot first */
        if (l->cache[i].fd < 0)
            slot = i;
    if (slot < 0) { /* else the least recently used idle one */
        for (int i = 0; i < FD_CACHE; i++) {
            const fd_slot_t *c = &l->cache[i];
            if (c->refs == 0 && (slot < 0 || c->used < l->cache[slot].used))
                slot = i;
        }
    }
    if (slot >= 0) {
        fd_slot_t *c = &l->cache[slot];
        if (c->fd >= 0)
            close(c->fd);
        snprintf(c->name, sizeof c->name, "%s", name);
        c->fd = fd;
        c->size = size;
        c->refs = 1;
        c->used = ++l->clock;
    }
    pthread_mutex_unlock(&l->cache_mu);
    return slot;
}

static void cache_release(struct local *l, int slot)
{
    pthread_mutex_lock(&l->cache_mu);
    l->cache[slot].refs--;
    pthread_mutex_unlock(&l->cache_mu);
}

static int local_get(void *state, const char *name, uint64_t off, uint64_t len, buf_t *out,
                     bool *transient)
{
    struct local *l = state;
    size_t keep = out->len;
    struct stat st = {0};
    int fd = -1, slot = -1;
    uint64_t size = 0;
    int rc = 0;

    (void)transient;
    bool pack = strncmp(name, "data/", 5) == 0;
    if (pack)
        fd = cache_get(l, name, &size, &slot);
    if (fd < 0) {
        rc = open_object(l, name, &fd, &st);
        if (rc)
            goto out;
        size = (uint64_t)st.st_size;
        if (pack)
            slot = cache_put(l, name, fd, size);
    }
    if (off > size) {
        rc = err_set(COFFER_EINVAL, "offset %llu is past the end of the object (%llu bytes)",
                     (unsigned long long)off, (unsigned long long)size);
        goto out;
    }
    uint64_t want = size - off;
    if (len && len < want)
        want = len;
    if (want > BUF_MAX) {
        rc = err_set(COFFER_ELIMIT, "reading %llu bytes at once is over the %zu-byte limit",
                     (unsigned long long)want, (size_t)BUF_MAX);
        goto out;
    }
    rc = buf_reserve(out, (size_t)want);
    if (rc)
        goto out;
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(fd, out->data + keep + got, (size_t)want - got, (off_t)(off + got));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = io_err(l, errno, "read", name);
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    out->len = keep + got;
    out->data[out->len] = 0;
out:
    if (slot >= 0)
        cache_release(l, slot);
    else if (fd >= 0)
        close(fd);
    return rc;
}

static void fill_stat(const struct stat *st, storage_stat_t *out)
{
    out->size = (uint64_t)st->st_size;
    out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int local_stat(void *state, const char *name, storage_stat_t *out, bool *transient)
{
    struct local *l = state;
    struct stat st;
    (void)transient;
    if (fstatat(l->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return missing(l);
        return io_err(l, errno, "stat", name);
    }
    if (!S_ISREG(st.st_mode))
        return missing(l);
    fill_stat(&st, out);
    return 0;
}

/* List the directory path->data ("" = root) and below; path is restored before returning. */
static int list_dir(const struct local *l, buf_t *path, const char *prefix, size_t plen,
                    storage_list_cb cb, void *ud)
{
    size_t base = path->len;
    DIR *d = NULL;
    int rc = 0;

    int dfd = openat(l->fd, base ? (const char *)path->data : ".",
                     O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0; /* nothing under this prefix (or it vanished meanwhile) */
        return io_err(l, errno, "open directory", base ? (const char *)path->data : ".");
    }
    d = fdopendir(dfd);
    if (!d) {
        rc = io_err(l, errno, "read directory", base ? (const char *)path->data : ".");
        close(dfd);
        goto out;
    }
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                rc = io_err(l, errno, "read directory", base ? (const char *)path->data : ".");
            break;
        }
        const char *en = de->d_name;
        if (!strcmp(en, ".") || !strcmp(en, "..") || !strncmp(en, TMP_PREFIX, strlen(TMP_PREFIX)))
            continue;
        buf_truncate_to(path, base);
        rc = buf_append_str(path, en);
        if (rc)
            break;
        size_t cmp = path->len < plen ? path->len : plen;
        if (memcmp(path->data, prefix, cmp) != 0)
            continue; /* neither under the prefix nor on the way to it */
        struct stat st;
        if (fstatat(dirfd(d), en, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT)
                continue; /* removed while we listed */
            rc = io_err(l, errno, "stat", (const char *)path->data);
            break;
        }
        if (S_ISDIR(st.st_mode) && path->len < LIST_DEPTH_MAX) {
            rc = buf_append(path, "/", 1);
            if (!rc)
                rc = list_dir(l, path, prefix, plen, cb, ud);
        } else if (S_ISREG(st.st_mode) && path->len >= plen) {
            storage_stat_t sst;
            fill_stat(&st, &sst);
            rc = cb(ud, (const char *)path->data, &sst);
        }
        if (rc)
            break;
    }
out:
    if (d)
        closedir(d);
    buf_truncate_to(path, base);
    return rc;
}

static int local_list(void *state, const char *prefix, storage_list_cb cb, void *ud,
                      bool *transient)
{
    struct local *l = state;
    const char *slash = strrchr(prefix, '/');
    size_t dlen = slash ? (size_t)(slash - prefix) + 1 : 0;
    buf_t path;
    int rc;

    (void)transient;
    buf_init(&path);
    rc = buf_append(&path, prefix, dlen);
    if (!rc)
        rc = list_dir(l, &path, prefix, strlen(prefix), cb, ud);
    buf_release(&path);
    return rc;
}

static int local_remove(void *state, const char *name, bool *transient)
{
    struct local *l = state;
    (void)transient;
    if (unlinkat(l->fd, name, 0) != 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
            return missing(l);
        return io_err(l, errno, "remove", name);
    }
    return 0;
}

/* On a network filesystem: the mtime the server gives a file written now. */
static int remote_now(const struct local *l, int64_t *out_ns)
{
    char tmp[64];
    char hex[17];
    struct stat st = {0};
    int rc = 0;

    random_hex(hex, 8);
    snprintf(tmp, sizeof tmp, TMP_PREFIX "clock-%s", hex);
    int fd = openat(l->fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return io_err(l, errno, "create", tmp);
    /* A write then fsync makes the server set mtime and the client fetch it back. */
    if (write_all(fd, (const uint8_t *)"t", 1) != 0 || fsync(fd) != 0 || fstat(fd, &st) != 0)
        rc = io_err(l, errno, "write", tmp);
    close(fd);
    unlinkat(l->fd, tmp, 0);
    if (rc == 0)
        *out_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return rc;
}

static int local_now(void *state, int64_t *out_ns)
{
    struct local *l = state;
    struct timespec ts;
    if (l->remote)
        return remote_now(l, out_ns);
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return err_errno("cannot read the system clock");
    *out_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return 0;
}

static bool fs_is_remote(int fd)
{
    static const uint32_t magics[] = {
        0x6969,     /* NFS */
        0x517B,     /* SMB */
        0xFF534D42, /* CIFS */
        0xFE534D42, /* SMB2 */
        0x65735546, /* FUSE (sshfs, s3fs, ...) */
        0x01021997, /* 9P */
        0x00C36400, /* Ceph */
        0x5346414F, /* AFS */
    };
    struct statfs sfs;
    if (fstatfs(fd, &sfs) != 0)
        return false;
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++)
        if ((uint32_t)sfs.f_type == magics[i])
            return true;
    return false;
}

/* mkdir -p an absolute path. */
static int make_root(const char *root)
{
    char path[4096 + 1];
    size_t n = strlen(root);
    if (n >= sizeof path)
        return err_set(COFFER_EINVAL, "repository path %s is too long", root);
    for (size_t i = 1; i <= n; i++) {
        if (i < n && root[i] != '/')
            continue;
        memcpy(path, root, i);
        path[i] = 0;
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            int e = errno;
            if (e == ENOSPC || e == EDQUOT)
                return err_set(COFFER_ENOSPC,
                               "cannot create repository directory %s: the disk "
                               "is full; free space and run again",
                               path);
            return err_set(COFFER_EIO, "cannot create repository directory %s: %s", path,
                           strerror(e));
        }
    }
    return 0;
}

static int local_open(const char *path, bool create, const storage_opts_t *opts, void **out_state)
{
    struct local *l = NULL;
    buf_t root;
    char *cwd = NULL;
    int rc = 0;

    buf_init(&root);
    if (path[0] != '/') {
        cwd = getcwd(NULL, 0);
        if (!cwd) {
            rc = err_errno("cannot resolve relative repository path %s", path);
            goto out;
        }
        rc = buf_printf(&root, "%s/", strcmp(cwd, "/") ? cwd : "");
        if (rc)
            goto out;
    }
    rc = buf_append_str(&root, path);
    if (rc)
        goto out;
    while (root.len > 1 && root.data[root.len - 1] == '/')
        buf_truncate_to(&root, root.len - 1);

    l = calloc(1, sizeof *l);
    if (!l) {
        rc = err_set(COFFER_ENOMEM, "out of memory opening %s", (const char *)root.data);
        goto out;
    }
    l->fd = -1;
    pthread_mutex_init(&l->cache_mu, NULL);
    for (int i = 0; i < FD_CACHE; i++)
        l->cache[i].fd = -1;
    if (create) {
        rc = make_root((const char *)root.data);
        if (rc)
            goto out;
    }
    l->fd = open((const char *)root.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (l->fd < 0) {
        if (errno == ENOENT)
            rc = err_set(COFFER_ENOREPO, "no repository at %s: run coffer init first",
                         (const char *)root.data);
        else if (errno == ENOTDIR)
            rc = err_set(COFFER_ENOREPO, "no repository at %s: it is not a directory",
                         (const char *)root.data);
        else
            rc = err_set(COFFER_EIO, "cannot open repository directory %s: %s",
                         (const char *)root.data, strerror(errno));
        goto out;
    }
    l->remote = fs_is_remote(l->fd);
    l->root = (char *)buf_steal(&root, NULL);
    *out_state = l;
    l = NULL;
out:
    if (l && l->fd >= 0)
        close(l->fd);
    free(l);
    free(cwd);
    buf_release(&root);
    return rc;
}

static void local_close(void *state)
{
    struct local *l = state;
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd);
    for (int i = 0; i < FD_CACHE; i++)
        if (l->cache[i].fd >= 0)
            close(l->cache[i].fd);
    pthread_mutex_destroy(&l->cache_mu);
    free(l->root);
    free(l);
}

const storage_driver_t storage_local_driver = {
    .version = STORAGE_DRIVER_VERSION,
    .name = "local",
    .features = STORAGE_F_RANGE | STORAGE_F_CREATE_ONLY | STORAGE_F_LOCAL,
    .open = local_open,
    .close = local_close,
    .put = local_put,
    .get = local_get,
    .stat = local_stat,
    .list = local_list,
    .remove = local_remove,
    .now = local_now,
    .upload_begin = local_upload_begin,
    .upload_write = local_upload_write,
    .upload_commit = local_upload_commit,
    .upload_abort = local_upload_abort,
    .cleanup = local_cleanup,
};
