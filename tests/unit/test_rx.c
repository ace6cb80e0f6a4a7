/* Unit tests for rx.c: anchoring, the pattern cache and match limits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rx.h"

struct rx_test {
    struct rx_cache *cache;
    char err[512];
};

static int setup(void **state)
{
    struct rx_test *t = calloc(1, sizeof(*t));

    if (!t)
        return -1;
    t->cache = rx_cache_new();
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct rx_test *t = *state;

    rx_cache_free(t->cache);
    free(t);
    return 0;
}

static int fullmatch(struct rx_test *t, const char *pattern,
                     const char *subject)
{
    t->err[0] = '\0';
    return rx_match(t->cache, pattern, strlen(pattern), subject,
                    strlen(subject), 1, t->err, sizeof(t->err));
}

static int search(struct rx_test *t, const char *pattern,
                  const char *subject)
{
    t->err[0] = '\0';
    return rx_match(t->cache, pattern, strlen(pattern), subject,
                    strlen(subject), 0, t->err, sizeof(t->err));
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) +
           (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void test_rx_fullmatch_explicit_anchors(void **state)
{
    struct rx_test *t = *state;

    assert_int_equal(fullmatch(t, "^v\\d+$", "v1-bad"), 0);
    assert_int_equal(fullmatch(t, "^v\\d+$", "v12"), 1);
}

static void test_rx_fullmatch_anchors_both_ends(void **state)
{
    struct rx_test *t = *state;

    assert_int_equal(fullmatch(t, "v\\d+", "v1-bad"), 0);
    assert_int_equal(fullmatch(t, "v\\d+", "xv1"), 0);
    assert_int_equal(fullmatch(t, "v\\d+", "v1"), 1);
}

/* The whole subject must match even when an earlier alternative matches a
 * prefix only. */
static void test_rx_fullmatch_alternation(void **state)
{
    struct rx_test *t = *state;

    assert_int_equal(fullmatch(t, "1\\.0|1\\.0\\.1", "1.0.1"), 1);
    assert_int_equal(fullmatch(t, "a|ab", "ab"), 1);
    assert_int_equal(fullmatch(t, "a|ab", "abc"), 0);
}

static void test_rx_fullmatch_empty(void **state)
{
    struct rx_test *t = *state;

    assert_int_equal(fullmatch(t, "", ""), 1);
    assert_int_equal(fullmatch(t, "", "x"), 0);
    assert_int_equal(fullmatch(t, ".*", ""), 1);
}

static void test_rx_search_finds_anywhere(void **state)
{
    struct rx_test *t = *state;

    assert_int_equal(search(t, "\\d+", "abc123def"), 1);
    assert_int_equal(search(t, "v\\d", "release-v2-final"), 1);
    assert_int_equal(search(t, "rc", "1.0.0"), 0);
}

static void test_rx_search_respects_own_anchors(void **state)
{
    struct rx_test *t = *state;

    assert_int_equal(search(t, "^v", "xv1"), 0);
    assert_int_equal(search(t, "-dev$", "1.0-dev"), 1);
    assert_int_equal(search(t, "-dev$", "1.0-dev2"), 0);
}

/* The cache keys on the mode as well as the pattern. */
static void test_rx_cache_repeat_same_results(void **state)
{
    struct rx_test *t = *state;

    for (int round = 0; round < 3; round++) {
        assert_int_equal(fullmatch(t, "v\\d", "v1x"), 0);
        assert_int_equal(search(t, "v\\d", "v1x"), 1);
        assert_int_equal(fullmatch(t, "v\\d", "v1"), 1);
    }
}

static void test_rx_cache_many_patterns(void **state)
{
    struct rx_test *t = *state;

    /* More patterns than hash buckets, each asked twice. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 600; i++) {
            char pattern[32], subject[32];
            snprintf(pattern, sizeof(pattern), "build-%d", i);
            snprintf(subject, sizeof(subject), "build-%d", i);
            if (fullmatch(t, pattern, subject) != 1)
                fail_msg("pattern %s did not match %s in round %d", pattern,
                         subject, round);
            snprintf(subject, sizeof(subject), "build-%d", i + 1000);
            if (fullmatch(t, pattern, subject) != 0)
                fail_msg("pattern %s matched %s in round %d", pattern,
                         subject, round);
        }
    }
}

static void test_rx_pattern_length_respected(void **state)
{
    struct rx_test *t = *state;

    /* Only the first two bytes of "abc" form the pattern. */
    assert_int_equal(rx_match(t->cache, "abc", 2, "ab", 2, 1, t->err,
                              sizeof(t->err)),
                     1);
    assert_int_equal(rx_match(t->cache, "abc", 3, "ab", 2, 1, t->err,
                              sizeof(t->err)),
                     0);
}

