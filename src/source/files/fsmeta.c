/*
 * fsmeta.c -- reading and restoring filesystem metadata for the files source (see fsmeta.h).
 *
 * Layer: source/files (uses repo/node.h and common).
 *
 * Every entry is reached from a directory fd without following a symlink in its last
 * component: it is opened with O_PATH|O_NOFOLLOW, which opens no device, never blocks on a
 * fifo and needs no read permission. Extended attributes go through /proc/self/fd/N of that
 * descriptor with the *following* calls (listxattr/getxattr/setxattr): the magic link resolves
 * to the entry's own inode, which for a symlink is the link itself. The l* calls would act on
 * the /proc link instead and see no attributes at all. Without /proc, regular files and
 * directories fall back to a read-only descriptor and f*xattr; other types then have none.
 *
 * Invariants: outputs are written only on success; xattrs are sorted by name (byte order) so
 * one entry always encodes the same way; every size that comes from the filesystem is capped
 * (NODE_XATTR_MAX, NODE_XATTR_VALUE_MAX, NODE_LINK_MAX) and exceeding a cap is COFFER_ELIMIT
 * naming the entry. The id/name cache is a pair of small tables behind one mutex each; NSS is
 * called outside the lock so a slow directory service does not serialize cached lookups.
 */
#include "source/files/fsmeta.h"

#include "common/error.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define NS_PER_SEC 1000000000LL
/* A list of NODE_XATTR_MAX names of at most 255 bytes each (plus NUL) fits in this. */
#define XATTR_LIST_CAP ((size_t)NODE_XATTR_MAX * 256)
#define XATTR_RETRIES 8        /* attributes that keep changing size while we read them */
#define NSS_BUF_MAX (1u << 20) /* getpwuid_r/getgrgid_r buffer cap */
#define IDCACHE_MAX 1024       /* entries per cache table; beyond this lookups go uncached */
#define REGIONS_MAX (1u << 20) /* data regions per file; the rest is read as one region */

/* ---- small helpers ---------------------------------------------------------------------- */

static const char *type_name(node_type_t t)
{
    switch (t) {
    case NODE_FILE:
        return "regular file";
    case NODE_DIR:
        return "directory";
    case NODE_SYMLINK:
        return "symlink";
    case NODE_CHR:
        return "character device";
    case NODE_BLK:
        return "block device";
    case NODE_FIFO:
        return "fifo";
    case NODE_SOCK:
        return "socket";
    }
    return "unknown entry";
}

/* 0 when the mode is not a type a node can hold. */
static node_type_t type_of(mode_t m)
{
    switch (m & S_IFMT) {
    case S_IFREG:
        return NODE_FILE;
    case S_IFDIR:
        return NODE_DIR;
    case S_IFLNK:
        return NODE_SYMLINK;
    case S_IFCHR:
        return NODE_CHR;
    case S_IFBLK:
        return NODE_BLK;
    case S_IFIFO:
        return NODE_FIFO;
    case S_IFSOCK:
        return NODE_SOCK;
    default:
        return 0;
    }
}

/* Saturates instead of overflowing for dates past year 2262 (or before 1678). */
static int64_t ts_to_ns(struct timespec ts)
{
    int64_t ns;
    if (__builtin_mul_overflow((int64_t)ts.tv_sec, NS_PER_SEC, &ns) ||
        __builtin_add_overflow(ns, (int64_t)ts.tv_nsec, &ns))
        return ts.tv_sec < 0 ? INT64_MIN : INT64_MAX;
    return ns;
}

/* Floor division, so that times before 1970 get a tv_nsec in [0, 1e9). */
static struct timespec ns_to_ts(int64_t ns)
{
    int64_t s = ns / NS_PER_SEC, r = ns % NS_PER_SEC;
    if (r < 0) {
        r += NS_PER_SEC;
        s--;
    }
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)r};
    return ts;
}

static bool proc_fd_available(void)
{
    static int state; /* 0 unknown, 1 yes, 2 no; a benign race: every thread finds the same */
    int s = __atomic_load_n(&state, __ATOMIC_RELAXED);
    if (s == 0) {
        s = access("/proc/self/fd", X_OK) == 0 ? 1 : 2;
        __atomic_store_n(&state, s, __ATOMIC_RELAXED);
    }
    return s == 1;
}

static void proc_fd_path(char *out, size_t n, int fd)
{
    snprintf(out, n, "/proc/self/fd/%d", fd);
}

static void xattrs_free(node_xattr_t *x, size_t n)
{
    if (!x)
        return;
    for (size_t i = 0; i < n; i++) {
        free(x[i].name);
        free(x[i].value);
    }
    free(x);
}

