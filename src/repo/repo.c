/*
 * repo.c -- opening, creating and reading a repository (see repo.h, doc/format.md).
 *
 * Layer: repo. The master secret lives only in memory here and is wiped on close; every
 * derived key too.
 */
#include "repo/repo.h"
#include "repo/packcache.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "compress/compress.h"
#include "crypto/crypto.h"
#include "repo/condemned.h"
#include "repo/idxseg.h"

#include <jansson.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_MAX_BYTES 65536

struct repo {
    storage_t *st;
    uint8_t id[32];
    uint8_t master[32];
    crypto_hmac_t *idkey;
    crypto_hmac_t *treekey;
    keyring_t *keyring;
    repo_params_t params;
    chunker_params_t chunker;
    char key_id[65];
    index_t *index;
    bool strict; /* damaged index segments and condemned lists are errors, not warnings */
    uint8_t (*index_ids)[32];
    size_t n_index_ids;
    packcache_t *pcache; /* remote locations only: pack windows for blob reads */
};

#define PACKCACHE_WINDOW (16u << 20) /* a default-size pack in one request */
#define PACKCACHE_SLOTS 8            /* 128 MiB at most */

void repo_params_default(repo_params_t *p)
{
    p->chunk_min = CHUNK_MIN_DEFAULT;
    p->chunk_avg = CHUNK_AVG_DEFAULT;
    p->chunk_max = CHUNK_MAX_DEFAULT;
    p->compression = COMPRESS_LEVEL_DEFAULT;
    p->pack_size = PACK_SIZE_DEFAULT;
}

void repo_pack_name(const uint8_t id[32], char *out, size_t n)
{
    char hex[65];
    hex_encode(id, 32, hex);
    snprintf(out, n, "data/%.2s/%s", hex, hex);
}

void repo_obj_name(const char *dir, const uint8_t id[32], char *out, size_t n)
{
    char hex[65];
    hex_encode(id, 32, hex);
    snprintf(out, n, "%s/%s", dir, hex);
}

static int derive(const uint8_t master[32], const char *label, uint8_t out[32])
{
    return crypto_hkdf(master, 32, NULL, 0, label, strlen(label), out, 32);
}

/* Derive working keys from the master secret and the repo id. */
static int setup_keys(repo_t *r)
{
    uint8_t k[32];
    int rc = derive(r->master, "coffer/v1/id", k);
    if (!rc)
        rc = crypto_hmac_new(k, &r->idkey);
    if (!rc)
        rc = derive(r->master, "coffer/v1/tree-id", k);
    if (!rc)
        rc = crypto_hmac_new(k, &r->treekey);
    if (!rc)
        rc = derive(r->master, "coffer/v1/enc", k);
    if (!rc)
        rc = keyring_new(k, &r->keyring);
    crypto_wipe(k, sizeof k);
    return rc;
}

static int setup_chunker(repo_t *r)
{
    uint8_t k[32];
    int rc = derive(r->master, "coffer/v1/chunker", k);
    if (!rc)
        rc = chunker_params_init(&r->chunker, k, r->params.chunk_min, r->params.chunk_avg,
                                 r->params.chunk_max);
    crypto_wipe(k, sizeof k);
    return rc;
}

void repo_close(repo_t *r)
{
    if (!r)
        return;
    storage_close(r->st);
    packcache_free(r->pcache);
    crypto_hmac_free(r->idkey);
    crypto_hmac_free(r->treekey);
    keyring_free(r->keyring);
    index_free(r->index);
    free(r->index_ids);
    crypto_wipe(r->master, sizeof r->master);
    free(r);
}

static void host_user(char *host, size_t hn, char *user, size_t un)
{
    if (gethostname(host, hn) != 0)
        snprintf(host, hn, "unknown");
    host[hn - 1] = 0;
    struct passwd pw, *res = NULL;
    char tmp[1024];
    if (getpwuid_r(getuid(), &pw, tmp, sizeof tmp, &res) == 0 && res)
        snprintf(user, un, "%s", pw.pw_name);
    else
        snprintf(user, un, "%u", (unsigned)getuid());
}

