/*
 * retention.c -- retention policies (see retention.h): restic's forget algorithm over one
 * group of snapshots, with failed snapshots kept out of every bucket.
 *
 * Layer: repo. No I/O; the only allocation is the sorted work array of retention_apply.
 */
#include "repo/retention.h"
#include "common/error.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The counted kinds, in restic's order; the index is the bucket number below. */
enum { B_LAST, B_HOURLY, B_DAILY, B_WEEKLY, B_MONTHLY, B_YEARLY, B_COUNT };

static const unsigned bucket_reason[B_COUNT] = {RETENTION_LAST,    RETENTION_HOURLY,
                                                RETENTION_DAILY,   RETENTION_WEEKLY,
                                                RETENTION_MONTHLY, RETENTION_YEARLY};

static const char *const reason_names[RETENTION_N_REASONS] = {
    "last",   "hourly", "daily", "weekly",        "monthly",
    "yearly", "within", "tag",   "failed-latest", "no-policy"};

retention_policy_t retention_from_dwm(int days, int weeks, int months)
{
    retention_policy_t p = {0};
    p.keep_daily = days;
    p.keep_weekly = weeks;
    p.keep_monthly = months;
    return p;
}

static void policy_counts(const retention_policy_t *p, int out[B_COUNT])
{
    out[B_LAST] = p->keep_last;
    out[B_HOURLY] = p->keep_hourly;
    out[B_DAILY] = p->keep_daily;
    out[B_WEEKLY] = p->keep_weekly;
    out[B_MONTHLY] = p->keep_monthly;
    out[B_YEARLY] = p->keep_yearly;
}

static bool has_keep_tags(const retention_policy_t *p)
{
    for (size_t i = 0; i < p->n_keep_tags; i++)
        if (p->keep_tags[i] && p->keep_tags[i][0])
            return true;
    return false;
}

bool retention_policy_empty(const retention_policy_t *p)
{
    int c[B_COUNT];
    policy_counts(p, c);
    for (int b = 0; b < B_COUNT; b++)
        if (c[b] != 0)
            return false;
    return p->keep_within_s == 0 && !has_keep_tags(p);
}

int retention_policy_check(const retention_policy_t *p)
{
    static const char *const opt[B_COUNT] = {"keep-last",   "keep-hourly",  "keep-daily",
                                             "keep-weekly", "keep-monthly", "keep-yearly"};
    int c[B_COUNT];
    policy_counts(p, c);
    for (int b = 0; b < B_COUNT; b++)
        if (c[b] < RETENTION_UNLIMITED)
            return err_set(COFFER_EINVAL,
                           "retention policy: %s is %d; use a count, 0 (off) or -1 (unlimited)",
                           opt[b], c[b]);
    if (p->keep_within_s < 0 || p->keep_within_s > RETENTION_MAX_WITHIN_S)
        return err_set(COFFER_EINVAL,
                       "retention policy: keep-within of %lld s is out of range (0 to 200 years)",
                       (long long)p->keep_within_s);
    if (p->n_keep_tags > RETENTION_MAX_TAGS)
        return err_set(COFFER_ELIMIT, "retention policy: %zu keep-tag entries (limit %d)",
                       p->n_keep_tags, RETENTION_MAX_TAGS);
    if (p->n_keep_tags && !p->keep_tags)
        return err_set(COFFER_EINVAL, "retention policy: keep-tag list is missing");
    return 0;
}

static bool is_failed(const snapshot_t *s)
{
    return s->status && strcmp(s->status, "failed") == 0;
}

/* True when s carries every tag of the comma-separated list `entry` (empty items ignored;
 * an entry with no items matches nothing). */
static bool has_tag_list(const snapshot_t *s, const char *entry)
{
    bool any = false;
    const char *p = entry;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len) {
            bool found = false;
            for (size_t i = 0; i < s->n_tags && !found; i++)
                found = s->tags[i] && strlen(s->tags[i]) == len && memcmp(s->tags[i], p, len) == 0;
            if (!found)
                return false;
            any = true;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return any;
}

