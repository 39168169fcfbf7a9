/*
 * bench_primitives.c -- micro-benchmark of the hot primitives: chunker, HMAC-SHA-256 (blob
 * ids), SHA-256, AES-256-GCM, zstd policy (compressor_run) and decompression.
 *
 * Layer: bench (uses crypto, chunk, compress). Not a test: run it from a release build,
 *   build-rel/bench/micro/bench_primitives [TEXT_FILE]
 * TEXT_FILE feeds the zstd benchmark; by default the C headers in /usr/include (*.h) are
 * concatenated. Each figure is the best of several rounds, in MB/s (10^6 bytes/s) of input,
 * timed with the thread's CPU clock: every benchmark is single-threaded, and on a shared
 * machine CPU time is far less noisy than wall time (it still includes cache and SMT
 * contention). Data is generated with a fixed seed so runs are comparable.
 */
#include "chunk/chunker.h"
#include "common/buf.h"
#include "common/error.h"
#include "compress/compress.h"
#include "crypto/crypto.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIB ((size_t)1 << 20)
#define ROUNDS 5
#define MIN_SECONDS 0.3

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_primitives: %s: %s\n", what, err_msg());
    exit(1);
}

static uint8_t *random_data(size_t n)
{
    uint8_t *d = malloc(n);
    uint64_t s = 0x9E3779B97F4A7C15u;
    if (!d)
        die("out of memory");
    for (size_t i = 0; i < n; i += 8) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        uint64_t v = s * UINT64_C(2685821657736338717);
        memcpy(d + i, &v, n - i < 8 ? n - i : 8);
    }
    return d;
}

/* The text corpus: a file, or every C header directly in /usr/include, concatenated. */
static uint8_t *load_text(const char *path, size_t *out_len)
{
    buf_t b;
    glob_t g = {0};
    buf_init(&b);
    if (path) {
        g.gl_pathc = 1;
    } else if (glob("/usr/include/*.h", 0, NULL, &g) != 0) {
        fprintf(stderr, "bench_primitives: no /usr/include/*.h; pass a text file\n");
        exit(1);
    }
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *p = path ? path : g.gl_pathv[i];
        FILE *f = fopen(p, "rb");
        if (!f)
            continue;
        uint8_t tmp[65536];
        size_t r;
        while ((r = fread(tmp, 1, sizeof tmp, f)) > 0)
            if (buf_append(&b, tmp, r))
                die("reading the text corpus");
        fclose(f);
    }
    if (!path)
        globfree(&g);
    if (b.len == 0) {
        fprintf(stderr, "bench_primitives: the text corpus is empty\n");
        exit(1);
    }
    return buf_steal(&b, out_len);
}

static void report(const char *name, size_t bytes, double secs)
{
    printf("%-40s %9.0f MB/s\n", name, (double)bytes / secs / 1e6);
}

static void bench_chunker(void)
{
    const size_t n = 256 * MIB;
    uint8_t secret[32] = {1, 2, 3};
    chunker_params_t p;
    if (chunker_params_init(&p, secret, CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT, CHUNK_MAX_DEFAULT))
        die("chunker_params_init");
    uint8_t *d = random_data(n);
    double best = 1e9;
    size_t chunks = 0;
    for (int r = 0; r < 2 * ROUNDS; r++) {
        chunker_t c;
        chunker_init(&c, &p);
        chunks = 0;
        double t0 = now();
        for (size_t off = 0; off < n;) {
            size_t cut = chunker_next(&c, d + off, n - off);
            if (!cut)
                break;
            off += cut;
            chunks++;
        }
        double t = now() - t0;
        best = t < best ? t : best;
    }
    report("chunker default (256K/1M/4M), 256 MiB", n, best);
    printf("%-40s %9.0f KiB mean over %zu chunks\n", "", (double)n / 1024 / (double)(chunks + 1),
           chunks + 1);
    free(d);
}

static void bench_hmac(size_t size)
{
    uint8_t key[32] = {7}, mac[32];
    crypto_hmac_t *h = NULL;
    uint8_t *d = random_data(size);
    if (crypto_hmac_new(key, &h))
        die("crypto_hmac_new");
    size_t iters = (256 * MIB) / size;
    double best = 1e9;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now();
        for (size_t i = 0; i < iters; i++)
            if (crypto_hmac(h, d, size, mac))
                die("crypto_hmac");
        double t = now() - t0;
        best = t < best ? t : best;
    }
    char name[64];
    snprintf(name, sizeof name, "HMAC-SHA-256 %zu KiB", size / 1024);
    report(name, iters * size, best);
    crypto_hmac_free(h);
    free(d);
}

