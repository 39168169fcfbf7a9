/*
 * check.h -- verify a repository and report every problem found, never stopping at the first.
 *
 * Layer: repo. check_run reads an open repository (repo_open done; the index need not be
 * loaded: check loads it itself, tolerating damaged segments) and fills a report with
 * findings. Structure mode (the default) reads key slots, index segments, snapshots and
 * every tree reachable from a snapshot, lists the packs and compares them with the index;
 * it reads no file data. Read-data mode additionally reads whole packs (all, or a subset)
 * and verifies each one's hash, header and every blob (decrypt, decompress, HMAC = id).
 *
 * Each finding names the object (pack, index segment, snapshot, tree or blob) and, where a
 * snapshot cannot be restored completely because of it, the snapshots affected. Damage
 * check finds is a finding, not an error return: check_run fails only when it cannot run
 * (out of memory, storage listing failure, interrupted).
 *
 * Thread safety: check_run uses a worker pool internally for reading packs; the caller must
 * not use the repository from other threads meanwhile (check_run populates its index).
 */
#ifndef COFFER_REPO_CHECK_H
#define COFFER_REPO_CHECK_H

#include "repo/repo.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum check_severity {
    CHECK_INFO = 0,    /* worth knowing (a writer is running, a prune is pending) */
    CHECK_WARNING = 1, /* not damage: e.g. an unreferenced pack that prune removes */
    CHECK_ERROR = 2,   /* damage: some data cannot be read or verified */
} check_severity_t;

typedef struct check_finding {
    check_severity_t severity;
    char *object;             /* owned: "data/ab/abcd...", "index/...", "tree <hex>", ... */
    char *message;            /* owned: one sentence naming the object and what to do */
    uint8_t (*snapshots)[32]; /* owned: snapshots that reach the damaged object */
    size_t n_snapshots;
} check_finding_t;

typedef enum check_subset {
    CHECK_SUBSET_ALL = 0, /* every pack (with read_data) */
    CHECK_SUBSET_PART,    /* part `part` (1-based) of `of`, by pack id range: deterministic */
    CHECK_SUBSET_PERCENT, /* a random `percent` % of the packs (crypto_random) */
} check_subset_t;

typedef struct check_opts {
    bool read_data;              /* read and verify pack contents */
    check_subset_t subset;       /* which packs to read when read_data */
    unsigned part, of;           /* CHECK_SUBSET_PART: 1 <= part <= of */
    double percent;              /* CHECK_SUBSET_PERCENT: 0 < percent <= 100 */
    int threads;                 /* pack readers; 0 = min(CPUs, 8) */
    _Atomic uint64_t *bytes;     /* optional progress counters: bytes of packs read... */
    _Atomic uint64_t *items;     /* ...and objects checked */
    volatile sig_atomic_t *stop; /* optional: when it becomes non-zero, stop (COFFER_EINTR) */
} check_opts_t;

typedef struct check_report {
    check_finding_t *findings; /* owned array */
    size_t n, cap;
    size_t errors, warnings, infos;
    /* what was checked */
    size_t key_slots, index_segments, packs, snapshots, trees;
    uint64_t data_blobs; /* data blob references checked, once per distinct tree */
    size_t packs_read;
    uint64_t bytes_read;
} check_report_t;

void check_report_init(check_report_t *rep);
void check_report_release(check_report_t *rep); /* accepts a zeroed or released report */

/* Parse the argument of --read-data-subset: "N%" (0 < N <= 100, decimals allowed) or "N/M"
 * (1 <= N <= M). Sets o->subset and its fields; COFFER_EINVAL with a message otherwise. */
int check_parse_subset(const char *spec, check_opts_t *o);

/* Run the check. rep is initialized by the caller (check_report_init) and filled even when
 * the call fails part-way. Returns 0 when the check ran to the end (look at rep->errors),
 * or a negative COFFER_E* when it could not. */
int check_run(repo_t *r, const check_opts_t *o, check_report_t *rep);

#endif
