/*
 * probe.h -- the location check: probe what a storage location supports before a repository
 * is put there (`coffer init` on a remote location, `coffer check --location`).
 *
 * Layer: storage. Uses only the public interface (storage.h), so it checks every driver the
 * same way, through the generic layer's retries. It writes objects under "locationcheck/"
 * with a random suffix and removes them whatever the outcome, so it leaves nothing behind
 * unless the location stops accepting deletes midway (then the report says which object).
 */
#ifndef COFFER_STORAGE_PROBE_H
#define COFFER_STORAGE_PROBE_H

#include "storage/storage.h"

#include <jansson.h>
#include <stdbool.h>

typedef enum probe_result {
    PROBE_OK = 0,
    PROBE_WARN, /* works, with a caveat the user should know (slow, emulated, skew) */
    PROBE_FAIL, /* coffer needs this and it does not work */
    PROBE_SKIP, /* not tried because an earlier step failed */
} probe_result_t;

#define PROBE_MAX_STEPS 16

typedef struct probe_step {
    const char *name; /* "write", "read", "ranged read", ... (static) */
    probe_result_t result;
    double ms;        /* wall time of the step */
    char detail[256]; /* what was found, or the error (never a secret) */
} probe_step_t;

typedef struct probe_report {
    probe_step_t steps[PROBE_MAX_STEPS];
    int n;
    int failed, warned;
    double clock_skew_s; /* backend clock minus this host's (valid when has_skew) */
    bool has_skew;
    json_t *server; /* storage_describe's view of the location (owned; probe_report_release) */
} probe_report_t;

void probe_report_release(probe_report_t *r);

typedef struct probe_opts {
    size_t stream_bytes; /* size of the streamed (multipart) upload; 0 = 16 MiB */
} probe_opts_t;

/* Run every step; fills *out (always, even when steps fail). Returns 0 when no step failed,
 * COFFER_EIO when one did (err_msg names the first failure). */
int storage_probe(storage_t *s, const probe_opts_t *o, probe_report_t *out);

/* The report as JSON (caller owns the reference). */
json_t *probe_report_json(const probe_report_t *r);

#endif
