/*
 * ldap.c -- the ldap service source (see ldap.h).
 *
 * Layer: source/ldap. The export is one LDIF file per suffix with lines never wrapped
 * (-o ldif-wrap=no), so consecutive days deduplicate entry by entry. Restores stream the LDIF
 * through a line filter that removes attributes the target cannot take: for slapadd the
 * attributes slapd computes on the fly (entryDN, subschemaSubentry, hasSubordinates), for
 * ldapadd every operational attribute.
 */
#include "source/ldap/ldap.h"
#include "common/error.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char *const ldap_operational_attrs[] = {"structuralObjectClass",
                                              "entryUUID",
                                              "creatorsName",
                                              "createTimestamp",
                                              "entryCSN",
                                              "modifiersName",
                                              "modifyTimestamp",
                                              "entryDN",
                                              "subschemaSubentry",
                                              "hasSubordinates",
                                              "contextCSN",
                                              "numSubordinates",
                                              "memberOf",
                                              "pwdChangedTime",
                                              "pwdFailureTime",
                                              "pwdAccountLockedTime",
                                              NULL};
static const char *const dynamic_attrs[] = {"entryDN", "subschemaSubentry", "hasSubordinates",
                                            "numSubordinates", NULL};

void ldif_filter_init(ldif_filter_t *f, const char *const *drop,
                      int (*write_fn)(void *, const uint8_t *, size_t), void *ctx)
{
    f->drop = drop;
    buf_init(&f->line);
    f->dropping = false;
    f->write_fn = write_fn;
    f->ctx = ctx;
}

void ldif_filter_release(ldif_filter_t *f)
{
    buf_release(&f->line);
}

static bool dropped_attr(const ldif_filter_t *f, const uint8_t *p, size_t n)
{
    size_t k = 0;
    while (k < n && p[k] != ':' && p[k] != ';')
        k++;
    if (k == n)
        return false; /* not an attribute line */
    for (size_t i = 0; f->drop[i]; i++)
        if (strlen(f->drop[i]) == k && strncasecmp(f->drop[i], (const char *)p, k) == 0)
            return true;
    return false;
}

/* One complete line (with its newline, or the last line without one). */
static int filter_line(ldif_filter_t *f, const uint8_t *p, size_t n)
{
    size_t body = n;
    while (body && (p[body - 1] == '\n' || p[body - 1] == '\r'))
        body--;
    if (body > 0 && p[0] == ' ') {
        if (f->dropping)
            return 0;
    } else if (body == 0 || p[0] == '#') {
        f->dropping = false;
    } else {
        f->dropping = dropped_attr(f, p, body);
        if (f->dropping)
            return 0;
    }
    return f->write_fn(f->ctx, p, n);
}

int ldif_filter_feed(ldif_filter_t *f, const uint8_t *p, size_t n, bool last)
{
    int rc = 0;
    while (n && !rc) {
        const uint8_t *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) + 1 : n;
        if (f->line.len || !nl) {
            if (f->line.len + take > BUF_MAX / 2)
                return err_set(COFFER_ELIMIT, "ldap: an LDIF line is longer than 1 GiB");
            if ((rc = buf_append(&f->line, p, take)))
                return rc;
            if (nl) {
                rc = filter_line(f, f->line.data, f->line.len);
                buf_reset(&f->line);
            }
        } else {
            rc = filter_line(f, p, take);
        }
        p += take;
        n -= take;
    }
    if (!rc && last && f->line.len) {
        rc = filter_line(f, f->line.data, f->line.len);
        buf_reset(&f->line);
    }
    return rc;
}

/* "ldap://host:port/" -> "host:port"; "" for ldapi. */
static void server_name(const char *uri, char *out, size_t len)
{
    const char *s = strstr(uri, "://");
    s = s ? s + 3 : uri;
    size_t k = 0;
    while (s[k] && s[k] != '/' && s[k] != '?' && k + 1 < len)
        k++;
    snprintf(out, len, "%.*s", (int)k, s);
    if (!*out)
        snprintf(out, len, "local");
}