static int put_key_slot(repo_t *r, const char *password, const keyslot_kdf_t *kdf, char out_id[65])
{
    keyslot_kdf_t k;
    buf_t slot;
    buf_init(&slot);
    char host[256], user[256], name[128];
    uint8_t h[32];
    int rc = 0;
    if (!kdf) {
        if ((rc = keyslot_kdf_from_env(&k)))
            return rc;
        kdf = &k;
    }
    host_user(host, sizeof host, user, sizeof user);
    if ((rc = keyslot_create(kdf, password, r->id, r->master, host, user, &slot)))
        goto out;
    crypto_sha256(slot.data, slot.len, h);
    repo_obj_name("keys", h, name, sizeof name);
    if ((rc = storage_put(r->st, name, slot.data, slot.len, NULL)))
        goto out;
    hex_encode(h, 32, out_id);
out:
    buf_release(&slot);
    return rc;
}

int repo_add_key(repo_t *r, const char *password, const keyslot_kdf_t *kdf, char out_id[65])
{
    return put_key_slot(r, password, kdf, out_id);
}

static int write_config(repo_t *r)
{
    session_t s;
    buf_t sealed;
    buf_init(&sealed);
    json_t *inner = NULL, *outer = NULL;
    char *itext = NULL, *otext = NULL, *b64 = NULL, hex[65], ts[64];
    int rc = session_start(r->keyring, &s);
    if (rc)
        return rc;
    time_format_rfc3339(time_now_ns(), false, ts, sizeof ts);
    inner = json_pack("{s:{s:i,s:i,s:i},s:i,s:i,s:s}", "chunker", "min",
                      (json_int_t)r->params.chunk_min, "avg", (json_int_t)r->params.chunk_avg,
                      "max", (json_int_t)r->params.chunk_max, "compression", r->params.compression,
                      "pack_size", (json_int_t)r->params.pack_size, "created", ts);
    itext = inner ? json_dumps(inner, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (!itext) {
        rc = err_set(COFFER_ENOMEM, "out of memory writing config");
        goto out;
    }
    if ((rc = envelope_seal(&s, ENV_CONFIG, r->id, itext, strlen(itext), false, &sealed)) ||
        (rc = crypto_b64_encode(sealed.data, sealed.len, &b64)))
        goto out;
    hex_encode(r->id, 32, hex);
    outer = json_pack("{s:i,s:i,s:s,s:s}", "coffer_repository", 1, "version", FORMAT_VERSION, "id",
                      hex, "sealed", b64);
    otext = outer ? json_dumps(outer, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (!otext) {
        rc = err_set(COFFER_ENOMEM, "out of memory writing config");
        goto out;
    }
    rc = storage_put(r->st, "config", otext, strlen(otext), NULL);
out:
    session_wipe(&s);
    free(itext);
    free(otext);
    free(b64);
    json_decref(inner);
    json_decref(outer);
    buf_release(&sealed);
    return rc;
}

int repo_create(const char *location, const char *password, const repo_params_t *params,
                const keyslot_kdf_t *kdf, repo_t **out)
{
    return repo_create_opts(location, NULL, password, params, kdf, out);
}

int repo_create_opts(const char *location, const storage_opts_t *opts, const char *password,
                     const repo_params_t *params, const keyslot_kdf_t *kdf, repo_t **out)
{
    repo_t *r = calloc(1, sizeof *r);
    storage_stat_t st;
    int rc;
    if (!r)
        return err_set(COFFER_ENOMEM, "out of memory");
    if (params)
        r->params = *params;
    else
        repo_params_default(&r->params);
    if ((rc = storage_open_opts(location, true, opts, &r->st)))
        goto fail;
    rc = storage_stat(r->st, "config", &st);
    if (rc == 0) {
        rc = err_set(COFFER_EEXIST, "a repository already exists at %s", location);
        goto fail;
    }
    if (rc != COFFER_ENOENT)
        goto fail;
    err_clear();
    if ((rc = crypto_random(r->id, 32)) || (rc = crypto_random(r->master, 32)) ||
        (rc = setup_keys(r)) || (rc = setup_chunker(r)) || (rc = index_new(&r->index)))
        goto fail;
    if ((rc = put_key_slot(r, password, kdf, r->key_id)))
        goto fail;
    if ((rc = write_config(r))) {
        /* config is the commit point: without it the key slot is a stray object that the
         * next init would add to; take it back (best effort, the error stays the config's) */
        char name[96];
        snprintf(name, sizeof name, "keys/%s", r->key_id);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", err_msg());
        if (storage_remove(r->st, name) == 0)
            err_set(rc, "%s", msg);
        else
            err_set(rc, "%s (the key slot %s written before it is left behind; remove it)", msg,
                    name);
        goto fail;
    }
    *out = r;
    return 0;
fail:
    repo_close(r);
    return rc;
}

typedef struct name_list {
    char (*names)[96];
    size_t n, cap;
} name_list_t;

static int collect_name(void *ud, const char *name, const storage_stat_t *st)
{
    name_list_t *l = ud;
    (void)st;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        char(*nn)[96] = realloc(l->names, nc * sizeof *nn);
        if (!nn)
            return err_set(COFFER_ENOMEM, "out of memory listing objects");
        l->names = nn;
        l->cap = nc;
    }
    snprintf(l->names[l->n++], 96, "%s", name);
    return 0;
}

typedef struct key_try {
    size_t corrupt;
    name_list_t l;
} key_try_t;

static int read_config_header(repo_t *r, const char *location, json_t **out)
{
    buf_t b;
    buf_init(&b);
    int rc = storage_get(r->st, "config", 0, 0, &b);
    if (rc == COFFER_ENOENT) {
        buf_release(&b);
        return err_set(COFFER_ENOREPO, "no repository at %s: run `coffer init` first", location);
    }
    if (rc) {
        buf_release(&b);
        return rc;
    }
    json_error_t je;
    json_t *o = b.len <= CONFIG_MAX_BYTES ? json_loadb((char *)b.data, b.len, 0, &je) : NULL;
    buf_release(&b);
    json_t *v = o ? json_object_get(o, "version") : NULL;
    const char *idhex = o ? json_string_value(json_object_get(o, "id")) : NULL;
    if (!o || !json_is_integer(json_object_get(o, "coffer_repository")) || !json_is_integer(v) ||
        !idhex || hex_decode(idhex, r->id, 32)) {
        json_decref(o);
        return err_set(COFFER_ECORRUPT,
                       "the config object at %s is damaged or not a coffer repository", location);
    }
    if (json_integer_value(v) > FORMAT_VERSION) {
        int ver = (int)json_integer_value(v);
        json_decref(o);
        return err_set(COFFER_EVERSION,
                       "repository at %s has format version %d; this coffer reads up to "
                       "version %d: upgrade coffer",
                       location, ver, FORMAT_VERSION);
    }
    *out = o;
    return 0;
}

static int open_config(repo_t *r, json_t *hdr)
{
    const char *b64 = json_string_value(json_object_get(hdr, "sealed"));
    uint8_t *sealed = NULL;
    size_t sn = 0;
    buf_t plain;
    buf_init(&plain);
    json_t *o = NULL;
    int rc;
    if (!b64 || crypto_b64_decode(b64, &sealed, &sn))
        return err_set(COFFER_ECORRUPT, "the config object is damaged (sealed part)");
    if ((rc = envelope_open(r->keyring, ENV_CONFIG, r->id, sealed, sn, "config", &plain)))
        goto out;
    json_error_t je;
    o = json_loadb((char *)plain.data, plain.len, 0, &je);
    json_t *ch = o ? json_object_get(o, "chunker") : NULL;
    json_int_t mn = json_integer_value(json_object_get(ch, "min"));
    json_int_t av = json_integer_value(json_object_get(ch, "avg"));
    json_int_t mx = json_integer_value(json_object_get(ch, "max"));
    json_int_t lvl = json_integer_value(json_object_get(o, "compression"));
    json_int_t ps = json_integer_value(json_object_get(o, "pack_size"));
    if (!o || mn <= 0 || av <= 0 || mx <= 0 || mx > (64 << 20) || lvl < 0 || lvl > 22 ||
        ps < (1 << 16) || ps > (128 << 20)) {
        rc = err_set(COFFER_ECORRUPT, "the config object has invalid parameters");
        goto out;
    }
    r->params.chunk_min = (uint32_t)mn;
    r->params.chunk_avg = (uint32_t)av;
    r->params.chunk_max = (uint32_t)mx;
    r->params.compression = (int)lvl;
    r->params.pack_size = (uint32_t)ps;
    rc = setup_chunker(r);
out:
    json_decref(o);
    free(sealed);
    buf_release(&plain);
    return rc;
}

int repo_open(const char *location, const char *password, repo_t **out)
{
    return repo_open_opts(location, NULL, password, out);
}

int repo_open_opts(const char *location, const storage_opts_t *opts, const char *password,
                   repo_t **out)
{
    repo_t *r = calloc(1, sizeof *r);
    json_t *hdr = NULL;
    key_try_t *kt = NULL;
    buf_t slot;
    buf_init(&slot);
    int rc;
    if (!r)
        return err_set(COFFER_ENOMEM, "out of memory");
    if ((rc = storage_open_opts(location, false, opts, &r->st)) ||
        (rc = read_config_header(r, location, &hdr)))
        goto fail;
    if (!(storage_features(r->st) & STORAGE_F_LOCAL)) {
        /* COFFER_PACK_CACHE=WINDOW_MIB:SLOTS overrides the sizes (0:0 turns it off) */
        unsigned long wmib = PACKCACHE_WINDOW >> 20, slots = PACKCACHE_SLOTS;
        const char *pc = getenv("COFFER_PACK_CACHE");
        if (pc && sscanf(pc, "%lu:%lu", &wmib, &slots) != 2)
            log_warn("COFFER_PACK_CACHE=%.40s is not WINDOW_MIB:SLOTS; using the defaults", pc);
        if (wmib > 256 || slots > 256)
            wmib = PACKCACHE_WINDOW >> 20, slots = PACKCACHE_SLOTS;
        if (wmib && slots && (rc = packcache_new(wmib << 20, slots, &r->pcache)))
            goto fail;
    }
    kt = calloc(1, sizeof *kt);
    if (!kt) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = storage_list(r->st, "keys/", collect_name, &kt->l)))
        goto fail;
    if (kt->l.n == 0) {
        rc = err_set(COFFER_ECORRUPT,
                     "repository at %s has no key slots (keys/ is empty): it cannot be opened",
                     location);
        goto fail;
    }
    rc = COFFER_EPASSWORD;
    for (size_t i = 0; i < kt->l.n && rc; i++) {
        buf_reset(&slot);
        int grc = storage_get(r->st, kt->l.names[i], 0, 0, &slot);
        if (grc) {
            log_warn("cannot read key slot %s: %s", kt->l.names[i], err_msg());
            kt->corrupt++;
            continue;
        }
        rc = keyslot_open(slot.data, slot.len, password, r->id, kt->l.names[i], r->master);
        if (rc == COFFER_ECORRUPT) {
            log_warn("%s", err_msg());
            kt->corrupt++;
            rc = COFFER_EPASSWORD;
        } else if (rc == 0) {
            snprintf(r->key_id, sizeof r->key_id, "%s", kt->l.names[i] + 5);
        }
    }
    if (rc) {
        if (kt->corrupt == kt->l.n)
            rc = err_set(COFFER_ECORRUPT,
                         "no key slot of the repository at %s could be read: all %zu are "
                         "damaged; restore keys/ from a copy",
                         location, kt->l.n);
        else
            rc = err_set(COFFER_EPASSWORD,
                         "wrong password: no key slot of the repository at %s opens with it "
                         "(check COFFER_PASSWORD or COFFER_PASSWORD_FILE)",
                         location);
        goto fail;
    }
    if ((rc = setup_keys(r)) || (rc = open_config(r, hdr)) || (rc = index_new(&r->index)))
        goto fail;
    json_decref(hdr);
    free(kt->l.names);
    free(kt);
    buf_release(&slot);
    *out = r;
    return 0;
