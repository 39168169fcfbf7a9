/*
 * fuzz_tree.c -- libFuzzer target for the tree blob decoder (repo/tree.c). A tree that
 * decodes must re-encode to the same bytes (the encoding is canonical).
 */
#include "repo/tree.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tree_t t;
    tree_init(&t);
    if (tree_decode(data, size, "fuzz", &t) == 0) {
        buf_t b;
        buf_init(&b);
        if (tree_encode(&t, &b) == 0 && (b.len != size || memcmp(b.data, data, size) != 0))
            abort(); /* decode accepted a non-canonical encoding */
        buf_release(&b);
    }
    tree_release(&t);
    return 0;
}
