/*
 * fuzz_s3_xml.c -- libFuzzer target for the S3 XML reader (src/storage/s3/s3_xml.c): any
 * bytes either parse into a tree that can be walked and freed, or fail cleanly.
 */
#include "common/error.h"
#include "storage/s3/s3_xml.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(const s3_xml_node_t *n, unsigned depth)
{
    size_t total = 0;
    for (; n; n = n->next) {
        total += strlen(n->name) + strlen(n->text);
        if (depth < S3_XML_MAX_DEPTH + 1)
            total += walk(n->child, depth + 1);
    }
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s3_xml_node_t *root = NULL;
    if (s3_xml_parse((const char *)data, size, &root) == 0) {
        (void)walk(root, 0);
        (void)s3_xml_child_text(root, "Code");
        s3_xml_free(root);
    }
    err_clear();
    return 0;
}
