/*
 * fuzz_sftp_parse.c -- libFuzzer target for the SFTP driver's parsers (storage/sftp/
 * sftp_parse.c): the first byte picks the parser, the rest is its input. Even: a location
 * (as text after "sftp:"); odd: the extension pairs of a server's VERSION reply.
 */
#include "common/error.h"
#include "storage/sftp/sftp_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1) {
        (void)sftp_version_has(data + 1, size - 1, "posix-rename@openssh.com");
        return 0;
    }
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    sftp_location_t l = {0};
    if (sftp_location_parse(text, &l) == 0) {
        if (!l.user || !l.host || !l.root || !l.shown || l.port < 1 || l.port > 65535)
            abort();
        sftp_location_release(&l);
    }
    free(text);
    return 0;
}
