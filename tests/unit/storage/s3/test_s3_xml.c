/*
 * test_s3_xml.c -- the S3 XML reader: real server documents (radosgw and s3rver
 * ListBucketResult, Error), entities, CDATA, and refusal of malformed or oversized input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/error.h"
#include "storage/s3/s3_xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static s3_xml_node_t *parse_ok(const char *doc)
{
    s3_xml_node_t *root = NULL;
    int rc = s3_xml_parse(doc, strlen(doc), &root);
    if (rc)
        fail_msg("parse failed: %s", err_msg());
    return root;
}

static void test_list_result(void **state)
{
    (void)state;
    const char *doc =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Name>bkt</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
        "<IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>p/b &amp; c</NextContinuationToken>"
        "<Contents><Key>p/a&lt;1&gt;</Key><LastModified>2026-11-21T16:00:00.123Z</LastModified>"
        "<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size>"
        "<StorageClass>STANDARD</StorageClass><Owner><ID>ci</ID></Owner></Contents>"
        "<Contents><Key>p/&#233;&#x20AC;</Key><Size>12</Size></Contents>"
        "</ListBucketResult>";
    s3_xml_node_t *r = parse_ok(doc);
    assert_string_equal(r->name, "ListBucketResult");
    assert_string_equal(s3_xml_child_text(r, "IsTruncated"), "true");
    assert_string_equal(s3_xml_child_text(r, "NextContinuationToken"), "p/b & c");
    const s3_xml_node_t *c = s3_xml_child(r, "Contents");
    assert_non_null(c);
    assert_string_equal(s3_xml_child_text(c, "Key"), "p/a<1>");
    assert_string_equal(s3_xml_child_text(c, "ETag"), "\"d41d8cd98f00b204e9800998ecf8427e\"");
    c = c->next;
    while (c && strcmp(c->name, "Contents") != 0)
        c = c->next;
    assert_non_null(c);
    assert_string_equal(s3_xml_child_text(c, "Key"), "p/\xc3\xa9\xe2\x82\xac");
    assert_string_equal(s3_xml_child_text(c, "Size"), "12");
    assert_null(s3_xml_child_text(r, "Missing"));
    s3_xml_free(r);
}

static void test_error_doc(void **state)
{
    (void)state;
    s3_xml_node_t *r = parse_ok("<Error><Code>SignatureDoesNotMatch</Code><Message/>"
                                "<!-- c --><RequestId><![CDATA[tx<1>]]></RequestId></Error>  \n");
    assert_string_equal(s3_xml_child_text(r, "Code"), "SignatureDoesNotMatch");
    assert_string_equal(s3_xml_child_text(r, "Message"), "");
    assert_string_equal(s3_xml_child_text(r, "RequestId"), "tx<1>");
    s3_xml_free(r);
    r = parse_ok("<s3:Error xmlns:s3='x'><s3:Code>NoSuchKey</s3:Code></s3:Error>");
    assert_string_equal(r->name, "Error");
    assert_string_equal(s3_xml_child_text(r, "Code"), "NoSuchKey");
    s3_xml_free(r);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "<a>",
        "<a></b>",
        "<a>&foo;</a>",
        "<a>&#0;</a>",
        "<a>&#xD800;</a>",
        "<a>&#x110000;</a>",
        "<a>&#12</a>",
        "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
        "<a><![CDATA[x</a>",
        "<a b=c></a>",
        "<a></a><b></b>",
        "<a><!-- x </a>",
        "text",
        "<a b=\"<\"></a>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s3_xml_node_t *r = (s3_xml_node_t *)1;
        assert_int_equal(s3_xml_parse(bad[i], strlen(bad[i]), &r), COFFER_ECORRUPT);
        assert_ptr_equal(r, (s3_xml_node_t *)1);
        assert_non_null(strstr(err_msg(), "malformed XML"));
    }
}

static void test_depth_cap(void **state)
{
    (void)state;
    char doc[4096];
    size_t n = 0;
    for (int i = 0; i < S3_XML_MAX_DEPTH + 2; i++)
        n += (size_t)snprintf(doc + n, sizeof doc - n, "<a>");
    for (int i = 0; i < S3_XML_MAX_DEPTH + 2; i++)
        n += (size_t)snprintf(doc + n, sizeof doc - n, "</a>");
    s3_xml_node_t *r = NULL;
    assert_int_equal(s3_xml_parse(doc, n, &r), COFFER_ECORRUPT);
    assert_non_null(strstr(err_msg(), "nested"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_result),
        cmocka_unit_test(test_error_doc),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_depth_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
