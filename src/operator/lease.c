/*
 * lease.c -- leader election on a Lease object (lease.h).
 *
 * Layer: operator. Times in the Lease are the API's MicroTime (RFC 3339 with microseconds);
 * expiry is judged by this host's clock against the holder's renewTime, as client-go does, so
 * replicas need roughly synchronized clocks (NTP); the lease duration absorbs small skew.
 */
#include "operator/lease.h"

#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "operator/kube.h"

#include <string.h>

static int64_t now_s(void)
{
    return time_now_ns() / 1000000000;
}

int op_lease_tick(k8s_client_t *c, op_lease_t *l)
{
    json_t *cur = NULL, *out = NULL;
    char now[48];
    op_now_micro(now, sizeof now);
    int rc = k8s_get(c, &OP_RES_LEASE, l->ns, l->name, &cur);
    if (rc == COFFER_ENOENT) {
        err_clear();
        json_t *obj = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s, s:s, s:i}}",
                                "apiVersion", "coordination.k8s.io/v1", "kind", "Lease", "metadata",
                                "name", l->name, "namespace", l->ns, "spec", "holderIdentity",
                                l->identity, "leaseDurationSeconds", l->duration_s, "acquireTime",
                                now, "renewTime", now, "leaseTransitions", 0);
        rc = k8s_create(c, &OP_RES_LEASE, l->ns, obj, false, NULL);
        json_decref(obj);
        if (rc == COFFER_EEXIST) { /* another candidate was faster */
            err_clear();
            l->leader = false;
            return 0;
        }
        if (rc)
            goto fail;
        if (!l->leader)
            log_info("became the leader (lease %s/%s created)", l->ns, l->name);
        l->leader = true;
        l->last_renew = time_monotonic_ns();
        return 0;
    }
    if (rc)
        goto fail;
    json_t *spec = json_object_get(cur, "spec");
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    const char *renew = json_string_value(json_object_get(spec, "renewTime"));
    json_t *dur = json_object_get(spec, "leaseDurationSeconds");
    int64_t d = json_is_integer(dur) ? json_integer_value(dur) : l->duration_s;
    int64_t renewed = op_parse_time(renew);
    bool mine = holder && !strcmp(holder, l->identity);
    bool expired = !holder || !*holder || renewed < 0 || now_s() > renewed + d;
    if (!mine && !expired) {
        if (l->leader)
            log_warn("lost the leadership to %s", holder);
        l->leader = false;
        json_decref(cur);
        return 0;
    }
    json_t *upd = json_deep_copy(cur);
    json_t *us = json_object_get(upd, "spec");
    json_object_set_new(us, "holderIdentity", json_string(l->identity));
    json_object_set_new(us, "leaseDurationSeconds", json_integer(l->duration_s));
    json_object_set_new(us, "renewTime", json_string(now));
    if (!mine) {
        json_t *tr = json_object_get(us, "leaseTransitions");
        json_object_set_new(us, "leaseTransitions",
                            json_integer(json_is_integer(tr) ? json_integer_value(tr) + 1 : 1));
        json_object_set_new(us, "acquireTime", json_string(now));
    }
    rc = k8s_update(c, &OP_RES_LEASE, l->ns, l->name, upd, false, &out);
    json_decref(upd);
    json_decref(cur);
    json_decref(out);
    if (rc == COFFER_EEXIST || (rc && k8s_last_http(c) == 409)) {
        err_clear();
        l->leader = false; /* someone else wrote it first */
        return 0;
    }
    if (rc)
        goto fail;
    if (!l->leader)
        log_info("became the leader (lease %s/%s%s)", l->ns, l->name, mine ? "" : ", taken over");
    l->leader = true;
    l->last_renew = time_monotonic_ns();
    return 0;
fail:
    /* cannot reach the API: keep leading only while our last renewal is still valid */
    if (l->leader && time_monotonic_ns() - l->last_renew > (int64_t)l->duration_s * 1000000000) {
        log_warn("stepping down: the lease could not be renewed for %d s", l->duration_s);
        l->leader = false;
    }
    return rc;
}

void op_lease_release(k8s_client_t *c, op_lease_t *l)
{
    if (!l->leader)
        return;
    json_t *cur = NULL;
    if (k8s_get(c, &OP_RES_LEASE, l->ns, l->name, &cur) == 0) {
        json_t *spec = json_object_get(cur, "spec");
        const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
        if (holder && !strcmp(holder, l->identity)) {
            json_object_set_new(spec, "holderIdentity", json_string(""));
            if (k8s_update(c, &OP_RES_LEASE, l->ns, l->name, cur, false, NULL))
                log_warn("could not release the lease: %s", err_msg());
        }
    }
    err_clear();
    json_decref(cur);
    l->leader = false;
}
