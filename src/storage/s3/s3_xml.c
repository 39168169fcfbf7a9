/*
 * s3_xml.c -- the strict, capped XML reader of s3_xml.h.
 *
 * Layer: storage/s3. Recursive descent over a bounded depth; a cursor never moves past the
 * end of the input (every read checks `p < end`). Text is decoded into a buf_t per element.
 */
#include "storage/s3/s3_xml.h"

#include "common/buf.h"
#include "common/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct px {
    const char *p, *end, *start;
    size_t nodes;
};

static int bad(struct px *x, const char *why)
{
    return err_set(COFFER_ECORRUPT, "S3 server sent malformed XML at byte %zu: %s",
                   (size_t)(x->p - x->start), why);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == ':' || c >= 0x80;
}

static bool starts(const struct px *x, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(x->end - x->p) >= n && memcmp(x->p, s, n) == 0;
}

static void skip_space(struct px *x)
{
    while (x->p < x->end && is_space(*x->p))
        x->p++;
}

/* Skip up to and including terminator; error if absent. */
static int skip_past(struct px *x, const char *term, const char *what)
{
    size_t n = strlen(term);
    while ((size_t)(x->end - x->p) >= n) {
        if (memcmp(x->p, term, n) == 0) {
            x->p += n;
            return 0;
        }
        x->p++;
    }
    return bad(x, what);
}

/* Comments, processing instructions; a DOCTYPE is refused. *skipped says whether one was. */
static int skip_misc(struct px *x, bool *skipped)
{
    *skipped = false;
    if (starts(x, "<!--")) {
        x->p += 4;
        *skipped = true;
        return skip_past(x, "-->", "unterminated comment");
    }
    if (starts(x, "<?")) {
        x->p += 2;
        *skipped = true;
        return skip_past(x, "?>", "unterminated processing instruction");
    }
    if (starts(x, "<!DOCTYPE") || starts(x, "<!doctype"))
        return bad(x, "a DOCTYPE is not accepted");
    return 0;
}

/* Name at the cursor: [start, len). The local part (after the last ':') is kept. */
static int read_name(struct px *x, const char **out, size_t *out_len)
{
    const char *s = x->p;
    while (x->p < x->end && name_char((unsigned char)*x->p))
        x->p++;
    size_t n = (size_t)(x->p - s);
    if (n == 0)
        return bad(x, "expected a name");
    if (n > S3_XML_MAX_NAME)
        return bad(x, "name too long");
    const char *colon = memchr(s, ':', n);
    while (colon) {
        n -= (size_t)(colon + 1 - s);
        s = colon + 1;
        colon = memchr(s, ':', n);
    }
    if (n == 0)
        return bad(x, "empty local name");
    *out = s;
    *out_len = n;
    return 0;
}

static int put_utf8(buf_t *b, uint32_t cp)
{
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xc0 | (cp >> 6));
        u[1] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xe0 | (cp >> 12));
        u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (uint8_t)(0xf0 | (cp >> 18));
        u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_append(b, u, n);
}

