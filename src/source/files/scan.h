/*
 * scan.h -- a quick size scan of the paths a backup will read, for the progress line's ETA.
 *
 * Layer: source/files. Walks like the backup (no symlinks followed, the same excludes) but
 * only stats entries. It never fails the backup: unreadable directories are skipped.
 */
#ifndef COFFER_SOURCE_FILES_SCAN_H
#define COFFER_SOURCE_FILES_SCAN_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Sum the sizes of the regular files under paths into *total (updated as it goes). Stops
 * early when *stop becomes non-zero. */
void files_scan_size(char *const *paths, size_t n, char *const *excludes, size_t n_excludes,
                     volatile sig_atomic_t *stop, _Atomic uint64_t *total);

#endif