static int xattr_cmp(const void *a, const void *b)
{
    const node_xattr_t *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* ---- xattr access through one handle ---------------------------------------------------- */

typedef struct xhandle {
    int fd;         /* f*xattr descriptor when !by_path */
    bool own_fd;    /* fd was opened here and is closed by xh_close */
    bool by_path;   /* use the /proc path with the following calls */
    bool nofollow;  /* path names the entry itself: use the l* calls (fast path, no O_PATH fd) */
    char path[320]; /* /proc/self/fd/N of the O_PATH descriptor, or /proc/self/fd/DIR/NAME */
} xhandle_t;

/* 0: ready; 1: this entry has no usable xattr interface here (no /proc and not a regular
 * file or directory); < 0: error (err_* set). pfd is the O_PATH descriptor of the entry and
 * pst its fstat. */
static int xh_open(int dirfd, const char *name, int pfd, const struct stat *pst, xhandle_t *xh)
{
    xh->fd = -1;
    xh->own_fd = false;
    xh->by_path = false;
    xh->nofollow = false;
    xh->path[0] = 0;
    if (pfd < 0) { /* fast path chosen by fsmeta_read: the entry through its directory */
        xh->by_path = true;
        xh->nofollow = true;
        snprintf(xh->path, sizeof xh->path, "/proc/self/fd/%d/%s", dirfd, name);
        return 0;
    }
    if (proc_fd_available()) {
        xh->by_path = true;
        proc_fd_path(xh->path, sizeof xh->path, pfd);
        return 0;
    }
    if (!S_ISREG(pst->st_mode) && !S_ISDIR(pst->st_mode))
        return 1;
    int fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return err_errno("cannot open '%s' to access its extended attributes", name);
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_ino != pst->st_ino || st.st_dev != pst->st_dev) {
        close(fd);
        return err_set(COFFER_ENOENT,
                       "'%s' was replaced while its metadata was read; the "
                       "next run will pick it up",
                       name);
    }
    xh->fd = fd;
    xh->own_fd = true;
    return 0;
}

static void xh_close(xhandle_t *xh)
{
    if (xh->own_fd && xh->fd >= 0)
        close(xh->fd);
    xh->fd = -1;
    xh->own_fd = false;
}

static ssize_t xh_list(const xhandle_t *xh, char *buf, size_t n)
{
    if (xh->nofollow)
        return llistxattr(xh->path, buf, n);
    return xh->by_path ? listxattr(xh->path, buf, n) : flistxattr(xh->fd, buf, n);
}

static ssize_t xh_get(const xhandle_t *xh, const char *attr, void *buf, size_t n)
{
    if (xh->nofollow)
        return lgetxattr(xh->path, attr, buf, n);
    return xh->by_path ? getxattr(xh->path, attr, buf, n) : fgetxattr(xh->fd, attr, buf, n);
}

static int xh_set(const xhandle_t *xh, const char *attr, const void *val, size_t n)
{
    return xh->by_path ? setxattr(xh->path, attr, val, n, 0) : fsetxattr(xh->fd, attr, val, n, 0);
}

static bool errno_no_xattr_support(int e)
{
    return e == ENOTSUP || e == EOPNOTSUPP;
}

/* The raw name list (NUL-separated) into *out_list and *out_len; *out_len is 0 when there is
 * none or the filesystem has no xattr support. */
static int xattr_list(const xhandle_t *xh, const char *name, char **out_list, size_t *out_len)
{
    char *list = NULL;
    int rc = 0;
    for (int attempt = 0;; attempt++) {
        ssize_t sz = xh_list(xh, NULL, 0);
        if (sz < 0) {
            if (errno_no_xattr_support(errno)) {
                sz = 0;
            } else {
                rc = err_errno("cannot list extended attributes of '%s'", name);
                goto out;
            }
        }
        if (sz == 0) {
            *out_list = NULL;
            *out_len = 0;
            goto out;
        }
        if ((size_t)sz > XATTR_LIST_CAP) {
            rc = err_set(COFFER_ELIMIT,
                         "'%s' has more extended attributes than coffer records "
                         "(%d); remove some or exclude the entry",
                         name, NODE_XATTR_MAX);
            goto out;
        }
        free(list);
        list = malloc((size_t)sz);
        if (!list) {
            rc = err_set(COFFER_ENOMEM, "out of memory listing extended attributes of '%s'", name);
            goto out;
        }
        ssize_t got = xh_list(xh, list, (size_t)sz);
        if (got < 0 && errno == ERANGE && attempt < XATTR_RETRIES)
            continue; /* the list grew between the two calls */
        if (got < 0) {
            rc = err_errno("cannot list extended attributes of '%s'", name);
            goto out;
        }
        *out_list = list;
        *out_len = (size_t)got;
        list = NULL;
        goto out;
    }
out:
    free(list);
    return rc;
}