fail:
    json_decref(hdr);
    if (kt)
        free(kt->l.names);
    free(kt);
    buf_release(&slot);
    repo_close(r);
    return rc;
}

storage_t *repo_storage(repo_t *r)
{
    return r->st;
}

keyring_t *repo_keyring(repo_t *r)
{
    return r->keyring;
}

const uint8_t *repo_id(const repo_t *r)
{
    return r->id;
}

const repo_params_t *repo_params(const repo_t *r)
{
    return &r->params;
}

const chunker_params_t *repo_chunker(const repo_t *r)
{
    return &r->chunker;
}

const char *repo_key_id(const repo_t *r)
{
    return r->key_id;
}

void repo_set_strict(repo_t *r, bool strict)
{
    r->strict = strict;
}

index_t *repo_index(repo_t *r)
{
    return r->index;
}

int repo_blob_id(const repo_t *r, uint8_t type, const void *data, size_t n, uint8_t out[32])
{
    return crypto_hmac(type == BLOB_TREE ? r->treekey : r->idkey, data, n, out);
}

int repo_get_sealed(repo_t *r, const char *name, uint8_t type, bool check_hash, buf_t *out)
{
    buf_t raw;
    buf_init(&raw);
    int rc = storage_get(r->st, name, 0, 0, &raw);
    if (rc)
        goto out;
    if (check_hash) {
        const char *slash = strrchr(name, '/');
        uint8_t h[32], want[32];
        crypto_sha256(raw.data, raw.len, h);
        if (!slash || hex_decode(slash + 1, want, 32) || memcmp(h, want, 32) != 0) {
            rc =
                err_set(COFFER_ECORRUPT,
                        "%s is damaged: its content does not match its name (hash mismatch)", name);
            goto out;
        }
    }
    rc = envelope_open(r->keyring, type, NULL, raw.data, raw.len, name, out);
out:
    buf_release(&raw);
    return rc;
}

