/*
 * heartbeat.h -- keep a liveness object fresh: a writer's sessions/<id> or the prune lease.
 *
 * Layer: repo. A background thread overwrites the object every interval. The object's mtime
 * (backend clock) is what others judge liveness by; its content (sealed JSON with host, pid,
 * purpose and start time) is informational. heartbeat_stop removes the object when asked.
 *
 * COFFER_STALE_SECS sets the stale timeout (default 900 s); the interval is a sixth of it.
 */
#ifndef COFFER_REPO_HEARTBEAT_H
#define COFFER_REPO_HEARTBEAT_H

#include "repo/envelope.h"
#include "storage/storage.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct heartbeat heartbeat_t;

/* Seconds after which a silent session or lease counts as dead. */
int64_t heartbeat_stale_ns(void);

/* Write `name` once (create-only when create_only, else overwrite) and start refreshing it.
 * create_only with an existing object gives COFFER_EEXIST. */
int heartbeat_start(storage_t *st, session_t *s, const char *name, uint8_t env_type,
                    const char *purpose, bool create_only, heartbeat_t **out);
/* Is the liveness continuous? COFFER_EIO (with a message) when, since the start, the object
 * went missing or two successful refreshes were further apart than two thirds of the stale
 * timeout (the process was frozen, or the storage failed): a pruner may then have judged this
 * writer dead and deleted data it deduplicated against, so it must not commit a snapshot. */
int heartbeat_check(heartbeat_t *h);

/* Stop refreshing; remove the object when remove is set. Accepts NULL. */
void heartbeat_stop(heartbeat_t *h, bool remove);

#endif