/* One value into x (name already set). Returns 0, 1 when the attribute vanished meanwhile,
 * or an error. */
static int xattr_value(const xhandle_t *xh, const char *name, node_xattr_t *x)
{
    uint8_t *val = NULL;
    int rc = 0;
    for (int attempt = 0;; attempt++) {
        ssize_t sz = xh_get(xh, x->name, NULL, 0);
        if (sz < 0 && errno == ENODATA) {
            rc = 1;
            goto out;
        }
        if (sz < 0) {
            rc = err_errno("cannot read extended attribute %s of '%s'", x->name, name);
            goto out;
        }
        if ((size_t)sz > NODE_XATTR_VALUE_MAX) {
            rc = err_set(COFFER_ELIMIT,
                         "extended attribute %s of '%s' is %zd bytes, more than "
                         "coffer records (%u); exclude the entry",
                         x->name, name, sz, NODE_XATTR_VALUE_MAX);
            goto out;
        }
        free(val);
        val = malloc(sz ? (size_t)sz : 1);
        if (!val) {
            rc = err_set(COFFER_ENOMEM, "out of memory reading extended attributes of '%s'", name);
            goto out;
        }
        ssize_t got = xh_get(xh, x->name, val, (size_t)sz);
        if (got < 0 && errno == ERANGE && attempt < XATTR_RETRIES)
            continue;
        if (got < 0 && errno == ENODATA) {
            rc = 1;
            goto out;
        }
        if (got < 0) {
            rc = err_errno("cannot read extended attribute %s of '%s'", x->name, name);
            goto out;
        }
        if (got == 0) {
            x->value = NULL;
            x->len = 0;
        } else {
            x->value = val;
            x->len = (size_t)got;
            val = NULL;
        }
        goto out;
    }
out:
    free(val);
    return rc;
}

/* All xattrs of the entry, sorted by name. */
static int xattrs_read(int dirfd, const char *name, int pfd, const struct stat *pst,
                       node_xattr_t **out, size_t *out_n)
{
    xhandle_t xh;
    char *list = NULL;
    size_t list_len = 0, count = 0, n = 0;
    node_xattr_t *xs = NULL;
    int rc = xh_open(dirfd, name, pfd, pst, &xh);
    if (rc == 1) {
        *out = NULL;
        *out_n = 0;
        return 0;
    }
    if (rc < 0)
        return rc;
    if ((rc = xattr_list(&xh, name, &list, &list_len)))
        goto out;
    for (size_t i = 0; i < list_len; i += strnlen(list + i, list_len - i) + 1)
        count++;
    if (count > NODE_XATTR_MAX) {
        rc = err_set(COFFER_ELIMIT,
                     "'%s' has %zu extended attributes, more than coffer records "
                     "(%d); remove some or exclude the entry",
                     name, count, NODE_XATTR_MAX);
        goto out;
    }
    if (count) {
        xs = calloc(count, sizeof *xs);
        if (!xs) {
            rc = err_set(COFFER_ENOMEM, "out of memory reading extended attributes of '%s'", name);
            goto out;
        }
    }
    for (size_t i = 0; i < list_len;) {
        size_t len = strnlen(list + i, list_len - i);
        if (len == 0 || i + len >= list_len) /* empty name or no NUL: stop, kernel never does */
            break;
        xs[n].name = strndup(list + i, len);
        i += len + 1;
        if (!xs[n].name) {
            rc = err_set(COFFER_ENOMEM, "out of memory reading extended attributes of '%s'", name);
            goto out;
        }
        rc = xattr_value(&xh, name, &xs[n]);
        if (rc < 0) {
            n++; /* so the name is freed */
            goto out;
        }
        if (rc == 1) { /* removed while we read: as if it never existed */
            free(xs[n].name);
            xs[n].name = NULL;
            rc = 0;
            continue;
        }
        n++;
    }
    if (n > 1)
        qsort(xs, n, sizeof *xs, xattr_cmp);
    if (n == 0) {
        free(xs);
        xs = NULL;
    }
    *out = xs;
    *out_n = n;
    xs = NULL;
    n = 0;
out:
    xattrs_free(xs, n);
    free(list);
    xh_close(&xh);
    return rc;
}

