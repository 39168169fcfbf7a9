/*
 * test_idmap.c -- unit tests for src/repo/idmap.c: put/get, replacement, growth across many
 * entries with colliding prefixes, absent keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "repo/idmap.h"

#include <string.h>

static void make_id(uint32_t i, uint8_t salt, uint8_t out[32])
{
    memset(out, salt, 32);
    /* the first 8 bytes (the hash) collide in their low bits for runs of i */
    memcpy(out, &i, sizeof i);
    out[31] = (uint8_t)(i * 7);
}

static void test_put_get(void **state)
{
    (void)state;
    idmap_t m;
    idmap_init(&m);
    uint8_t k[32], v[32], got[32];
    make_id(1, 1, k);
    assert_false(idmap_get(&m, k, got)); /* empty map */
    make_id(2, 2, v);
    assert_int_equal(idmap_put(&m, k, v), 0);
    assert_true(idmap_get(&m, k, got));
    assert_memory_equal(got, v, 32);
    make_id(3, 3, v);
    assert_int_equal(idmap_put(&m, k, v), 0); /* replace */
    assert_true(idmap_get(&m, k, got));
    assert_memory_equal(got, v, 32);
    assert_int_equal(m.n, 1);
    idmap_release(&m);
    idmap_release(&m); /* release twice is harmless */
}

static void test_growth(void **state)
{
    (void)state;
    idmap_t m;
    idmap_init(&m);
    uint8_t k[32], v[32], got[32];
    const uint32_t n = 100000;
    for (uint32_t i = 0; i < n; i++) {
        make_id(i, 0xaa, k);
        make_id(i, 0x55, v);
        assert_int_equal(idmap_put(&m, k, v), 0);
    }
    assert_int_equal(m.n, n);
    assert_true(m.n * 2 <= m.cap);
    for (uint32_t i = 0; i < n; i++) {
        make_id(i, 0xaa, k);
        make_id(i, 0x55, v);
        assert_true(idmap_get(&m, k, got));
        assert_memory_equal(got, v, 32);
    }
    make_id(n + 5, 0xaa, k);
    assert_false(idmap_get(&m, k, got));
    make_id(5, 0xab, k); /* same prefix, other bytes */
    assert_false(idmap_get(&m, k, got));
    idmap_release(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_put_get),
                                       cmocka_unit_test(test_growth)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
