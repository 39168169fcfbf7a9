/*
 * sftp.c -- storage driver for a directory on an SSH server, over SFTP (libssh2 + OpenSSL).
 *
 * Layer: storage driver (reached only through storage.c; names arrive already validated).
 * Location: "sftp://USER@HOST[:PORT]/ABS/PATH", or "sftp://USER@HOST[:PORT]/~/REL" for a path
 * relative to the user's login directory; HOST may be "[v6addr]". Object "data/ab/cd..." is
 * the file <root>/data/ab/cd...; directories are created on demand (mode 0700), files 0600.
 *
 * Invariants:
 * - An object appears whole or not at all: put writes "<dir>/.tmp-<random>", then renames it
 *   with SSH_FXP_RENAME, which fails when the target exists (SFTP v3; OpenSSH implements it
 *   with link()+unlink(), so two racing writers cannot both win). A failed rename is EEXIST
 *   when the target is there. With opts->overwrite the rename is posix-rename@openssh.com,
 *   sent on a second raw SFTP channel of the same session (libssh2 1.10 has no call for it);
 *   a server without that extension gets remove-then-rename, which has a short window where
 *   the object is missing (doc/storage.md).
 * - ".tmp-*" names are never listed; cleanup() removes old ones.
 * - A libssh2 session is not thread-safe: each operation takes one connection (SSH session,
 *   SFTP channel, socket) from a pool and gives it back. At most `connections` exist; callers
 *   beyond that wait. No connection is held while a list callback runs (the callback may call
 *   back into the storage). A connection that fails below the SFTP level (socket, timeout,
 *   channel) is discarded and the error flagged transient, so storage.c retries on a fresh
 *   connection; streaming uploads retry their own chunks the same way.
 * - The host key is checked against known_hosts on every new connection: unknown keys are
 *   refused unless sftp.accept-new-host-key=yes (then appended to the file), changed or
 *   revoked keys always. Secrets (password, key passphrase) come from the environment or
 *   files, are never logged or put in messages, and are wiped on close.
 * Clock: now() stamps a temp file on the server and reads its mtime (whole seconds).
 */
#include "storage/storage_intern.h"
#include "storage/sftp/sftp_parse.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"

#include <libssh2.h>
#include <libssh2_sftp.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_PREFIX ".tmp-"
#define CONNS_DEFAULT 4
#define CONNS_MAX 64
#define TIMEOUT_DEFAULT_S 60 /* any single blocking SSH operation */
#define TIMEOUT_MAX_S 3600
#define IO_CHUNK (2u << 20)        /* bytes per libssh2 read/write call (pipelined inside) */
#define UPLOAD_CHUNK (32u << 20)   /* streaming uploads are sent in pieces of this size */
#define UPLOAD_TRIES 5             /* attempts per upload piece (reconnecting between) */
#define OPEN_TRIES 3               /* attempts to make the first connection */
#define LIST_DEPTH_MAX 32          /* directory levels below the root that list descends */
#define LIST_DIR_MAX (1u << 22)    /* entries of one directory */
#define SECRET_MAX 4096            /* a password or passphrase read from a file */
#define RAW_REPLY_MAX (256u << 10) /* a reply on the raw SFTP channel */
#define RA_WINDOW (4u << 20)       /* most a ranged read of a pack fetches ahead */
#define RA_MIN (64u << 10)         /* least a ranged read of a pack fetches */

#define SSH_FXP_INIT 1
#define SSH_FXP_VERSION 2
#define SSH_FXP_STATUS 101
#define SSH_FXP_EXTENDED 200

/* Header of each block libssh2 allocates for one session (see the allocator below). */
typedef union mhdr {
    struct {
        union mhdr *prev, *next;
    } l;
    max_align_t align;
} mhdr_t;

/* An open read handle of a pack, kept for the next ranged read of the same pack (a restore
 * reads many blobs of one pack in a row; packs never change once written). */
#define RCACHE_SLOTS 4
typedef struct rslot {
    char name[96]; /* "" when free */
    LIBSSH2_SFTP_HANDLE *h;
    uint64_t size;
    uint64_t used;
} rslot_t;

typedef struct conn {
    int sock;
    LIBSSH2_SESSION *ssh;
    LIBSSH2_SFTP *sftp;
    LIBSSH2_CHANNEL *raw; /* second SFTP channel for posix-rename, opened on first use */
    int raw_state;        /* 0 not tried, 1 posix-rename available, -1 not available */
    uint32_t raw_id;
    bool broken;          /* failed below SFTP: never reused */
    const char *password; /* borrowed from the driver state, for keyboard-interactive */
    struct conn *next;    /* idle list */
    mhdr_t *mem;          /* blocks libssh2 holds for this session */
    rslot_t rc[RCACHE_SLOTS];
    uint64_t rclock;
    char ra_name[96]; /* read-ahead: bytes [ra_off, ra_off + ra.len) of pack ra_name */
    uint64_t ra_off;
    buf_t ra;
    uint64_t ra_next; /* where the last read of ra_name ended: the next sequential offset */
    uint64_t ra_win;  /* current window: grows while reads are sequential */
} conn_t;

typedef struct sftp {
    char *user, *host, *root; /* root: "/abs" or "rel" or "." (login directory) */
    int port;
    char *shown; /* "sftp://user@host:port/path" for messages */
    char *key_file, *passphrase, *password, *known_hosts;
    bool accept_new;
    unsigned max_conns;
    long timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    conn_t *idle;
    unsigned n_conns;      /* open plus being opened */
    pthread_mutex_t kh_mu; /* known_hosts reads and appends */
} sftp_t;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void lib_init(void)
{
    init_rc = libssh2_init(0);
}

/* ---- small helpers ---- */

static void secret_free(char *p)
{
    if (p) {
        OPENSSL_cleanse(p, strlen(p));
        free(p);
    }
}

static void random_hex(char *out, size_t nbytes)
{
    uint8_t rnd[16];
    if (nbytes > sizeof rnd)
        nbytes = sizeof rnd;
    if (getrandom(rnd, nbytes, 0) != (ssize_t)nbytes) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t v = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)pthread_self();
        for (size_t i = 0; i < nbytes; i++)
            rnd[i] = (uint8_t)(v >> (8 * (i % 8)));
    }
    hex_encode(rnd, nbytes, out);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Directory part of name ("" for a top-level name). */
static size_t dir_len(const char *name)
{
    const char *slash = strrchr(name, '/');
    return slash ? (size_t)(slash - name) : 0;
}

/* out = root + "/" + rel (rel may be ""). */
static int full_path(const sftp_t *s, const char *rel, size_t rel_len, buf_t *out)
{
    buf_reset(out);
    if (rel_len == 0)
        return buf_append_str(out, s->root);
    int rc = buf_printf(out, "%s/", s->root);
    return rc ? rc : buf_append(out, rel, rel_len);
}

/* Read a secret from a file: at most SECRET_MAX bytes, trailing newlines removed. */
static int read_secret_file(const char *path, const char *what, char **out)
{
    char buf[SECRET_MAX + 1];
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(COFFER_EINVAL, "sftp: cannot read the %s from %s: %s", what, path,
                       strerror(errno));
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == sizeof buf - 1)
            break;
    }
    close(fd);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = 0;
    *out = strdup(buf);
    OPENSSL_cleanse(buf, sizeof buf);
    return *out ? 0 : err_set(COFFER_ENOMEM, "out of memory");
}

/* A secret from env (the value) or env_file (a file holding it); NULL when neither is set. */
static int get_secret(const char *env, const char *env_file, const char *what, char **out)
{
    const char *v = getenv(env);
    *out = NULL;
    if (v && *v) {
        *out = strdup(v);
        return *out ? 0 : err_set(COFFER_ENOMEM, "out of memory");
    }
    const char *f = getenv(env_file);
    if (f && *f)
        return read_secret_file(f, what, out);
    return 0;
}

/* ---- errors ---- */

static const char *fx_name(unsigned long fx)
{
    static const char *const names[] = {
        "ok",
        "end of file",
        "no such file",
        "permission denied",
        "failure",
        "bad message",
        "no connection",
        "connection lost",
        "unsupported",
        "invalid handle",
        "no such path",
        "file already exists",
        "write protected",
        "no media",
        "no space on filesystem",
        "quota exceeded",
        "unknown principal",
        "lock conflict",
        "directory not empty",
        "not a directory",
        "invalid filename",
        "link loop",
    };
    return fx < sizeof names / sizeof names[0] ? names[fx] : "unknown error";
}

/* The SFTP status of c's last failed request, or -1 when the failure was below SFTP. */
static long sftp_status(conn_t *c, int rc)
{
    if (rc != LIBSSH2_ERROR_SFTP_PROTOCOL)
        return -1;
    return (long)libssh2_sftp_last_error(c->sftp);
}

/* Map a failed libssh2 call on c to a COFFER_* code with a message. Failures below the SFTP
 * level mark c broken and set *transient. what: "read", "create", ...; path: remote path. */
static int op_err_fx(const sftp_t *s, conn_t *c, int rc, long fx, const char *what,
                     const char *path, bool *transient)
{
    if (fx < 0) {
        char *msg = NULL;
        libssh2_session_last_error(c->ssh, &msg, NULL, 0);
        c->broken = true;
        if (transient)
            *transient = true;
        return err_set(COFFER_EIO, "sftp: connection to %s:%d failed while trying to %s %s: %s",
                       s->host, s->port, what, path, msg && *msg ? msg : "connection lost");
    }
    switch (fx) {
    case LIBSSH2_FX_NO_SUCH_FILE:
    case LIBSSH2_FX_NO_SUCH_PATH:
        return err_set(COFFER_ENOENT, "no such object in %s", s->shown);
    case LIBSSH2_FX_PERMISSION_DENIED:
    case LIBSSH2_FX_WRITE_PROTECT:
        return err_set(COFFER_EIO,
                       "sftp: permission denied: cannot %s %s on %s as %s: give the user "
                       "write access to the repository directory or choose another path",
                       what, path, s->host, s->user);
    case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
    case LIBSSH2_FX_QUOTA_EXCEEDED:
        return err_set(COFFER_ENOSPC,
                       "the SFTP server %s is out of space (%s) writing %s: free space or raise "
                       "the quota, then run again",
                       s->host, fx_name((unsigned long)fx), path);
    case LIBSSH2_FX_FILE_ALREADY_EXISTS:
        return err_set(COFFER_EEXIST, "an object with this name already exists in %s", s->shown);
    case LIBSSH2_FX_NO_CONNECTION:
    case LIBSSH2_FX_CONNECTION_LOST:
        c->broken = true;
        if (transient)
            *transient = true;
        break;
    default:
        break;
    }
    return err_set(COFFER_EIO, "sftp: cannot %s %s on %s: the server says: %s", what, path, s->host,
                   fx_name((unsigned long)fx));
}

