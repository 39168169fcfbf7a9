/*
 * test_buf.c -- unit tests for src/common/buf.c: growth, varints, read cursor bounds, hex.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"

static void test_append_printf(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_printf(&b, "%d,", i), 0);
    assert_true(b.len > 1000);
    assert_int_equal(b.data[b.len], 0);
    assert_memory_equal(b.data, "0,1,2,", 6);
    buf_release(&b);
    assert_null(b.data);
}

static void test_varint_roundtrip(void **state)
{
    (void)state;
    const uint64_t vals[] = {0, 1, 127, 128, 300, 1ull << 32, UINT64_MAX};
    buf_t b;
    buf_init(&b);
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        assert_int_equal(buf_put_varint(&b, vals[i]), 0);
    rd_t r;
    rd_init(&r, b.data, b.len, "test");
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint64_t v;
        assert_int_equal(rd_varint(&r, &v), 0);
        assert_true(v == vals[i]);
    }
    uint64_t v;
    assert_int_equal(rd_varint(&r, &v), COFFER_ECORRUPT);
    buf_release(&b);
}

static void test_rd_bounds(void **state)
{
    (void)state;
    const uint8_t in[] = {0x05, 'a', 'b'};
    rd_t r;
    rd_init(&r, in, sizeof in, "thing");
    const uint8_t *p;
    size_t n;
    assert_int_equal(rd_bytes(&r, 100, &p, &n), COFFER_ECORRUPT);
    assert_non_null(strstr(err_msg(), "thing"));
    const uint8_t over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    uint64_t v;
    rd_init(&r, over, sizeof over, "varint");
    assert_int_equal(rd_varint(&r, &v), COFFER_ECORRUPT);
}

static void test_hex(void **state)
{
    (void)state;
    uint8_t in[4] = {0xde, 0xad, 0xbe, 0xef}, out[4];
    char h[9];
    hex_encode(in, 4, h);
    assert_string_equal(h, "deadbeef");
    assert_int_equal(hex_decode(h, out, 4), 0);
    assert_memory_equal(in, out, 4);
    assert_int_equal(hex_decode("deadbee", out, 4), COFFER_EINVAL);
    assert_int_equal(hex_decode("deadbeefx", out, 4), COFFER_EINVAL);
    assert_int_equal(hex_decode("zzadbeef", out, 4), COFFER_EINVAL);
}

static void test_overflow(void **state)
{
    (void)state;
    size_t o;
    assert_int_equal(size_add(SIZE_MAX, 1, &o), COFFER_ELIMIT);
    assert_int_equal(size_mul(SIZE_MAX / 2, 3, &o), COFFER_ELIMIT);
    assert_int_equal(size_mul(4, 5, &o), 0);
    assert_int_equal(o, 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_printf), cmocka_unit_test(test_varint_roundtrip),
        cmocka_unit_test(test_rd_bounds),     cmocka_unit_test(test_hex),
        cmocka_unit_test(test_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
