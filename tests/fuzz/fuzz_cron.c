/*
 * fuzz_cron.c -- libFuzzer target for the cron expression parser (common/cron.c); a parsed
 * expression must give a next run time (or "never matches") in UTC without crashing.
 */
#include "common/cron.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    cron_expr_t c;
    if (cron_parse(text, &c) == 0) {
        int64_t next;
        if (cron_next(&c, "UTC", 1700000000, &next) == 0 && next <= 1700000000)
            abort();
    }
    free(text);
    return 0;
}