typedef struct ordered {
    const snapshot_t *s;
    size_t i; /* index into the caller's array */
} ordered_t;

/* Newest first; equal times by id (descending) so the result does not depend on input order. */
static int cmp_newest_first(const void *a, const void *b)
{
    const snapshot_t *x = ((const ordered_t *)a)->s, *y = ((const ordered_t *)b)->s;
    if (x->time_ns != y->time_ns)
        return x->time_ns > y->time_ns ? -1 : 1;
    return -memcmp(x->id, y->id, sizeof x->id);
}

/* The bucket of time_ns for kind b (not B_LAST: every snapshot is its own "last" bucket) in
 * local time. Literal formats so the compiler checks them. */
static void bucket_of(int b, int64_t time_ns, char *out, size_t n)
{
    int64_t sec = time_ns / 1000000000;
    if (time_ns % 1000000000 < 0)
        sec--;
    time_t t = (time_t)sec;
    struct tm tm;
    size_t len = 0;
    if (localtime_r(&t, &tm)) {
        switch (b) {
        case B_HOURLY:
            len = strftime(out, n, "%Y-%m-%d %H", &tm);
            break;
        case B_DAILY:
            len = strftime(out, n, "%Y-%m-%d", &tm);
            break;
        case B_WEEKLY:
            len = strftime(out, n, "%G-W%V", &tm);
            break;
        case B_MONTHLY:
            len = strftime(out, n, "%Y-%m", &tm);
            break;
        default:
            len = strftime(out, n, "%Y", &tm);
            break;
        }
    }
    if (len == 0)
        out[0] = 0; /* out of libc's range: one shared bucket rather than a crash */
}

int retention_apply(const retention_policy_t *p, const snapshot_t *const *snaps, size_t n,
                    retention_decision_t *out)
{
    int rc = retention_policy_check(p);
    if (rc)
        return rc;
    if (retention_policy_empty(p)) {
        for (size_t i = 0; i < n; i++)
            out[i] = (retention_decision_t){.keep = true, .reasons = RETENTION_NO_POLICY};
        return 0;
    }
    ordered_t *good = calloc(n ? n : 1, sizeof *good);
    if (!good)
        return err_set(COFFER_ENOMEM,
                       "out of memory applying a retention policy to %zu "
                       "snapshots",
                       n);
    size_t ng = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_failed(snaps[i]))
            good[ng++] = (ordered_t){snaps[i], i};
    qsort(good, ng, sizeof *good, cmp_newest_first);

    int count[B_COUNT];
    policy_counts(p, count);
    char last[B_COUNT][32];
    bool have_last[B_COUNT] = {false};
    int64_t newest = ng ? good[0].s->time_ns : 0;
    int64_t within_ns = p->keep_within_s * 1000000000; /* <= 200 years: fits */

    /* Failed snapshots first: kept only while newer than every good one. */
    for (size_t i = 0; i < n; i++)
        if (is_failed(snaps[i])) {
            bool keep = ng == 0 || snaps[i]->time_ns > newest;
            out[i] = (retention_decision_t){keep, keep ? RETENTION_FAILED_LATEST : 0};
        }

    for (size_t nr = 0; nr < ng; nr++) {
        const snapshot_t *s = good[nr].s;
        unsigned reasons = 0;
        for (size_t t = 0; t < p->n_keep_tags; t++)
            if (p->keep_tags[t] && has_tag_list(s, p->keep_tags[t]))
                reasons |= RETENTION_TAG;
        /* newest - within may go below INT64_MIN only for times before 1677: clamp. */
        if (p->keep_within_s && (newest < INT64_MIN + within_ns || s->time_ns > newest - within_ns))
            reasons |= RETENTION_WITHIN;
        for (int b = 0; b < B_COUNT; b++) {
            if (count[b] == 0)
                continue;
            char key[32] = "";
            bool differs = true;
            if (b != B_LAST) {
                bucket_of(b, s->time_ns, key, sizeof key);
                differs = !have_last[b] || strcmp(key, last[b]) != 0;
            }
            /* The oldest snapshot is kept by a kind that still has a count left, so a history
             * shorter than the policy is kept whole (restic >= 0.17). */
            if (differs || nr == ng - 1) {
                reasons |= bucket_reason[b];
                memcpy(last[b], key, sizeof key);
                have_last[b] = true;
                if (count[b] > 0)
                    count[b]--;
            }
        }
        out[good[nr].i] = (retention_decision_t){reasons != 0, reasons};
    }
    free(good);
    return 0;
}

