/*
 * retention.h -- retention policies: which snapshots of a group `forget` keeps, and why.
 *
 * Layer: repo. Pure policy logic: no I/O, no global state except the process time zone
 * (buckets use local time, like restic). The caller lists and groups snapshots, applies the
 * policy to each group and removes what the decisions say.
 *
 * Semantics are restic's `forget` (DESIGN.md §7): snapshots are walked newest first; for each
 * bucket kind with a count left (or -1, unlimited), a snapshot is kept when its bucket (local
 * time: hour "YYYY-MM-DD HH", day, ISO week "YYYY-Www" (%G-%V), month, year; "last" gives
 * every snapshot its own bucket) differs from the bucket of the snapshot that kind kept last;
 * then the count drops by one. As in restic >= 0.17, the oldest snapshot of the group is also
 * kept by every kind that still has a count left, so a short history is kept whole.
 * keep_within keeps every snapshot newer than (newest snapshot time - keep_within), and
 * keep_tags keeps snapshots carrying a listed tag; neither consumes a count.
 *
 * Failed snapshots (status "failed") are never a good backup: no rule keeps them, they consume
 * no bucket and they are ignored when finding the newest snapshot for keep_within. A failed
 * snapshot is kept (reason RETENTION_FAILED_LATEST) only while it is newer than every good
 * snapshot of its group, so the last failed run stays visible until a good run happens.
 * An empty policy keeps everything (reason RETENTION_NO_POLICY): the caller decides whether an
 * empty policy is a usage error.
 *
 * Thread safety: the functions are reentrant (localtime_r); changing TZ while they run is not.
 */
#ifndef COFFER_REPO_RETENTION_H
#define COFFER_REPO_RETENTION_H

#include "common/buf.h"
#include "repo/snapshot.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RETENTION_UNLIMITED (-1)
#define RETENTION_MAX_TAGS 256 /* keep_tags entries */
/* keep_within cap: 200 years (so that it fits in int64 nanoseconds). */
#define RETENTION_MAX_WITHIN_S (200LL * 366 * 24 * 3600)

typedef struct retention_policy {
    /* 0 = off, N > 0 = keep N, RETENTION_UNLIMITED = keep one per bucket without limit. */
    int keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly;
    int64_t keep_within_s; /* seconds; 0 = off */
    /* Borrowed. Each entry is a tag or a comma-separated tag list ("a,b": the snapshot must
     * carry all of them); a snapshot matching any entry is kept. */
    const char *const *keep_tags;
    size_t n_keep_tags;
} retention_policy_t;

/* Reasons a snapshot is kept: bits of retention_decision_t.reasons. */
enum retention_reason {
    RETENTION_LAST = 1u << 0,
    RETENTION_HOURLY = 1u << 1,
    RETENTION_DAILY = 1u << 2,
    RETENTION_WEEKLY = 1u << 3,
    RETENTION_MONTHLY = 1u << 4,
    RETENTION_YEARLY = 1u << 5,
    RETENTION_WITHIN = 1u << 6,
    RETENTION_TAG = 1u << 7,
    RETENTION_FAILED_LATEST = 1u << 8, /* failed, but newer than every good snapshot */
    RETENTION_NO_POLICY = 1u << 9,     /* the policy is empty: nothing is removed */
};
#define RETENTION_N_REASONS 10

typedef struct retention_decision {
    bool keep;        /* keep == (reasons != 0) */
    unsigned reasons; /* enum retention_reason bits; each reason appears once */
} retention_decision_t;

/* Grouping of snapshots before a policy applies (restic --group-by). */
enum retention_group {
    RETENTION_GROUP_HOST = 1u << 0,
    RETENTION_GROUP_PATHS = 1u << 1,
    RETENTION_GROUP_TAGS = 1u << 2,
    RETENTION_GROUP_JOB = 1u << 3,
};
#define RETENTION_GROUP_DEFAULT (RETENTION_GROUP_HOST | RETENTION_GROUP_PATHS | RETENTION_GROUP_JOB)

/* The nxs-backup style policy: keep_daily = days, keep_weekly = weeks, keep_monthly = months,
 * everything else off. */
retention_policy_t retention_from_dwm(int days, int weeks, int months);

/* True when no rule is set (nothing would ever be removed). */
bool retention_policy_empty(const retention_policy_t *p);

/* Check ranges (counts >= -1, 0 <= keep_within_s <= RETENTION_MAX_WITHIN_S, at most
 * RETENTION_MAX_TAGS non-empty tag entries). 0 or COFFER_EINVAL/COFFER_ELIMIT with a message. */
int retention_policy_check(const retention_policy_t *p);

/* Apply p to the n snapshots of one group (any order; borrowed). out[i] (caller-provided,
 * n entries) receives the decision for snaps[i]; out is written only on success.
 * Errors: COFFER_EINVAL (policy out of range), COFFER_ENOMEM. */
int retention_apply(const retention_policy_t *p, const snapshot_t *const *snaps, size_t n,
                    retention_decision_t *out);

/* The name of one reason bit ("last", "daily", "within", "tag", "failed-latest",
 * "no-policy"...); "?" for anything else. Static string. */
const char *retention_reason_name(unsigned reason);

/* Reason names joined with ", " into out (reset first): "last, daily". */
int retention_reasons_format(unsigned reasons, buf_t *out);

/* Human description of the policy into out (reset first):
 * "keep 2 last, 7 daily, all monthly snapshots, those within 7d, with tag x". */
int retention_policy_describe(const retention_policy_t *p, buf_t *out);

/* Parse a duration: one or more <number><unit> with unit h (hour), d (day), w (week),
 * m (month = 30 days), y (year = 365 days), e.g. "7d", "36h", "1y6m". *out_s in seconds.
 * 0 or COFFER_EINVAL (message names the text) / COFFER_ELIMIT (over RETENTION_MAX_WITHIN_S). */
int retention_parse_duration(const char *s, int64_t *out_s);

/* Parse a --group-by list: comma-separated "host", "paths", "tags", "job"; "" means one
 * group for everything (flags 0). 0 or COFFER_EINVAL. */
int retention_parse_group_by(const char *s, unsigned *out_flags);

/* The group key of s for the given RETENTION_GROUP_* flags into out (reset first), e.g.
 * "host=db1 paths=/etc,/srv job=nightly". Paths and tags are sorted; a backslash, comma or
 * space inside a value is escaped with a backslash, so different groups never share a key.
 * flags 0 gives "". 0 or COFFER_ENOMEM/COFFER_ELIMIT. */
int retention_group_key(const snapshot_t *s, unsigned flags, buf_t *out);

#endif