/* ---- index loading ---- */

typedef struct seg_load {
    repo_t *r;
    uint8_t (*sup)[32];
    size_t n_sup, cap_sup;
    bool inserting;
    uint32_t flags_for_condemned; /* unused */
} seg_load_t;

static int on_supersedes(void *ud, const uint8_t id[32])
{
    seg_load_t *sl = ud;
    if (sl->inserting)
        return 0;
    if (sl->n_sup == sl->cap_sup) {
        size_t nc = sl->cap_sup ? sl->cap_sup * 2 : 16;
        uint8_t(*ns)[32] = realloc(sl->sup, nc * sizeof *ns);
        if (!ns)
            return err_set(COFFER_ENOMEM, "out of memory loading the index");
        sl->sup = ns;
        sl->cap_sup = nc;
    }
    memcpy(sl->sup[sl->n_sup++], id, 32);
    return 0;
}

static int on_pack(void *ud, const uint8_t id[32], const uint8_t session[16], const pack_entry_t *e,
                   size_t n)
{
    seg_load_t *sl = ud;
    if (!sl->inserting)
        return 0;
    uint32_t no;
    int rc = index_add_pack(sl->r->index, id, session, 0, &no);
    for (size_t i = 0; i < n && !rc; i++) {
        blob_loc_t loc = {.type = e[i].type,
                          .compressed = e[i].compressed,
                          .pack = no,
                          .offset = e[i].offset,
                          .stored_len = e[i].stored_len,
                          .raw_len = e[i].raw_len};
        if (e[i].type == BLOB_TREE) {
            index_pack_t p;
            if (index_get_pack(sl->r->index, no, &p) && !(p.flags & PACK_F_TREE))
                index_set_pack_flags(sl->r->index, no, p.flags | PACK_F_TREE);
        }
        rc = index_insert(sl->r->index, e[i].id, &loc);
    }
    return rc;
}

