/*
 * fuzz_snapshot.c -- libFuzzer target for the snapshot JSON decoder (repo/snapshot.c); a
 * decoded snapshot must encode again.
 */
#include "repo/snapshot.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    snapshot_t s;
    snapshot_init(&s);
    if (snapshot_decode(data, size, "fuzz", &s) == 0) {
        buf_t b;
        buf_init(&b);
        (void)snapshot_encode(&s, &b);
        buf_release(&b);
        snapshot_release(&s);
    }
    return 0;
}
