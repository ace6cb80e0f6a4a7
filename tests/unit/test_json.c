/* Unit tests for json.c: what the reader accepts and the values it gives. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static int accepts(const char *text, size_t len)
{
    struct json_doc d;
    char err[256];

    if (json_doc_parse(&d, text, len, err, sizeof(err)) != 0) {
        assert_true(strncmp(err, "line ", 5) == 0);
        return 0;
    }
    json_doc_free(&d);
    return 1;
}

#define ACCEPTS(text) accepts(text, sizeof(text) - 1)

static void test_json_accepts_valid_texts(void **state)
{
    (void)state;
    assert_true(ACCEPTS("{}"));
    assert_true(ACCEPTS(" \t\r\n[ ] \n"));
    assert_true(ACCEPTS("[0,-0,1.5,-2e10,3E+2,4e-2,true,false,null]"));
    assert_true(ACCEPTS("[9223372036854775807,-9223372036854775808]"));
    assert_true(ACCEPTS("[1e-400]"));
    assert_true(ACCEPTS("[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]"));
    assert_true(ACCEPTS("[\"\\ud83d\\ude00 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"]"));
    assert_true(ACCEPTS("{\"a\":{\"b\":[{}]},\"a\":1}"));
}

static void test_json_rejects_invalid_texts(void **state)
{
    (void)state;
    assert_false(ACCEPTS(""));
    assert_false(ACCEPTS("\"top-level string\""));
    assert_false(ACCEPTS("1"));
    assert_false(ACCEPTS("[1,]"));
    assert_false(ACCEPTS("{\"a\":1,}"));
    assert_false(ACCEPTS("{\"a\" 1}"));
    assert_false(ACCEPTS("{1:2}"));
    assert_false(ACCEPTS("[01]"));
    assert_false(ACCEPTS("[1.]"));
    assert_false(ACCEPTS("[.5]"));
    assert_false(ACCEPTS("[-]"));
    assert_false(ACCEPTS("[1e]"));
    assert_false(ACCEPTS("[9223372036854775808]"));
    assert_false(ACCEPTS("[-9223372036854775809]"));
    assert_false(ACCEPTS("[1e400]"));
    assert_false(ACCEPTS("[truex]"));
    assert_false(ACCEPTS("[nul]"));
    assert_false(ACCEPTS("[] x"));
    assert_false(ACCEPTS("[\"a\nb\"]"));
    assert_false(ACCEPTS("[\"\\u0000\"]"));
    assert_false(ACCEPTS("[\"\\ud800\"]"));
    assert_false(ACCEPTS("[\"\\udc00\"]"));
    assert_false(ACCEPTS("[\"\\x\"]"));
    assert_false(ACCEPTS("[\"\xc0\xaf\"]"));     /* overlong */
    assert_false(ACCEPTS("[\"\xed\xa0\x80\"]"));  /* a surrogate */
    assert_false(ACCEPTS("[\"\xf4\x90\x80\x80\"]")); /* past U+10FFFF */
    assert_false(ACCEPTS("[\"\xc3\"]"));         /* cut short */
    assert_false(ACCEPTS("[\"open"));
    assert_false(ACCEPTS("[1,0\0]"));
}

static void test_json_depth_limit(void **state)
{
    size_t n = 2049;
    char *text = malloc(2 * n);

    (void)state;
    memset(text, '[', n);
    memset(text + n, ']', n);
    assert_false(accepts(text, 2 * n));
    assert_true(accepts(text + 1, 2 * n - 2));
    free(text);
}

static void test_json_values(void **state)
{
    static const char text[] =
        "{\"s\":\"a\\u00e9\\/b\",\"n\":-42,\"r\":1.5,\"t\":true,"
        "\"list\":[1,{\"x\":[]},\"z\"],\"dup\":1,\"dup\":2,\"e\":\"\"}";
    struct json_doc d;
    char err[128], buf[16];
    size_t len;
    int64_t n;
    int list, e;
    char *s;

    (void)state;
    assert_int_equal(json_doc_parse(&d, text, sizeof(text) - 1, err,
                                    sizeof(err)),
                     0);
    s = json_doc_strdup(&d, json_doc_get(&d, 0, "s"));
    assert_string_equal(s, "a\xc3\xa9/b");
    free(s);
    assert_true(json_doc_streq(&d, json_doc_get(&d, 0, "s"), "a\xc3\xa9/b"));
    assert_false(json_doc_streq(&d, json_doc_get(&d, 0, "s"), "a"));
    assert_int_equal(json_doc_integer(&d, json_doc_get(&d, 0, "n"), &n), 0);
    assert_int_equal(n, -42);
    assert_int_equal(json_doc_integer(&d, json_doc_get(&d, 0, "r"), &n), -1);
    assert_true(json_doc_is(&d, json_doc_get(&d, 0, "r"), JSON_T_REAL));
    assert_true(json_doc_is(&d, json_doc_get(&d, 0, "t"), JSON_T_TRUE));
    assert_int_equal(json_doc_get(&d, 0, "missing"), -1);
    assert_int_equal(json_doc_integer(&d, json_doc_get(&d, 0, "dup"), &n), 0);
    assert_int_equal(n, 2);
    list = json_doc_get(&d, 0, "list");
    assert_int_equal(json_doc_size(&d, list), 3);
    e = json_doc_first(&d, list);
    assert_true(json_doc_is(&d, e, JSON_T_INTEGER));
    e = json_doc_next(&d, e);
    assert_true(json_doc_is(&d, e, JSON_T_OBJECT));
    assert_int_equal(json_doc_size(&d, json_doc_get(&d, e, "x")), 0);
    e = json_doc_next(&d, e);
    assert_true(json_doc_streq(&d, e, "z"));
    assert_int_equal(json_doc_string(&d, json_doc_get(&d, 0, "e"), buf,
                                     sizeof(buf), &len),
                     0);
    assert_int_equal(len, 0);
    /* A value that does not fit the buffer is refused. */
    assert_int_equal(json_doc_string(&d, json_doc_get(&d, 0, "s"), buf, 3,
                                     &len),
                     -1);
    json_doc_free(&d);
}

static void test_json_error_position(void **state)
{
    struct json_doc d;
    char err[128];

    (void)state;
    assert_int_equal(json_doc_parse(&d, "{\n  \"a\": tru }", 14, err,
                                    sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "line 2 column 8"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_accepts_valid_texts),
        cmocka_unit_test(test_json_rejects_invalid_texts),
        cmocka_unit_test(test_json_depth_limit),
        cmocka_unit_test(test_json_values),
        cmocka_unit_test(test_json_error_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
