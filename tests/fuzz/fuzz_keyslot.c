/*
 * fuzz_keyslot.c -- libFuzzer target for key slot parsing (repo/keyslot.c). The KDF limits
 * must hold for hostile parameters; the fuzzer's slots use cheap parameters or fail early.
 */
#include "repo/keyslot.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t repo_id[32];
    uint8_t master[32];
    char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    if (keyslot_info(data, size, &a, &b, &c, &d) == 0) {
        free(a);
        free(b);
        free(c);
        free(d);
    }
    /* only try to open slots whose KDF cost is small, so the fuzzer keeps its pace */
    if (size < 4096 && !memmem(data, size, "\"mem\"", 5) && !memmem(data, size, "\"n\"", 3))
        (void)keyslot_open(data, size, "password", repo_id, "fuzz", master);
    return 0;
}
