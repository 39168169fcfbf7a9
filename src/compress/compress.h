/*
 * compress.h -- zstd policy for blobs: compress at the repository's level, store raw when a
 * probe shows less than 3 % gain.
 *
 * Layer: compress (uses common).
 * The probe compresses a sample (up to 64 KiB from the blob's start and middle) at level 1;
 * if that saves < 3 %, the blob is stored raw without compressing the whole. Otherwise the
 * whole blob is compressed at the configured level and kept only if it saves >= 3 %.
 *
 * Thread safety: a compressor_t holds zstd contexts and is for one thread; make one per
 * worker. compress_decompress is stateless and thread-safe.
 */
#ifndef COFFER_COMPRESS_COMPRESS_H
#define COFFER_COMPRESS_COMPRESS_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COMPRESS_LEVEL_DEFAULT 3
#define COMPRESS_LEVEL_MAX 19
/* Largest raw_len compress_decompress accepts (the chunker's CHUNK_MAX_CEIL); beyond it the
 * call fails with COFFER_ELIMIT before allocating anything. */
#define COMPRESS_RAW_MAX (64u * 1024 * 1024)

typedef struct compressor compressor_t;

/* level: zstd level 1..19 (0 means "never compress"). Caller frees with compressor_free. */
int compressor_new(int level, compressor_t **out);
void compressor_free(compressor_t *c);

/* Compress in[0..n) into out (out is reset first). *out_compressed tells whether out holds
 * zstd data (true) or a raw copy (false). */
int compressor_run(compressor_t *c, const void *in, size_t n, buf_t *out, bool *out_compressed);

/* Decompress a zstd frame into out (reset first); raw_len is the expected size, and a
 * mismatch or a frame bigger than raw_len is COFFER_ECORRUPT. The input must be exactly one
 * zstd frame that declares its content size (what compressor_run writes); anything else,
 * including trailing bytes, is COFFER_ECORRUPT. raw_len > COMPRESS_RAW_MAX is COFFER_ELIMIT. */
int compress_decompress(const void *in, size_t n, size_t raw_len, buf_t *out);

#endif