/* The bind password in a private 0600 file for -y. */
static int password_file(const ldap_online_t *on, char **tmpdir, char **path)
{
    if (!on->password)
        return 0;
    int rc = svc_tmpdir_new(tmpdir);
    if (!rc)
        rc = svc_write_private(*tmpdir, "bindpw", on->password, strlen(on->password), path);
    return rc;
}

static int bind_args(const ldap_online_t *on, const char *pwfile, svc_argv_t *a)
{
    int rc = svc_argv_add(a, "-x");
    if (!rc && !(rc = svc_argv_add(a, "-H")))
        rc = svc_argv_add(a, on->uri);
    if (!rc && on->bind_dn && !(rc = svc_argv_add(a, "-D")))
        rc = svc_argv_add(a, on->bind_dn);
    if (!rc && pwfile && !(rc = svc_argv_add(a, "-y")))
        rc = svc_argv_add(a, pwfile);
    return rc;
}

static int conf_args(const char *conf, const char *dir, svc_argv_t *a)
{
    int rc = 0;
    if (conf && !(rc = svc_argv_add(a, "-f")))
        rc = svc_argv_add(a, conf);
    if (!rc && dir && !(rc = svc_argv_add(a, "-F")))
        rc = svc_argv_add(a, dir);
    return rc;
}

int ldap_backup(repo_t *r, const ldap_backup_opts_t *o, svc_report_fn report, void *ctx)
{
    char *prog = NULL, *tmpdir = NULL, *pwfile = NULL;
    svc_argv_t a;
    svc_argv_init(&a);
    char server[512], fname[1024];
    if (!o->base || !*o->base)
        return err_set(COFFER_EINVAL, "ldap: give the suffix to export (--base DN)");
    if (o->slapcat)
        snprintf(server, sizeof server, "local");
    else
        server_name(o->online.uri, server, sizeof server);
    size_t k = 0;
    for (const char *s = o->base; *s && k + 8 < sizeof fname; s++)
        fname[k++] = *s == '/' ? '_' : *s;
    snprintf(fname + k, sizeof fname - k, ".ldif");
    int rc = o->slapcat ? svc_find_tool("ldap", "slapcat", "slapd", &prog)
                        : svc_find_tool("ldap", "ldapsearch", "ldap-utils", &prog);
    if (!rc)
        rc = svc_argv_add(&a, prog);
    if (rc)
        goto out;
    if (o->slapcat) {
        if (!(rc = conf_args(o->slapd_conf, o->config_dir, &a)) && !(rc = svc_argv_add(&a, "-b")))
            rc = svc_argv_add(&a, o->base);
        if (!rc && !(rc = svc_argv_add(&a, "-o")))
            rc = svc_argv_add(&a, "ldif-wrap=no");
    } else {
        if (!(rc = password_file(&o->online, &tmpdir, &pwfile)))
            rc = bind_args(&o->online, pwfile, &a);
        const char *rest[] = {"-LLL", "-o", "ldif-wrap=no", "-b", o->base, NULL};
        for (size_t i = 0; rest[i] && !rc; i++)
            rc = svc_argv_add(&a, rest[i]);
    }
    for (size_t i = 0; i < o->n_extra_args && !rc; i++)
        rc = svc_argv_add(&a, o->extra_args[i]);
    if (!rc && !o->slapcat) {
        /* bind and read the base entry first: a wrong password, a server that is down or an
         * unknown suffix stop here, before a snapshot exists */
        svc_argv_t chk;
        svc_argv_init(&chk);
        buf_t out;
        buf_init(&out);
        char what[1024];
        snprintf(what, sizeof what, "ldap: reading %s on %s", o->base, o->online.uri);
        rc = svc_argv_add(&chk, prog);
        if (!rc)
            rc = bind_args(&o->online, pwfile, &chk);
        const char *q[] = {"-LLL", "-s", "base", "-b", o->base, "(objectClass=*)", "1.1", NULL};
        for (size_t i = 0; q[i] && !rc; i++)
            rc = svc_argv_add(&chk, q[i]);
        if (!rc)
            rc = svc_capture(chk.v, NULL, NULL, what, &out);
        buf_release(&out);
        svc_argv_release(&chk);
    }
    if (!rc && !o->slapcat) {
        const char *tail[] = {"(objectClass=*)", "*", "+", NULL};
        for (size_t i = 0; tail[i] && !rc; i++)
            rc = svc_argv_add(&a, tail[i]);
    }
    if (rc)
        goto out;
    svc_dump_t d = {.kind = "ldap",
                    .server = server,
                    .database = o->base,
                    .file_name = fname,
                    .argv = a.v,
                    .env_add = NULL};
    rc = svc_backup_dump(r, &o->common, &d, report, ctx);
out:
    svc_tmpdir_remove(tmpdir);
    free(tmpdir);
    free(pwfile);
    free(prog);
    svc_argv_release(&a);
    return rc;
}

