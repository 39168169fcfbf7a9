/*
 * repo.h -- an open repository: storage, keys, parameters, index, blob and snapshot access.
 *
 * Layer: repo. repo_create writes a new repository (key slot, then config: config is the
 * commit point). repo_open reads config, tries every key slot with the password and derives
 * the working keys (doc/format.md §2). Reading blobs verifies them: decryption with the pack's
 * session key, decompression, and HMAC of the plaintext equal to the blob id.
 * Writing goes through writer.h.
 *
 * Thread safety: after repo_open and repo_load_index, every read function may be called from
 * many threads.
 */
#ifndef COFFER_REPO_REPO_H
#define COFFER_REPO_REPO_H

#include "chunk/chunker.h"
#include "common/buf.h"
#include "repo/envelope.h"
#include "repo/index.h"
#include "repo/keyslot.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "storage/storage.h"

#include <stdbool.h>
#include <stdint.h>

#define PACK_SIZE_DEFAULT (16u << 20)

typedef struct repo repo_t;

typedef struct repo_params {
    uint32_t chunk_min, chunk_avg, chunk_max;
    int compression; /* zstd level, 0 = none */
    uint32_t pack_size;
} repo_params_t;

/* Defaults from doc/format.md. */
void repo_params_default(repo_params_t *p);

/* Create a repository at location. kdf NULL: keyslot_kdf_from_env. Fails with COFFER_EEXIST
 * when a repository is already there. */
int repo_create(const char *location, const char *password, const repo_params_t *params,
                const keyslot_kdf_t *kdf, repo_t **out);
/* Open: COFFER_ENOREPO (nothing there), COFFER_EVERSION (newer format), COFFER_EPASSWORD. */
int repo_open(const char *location, const char *password, repo_t **out);
/* The same with storage options for the location (storage.h; NULL: none). */
int repo_create_opts(const char *location, const storage_opts_t *opts, const char *password,
                     const repo_params_t *params, const keyslot_kdf_t *kdf, repo_t **out);
int repo_open_opts(const char *location, const storage_opts_t *opts, const char *password,
                   repo_t **out);
void repo_close(repo_t *r); /* accepts NULL */

storage_t *repo_storage(repo_t *r);
keyring_t *repo_keyring(repo_t *r);
const uint8_t *repo_id(const repo_t *r);
const repo_params_t *repo_params(const repo_t *r);
const chunker_params_t *repo_chunker(const repo_t *r);
/* The id of the key slot that opened the repository (hex, borrowed). */
const char *repo_key_id(const repo_t *r);

/* Blob id = HMAC-SHA-256 of the plaintext under the id key of its type (data blobs: the id
 * key; tree blobs: the tree-id key), so a data blob and a tree blob never share an id. */
int repo_blob_id(const repo_t *r, uint8_t type, const void *data, size_t n, uint8_t out[32]);

/* Add a key slot for password; *out_id (hex, 65 bytes) names it. */
int repo_add_key(repo_t *r, const char *password, const keyslot_kdf_t *kdf, char out_id[65]);

/* Load every index segment that is not superseded, and every condemned list (marking those
 * packs PACK_F_CONDEMNED). Idempotent: a second call reloads from scratch. */
int repo_load_index(repo_t *r);
/* Strict mode (prune): a damaged index segment or condemned list fails repo_load_index.
 * Default (readers, backups): it is skipped with a warning. */
void repo_set_strict(repo_t *r, bool strict);
index_t *repo_index(repo_t *r); /* borrowed; valid until the next repo_load_index */
/* Ids of the index segments loaded (including superseded ones); borrowed. */
const uint8_t (*repo_index_ids(repo_t *r, size_t *out_n))[32];

/* Read and verify one blob (index must be loaded). COFFER_ENOENT when the index does not
 * know the blob; COFFER_ECORRUPT naming the blob and pack when it does not verify. */
int repo_read_blob(repo_t *r, uint8_t type, const uint8_t id[32], buf_t *out);
int repo_load_tree(repo_t *r, const uint8_t id[32], tree_t *out);
/* Walk from the root tree to the node named by path ("/a/b"); *out_node gets a copy (caller
 * releases). COFFER_ENOENT when a component is missing or not a directory. */
int repo_find_path(repo_t *r, const uint8_t root[32], const char *path, node_t *out_node);

/* Read a sealed object (type ENV_*) named `name` whose name is the SHA-256 of its bytes when
 * check_hash is set; payload into out (reset first). */
int repo_get_sealed(repo_t *r, const char *name, uint8_t type, bool check_hash, buf_t *out);

/* Snapshots. list: all snapshots sorted by time (oldest first); *out malloc'd array, release
 * each and free. Unreadable snapshots are skipped with a warning counted in *out_bad (may be
 * NULL). */
int repo_list_snapshots(repo_t *r, snapshot_t **out, size_t *out_n, size_t *out_bad);
void repo_free_snapshots(snapshot_t *s, size_t n);
int repo_load_snapshot(repo_t *r, const uint8_t id[32], snapshot_t *out);
/* Resolve "latest" or a hex prefix (>= 4 digits) among snaps (sorted by time); returns the
 * index into snaps. COFFER_ENOENT / COFFER_EINVAL (ambiguous) with a clear message. */
int repo_resolve_snapshot(const snapshot_t *snaps, size_t n, const char *spec, size_t *out_i);

/* Object naming helpers: out must hold at least 80 bytes. */
void repo_pack_name(const uint8_t id[32], char *out, size_t n);
void repo_obj_name(const char *dir, const uint8_t id[32], char *out, size_t n);

#endif
