/*
 * outdir.h -- export sinks: a directory of files (--out DIR) and a tar.zst archive
 * (--archive FILE).
 *
 * Layer: source/k8s (uses common; libarchive). The directory must be new or empty, so an export
 * never mixes with an older one. The archive is written under a temporary name and renamed into
 * place by k8s_archive_close, so a failed export leaves no truncated archive behind; its name
 * may carry the date: an existing directory gets k8s-export-YYYYMMDD-HHMMSSZ.tar.zst inside it,
 * and strftime %-sequences in a file name are expanded (UTC).
 */
#ifndef COFFER_SOURCE_K8S_OUTDIR_H
#define COFFER_SOURCE_K8S_OUTDIR_H

#include <stddef.h>
#include <stdint.h>

typedef struct k8s_outdir k8s_outdir_t;
int k8s_outdir_open(const char *path, k8s_outdir_t **out);
int k8s_outdir_sink(void *ud, const char *path, const char *data, size_t n, int64_t ctime_ns);
void k8s_outdir_close(k8s_outdir_t *d); /* accepts NULL */

typedef struct k8s_archive k8s_archive_t;
/* now_ns: the export time (entry mtimes and the date in the name). */
int k8s_archive_open(const char *path, int64_t now_ns, k8s_archive_t **out);
int k8s_archive_sink(void *ud, const char *path, const char *data, size_t n, int64_t ctime_ns);
/* Finish and rename into place when commit, else remove the temporary file. *out_name (may be
 * NULL) gets the final file name (borrowed until k8s_archive_free). */
int k8s_archive_close(k8s_archive_t *a, int commit, const char **out_name);
void k8s_archive_free(k8s_archive_t *a); /* accepts NULL */

#endif