static int link_read(int fd, const char *at, const char *name, off_t st_size, char **out)
{
    size_t cap = st_size > 0 && (uint64_t)st_size < NODE_LINK_MAX ? (size_t)st_size + 1 : 256;
    char *buf = NULL;
    int rc = 0;
    for (;;) {
        free(buf);
        buf = malloc(cap);
        if (!buf) {
            rc = err_set(COFFER_ENOMEM, "out of memory reading symlink '%s'", name);
            goto out;
        }
        /* at is "" with an O_PATH descriptor (reads the link itself, Linux >= 2.6.39), or
         * the name within directory fd */
        ssize_t got = readlinkat(fd, at, buf, cap);
        if (got < 0) {
            rc = err_errno("cannot read symlink '%s'", name);
            goto out;
        }
        if ((size_t)got < cap) {
            buf[got] = 0;
            *out = buf;
            buf = NULL;
            goto out;
        }
        if (cap > NODE_LINK_MAX) {
            rc = err_set(COFFER_ELIMIT,
                         "symlink '%s' has a target longer than %d bytes; "
                         "exclude it",
                         name, NODE_LINK_MAX);
            goto out;
        }
        cap = cap * 2 > (size_t)NODE_LINK_MAX + 1 ? (size_t)NODE_LINK_MAX + 1 : cap * 2;
    }
out:
    free(buf);
    return rc;
}

/* ---- fsmeta_read ------------------------------------------------------------------------ */

int fsmeta_read(int dirfd, const char *name, const struct stat *st, node_t *n)
{
    int pfd = -1, rc = 0;
    char *nm = NULL, *user = NULL, *group = NULL, *target = NULL;
    node_xattr_t *xs = NULL;
    size_t n_xs = 0;
    node_type_t type = type_of(st->st_mode);
    if (!type) {
        rc = err_set(COFFER_EINVAL, "'%s' has an unknown file type (mode 0%o); exclude it", name,
                     (unsigned)st->st_mode);
        goto out;
    }
    /* Fast path: with /proc and a real directory fd, read the link target and xattrs through
     * the directory (readlinkat, l*xattr on /proc/self/fd/DIR/NAME): three system calls fewer
     * per entry than opening an O_PATH descriptor. An entry replaced since the caller's stat
     * is caught by the caller's later checks (size/mtime/ctime/inode) at worst one run later. */
    if (dirfd >= 0 && proc_fd_available() && strlen(name) < 256) {
        if (type == NODE_SYMLINK && (rc = link_read(dirfd, name, name, st->st_size, &target)))
            goto out;
        if ((rc = xattrs_read(dirfd, name, -1, st, &xs, &n_xs)))
            goto out;
        goto fill;
    }
    pfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0) {
        rc = err_errno("cannot open '%s' to read its metadata", name);
        goto out;
    }
    struct stat now;
    if (fstat(pfd, &now) != 0) {
        rc = err_errno("cannot stat '%s'", name);
        goto out;
    }
    if (now.st_ino != st->st_ino || now.st_dev != st->st_dev ||
        (now.st_mode & S_IFMT) != (st->st_mode & S_IFMT)) {
        rc = err_set(COFFER_ENOENT,
                     "'%s' was replaced while its metadata was read; the next "
                     "run will pick it up",
                     name);
        goto out;
    }
    if (type == NODE_SYMLINK && (rc = link_read(pfd, "", name, st->st_size, &target)))
        goto out;
    if ((rc = xattrs_read(dirfd, name, pfd, st, &xs, &n_xs)))
        goto out;
fill:
    if (!n->name && !(nm = strdup(name))) {
        rc = err_set(COFFER_ENOMEM, "out of memory reading metadata of '%s'", name);
        goto out;
    }
    /* NULL here means "no name" (or no memory, which only loses a name, not data). */
    user = fsmeta_user_name(st->st_uid);
    group = fsmeta_group_name(st->st_gid);

    if (nm)
        n->name = nm;
    nm = NULL;
    n->type = type;
    n->mode = st->st_mode & 07777;
    n->uid = st->st_uid;
    n->gid = st->st_gid;
    free(n->user);
    n->user = user;
    user = NULL;
    free(n->group);
    n->group = group;
    group = NULL;
    n->mtime_ns = ts_to_ns(st->st_mtim);
    n->ctime_ns = ts_to_ns(st->st_ctim);
    n->atime_ns = ts_to_ns(st->st_atim);
    n->size = type == NODE_FILE && st->st_size > 0 ? (uint64_t)st->st_size : 0;
    n->inode = st->st_ino;
    n->dev = st->st_dev;
    n->nlink = st->st_nlink;
    n->rdev = type == NODE_CHR || type == NODE_BLK ? (uint64_t)st->st_rdev : 0;
    free(n->link_target);
    n->link_target = target;
    target = NULL;
    xattrs_free(n->xattrs, n->n_xattrs);
    n->xattrs = xs;
    n->n_xattrs = n_xs;
    xs = NULL;
    n_xs = 0;