typedef struct fdw {
    int fd;
} fdw_t;

static int fd_write(void *ctx, const uint8_t *p, size_t n)
{
    fdw_t *w = ctx;
    while (n) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return err_errno("cannot write to the restore program");
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

typedef struct lfctx {
    ldif_filter_t f;
    fdw_t w;
} lfctx_t;

static int ldif_svc_filter(void *ctx, int fd, const uint8_t *p, size_t n, bool last)
{
    lfctx_t *c = ctx;
    c->w.fd = fd;
    return ldif_filter_feed(&c->f, p, n, last);
}

int ldap_restore(repo_t *r, const snapshot_t *s, const ldap_restore_opts_t *o)
{
    char *prog = NULL, *tmpdir = NULL, *pwfile = NULL;
    svc_argv_t a;
    svc_argv_init(&a);
    node_t n;
    node_init(&n);
    lfctx_t lf;
    ldif_filter_init(&lf.f, o->slapadd ? dynamic_attrs : ldap_operational_attrs, fd_write, &lf.w);
    char what[1024];
    int rc = svc_snapshot_file(r, s, "ldap", o->force, &n);
    if (rc)
        goto out;
    const char *base = svc_snapshot_tag(s, "database");
    rc = o->slapadd ? svc_find_tool("ldap", "slapadd", "slapd", &prog)
                    : svc_find_tool("ldap", "ldapadd", "ldap-utils", &prog);
    if (!rc)
        rc = svc_argv_add(&a, prog);
    if (rc)
        goto out;
    if (o->slapadd) {
        rc = conf_args(o->slapd_conf, o->config_dir, &a);
        if (!rc && base && !(rc = svc_argv_add(&a, "-b")))
            rc = svc_argv_add(&a, base);
        if (!rc)
            rc = svc_argv_add(&a, "-q");
        snprintf(what, sizeof what, "ldap: slapadd of %s", n.name);
    } else {
        if (!(rc = password_file(&o->online, &tmpdir, &pwfile)))
            rc = bind_args(&o->online, pwfile, &a);
        snprintf(what, sizeof what, "ldap: ldapadd of %s into %s", n.name, o->online.uri);
    }
    for (size_t i = 0; i < o->n_extra_args && !rc; i++)
        rc = svc_argv_add(&a, o->extra_args[i]);
    if (!rc)
        rc = svc_restore_pipe(r, &n, a.v, NULL, what, o->stop, ldif_svc_filter, &lf);
out:
    ldif_filter_release(&lf.f);
    svc_tmpdir_remove(tmpdir);
    free(tmpdir);
    free(pwfile);
    free(prog);
    node_release(&n);
    svc_argv_release(&a);
    return rc;
}
