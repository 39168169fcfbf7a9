/*
 * fuzz_condemned.c -- libFuzzer target for the condemned-list decoder (repo/condemned.c).
 */
#include "repo/condemned.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    condemned_t c;
    condemned_init(&c);
    if (condemned_decode(data, size, "fuzz", &c) == 0) {
        buf_t b;
        buf_init(&b);
        (void)condemned_encode(&c, &b);
        buf_release(&b);
    }
    condemned_release(&c);
    return 0;
}
