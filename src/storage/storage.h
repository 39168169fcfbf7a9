/*
 * storage.h -- the backend interface callers use (repo layer only).
 *
 * Layer: storage. Objects are named by slash-separated relative names such as "config",
 * "keys/<hex>", "data/ab/<hex>", "index/<hex>", "snapshots/<hex>", "sessions/<hex>",
 * "maint/lease". Names contain only [A-Za-z0-9._-/], never "..", never a leading "/".
 *
 * The interface assumes no filesystem: no rename, no append. Writes are whole objects and
 * create-only unless opts->overwrite is set (used only for heartbeats). Reads are whole or
 * ranged. Times (mtime) come from the backend's clock, never from this host.
 *
 * The generic layer (storage.c) validates names, retries transient errors (COFFER_EIO from a
 * driver flagged transient) with backoff, and maps errors to messages that name the object.
 * Drivers live behind storage_intern.h; callers never include a driver header.
 *
 * Thread safety: a storage_t may be used from many threads at once.
 */
#ifndef COFFER_STORAGE_STORAGE_H
#define COFFER_STORAGE_STORAGE_H

#include "common/buf.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct storage storage_t;

/* Feature bits a driver reports. */
#define STORAGE_F_RANGE 0x1u       /* ranged get is native (not emulated) */
#define STORAGE_F_CREATE_ONLY 0x2u /* put without overwrite is atomic create-only */
#define STORAGE_F_LOCAL 0x4u       /* the backend is a local filesystem */

typedef struct storage_put_opts {
    bool overwrite; /* replace an existing object (heartbeats only); default create-only */
    bool sync;      /* make durable before returning (local: fsync file and dir); default on */
} storage_put_opts_t;

typedef struct storage_stat {
    uint64_t size;
    int64_t mtime_ns; /* backend's modification time, ns since the epoch */
} storage_stat_t;

/* Called once per object by storage_list; name is borrowed for the call. Return non-zero to
 * stop the listing (that value is returned by storage_list). */
typedef int (*storage_list_cb)(void *ud, const char *name, const storage_stat_t *st);

/* Driver options, "key=value" strings such as "s3.region=eu-west-1" (the CLI's -o). A key
 * is "DRIVER.NAME" for one driver, or a bare NAME for the generic layer. Options for another
 * driver than the location's are ignored (so one list can serve the two ends of a copy); an
 * unknown key of the location's own driver or of the generic layer is COFFER_EINVAL. The
 * strings are borrowed for the storage_open_opts call only. */
typedef struct storage_opts {
    const char *const *kv;
    size_t n;
} storage_opts_t;

/* The value of option `key` (full key, e.g. "s3.region"), the last one given winning; NULL
 * when absent or opts is NULL. The result points into opts->kv. */
const char *storage_opt(const storage_opts_t *opts, const char *key);

/* Open a location: "/path", "local:/path", "mem:NAME" (in-process, tests), and
 * "fault:SPEC:LOCATION" (fault injection wrapper over another location, tests; SPEC may be
 * empty; see storage/fault/fault.c, also applied to every location when COFFER_FAULT is set).
 * create: make the location (mkdir -p) if it does not exist; otherwise a missing location is
 * COFFER_ENOREPO. *out is owned by the caller: storage_close frees it. */
int storage_open(const char *location, bool create, storage_t **out);
/* storage_open with driver options (NULL: none). */
int storage_open_opts(const char *location, bool create, const storage_opts_t *opts,
                      storage_t **out);
void storage_close(storage_t *s); /* accepts NULL */

const char *storage_name(const storage_t *s);     /* driver name: "local", "mem", ... */
const char *storage_location(const storage_t *s); /* the location as given (no secrets) */
unsigned storage_features(const storage_t *s);

/* Create object `name` with the given bytes. Without opts->overwrite an existing object gives
 * COFFER_EEXIST and is left untouched. A failed put leaves no partial object visible. */
int storage_put(storage_t *s, const char *name, const void *data, size_t len,
                const storage_put_opts_t *opts);

/* Streaming upload of an object whose name is known only at the end (a pack is named by the
 * hash of its bytes). Drivers that can (local: a temp file renamed into place) keep nothing in
 * memory; for the others the bytes are buffered and stored with storage_put at commit.
 * commit is create-only like storage_put (COFFER_EEXIST when the object exists); commit and
 * abort free the upload. An upload is used by one thread at a time. */
typedef struct storage_upload storage_upload_t;
int storage_upload_begin(storage_t *s, storage_upload_t **out);
int storage_upload_write(storage_upload_t *u, const void *data, size_t len);
uint64_t storage_upload_size(const storage_upload_t *u);
int storage_upload_commit(storage_upload_t *u, const char *name, const storage_put_opts_t *opts);
void storage_upload_abort(storage_upload_t *u); /* accepts NULL */

/* Remove leftovers of crashed writers (e.g. the local driver's temp files) not changed for
 * older_than_ns (backend clock). A no-op for drivers that leave none. */
int storage_cleanup(storage_t *s, int64_t older_than_ns, uint64_t *out_removed);

/* Read object `name` into out (appended after out->len). len == 0 means "to the end".
 * Reading past the end returns the bytes that exist (short read is not an error);
 * an offset beyond the end gives COFFER_EINVAL. Missing object: COFFER_ENOENT. */
int storage_get(storage_t *s, const char *name, uint64_t off, uint64_t len, buf_t *out);

int storage_stat(storage_t *s, const char *name, storage_stat_t *out);

/* List objects whose names start with prefix (e.g. "index/" or "data/"), any depth, in no
 * particular order. Names passed to cb are full names ("index/ab12..."). */
int storage_list(storage_t *s, const char *prefix, storage_list_cb cb, void *ud);

/* Remove an object. Removing a missing object is COFFER_ENOENT. */
int storage_remove(storage_t *s, const char *name);

/* The backend's current time (ns): written as a probe object and read back via stat, or the
 * driver's native clock. Used for heartbeats and prune decisions instead of this host's clock. */
int storage_now(storage_t *s, int64_t *out_ns);

#endif
