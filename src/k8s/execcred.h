/*
 * execcred.h -- exec credential plugins (client.authentication.k8s.io/v1 and v1beta1): run the
 * configured program and read the ExecCredential it prints.
 *
 * Layer: k8s (uses common). The program gets the environment plus the kubeconfig's env entries
 * and KUBERNETES_EXEC_INFO; its stderr passes through; its stdout (at most 1 MiB) must be an
 * ExecCredential whose status has a token or a client certificate and key. Exit status non-zero
 * or a malformed answer is an error naming the program (never the output: it holds secrets).
 */
#ifndef COFFER_K8S_EXECCRED_H
#define COFFER_K8S_EXECCRED_H

#include "common/buf.h"
#include "k8s/kubeconfig.h"

#include <stdint.h>

typedef struct k8s_cred {
    char *token;             /* or NULL */
    buf_t cert_pem, key_pem; /* len 0 when absent */
    int64_t expires_ns;      /* 0 = no expiry given */
} k8s_cred_t;

void k8s_cred_init(k8s_cred_t *c);
void k8s_cred_release(k8s_cred_t *c); /* wipes secrets; accepts NULL */

/* Run the plugin of cfg->exec. */
int k8s_exec_credential(const k8s_config_t *cfg, k8s_cred_t *out);

/* Parse an ExecCredential document (exposed for tests and fuzzing). */
int k8s_exec_parse(const char *data, size_t n, const char *what, k8s_cred_t *out);

#endif
