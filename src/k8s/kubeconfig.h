/*
 * kubeconfig.h -- where and how to reach a Kubernetes API server: a kubeconfig context or the
 * in-cluster service account.
 *
 * Layer: k8s (uses common). kubeconfig files are read with the rules kubectl uses: $KUBECONFIG
 * (the first file of a colon-separated list that exists) or ~/.kube/config; the current context
 * or a chosen one; relative file paths resolve against the kubeconfig's directory. Supported
 * user fields: token, tokenFile, client-certificate(-data), client-key(-data), exec
 * (client.authentication.k8s.io/v1 and v1beta1), username/password is refused with a clear
 * message. Cluster fields: server, certificate-authority(-data), insecure-skip-tls-verify,
 * tls-server-name. Secrets (tokens, keys) are kept only in memory and never printed.
 *
 * In-cluster: the token and CA under K8S_SA_ROOT (default /var/run/secrets/kubernetes.io/
 * serviceaccount, overridable with COFFER_K8S_SA_ROOT for tests) and
 * KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT.
 */
#ifndef COFFER_K8S_KUBECONFIG_H
#define COFFER_K8S_KUBECONFIG_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>

#define K8S_SA_ROOT "/var/run/secrets/kubernetes.io/serviceaccount"
#define K8S_EXEC_MAX_ARGS 64

typedef struct k8s_exec {
    char *command;                     /* NULL when no exec plugin */
    char *args[K8S_EXEC_MAX_ARGS + 1]; /* NULL-terminated */
    char **env;                        /* "NAME=VALUE" strings, n_env of them */
    size_t n_env;
    char *api_version; /* client.authentication.k8s.io/v1 by default */
} k8s_exec_t;

/* Everything owned; k8s_config_release frees and wipes secrets. */
typedef struct k8s_config {
    char *origin;  /* "context \"prod\" of /root/.kube/config" or "in-cluster": for errors */
    char *context; /* context name ("" in-cluster) */
    char *server;  /* https://host:port, no trailing slash */
    char *tls_server_name;
    bool insecure; /* insecure-skip-tls-verify */
    char *ca_file; /* certificate-authority path, or NULL */
    buf_t ca_pem;  /* certificate-authority-data, decoded (len 0 when none) */
    char *cert_file, *key_file;
    buf_t cert_pem, key_pem; /* client-certificate-data / client-key-data, decoded */
    char *token;             /* bearer token (secret) */
    char *token_file;        /* re-read on each client start (projected tokens rotate) */
    k8s_exec_t exec;
    char *namespace; /* the context's namespace, or "default" */
} k8s_config_t;

void k8s_config_init(k8s_config_t *c);
void k8s_config_release(k8s_config_t *c); /* accepts NULL */

/* Parse kubeconfig bytes (YAML or JSON). path names the file in messages and is the base of
 * relative paths (may be NULL: relative to the working directory). context NULL = the
 * current-context. COFFER_EINVAL with a message naming the file and context when a context,
 * cluster or user is missing or a field is malformed; COFFER_ECORRUPT for bad YAML. */
int k8s_kubeconfig_parse(const char *data, size_t n, const char *path, const char *context,
                         k8s_config_t *out);

/* Load from path (NULL: $KUBECONFIG or ~/.kube/config). COFFER_ENOENT when there is none. */
int k8s_kubeconfig_load(const char *path, const char *context, k8s_config_t *out);

/* The in-cluster configuration (sa_root NULL: $COFFER_K8S_SA_ROOT or K8S_SA_ROOT). COFFER_ENOENT
 * when KUBERNETES_SERVICE_HOST is unset or the token is missing. */
int k8s_incluster_load(const char *sa_root, k8s_config_t *out);

/* What kubectl does: an explicit kubeconfig path or context, else $KUBECONFIG / ~/.kube/config
 * when present, else in-cluster. The message of a failure lists what was tried. */
int k8s_config_auto(const char *kubeconfig, const char *context, k8s_config_t *out);

#endif