out:
    if (pfd >= 0)
        close(pfd);
    free(nm);
    free(user);
    free(group);
    free(target);
    xattrs_free(xs, n_xs);
    return rc;
}

/* ---- user and group names --------------------------------------------------------------- */

typedef struct idcache_ent {
    uint32_t id;
    bool known; /* false: negative entry (id has no name / name has no id) */
    char *name; /* owned; NULL for a negative id->name entry */
} idcache_ent_t;

typedef struct idcache {
    pthread_mutex_t mu;
    bool group;
    idcache_ent_t by_id[IDCACHE_MAX]; /* id -> name */
    size_t n_by_id;
    idcache_ent_t by_name[IDCACHE_MAX]; /* name -> id */
    size_t n_by_name;
} idcache_t;

static idcache_t user_cache = {.mu = PTHREAD_MUTEX_INITIALIZER, .group = false};
static idcache_t group_cache = {.mu = PTHREAD_MUTEX_INITIALIZER, .group = true};

/* The *_r calls report "no such entry" as 0 with a NULL result, or as one of these. */
static bool nss_not_found(int rc)
{
    return rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM;
}

static size_t nss_buf_start(bool group)
{
    long v = sysconf(group ? _SC_GETGR_R_SIZE_MAX : _SC_GETPW_R_SIZE_MAX);
    return v > 0 && v < (long)NSS_BUF_MAX ? (size_t)v : 1024;
}

/* Look an id up. *out_name is malloc'd or NULL (no such id). *out_cacheable is false when
 * the answer is not final (out of memory, NSS failure), so it is not cached. */
static void nss_id_to_name(bool group, uint32_t id, char **out_name, bool *out_cacheable)
{
    size_t cap = nss_buf_start(group);
    char *buf = NULL;
    *out_name = NULL;
    *out_cacheable = false;
    for (;;) {
        char *nb = realloc(buf, cap);
        if (!nb)
            goto out;
        buf = nb;
        const char *found = NULL;
        int rc;
        if (group) {
            struct group gr, *res = NULL;
            rc = getgrgid_r((gid_t)id, &gr, buf, cap, &res);
            if (res)
                found = res->gr_name;
        } else {
            struct passwd pw, *res = NULL;
            rc = getpwuid_r((uid_t)id, &pw, buf, cap, &res);
            if (res)
                found = res->pw_name;
        }
        if (!found && rc == ERANGE && cap < NSS_BUF_MAX) {
            cap *= 2;
            continue;
        }
        if (found) {
            *out_name = strdup(found);
            *out_cacheable = *out_name != NULL;
        } else {
            *out_cacheable = nss_not_found(rc);
        }
        goto out;
    }
out:
    free(buf);
}

static void nss_name_to_id(bool group, const char *name, uint32_t *out_id, bool *out_known,
                           bool *out_cacheable)
{
    size_t cap = nss_buf_start(group);
    char *buf = NULL;
    *out_known = false;
    *out_cacheable = false;
    for (;;) {
        char *nb = realloc(buf, cap);
        if (!nb)
            goto out;
        buf = nb;
        bool found = false;
        uint32_t id = 0;
        int rc;
        if (group) {
            struct group gr, *res = NULL;
            rc = getgrnam_r(name, &gr, buf, cap, &res);
            if (res) {
                found = true;
                id = res->gr_gid;
            }
        } else {
            struct passwd pw, *res = NULL;
            rc = getpwnam_r(name, &pw, buf, cap, &res);
            if (res) {
                found = true;
                id = res->pw_uid;
            }
        }
        if (!found && rc == ERANGE && cap < NSS_BUF_MAX) {
            cap *= 2;
            continue;
        }
        *out_known = found;
        *out_id = id;
        *out_cacheable = found || nss_not_found(rc);
        goto out;
    }
out:
    free(buf);
}