static int repo_load_condemned(repo_t *r);

int repo_load_index(repo_t *r)
{
    name_list_t l = {0};
    seg_load_t sl = {.r = r};
    buf_t *plains = NULL;
    int rc;
    index_free(r->index);
    r->index = NULL;
    free(r->index_ids);
    r->index_ids = NULL;
    r->n_index_ids = 0;
    if ((rc = index_new(&r->index)))
        return rc;
    /* condemned packs first, so duplicates prefer live copies */
    if ((rc = repo_load_condemned(r)))
        return rc;
    if ((rc = storage_list(r->st, "index/", collect_name, &l)))
        goto out;
    plains = calloc(l.n ? l.n : 1, sizeof *plains);
    r->index_ids = calloc(l.n ? l.n : 1, sizeof *r->index_ids);
    if (!plains || !r->index_ids) {
        rc = err_set(COFFER_ENOMEM, "out of memory loading the index");
        goto out;
    }
    idxseg_cb_t cb = {.ud = &sl, .supersedes = on_supersedes, .pack = on_pack};
    for (size_t i = 0; i < l.n; i++) {
        if (hex_decode(l.names[i] + 6, r->index_ids[r->n_index_ids], 32)) {
            log_warn("ignoring unexpected object %s", l.names[i]);
            continue;
        }
        buf_init(&plains[i]);
        rc = repo_get_sealed(r, l.names[i], ENV_INDEX, true, &plains[i]);
        if (rc == COFFER_ENOENT) { /* removed by a concurrent prune after listing */
            err_clear();
            rc = 0;
            continue;
        }
        sl.inserting = false;
        if (!rc)
            rc = idxseg_decode(plains[i].data, plains[i].len, l.names[i], &cb);
        if (rc && rc != COFFER_ENOMEM && !r->strict) {
            /* lenient readers go on without it: blobs it lists look missing (restore fails
             * only for what needs them; a backup stores them again) */
            log_warn("ignoring damaged index segment: %s (run `coffer check`)", err_msg());
            err_clear();
            buf_release(&plains[i]);
            rc = 0;
            continue;
        }
        if (rc)
            goto out;
        r->n_index_ids++;
    }
    sl.inserting = true;
    for (size_t i = 0, k = 0; i < l.n; i++) {
        if (!plains[i].data)
            continue;
        const uint8_t *sid = r->index_ids[k++];
        bool superseded = false;
        for (size_t s = 0; s < sl.n_sup && !superseded; s++)
            superseded = memcmp(sl.sup[s], sid, 32) == 0;
        if (!superseded && (rc = idxseg_decode(plains[i].data, plains[i].len, l.names[i], &cb)))
            goto out;
        buf_release(&plains[i]);
    }
out:
    if (plains)
        for (size_t i = 0; i < l.n; i++)
            buf_release(&plains[i]);
    free(plains);
    free(l.names);
    free(sl.sup);
    return rc;
}

