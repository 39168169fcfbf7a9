/*
 * cmd_key.c -- `coffer key list|add|remove ID|passwd`: manage key slots (doc/format.md §3).
 *
 * Layer: cli. Every subcommand opens the repository first (proving the caller knows a
 * password). A slot wraps the master secret, so adding or removing one never touches data:
 * `passwd` adds a slot for the new password, checks it opens, then removes the slot that
 * opened the repository. The slot in use and the last slot are never removed.
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "crypto/crypto.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX_SLOTS 64 /* repo_open tries at most this many slots */

typedef struct key_slot {
    char id[65];
    char *kdf, *created, *host, *user;
    bool bad;
} key_slot_t;

typedef struct key_list {
    key_slot_t *v;
    size_t n, cap;
} key_list_t;

static void help(void)
{
    printf("usage: coffer key list [--json]\n"
           "       coffer key add              add a key slot for a new password\n"
           "       coffer key remove ID        remove a key slot (id prefix, >= 4 hex digits)\n"
           "       coffer key passwd           change the password: add a slot, remove the\n"
           "                                   one that opened the repository\n"
           "The current password comes from COFFER_PASSWORD or COFFER_PASSWORD_FILE, the new one\n"
           "from COFFER_NEW_PASSWORD or COFFER_NEW_PASSWORD_FILE, otherwise both are asked.\n"
           "Data is never re-encrypted: a slot only wraps the repository's master key.\n");
}

static void key_list_release(key_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].kdf);
        free(l->v[i].created);
        free(l->v[i].host);
        free(l->v[i].user);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return false;
    return true;
}

static int collect(void *ud, const char *name, const storage_stat_t *st)
{
    (void)st;
    key_list_t *l = ud;
    const char *id = name + 5; /* after "keys/" */
    if (strlen(id) != 64 || !is_hex(id, 64))
        return 0; /* not a slot */
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        key_slot_t *nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            return err_set(COFFER_ENOMEM, "out of memory");
        l->v = nv;
        l->cap = ncap;
    }
    memset(&l->v[l->n], 0, sizeof l->v[0]);
    snprintf(l->v[l->n].id, sizeof l->v[0].id, "%s", id);
    l->n++;
    return 0;
}

static int slot_cmp(const void *x, const void *y)
{
    const key_slot_t *a = x, *b = y;
    int c = strcmp(a->created ? a->created : "", b->created ? b->created : "");
    return c ? c : strcmp(a->id, b->id);
}

/* Every slot under keys/; with info, read each one's informational fields too (a slot that
 * cannot be read or parsed is listed with bad set). */
static int list_slots(repo_t *r, bool info, key_list_t *out)
{
    int rc = storage_list(repo_storage(r), "keys/", collect, out);
    if (rc || !info)
        return rc;
    buf_t b;
    buf_init(&b);
    for (size_t i = 0; i < out->n; i++) {
        key_slot_t *k = &out->v[i];
        char name[80];
        snprintf(name, sizeof name, "keys/%s", k->id);
        buf_reset(&b);
        if (storage_get(repo_storage(r), name, 0, 0, &b) != 0 ||
            keyslot_info(b.data, b.len, &k->kdf, &k->created, &k->host, &k->user) != 0)
            k->bad = true;
    }
    buf_release(&b);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof out->v[0], slot_cmp);
    err_clear();
    return 0;
}

static int key_list(cli_t *cli, repo_t *r)
{
    key_list_t l = {0};
    int rc = list_slots(r, true, &l);
    if (rc)
        return rc;
    const char *cur = repo_key_id(r);
    if (cli->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < l.n; i++) {
            key_slot_t *k = &l.v[i];
            json_t *o = json_pack("{s:s,s:s#,s:b}", "id", k->id, "short_id", k->id, 8, "current",
                                  strcmp(k->id, cur) == 0);
            if (k->bad)
                json_object_set_new(o, "error", json_string("cannot be read or parsed"));
            json_object_set_new(o, "kdf", k->kdf ? json_string(k->kdf) : json_null());
            json_object_set_new(o, "created", k->created ? json_string(k->created) : json_null());
            json_object_set_new(o, "host", k->host ? json_string(k->host) : json_null());
            json_object_set_new(o, "user", k->user ? json_string(k->user) : json_null());
            json_array_append_new(arr, o);
        }
        cli_json_doc(arr);
    } else {
        printf("  %-8s  %-8s  %-20s  %-16s  %s\n", "ID", "KDF", "Created", "Host", "User");
        for (size_t i = 0; i < l.n; i++) {
            key_slot_t *k = &l.v[i];
            if (k->bad) {
                printf("%c %.8s  (cannot be read or parsed: run `coffer check`)\n",
                       strcmp(k->id, cur) == 0 ? '*' : ' ', k->id);
                continue;
            }
            printf("%c %.8s  %-8s  %-20s  %-16s  %s\n", strcmp(k->id, cur) == 0 ? '*' : ' ', k->id,
                   k->kdf ? k->kdf : "", k->created ? k->created : "", k->host ? k->host : "",
                   k->user ? k->user : "");
        }
        printf("%zu key slot%s (* = the one that opened the repository)\n", l.n,
               l.n == 1 ? "" : "s");
    }
    key_list_release(&l);
    return 0;
}

/* Check the slot just written opens with password before anything relies on it. */
static int verify_slot(repo_t *r, const char *id, const char *password)
{
    char name[80];
    uint8_t master[32];
    buf_t b;
    buf_init(&b);
    snprintf(name, sizeof name, "keys/%s", id);
    int rc = storage_get(repo_storage(r), name, 0, 0, &b);
    if (!rc)
        rc = keyslot_open(b.data, b.len, password, repo_id(r), name, master);
    crypto_wipe(master, sizeof master);
    buf_release(&b);
    if (rc)
        rc = err_ctx(rc, "while checking the new key slot %.8s", id);
    return rc;
}

