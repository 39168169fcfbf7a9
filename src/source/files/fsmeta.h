/*
 * fsmeta.h -- reading and restoring filesystem metadata for the files source.
 *
 * Layer: source/files (uses repo/node.h, common). Everything is relative to a directory fd
 * (openat family), so a walk never re-resolves long paths and is immune to symlink races.
 *
 * Thread safety: all functions are thread-safe; the user/group name cache is internally
 * locked.
 */
#ifndef COFFER_SOURCE_FILES_FSMETA_H
#define COFFER_SOURCE_FILES_FSMETA_H

#include "repo/node.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

/* Fill n (initialized by the caller) from st for the entry `name` in dirfd: type, mode, uid,
 * gid, user and group names (cached lookups), times (ns), size (regular files), inode, dev,
 * nlink, rdev, symlink target (readlinkat), and xattrs (llistxattr/lgetxattr through
 * /proc/self/fd or the *at-equivalent; every namespace readable, including security.* and
 * system.posix_acl_*). Does not read file content. On a symlink, the target is stored and
 * xattrs are those of the link itself. Missing xattr support (ENOTSUP) is not an error.
 * Errors (entry vanished: COFFER_ENOENT; permission: COFFER_EIO) name the entry. */
int fsmeta_read(int dirfd, const char *name, const struct stat *st, node_t *n);

/* Name lookups with a cache (thread-safe). Return a malloc'd string (caller frees) or NULL
 * when the id has no name. */
char *fsmeta_user_name(uint32_t uid);
char *fsmeta_group_name(uint32_t gid);

/* Map a recorded name back to an id for restore: if `name` exists on this host, its id;
 * otherwise `fallback_id`. */
uint32_t fsmeta_user_id(const char *name, uint32_t fallback_id);
uint32_t fsmeta_group_id(const char *name, uint32_t fallback_id);

/* Create a non-regular, non-directory entry `name` in dirfd: symlink (symlinkat), fifo
 * (mkfifoat), character/block device (mknodat, needs CAP_MKNOD), socket (mknodat S_IFSOCK).
 * An existing entry of that name is replaced. */
int fsmeta_create_special(int dirfd, const char *name, const node_t *n);

typedef struct fsmeta_restore_opts {
    bool owner;  /* chown (lchown); on by default when running as root */
    bool xattrs; /* restore xattrs; failures are warnings, counted in *out_warnings */
} fsmeta_restore_opts_t;

/* Apply metadata of n to the existing entry `name` in dirfd, in the order that keeps it right:
 * xattrs, owner (fchownat AT_SYMLINK_NOFOLLOW, ids mapped through names when the name exists
 * here), mode (not for symlinks; after chown, since chown clears setuid), then times
 * (utimensat AT_SYMLINK_NOFOLLOW, atime and mtime in ns). Errors that a non-root restore
 * cannot avoid (EPERM on chown or on security.* xattrs) are not failures: they increment
 * *out_warnings (may be NULL). */
int fsmeta_restore(int dirfd, const char *name, const node_t *n, const fsmeta_restore_opts_t *o,
                   unsigned *out_warnings);

/* The same for a regular file through its open descriptor (fsetxattr, fchown, fchmod,
 * futimens): no lookup by name. The restore writes files through such a descriptor. */
int fsmeta_restore_fd(int fd, const char *name, const node_t *n, const fsmeta_restore_opts_t *o,
                      unsigned *out_warnings);

/* The data regions of an open regular file, as (offset, length) pairs sorted by offset,
 * from SEEK_DATA/SEEK_HOLE. A file with no holes (or a filesystem without support) gives one
 * region covering [0, size). *out is malloc'd (caller frees); *out_n may be 0 for an all-hole
 * file. */
typedef struct fsmeta_region {
    uint64_t off, len;
} fsmeta_region_t;
int fsmeta_data_regions(int fd, uint64_t size, fsmeta_region_t **out, size_t *out_n);

#endif