const uint8_t (*repo_index_ids(repo_t *r, size_t *out_n))[32]
{
    *out_n = r->n_index_ids;
    return (const uint8_t(*)[32])r->index_ids;
}

/* ---- blobs ---- */

int repo_read_blob(repo_t *r, uint8_t type, const uint8_t id[32], buf_t *out)
{
    blob_loc_t loc;
    index_pack_t pk;
    char hex[65], pname[96];
    buf_t sealed, plain;
    buf_init(&sealed);
    buf_init(&plain);
    uint8_t key[32], check[32];
    int rc;
    hex_encode(id, 32, hex);
    if (!index_lookup(r->index, id, &loc) || loc.pack == INDEX_PACK_PENDING ||
        !index_get_pack(r->index, loc.pack, &pk))
        return err_set(COFFER_ENOENT, "blob %s is not in the index", hex);
    if (loc.type != type)
        return err_set(COFFER_ECORRUPT, "blob %s has type '%c', expected '%c'", hex, loc.type,
                       type);
    repo_pack_name(pk.id, pname, sizeof pname);
    if ((rc = keyring_session_key(r->keyring, pk.session, key)))
        goto out;
    rc = r->pcache
             ? packcache_get(r->pcache, r->st, pname, pk.id, loc.offset, loc.stored_len, &sealed)
             : storage_get(r->st, pname, loc.offset, loc.stored_len, &sealed);
    if (rc == 0 && sealed.len != loc.stored_len)
        rc = err_set(COFFER_ECORRUPT, "pack %s is truncated", pname);
    if (rc == COFFER_EINVAL)
        rc = err_set(COFFER_ECORRUPT, "pack %s is truncated", pname);
    if (rc)
        goto out;
    if ((rc = blob_open(key, type, id, sealed.data, sealed.len, loc.compressed ? &plain : out)))
        goto out;
    if (loc.compressed && (rc = compress_decompress(plain.data, plain.len, loc.raw_len, out)))
        goto out;
    if (out->len != loc.raw_len) {
        rc = err_set(COFFER_ECORRUPT, "blob %s has the wrong length", hex);
        goto out;
    }
    if ((rc = repo_blob_id(r, type, out->data, out->len, check)))
        goto out;
    if (memcmp(check, id, 32) != 0)
        rc = err_set(COFFER_ECORRUPT, "blob %s does not match its id", hex);
out:
    if (rc && rc != COFFER_ENOMEM)
        err_ctx(rc, "while reading blob %.16s from pack %s", hex, pname);
    crypto_wipe(key, sizeof key);
    buf_release(&sealed);
    buf_release(&plain);
    return rc;
}

