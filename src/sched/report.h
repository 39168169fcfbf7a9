/*
 * report.h -- what happens after a job run, for `coffer job run` and `coffer run` alike:
 * notifications, the metrics store, the node-exporter textfile and the Pushgateway.
 *
 * Layer: sched. Failures here are logged as warnings and never change the job's result.
 */
#ifndef COFFER_SCHED_REPORT_H
#define COFFER_SCHED_REPORT_H

#include "sched/config.h"
#include "sched/job.h"
#include "sched/metrics.h"

/* Record r in m (may be NULL: a private store is used for the textfile/push), write the
 * textfile and push when the server section asks for them, then send notifications. */
void report_job(const cfg_t *c, metrics_t *m, const job_result_t *r, bool is_copy);

/* Does this host run a task restricted to names (run_on)? Matches gethostname(), $POD_NAME
 * and $HOSTNAME; an empty list matches everywhere. *who receives the names compared. */
bool report_run_on_here(char *const *names, size_t n, char *who, size_t who_len);

#endif
