/*
 * fuzz_config.c -- libFuzzer target for the YAML config loader (sched/config.c) with file
 * access disabled; a config that loads must print.
 */
#include "sched/config.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cfg_t *c = NULL;
    if (cfg_load_buffer("fuzz", (const char *)data, size, false, &c) == 0) {
        buf_t b;
        buf_init(&b);
        (void)cfg_print(c, &b);
        buf_release(&b);
        cfg_free(c);
    }
    return 0;
}
