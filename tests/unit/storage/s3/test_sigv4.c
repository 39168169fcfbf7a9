/*
 * test_sigv4.c -- the SigV4 signer against AWS's published examples.
 *
 * Vectors: the aws-sig-v4-test-suite "get-vanilla" and "get-vanilla-query-order-key-case"
 * (service "service", AKIDEXAMPLE), and the four worked examples of the S3 API reference
 * "Signature Calculations for the Authorization Header" (GET object with Range, PUT object,
 * GET bucket lifecycle, GET bucket list with max-keys and prefix; AKIAIOSFODNN7EXAMPLE).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "storage/s3/sigv4.h"

#include <string.h>

#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_AK "AKIAIOSFODNN7EXAMPLE"
#define S3_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static void check_sig(const sigv4_req_t *r, const char *want)
{
    buf_t out;
    buf_init(&out);
    assert_int_equal(sigv4_authorization(r, &out), 0);
    assert_string_equal((const char *)out.data, want);
    buf_release(&out);
}

static void test_get_vanilla(void **state)
{
    (void)state;
    s3_kv_t h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
    sigv4_req_t r = {.method = "GET",
                     .path = "/",
                     .headers = h,
                     .nheaders = 2,
                     .payload_hash = EMPTY_SHA,
                     .amz_date = "20150830T123600Z",
                     .region = "us-east-1",
                     .service = "service",
                     .access_key = "AKIDEXAMPLE",
                     .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
    check_sig(&r, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                  "aws4_request, SignedHeaders=host;x-amz-date, Signature="
                  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void test_get_vanilla_query_order(void **state)
{
    (void)state;
    s3_kv_t h[] = {{"X-Amz-Date", "20150830T123600Z"}, {"Host", "example.amazonaws.com"}};
    s3_kv_t q[] = {{"Param2", "value2"}, {"Param1", "value1"}};
    sigv4_req_t r = {.method = "GET",
                     .path = "/",
                     .query = q,
                     .nquery = 2,
                     .headers = h,
                     .nheaders = 2,
                     .payload_hash = EMPTY_SHA,
                     .amz_date = "20150830T123600Z",
                     .region = "us-east-1",
                     .service = "service",
                     .access_key = "AKIDEXAMPLE",
                     .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
    check_sig(&r, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                  "aws4_request, SignedHeaders=host;x-amz-date, Signature="
                  "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

static void test_s3_get_object_range(void **state)
{
    (void)state;
    s3_kv_t h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                   {"Range", "bytes=0-9"},
                   {"x-amz-content-sha256", EMPTY_SHA},
                   {"x-amz-date", "20130524T000000Z"}};
    sigv4_req_t r = {.method = "GET",
                     .path = "/test.txt",
                     .headers = h,
                     .nheaders = 4,
                     .payload_hash = EMPTY_SHA,
                     .amz_date = "20130524T000000Z",
                     .region = "us-east-1",
                     .service = "s3",
                     .access_key = S3_AK,
                     .secret_key = S3_SK};
    buf_t c;
    buf_init(&c);
    assert_int_equal(sigv4_canonical_request(&r, &c), 0);
    assert_string_equal((const char *)c.data,
                        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                        "x-amz-content-sha256:" EMPTY_SHA "\nx-amz-date:20130524T000000Z\n\n"
                        "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA);
    buf_release(&c);
    check_sig(&r, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                  "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                  "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void test_s3_put_object(void **state)
{
    (void)state;
    char body_hash[65];
    const char *body = "Welcome to Amazon S3.";
    sigv4_sha256_hex(body, strlen(body), body_hash);
    assert_string_equal(body_hash,
                        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    s3_kv_t h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                   {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                   {"x-amz-date", "20130524T000000Z"},
                   {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                   {"x-amz-content-sha256", body_hash}};
    sigv4_req_t r = {.method = "PUT",
                     .path = "/test$file.text",
                     .headers = h,
                     .nheaders = 5,
                     .payload_hash = body_hash,
                     .amz_date = "20130524T000000Z",
                     .region = "us-east-1",
                     .service = "s3",
                     .access_key = S3_AK,
                     .secret_key = S3_SK};
    check_sig(&r, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                  "aws4_request, SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
                  "x-amz-storage-class, Signature="
                  "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void test_s3_get_lifecycle(void **state)
{
    (void)state;
    s3_kv_t h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                   {"x-amz-date", "20130524T000000Z"},
                   {"x-amz-content-sha256", EMPTY_SHA}};
    s3_kv_t q[] = {{"lifecycle", ""}};
    sigv4_req_t r = {.method = "GET",
                     .path = "/",
                     .query = q,
                     .nquery = 1,
                     .headers = h,
                     .nheaders = 3,
                     .payload_hash = EMPTY_SHA,
                     .amz_date = "20130524T000000Z",
                     .region = "us-east-1",
                     .service = "s3",
                     .access_key = S3_AK,
                     .secret_key = S3_SK};
    check_sig(&r, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                  "aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="
                  "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

static void test_s3_list_objects(void **state)
{
    (void)state;
    s3_kv_t h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                   {"x-amz-date", "20130524T000000Z"},
                   {"x-amz-content-sha256", EMPTY_SHA}};
    s3_kv_t q[] = {{"prefix", "J"}, {"max-keys", "2"}};
    sigv4_req_t r = {.method = "GET",
                     .path = "/",
                     .query = q,
                     .nquery = 2,
                     .headers = h,
                     .nheaders = 3,
                     .payload_hash = EMPTY_SHA,
                     .amz_date = "20130524T000000Z",
                     .region = "us-east-1",
                     .service = "s3",
                     .access_key = S3_AK,
                     .secret_key = S3_SK};
    check_sig(&r, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                  "aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="
                  "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

static void test_query_encoding(void **state)
{
    (void)state;
    s3_kv_t q[] = {{"prefix", "p/a b+c~"},
                   {"list-type", "2"},
                   {"uploads", ""},
                   {"continuation-token", "x=y&z"}};
    buf_t out;
    buf_init(&out);
    assert_int_equal(sigv4_query(&out, q, 4), 0);
    assert_string_equal((const char *)out.data,
                        "continuation-token=x%3Dy%26z&list-type=2&prefix=p%2Fa%20b%2Bc~&uploads=");
    buf_reset(&out);
    assert_int_equal(sigv4_uri_encode(&out, "/b/k é", strlen("/b/k é"), true), 0);
    assert_string_equal((const char *)out.data, "/b/k%20%C3%A9");
    buf_release(&out);
}

static void test_bad_input(void **state)
{
    (void)state;
    s3_kv_t h[] = {{"Bad Header", "x"}};
    sigv4_req_t r = {.method = "GET",
                     .path = "/",
                     .headers = h,
                     .nheaders = 1,
                     .payload_hash = EMPTY_SHA,
                     .amz_date = "20130524T000000Z",
                     .region = "us-east-1",
                     .service = "s3",
                     .access_key = S3_AK,
                     .secret_key = S3_SK};
    buf_t out;
    buf_init(&out);
    assert_int_equal(sigv4_authorization(&r, &out), COFFER_EINVAL);
    r.nheaders = 0;
    r.amz_date = "2013-05-24";
    assert_int_equal(sigv4_authorization(&r, &out), COFFER_EINVAL);
    assert_int_equal(out.len, 0);
    buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_vanilla),         cmocka_unit_test(test_get_vanilla_query_order),
        cmocka_unit_test(test_s3_get_object_range), cmocka_unit_test(test_s3_put_object),
        cmocka_unit_test(test_s3_get_lifecycle),    cmocka_unit_test(test_s3_list_objects),
        cmocka_unit_test(test_query_encoding),      cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