/* op_err_fx with the status of c's last request (call it before any other request). */
static int op_err(const sftp_t *s, conn_t *c, int rc, const char *what, const char *path,
                  bool *transient)
{
    return op_err_fx(s, c, rc, sftp_status(c, rc), what, path, transient);
}

/* ---- known_hosts ---- */

static int key_bits(int hostkey_type)
{
    switch (hostkey_type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA:
        return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS:
        return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
        return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default:
        return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
    }
}

/* "SHA256:<base64 without padding>", as ssh-keygen -l prints it. */
static void fingerprint(LIBSSH2_SESSION *ssh, char *out, size_t outlen)
{
    const unsigned char *h =
        (const unsigned char *)libssh2_hostkey_hash(ssh, LIBSSH2_HOSTKEY_HASH_SHA256);
    unsigned char b64[64];
    if (!h) {
        snprintf(out, outlen, "(unknown)");
        return;
    }
    int n = EVP_EncodeBlock(b64, h, 32);
    while (n > 0 && b64[n - 1] == '=')
        n--;
    snprintf(out, outlen, "SHA256:%.*s", n, (const char *)b64);
}

/* The known_hosts name of the server: "host" for port 22, else "[host]:port". */
static void kh_name(const sftp_t *s, char *out, size_t outlen)
{
    if (s->port == 22)
        snprintf(out, outlen, "%s", s->host);
    else
        snprintf(out, outlen, "[%s]:%d", s->host, s->port);
}

/* Load known_hosts lines one by one, so one line libssh2 cannot parse (a key type it does
 * not know, a certificate authority) does not hide the others. @revoked lines go to rev. */
static int kh_load(const sftp_t *s, LIBSSH2_KNOWNHOSTS *kh, LIBSSH2_KNOWNHOSTS *rev,
                   bool *out_exists)
{
    FILE *f = fopen(s->known_hosts, "re");
    char line[8192];
    *out_exists = f != NULL;
    if (!f) {
        if (errno == ENOENT)
            return 0;
        return err_set(COFFER_EINVAL, "sftp: cannot read the known hosts file %s: %s",
                       s->known_hosts, strerror(errno));
    }
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || !*p)
            continue;
        LIBSSH2_KNOWNHOSTS *into = kh;
        if (*p == '@') {
            if (strncmp(p, "@revoked", 8) != 0 || (p[8] != ' ' && p[8] != '\t'))
                continue; /* @cert-authority: host certificates are not supported */
            p += 8;
            while (*p == ' ' || *p == '\t')
                p++;
            into = rev;
        }
        if (libssh2_knownhost_readline(into, p, strlen(p), LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
            log_debug("sftp: skipping a line of %s that libssh2 cannot parse", s->known_hosts);
    }
    fclose(f);
    return 0;
}

