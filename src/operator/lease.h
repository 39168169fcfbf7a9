/*
 * lease.h -- leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection
 * does it: the holder renews spec.renewTime; another candidate takes the Lease over only when
 * renewTime + leaseDurationSeconds has passed. Every write carries the resourceVersion read, so
 * two candidates racing for it cannot both win (the loser gets 409 Conflict).
 *
 * Layer: operator. One lease_t is used by one thread.
 */
#ifndef COFFER_OPERATOR_LEASE_H
#define COFFER_OPERATOR_LEASE_H

#include "k8s/client.h"

#include <stdbool.h>

typedef struct op_lease {
    const char *ns, *name, *identity; /* borrowed */
    int duration_s;
    bool leader;
    int64_t last_renew; /* monotonic ns of our last successful renewal */
} op_lease_t;

/* Try to acquire or renew; sets l->leader. Returns 0 unless the API failed unexpectedly (a lost
 * race is not an error: leader is then false). A leader that cannot renew within duration_s
 * of its last renewal steps down. */
int op_lease_tick(k8s_client_t *c, op_lease_t *l);
/* Give the Lease up (holder cleared) so another replica takes over at once. */
void op_lease_release(k8s_client_t *c, op_lease_t *l);

#endif
