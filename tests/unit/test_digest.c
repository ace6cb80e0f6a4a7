/* Unit tests for digest.c: the strict text form and the interning table. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "digest.h"

/* sha256 of the empty string. */
#define EMPTY_HEX                                                             \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define EMPTY_TEXT "sha256:" EMPTY_HEX

static int parse_text(const char *text)
{
    struct digest d;

    return digest_parse(text, strlen(text), &d);
}

/* A digest whose bytes come from n through a 64-bit mixing function, so
 * that consecutive n spread over the whole hash table. */
static struct digest make_digest(uint64_t n)
{
    struct digest d;

    for (size_t i = 0; i < sizeof(d.bytes); i += 8) {
        uint64_t x = n + 0x9e3779b97f4a7c15u * (i / 8 + 1);
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
        x ^= x >> 31;
        memcpy(d.bytes + i, &x, 8);
    }
    return d;
}

/*** digest_parse ***/

static void test_digest_parse_valid(void **state)
{
    struct digest d;

    (void)state;
    assert_int_equal(digest_parse(EMPTY_TEXT, strlen(EMPTY_TEXT), &d), 0);
    assert_int_equal(d.bytes[0], 0xe3);
    assert_int_equal(d.bytes[1], 0xb0);
    assert_int_equal(d.bytes[31], 0x55);
}

static void test_digest_parse_trailing_newline(void **state)
{
    (void)state;
    assert_int_equal(parse_text(EMPTY_TEXT "\n"), -1);
}

static void test_digest_parse_crlf(void **state)
{
    (void)state;
    assert_int_equal(parse_text(EMPTY_TEXT "\r\n"), -1);
}

static void test_digest_parse_leading_space(void **state)
{
    (void)state;
    assert_int_equal(parse_text(" " EMPTY_TEXT), -1);
}

static void test_digest_parse_trailing_space(void **state)
{
    (void)state;
    assert_int_equal(parse_text(EMPTY_TEXT " "), -1);
}

static void test_digest_parse_uppercase_hex(void **state)
{
    (void)state;
    assert_int_equal(
        parse_text("sha256:"
                   "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B"
                   "7852B855"),
        -1);
}

static void test_digest_parse_one_uppercase_digit(void **state)
{
    (void)state;
    assert_int_equal(
        parse_text("sha256:"
                   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
                   "7852b85F"),
        -1);
}

static void test_digest_parse_uppercase_algorithm(void **state)
{
    (void)state;
    assert_int_equal(parse_text("SHA256:" EMPTY_HEX), -1);
}

static void test_digest_parse_sha512(void **state)
{
    (void)state;
    assert_int_equal(parse_text("sha512:" EMPTY_HEX EMPTY_HEX), -1);
}

static void test_digest_parse_sha512_same_length(void **state)
{
    /* Right length, wrong algorithm. */
    (void)state;
    assert_int_equal(parse_text("sha512:" EMPTY_HEX), -1);
}

static void test_digest_parse_short(void **state)
{
    char text[DIGEST_TEXT_LEN + 1];

    (void)state;
    snprintf(text, sizeof(text), "%s", EMPTY_TEXT);
    text[DIGEST_TEXT_LEN - 1] = '\0';
    assert_int_equal(parse_text(text), -1);
}

static void test_digest_parse_long(void **state)
{
    (void)state;
    assert_int_equal(parse_text(EMPTY_TEXT "0"), -1);
}

static void test_digest_parse_empty(void **state)
{
    (void)state;
    assert_int_equal(parse_text(""), -1);
}

static void test_digest_parse_prefix_only(void **state)
{
    (void)state;
    assert_int_equal(parse_text("sha256:"), -1);
}

static void test_digest_parse_non_hex_digit(void **state)
{
    (void)state;
    assert_int_equal(
        parse_text("sha256:"
                   "g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
                   "7852b855"),
        -1);
}

static void test_digest_parse_embedded_nul(void **state)
{
    char text[DIGEST_TEXT_LEN + 1];
    struct digest d;

    (void)state;
    memcpy(text, EMPTY_TEXT, sizeof(text));
    text[20] = '\0';
    assert_int_equal(digest_parse(text, DIGEST_TEXT_LEN, &d), -1);
}

static void test_digest_parse_length_argument_respected(void **state)
{
    struct digest d;

    /* The text is valid, but len cuts it short. */
    (void)state;
    assert_int_equal(digest_parse(EMPTY_TEXT, DIGEST_TEXT_LEN - 1, &d), -1);
}

static void test_digest_parse_hex_valid(void **state)
{
    struct digest d;

    (void)state;
    assert_int_equal(digest_parse_hex(EMPTY_HEX, DIGEST_HEX_LEN, &d), 0);
    assert_int_equal(d.bytes[0], 0xe3);
}

