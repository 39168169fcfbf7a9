/*
 * exec.h -- `coffer operator exec`: what runs inside a Job's pod. It marks the Backup or Restore
 * InProgress, runs `coffer --json ARGS...` (normally `job run NAME --config ...`), and writes
 * the result into the resource's status itself (phase, snapshot id, bytes, times, the
 * Succeeded condition), as the operator seeds expect: the run reports its own outcome, and the
 * operator only fills in for pods that died before they could.
 *
 * Layer: operator (uses k8s). The child's stdout (JSON lines) is copied to ours for the pod
 * log; its stderr passes through.
 */
#ifndef COFFER_OPERATOR_EXEC_H
#define COFFER_OPERATOR_EXEC_H

typedef struct op_exec_opts {
    const char *kubeconfig, *context; /* NULL: in-cluster (or $KUBECONFIG) */
    const char *kind;                 /* backups, restores or backupschedules */
    const char *namespace, *name;
    const char *coffer_bin; /* this executable */
} op_exec_opts_t;

/* Run args (argv-style, NULL-terminated) and report. Returns the child's exit code (or 1 when it
 * could not run); reporting failures are logged and do not change it. */
int op_exec(const op_exec_opts_t *o, char *const *args);

#endif
