/*
 * ldap.h -- the ldap service source: an LDIF export of a directory, online through
 * ldapsearch (all user and operational attributes) or offline/local through slapcat, stored
 * as one snapshot per suffix; restore through slapadd into a new database directory, or
 * through ldapadd into a running server.
 *
 * Layer: source/ldap (uses source/service). The bind password reaches ldapsearch/ldapadd as
 * a 0600 file in a private directory (-y), never argv. ldapadd cannot write operational
 * attributes, so the restore through ldapadd removes them from the LDIF stream
 * (ldap_ldif_filter); slapadd keeps entryUUID, entryCSN and timestamps.
 */
#ifndef COFFER_SOURCE_LDAP_LDAP_H
#define COFFER_SOURCE_LDAP_LDAP_H

#include "source/service.h"

typedef struct ldap_online {
    const char *uri;      /* ldap://host:port or ldaps://... */
    const char *bind_dn;  /* NULL: anonymous (or SASL through extra_args) */
    const char *password; /* bind password; NULL: none */
} ldap_online_t;

typedef struct ldap_backup_opts {
    bool slapcat;           /* slapcat instead of ldapsearch */
    const char *slapd_conf; /* slapcat -f FILE */
    const char *config_dir; /* slapcat -F DIR */
    const char *base;       /* suffix / search base */
    ldap_online_t online;   /* ldapsearch */
    char *const *extra_args;
    size_t n_extra_args;
    svc_common_t common;
} ldap_backup_opts_t;

int ldap_backup(repo_t *r, const ldap_backup_opts_t *o, svc_report_fn report, void *ctx);

typedef struct ldap_restore_opts {
    bool slapadd;           /* slapadd (server stopped, new database dir) instead of ldapadd */
    const char *slapd_conf; /* slapadd -f FILE */
    const char *config_dir; /* slapadd -F DIR */
    ldap_online_t online;   /* ldapadd */
    bool force;
    char *const *extra_args;
    size_t n_extra_args;
    volatile sig_atomic_t *stop;
} ldap_restore_opts_t;

int ldap_restore(repo_t *r, const snapshot_t *s, const ldap_restore_opts_t *o);

/* Streaming LDIF filter: drop the attributes listed (case-insensitive, with options such as
 * ";binary") with their continuation lines. Feed chunks in order; `last` flushes. Output is
 * written with write_fn. */
typedef struct ldif_filter {
    const char *const *drop; /* NULL-terminated attribute names */
    buf_t line;              /* a partial line carried between chunks */
    bool dropping;           /* the current attribute's continuation lines are dropped */
    int (*write_fn)(void *ctx, const uint8_t *p, size_t n);
    void *ctx;
} ldif_filter_t;
void ldif_filter_init(ldif_filter_t *f, const char *const *drop,
                      int (*write_fn)(void *, const uint8_t *, size_t), void *ctx);
int ldif_filter_feed(ldif_filter_t *f, const uint8_t *p, size_t n, bool last);
void ldif_filter_release(ldif_filter_t *f);
/* Operational attributes slapd returns with '+' that ldapadd must not send. */
extern const char *const ldap_operational_attrs[];

#endif
