/*
 * scan.c -- size scan for the backup progress line (see scan.h).
 *
 * Layer: source/files. Depth-first with openat/fstatat relative to directory descriptors, as
 * the backup walk does, so deep trees need no long paths.
 */
#include "source/files/scan.h"
#include "source/files/backup.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void scan_dir(int dfd, const char *path, char *const *ex, size_t nex,
                     volatile sig_atomic_t *stop, _Atomic uint64_t *total)
{
    int dup_fd = dup(dfd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0)
            close(dup_fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) && !(stop && *stop)) {
        const char *en = de->d_name;
        if (!strcmp(en, ".") || !strcmp(en, ".."))
            continue;
        char sub[8192];
        int len = snprintf(sub, sizeof sub, "%s/%s", path, en);
        if (len < 0 || (size_t)len >= sizeof sub) /* only the ETA loses precision */
            continue;
        if (nex && files_excluded(ex, nex, sub, en))
            continue;
        struct stat st;
        if (fstatat(dfd, en, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            atomic_fetch_add(total, (uint64_t)st.st_size);
        } else if (S_ISDIR(st.st_mode)) {
            int sfd = openat(dfd, en, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sfd >= 0) {
                scan_dir(sfd, sub, ex, nex, stop, total);
                close(sfd);
            }
        }
    }
    closedir(d);
}

void files_scan_size(char *const *paths, size_t n, char *const *excludes, size_t n_excludes,
                     volatile sig_atomic_t *stop, _Atomic uint64_t *total)
{
    for (size_t i = 0; i < n && !(stop && *stop); i++) {
        struct stat st;
        if (lstat(paths[i], &st) != 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            atomic_fetch_add(total, (uint64_t)st.st_size);
        } else if (S_ISDIR(st.st_mode)) {
            int fd = open(paths[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0) {
                scan_dir(fd, paths[i], excludes, n_excludes, stop, total);
                close(fd);
            }
        }
    }
}