static void test_rx_subject_length_respected(void **state)
{
    struct rx_test *t = *state;

    assert_int_equal(rx_match(t->cache, "v1", 2, "v1-bad", 2, 1, t->err,
                              sizeof(t->err)),
                     1);
}

static void test_rx_invalid_pattern(void **state)
{
    struct rx_test *t = *state;

    assert_int_equal(search(t, "([a-z", "abc"), -1);
    assert_non_null(strstr(t->err, "([a-z"));
}

static void test_rx_invalid_pattern_not_cached(void **state)
{
    struct rx_test *t = *state;

    assert_int_equal(fullmatch(t, "v(\\d+", "v1"), -1);
    assert_int_equal(fullmatch(t, "v(\\d+", "v1"), -1);
    assert_non_null(strstr(t->err, "v(\\d+"));
}

static void test_rx_invalid_quantifier(void **state)
{
    struct rx_test *t = *state;

    assert_int_equal(search(t, "*v", "v"), -1);
    assert_true(strlen(t->err) > 0);
}

static void test_rx_utf8_subject(void **state)
{
    struct rx_test *t = *state;

    /* One code point, two bytes. */
    assert_int_equal(fullmatch(t, ".", "\xc3\xa9"), 1);
}

/* Nested quantifiers backtrack exponentially on a subject that almost
 * matches. The match limit must end the match with an error. */
static void test_rx_catastrophic_pattern_limited(void **state)
{
    struct rx_test *t = *state;
    char subject[64];
    struct timespec start;
    int rc;

    memset(subject, 'a', sizeof(subject) - 2);
    subject[sizeof(subject) - 2] = '!';
    subject[sizeof(subject) - 1] = '\0';
    clock_gettime(CLOCK_MONOTONIC, &start);
    rc = search(t, "(a+)+$", subject);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(t->err, "(a+)+$"));
    assert_true(seconds_since(&start) < 5.0);
}

static void test_rx_catastrophic_pattern_fullmatch(void **state)
{
    struct rx_test *t = *state;
    char subject[64];
    struct timespec start;

    memset(subject, 'a', sizeof(subject) - 2);
    subject[sizeof(subject) - 2] = 'b';
    subject[sizeof(subject) - 1] = '\0';
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(fullmatch(t, "(a|aa)+", subject), -1);
    assert_true(seconds_since(&start) < 5.0);
}

/* The cache stays usable after a match hits the limit. */
static void test_rx_usable_after_limit(void **state)
{
    struct rx_test *t = *state;
    char subject[64];

    memset(subject, 'a', sizeof(subject) - 2);
    subject[sizeof(subject) - 2] = '!';
    subject[sizeof(subject) - 1] = '\0';
    assert_int_equal(search(t, "(a+)+$", subject), -1);
    assert_int_equal(search(t, "(a+)+$", "aaa"), 1);
    assert_int_equal(fullmatch(t, "v\\d+", "v7"), 1);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_rx_fullmatch_explicit_anchors),
        TEST(test_rx_fullmatch_anchors_both_ends),
        TEST(test_rx_fullmatch_alternation),
        TEST(test_rx_fullmatch_empty),
        TEST(test_rx_search_finds_anywhere),
        TEST(test_rx_search_respects_own_anchors),
        TEST(test_rx_cache_repeat_same_results),
        TEST(test_rx_cache_many_patterns),
        TEST(test_rx_pattern_length_respected),
        TEST(test_rx_subject_length_respected),
        TEST(test_rx_invalid_pattern),
        TEST(test_rx_invalid_pattern_not_cached),
        TEST(test_rx_invalid_quantifier),
        TEST(test_rx_utf8_subject),
        TEST(test_rx_catastrophic_pattern_limited),
        TEST(test_rx_catastrophic_pattern_fullmatch),
        TEST(test_rx_usable_after_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