int repo_load_tree(repo_t *r, const uint8_t id[32], tree_t *out)
{
    buf_t b;
    buf_init(&b);
    char what[96], hex[65];
    int rc = repo_read_blob(r, BLOB_TREE, id, &b);
    if (!rc) {
        hex_encode(id, 32, hex);
        snprintf(what, sizeof what, "tree %.16s", hex);
        rc = tree_decode(b.data, b.len, what, out);
    }
    buf_release(&b);
    return rc;
}

int repo_find_path(repo_t *r, const uint8_t root[32], const char *path, node_t *out_node)
{
    tree_t t;
    tree_init(&t);
    uint8_t cur[32];
    memcpy(cur, root, 32);
    const char *p = path;
    int rc = 0;
    for (;;) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *rest = p + len;
        while (*rest == '/')
            rest++;
        char *name = strndup(p, len);
        if (!name) {
            rc = err_set(COFFER_ENOMEM, "out of memory");
            goto out;
        }
        tree_release(&t);
        tree_init(&t);
        if ((rc = repo_load_tree(r, cur, &t))) {
            free(name);
            goto out;
        }
        const node_t *n = tree_find(&t, name);
        free(name);
        if (!n) {
            rc = err_set(COFFER_ENOENT, "no such path in the snapshot: %s", path);
            goto out;
        }
        if (!*rest) {
            rc = node_copy(out_node, n);
            goto out;
        }
        if (n->type != NODE_DIR) {
            rc = err_set(COFFER_ENOENT,
                         "no such path in the snapshot: %s (%.*s is not a "
                         "directory)",
                         path, (int)(p + len - path), path);
            goto out;
        }
        memcpy(cur, n->subtree, 32);
        p = rest;
    }
out:
    tree_release(&t);
    return rc;
}

/* ---- snapshots ---- */

int repo_load_snapshot(repo_t *r, const uint8_t id[32], snapshot_t *out)
{
    char name[96];
    buf_t b;
    buf_init(&b);
    repo_obj_name("snapshots", id, name, sizeof name);
    int rc = repo_get_sealed(r, name, ENV_SNAPSHOT, true, &b);
    if (!rc) {
        snapshot_init(out);
        rc = snapshot_decode(b.data, b.len, name, out);
        if (!rc)
            memcpy(out->id, id, 32);
    }
    buf_release(&b);
    return rc;
}

static int cmp_snap_time(const void *a, const void *b)
{
    const snapshot_t *x = a, *y = b;
    if (x->time_ns != y->time_ns)
        return x->time_ns < y->time_ns ? -1 : 1;
    return memcmp(x->id, y->id, 32);
}

