/*
 * storage_intern.h -- what a storage driver implements (drivers and storage.c only).
 *
 * Layer: storage. A driver fills a const storage_driver_t with designated initializers.
 * Required: open, close, put, get, stat, list, remove. Optional (NULL when absent): now.
 * Drivers do no retries and no name validation: storage.c does both. A driver returns
 * COFFER_* codes with err_set messages; it sets *transient = true (where given) for errors a
 * retry may cure (timeouts, 5xx, connection resets).
 */
#ifndef COFFER_STORAGE_INTERN_H
#define COFFER_STORAGE_INTERN_H

#include "storage/storage.h"

struct json_t; /* jansson's json_t */

#define STORAGE_DRIVER_VERSION 2

typedef struct storage_driver {
    unsigned version; /* STORAGE_DRIVER_VERSION */
    const char *name;
    unsigned features; /* STORAGE_F_* */

    /* Option keys this driver accepts, without the "NAME." prefix; NULL-terminated; NULL when
     * it takes none. storage.c rejects other keys with the driver's prefix. */
    const char *const *options;

    /* path: the location with the scheme prefix removed; opts: all options given (look
     * values up with storage_opt, full keys); may be NULL. *out_state is driver-owned. */
    int (*open)(const char *path, bool create, const storage_opts_t *opts, void **out_state);
    void (*close)(void *state);
    int (*put)(void *state, const char *name, const void *data, size_t len,
               const storage_put_opts_t *opts, bool *transient);
    int (*get)(void *state, const char *name, uint64_t off, uint64_t len, buf_t *out,
               bool *transient);
    int (*stat)(void *state, const char *name, storage_stat_t *out, bool *transient);
    int (*list)(void *state, const char *prefix, storage_list_cb cb, void *ud, bool *transient);
    int (*remove)(void *state, const char *name, bool *transient);
    int (*now)(void *state, int64_t *out_ns); /* optional */
    /* Optional streaming upload (storage.h): begin returns a driver handle; commit publishes
     * it create-only under `name` (or replaces with opts->overwrite) and frees it; abort frees
     * it and removes any partial data. Without them, storage.c buffers in memory. */
    int (*upload_begin)(void *state, void **out_upload);
    int (*upload_write)(void *upload, const void *data, size_t len);
    int (*upload_commit)(void *upload, const char *name, const storage_put_opts_t *opts);
    void (*upload_abort)(void *upload);
    /* Optional: remove the driver's own leftovers (temp files of crashed writers) whose last
     * change is older than older_than_ns; count them in *out_removed. */
    int (*cleanup)(void *state, int64_t older_than_ns, uint64_t *out_removed);
    /* Optional: add what the driver knows about the location to `out` (a JSON object), for
     * `coffer check --location`: at least "driver"; the s3 driver adds endpoint, bucket,
     * prefix, region, addressing, "conditional_writes" ("if-none-match" when the server
     * refuses a second create-only put with 412, "emulated" when create-only is HEAD then PUT;
     * describe runs the detection probe if no create-only put has yet), multipart_threshold,
     * part_size, connections, storage_class. May issue requests; not retried by storage.c. */
    int (*describe)(void *state, struct json_t *out);
} storage_driver_t;

extern const storage_driver_t storage_local_driver;
extern const storage_driver_t storage_mem_driver;
extern const storage_driver_t storage_fault_driver;
extern const storage_driver_t storage_sftp_driver;

/* Used by the fault driver to open its inner location (with the same options). */
int storage_open_inner(const char *location, bool create, const storage_opts_t *opts,
                       storage_t **out);

#endif
