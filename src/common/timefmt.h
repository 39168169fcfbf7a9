/*
 * timefmt.h -- wall-clock time in nanoseconds and RFC 3339 formatting/parsing.
 *
 * Layer: common. Thread-safe (uses the _r variants of libc calls).
 */
#ifndef COFFER_COMMON_TIMEFMT_H
#define COFFER_COMMON_TIMEFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int64_t time_now_ns(void);       /* CLOCK_REALTIME in ns */
int64_t time_monotonic_ns(void); /* CLOCK_MONOTONIC in ns */

/* "2026-11-21T10:00:00Z", or with nanoseconds "2026-11-21T10:00:00.123456789Z" when frac;
 * always UTC. out should hold at least 40 bytes. */
void time_format_rfc3339(int64_t ns, bool frac, char *out, size_t n);
/* Local-time "2026-11-21 11:00:00" for human listings. */
void time_format_local(int64_t ns, char *out, size_t n);

/* Parse RFC 3339 (Z or +hh:mm offset, optional fraction). 0 or COFFER_EINVAL. */
int time_parse_rfc3339(const char *s, int64_t *out_ns);

#endif
