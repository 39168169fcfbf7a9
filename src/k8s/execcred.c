/*
 * execcred.c -- exec credential plugins (see execcred.h).
 *
 * Layer: k8s. fork/exec with argv as configured (no shell); the child's environment is built
 * before the fork so nothing but async-signal-safe calls run in the child.
 */
#include "k8s/execcred.h"
#include "common/error.h"
#include "common/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXEC_OUT_MAX (1u << 20)

extern char **environ;

void k8s_cred_init(k8s_cred_t *c)
{
    memset(c, 0, sizeof *c);
    buf_init(&c->cert_pem);
    buf_init(&c->key_pem);
}

void k8s_cred_release(k8s_cred_t *c)
{
    if (!c)
        return;
    if (c->token) {
        sodium_memzero(c->token, strlen(c->token));
        free(c->token);
    }
    buf_release(&c->cert_pem);
    if (c->key_pem.data)
        sodium_memzero(c->key_pem.data, c->key_pem.cap);
    buf_release(&c->key_pem);
    k8s_cred_init(c);
}

int k8s_exec_parse(const char *data, size_t n, const char *what, k8s_cred_t *out)
{
    json_error_t je;
    json_t *root = json_loadb(data, n, 0, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set(COFFER_ECORRUPT, "%s did not print an ExecCredential JSON object", what);
    }
    k8s_cred_t c;
    k8s_cred_init(&c);
    int rc = 0;
    const char *kind = json_string_value(json_object_get(root, "kind"));
    json_t *st = json_object_get(root, "status");
    if (!kind || strcmp(kind, "ExecCredential") != 0 || !json_is_object(st)) {
        rc = err_set(COFFER_ECORRUPT, "%s printed no ExecCredential with a status", what);
        goto out;
    }
    const char *tok = json_string_value(json_object_get(st, "token"));
    const char *cert = json_string_value(json_object_get(st, "clientCertificateData"));
    const char *key = json_string_value(json_object_get(st, "clientKeyData"));
    const char *exp = json_string_value(json_object_get(st, "expirationTimestamp"));
    if (!tok && !(cert && key)) {
        rc = err_set(COFFER_ECORRUPT,
                     "%s: the ExecCredential has neither a token nor a client "
                     "certificate and key",
                     what);
        goto out;
    }
    if (tok && !(c.token = strdup(tok))) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    if (cert && key &&
        ((rc = buf_append_str(&c.cert_pem, cert)) || (rc = buf_append_str(&c.key_pem, key))))
        goto out;
    if (exp && time_parse_rfc3339(exp, &c.expires_ns) != 0) {
        rc = err_set(COFFER_ECORRUPT, "%s: expirationTimestamp \"%s\" is not RFC 3339", what, exp);
        goto out;
    }
    *out = c;
    k8s_cred_init(&c);
out:
    k8s_cred_release(&c);
    json_decref(root);
    return rc;
}

int k8s_exec_credential(const k8s_config_t *cfg, k8s_cred_t *out)
{
    const k8s_exec_t *e = &cfg->exec;
    if (!e->command)
        return err_set(COFFER_EINVAL, "%s has no exec credential plugin", cfg->origin);
    size_t n_environ = 0;
    while (environ[n_environ])
        n_environ++;
    char **envp = calloc(n_environ + e->n_env + 2, sizeof *envp);
    char *argv[K8S_EXEC_MAX_ARGS + 2];
    buf_t info, outb, what;
    buf_init(&info);
    buf_init(&outb);
    buf_init(&what);
    int rc = envp ? 0 : err_set(COFFER_ENOMEM, "out of memory");
    if (!rc)
        rc = buf_printf(&what, "exec credential plugin \"%s\" of %s", e->command, cfg->origin);
    if (!rc)
        rc = buf_printf(&info,
                        "KUBERNETES_EXEC_INFO={\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\","
                        "\"spec\":{\"interactive\":false}}",
                        e->api_version ? e->api_version : "client.authentication.k8s.io/v1");
    if (rc)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < n_environ; i++)
        if (strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21) != 0)
            envp[k++] = environ[i];
    for (size_t i = 0; i < e->n_env; i++)
        envp[k++] = e->env[i];
    envp[k++] = (char *)info.data;
    envp[k] = NULL;
    argv[0] = e->command;
    for (k = 0; e->args[k]; k++)
        argv[k + 1] = e->args[k];
    argv[k + 1] = NULL;

    int pfd[2], errp[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        rc = err_errno("cannot create a pipe");
        goto out;
    }
    if (pipe2(errp, O_CLOEXEC) != 0) {
        rc = err_errno("cannot create a pipe");
        close(pfd[0]);
        close(pfd[1]);
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        rc = err_errno("cannot start %s", (char *)what.data);
        close(pfd[0]);
        close(pfd[1]);
        close(errp[0]);
        close(errp[1]);
        goto out;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(pfd[1], 1);
        execvpe(argv[0], argv, envp);
        int er = errno;
        ssize_t wr = write(errp[1], &er, sizeof er);
        (void)wr;
        _exit(127);
    }
    close(pfd[1]);
    close(errp[1]);
    int exec_errno = 0;
    ssize_t got = read(errp[0], &exec_errno, sizeof exec_errno);
    close(errp[0]);
    while (got != (ssize_t)sizeof exec_errno && !rc) {
        if ((rc = buf_reserve(&outb, 65536)))
            break;
        ssize_t r = read(pfd[0], outb.data + outb.len, 65536);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        outb.len += (size_t)r;
        if (outb.len > EXEC_OUT_MAX)
            rc = err_set(COFFER_ELIMIT, "%s printed more than 1 MiB", (char *)what.data);
    }
    close(pfd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (rc)
        goto out;
    if (got == (ssize_t)sizeof exec_errno) {
        rc = err_set(COFFER_EINVAL, "cannot run %s: %s", (char *)what.data, strerror(exec_errno));
        goto out;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc = err_set(COFFER_EIO, "%s failed (%s %d)", (char *)what.data,
                     WIFEXITED(status) ? "exit status" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        goto out;
    }
    rc = k8s_exec_parse((char *)outb.data, outb.len, (char *)what.data, out);
out:
    if (outb.data)
        sodium_memzero(outb.data, outb.cap);
    buf_release(&outb);
    buf_release(&info);
    buf_release(&what);
    free(envp);
    return rc;
}