static char *cache_id_to_name(idcache_t *c, uint32_t id)
{
    char *ret = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_by_id; i++) {
        if (c->by_id[i].id == id) {
            ret = c->by_id[i].known ? strdup(c->by_id[i].name) : NULL;
            pthread_mutex_unlock(&c->mu);
            return ret;
        }
    }
    pthread_mutex_unlock(&c->mu);

    bool cacheable;
    nss_id_to_name(c->group, id, &ret, &cacheable);
    if (!cacheable)
        return ret;
    char *copy = ret ? strdup(ret) : NULL;
    if (ret && !copy)
        return ret;
    pthread_mutex_lock(&c->mu);
    bool present = false;
    for (size_t i = 0; i < c->n_by_id && !present; i++)
        present = c->by_id[i].id == id; /* another thread got here first */
    if (!present && c->n_by_id < IDCACHE_MAX) {
        c->by_id[c->n_by_id++] = (idcache_ent_t){.id = id, .known = ret != NULL, .name = copy};
        copy = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    free(copy);
    return ret;
}

static uint32_t cache_name_to_id(idcache_t *c, const char *name, uint32_t fallback_id)
{
    if (!name || !*name)
        return fallback_id;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_by_name; i++) {
        if (strcmp(c->by_name[i].name, name) == 0) {
            uint32_t id = c->by_name[i].known ? c->by_name[i].id : fallback_id;
            pthread_mutex_unlock(&c->mu);
            return id;
        }
    }
    pthread_mutex_unlock(&c->mu);

    uint32_t id = 0;
    bool known, cacheable;
    nss_name_to_id(c->group, name, &id, &known, &cacheable);
    char *copy = cacheable ? strdup(name) : NULL;
    if (copy) {
        pthread_mutex_lock(&c->mu);
        bool present = false;
        for (size_t i = 0; i < c->n_by_name && !present; i++)
            present = strcmp(c->by_name[i].name, name) == 0;
        if (!present && c->n_by_name < IDCACHE_MAX) {
            c->by_name[c->n_by_name++] = (idcache_ent_t){.id = id, .known = known, .name = copy};
            copy = NULL;
        }
        pthread_mutex_unlock(&c->mu);
        free(copy);
    }
    return known ? id : fallback_id;
}

char *fsmeta_user_name(uint32_t uid)
{
    return cache_id_to_name(&user_cache, uid);
}

char *fsmeta_group_name(uint32_t gid)
{
    return cache_id_to_name(&group_cache, gid);
}

uint32_t fsmeta_user_id(const char *name, uint32_t fallback_id)
{
    return cache_name_to_id(&user_cache, name, fallback_id);
}

uint32_t fsmeta_group_id(const char *name, uint32_t fallback_id)
{
    return cache_name_to_id(&group_cache, name, fallback_id);
}

/* ---- creating special entries ----------------------------------------------------------- */

static int make_special(int dirfd, const char *name, const node_t *n)
{
    mode_t perm = (mode_t)(n->mode & 0777); /* fsmeta_restore sets the exact mode later */
    switch (n->type) {
    case NODE_SYMLINK:
        return symlinkat(n->link_target, dirfd, name);
    case NODE_FIFO:
        return mkfifoat(dirfd, name, perm);
    case NODE_CHR:
        return mknodat(dirfd, name, S_IFCHR | perm, (dev_t)n->rdev);
    case NODE_BLK:
        return mknodat(dirfd, name, S_IFBLK | perm, (dev_t)n->rdev);
    case NODE_SOCK:
        return mknodat(dirfd, name, S_IFSOCK | perm, 0);
    default:
        errno = EINVAL;
        return -1;
    }
}

int fsmeta_create_special(int dirfd, const char *name, const node_t *n)
{
    if (n->type != NODE_SYMLINK && n->type != NODE_FIFO && n->type != NODE_CHR &&
        n->type != NODE_BLK && n->type != NODE_SOCK)
        return err_set(COFFER_EINVAL, "cannot create '%s': a %s is not a special file", name,
                       type_name(n->type));
    if (n->type == NODE_SYMLINK && !n->link_target)
        return err_set(COFFER_EINVAL,
                       "cannot create symlink '%s': the snapshot has no target "
                       "for it",
                       name);
    if (make_special(dirfd, name, n) == 0)
        return 0;
    if (errno == EEXIST) {
        /* Replace what is there: a file or an empty directory. */
        if (unlinkat(dirfd, name, 0) != 0) {
            if (errno != EISDIR || unlinkat(dirfd, name, AT_REMOVEDIR) != 0)
                return err_errno("cannot replace existing '%s' with a %s; remove it and retry",
                                 name, type_name(n->type));
        }
        if (make_special(dirfd, name, n) == 0)
            return 0;
    }
    if ((n->type == NODE_CHR || n->type == NODE_BLK) && errno == EPERM)
        return err_errno("cannot create %s '%s' (needs root or CAP_MKNOD; restore as root or "
                         "exclude it)",
                         type_name(n->type), name);
    return err_errno("cannot create %s '%s'", type_name(n->type), name);
}