static void test_digest_parse_hex_rejects_prefix(void **state)
{
    struct digest d;

    (void)state;
    assert_int_equal(digest_parse_hex(EMPTY_TEXT, strlen(EMPTY_TEXT), &d),
                     -1);
}

static void test_digest_parse_hex_rejects_uppercase(void **state)
{
    struct digest d;
    char hex[DIGEST_HEX_LEN + 1];

    (void)state;
    memcpy(hex, EMPTY_HEX, sizeof(hex));
    hex[0] = 'E';
    assert_int_equal(digest_parse_hex(hex, DIGEST_HEX_LEN, &d), -1);
}

/*** text round trips ***/

static void test_digest_text_round_trip(void **state)
{
    static const char *const texts[] = {
        EMPTY_TEXT,
        "sha256:"
        "0000000000000000000000000000000000000000000000000000000000000000",
        "sha256:"
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct digest d;
        char out[DIGEST_TEXT_LEN + 1];

        assert_int_equal(digest_parse(texts[i], strlen(texts[i]), &d), 0);
        digest_to_text(&d, out);
        assert_string_equal(out, texts[i]);
    }
}

static void test_digest_hex_round_trip(void **state)
{
    (void)state;
    for (uint64_t n = 0; n < 64; n++) {
        struct digest d = make_digest(n), back;
        char hex[DIGEST_HEX_LEN + 1];

        digest_to_hex(&d, hex);
        assert_int_equal(strlen(hex), DIGEST_HEX_LEN);
        assert_int_equal(digest_parse_hex(hex, strlen(hex), &back), 0);
        assert_memory_equal(back.bytes, d.bytes, sizeof(d.bytes));
    }
}

static void test_digest_to_text_every_byte(void **state)
{
    struct digest d, back;
    char text[DIGEST_TEXT_LEN + 1];

    /* Each byte value 0..255 appears once across eight digests. */
    (void)state;
    for (int base = 0; base < 256; base += 32) {
        for (int i = 0; i < 32; i++)
            d.bytes[i] = (uint8_t)(base + i);
        digest_to_text(&d, text);
        assert_int_equal(strncmp(text, "sha256:", 7), 0);
        assert_int_equal(digest_parse(text, strlen(text), &back), 0);
        assert_memory_equal(back.bytes, d.bytes, sizeof(d.bytes));
    }
}

/*** digest_table ***/

static void test_digest_table_same_id(void **state)
{
    struct digest_table t;
    struct digest a = make_digest(1), a_copy = make_digest(1);
    uint32_t first, second;

    (void)state;
    digest_table_init(&t);
    first = digest_table_intern(&t, &a);
    second = digest_table_intern(&t, &a_copy);
    assert_int_equal(first, second);
    assert_int_equal(t.count, 1);
    digest_table_free(&t);
}

static void test_digest_table_dense_ids(void **state)
{
    struct digest_table t;

    (void)state;
    digest_table_init(&t);
    for (uint64_t n = 0; n < 10; n++) {
        struct digest d = make_digest(n);
        assert_int_equal(digest_table_intern(&t, &d), n);
    }
    /* Interning again hands out no new ids. */
    for (uint64_t n = 0; n < 10; n++) {
        struct digest d = make_digest(n);
        assert_int_equal(digest_table_intern(&t, &d), n);
    }
    assert_int_equal(t.count, 10);
    digest_table_free(&t);
}

static void test_digest_table_stores_digest(void **state)
{
    struct digest_table t;
    struct digest d = make_digest(42);
    uint32_t id;

    (void)state;
    digest_table_init(&t);
    id = digest_table_intern(&t, &d);
    assert_memory_equal(t.digests[id].bytes, d.bytes, sizeof(d.bytes));
    digest_table_free(&t);
}

static void test_digest_table_find_absent_empty(void **state)
{
    struct digest_table t;
    struct digest d = make_digest(7);

    (void)state;
    digest_table_init(&t);
    assert_int_equal(digest_table_find(&t, &d), DIGEST_NONE);
    digest_table_free(&t);
}

static void test_digest_table_find_absent(void **state)
{
    struct digest_table t;
    struct digest present = make_digest(1), absent = make_digest(2);

    (void)state;
    digest_table_init(&t);
    digest_table_intern(&t, &present);
    assert_int_equal(digest_table_find(&t, &present), 0);
    assert_int_equal(digest_table_find(&t, &absent), DIGEST_NONE);
    assert_int_equal(t.count, 1);
    digest_table_free(&t);
}

