/*
 * s3.h -- the S3 storage driver's table (storage.c registers it under the "s3" scheme).
 *
 * Layer: storage driver. Callers use storage.h; only storage.c includes this header.
 * Locations, options, credentials and server behaviour: doc/storage.md, section "S3".
 */
#ifndef COFFER_STORAGE_S3_S3_H
#define COFFER_STORAGE_S3_S3_H

#include "storage/storage_intern.h"

extern const storage_driver_t storage_s3_driver;

#endif