/* ---- restore ---------------------------------------------------------------------------- */

static int restore_xattrs(int dirfd, const char *name, int pfd, const struct stat *pst,
                          const node_t *n, unsigned *warnings)
{
    xhandle_t xh;
    int rc = xh_open(dirfd, name, pfd, pst, &xh);
    if (rc == 1) {
        log_warn("cannot restore %zu extended attributes of '%s': /proc is not mounted",
                 n->n_xattrs, name);
        (*warnings)++;
        return 0;
    }
    if (rc < 0) {
        log_warn("cannot restore extended attributes: %s", err_msg());
        err_clear();
        (*warnings)++;
        return 0;
    }
    for (size_t i = 0; i < n->n_xattrs; i++) {
        const node_xattr_t *x = &n->xattrs[i];
        if (!x->name)
            continue;
        if (xh_set(&xh, x->name, x->value, x->len) == 0)
            continue;
        if (errno == ENOMEM) {
            rc = err_errno("cannot restore extended attribute %s of '%s'", x->name, name);
            goto out;
        }
        log_warn("cannot restore extended attribute %s of '%s': %s", x->name, name,
                 strerror(errno));
        (*warnings)++;
    }
out:
    xh_close(&xh);
    return rc;
}

static int restore_owner(const char *name, int pfd, const struct stat *pst, const node_t *n,
                         unsigned *warnings)
{
    uid_t uid = (uid_t)fsmeta_user_id(n->user, n->uid);
    gid_t gid = (gid_t)fsmeta_group_id(n->group, n->gid);
    if (pst->st_uid == uid && pst->st_gid == gid)
        return 0;
    /* The O_PATH descriptor is the very inode we checked; chown never follows it. */
    if (fchownat(pfd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0)
        return 0;
    if (errno == EPERM || errno == EINVAL) { /* not root, or an id unmapped in a userns */
        log_debug("cannot set owner of '%s' to %u:%u: %s", name, (unsigned)uid, (unsigned)gid,
                  strerror(errno));
        (*warnings)++;
        return 0;
    }
    return err_errno("cannot set owner of '%s' to %u:%u", name, (unsigned)uid, (unsigned)gid);
}

static int restore_mode(int dirfd, const char *name, int pfd, const node_t *n)
{
    mode_t mode = (mode_t)(n->mode & 07777);
    int r;
    if (proc_fd_available()) {
        char path[40];
        proc_fd_path(path, sizeof path, pfd);
        r = chmod(path, mode); /* resolves to the O_PATH inode, which is not a symlink */
    } else {
        r = fchmodat(dirfd, name, mode, 0);
    }
    if (r != 0)
        return err_errno("cannot set mode %04o on '%s'", (unsigned)mode, name);
    return 0;
}

static int restore_times(int dirfd, const char *name, const node_t *n)
{
    struct timespec ts[2] = {ns_to_ts(n->atime_ns), ns_to_ts(n->mtime_ns)};
    if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) != 0)
        return err_errno("cannot set times on '%s'", name);
    return 0;
}

int fsmeta_restore(int dirfd, const char *name, const node_t *n, const fsmeta_restore_opts_t *o,
                   unsigned *out_warnings)
{
    fsmeta_restore_opts_t def = {.owner = geteuid() == 0, .xattrs = true};
    unsigned warnings = 0;
    int rc = 0;
    if (!o)
        o = &def;
    int pfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0) {
        rc = err_errno("cannot open '%s' to restore its metadata", name);
        goto out;
    }
    struct stat st;
    if (fstat(pfd, &st) != 0) {
        rc = err_errno("cannot stat '%s' to restore its metadata", name);
        goto out;
    }
    if (type_of(st.st_mode) != n->type) {
        rc = err_set(COFFER_EINVAL,
                     "cannot restore metadata of '%s': it is a %s but the "
                     "snapshot has a %s; remove it and restore again",
                     name, type_name(type_of(st.st_mode)), type_name(n->type));
        goto out;
    }
    if (o->xattrs && n->n_xattrs && (rc = restore_xattrs(dirfd, name, pfd, &st, n, &warnings)))
        goto out;
    if (o->owner && (rc = restore_owner(name, pfd, &st, n, &warnings)))
        goto out;
    if (n->type != NODE_SYMLINK && (rc = restore_mode(dirfd, name, pfd, n)))
        goto out;
    if ((rc = restore_times(dirfd, name, n)))
        goto out;
    if (out_warnings)
        *out_warnings += warnings;
