/*
 * notify.h -- tell people about a job run: webhook (JSON POST with a Slack-compatible
 * "text" field, custom headers, retries with backoff on 5xx and connection errors) and SMTP
 * e-mail (libcurl; smtp:// with optional required STARTTLS, or smtps://; AUTH), each with a
 * level threshold.
 *
 * Layer: sched. A notification that cannot be delivered is logged as a warning; it never
 * changes the job's result. Secrets (header values, SMTP password) never reach the log.
 * Thread-safe once curl_global_init has run (notify_global_init, called by the commands).
 */
#ifndef COFFER_SCHED_NOTIFY_H
#define COFFER_SCHED_NOTIFY_H

#include "common/buf.h"
#include "sched/config.h"
#include "sched/job.h"

void notify_global_init(void);

/* Does notification n apply to result r (level threshold and job filter)? */
bool notify_wanted(const cfg_notify_t *n, const job_result_t *r);

/* The JSON document a webhook receives (also the data the e-mail text is made from) into
 * *out (caller frees). */
int notify_body_json(const job_result_t *r, char **out);

/* The one-line human summary ("coffer: job etc succeeded on host1: ..."), into out. */
int notify_summary(const job_result_t *r, buf_t *out);

/* Deliver r through n now (retrying as configured). 0, or an error describing the last
 * failure (COFFER_EIO). */
int notify_send(const cfg_notify_t *n, const job_result_t *r);

/* Deliver r through every notification of c that wants it; failures are logged warnings. */
void notify_job(const cfg_t *c, const job_result_t *r);

#endif
