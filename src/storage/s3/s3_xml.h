/*
 * s3_xml.h -- a small, strict XML reader for the documents S3 servers return.
 *
 * Layer: storage/s3 (uses common). Enough XML for S3 responses (ListBucketResult, Error,
 * InitiateMultipartUploadResult, CompleteMultipartUploadResult, DeleteResult): elements,
 * attributes (skipped), character data with the five predefined entities and numeric
 * character references, CDATA sections, comments and processing instructions (skipped).
 * A DOCTYPE is refused, so no entity can be declared or expanded.
 * Invariants: input is untrusted; every size is capped (S3_XML_MAX_INPUT bytes, S3_XML_MAX_DEPTH
 * levels, S3_XML_MAX_NODES elements, S3_XML_MAX_NAME bytes per name); malformed input is
 * COFFER_ECORRUPT with a message, never a crash. Element names lose any namespace prefix
 * ("s3:Key" is "Key"). A node's text is the decoded character data directly inside it.
 * Ownership: s3_xml_parse hands out a tree the caller frees with s3_xml_free; getters return
 * pointers borrowed from the tree.
 */
#ifndef COFFER_STORAGE_S3_XML_H
#define COFFER_STORAGE_S3_XML_H

#include <stddef.h>

#define S3_XML_MAX_INPUT ((size_t)64 << 20)
#define S3_XML_MAX_DEPTH 32
#define S3_XML_MAX_NODES 200000
#define S3_XML_MAX_NAME 256

typedef struct s3_xml_node {
    char *name; /* local name, NUL-terminated */
    char *text; /* decoded character data ("" if none); may contain NUL
                   only via &#0;, which is refused, so it is a C string */
    size_t text_len;
    struct s3_xml_node *child; /* first child element */
    struct s3_xml_node *next;  /* next sibling */
} s3_xml_node_t;

/* Parse a whole document; *out is the root element (caller frees with s3_xml_free). */
int s3_xml_parse(const char *data, size_t len, s3_xml_node_t **out);
void s3_xml_free(s3_xml_node_t *root); /* accepts NULL */

/* First child of n named name, or NULL. */
const s3_xml_node_t *s3_xml_child(const s3_xml_node_t *n, const char *name);
/* Text of the first child named name, or NULL when there is no such child. */
const char *s3_xml_child_text(const s3_xml_node_t *n, const char *name);

#endif
