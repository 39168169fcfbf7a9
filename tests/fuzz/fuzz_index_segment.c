/*
 * fuzz_index_segment.c -- libFuzzer target for the index segment decoder (repo/idxseg.c),
 * feeding decoded packs into a real in-memory index as repo_load_index does.
 */
#include "repo/idxseg.h"
#include "repo/index.h"

#include <stdint.h>

static int on_pack(void *ud, const uint8_t id[32], const uint8_t session[16], const pack_entry_t *e,
                   size_t n)
{
    index_t *ix = ud;
    uint32_t no;
    if (index_add_pack(ix, id, session, 0, &no))
        return 0;
    for (size_t i = 0; i < n; i++) {
        blob_loc_t loc = {.type = e[i].type,
                          .compressed = e[i].compressed,
                          .pack = no,
                          .offset = e[i].offset,
                          .stored_len = e[i].stored_len,
                          .raw_len = e[i].raw_len};
        (void)index_insert(ix, e[i].id, &loc);
        (void)index_lookup(ix, e[i].id, &loc);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    index_t *ix = NULL;
    if (index_new(&ix))
        return 0;
    idxseg_cb_t cb = {.ud = ix, .pack = on_pack};
    (void)idxseg_decode(data, size, "fuzz", &cb);
    index_free(ix);
    return 0;
}
