/* Unit tests for version.c: parsing, precedence and natural ordering. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "version.h"

static int sign(int c)
{
    return (c > 0) - (c < 0);
}

/* Fail unless a ranks strictly below b, in both argument orders. */
static void expect_names_below(const char *a, const char *b)
{
    int forward = sign(version_compare_names(a, b));
    int backward = sign(version_compare_names(b, a));

    if (forward != -1)
        fail_msg("expected \"%s\" < \"%s\", compare returned %d", a, b,
                 forward);
    if (backward != 1)
        fail_msg("expected \"%s\" > \"%s\", compare returned %d", b, a,
                 backward);
}

static void expect_natural_below(const char *a, const char *b)
{
    int forward = sign(natural_compare(a, b));
    int backward = sign(natural_compare(b, a));

    if (forward != -1)
        fail_msg("expected \"%s\" < \"%s\" naturally, got %d", a, b,
                 forward);
    if (backward != 1)
        fail_msg("expected \"%s\" > \"%s\" naturally, got %d", b, a,
                 backward);
}

/* Fail unless every element of a list ranks below the next one. */
static void expect_ascending(const char *const *names, size_t count)
{
    for (size_t i = 0; i + 1 < count; i++)
        expect_names_below(names[i], names[i + 1]);
    /* Also across gaps, which a non-transitive order would break. */
    for (size_t i = 0; i + 2 < count; i++)
        expect_names_below(names[i], names[count - 1]);
}

static int parses(const char *s)
{
    struct version v;

    return version_parse(s, &v) == 0;
}

/*** version_parse ***/

static void test_version_parse_three_parts(void **state)
{
    struct version v;

    (void)state;
    assert_int_equal(version_parse("1.2.3", &v), 0);
    assert_int_equal(v.nparts, 3);
    assert_int_equal(v.parts[0], 1);
    assert_int_equal(v.parts[1], 2);
    assert_int_equal(v.parts[2], 3);
    assert_int_equal(v.parts[3], 0);
    assert_null(v.prerelease);
    assert_null(v.build);
}

static void test_version_parse_v_prefix(void **state)
{
    struct version v;

    (void)state;
    assert_int_equal(version_parse("v1.2.3", &v), 0);
    assert_int_equal(v.nparts, 3);
    assert_int_equal(v.parts[0], 1);
    assert_int_equal(version_parse("V4.5", &v), 0);
    assert_int_equal(v.parts[0], 4);
    assert_int_equal(v.parts[1], 5);
}

static void test_version_parse_v_single_number(void **state)
{
    struct version v;

    (void)state;
    assert_int_equal(version_parse("v2", &v), 0);
    assert_int_equal(v.nparts, 1);
    assert_int_equal(v.parts[0], 2);
}

static void test_version_parse_bare_number_rejected(void **state)
{
    (void)state;
    assert_false(parses("2"));
    assert_false(parses("20241201"));
}

static void test_version_parse_partial(void **state)
{
    struct version v;

    (void)state;
    assert_int_equal(version_parse("1.2", &v), 0);
    assert_int_equal(v.nparts, 2);
    assert_int_equal(v.parts[0], 1);
    assert_int_equal(v.parts[1], 2);
    assert_int_equal(v.parts[2], 0);
}

static void test_version_parse_four_parts(void **state)
{
    struct version v;

    (void)state;
    assert_int_equal(version_parse("1.2.3.4", &v), 0);
    assert_int_equal(v.nparts, 4);
    assert_int_equal(v.parts[3], 4);
    assert_false(parses("1.2.3.4.5"));
}

static void test_version_parse_prerelease_and_build(void **state)
{
    struct version v;

    (void)state;
    assert_int_equal(version_parse("1.0.0-rc.1+build.5", &v), 0);
    assert_non_null(v.prerelease);
    assert_int_equal(v.prerelease_len, 4);
    assert_memory_equal(v.prerelease, "rc.1", 4);
    assert_non_null(v.build);
    assert_int_equal(v.build_len, 7);
    assert_memory_equal(v.build, "build.5", 7);
}

