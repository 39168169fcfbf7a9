/*
 * kubeconfig.c -- kubeconfig and in-cluster configuration (see kubeconfig.h).
 *
 * Layer: k8s. The file is parsed into JSON (yaml.c), then the named entries are looked up.
 * Every error names the file and the context; no error message contains a secret.
 */
#include "k8s/kubeconfig.h"
#include "common/error.h"
#include "k8s/yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KUBECONFIG_MAX (4u << 20)

void k8s_config_init(k8s_config_t *c)
{
    memset(c, 0, sizeof *c);
    buf_init(&c->ca_pem);
    buf_init(&c->cert_pem);
    buf_init(&c->key_pem);
}

static void wipe_str(char *s)
{
    if (s) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

static void wipe_buf(buf_t *b)
{
    if (b->data)
        sodium_memzero(b->data, b->cap);
    buf_release(b);
}

void k8s_config_release(k8s_config_t *c)
{
    if (!c)
        return;
    free(c->origin);
    free(c->context);
    free(c->server);
    free(c->tls_server_name);
    free(c->ca_file);
    buf_release(&c->ca_pem);
    free(c->cert_file);
    free(c->key_file);
    buf_release(&c->cert_pem);
    wipe_buf(&c->key_pem);
    wipe_str(c->token);
    free(c->token_file);
    free(c->exec.command);
    for (size_t i = 0; c->exec.args[i]; i++)
        free(c->exec.args[i]);
    for (size_t i = 0; i < c->exec.n_env; i++)
        wipe_str(c->exec.env[i]);
    free(c->exec.env);
    free(c->exec.api_version);
    free(c->namespace);
    k8s_config_init(c);
}

/* Read a whole small file (capped) into out. */
static int read_small(const char *path, size_t cap, const char *what, buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_errno("cannot read %s %s", what, path);
    int rc = 0;
    for (;;) {
        if ((rc = buf_reserve(out, 65536)))
            break;
        ssize_t got = read(fd, out->data + out->len, 65536);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            rc = err_errno("cannot read %s %s", what, path);
            break;
        }
        if (got == 0)
            break;
        out->len += (size_t)got;
        if (out->len > cap) {
            rc = err_set(COFFER_ELIMIT, "%s %s is larger than %zu bytes", what, path, cap);
            break;
        }
    }
    close(fd);
    if (!rc)
        out->data[out->len] = 0;
    return rc;
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A named entry of a list like clusters: [{name: X, cluster: {...}}]. */
static json_t *named(json_t *root, const char *list, const char *name, const char *field)
{
    json_t *a = json_object_get(root, list), *e;
    size_t i;
    if (!json_is_array(a))
        return NULL;
    json_array_foreach(a, i, e)
    {
        const char *n = jstr(e, "name");
        if (n && strcmp(n, name) == 0) {
            json_t *v = json_object_get(e, field);
            return json_is_object(v) ? v : NULL;
        }
    }
    return NULL;
}

static int dup_str(const char *s, char **out)
{
    if (!s) {
        *out = NULL;
        return 0;
    }
    *out = strdup(s);
    return *out ? 0 : err_set(COFFER_ENOMEM, "out of memory");
}

/* A path relative to the kubeconfig's directory. */
static int resolve_path(const char *base, const char *p, char **out)
{
    if (!p) {
        *out = NULL;
        return 0;
    }
    if (p[0] == '/' || !base || !strchr(base, '/'))
        return dup_str(p, out);
    size_t dl = (size_t)(strrchr(base, '/') - base);
    buf_t b;
    buf_init(&b);
    int rc = buf_printf(&b, "%.*s/%s", (int)dl, base, p);
    if (rc) {
        buf_release(&b);
        return rc;
    }
    *out = (char *)buf_steal(&b, NULL);
    return 0;
}

static int b64_field(json_t *o, const char *key, const char *origin, buf_t *out)
{
    const char *s = jstr(o, key);
    if (!s)
        return 0;
    size_t n = strlen(s), got = 0;
    int rc = buf_reserve(out, n);
    if (rc)
        return rc;
    if (sodium_base642bin(out->data, out->cap, s, n, " \t\r\n", &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return err_set(COFFER_EINVAL, "%s: %s is not valid base64", origin, key);
    out->len = got;
    out->data[got] = 0;
    return 0;
}

static int parse_exec(json_t *ex, const char *base, const char *origin, k8s_exec_t *e)
{
    const char *cmd = jstr(ex, "command");
    if (!cmd || !*cmd)
        return err_set(COFFER_EINVAL, "%s: user.exec has no command", origin);
    int rc;
    /* a command with a slash but not absolute is relative to the kubeconfig (as kubectl) */
    if (strchr(cmd, '/') && cmd[0] != '/')
        rc = resolve_path(base, cmd, &e->command);
    else
        rc = dup_str(cmd, &e->command);
    if (rc)
        return rc;
    json_t *args = json_object_get(ex, "args"), *v;
    size_t i;
    if (args && !json_is_array(args) && !json_is_null(args))
        return err_set(COFFER_EINVAL, "%s: user.exec.args must be a list", origin);
    if (json_array_size(args) > K8S_EXEC_MAX_ARGS)
        return err_set(COFFER_ELIMIT, "%s: user.exec has more than %d args", origin,
                       K8S_EXEC_MAX_ARGS);
    json_array_foreach(args, i, v)
    {
        if (!json_is_string(v))
            return err_set(COFFER_EINVAL, "%s: user.exec.args[%zu] is not a string", origin, i);
        if ((rc = dup_str(json_string_value(v), &e->args[i])))
            return rc;
    }
    json_t *env = json_object_get(ex, "env");
    if (json_is_array(env) && json_array_size(env) > 0) {
        if (json_array_size(env) > 256)
            return err_set(COFFER_ELIMIT, "%s: user.exec has more than 256 env entries", origin);
        e->env = calloc(json_array_size(env), sizeof *e->env);
        if (!e->env)
            return err_set(COFFER_ENOMEM, "out of memory");
        json_array_foreach(env, i, v)
        {
            const char *n = jstr(v, "name"), *val = jstr(v, "value");
            if (!n || !val || !*n || strchr(n, '='))
                return err_set(COFFER_EINVAL, "%s: user.exec.env[%zu] needs a name and a value",
                               origin, i);
            buf_t b;
            buf_init(&b);
            if ((rc = buf_printf(&b, "%s=%s", n, val))) {
                buf_release(&b);
                return rc;
            }
            e->env[e->n_env++] = (char *)buf_steal(&b, NULL);
        }
    }
    const char *av = jstr(ex, "apiVersion");
    if (av && strcmp(av, "client.authentication.k8s.io/v1") != 0 &&
        strcmp(av, "client.authentication.k8s.io/v1beta1") != 0)
        return err_set(COFFER_EINVAL,
                       "%s: user.exec.apiVersion %s is not supported (use "
                       "client.authentication.k8s.io/v1)",
                       origin, av);
    return dup_str(av ? av : "client.authentication.k8s.io/v1", &e->api_version);
}

static int server_url(const char *s, const char *origin, char **out)
{
    if (!s || !*s)
        return err_set(COFFER_EINVAL, "%s: the cluster has no server URL", origin);
    if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
        return err_set(COFFER_EINVAL, "%s: server \"%s\" is not an http(s) URL", origin, s);
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    *out = strndup(s, n);
    return *out ? 0 : err_set(COFFER_ENOMEM, "out of memory");
}

int k8s_kubeconfig_parse(const char *data, size_t n, const char *path, const char *context,
                         k8s_config_t *out)
{
    const char *file = path ? path : "kubeconfig";
    buf_t what;
    buf_init(&what);
    json_t *root = NULL;
    k8s_config_t c;
    k8s_config_init(&c);
    int rc = buf_printf(&what, "kubeconfig %s", file);
    if (rc || (rc = k8s_yaml_parse(data, n, (const char *)what.data, &root)))
        goto out;
    if (!json_is_object(root)) {
        rc = err_set(COFFER_EINVAL, "kubeconfig %s is not a mapping", file);
        goto out;
    }
    const char *ctx = context ? context : jstr(root, "current-context");
    if (!ctx || !*ctx) {
        rc = err_set(COFFER_EINVAL,
                     "kubeconfig %s has no current-context; choose one with --context", file);
        goto out;
    }
    buf_reset(&what);
    if ((rc = buf_printf(&what, "context \"%s\" of kubeconfig %s", ctx, file)))
        goto out;
    const char *origin = (const char *)what.data;
    json_t *cx = named(root, "contexts", ctx, "context");
    if (!cx) {
        rc = err_set(COFFER_EINVAL, "kubeconfig %s has no context \"%s\"", file, ctx);
        goto out;
    }
    const char *cl_name = jstr(cx, "cluster"), *user_name = jstr(cx, "user");
    json_t *cl = cl_name ? named(root, "clusters", cl_name, "cluster") : NULL;
    if (!cl) {
        rc = err_set(COFFER_EINVAL, "%s: cluster \"%s\" is not defined", origin,
                     cl_name ? cl_name : "");
        goto out;
    }
    json_t *user = user_name && *user_name ? named(root, "users", user_name, "user") : NULL;
    if (user_name && *user_name && !user) {
        rc = err_set(COFFER_EINVAL, "%s: user \"%s\" is not defined", origin, user_name);
        goto out;
    }
    if ((rc = dup_str(origin, &c.origin)) || (rc = dup_str(ctx, &c.context)) ||
        (rc = server_url(jstr(cl, "server"), origin, &c.server)) ||
        (rc = dup_str(jstr(cl, "tls-server-name"), &c.tls_server_name)) ||
        (rc = resolve_path(path, jstr(cl, "certificate-authority"), &c.ca_file)) ||
        (rc = b64_field(cl, "certificate-authority-data", origin, &c.ca_pem)))
        goto out;
    json_t *ins = json_object_get(cl, "insecure-skip-tls-verify");
    c.insecure =
        json_is_true(ins) || (json_is_string(ins) && !strcmp(json_string_value(ins), "true"));
    if (user) {
        if (jstr(user, "username") || jstr(user, "password")) {
            rc = err_set(COFFER_EINVAL,
                         "%s: user \"%s\" uses basic auth (username/password), "
                         "which Kubernetes removed in 1.19; use a token or a "
                         "client certificate",
                         origin, user_name);
            goto out;
        }
        if (json_object_get(user, "auth-provider")) {
            rc = err_set(COFFER_EINVAL,
                         "%s: user \"%s\" uses an auth-provider plugin, which "
                         "coffer does not support; use exec credentials or a "
                         "token",
                         origin, user_name);
            goto out;
        }
        if ((rc = dup_str(jstr(user, "token"), &c.token)) ||
            (rc = resolve_path(path, jstr(user, "tokenFile"), &c.token_file)) ||
            (rc = resolve_path(path, jstr(user, "client-certificate"), &c.cert_file)) ||
            (rc = resolve_path(path, jstr(user, "client-key"), &c.key_file)) ||
            (rc = b64_field(user, "client-certificate-data", origin, &c.cert_pem)) ||
            (rc = b64_field(user, "client-key-data", origin, &c.key_pem)))
            goto out;
        json_t *ex = json_object_get(user, "exec");
        if (json_is_object(ex) && (rc = parse_exec(ex, path, origin, &c.exec)))
            goto out;
        bool has_cert = c.cert_file || c.cert_pem.len, has_key = c.key_file || c.key_pem.len;
        if (has_cert != has_key) {
            rc = err_set(COFFER_EINVAL,
                         "%s: user \"%s\" has a client certificate without its key "
                         "(or a key without its certificate)",
                         origin, user_name);
            goto out;
        }
    }
    const char *ns = jstr(cx, "namespace");
    if ((rc = dup_str(ns && *ns ? ns : "default", &c.namespace)))
        goto out;
    *out = c;
    k8s_config_init(&c);
out:
    k8s_config_release(&c);
    json_decref(root);
    buf_release(&what);
    return rc;
}

int k8s_kubeconfig_load(const char *path, const char *context, k8s_config_t *out)
{
    buf_t p, data;
    buf_init(&p);
    buf_init(&data);
    int rc = 0;
    if (path) {
        rc = buf_append_str(&p, path);
    } else {
        const char *env = getenv("KUBECONFIG");
        if (env && *env) {
            /* the first existing file of the list (kubectl merges them; coffer reads one) */
            const char *s = env;
            while (*s && !rc) {
                const char *e = strchr(s, ':');
                size_t len = e ? (size_t)(e - s) : strlen(s);
                buf_reset(&p);
                if (len && !(rc = buf_append(&p, s, len)) && access((char *)p.data, R_OK) == 0)
                    break;
                buf_reset(&p);
                s += len + (e ? 1 : 0);
            }
        } else if (getenv("HOME")) {
            rc = buf_printf(&p, "%s/.kube/config", getenv("HOME"));
            if (!rc && access((char *)p.data, F_OK) != 0)
                buf_reset(&p);
        }
        if (!rc && p.len == 0)
            rc = err_set(COFFER_ENOENT, "no kubeconfig: $KUBECONFIG names no readable file and "
                                        "~/.kube/config does not exist");
    }
    if (!rc && (rc = read_small((char *)p.data, KUBECONFIG_MAX, "kubeconfig", &data)) == 0)
        rc = k8s_kubeconfig_parse((char *)data.data, data.len, (char *)p.data, context, out);
    wipe_buf(&data);
    buf_release(&p);
    return rc;
}

int k8s_incluster_load(const char *sa_root, k8s_config_t *out)
{
    const char *root = sa_root ? sa_root : getenv("COFFER_K8S_SA_ROOT");
    if (!root || !*root)
        root = K8S_SA_ROOT;
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host)
        return err_set(COFFER_ENOENT, "not running in a cluster: KUBERNETES_SERVICE_HOST is unset");
    k8s_config_t c;
    k8s_config_init(&c);
    buf_t b;
    buf_init(&b);
    int rc = buf_printf(&b, "%s/token", root);
    if (!rc && access((char *)b.data, R_OK) != 0)
        rc = err_set(COFFER_ENOENT,
                     "in-cluster: no service account token at %s (is "
                     "automountServiceAccountToken off?)",
                     (char *)b.data);
    if (!rc)
        rc = dup_str((char *)b.data, &c.token_file);
    buf_reset(&b);
    if (!rc)
        rc = buf_printf(&b, "%s/ca.crt", root);
    if (!rc && access((char *)b.data, R_OK) == 0)
        rc = dup_str((char *)b.data, &c.ca_file);
    buf_reset(&b);
    /* an IPv6 host needs brackets */
    if (!rc)
        rc = buf_printf(&b, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
                        port && *port ? port : "443");
    if (!rc)
        rc = dup_str((char *)b.data, &c.server);
    buf_reset(&b);
    if (!rc)
        rc = buf_printf(&b, "%s/namespace", root);
    if (!rc) {
        buf_t ns;
        buf_init(&ns);
        if (read_small((char *)b.data, 4096, "namespace file", &ns) == 0 && ns.len) {
            while (ns.len && (ns.data[ns.len - 1] == '\n' || ns.data[ns.len - 1] == ' '))
                ns.data[--ns.len] = 0;
            rc = dup_str((char *)ns.data, &c.namespace);
        } else {
            err_clear();
            rc = dup_str("default", &c.namespace);
        }
        buf_release(&ns);
    }
    if (!rc && !(rc = dup_str("in-cluster service account", &c.origin)))
        rc = dup_str("", &c.context);
    buf_release(&b);
    if (rc) {
        k8s_config_release(&c);
        return rc;
    }
    *out = c;
    return 0;
}

int k8s_config_auto(const char *kubeconfig, const char *context, k8s_config_t *out)
{
    if (kubeconfig || context)
        return k8s_kubeconfig_load(kubeconfig, context, out);
    int rc = k8s_kubeconfig_load(NULL, NULL, out);
    if (rc != COFFER_ENOENT)
        return rc;
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    rc = k8s_incluster_load(NULL, out);
    if (rc == COFFER_ENOENT && (!host || !*host))
        return err_set(COFFER_ENOENT, "no Kubernetes configuration: no kubeconfig ($KUBECONFIG "
                                      "or ~/.kube/config) and not in a cluster "
                                      "(KUBERNETES_SERVICE_HOST unset); use --kubeconfig");
    return rc;
}