const char *retention_reason_name(unsigned reason)
{
    for (int i = 0; i < RETENTION_N_REASONS; i++)
        if (reason == 1u << i)
            return reason_names[i];
    return "?";
}

int retention_reasons_format(unsigned reasons, buf_t *out)
{
    buf_reset(out);
    int rc = buf_append(out, "", 0); /* allocates and NUL-terminates */
    for (int i = 0; i < RETENTION_N_REASONS && !rc; i++)
        if (reasons & (1u << i))
            rc = buf_printf(out, "%s%s", out->len ? ", " : "", reason_names[i]);
    return rc;
}

/* "7d", "36h" or "90s": the largest unit that divides s. */
static int format_duration(int64_t s, buf_t *out)
{
    if (s % 86400 == 0)
        return buf_printf(out, "%lldd", (long long)(s / 86400));
    if (s % 3600 == 0)
        return buf_printf(out, "%lldh", (long long)(s / 3600));
    return buf_printf(out, "%llds", (long long)s);
}

int retention_policy_describe(const retention_policy_t *p, buf_t *out)
{
    static const char *const kind[B_COUNT] = {"last",   "hourly",  "daily",
                                              "weekly", "monthly", "yearly"};
    int c[B_COUNT];
    policy_counts(p, c);
    buf_reset(out);
    int rc = buf_append(out, "", 0); /* allocates and NUL-terminates */
    bool counted = false;
    if (retention_policy_empty(p))
        return rc ? rc : buf_append_str(out, "empty policy: keep everything");
    if (!rc)
        rc = buf_append_str(out, "keep");
    for (int b = 0; b < B_COUNT && !rc; b++) {
        if (c[b] == 0)
            continue;
        if (c[b] < 0)
            rc = buf_printf(out, "%s all %s", counted ? "," : "", kind[b]);
        else
            rc = buf_printf(out, "%s %d %s", counted ? "," : "", c[b], kind[b]);
        counted = true;
    }
    if (!rc && counted)
        rc = buf_append_str(out, " snapshots");
    if (!rc && p->keep_within_s) {
        rc = buf_printf(out, "%s those within ", counted ? "," : "");
        if (!rc)
            rc = format_duration(p->keep_within_s, out);
        if (!rc)
            rc = buf_append_str(out, " of the newest");
        counted = true;
    }
    bool first_tag = true;
    for (size_t t = 0; t < p->n_keep_tags && !rc; t++) {
        if (!p->keep_tags[t] || !p->keep_tags[t][0])
            continue;
        if (first_tag)
            rc = buf_printf(out, "%s those with tag %s", counted ? "," : "", p->keep_tags[t]);
        else
            rc = buf_printf(out, " or %s", p->keep_tags[t]);
        first_tag = false;
    }
    return rc;
}

int retention_parse_duration(const char *s, int64_t *out_s)
{
    const char *p = s;
    int64_t total = 0;
    if (!s || !*s)
        return err_set(COFFER_EINVAL, "empty duration: use e.g. 36h, 7d, 2w, 6m or 1y");
    while (*p) {
        if (*p < '0' || *p > '9')
            return err_set(COFFER_EINVAL,
                           "bad duration \"%s\": use numbers with units h, d, w, m (30 days) or "
                           "y (365 days), e.g. 36h, 7d, 1y6m",
                           s);
        int64_t v = 0;
        while (*p >= '0' && *p <= '9') {
            if (v > RETENTION_MAX_WITHIN_S)
                break;
            v = v * 10 + (*p++ - '0');
        }
        int64_t unit;
        switch (*p) {
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        case 'w':
            unit = 7 * 86400;
            break;
        case 'm':
            unit = 30 * 86400;
            break;
        case 'y':
            unit = 365 * 86400;
            break;
        default:
            if (*p >= '0' && *p <= '9')
                return err_set(COFFER_ELIMIT, "duration \"%s\" is longer than 200 years", s);
            return err_set(COFFER_EINVAL,
                           "bad duration \"%s\": every number needs a unit h, d, w, m (30 days) "
                           "or y (365 days), e.g. 36h, 7d, 1y6m",
                           s);
        }
        p++;
        if (v > RETENTION_MAX_WITHIN_S / unit || total + v * unit > RETENTION_MAX_WITHIN_S)
            return err_set(COFFER_ELIMIT, "duration \"%s\" is longer than 200 years", s);
        total += v * unit;
    }
    *out_s = total;
    return 0;
}