int repo_list_snapshots(repo_t *r, snapshot_t **out, size_t *out_n, size_t *out_bad)
{
    name_list_t l = {0};
    snapshot_t *s = NULL;
    size_t n = 0, bad = 0;
    int rc = storage_list(r->st, "snapshots/", collect_name, &l);
    if (rc)
        goto out;
    s = calloc(l.n ? l.n : 1, sizeof *s);
    if (!s) {
        rc = err_set(COFFER_ENOMEM, "out of memory listing snapshots");
        goto out;
    }
    for (size_t i = 0; i < l.n; i++) {
        uint8_t id[32];
        if (hex_decode(l.names[i] + 10, id, 32))
            continue;
        int lrc = repo_load_snapshot(r, id, &s[n]);
        if (lrc == COFFER_ENOENT) {
            err_clear();
            continue;
        }
        if (lrc == COFFER_ENOMEM) {
            rc = lrc;
            goto out;
        }
        if (lrc) {
            log_warn("skipping unreadable snapshot: %s", err_msg());
            bad++;
            continue;
        }
        n++;
    }
    if (n > 1)
        qsort(s, n, sizeof *s, cmp_snap_time);
    *out = s;
    *out_n = n;
    if (out_bad)
        *out_bad = bad;
    s = NULL;
out:
    if (s)
        repo_free_snapshots(s, n);
    free(l.names);
    return rc;
}

void repo_free_snapshots(snapshot_t *s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        snapshot_release(&s[i]);
    free(s);
}

int repo_resolve_snapshot(const snapshot_t *snaps, size_t n, const char *spec, size_t *out_i)
{
    if (strcmp(spec, "latest") == 0) {
        if (n == 0)
            return err_set(COFFER_ENOENT, "no snapshot matches \"latest\": the repository "
                                          "(or the filter) has no snapshots");
        *out_i = n - 1;
        return 0;
    }
    size_t len = strlen(spec);
    if (len < 4 || len > 64)
        return err_set(COFFER_EINVAL,
                       "snapshot \"%s\": give \"latest\" or at least 4 hex digits of an id", spec);
    size_t found = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        char hex[65];
        hex_encode(snaps[i].id, 32, hex);
        if (strncasecmp(hex, spec, len) == 0) {
            if (found != SIZE_MAX)
                return err_set(COFFER_EINVAL,
                               "snapshot prefix \"%s\" is ambiguous: give more digits", spec);
            found = i;
        }
    }
    if (found == SIZE_MAX)
        return err_set(COFFER_ENOENT, "no snapshot with id \"%s\": `coffer snapshots` lists them",
                       spec);
    *out_i = found;
    return 0;
}

/* ---- condemned lists ---- */

typedef struct cond_load {
    repo_t *r;
    int rc;
} cond_load_t;

static int mark_condemned(void *ud, const char *name, const storage_stat_t *st)
{
    cond_load_t *cl = ud;
    buf_t b;
    buf_init(&b);
    condemned_t c;
    condemned_init(&c);
    (void)st;
    if (strncmp(name, "maint/condemned-", 16) != 0)
        return 0;
    int rc = repo_get_sealed(cl->r, name, ENV_CONDEMNED, false, &b);
    if (rc == COFFER_ENOENT) {
        err_clear();
        return 0;
    }
    if (!rc)
        rc = condemned_decode(b.data, b.len, name, &c);
    if (rc && rc != COFFER_ENOMEM && !cl->r->strict) {
        /* its packs are never swept while it is damaged, so ignoring it is safe */
        log_warn("ignoring damaged condemned list: %s", err_msg());
        err_clear();
        rc = 0;
    }
    for (size_t i = 0; !rc && i < c.n_packs; i++) {
        uint32_t no;
        static const uint8_t zero[16];
        rc = index_add_pack(cl->r->index, c.packs[i], zero, PACK_F_CONDEMNED, &no);
    }
    condemned_release(&c);
    buf_release(&b);
    return rc;
}

static int repo_load_condemned(repo_t *r)
{
    cond_load_t cl = {.r = r};
    return storage_list(r->st, "maint/", mark_condemned, &cl);
}