/* Append the server's key to the known_hosts file (creating it, and its directory, 0700). */
static int kh_append(const sftp_t *s, LIBSSH2_KNOWNHOSTS *kh, const char *key, size_t keylen,
                     int bits)
{
    char name[600];
    char line[8192];
    size_t len = 0;
    struct libssh2_knownhost *entry = NULL;
    kh_name(s, name, sizeof name);
    if (libssh2_knownhost_addc(kh, name, NULL, key, keylen, NULL, 0,
                               LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | bits,
                               &entry) != 0 ||
        libssh2_knownhost_writeline(kh, entry, line, sizeof line, &len,
                                    LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
        return err_set(COFFER_EIO, "sftp: cannot format a known hosts entry for %s", name);
    const char *slash = strrchr(s->known_hosts, '/');
    if (slash && slash != s->known_hosts) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - s->known_hosts), s->known_hosts);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return err_set(COFFER_EIO, "sftp: cannot create directory %s for %s: %s", dir,
                           s->known_hosts, strerror(errno));
    }
    int fd = open(s->known_hosts, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(COFFER_EIO, "sftp: cannot add the host key to %s: %s", s->known_hosts,
                       strerror(errno));
    /* Start on a fresh line if the file does not end with one. */
    struct stat st;
    char last = '\n';
    if (fstat(fd, &st) == 0 && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
        last = '\n';
    int rc = 0;
    if ((last != '\n' && write(fd, "\n", 1) != 1) || write(fd, line, len) != (ssize_t)len ||
        fsync(fd) != 0)
        rc = err_set(COFFER_EIO, "sftp: cannot add the host key to %s: %s", s->known_hosts,
                     strerror(errno));
    close(fd);
    return rc;
}

static int verify_host_key(sftp_t *s, LIBSSH2_SESSION *ssh)
{
    LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(ssh);
    LIBSSH2_KNOWNHOSTS *rev = libssh2_knownhost_init(ssh);
    size_t keylen = 0;
    int type = 0;
    char fp[80];
    char name[600];
    bool exists = false;
    int rc = 0;

    if (!kh || !rev) {
        rc = err_set(COFFER_ENOMEM, "out of memory checking the host key");
        goto out;
    }
    const char *key = libssh2_session_hostkey(ssh, &keylen, &type);
    if (!key) {
        rc = err_set(COFFER_EIO, "sftp: %s:%d sent no host key", s->host, s->port);
        goto out;
    }
    int bits = key_bits(type);
    int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | bits;
    fingerprint(ssh, fp, sizeof fp);
    kh_name(s, name, sizeof name);
    pthread_mutex_lock(&s->kh_mu);
    rc = kh_load(s, kh, rev, &exists);
    if (rc)
        goto unlock;
    struct libssh2_knownhost *found = NULL;
    if (libssh2_knownhost_checkp(rev, s->host, s->port, key, keylen, mask, &found) ==
        LIBSSH2_KNOWNHOST_CHECK_MATCH) {
        rc = err_set(COFFER_EINVAL,
                     "sftp: the host key of %s (%s) is marked @revoked in %s: refusing to "
                     "connect",
                     name, fp, s->known_hosts);
        goto unlock;
    }
    switch (libssh2_knownhost_checkp(kh, s->host, s->port, key, keylen, mask, &found)) {
    case LIBSSH2_KNOWNHOST_CHECK_MATCH:
        break;
    case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
        rc = err_set(COFFER_EINVAL,
                     "sftp: the host key of %s has CHANGED (it is now %s) and does not match %s: "
                     "someone may be intercepting the connection; if the server was really "
                     "re-keyed, remove the old entry with `ssh-keygen -R '%s' -f %s` and "
                     "connect again",
                     name, fp, s->known_hosts, name, s->known_hosts);
        break;
    case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
        if (!s->accept_new) {
            rc = err_set(COFFER_EINVAL,
                         "sftp: the host key of %s is unknown (%s, not in %s): check the "
                         "fingerprint with the server's administrator, then accept it with -o "
                         "sftp.accept-new-host-key=yes (adds it to that file) or add it with "
                         "ssh-keyscan",
                         name, fp, s->known_hosts);
            break;
        }
        rc = kh_append(s, kh, key, keylen, bits);
        if (!rc)
            log_info("sftp: added the host key of %s (%s) to %s", name, fp, s->known_hosts);
        break;
    default:
        rc = err_set(COFFER_EIO, "sftp: cannot check the host key of %s against %s", name,
                     s->known_hosts);
        break;
    }
unlock:
    pthread_mutex_unlock(&s->kh_mu);
out:
    if (kh)
        libssh2_knownhost_free(kh);
    if (rev)
        libssh2_knownhost_free(rev);
    return rc;
}

/* ---- connections ---- */

/* libssh2 1.10 cannot close an SFTP handle once the connection is gone (it returns before
 * freeing the handle and its queued writes), and sftp_shutdown does not free open handles:
 * every dropped connection would leak up to a few MiB. So each session allocates through
 * these functions, which chain its blocks to the conn; conn_free frees what is left. A
 * session is used by one thread at a time, so the chain needs no lock. */
static void mem_link(conn_t *c, mhdr_t *h)
{
    h->l.prev = NULL;
    h->l.next = c->mem;
    if (c->mem)
        c->mem->l.prev = h;
    c->mem = h;
}

static void mem_unlink(conn_t *c, mhdr_t *h)
{
    if (h->l.prev)
        h->l.prev->l.next = h->l.next;
    else
        c->mem = h->l.next;
    if (h->l.next)
        h->l.next->l.prev = h->l.prev;
}

static LIBSSH2_ALLOC_FUNC(conn_alloc)
{
    conn_t *c = *abstract;
    if (count > SIZE_MAX - sizeof(mhdr_t))
        return NULL;
    mhdr_t *h = malloc(sizeof *h + count);
    if (!h)
        return NULL;
    mem_link(c, h);
    return h + 1;
}

static LIBSSH2_FREE_FUNC(conn_mfree)
{
    conn_t *c = *abstract;
    if (!ptr)
        return;
    mhdr_t *h = (mhdr_t *)ptr - 1;
    mem_unlink(c, h);
    free(h);
}

static LIBSSH2_REALLOC_FUNC(conn_realloc)
{
    conn_t *c = *abstract;
    if (!ptr)
        return conn_alloc(count, abstract);
    if (count > SIZE_MAX - sizeof(mhdr_t))
        return NULL;
    mhdr_t *h = (mhdr_t *)ptr - 1;
    mem_unlink(c, h);
    mhdr_t *n = realloc(h, sizeof *n + count);
    mem_link(c, n ? n : h); /* on failure the old block stays valid and owned */
    return n ? n + 1 : NULL;
}

static void mem_free_all(conn_t *c)
{
    while (c->mem) {
        mhdr_t *h = c->mem;
        c->mem = h->l.next;
        free(h);
    }
}

static LIBSSH2_USERAUTH_KBDINT_RESPONSE_FUNC(kbd_answer)
{
    (void)name;
    (void)name_len;
    (void)instruction;
    (void)instruction_len;
    (void)prompts;
    conn_t *c = *abstract;
    /* Answer every prompt with the password (the usual single "Password:" prompt); libssh2
     * frees the answers with the session's allocator. */
    for (int i = 0; i < num_prompts; i++) {
        size_t len = c->password ? strlen(c->password) : 0;
        responses[i].text = c->password ? conn_alloc(len + 1, abstract) : NULL;
        if (responses[i].text)
            memcpy(responses[i].text, c->password, len + 1);
        responses[i].length = responses[i].text ? (unsigned)len : 0;
    }
}

static int tcp_connect(const sftp_t *s, int *out_sock, bool *transient)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char port[16];
    int err = 0, sock = -1;
    snprintf(port, sizeof port, "%d", s->port);
    int g = getaddrinfo(s->host, port, &hints, &res);
    if (g != 0) {
        *transient = g == EAI_AGAIN;
        return err_set(COFFER_EIO, "sftp: cannot resolve host %s: %s: check the location", s->host,
                       gai_strerror(g));
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        sock =
            socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (sock < 0) {
            err = errno;
            continue;
        }
        if (connect(sock, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = sock, .events = POLLOUT};
            int pr;
            do
                pr = poll(&pfd, 1, (int)(s->timeout_ms < 30000 ? s->timeout_ms : 30000));
            while (pr < 0 && errno == EINTR);
            socklen_t elen = sizeof err;
            if (pr == 1 && getsockopt(sock, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0)
                break;
            if (pr == 0)
                err = ETIMEDOUT;
        } else {
            err = errno;
        }
        close(sock);
        sock = -1;
    }
    freeaddrinfo(res);
    if (sock < 0) {
        *transient = true;
        return err_set(COFFER_EIO,
                       "sftp: cannot connect to %s port %d: %s: check the host and port and "
                       "that the SSH server is running",
                       s->host, s->port, strerror(err ? err : ECONNREFUSED));
    }
    int fl = fcntl(sock, F_GETFL);
    fcntl(sock, F_SETFL, fl & ~O_NONBLOCK);
    int one = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(sock, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    *out_sock = sock;
    return 0;
}

static bool file_readable(const char *path)
{
    return access(path, R_OK) == 0;
}

/* Try one private key; 0 on success. */
static int auth_key(const sftp_t *s, conn_t *c, const char *key_file)
{
    return libssh2_userauth_publickey_fromfile_ex(c->ssh, s->user, (unsigned)strlen(s->user), NULL,
                                                  key_file, s->passphrase);
}

static int authenticate(const sftp_t *s, conn_t *c)
{
    char tried[256] = "";
    const char *methods = libssh2_userauth_list(c->ssh, s->user, (unsigned)strlen(s->user));
    if (!methods) {
        if (libssh2_userauth_authenticated(c->ssh))
            return 0; /* "none" was accepted */
        methods = "";
    }
    char offered[256];
    snprintf(offered, sizeof offered, "%s", methods);
    bool has_key = strstr(offered, "publickey") != NULL;
    bool has_pw = strstr(offered, "password") != NULL;
    bool has_kbd = strstr(offered, "keyboard-interactive") != NULL;

    if (s->key_file) {
        if (!file_readable(s->key_file))
            return err_set(COFFER_EINVAL, "sftp: cannot read the key file %s: %s", s->key_file,
                           strerror(errno));
        if (has_key) {
            int rc = auth_key(s, c, s->key_file);
            if (rc == 0)
                return 0;
            if (rc == LIBSSH2_ERROR_FILE)
                return err_set(COFFER_EINVAL,
                               "sftp: cannot use the key file %s: it is not a private key "
                               "libssh2 can read, or its passphrase (COFFER_SFTP_KEY_PASSPHRASE "
                               "or COFFER_SFTP_KEY_PASSPHRASE_FILE) is wrong or missing",
                               s->key_file);
            snprintf(tried, sizeof tried, "key %s", s->key_file);
        }
    }
    if (s->password && (has_pw || has_kbd)) {
        if (has_pw &&
            libssh2_userauth_password_ex(c->ssh, s->user, (unsigned)strlen(s->user), s->password,
                                         (unsigned)strlen(s->password), NULL) == 0)
            return 0;
        if (has_kbd && libssh2_userauth_keyboard_interactive_ex(
                           c->ssh, s->user, (unsigned)strlen(s->user), kbd_answer) == 0)
            return 0;
        snprintf(tried + strlen(tried), sizeof tried - strlen(tried), "%spassword",
                 tried[0] ? ", " : "");
    }
    if (!s->key_file && !s->password && has_key) {
        /* Neither given: the user's usual keys, as ssh would. */
        static const char *const defaults[] = {"id_ed25519", "id_ecdsa", "id_rsa"};
        const char *home = getenv("HOME");
        for (size_t i = 0; home && *home && i < sizeof defaults / sizeof defaults[0]; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/.ssh/%s", home, defaults[i]);
            if (!file_readable(path))
                continue;
            if (auth_key(s, c, path) == 0)
                return 0;
            snprintf(tried + strlen(tried), sizeof tried - strlen(tried), "%s%s",
                     tried[0] ? ", " : "", path);
        }
        if (!tried[0])
            return err_set(COFFER_EINVAL,
                           "sftp: no credentials for %s@%s: set -o sftp.key-file=FILE (or "
                           "COFFER_SFTP_KEY_FILE), or COFFER_SFTP_PASSWORD or "
                           "COFFER_SFTP_PASSWORD_FILE",
                           s->user, s->host);
    }
    return err_set(COFFER_EINVAL,
                   "sftp: authentication as %s@%s failed: check the key file or password "
                   "(tried: %s; the server accepts: %s)",
                   s->user, s->host, tried[0] ? tried : "nothing it accepts",
                   offered[0] ? offered : "nothing");
}

static void conn_free(conn_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < RCACHE_SLOTS && !c->broken; i++)
        if (c->rc[i].h)
            libssh2_sftp_close_handle(c->rc[i].h);
    if (c->raw)
        libssh2_channel_free(c->raw);
    if (c->sftp)
        libssh2_sftp_shutdown(c->sftp);
    if (c->ssh) {
        if (!c->broken)
            libssh2_session_disconnect(c->ssh, "coffer closing");
        libssh2_session_free(c->ssh);
    }
    mem_free_all(c);
    buf_release(&c->ra);
    if (c->sock >= 0)
        close(c->sock);
    free(c);
}

/* Prefer host key types in the order OpenSSH's client does, so a known_hosts written by ssh
 * matches. Only names this libssh2 supports are passed (libssh2 1.10 corrupts the list while
 * dropping unknown ones: its memcpy overlaps). */
static void set_hostkey_order(LIBSSH2_SESSION *ssh)
{
    static const char *const order[] = {"ssh-ed25519",
                                        "ecdsa-sha2-nistp256",
                                        "ecdsa-sha2-nistp384",
                                        "ecdsa-sha2-nistp521",
                                        "rsa-sha2-512",
                                        "rsa-sha2-256",
                                        "ssh-rsa"};
    const char **algs = NULL;
    int n = libssh2_session_supported_algs(ssh, LIBSSH2_METHOD_HOSTKEY, &algs);
    char pref[256] = "";
    for (size_t i = 0; n > 0 && i < sizeof order / sizeof order[0]; i++) {
        for (int j = 0; j < n; j++) {
            if (strcmp(order[i], algs[j]) != 0)
                continue;
            size_t len = strlen(pref);
            snprintf(pref + len, sizeof pref - len, "%s%s", len ? "," : "", order[i]);
            break;
        }
    }
    if (n > 0)
        libssh2_free(ssh, (void *)algs);
    if (pref[0])
        libssh2_session_method_pref(ssh, LIBSSH2_METHOD_HOSTKEY, pref);
}

static int conn_open(sftp_t *s, conn_t **out, bool *transient)
{
    conn_t *c = calloc(1, sizeof *c);
    int rc = 0;
    if (!c)
        return err_set(COFFER_ENOMEM, "out of memory connecting to %s", s->host);
    c->sock = -1;
    c->password = s->password;
    if ((rc = tcp_connect(s, &c->sock, transient)))
        goto out;
    c->ssh = libssh2_session_init_ex(conn_alloc, conn_mfree, conn_realloc, c);
    if (!c->ssh) {
        rc = err_set(COFFER_ENOMEM, "out of memory starting an SSH session");
        goto out;
    }
    libssh2_session_set_blocking(c->ssh, 1);
    libssh2_session_set_timeout(c->ssh, s->timeout_ms);
    set_hostkey_order(c->ssh);
    int hrc = libssh2_session_handshake(c->ssh, c->sock);
    if (hrc) {
        char *msg = NULL;
        libssh2_session_last_error(c->ssh, &msg, NULL, 0);
        /* libssh2 reports a connection dropped during key exchange as a KEX failure too */
        *transient = true;
        c->broken = true;
        rc = err_set(COFFER_EIO, "sftp: SSH handshake with %s port %d failed: %s", s->host, s->port,
                     msg && *msg ? msg : "connection closed");
        goto out;
    }
    if ((rc = verify_host_key(s, c->ssh)))
        goto out;
    if ((rc = authenticate(s, c))) {
        /* A dropped connection during authentication is not the user's fault. */
        int last = libssh2_session_last_errno(c->ssh);
        if (last == LIBSSH2_ERROR_SOCKET_DISCONNECT || last == LIBSSH2_ERROR_SOCKET_RECV ||
            last == LIBSSH2_ERROR_SOCKET_SEND || last == LIBSSH2_ERROR_TIMEOUT) {
            c->broken = true;
            *transient = true;
            rc = err_set(COFFER_EIO, "sftp: connection to %s port %d lost while logging in",
                         s->host, s->port);
        }
        goto out;
    }
    c->sftp = libssh2_sftp_init(c->ssh);
    if (!c->sftp) {
        char *msg = NULL;
        libssh2_session_last_error(c->ssh, &msg, NULL, 0);
        rc = err_set(COFFER_EIO,
                     "sftp: %s does not offer the SFTP subsystem to %s (%s): enable "
                     "`Subsystem sftp` in the server's sshd_config",
                     s->host, s->user, msg && *msg ? msg : "refused");
        goto out;
    }
    *out = c;
    c = NULL;
out:
    conn_free(c);
    return rc;
}

/* Take a connection from the pool, opening one if under the cap; waits otherwise. */
/* How well c suits a read of name at off: 2 its read-ahead window starts at or before off in
 * that pack, 1 it has the pack open, 0 neither. */
static int conn_affinity(const conn_t *c, const char *name, uint64_t off)
{
    if (!strcmp(c->ra_name, name) && off >= c->ra_off && off - c->ra_off < c->ra.len)
        return 2;
    for (int i = 0; i < RCACHE_SLOTS; i++)
        if (c->rc[i].h && !strcmp(c->rc[i].name, name))
            return 1;
    return 0;
}

/* Take a connection: an idle one (one with `pref` cached if any, pref may be NULL), else a new
 * one while under the cap, else wait. */
static int conn_get_pref(sftp_t *s, const char *pref, uint64_t off, conn_t **out, bool *transient)
{
    pthread_mutex_lock(&s->mu);
    while (!s->idle && s->n_conns >= s->max_conns)
        pthread_cond_wait(&s->cv, &s->mu);
    if (s->idle) {
        conn_t **pp = &s->idle;
        int best = 0;
        for (conn_t **q = &s->idle; pref && *q && best < 2; q = &(*q)->next) {
            int a = conn_affinity(*q, pref, off);
            if (a > best) {
                best = a;
                pp = q;
            }
        }
        conn_t *c = *pp;
        *pp = c->next;
        c->next = NULL;
        pthread_mutex_unlock(&s->mu);
        *out = c;
        return 0;
    }
    s->n_conns++;
    pthread_mutex_unlock(&s->mu);
    bool tr = false;
    int rc = conn_open(s, out, &tr);
    if (rc) {
        if (transient)
            *transient = tr;
        pthread_mutex_lock(&s->mu);
        s->n_conns--;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    return rc;
}

static int conn_get(sftp_t *s, conn_t **out, bool *transient)
{
    return conn_get_pref(s, NULL, 0, out, transient);
}

/* Give c back; a broken connection is closed instead. */
static void conn_put(sftp_t *s, conn_t *c)
{
    if (!c)
        return;
    if (c->broken) {
        conn_free(c);
        pthread_mutex_lock(&s->mu);
        s->n_conns--;
    } else {
        pthread_mutex_lock(&s->mu);
        c->next = s->idle;
        s->idle = c;
    }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the raw SFTP channel (posix-rename@openssh.com) ---- */

static int raw_write(conn_t *c, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = libssh2_channel_write(c->raw, (const char *)p, len);
        if (n < 0)
            return (int)n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int raw_read(conn_t *c, uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = libssh2_channel_read(c->raw, (char *)p, len);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return LIBSSH2_ERROR_CHANNEL_CLOSED;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int put_str32(buf_t *b, const char *str)
{
    size_t n = strlen(str);
    uint8_t l[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    int rc = buf_append(b, l, 4);
    return rc ? rc : buf_append(b, str, n);
}

/* One packet from the raw channel into b (type byte first). */
static int raw_packet(conn_t *c, buf_t *b)
{
    uint8_t l[4];
    int rc = raw_read(c, l, 4);
    if (rc)
        return rc;
    uint32_t n = rd32(l);
    if (n == 0 || n > RAW_REPLY_MAX)
        return LIBSSH2_ERROR_SFTP_PROTOCOL;
    buf_reset(b);
    if ((rc = buf_reserve(b, n)))
        return LIBSSH2_ERROR_ALLOC;
    if ((rc = raw_read(c, b->data, n)))
        return rc;
    b->len = n;
    return 0;
}

/* Open the raw channel and learn whether the server offers posix-rename. Returns a libssh2
 * code (0 on success, c->raw_state then set). */
static int raw_open(conn_t *c)
{
    static const char ext[] = "posix-rename@openssh.com";
    static const uint8_t init[] = {0, 0, 0, 5, SSH_FXP_INIT, 0, 0, 0, 3};
    buf_t b;
    int rc;
    buf_init(&b);
    c->raw = libssh2_channel_open_session(c->ssh);
    if (!c->raw) {
        rc = libssh2_session_last_errno(c->ssh);
        if (rc == LIBSSH2_ERROR_CHANNEL_FAILURE) { /* refused (MaxSessions): do without */
            log_warn("sftp: the server refused a second channel: replacing an object is not "
                     "atomic (raise MaxSessions in sshd_config)");
            c->raw_state = -1;
            rc = 0;
        }
        goto out;
    }
    if ((rc = libssh2_channel_subsystem(c->raw, "sftp"))) {
        if (rc == LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED) {
            c->raw_state = -1;
            libssh2_channel_free(c->raw);
            c->raw = NULL;
            rc = 0;
        }
        goto out;
    }
    if ((rc = raw_write(c, init, sizeof init)) || (rc = raw_packet(c, &b)))
        goto out;
    if (b.len < 5 || b.data[0] != SSH_FXP_VERSION) {
        rc = LIBSSH2_ERROR_SFTP_PROTOCOL;
        goto out;
    }
    c->raw_state = sftp_version_has(b.data + 5, b.len - 5, ext) ? 1 : -1;
    if (c->raw_state < 0)
        log_warn("sftp: the server does not offer posix-rename@openssh.com: replacing an "
                 "object is not atomic there (it is missing for a moment)");
out:
    buf_release(&b);
    if (rc) {
        c->broken = true;
        if (c->raw) {
            libssh2_channel_free(c->raw);
            c->raw = NULL;
        }
    }
    return rc;
}

/* posix-rename from -> to. *out_status: the SFTP status code. Returns a libssh2 code. */
static int raw_posix_rename(conn_t *c, const char *from, const char *to, uint32_t *out_status)
{
    buf_t b;
    int rc;
    buf_init(&b);
    uint32_t id = ++c->raw_id;
    uint8_t hdr[9] = {0,
                      0,
                      0,
                      0,
                      SSH_FXP_EXTENDED,
                      (uint8_t)(id >> 24),
                      (uint8_t)(id >> 16),
                      (uint8_t)(id >> 8),
                      (uint8_t)id};
    if (buf_append(&b, hdr, sizeof hdr) || put_str32(&b, "posix-rename@openssh.com") ||
        put_str32(&b, from) || put_str32(&b, to)) {
        rc = LIBSSH2_ERROR_ALLOC;
        goto out;
    }
    uint32_t n = (uint32_t)b.len - 4;
    b.data[0] = (uint8_t)(n >> 24);
    b.data[1] = (uint8_t)(n >> 16);
    b.data[2] = (uint8_t)(n >> 8);
    b.data[3] = (uint8_t)n;
    if ((rc = raw_write(c, b.data, b.len)) || (rc = raw_packet(c, &b)))
        goto out;
    if (b.len < 9 || b.data[0] != SSH_FXP_STATUS || rd32(b.data + 1) != id) {
        rc = LIBSSH2_ERROR_SFTP_PROTOCOL;
        goto out;
    }
    *out_status = rd32(b.data + 5);
out:
    if (rc)
        c->broken = true;
    buf_release(&b);
    return rc;
}

/* ---- operations on one connection ---- */

static int lstat_path(conn_t *c, const char *path, LIBSSH2_SFTP_ATTRIBUTES *a)
{
    return libssh2_sftp_stat_ex(c->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_LSTAT, a);
}

/* mkdir -p of root/rel[0..rel_len) (the root exists). */
static int make_dirs(sftp_t *s, conn_t *c, const char *rel, size_t rel_len, bool *transient)
{
    buf_t p;
    int rc = 0;
    buf_init(&p);
    for (size_t i = 1; i <= rel_len && !rc; i++) {
        if (i < rel_len && rel[i] != '/')
            continue;
        if ((rc = full_path(s, rel, i, &p)))
            break;
        const char *path = (const char *)p.data;
        int r = libssh2_sftp_mkdir_ex(c->sftp, path, (unsigned)p.len, 0700);
        if (r == 0)
            continue;
        LIBSSH2_SFTP_ATTRIBUTES a;
        long fx = sftp_status(c, r);
        if (fx >= 0 && lstat_path(c, path, &a) == 0 && LIBSSH2_SFTP_S_ISDIR(a.permissions))
            continue; /* it exists (made by another writer meanwhile) */
        rc = op_err_fx(s, c, r, fx, "create directory", path, transient);
    }
    buf_release(&p);
    return rc;
}

/* Create a fresh temp file in the directory of `name` (the root for upload temp files when
 * name is ""); creates missing directories. out_tmp gets the remote path. */
static int tmp_create(sftp_t *s, conn_t *c, const char *name, buf_t *out_tmp,
                      LIBSSH2_SFTP_HANDLE **out_h, bool *transient)
{
    size_t dlen = dir_len(name);
    bool made = false;
    for (int tries = 0;; tries++) {
        char hex[17];
        random_hex(hex, 8);
        buf_reset(out_tmp);
        int rc = buf_printf(out_tmp, "%s/%.*s%s" TMP_PREFIX "%s", s->root, (int)dlen, name,
                            dlen ? "/" : "", hex);
        if (rc)
            return rc;
        LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(
            c->sftp, (const char *)out_tmp->data, (unsigned)out_tmp->len,
            LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL, 0600, LIBSSH2_SFTP_OPENFILE);
        if (h) {
            *out_h = h;
            return 0;
        }
        int r = libssh2_session_last_errno(c->ssh);
        long fx = sftp_status(c, r);
        if ((fx == LIBSSH2_FX_NO_SUCH_FILE || fx == LIBSSH2_FX_NO_SUCH_PATH) && dlen && !made) {
            if ((rc = make_dirs(s, c, name, dlen, transient)))
                return rc;
            made = true;
            continue;
        }
        if ((fx == LIBSSH2_FX_FAILURE || fx == LIBSSH2_FX_FILE_ALREADY_EXISTS) && tries < 4)
            continue; /* a random name collision: draw another */
        return op_err(s, c, r, "create", (const char *)out_tmp->data, transient);
    }
}

static int write_all(sftp_t *s, conn_t *c, LIBSSH2_SFTP_HANDLE *h, const uint8_t *p, size_t len,
                     const char *path, bool *transient)
{
    while (len) {
        ssize_t n = libssh2_sftp_write(h, (const char *)p, len > IO_CHUNK ? IO_CHUNK : len);
        if (n < 0)
            return op_err(s, c, (int)n, "write", path, transient);
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Close a written handle, fsyncing first when asked (fsync@openssh.com; skipped where the
 * server lacks it). */
static int close_written(sftp_t *s, conn_t *c, LIBSSH2_SFTP_HANDLE *h, bool sync, const char *path,
                         bool *transient)
{
    int rc = 0;
    if (sync) {
        int r = libssh2_sftp_fsync(h);
        long fx = sftp_status(c, r);
        if (r && fx != LIBSSH2_FX_OP_UNSUPPORTED)
            rc = op_err(s, c, r, "sync", path, transient);
    }
    int r = libssh2_sftp_close_handle(h);
    if (r && !rc)
        rc = op_err(s, c, r, "write", path, transient);
    return rc;
}

static bool path_exists(conn_t *c, const char *path)
{
    LIBSSH2_SFTP_ATTRIBUTES a;
    return lstat_path(c, path, &a) == 0;
}

/* Publish tmp as root/name: create-only, or replacing with overwrite. */
static int publish(sftp_t *s, conn_t *c, const char *tmp, const char *name, bool overwrite,
                   bool *transient)
{
    buf_t dst;
    int rc = 0;
    buf_init(&dst);
    if ((rc = full_path(s, name, strlen(name), &dst)))
        goto out;
    const char *to = (const char *)dst.data;
    if (overwrite) {
        if (c->raw_state == 0 && raw_open(c) != 0) {
            rc = op_err(s, c, LIBSSH2_ERROR_CHANNEL_CLOSED, "open a second SFTP channel for", to,
                        transient);
            goto out;
        }
        if (c->raw_state > 0) {
            uint32_t st = 0;
            int r = raw_posix_rename(c, tmp, to, &st);
            if (r)
                rc = op_err(s, c, LIBSSH2_ERROR_CHANNEL_CLOSED, "rename a temp file to", to,
                            transient);
            else if (st != LIBSSH2_FX_OK)
                rc = st == LIBSSH2_FX_PERMISSION_DENIED
                         ? err_set(COFFER_EIO,
                                   "sftp: permission denied: cannot replace %s on %s as %s", to,
                                   s->host, s->user)
                         : err_set(COFFER_EIO, "sftp: cannot replace %s on %s: the server says: %s",
                                   to, s->host, fx_name(st));
            goto out;
        }
    }
    int r = libssh2_sftp_rename_ex(c->sftp, tmp, (unsigned)strlen(tmp), to, (unsigned)dst.len,
                                   LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE);
    if (r == 0)
        goto out;
    long fx = sftp_status(c, r);
    if (fx < 0 || fx == LIBSSH2_FX_PERMISSION_DENIED || fx == LIBSSH2_FX_NO_SUCH_FILE ||
        !path_exists(c, to)) {
        rc = op_err_fx(s, c, r, fx, "rename a temp file to", to, transient);
        goto out;
    }
    if (!overwrite) {
        rc = err_set(COFFER_EEXIST,
                     "an object with this name already exists in %s (objects are written once)",
                     s->shown);
        goto out;
    }
    /* No posix-rename: replace in two steps (the object is briefly missing). */
    if ((r = libssh2_sftp_unlink_ex(c->sftp, to, (unsigned)dst.len)) != 0 ||
        (r = libssh2_sftp_rename_ex(c->sftp, tmp, (unsigned)strlen(tmp), to, (unsigned)dst.len,
                                    LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE)) != 0)
        rc = op_err(s, c, r, "replace", to, transient);
out:
    buf_release(&dst);
    return rc;
}

static void unlink_quiet(conn_t *c, const char *path)
{
    if (!c->broken)
        libssh2_sftp_unlink_ex(c->sftp, path, (unsigned)strlen(path));
}

static int put_on(sftp_t *s, conn_t *c, const char *name, const void *data, size_t len,
                  const storage_put_opts_t *opts, bool *transient)
{
    bool overwrite = opts ? opts->overwrite : false;
    bool sync = opts ? opts->sync : true;
    LIBSSH2_SFTP_HANDLE *h = NULL;
    buf_t tmp;
    int rc;

    buf_init(&tmp);
    rc = tmp_create(s, c, name, &tmp, &h, transient);
    if (rc)
        goto out;
    const char *tp = (const char *)tmp.data;
    rc = write_all(s, c, h, data, len, tp, transient);
    if (!rc) {
        rc = close_written(s, c, h, sync, tp, transient);
        h = NULL;
    }
    if (!rc)
        rc = publish(s, c, tp, name, overwrite, transient);
    if (rc)
        unlink_quiet(c, tp);
out:
    if (h && !c->broken)
        libssh2_sftp_close_handle(h);
    buf_release(&tmp);
    return rc;
}

static int sftp_put(void *state, const char *name, const void *data, size_t len,
                    const storage_put_opts_t *opts, bool *transient)
{
    sftp_t *s = state;
    conn_t *c = NULL;
    int rc = conn_get(s, &c, transient);
    if (rc)
        return rc;
    rc = put_on(s, c, name, data, len, opts, transient);
    conn_put(s, c);
    return rc;
}

/* Drop slot i of c's read cache (closing its handle unless the session is dead). */
static void rcache_drop(conn_t *c, int i)
{
    if (c->rc[i].h && !c->broken)
        libssh2_sftp_close_handle(c->rc[i].h);
    c->rc[i].h = NULL;
    c->rc[i].name[0] = 0;
}

/* Open name (full path p) for reading with its size: from c's cache for packs, else fresh.
 * *out_slot is the cache slot used, or -1 (the caller then closes *out_h). */
static int open_read(sftp_t *s, conn_t *c, const char *name, const char *p, size_t plen,
                     LIBSSH2_SFTP_HANDLE **out_h, uint64_t *out_size, int *out_slot,
                     bool *transient)
{
    bool pack = !strncmp(name, "data/", 5) && strlen(name) < sizeof c->rc[0].name;
    for (int i = 0; pack && i < RCACHE_SLOTS; i++) {
        if (c->rc[i].h && !strcmp(c->rc[i].name, name)) {
            c->rc[i].used = ++c->rclock;
            *out_h = c->rc[i].h;
            *out_size = c->rc[i].size;
            *out_slot = i;
            return 0;
        }
    }
    LIBSSH2_SFTP_ATTRIBUTES a;
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(c->sftp, p, (unsigned)plen, LIBSSH2_FXF_READ, 0,
                                                  LIBSSH2_SFTP_OPENFILE);
    if (!h)
        return op_err(s, c, libssh2_session_last_errno(c->ssh), "open", p, transient);
    int r = libssh2_sftp_fstat_ex(h, &a, 0);
    if (r || !LIBSSH2_SFTP_S_ISREG(a.permissions)) {
        int rc = r ? op_err(s, c, r, "stat", p, transient)
                   : err_set(COFFER_ENOENT, "no such object in %s", s->shown);
        libssh2_sftp_close_handle(h);
        return rc;
    }
    int slot = -1;
    if (pack) {
        for (int i = 0; i < RCACHE_SLOTS; i++) /* a free slot, else the least recently used */
            if (slot < 0 || !c->rc[i].h || (c->rc[slot].h && c->rc[i].used < c->rc[slot].used))
                slot = i;
        rcache_drop(c, slot);
        snprintf(c->rc[slot].name, sizeof c->rc[slot].name, "%s", name);
        c->rc[slot].h = h;
        c->rc[slot].size = a.filesize;
        c->rc[slot].used = ++c->rclock;
    }
    *out_h = h;
    *out_size = a.filesize;
    *out_slot = slot;
    return 0;
}

static int sftp_get(void *state, const char *name, uint64_t off, uint64_t len, buf_t *out,
                    bool *transient)
{
    sftp_t *s = state;
    conn_t *c = NULL;
    LIBSSH2_SFTP_HANDLE *h = NULL;
    uint64_t size = 0;
    int slot = -1;
    buf_t path;
    int rc;

    buf_init(&path);
    if ((rc = full_path(s, name, strlen(name), &path)))
        goto out;
    const char *p = (const char *)path.data;
    if ((rc = conn_get_pref(s, name, off, &c, transient)) ||
        (rc = open_read(s, c, name, p, path.len, &h, &size, &slot, transient)))
        goto out;
    if (off > size) {
        rc = err_set(COFFER_EINVAL, "offset %llu is past the end of the object (%llu bytes)",
                     (unsigned long long)off, (unsigned long long)size);
        goto out;
    }
    uint64_t want = size - off;
    if (len && len < want)
        want = len;
    if (want > BUF_MAX) {
        rc = err_set(COFFER_ELIMIT, "reading %llu bytes at once is over the %zu-byte limit",
                     (unsigned long long)want, (size_t)BUF_MAX);
        goto out;
    }
    /* Ranged reads of a pack: serve them from the connection's read-ahead window when they
     * fall inside it. A miss refills it from the offset read: RA_MIN bytes at least, and
     * while the reads of that pack follow each other (a restore of a big file), a window
     * that doubles up to RA_WINDOW; random reads (small files restored in tree order, not
     * pack order) stay near RA_MIN, so little is fetched that is not used. */
    bool ahead = slot >= 0 && len && want < RA_WINDOW;
    bool same = ahead && !strcmp(c->ra_name, name);
    if (same && off >= c->ra_off && off - c->ra_off + want <= c->ra.len) {
        c->ra_next = off + want;
        rc = buf_append(out, c->ra.data + (off - c->ra_off), (size_t)want);
        goto out;
    }
    buf_t *into = out;
    uint64_t fetch = want;
    if (ahead) {
        uint64_t win = same && off == c->ra_next ? c->ra_win * 2 : RA_MIN;
        c->ra_win = win < RA_MIN ? RA_MIN : win > RA_WINDOW ? RA_WINDOW : win;
        into = &c->ra;
        c->ra_name[0] = 0;
        buf_reset(into);
        fetch = want > c->ra_win ? want : c->ra_win;
        if (fetch > size - off)
            fetch = size - off;
    }
    size_t base = into->len;
    if ((rc = buf_reserve(into, (size_t)fetch)))
        goto out;
    libssh2_sftp_seek64(h, off);
    size_t got = 0;
    while (got < fetch) {
        /* libssh2 1.10 keeps 4x the buffer it is given in flight, and a seek throws away
         * what came back unused: ask for a quarter of what is left, so it fetches only
         * that. */
        size_t ask = ((size_t)fetch - got + 3) / 4;
        ssize_t n =
            libssh2_sftp_read(h, (char *)into->data + base + got, ask > IO_CHUNK ? IO_CHUNK : ask);
        if (n < 0) {
            rc = op_err(s, c, (int)n, "read", p, transient);
            goto out;
        }
        if (n == 0)
            break; /* shrank meanwhile: return what exists */
        got += (size_t)n;
    }
    into->len = base + got;
    into->data[into->len] = 0;
    if (ahead) {
        snprintf(c->ra_name, sizeof c->ra_name, "%s", name);
        c->ra_off = off;
        c->ra_next = off + want;
        rc = buf_append(out, c->ra.data, got < want ? got : (size_t)want);
    }
out:
    if (slot >= 0 && rc)
        rcache_drop(c, slot); /* a failed handle is not reused */
    else if (slot < 0 && h)
        libssh2_sftp_close_handle(h);
    conn_put(s, c);
    buf_release(&path);
    return rc;
}

static int sftp_stat(void *state, const char *name, storage_stat_t *out, bool *transient)
{
    sftp_t *s = state;
    conn_t *c = NULL;
    LIBSSH2_SFTP_ATTRIBUTES a;
    buf_t path;
    int rc;

    buf_init(&path);
    if ((rc = full_path(s, name, strlen(name), &path)) || (rc = conn_get(s, &c, transient)))
        goto out;
    int r = lstat_path(c, (const char *)path.data, &a);
    if (r)
        rc = op_err(s, c, r, "stat", (const char *)path.data, transient);
    else if (!LIBSSH2_SFTP_S_ISREG(a.permissions))
        rc = err_set(COFFER_ENOENT, "no such object in %s", s->shown);
    else {
        out->size = a.filesize;
        out->mtime_ns = (int64_t)a.mtime * 1000000000;
    }
out:
    conn_put(s, c);
    buf_release(&path);
    return rc;
}

static int sftp_remove(void *state, const char *name, bool *transient)
{
    sftp_t *s = state;
    conn_t *c = NULL;
    buf_t path;
    int rc;

    buf_init(&path);
    if ((rc = full_path(s, name, strlen(name), &path)) || (rc = conn_get(s, &c, transient)))
        goto out;
    int r = libssh2_sftp_unlink_ex(c->sftp, (const char *)path.data, (unsigned)path.len);
    if (r) {
        rc = op_err(s, c, r, "remove", (const char *)path.data, transient);
        /* A directory of that name is not an object. */
        long fx = sftp_status(c, r);
        if (fx == LIBSSH2_FX_FAILURE || fx == LIBSSH2_FX_PERMISSION_DENIED) {
            LIBSSH2_SFTP_ATTRIBUTES a;
            if (lstat_path(c, (const char *)path.data, &a) == 0 &&
                LIBSSH2_SFTP_S_ISDIR(a.permissions))
                rc = err_set(COFFER_ENOENT, "no such object in %s", s->shown);
        }
    }
out:
    conn_put(s, c);
    buf_release(&path);
    return rc;
}

/* ---- listing ---- */

typedef struct dirent_s {
    char *name;
    bool dir;
    bool reg;
    uint64_t size;
    int64_t mtime_ns;
} dirent_t;

typedef struct dirlist {
    dirent_t *e;
    size_t n, cap;
} dirlist_t;

static void dirlist_release(dirlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->e[i].name);
    free(l->e);
    memset(l, 0, sizeof *l);
}

/* Read the directory root/rel (without "." and ".."). A missing directory is empty. The
 * connection is taken and given back inside, so the caller holds none afterwards. */
static int read_dir(sftp_t *s, const char *rel, dirlist_t *out, bool *transient)
{
    conn_t *c = NULL;
    LIBSSH2_SFTP_HANDLE *h = NULL;
    buf_t path;
    char name[1024];
    int rc;

    buf_init(&path);
    if ((rc = full_path(s, rel, strlen(rel), &path)) || (rc = conn_get(s, &c, transient)))
        goto out;
    h = libssh2_sftp_open_ex(c->sftp, (const char *)path.data, (unsigned)path.len, 0, 0,
                             LIBSSH2_SFTP_OPENDIR);
    if (!h) {
        int r = libssh2_session_last_errno(c->ssh);
        long fx = sftp_status(c, r);
        if (fx != LIBSSH2_FX_NO_SUCH_FILE && fx != LIBSSH2_FX_NO_SUCH_PATH &&
            fx != LIBSSH2_FX_NOT_A_DIRECTORY)
            rc = op_err(s, c, r, "list", (const char *)path.data, transient);
        goto out;
    }
    for (;;) {
        LIBSSH2_SFTP_ATTRIBUTES a;
        int n = libssh2_sftp_readdir_ex(h, name, sizeof name - 1, NULL, 0, &a);
        if (n == 0)
            break;
        if (n < 0) {
            if (n == LIBSSH2_ERROR_BUFFER_TOO_SMALL)
                continue; /* a name longer than any object name: not ours */
            rc = op_err(s, c, n, "list", (const char *)path.data, transient);
            break;
        }
        name[n] = 0;
        if (!strcmp(name, ".") || !strcmp(name, "..") ||
            !strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) || strlen(name) != (size_t)n)
            continue;
        if (out->n == out->cap) {
            if (out->cap >= LIST_DIR_MAX) {
                rc = err_set(COFFER_ELIMIT, "directory %s holds over %u entries",
                             (const char *)path.data, LIST_DIR_MAX);
                break;
            }
            size_t nc = out->cap ? out->cap * 2 : 64;
            dirent_t *ne = realloc(out->e, nc * sizeof *ne);
            if (!ne) {
                rc = err_set(COFFER_ENOMEM, "out of memory listing %s", s->shown);
                break;
            }
            out->e = ne;
            out->cap = nc;
        }
        dirent_t *e = &out->e[out->n];
        if (!(e->name = strdup(name))) {
            rc = err_set(COFFER_ENOMEM, "out of memory listing %s", s->shown);
            break;
        }
        out->n++;
        bool has_perm = a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS;
        e->dir = has_perm && LIBSSH2_SFTP_S_ISDIR(a.permissions);
        e->reg = has_perm && LIBSSH2_SFTP_S_ISREG(a.permissions);
        e->size = a.filesize;
        e->mtime_ns = (int64_t)a.mtime * 1000000000;
    }
out:
    if (h)
        libssh2_sftp_close_handle(h);
    if (c)
        conn_put(s, c);
    buf_release(&path);
    return rc;
}

/* List rel ("" = root, else ending in '/') and below. */
static int list_dir(sftp_t *s, buf_t *rel, const char *prefix, size_t plen, int depth,
                    storage_list_cb cb, void *ud, bool *transient)
{
    dirlist_t l = {0};
    size_t base = rel->len;
    int rc = read_dir(s, base ? (const char *)rel->data : "", &l, transient);
    for (size_t i = 0; i < l.n && !rc; i++) {
        rel->len = base;
        if ((rc = buf_append_str(rel, l.e[i].name)))
            break;
        size_t cmp = rel->len < plen ? rel->len : plen;
        if (memcmp(rel->data, prefix, cmp) != 0)
            continue; /* neither under the prefix nor on the way to it */
        if (l.e[i].dir && depth < LIST_DEPTH_MAX) {
            if (!(rc = buf_append(rel, "/", 1)))
                rc = list_dir(s, rel, prefix, plen, depth + 1, cb, ud, transient);
        } else if (l.e[i].reg && rel->len >= plen) {
            storage_stat_t st = {.size = l.e[i].size, .mtime_ns = l.e[i].mtime_ns};
            rc = cb(ud, (const char *)rel->data, &st);
        }
    }
    rel->len = base;
    if (rel->data)
        rel->data[base] = 0;
    dirlist_release(&l);
    return rc;
}

static int sftp_list(void *state, const char *prefix, storage_list_cb cb, void *ud, bool *transient)
{
    sftp_t *s = state;
    const char *slash = strrchr(prefix, '/');
    size_t dlen = slash ? (size_t)(slash - prefix) + 1 : 0;
    buf_t rel;
    buf_init(&rel);
    int rc = buf_append(&rel, prefix, dlen);
    if (!rc)
        rc = list_dir(s, &rel, prefix, strlen(prefix), 0, cb, ud, transient);
    buf_release(&rel);
    return rc;
}

/* ---- clock and cleanup ---- */

static int now_on(sftp_t *s, conn_t *c, int64_t *out_ns, bool *transient)
{
    LIBSSH2_SFTP_HANDLE *h = NULL;
    LIBSSH2_SFTP_ATTRIBUTES a;
    buf_t tmp;
    buf_init(&tmp);
    int rc = tmp_create(s, c, "", &tmp, &h, transient);
    if (rc)
        goto out;
    const char *tp = (const char *)tmp.data;
    if (!(rc = write_all(s, c, h, (const uint8_t *)"t", 1, tp, transient))) {
        int r = libssh2_sftp_fstat_ex(h, &a, 0);
        if (r)
            rc = op_err(s, c, r, "stat", tp, transient);
    }
    libssh2_sftp_close_handle(h);
    unlink_quiet(c, tp);
    if (!rc)
        *out_ns = (int64_t)a.mtime * 1000000000;
out:
    buf_release(&tmp);
    return rc;
}

static int sftp_now(void *state, int64_t *out_ns)
{
    sftp_t *s = state;
    int rc = 0;
    for (int attempt = 0; attempt < UPLOAD_TRIES; attempt++) {
        conn_t *c = NULL;
        bool transient = false;
        if (attempt)
            sleep_ms(100u << attempt);
        rc = conn_get(s, &c, &transient);
        if (!rc) {
            rc = now_on(s, c, out_ns, &transient);
            conn_put(s, c);
        }
        if (!rc || !transient)
            break;
    }
    return rc;
}

struct cleanup_ctx {
    sftp_t *s;
    int64_t cutoff;
    uint64_t removed;
};

/* Remove old temp files in root/rel ("" or "data/ab", no trailing '/') and two levels below. */
static void cleanup_dir(struct cleanup_ctx *x, buf_t *rel, int depth)
{
    dirlist_t l = {0};
    conn_t *c = NULL;
    size_t base = rel->len;
    buf_t path, f;
    char name[1024];
    bool transient = false;
    buf_init(&path);
    buf_init(&f);
    /* read_dir hides temp files: read this directory's raw entries here instead. */
    if (full_path(x->s, (const char *)rel->data, base, &path) != 0 ||
        conn_get(x->s, &c, &transient) != 0)
        goto out;
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(c->sftp, (const char *)path.data,
                                                  (unsigned)path.len, 0, 0, LIBSSH2_SFTP_OPENDIR);
    while (h) {
        LIBSSH2_SFTP_ATTRIBUTES a;
        int n = libssh2_sftp_readdir_ex(h, name, sizeof name - 1, NULL, 0, &a);
        if (n <= 0)
            break;
        name[n] = 0;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        bool dir = LIBSSH2_SFTP_S_ISDIR(a.permissions);
        bool old_tmp = LIBSSH2_SFTP_S_ISREG(a.permissions) &&
                       !strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) &&
                       (int64_t)a.mtime * 1000000000 < x->cutoff;
        if (!(dir && depth < 2) && !old_tmp)
            continue;
        dirent_t *ne = realloc(l.e, (l.n + 1) * sizeof *ne);
        if (!ne)
            break;
        l.e = ne;
        l.e[l.n] = (dirent_t){.name = strdup(name), .dir = dir};
        if (!l.e[l.n].name)
            break;
        l.n++;
    }
    if (h)
        libssh2_sftp_close_handle(h);
    for (size_t i = 0; i < l.n && !c->broken; i++) {
        if (l.e[i].dir)
            continue;
        buf_reset(&f);
        if (buf_printf(&f, "%s/%s", (const char *)path.data, l.e[i].name) == 0 &&
            libssh2_sftp_unlink_ex(c->sftp, (const char *)f.data, (unsigned)f.len) == 0)
            x->removed++;
    }
    conn_put(x->s, c);
    for (size_t i = 0; i < l.n; i++) {
        rel->len = base;
        if (!l.e[i].dir || (base && buf_append(rel, "/", 1)) || buf_append_str(rel, l.e[i].name))
            continue;
        cleanup_dir(x, rel, depth + 1);
    }
out:
    rel->len = base;
    if (rel->data)
        rel->data[base] = 0;
    dirlist_release(&l);
    buf_release(&path);
    buf_release(&f);
}

static int sftp_cleanup(void *state, int64_t older_than_ns, uint64_t *out_removed)
{
    sftp_t *s = state;
    int64_t now = 0;
    int rc = sftp_now(s, &now);
    if (rc)
        return rc;
    struct cleanup_ctx x = {.s = s, .cutoff = now - older_than_ns};
    buf_t rel;
    buf_init(&rel);
    cleanup_dir(&x, &rel, 0);
    buf_release(&rel);
    *out_removed = x.removed;
    return 0;
}

/* ---- streaming uploads ---- */

/* Bytes are kept in memory up to UPLOAD_CHUNK (a whole pack, normally), so a commit is one
 * put on one connection outside the caller's locks; bigger objects are sent in chunks into a
 * temp file at the root. Each chunk is retried on a fresh connection after a drop: the bytes
 * before it are on the server already, and rewriting a chunk at its offset is idempotent. */
typedef struct sftp_upload {
    sftp_t *s;
    buf_t buf;
    uint64_t flushed; /* bytes in the temp file */
    buf_t tmp;        /* remote temp path once the first chunk is sent; len 0 before */
} sftp_upload_t;

static int sftp_upload_begin(void *state, void **out)
{
    sftp_upload_t *u = calloc(1, sizeof *u);
    if (!u)
        return err_set(COFFER_ENOMEM, "out of memory starting an upload");
    u->s = state;
    buf_init(&u->buf);
    buf_init(&u->tmp);
    *out = u;
    return 0;
}

static int flush_on(sftp_upload_t *u, conn_t *c, bool *transient)
{
    sftp_t *s = u->s;
    LIBSSH2_SFTP_HANDLE *h = NULL;
    int rc = 0;
    if (u->tmp.len == 0) {
        rc = tmp_create(s, c, "", &u->tmp, &h, transient);
        if (rc) {
            buf_reset(&u->tmp);
            return rc;
        }
    } else {
        h = libssh2_sftp_open_ex(c->sftp, (const char *)u->tmp.data, (unsigned)u->tmp.len,
                                 LIBSSH2_FXF_WRITE, 0600, LIBSSH2_SFTP_OPENFILE);
        if (!h)
            return op_err(s, c, libssh2_session_last_errno(c->ssh), "open",
                          (const char *)u->tmp.data, transient);
        libssh2_sftp_seek64(h, u->flushed);
    }
    rc = write_all(s, c, h, u->buf.data, u->buf.len, (const char *)u->tmp.data, transient);
    int r = libssh2_sftp_close_handle(h);
    if (r && !rc)
        rc = op_err(s, c, r, "write", (const char *)u->tmp.data, transient);
    return rc;
}

/* Run fn on a pooled connection, retrying on fresh ones while failures are transient. */
static int with_retries(sftp_upload_t *u, int (*fn)(sftp_upload_t *, conn_t *, void *, bool *),
                        void *arg)
{
    int rc = 0;
    for (int attempt = 0; attempt < UPLOAD_TRIES; attempt++) {
        conn_t *c = NULL;
        bool transient = false;
        if (attempt) {
            log_debug("sftp: retrying an upload to %s: %s", u->s->shown, err_msg());
            sleep_ms(100u << attempt);
        }
        rc = conn_get(u->s, &c, &transient);
        if (!rc) {
            rc = fn(u, c, arg, &transient);
            conn_put(u->s, c);
        }
        if (!rc || !transient)
            break;
    }
    return rc;
}

static int flush_fn(sftp_upload_t *u, conn_t *c, void *arg, bool *transient)
{
    (void)arg;
    return flush_on(u, c, transient);
}

static int upload_flush(sftp_upload_t *u)
{
    int rc = with_retries(u, flush_fn, NULL);
    if (!rc) {
        u->flushed += u->buf.len;
        buf_reset(&u->buf);
    }
    return rc;
}

static int sftp_upload_write(void *upload, const void *data, size_t len)
{
    sftp_upload_t *u = upload;
    int rc = buf_append(&u->buf, data, len);
    if (!rc && u->buf.len >= UPLOAD_CHUNK)
        rc = upload_flush(u);
    return rc;
}

static void sftp_upload_abort(void *upload)
{
    sftp_upload_t *u = upload;
    if (!u)
        return;
    if (u->tmp.len) {
        conn_t *c = NULL;
        bool transient = false;
        if (conn_get(u->s, &c, &transient) == 0) {
            unlink_quiet(c, (const char *)u->tmp.data);
            conn_put(u->s, c);
        } /* else cleanup() removes it later */
    }
    buf_release(&u->buf);
    buf_release(&u->tmp);
    free(u);
}

struct commit_arg {
    const char *name;
    const storage_put_opts_t *opts;
    int attempts;
};

/* A whole upload that fits in memory: one put. After a retried attempt met EEXIST, the object
 * may be this upload's own (a lost reply): identical content counts as success. */
static int commit_small_fn(sftp_upload_t *u, conn_t *c, void *arg, bool *transient)
{
    struct commit_arg *a = arg;
    int rc = put_on(u->s, c, a->name, u->buf.data, u->buf.len, a->opts, transient);
    if (rc != COFFER_EEXIST || a->attempts++ == 0 || (a->opts && a->opts->overwrite))
        return rc;
    /* Compare what is there with this upload's bytes, on the connection already held. */
    buf_t got, path;
    buf_init(&got);
    buf_init(&path);
    LIBSSH2_SFTP_HANDLE *h = NULL;
    if (full_path(u->s, a->name, strlen(a->name), &path) == 0)
        h = libssh2_sftp_open_ex(c->sftp, (const char *)path.data, (unsigned)path.len,
                                 LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
    if (h && buf_reserve(&got, u->buf.len + 1) == 0) {
        while (got.len <= u->buf.len) {
            size_t room = got.cap - got.len - 1;
            ssize_t n =
                libssh2_sftp_read(h, (char *)got.data + got.len, room > IO_CHUNK ? IO_CHUNK : room);
            if (n <= 0)
                break;
            got.len += (size_t)n;
        }
        if (got.len == u->buf.len && (!got.len || !memcmp(got.data, u->buf.data, got.len)))
            rc = 0;
    }
    if (h)
        libssh2_sftp_close_handle(h);
    if (rc)
        err_set(COFFER_EEXIST, "an object with this name already exists in %s with other content",
                u->s->shown);
    buf_release(&got);
    buf_release(&path);
    return rc;
}

/* The rest of a big upload is on the server: rename the temp file into place. A retry that
 * finds the temp file gone and the object there with the full size means the rename landed. */
static int commit_big_fn(sftp_upload_t *u, conn_t *c, void *arg, bool *transient)
{
    struct commit_arg *a = arg;
    sftp_t *s = u->s;
    const char *tp = (const char *)u->tmp.data;
    size_t dlen = dir_len(a->name);
    if (a->attempts++ > 0 && !path_exists(c, tp)) {
        buf_t path;
        buf_init(&path);
        LIBSSH2_SFTP_ATTRIBUTES at;
        int rc = full_path(s, a->name, strlen(a->name), &path);
        if (!rc && lstat_path(c, (const char *)path.data, &at) == 0 && at.filesize == u->flushed)
            rc = 0;
        else if (!rc)
            rc = err_set(COFFER_EIO, "sftp: the temp file of an upload to %s vanished", s->shown);
        buf_release(&path);
        return rc;
    }
    int rc = dlen ? make_dirs(s, c, a->name, dlen, transient) : 0;
    if (!rc)
        rc = publish(s, c, tp, a->name, a->opts && a->opts->overwrite, transient);
    return rc;
}

static int sftp_upload_commit(void *upload, const char *name, const storage_put_opts_t *opts)
{
    sftp_upload_t *u = upload;
    struct commit_arg a = {.name = name, .opts = opts};
    int rc;
    if (u->tmp.len == 0) {
        rc = with_retries(u, commit_small_fn, &a);
    } else {
        rc = u->buf.len ? upload_flush(u) : 0;
        if (!rc)
            rc = with_retries(u, commit_big_fn, &a);
        if (rc == 0)
            buf_reset(&u->tmp); /* renamed: nothing for abort to remove */
    }
    sftp_upload_abort(u); /* frees; removes the temp file if it is still there */
    return rc;
}

/* ---- open / close ---- */

static const char *const sftp_options[] = {"key-file",    "known-hosts", "accept-new-host-key",
                                           "connections", "timeout",     NULL};

static int parse_uint_opt(const char *key, const char *v, unsigned long lo, unsigned long hi,
                          unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long n = v && isdigit((unsigned char)v[0]) ? strtoul(v, &end, 10) : 0;
    if (!v || !isdigit((unsigned char)v[0]) || errno || *end || n < lo || n > hi)
        return err_set(COFFER_EINVAL, "storage option %s must be a number from %lu to %lu", key, lo,
                       hi);
    *out = n;
    return 0;
}

static void sftp_close(void *state)
{
    sftp_t *s = state;
    if (!s)
        return;
    while (s->idle) {
        conn_t *c = s->idle;
        s->idle = c->next;
        conn_free(c);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->kh_mu);
    free(s->user);
    free(s->host);
    free(s->root);
    free(s->shown);
    free(s->key_file);
    free(s->known_hosts);
    secret_free(s->passphrase);
    secret_free(s->password);
    free(s);
}

/* The repository directory: check it exists (or make it with create). */
static int check_root(sftp_t *s, conn_t *c, bool create)
{
    LIBSSH2_SFTP_ATTRIBUTES a;
    bool transient = false;
    int r =
        libssh2_sftp_stat_ex(c->sftp, s->root, (unsigned)strlen(s->root), LIBSSH2_SFTP_STAT, &a);
    if (r == 0) {
        if (!LIBSSH2_SFTP_S_ISDIR(a.permissions))
            return err_set(COFFER_ENOREPO, "no repository at %s: it is not a directory", s->shown);
        return 0;
    }
    long fx = sftp_status(c, r);
    if (fx != LIBSSH2_FX_NO_SUCH_FILE && fx != LIBSSH2_FX_NO_SUCH_PATH)
        return op_err(s, c, r, "open", s->root, &transient);
    if (!create)
        return err_set(COFFER_ENOREPO, "no repository at %s: run coffer init first", s->shown);
    /* mkdir -p: from the first component (absolute) or from the login directory. */
    size_t n = strlen(s->root);
    char *p = strdup(s->root);
    int rc = p ? 0 : err_set(COFFER_ENOMEM, "out of memory");
    for (size_t i = 1; i <= n && !rc; i++) {
        if (i < n && s->root[i] != '/')
            continue;
        memcpy(p, s->root, i);
        p[i] = 0;
        r = libssh2_sftp_mkdir_ex(c->sftp, p, (unsigned)i, 0700);
        if (r == 0)
            continue;
        fx = sftp_status(c, r);
        if (fx >= 0 && libssh2_sftp_stat_ex(c->sftp, p, (unsigned)i, LIBSSH2_SFTP_STAT, &a) == 0 &&
            LIBSSH2_SFTP_S_ISDIR(a.permissions))
            continue;
        rc = op_err_fx(s, c, r, fx, "create directory", p, &transient);
    }
    free(p);
    return rc;
}

static int sftp_open(const char *path, bool create, const storage_opts_t *opts, void **out_state)
{
    sftp_t *s = calloc(1, sizeof *s);
    conn_t *c = NULL;
    bool transient = false;
    unsigned long n;
    int rc = 0;

    if (!s)
        return err_set(COFFER_ENOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->kh_mu, NULL);
    s->max_conns = CONNS_DEFAULT;
    s->timeout_ms = TIMEOUT_DEFAULT_S * 1000L;
    sftp_location_t loc = {0};
    if ((rc = sftp_location_parse(path, &loc)))
        goto out;
    s->user = loc.user;
    s->host = loc.host;
    s->port = loc.port;
    s->root = loc.root;
    s->shown = loc.shown;

    const char *v;
    if ((v = storage_opt(opts, "sftp.connections"))) {
        if ((rc = parse_uint_opt("sftp.connections", v, 1, CONNS_MAX, &n)))
            goto out;
        s->max_conns = (unsigned)n;
    }
    if ((v = storage_opt(opts, "sftp.timeout"))) {
        if ((rc = parse_uint_opt("sftp.timeout", v, 1, TIMEOUT_MAX_S, &n)))
            goto out;
        s->timeout_ms = (long)n * 1000;
    }
    if ((v = storage_opt(opts, "sftp.accept-new-host-key"))) {
        if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
            s->accept_new = true;
        else if (strcmp(v, "no") && strcmp(v, "false") && strcmp(v, "0")) {
            rc =
                err_set(COFFER_EINVAL, "storage option sftp.accept-new-host-key must be yes or no");
            goto out;
        }
    }
    v = storage_opt(opts, "sftp.key-file");
    if (!v || !*v)
        v = getenv("COFFER_SFTP_KEY_FILE");
    if (v && *v && !(s->key_file = strdup(v))) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    v = storage_opt(opts, "sftp.known-hosts");
    if (!v || !*v)
        v = getenv("COFFER_SFTP_KNOWN_HOSTS");
    if (v && *v) {
        s->known_hosts = strdup(v);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            rc = err_set(COFFER_EINVAL, "sftp: HOME is not set, so there is no default known "
                                        "hosts file: give one with -o sftp.known-hosts=FILE");
            goto out;
        }
        buf_t kh;
        buf_init(&kh);
        if (buf_printf(&kh, "%s/.ssh/known_hosts", home) == 0)
            s->known_hosts = (char *)buf_steal(&kh, NULL);
        buf_release(&kh);
    }
    if (!s->known_hosts) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = get_secret("COFFER_SFTP_PASSWORD", "COFFER_SFTP_PASSWORD_FILE", "SFTP password",
                         &s->password)) ||
        (rc = get_secret("COFFER_SFTP_KEY_PASSPHRASE", "COFFER_SFTP_KEY_PASSPHRASE_FILE",
                         "key passphrase", &s->passphrase)))
        goto out;

    pthread_once(&init_once, lib_init);
    if (init_rc != 0) {
        rc = err_set(COFFER_EIO, "sftp: libssh2 failed to initialize (%d)", init_rc);
        goto out;
    }
    /* One connection now: the host key, the credentials and the path are checked up front. */
    for (int attempt = 0;; attempt++) { /* a server restarting gets a moment */
        transient = false;
        if (!(rc = conn_get(s, &c, &transient)) || !transient || attempt >= OPEN_TRIES - 1)
            break;
        log_debug("sftp: retrying to connect to %s: %s", s->shown, err_msg());
        sleep_ms(200u << attempt);
    }
    if (rc)
        goto out;
    rc = check_root(s, c, create);
    conn_put(s, c);
    if (rc)
        goto out;
    *out_state = s;
    s = NULL;
out:
    if (rc && s && err_code() == rc && !strstr(err_msg(), "sftp"))
        err_ctx(rc, "while opening %s", s->shown ? s->shown : "an sftp location");
    sftp_close(s);
    return rc;
}

const storage_driver_t storage_sftp_driver = {
    .version = STORAGE_DRIVER_VERSION,
    .name = "sftp",
    .features = STORAGE_F_RANGE | STORAGE_F_CREATE_ONLY,
    .options = sftp_options,
    .open = sftp_open,
    .close = sftp_close,
    .put = sftp_put,
    .get = sftp_get,
    .stat = sftp_stat,
    .list = sftp_list,
    .remove = sftp_remove,
    .now = sftp_now,
    .upload_begin = sftp_upload_begin,
    .upload_write = sftp_upload_write,
    .upload_commit = sftp_upload_commit,
    .upload_abort = sftp_upload_abort,
    .cleanup = sftp_cleanup,
};
