/*
 * fuzz_pack_header.c -- libFuzzer target for the pack header decoder (repo/pack.c) and the
 * trailer locator: any bytes must give 0 or a clean COFFER_E* error, never a crash or leak.
 */
#include "repo/pack.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pack_entry_t *e = NULL;
    size_t n = 0;
    if (pack_header_decode(data, size, "fuzz", &e, &n) == 0)
        free(e);
    if (size >= 4) {
        uint64_t off;
        uint32_t len;
        (void)pack_header_locate(data + size - 4, size, "fuzz", &off, &len);
    }
    return 0;
}