/* Digests that differ only after the bytes the table hashes collide. */
static void test_digest_table_colliding_prefix(void **state)
{
    struct digest_table t;

    (void)state;
    digest_table_init(&t);
    for (uint32_t n = 0; n < 300; n++) {
        struct digest d;
        memset(&d, 0xab, sizeof(d));
        memcpy(d.bytes + 28, &n, sizeof(n));
        assert_int_equal(digest_table_intern(&t, &d), n);
    }
    for (uint32_t n = 0; n < 300; n++) {
        struct digest d;
        memset(&d, 0xab, sizeof(d));
        memcpy(d.bytes + 28, &n, sizeof(n));
        assert_int_equal(digest_table_find(&t, &d), n);
    }
    digest_table_free(&t);
}

/* 100,000 digests take the table through several rehashes. */
static void test_digest_table_growth_100k(void **state)
{
    enum { N = 100000 };
    struct digest_table t;
    size_t initial_slots;

    (void)state;
    digest_table_init(&t);
    initial_slots = t.slot_mask + 1;
    for (uint32_t n = 0; n < N; n++) {
        struct digest d = make_digest(n);
        uint32_t id = digest_table_intern(&t, &d);
        if (id != n)
            fail_msg("digest %u got id %u", n, id);
    }
    assert_int_equal(t.count, N);
    /* At least three doublings beyond the initial size. */
    assert_true(t.slot_mask + 1 >= initial_slots * 8);
    for (uint32_t n = 0; n < N; n++) {
        struct digest d = make_digest(n);
        uint32_t id = digest_table_find(&t, &d);
        if (id != n)
            fail_msg("find of digest %u returned %u", n, id);
    }
    for (uint32_t n = 0; n < N; n++) {
        struct digest d = make_digest(n);
        uint32_t id = digest_table_intern(&t, &d);
        if (id != n)
            fail_msg("interning digest %u again returned %u", n, id);
    }
    assert_int_equal(t.count, N);
    for (uint32_t n = N; n < N + 1000; n++) {
        struct digest d = make_digest(n);
        uint32_t id = digest_table_find(&t, &d);
        if (id != DIGEST_NONE)
            fail_msg("absent digest %u found as id %u", n, id);
    }
    digest_table_free(&t);
}

static void test_digest_table_reinit_after_free(void **state)
{
    struct digest_table t;
    struct digest d = make_digest(3);

    (void)state;
    digest_table_init(&t);
    digest_table_intern(&t, &d);
    digest_table_free(&t);
    assert_int_equal(t.count, 0);
    digest_table_init(&t);
    assert_int_equal(digest_table_find(&t, &d), DIGEST_NONE);
    assert_int_equal(digest_table_intern(&t, &d), 0);
    digest_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_parse_valid),
        cmocka_unit_test(test_digest_parse_trailing_newline),
        cmocka_unit_test(test_digest_parse_crlf),
        cmocka_unit_test(test_digest_parse_leading_space),
        cmocka_unit_test(test_digest_parse_trailing_space),
        cmocka_unit_test(test_digest_parse_uppercase_hex),
        cmocka_unit_test(test_digest_parse_one_uppercase_digit),
        cmocka_unit_test(test_digest_parse_uppercase_algorithm),
        cmocka_unit_test(test_digest_parse_sha512),
        cmocka_unit_test(test_digest_parse_sha512_same_length),
        cmocka_unit_test(test_digest_parse_short),
        cmocka_unit_test(test_digest_parse_long),
        cmocka_unit_test(test_digest_parse_empty),
        cmocka_unit_test(test_digest_parse_prefix_only),
        cmocka_unit_test(test_digest_parse_non_hex_digit),
        cmocka_unit_test(test_digest_parse_embedded_nul),
        cmocka_unit_test(test_digest_parse_length_argument_respected),
        cmocka_unit_test(test_digest_parse_hex_valid),
        cmocka_unit_test(test_digest_parse_hex_rejects_prefix),
        cmocka_unit_test(test_digest_parse_hex_rejects_uppercase),
        cmocka_unit_test(test_digest_text_round_trip),
        cmocka_unit_test(test_digest_hex_round_trip),
        cmocka_unit_test(test_digest_to_text_every_byte),
        cmocka_unit_test(test_digest_table_same_id),
        cmocka_unit_test(test_digest_table_dense_ids),
        cmocka_unit_test(test_digest_table_stores_digest),
        cmocka_unit_test(test_digest_table_find_absent_empty),
        cmocka_unit_test(test_digest_table_find_absent),
        cmocka_unit_test(test_digest_table_colliding_prefix),
        cmocka_unit_test(test_digest_table_growth_100k),
        cmocka_unit_test(test_digest_table_reinit_after_free),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