static void test_version_parse_build_without_prerelease(void **state)
{
    struct version v;

    (void)state;
    assert_int_equal(version_parse("1.0.0+20241201", &v), 0);
    assert_null(v.prerelease);
    assert_non_null(v.build);
    assert_int_equal(v.build_len, 8);
}

static void test_version_parse_hyphen_in_prerelease(void **state)
{
    struct version v;

    (void)state;
    assert_int_equal(version_parse("1.0.0-x-y-z.--", &v), 0);
    assert_int_equal(v.prerelease_len, strlen("x-y-z.--"));
}

static void test_version_parse_not_versions(void **state)
{
    static const char *const names[] = {
        "",         "latest",  "main-123", "v",        "vv1.2",
        "1.",       ".1",      "1..2",     "1.2-",     "1.2+",
        "1.2-rc..1", "1.2-rc.", "1.2 ",     " 1.2",     "1.2_3",
        "1.2.x",    "1.2-rc_1", "1.2+b+c", "release-1.2", "1.2\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (parses(names[i]))
            fail_msg("\"%s\" parsed as a version", names[i]);
}

/* A number too large for the parts array makes the name a non-version
 * instead of wrapping around. */
static void test_version_parse_oversized_number(void **state)
{
    struct version v;

    (void)state;
    assert_int_equal(version_parse("1.999999999999999999", &v), 0);
    assert_true(v.parts[1] == UINT64_C(999999999999999999));
    assert_false(parses("1.99999999999999999999999"));
}

/* git describe output: commits after a release tag and the hash. */
static void test_version_parse_describe_suffix(void **state)
{
    struct version v;

    (void)state;
    assert_int_equal(version_parse("1.2.3-14-gabc1234", &v), 0);
    assert_int_equal(v.describe_commits, 14);
    assert_null(v.prerelease);
    assert_int_equal(version_parse("v1.2.3-2-gabc1234-dirty", &v), 0);
    assert_int_equal(v.describe_commits, 2);
    assert_int_equal(version_parse("1.2.3", &v), 0);
    assert_int_equal(v.describe_commits, -1);
}

static void test_version_parse_describe_lookalike(void **state)
{
    struct version v;

    /* Too few hex digits for an abbreviated hash: a pre-release. */
    (void)state;
    assert_int_equal(version_parse("1.0.0-1-gamma", &v), 0);
    assert_int_equal(v.describe_commits, -1);
    assert_non_null(v.prerelease);
}

/*** precedence ***/

static void test_version_numeric_parts_order(void **state)
{
    (void)state;
    expect_names_below("1.9", "1.10");
    expect_names_below("1.9.9", "1.10.0");
    expect_names_below("1.2.9", "1.2.10");
    expect_names_below("2.0.0", "10.0.0");
}

static void test_version_v_prefix_same_precedence(void **state)
{
    struct version a, b;

    (void)state;
    assert_int_equal(version_parse("v1.2.3", &a), 0);
    assert_int_equal(version_parse("1.2.3", &b), 0);
    assert_int_equal(version_compare(&a, &b), 0);
    expect_names_below("v1.9", "1.10");
    expect_names_below("1.9", "v1.10");
}

static void test_version_rc_numeric_order(void **state)
{
    static const char *const order[] = {
        "1.0.0-rc.2",
        "1.0.0-rc.10",
        "1.0.0",
    };

    (void)state;
    expect_ascending(order, sizeof(order) / sizeof(order[0]));
}

static void test_version_rc_without_dot_order(void **state)
{
    (void)state;
    expect_names_below("1.0.0-rc9", "1.0.0-rc10");
    expect_names_below("1.0.0-rc10", "1.0.0");
    expect_names_below("v2.1-beta9", "v2.1-beta10");
}

/* The precedence example of semver.org, section 11. */
static void test_version_semver_precedence_list(void **state)
{
    static const char *const order[] = {
        "1.0.0-alpha",      "1.0.0-alpha.1", "1.0.0-alpha.beta",
        "1.0.0-beta",       "1.0.0-beta.2",  "1.0.0-beta.11",
        "1.0.0-rc.1",       "1.0.0",
    };

    (void)state;
    expect_ascending(order, sizeof(order) / sizeof(order[0]));
}

static void test_version_numeric_identifier_below_alphanumeric(void **state)
{
    (void)state;
    expect_names_below("1.0.0-1", "1.0.0-alpha");
    expect_names_below("1.0.0-999", "1.0.0-0a");
}

static void test_version_prerelease_below_lower_release(void **state)
{
    (void)state;
    expect_names_below("1.0.0", "1.0.1-alpha");
    expect_names_below("1.0.1-alpha", "1.0.1");
}

static void test_version_describe_order(void **state)
{
    static const char *const order[] = {
        "1.2.3-rc.1",          "1.2.3",
        "1.2.3-2-g0000aaa",    "1.2.3-14-gabc1234",
        "1.2.3-15-g0000aaa",   "1.2.4-rc.1",
        "1.2.4",
    };

    (void)state;
    expect_ascending(order, sizeof(order) / sizeof(order[0]));
}

static void test_version_build_metadata_ignored(void **state)
{
    struct version a, b;

    (void)state;
    assert_int_equal(version_parse("1.0.0+build.1", &a), 0);
    assert_int_equal(version_parse("1.0.0+build.2", &b), 0);
    assert_int_equal(version_compare(&a, &b), 0);
    assert_int_equal(version_parse("1.0.0-rc.1+zzz", &a), 0);
    assert_int_equal(version_parse("1.0.0-rc.1", &b), 0);
    assert_int_equal(version_compare(&a, &b), 0);
    expect_names_below("1.0.0+zzz", "1.0.1+aaa");
    expect_names_below("1.0.0-rc.1+zzz", "1.0.0+aaa");
}

/* Names equal in precedence still get a total order. */
static void test_version_equal_precedence_total_order(void **state)
{
    (void)state;
    assert_int_not_equal(version_compare_names("1.0.0+a", "1.0.0+b"), 0);
    assert_int_equal(sign(version_compare_names("1.0.0+a", "1.0.0+b")),
                     -sign(version_compare_names("1.0.0+b", "1.0.0+a")));
    assert_int_equal(version_compare_names("1.0.0", "1.0.0"), 0);
}

static void test_version_partial_versions(void **state)
{
    struct version a, b;

    (void)state;
    assert_int_equal(version_parse("1.2", &a), 0);
    assert_int_equal(version_parse("1.2.0", &b), 0);
    assert_int_equal(version_compare(&a, &b), 0);
    expect_names_below("1.1.9", "1.2");
    expect_names_below("1.2", "1.2.1");
    expect_names_below("1.2", "1.10");
    expect_names_below("v1", "v1.0.1");
    expect_names_below("1.2-rc.1", "1.2");
}

static void test_version_non_versions_rank_below(void **state)
{
    static const char *const versions[] = {"0.0.1", "v0", "1.0.0-alpha",
                                           "0.0.0-0", "99.99"};
    static const char *const others[] = {"latest", "main-123", "main",
                                         "zzz", "v", "1"};

    (void)state;
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        for (size_t j = 0; j < sizeof(versions) / sizeof(versions[0]); j++)
            expect_names_below(others[i], versions[j]);
}

static void test_version_non_versions_natural(void **state)
{
    (void)state;
    expect_names_below("main-9", "main-123");
    expect_names_below("latest", "main-123");
}

/*** natural_compare ***/

static void test_natural_compare_build_numbers(void **state)
{
    (void)state;
    expect_natural_below("build-9", "build-10");
    expect_natural_below("build-10", "build-11");
    expect_natural_below("build-2-a", "build-10-a");
}

static void test_natural_compare_equal(void **state)
{
    (void)state;
    assert_int_equal(natural_compare("build-10", "build-10"), 0);
    assert_int_equal(natural_compare("", ""), 0);
}

static void test_natural_compare_prefix_shorter_first(void **state)
{
    (void)state;
    expect_natural_below("build", "build-1");
    expect_natural_below("", "a");
}

static void test_natural_compare_leading_zeros(void **state)
{
    (void)state;
    /* Equal as numbers: still ordered, and consistently in both orders. */
    assert_int_not_equal(natural_compare("build-007", "build-7"), 0);
    assert_int_equal(sign(natural_compare("build-007", "build-7")),
                     -sign(natural_compare("build-7", "build-007")));
    expect_natural_below("build-007", "build-8");
    expect_natural_below("build-6", "build-007");
    expect_natural_below("build-09", "build-10");
}

static void test_natural_compare_long_digit_runs(void **state)
{
    (void)state;
    expect_natural_below("build-99999999999999999999999999999999",
                         "build-100000000000000000000000000000000");
    expect_natural_below("build-123456789012345678901234567890",
                         "build-123456789012345678901234567891");
    expect_natural_below("18446744073709551615", "18446744073709551616");
}

static void test_natural_compare_n_lengths(void **state)
{
    (void)state;
    /* Only the given lengths count. */
    assert_int_equal(natural_compare_n("build-10x", 8, "build-10y", 8), 0);
    assert_true(natural_compare_n("build-9", 7, "build-10", 8) < 0);
}

static void test_version_long_prerelease_numbers(void **state)
{
    (void)state;
    expect_names_below("1.0.0-rc.99999999999999999999999",
                       "1.0.0-rc.100000000000000000000000");
}

static int compare_names_qsort(const void *a, const void *b)
{
    return version_compare_names(*(const char *const *)a,
                                 *(const char *const *)b);
}

/* qsort with the comparison must yield the expected ascending order. */
static void test_version_sort_mixed_tags(void **state)
{
    const char *names[] = {
        "1.10.0", "latest", "1.9.0", "v1.10.0-rc.1", "build-10", "1.2",
        "build-9", "1.10.0-rc.2", "main-123", "2.0.0-alpha",
    };
    static const char *const expected[] = {
        "build-9", "build-10", "latest", "main-123", "1.2",
        "1.9.0", "v1.10.0-rc.1", "1.10.0-rc.2", "1.10.0", "2.0.0-alpha",
    };
    size_t count = sizeof(names) / sizeof(names[0]);

    (void)state;
    qsort(names, count, sizeof(names[0]), compare_names_qsort);
    for (size_t i = 0; i < count; i++)
        assert_string_equal(names[i], expected[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_parse_three_parts),
        cmocka_unit_test(test_version_parse_v_prefix),
        cmocka_unit_test(test_version_parse_v_single_number),
        cmocka_unit_test(test_version_parse_bare_number_rejected),
        cmocka_unit_test(test_version_parse_partial),
        cmocka_unit_test(test_version_parse_four_parts),
        cmocka_unit_test(test_version_parse_prerelease_and_build),
        cmocka_unit_test(test_version_parse_build_without_prerelease),
        cmocka_unit_test(test_version_parse_hyphen_in_prerelease),
        cmocka_unit_test(test_version_parse_not_versions),
        cmocka_unit_test(test_version_parse_oversized_number),
        cmocka_unit_test(test_version_parse_describe_suffix),
        cmocka_unit_test(test_version_parse_describe_lookalike),
        cmocka_unit_test(test_version_numeric_parts_order),
        cmocka_unit_test(test_version_v_prefix_same_precedence),
        cmocka_unit_test(test_version_rc_numeric_order),
        cmocka_unit_test(test_version_rc_without_dot_order),
        cmocka_unit_test(test_version_semver_precedence_list),
        cmocka_unit_test(test_version_numeric_identifier_below_alphanumeric),
        cmocka_unit_test(test_version_prerelease_below_lower_release),
        cmocka_unit_test(test_version_describe_order),
        cmocka_unit_test(test_version_build_metadata_ignored),
        cmocka_unit_test(test_version_equal_precedence_total_order),
        cmocka_unit_test(test_version_partial_versions),
        cmocka_unit_test(test_version_non_versions_rank_below),
        cmocka_unit_test(test_version_non_versions_natural),
        cmocka_unit_test(test_natural_compare_build_numbers),
        cmocka_unit_test(test_natural_compare_equal),
        cmocka_unit_test(test_natural_compare_prefix_shorter_first),
        cmocka_unit_test(test_natural_compare_leading_zeros),
        cmocka_unit_test(test_natural_compare_long_digit_runs),
        cmocka_unit_test(test_natural_compare_n_lengths),
        cmocka_unit_test(test_version_long_prerelease_numbers),
        cmocka_unit_test(test_version_sort_mixed_tags),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
