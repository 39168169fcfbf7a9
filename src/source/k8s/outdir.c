/*
 * outdir.c -- directory and archive sinks for the export (see outdir.h).
 *
 * Layer: source/k8s. Files are created relative to a directory descriptor with O_EXCL (two
 * objects can never overwrite each other silently) and mode 0600: an export can hold Secrets.
 */
#include "source/k8s/outdir.h"
#include "common/buf.h"
#include "common/error.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct k8s_outdir {
    int fd;
    char *path;
};

int k8s_outdir_open(const char *path, k8s_outdir_t **out)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return err_errno("cannot create the export directory %s", path);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return err_errno("cannot open the export directory %s", path);
    DIR *dir = fdopendir(dup(fd));
    if (dir) {
        struct dirent *de;
        while ((de = readdir(dir)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                closedir(dir);
                close(fd);
                return err_set(COFFER_EEXIST,
                               "the export directory %s is not empty; give a new "
                               "or empty directory",
                               path);
            }
        closedir(dir);
    }
    k8s_outdir_t *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        free(d);
        close(fd);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    d->fd = fd;
    *out = d;
    return 0;
}

void k8s_outdir_close(k8s_outdir_t *d)
{
    if (!d)
        return;
    if (d->fd >= 0) {
        fsync(d->fd);
        close(d->fd);
    }
    free(d->path);
    free(d);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int k8s_outdir_sink(void *ud, const char *path, const char *data, size_t n, int64_t ctime_ns)
{
    k8s_outdir_t *d = ud;
    char rel[8192];
    if (snprintf(rel, sizeof rel, "%s", path) >= (int)sizeof rel)
        return err_set(COFFER_ELIMIT, "export path too long: %s", path);
    /* parent directories */
    for (char *s = strchr(rel, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        if (mkdirat(d->fd, rel, 0700) != 0 && errno != EEXIST)
            return err_errno("cannot create %s/%s", d->path, rel);
        *s = '/';
    }
    int fd = openat(d->fd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_errno("cannot create %s/%s", d->path, rel);
    int rc = 0;
    if (write_all(fd, data, n) != 0)
        rc = err_errno("cannot write %s/%s", d->path, rel);
    if (!rc && ctime_ns > 0) {
        struct timespec ts[2] = {
            {.tv_sec = ctime_ns / 1000000000, .tv_nsec = ctime_ns % 1000000000},
            {.tv_sec = ctime_ns / 1000000000, .tv_nsec = ctime_ns % 1000000000}};
        futimens(fd, ts);
    }
    if (close(fd) != 0 && !rc)
        rc = err_errno("cannot write %s/%s", d->path, rel);
    return rc;
}

struct k8s_archive {
    struct archive *a;
    char *final, *tmp;
    int64_t now_ns;
    int fd;
    bool open;
};

static int archive_name(const char *path, int64_t now_ns, buf_t *out)
{
    time_t t = (time_t)(now_ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%SZ", &tm);
        size_t l = strlen(path);
        return buf_printf(out, "%s%sk8s-export-%s.tar.zst", path,
                          l && path[l - 1] == '/' ? "" : "/", stamp);
    }
    if (!strchr(path, '%'))
        return buf_append_str(out, path);
    char name[4096];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    /* the user's name pattern is the format, by design (strftime has no %n) */
    size_t n = strftime(name, sizeof name, path, &tm);
#pragma GCC diagnostic pop
    if (n == 0)
        return err_set(COFFER_EINVAL, "--archive %s: the name does not expand", path);
    return buf_append_str(out, name);
}

int k8s_archive_open(const char *path, int64_t now_ns, k8s_archive_t **out)
{
    k8s_archive_t *a = calloc(1, sizeof *a);
    buf_t b;
    buf_init(&b);
    if (!a)
        return err_set(COFFER_ENOMEM, "out of memory");
    a->now_ns = now_ns;
    int rc = archive_name(path, now_ns, &b);
    if (rc)
        goto fail;
    a->final = (char *)buf_steal(&b, NULL);
    if ((rc = buf_printf(&b, "%s.tmp-%d", a->final, (int)getpid())))
        goto fail;
    a->tmp = (char *)buf_steal(&b, NULL);
    if (access(a->final, F_OK) == 0) {
        rc = err_set(COFFER_EEXIST, "archive %s already exists; choose another name", a->final);
        goto fail;
    }
    a->a = archive_write_new();
    if (!a->a) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto fail;
    }
    if (archive_write_add_filter_zstd(a->a) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(a->a) != ARCHIVE_OK) {
        rc = err_set(COFFER_EINVAL, "libarchive cannot write tar.zst: %s",
                     archive_error_string(a->a));
        goto fail;
    }
    int fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = err_errno("cannot create archive %s", a->tmp);
        goto fail;
    }
    if (archive_write_open_fd(a->a, fd) != ARCHIVE_OK) {
        close(fd);
        unlink(a->tmp);
        rc = err_set(COFFER_EIO, "cannot write archive %s: %s", a->tmp, archive_error_string(a->a));
        goto fail;
    }
    a->fd = fd;
    a->open = true;
    *out = a;
    return 0;
fail:
    buf_release(&b);
    k8s_archive_free(a);
    return rc;
}

int k8s_archive_sink(void *ud, const char *path, const char *data, size_t n, int64_t ctime_ns)
{
    k8s_archive_t *a = ud;
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return err_set(COFFER_ENOMEM, "out of memory");
    archive_entry_set_pathname(e, path);
    archive_entry_set_size(e, (la_int64_t)n);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    int64_t t = ctime_ns > 0 ? ctime_ns : a->now_ns;
    archive_entry_set_mtime(e, (time_t)(t / 1000000000), (long)(t % 1000000000));
    int rc = 0;
    if (archive_write_header(a->a, e) != ARCHIVE_OK ||
        archive_write_data(a->a, data, n) != (la_ssize_t)n)
        rc = err_set(COFFER_EIO, "cannot write %s into archive %s: %s", path, a->tmp,
                     archive_error_string(a->a));
    archive_entry_free(e);
    return rc;
}

int k8s_archive_close(k8s_archive_t *a, int commit, const char **out_name)
{
    int rc = 0;
    if (a->open) {
        a->open = false;
        if (archive_write_close(a->a) != ARCHIVE_OK)
            rc = err_set(COFFER_EIO, "cannot finish archive %s: %s", a->tmp,
                         archive_error_string(a->a));
        if (!rc && fsync(a->fd) != 0)
            rc = err_errno("cannot write archive %s", a->tmp);
        if (close(a->fd) != 0 && !rc)
            rc = err_errno("cannot write archive %s", a->tmp);
    }
    if (!rc && commit) {
        if (rename(a->tmp, a->final) != 0)
            rc = err_errno("cannot rename %s to %s", a->tmp, a->final);
    }
    if (rc || !commit)
        unlink(a->tmp);
    if (!rc && out_name)
        *out_name = a->final;
    return rc;
}

void k8s_archive_free(k8s_archive_t *a)
{
    if (!a)
        return;
    if (a->open) {
        archive_write_close(a->a);
        close(a->fd);
        unlink(a->tmp);
    }
    if (a->a)
        archive_write_free(a->a);
    free(a->final);
    free(a->tmp);
    free(a);
}