int retention_parse_group_by(const char *s, unsigned *out_flags)
{
    static const struct {
        const char *name;
        unsigned flag;
    } names[] = {{"host", RETENTION_GROUP_HOST},
                 {"paths", RETENTION_GROUP_PATHS},
                 {"tags", RETENTION_GROUP_TAGS},
                 {"job", RETENTION_GROUP_JOB}};
    unsigned flags = 0;
    const char *p = s ? s : "";
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        bool found = false;
        for (size_t i = 0; i < sizeof names / sizeof names[0] && !found; i++)
            if (strlen(names[i].name) == len && memcmp(names[i].name, p, len) == 0) {
                flags |= names[i].flag;
                found = true;
            }
        if (!found)
            return err_set(COFFER_EINVAL,
                           "bad group-by \"%s\": use a comma-separated list of host, paths, "
                           "tags, job, or \"\" for one group",
                           s);
        p += len;
        if (*p == ',')
            p++;
    }
    *out_flags = flags;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Append v with backslash, comma and space escaped. */
static int append_escaped(buf_t *out, const char *v)
{
    int rc = 0;
    for (const char *c = v ? v : ""; *c && !rc; c++) {
        if (*c == '\\' || *c == ',' || *c == ' ')
            rc = buf_put_u8(out, '\\');
        if (!rc)
            rc = buf_put_u8(out, (uint8_t)*c);
    }
    return rc;
}

/* Append "name=a,b,c" with the items sorted. */
static int append_sorted_list(buf_t *out, const char *name, char *const *items, size_t n)
{
    int rc = buf_printf(out, "%s%s=", out->len ? " " : "", name);
    if (rc || n == 0)
        return rc;
    const char **v = malloc(n * sizeof *v); /* n <= SNAP_MAX_PATHS or SNAP_MAX_TAGS */
    if (!v)
        return err_set(COFFER_ENOMEM, "out of memory building a snapshot group key");
    for (size_t i = 0; i < n; i++)
        v[i] = items[i] ? items[i] : "";
    qsort(v, n, sizeof *v, cmp_str);
    for (size_t i = 0; i < n && !rc; i++) {
        if (i)
            rc = buf_put_u8(out, ',');
        if (!rc)
            rc = append_escaped(out, v[i]);
    }
    free(v);
    return rc;
}

int retention_group_key(const snapshot_t *s, unsigned flags, buf_t *out)
{
    buf_reset(out);
    int rc = buf_append(out, "", 0); /* allocates and NUL-terminates */
    if (!rc && (flags & RETENTION_GROUP_HOST)) {
        rc = buf_append_str(out, "host=");
        if (!rc)
            rc = append_escaped(out, s->host);
    }
    if (!rc && (flags & RETENTION_GROUP_PATHS))
        rc = append_sorted_list(out, "paths", s->paths, s->n_paths);
    if (!rc && (flags & RETENTION_GROUP_TAGS))
        rc = append_sorted_list(out, "tags", s->tags, s->n_tags);
    if (!rc && (flags & RETENTION_GROUP_JOB)) {
        rc = buf_printf(out, "%sjob=", out->len ? " " : "");
        if (!rc)
            rc = append_escaped(out, s->job);
    }
    return rc;
}