/* Decode one reference at the cursor ('&' seen) into b. */
static int entity(struct px *x, buf_t *b)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"quot;", '"'}, {"apos;", '\''}};
    x->p++;
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        if (starts(x, named[i].name)) {
            x->p += strlen(named[i].name);
            return buf_append(b, &named[i].c, 1);
        }
    }
    if (x->p >= x->end || *x->p != '#')
        return bad(x, "unknown entity (only &lt; &gt; &amp; &quot; &apos; and &#N; exist)");
    x->p++;
    bool hex = x->p < x->end && *x->p == 'x';
    if (hex)
        x->p++;
    uint32_t cp = 0;
    size_t digits = 0;
    for (; x->p < x->end && *x->p != ';'; x->p++, digits++) {
        char c = *x->p;
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (hex && c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (hex && c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return bad(x, "bad character reference");
        if (digits >= 8)
            return bad(x, "character reference too long");
        cp = cp * (hex ? 16 : 10) + d;
    }
    if (x->p >= x->end || digits == 0)
        return bad(x, "unterminated character reference");
    x->p++;
    if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return bad(x, "character reference to an invalid code point");
    return put_utf8(b, cp);
}

/* Skip attributes up to '>' or "/>"; *empty says which. */
static int attributes(struct px *x, bool *empty)
{
    for (;;) {
        skip_space(x);
        if (x->p >= x->end)
            return bad(x, "unterminated start tag");
        if (*x->p == '>') {
            x->p++;
            *empty = false;
            return 0;
        }
        if (starts(x, "/>")) {
            x->p += 2;
            *empty = true;
            return 0;
        }
        const char *n;
        size_t nl;
        int rc = read_name(x, &n, &nl);
        if (rc)
            return rc;
        skip_space(x);
        if (x->p >= x->end || *x->p != '=')
            return bad(x, "attribute without '='");
        x->p++;
        skip_space(x);
        if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
            return bad(x, "attribute value not quoted");
        char q = *x->p++;
        const char *close = memchr(x->p, q, (size_t)(x->end - x->p));
        if (!close)
            return bad(x, "unterminated attribute value");
        if (memchr(x->p, '<', (size_t)(close - x->p)))
            return bad(x, "'<' in an attribute value");
        x->p = close + 1;
    }
}

static int element(struct px *x, unsigned depth, s3_xml_node_t **out);

/* Content of an element up to and including its end tag. */
static int content(struct px *x, unsigned depth, s3_xml_node_t *n, const char *name,
                   size_t name_len)
{
    buf_t text;
    s3_xml_node_t **tail = &n->child;
    int rc = 0;
    buf_init(&text);
    for (;;) {
        if (x->p >= x->end) {
            rc = bad(x, "document ends inside an element");
            break;
        }
        char c = *x->p;
        if (c == '&') {
            if ((rc = entity(x, &text)))
                break;
            continue;
        }
        if (c != '<') {
            const char *s = x->p;
            while (x->p < x->end && *x->p != '<' && *x->p != '&')
                x->p++;
            if ((rc = buf_append(&text, s, (size_t)(x->p - s))))
                break;
            continue;
        }
        if (starts(x, "<![CDATA[")) {
            x->p += 9;
            const char *s = x->p;
            if ((rc = skip_past(x, "]]>", "unterminated CDATA section")))
                break;
            if ((rc = buf_append(&text, s, (size_t)(x->p - 3 - s))))
                break;
            continue;
        }
        bool skipped;
        if ((rc = skip_misc(x, &skipped)))
            break;
        if (skipped)
            continue;
        if (starts(x, "</")) {
            x->p += 2;
            const char *en;
            size_t el;
            if ((rc = read_name(x, &en, &el)))
                break;
            if (el != name_len || memcmp(en, name, el) != 0) {
                rc = bad(x, "end tag does not match the start tag");
                break;
            }
            skip_space(x);
            if (x->p >= x->end || *x->p != '>') {
                rc = bad(x, "unterminated end tag");
                break;
            }
            x->p++;
            break;
        }
        s3_xml_node_t *ch = NULL;
        if ((rc = element(x, depth + 1, &ch)))
            break;
        *tail = ch;
        tail = &ch->next;
    }
    if (rc == 0) {
        if (memchr(text.data ? (const char *)text.data : "", 0, text.len)) {
            rc = bad(x, "NUL byte in text");
        } else if ((rc = buf_reserve(&text, 1)) == 0) {
            n->text_len = text.len;
            n->text = (char *)buf_steal(&text, &n->text_len);
        }
    }
    buf_release(&text);
    return rc;
}

static int element(struct px *x, unsigned depth, s3_xml_node_t **out)
{
    const char *name;
    size_t name_len;
    bool empty = false;
    int rc;
    if (depth > S3_XML_MAX_DEPTH)
        return bad(x, "elements nested too deeply");
    if (++x->nodes > S3_XML_MAX_NODES)
        return bad(x, "too many elements");
    if (x->p >= x->end || *x->p != '<')
        return bad(x, "expected '<'");
    x->p++;
    if ((rc = read_name(x, &name, &name_len)) || (rc = attributes(x, &empty)))
        return rc;
    s3_xml_node_t *n = calloc(1, sizeof *n);
    if (!n || !(n->name = strndup(name, name_len))) {
        free(n);
        return err_set(COFFER_ENOMEM, "out of memory parsing an S3 response");
    }
    if (empty) {
        n->text = strdup("");
        rc = n->text ? 0 : err_set(COFFER_ENOMEM, "out of memory parsing an S3 response");
    } else {
        rc = content(x, depth, n, name, name_len);
    }
    if (rc) {
        s3_xml_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

int s3_xml_parse(const char *data, size_t len, s3_xml_node_t **out)
{
    struct px x = {.p = data, .end = data + len, .start = data};
    s3_xml_node_t *root = NULL;
    bool skipped;
    int rc;
    if (len > S3_XML_MAX_INPUT)
        return err_set(COFFER_ELIMIT, "S3 response of %zu bytes is over the %zu-byte limit", len,
                       S3_XML_MAX_INPUT);
    if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
        x.p += 3;
    for (;;) {
        skip_space(&x);
        if ((rc = skip_misc(&x, &skipped)))
            return rc;
        if (!skipped)
            break;
    }
    if ((rc = element(&x, 1, &root)))
        return rc;
    for (;;) {
        skip_space(&x);
        if ((rc = skip_misc(&x, &skipped)))
            break;
        if (!skipped)
            break;
    }
    if (rc == 0 && x.p != x.end)
        rc = bad(&x, "content after the root element");
    if (rc) {
        s3_xml_free(root);
        return rc;
    }
    *out = root;
    return 0;
}

void s3_xml_free(s3_xml_node_t *root)
{
    /* Iterative over siblings, recursive over children (depth is capped by the parser). */
    while (root) {
        s3_xml_node_t *next = root->next;
        s3_xml_free(root->child);
        free(root->name);
        free(root->text);
        free(root);
        root = next;
    }
}

const s3_xml_node_t *s3_xml_child(const s3_xml_node_t *n, const char *name)
{
    for (const s3_xml_node_t *c = n ? n->child : NULL; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

const char *s3_xml_child_text(const s3_xml_node_t *n, const char *name)
{
    const s3_xml_node_t *c = s3_xml_child(n, name);
    return c ? c->text : NULL;
}
