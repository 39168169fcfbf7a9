/*
 * report.c -- notifications and metrics outputs after a run (contract in report.h).
 *
 * Layer: sched. For a textfile or a push from a one-shot run the store is private to the
 * call, so its last-success time is seeded from the previous textfile (a failed run must not
 * make the missed-backup alarm forget the last good run); a push uses POST for the same
 * reason (metrics.h).
 */
#include "sched/report.h"
#include "common/log.h"
#include "sched/notify.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void report_job(const cfg_t *c, metrics_t *m, const job_result_t *r, bool is_copy)
{
    metrics_t *own = NULL;
    if (!m && !is_copy && (c->server.textfile_dir || c->server.pushgateway)) {
        own = metrics_new();
        m = own;
        if (m && c->server.textfile_dir)
            metrics_seed_last_success(
                m, r->job, false, metrics_textfile_last_success(c->server.textfile_dir, r->job));
    }
    if (m) {
        if (metrics_record(m, r, is_copy))
            log_warn("metrics: %s", err_msg());
        for (size_t i = 0; i < r->n_targets; i++)
            if (r->targets[i].has_stats)
                metrics_set_repo(m, r->targets[i].repo, r->targets[i].repo_stored_bytes,
                                 r->targets[i].repo_snapshots);
    }
    if (m && !is_copy && (c->server.textfile_dir || c->server.pushgateway)) {
        buf_t b;
        buf_init(&b);
        if (metrics_render(m, r->job, &b) == 0) {
            const char *text = b.data ? (const char *)b.data : "";
            if (c->server.textfile_dir &&
                metrics_write_textfile(c->server.textfile_dir, r->job, text))
                log_warn("metrics textfile: %s", err_msg());
            if (c->server.pushgateway && metrics_push(c->server.pushgateway, r->job, text, 10))
                log_warn("metrics push: %s", err_msg());
        }
        buf_release(&b);
    }
    metrics_free(own);
    if (!is_copy)
        notify_job(c, r);
}

bool report_run_on_here(char *const *names, size_t n, char *who, size_t who_len)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    const char *cand[3] = {host, getenv("POD_NAME"), getenv("HOSTNAME")};
    if (who && who_len)
        snprintf(who, who_len, "%s%s%s%s%s", host, cand[1] ? ", POD_NAME=" : "",
                 cand[1] ? cand[1] : "", cand[2] ? ", HOSTNAME=" : "", cand[2] ? cand[2] : "");
    if (!n)
        return true;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++)
            if (cand[k] && *cand[k] && !strcmp(names[i], cand[k]))
                return true;
    return false;
}