/* Ask for the new password and write a slot for it; *out_id names it. */
static int add_slot(repo_t *r, char out_id[65])
{
    key_list_t l = {0};
    int rc = list_slots(r, false, &l);
    size_t n = l.n;
    key_list_release(&l);
    if (rc)
        return rc;
    if (n >= KEY_MAX_SLOTS)
        return err_set(COFFER_ELIMIT,
                       "the repository has %zu key slots, the most coffer tries when opening: "
                       "remove one with `coffer key remove ID` first",
                       n);
    char *pw = NULL;
    if ((rc = cli_get_new_password(&pw)))
        return rc;
    char id[65];
    rc = repo_add_key(r, pw, NULL, id);
    if (!rc)
        rc = verify_slot(r, id, pw);
    cli_free_password(pw);
    if (!rc)
        memcpy(out_id, id, 65);
    return rc;
}

static int remove_slot(repo_t *r, const char *id)
{
    char name[80];
    snprintf(name, sizeof name, "keys/%s", id);
    return storage_remove(repo_storage(r), name);
}

static int key_remove(cli_t *cli, repo_t *r, const char *prefix)
{
    size_t plen = strlen(prefix); /* checked by cmd_key: 4-64 lowercase hex digits */
    key_list_t l = {0};
    int rc = list_slots(r, false, &l);
    if (rc)
        return rc;
    size_t match = 0, found = 0;
    for (size_t i = 0; i < l.n; i++)
        if (strncmp(l.v[i].id, prefix, plen) == 0) {
            match++;
            found = i;
        }
    const char *cur = repo_key_id(r);
    if (match == 0) {
        rc = err_set(COFFER_ENOENT, "no key slot with id %s (see `coffer key list`)", prefix);
    } else if (match > 1) {
        rc = err_set(COFFER_EINVAL, "key slot id %s is ambiguous (%zu slots): give more digits",
                     prefix, match);
    } else if (strcmp(l.v[found].id, cur) == 0) {
        rc = err_set(COFFER_EINVAL,
                     "key slot %.8s is the one that opened the repository: open with another "
                     "password first (COFFER_PASSWORD), or use `coffer key passwd` to replace it",
                     cur);
    } else if (l.n < 2) {
        rc = err_set(COFFER_EINVAL,
                     "key slot %.8s is the last one: the repository could "
                     "never be opened again",
                     l.v[found].id);
    } else if (!(rc = remove_slot(r, l.v[found].id))) {
        if (cli->json)
            cli_json_line(
                json_pack("{s:s,s:s}", "message_type", "key_removed", "id", l.v[found].id));
        else if (!cli->quiet)
            printf("removed key slot %.8s\n", l.v[found].id);
    }
    key_list_release(&l);
    return rc;
}

int cmd_key(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("key", "unknown option");
        }
    }
    int nargs = argc - optind;
    if (nargs < 1)
        return cli_usage("key", "give a subcommand: list, add, remove ID or passwd");
    const char *sub = argv[optind];
    bool is_remove = strcmp(sub, "remove") == 0;
    if (strcmp(sub, "list") != 0 && strcmp(sub, "add") != 0 && !is_remove &&
        strcmp(sub, "passwd") != 0)
        return cli_usage("key", "unknown subcommand \"%s\" (list, add, remove ID, passwd)", sub);
    if (is_remove ? nargs != 2 : nargs != 1)
        return is_remove ? cli_usage("key", "remove takes one key slot id")
                         : cli_usage("key", "unexpected argument \"%s\"", argv[optind + 1]);
    if (is_remove) {
        const char *p = argv[optind + 1];
        size_t plen = strlen(p);
        if (plen < 4 || plen > 64 || !is_hex(p, plen))
            return cli_usage("key",
                             "\"%s\" is not a key slot id: give at least 4 lowercase "
                             "hex digits (see `coffer key list`)",
                             p);
    }
    repo_t *r = NULL;
    int rc = cli_open_repo(cli, &r);
    if (rc)
        return cli_fail(cli, rc);
    char id[65];
    if (strcmp(sub, "list") == 0) {
        rc = key_list(cli, r);
    } else if (is_remove) {
        rc = key_remove(cli, r, argv[optind + 1]);
    } else if (strcmp(sub, "add") == 0) {
        if (!(rc = add_slot(r, id))) {
            if (cli->json)
                cli_json_line(json_pack("{s:s,s:s}", "message_type", "key_added", "id", id));
            else if (!cli->quiet)
                printf("added key slot %.8s\n", id);
        }
    } else { /* passwd */
        char old[65];
        snprintf(old, sizeof old, "%s", repo_key_id(r));
        if (!(rc = add_slot(r, id))) {
            rc = remove_slot(r, old);
            if (rc)
                rc = err_ctx(rc,
                             "could not remove the old key slot %.8s (the new slot %.8s "
                             "works; both passwords open the repository until `coffer "
                             "key remove %.8s` succeeds)",
                             old, id, old);
        }
        if (!rc) {
            if (cli->json)
                cli_json_line(json_pack("{s:s,s:s,s:s}", "message_type", "password_changed", "id",
                                        id, "removed", old));
            else if (!cli->quiet)
                printf("password changed: new key slot %.8s, removed %.8s\n", id, old);
        }
    }
    repo_close(r);
    return rc ? cli_fail(cli, rc) : EXIT_OK;
}