out:
    if (pfd >= 0)
        close(pfd);
    return rc;
}

int fsmeta_restore_fd(int fd, const char *name, const node_t *n, const fsmeta_restore_opts_t *o,
                      unsigned *out_warnings)
{
    unsigned warnings = 0;
    if (o->xattrs) {
        for (size_t i = 0; i < n->n_xattrs; i++) {
            const node_xattr_t *x = &n->xattrs[i];
            if (!x->name || fsetxattr(fd, x->name, x->value, x->len, 0) == 0)
                continue;
            if (errno == ENOMEM)
                return err_errno("cannot restore extended attribute %s of '%s'", x->name, name);
            log_warn("cannot restore extended attribute %s of '%s': %s", x->name, name,
                     strerror(errno));
            warnings++;
        }
    }
    if (o->owner) {
        uid_t uid = (uid_t)fsmeta_user_id(n->user, n->uid);
        gid_t gid = (gid_t)fsmeta_group_id(n->group, n->gid);
        if (fchown(fd, uid, gid) != 0) {
            if (errno != EPERM && errno != EINVAL)
                return err_errno("cannot set owner of '%s' to %u:%u", name, (unsigned)uid,
                                 (unsigned)gid);
            warnings++;
        }
    }
    /* after chown, which clears setuid/setgid */
    if (fchmod(fd, (mode_t)(n->mode & 07777)) != 0)
        return err_errno("cannot set mode %04o on '%s'", (unsigned)(n->mode & 07777), name);
    struct timespec ts[2] = {ns_to_ts(n->atime_ns), ns_to_ts(n->mtime_ns)};
    if (futimens(fd, ts) != 0)
        return err_errno("cannot set times on '%s'", name);
    if (out_warnings)
        *out_warnings += warnings;
    return 0;
}

/* ---- sparse files ----------------------------------------------------------------------- */

static int regions_push(fsmeta_region_t **v, size_t *n, size_t *cap, uint64_t off, uint64_t len)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        fsmeta_region_t *nv = realloc(*v, ncap * sizeof *nv);
        if (!nv)
            return err_set(COFFER_ENOMEM, "out of memory listing the data regions of a file");
        *v = nv;
        *cap = ncap;
    }
    (*v)[*n].off = off;
    (*v)[*n].len = len;
    (*n)++;
    return 0;
}

int fsmeta_data_regions(int fd, uint64_t size, fsmeta_region_t **out, size_t *out_n)
{
    fsmeta_region_t *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    /* Probing moves the file offset; put it back so a caller's read position survives. */
    off_t saved = lseek(fd, 0, SEEK_CUR);
    uint64_t off = 0;
    while (off < size) {
        off_t d = lseek(fd, (off_t)off, SEEK_DATA);
        if (d < 0 && errno == ENXIO)
            break; /* only a hole is left */
        if (d < 0 && (errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP) && off == 0) {
            rc = regions_push(&v, &n, &cap, 0, size); /* no hole support: all data */
            goto done;
        }
        if (d < 0) {
            rc = err_errno("cannot find the data regions of a file (SEEK_DATA at %llu)",
                           (unsigned long long)off);
            goto done;
        }
        if ((uint64_t)d >= size)
            break; /* data past the recorded size: the file grew, the caller reads to size */
        if (n + 1 >= REGIONS_MAX) { /* bound memory: the rest is read as data, holes as 0 */
            rc = regions_push(&v, &n, &cap, (uint64_t)d, size - (uint64_t)d);
            goto done;
        }
        off_t h = lseek(fd, d, SEEK_HOLE);
        if (h < 0 && errno == ENXIO)
            h = (off_t)size; /* shrank meanwhile: the caller notices the short read */
        else if (h < 0) {
            rc = err_errno("cannot find the data regions of a file (SEEK_HOLE at %lld)",
                           (long long)d);
            goto done;
        }
        uint64_t end = (uint64_t)h < size ? (uint64_t)h : size;
        if (end <= (uint64_t)d) /* cannot happen by the API; never loop forever */
            end = size;
        if ((rc = regions_push(&v, &n, &cap, (uint64_t)d, end - (uint64_t)d)))
            goto done;
        off = end;
    }
done:
    if (saved >= 0)
        lseek(fd, saved, SEEK_SET);
    if (rc) {
        free(v);
        return rc;
    }
    if (n == 0) {
        free(v);
        v = NULL;
    }
    *out = v;
    *out_n = n;
    return 0;
}
