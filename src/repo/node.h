/*
 * node.h -- one entry of a snapshot tree: a file, directory, symlink, device, fifo or socket
 * with all the metadata coffer records and restores.
 *
 * Layer: repo. Sources fill nodes; tree.c encodes a sorted array of nodes into a tree blob
 * (deterministically) and decodes it back. A node owns every pointer in it; node_release
 * frees them. Nodes are plain data: no locking.
 */
#ifndef COFFER_REPO_NODE_H
#define COFFER_REPO_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NODE_NAME_MAX 4096  /* bytes in one name */
#define NODE_LINK_MAX 65536 /* bytes in a symlink target */
#define NODE_XATTR_MAX 256  /* xattrs per node */
#define NODE_XATTR_VALUE_MAX (1u << 20)

typedef enum node_type {
    NODE_FILE = 1,
    NODE_DIR = 2,
    NODE_SYMLINK = 3,
    NODE_CHR = 4,
    NODE_BLK = 5,
    NODE_FIFO = 6,
    NODE_SOCK = 7,
} node_type_t;

/* Flags recorded with a node. */
#define NODE_F_CHANGED 0x1u /* the file changed while it was read: content may be torn */
#define NODE_F_ERROR 0x2u   /* the file could not be read: content is missing or partial */

typedef struct node_xattr {
    char *name;     /* owned, NUL-terminated ("user.foo", "security.capability") */
    uint8_t *value; /* owned, may be NULL when len == 0 */
    size_t len;
} node_xattr_t;

/* One extent of a file's content: a blob of `len` plaintext bytes, or a hole of `len` zero
 * bytes that is not stored (sparse files). */
typedef struct node_extent {
    uint8_t id[32];
    uint64_t len;
    bool hole;
} node_extent_t;

typedef struct node {
    char *name; /* owned; a single path component, never "" "." ".." or containing '/' */
    node_type_t type;
    uint32_t mode; /* permission bits and setuid/setgid/sticky (mode & 07777) */
    uint32_t uid, gid;
    char *user, *group; /* owned; NULL when the id has no name on the backup host */
    int64_t mtime_ns, ctime_ns, atime_ns;
    uint64_t size;  /* file size in bytes (regular files); 0 otherwise */
    uint64_t inode; /* st_ino, for change detection and hardlinks */
    uint64_t dev;   /* st_dev */
    uint64_t nlink;
    uint64_t rdev;     /* device number for NODE_CHR / NODE_BLK */
    char *link_target; /* owned; NODE_SYMLINK only */
    node_xattr_t *xattrs;
    size_t n_xattrs;
    node_extent_t *extents; /* NODE_FILE: content in order; sum of len == size */
    size_t n_extents;
    uint8_t subtree[32]; /* NODE_DIR: id of the directory's tree blob */
    uint32_t flags;      /* NODE_F_* */
    char *error;         /* owned; message when NODE_F_ERROR or NODE_F_CHANGED is set */
} node_t;

void node_init(node_t *n);
void node_release(node_t *n); /* frees owned pointers and re-inits; accepts NULL */

/* Deep copy src into dst (dst is initialized first). */
int node_copy(node_t *dst, const node_t *src);

/* Append an extent (growing the array). */
int node_add_extent(node_t *n, const uint8_t id[32], uint64_t len, bool hole);

/* Check a name is a valid single path component (COFFER_ECORRUPT otherwise, naming it). */
int node_name_valid(const char *name, size_t len);

#endif