static void bench_sha256(void)
{
    size_t size = MIB, iters = 256;
    uint8_t out[32];
    uint8_t *d = random_data(size);
    double best = 1e9;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now();
        for (size_t i = 0; i < iters; i++)
            crypto_sha256(d, size, out);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    report("SHA-256 1 MiB", iters * size, best);
    free(d);
}

static void bench_gcm(void)
{
    size_t size = MIB, iters = 256;
    uint8_t key[32] = {9}, nonce[12] = {0}, ad[45] = {0};
    uint8_t *d = random_data(size);
    uint8_t *ct = malloc(size + CRYPTO_TAG_LEN), *pt = malloc(size);
    if (!ct || !pt)
        die("out of memory");
    double best_seal = 1e9, best_open = 1e9;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now();
        for (size_t i = 0; i < iters; i++) {
            nonce[0] = (uint8_t)i;
            if (crypto_seal(key, nonce, ad, sizeof ad, d, size, ct))
                die("crypto_seal");
        }
        double t1 = now();
        for (size_t i = 0; i < iters; i++)
            if (crypto_open(key, nonce, ad, sizeof ad, ct, size + CRYPTO_TAG_LEN, pt))
                die("crypto_open");
        double t2 = now();
        best_seal = t1 - t0 < best_seal ? t1 - t0 : best_seal;
        best_open = t2 - t1 < best_open ? t2 - t1 : best_open;
    }
    report("AES-256-GCM seal 1 MiB", iters * size, best_seal);
    report("AES-256-GCM open 1 MiB", iters * size, best_open);
    free(d);
    free(ct);
    free(pt);
}

/* compressor_run over the corpus in 1 MiB blobs, then decompression of those blobs. */
static void bench_zstd(const uint8_t *text, size_t tlen, int level)
{
    compressor_t *c = NULL;
    buf_t back;
    buf_init(&back);
    if (compressor_new(level, &c))
        die("compressor_new");
    size_t nblobs = (tlen + MIB - 1) / MIB;
    buf_t *z = calloc(nblobs, sizeof *z);
    bool *zc = calloc(nblobs, sizeof *zc);
    if (!z || !zc)
        die("out of memory");
    double best_c = 1e9, best_d = 1e9;
    size_t zbytes = 0, nraw = 0;
    for (int r = 0; r < ROUNDS; r++) {
        size_t reps = 0;
        double t0 = now(), t;
        do {
            zbytes = 0;
            nraw = 0;
            for (size_t b = 0; b < nblobs; b++) {
                size_t off = b * MIB, len = tlen - off < MIB ? tlen - off : MIB;
                if (compressor_run(c, text + off, len, &z[b], &zc[b]))
                    die("compressor_run");
                zbytes += z[b].len;
                nraw += !zc[b];
            }
            reps++;
            t = now() - t0;
        } while (t < MIN_SECONDS);
        best_c = t / (double)reps < best_c ? t / (double)reps : best_c;
        reps = 0;
        t0 = now();
        do {
            for (size_t b = 0; b < nblobs; b++) {
                size_t off = b * MIB, len = tlen - off < MIB ? tlen - off : MIB;
                if (zc[b] && compress_decompress(z[b].data, z[b].len, len, &back))
                    die("compress_decompress");
            }
            reps++;
            t = now() - t0;
        } while (t < MIN_SECONDS);
        best_d = t / (double)reps < best_d ? t / (double)reps : best_d;
    }
    char name[64];
    snprintf(name, sizeof name, "zstd level %d compress (1 MiB blobs)", level);
    report(name, tlen, best_c);
    printf("%-40s %9.3f ratio (%zu of %zu blobs raw)\n", "", (double)zbytes / (double)tlen, nraw,
           nblobs);
    snprintf(name, sizeof name, "zstd level %d decompress", level);
    report(name, tlen, best_d);
    for (size_t b = 0; b < nblobs; b++)
        buf_release(&z[b]);
    free(z);
    free(zc);
    buf_release(&back);
    compressor_free(c);
}

int main(int argc, char **argv)
{
    size_t tlen;
    uint8_t *text = load_text(argc > 1 ? argv[1] : NULL, &tlen);
    printf("text corpus: %s, %.1f MiB\n", argc > 1 ? argv[1] : "/usr/include/*.h",
           (double)tlen / (double)MIB);
    bench_chunker();
    bench_hmac(MIB);
    bench_hmac(4096);
    bench_hmac(1024);
    bench_sha256();
    bench_gcm();
    bench_zstd(text, tlen, 1);
    bench_zstd(text, tlen, 3);
    free(text);
    return 0;
}
