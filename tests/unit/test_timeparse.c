/* Unit tests for timeparse.c: durations, RFC 3339, --now and formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "timeparse.h"

/* 2024-05-01T12:00:00Z */
#define MAY_FIRST_NOON INT64_C(1714564800)

static int64_t duration_ok(const char *s)
{
    int64_t seconds = -12345;

    if (timeparse_duration(s, &seconds) != 0)
        fail_msg("duration \"%s\" was rejected", s);
    return seconds;
}

static void expect_duration_rejected(const char *s)
{
    int64_t seconds = -12345;

    if (timeparse_duration(s, &seconds) == 0)
        fail_msg("duration \"%s\" was accepted as %lld seconds", s,
                 (long long)seconds);
}

static int64_t rfc3339_ok(const char *s)
{
    int64_t seconds = -12345;

    if (timeparse_rfc3339(s, strlen(s), &seconds) != 0)
        fail_msg("timestamp \"%s\" was rejected", s);
    return seconds;
}

static void expect_rfc3339_rejected(const char *s)
{
    int64_t seconds = -12345;

    if (timeparse_rfc3339(s, strlen(s), &seconds) == 0)
        fail_msg("timestamp \"%s\" was accepted as %lld", s,
                 (long long)seconds);
}

/*** durations ***/

static void test_timeparse_duration_days(void **state)
{
    (void)state;
    assert_int_equal(duration_ok("30d"), 30 * 86400);
    assert_int_equal(duration_ok("1d"), 86400);
}

static void test_timeparse_duration_combined(void **state)
{
    (void)state;
    assert_int_equal(duration_ok("1d12h"), 86400 + 12 * 3600);
    assert_int_equal(duration_ok("1w2d3h4m5s"),
                     7 * 86400 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5);
}

static void test_timeparse_duration_minutes(void **state)
{
    (void)state;
    assert_int_equal(duration_ok("90m"), 5400);
}

static void test_timeparse_duration_weeks(void **state)
{
    (void)state;
    assert_int_equal(duration_ok("2w"), 14 * 86400);
}

static void test_timeparse_duration_seconds(void **state)
{
    (void)state;
    assert_int_equal(duration_ok("45s"), 45);
}

static void test_timeparse_duration_zero(void **state)
{
    (void)state;
    assert_int_equal(duration_ok("0"), 0);
    assert_int_equal(duration_ok("0s"), 0);
    assert_int_equal(duration_ok("0d"), 0);
}

static void test_timeparse_duration_repeated_unit(void **state)
{
    (void)state;
    assert_int_equal(duration_ok("1h1h"), 7200);
}

static void test_timeparse_duration_rejects_empty(void **state)
{
    (void)state;
    expect_duration_rejected("");
}

static void test_timeparse_duration_rejects_unit_only(void **state)
{
    (void)state;
    expect_duration_rejected("d");
}

static void test_timeparse_duration_rejects_missing_unit(void **state)
{
    (void)state;
    expect_duration_rejected("10");
    expect_duration_rejected("1d10");
    expect_duration_rejected("00");
}

static void test_timeparse_duration_rejects_unknown_unit(void **state)
{
    (void)state;
    expect_duration_rejected("1x");
    expect_duration_rejected("1D");
    expect_duration_rejected("1y");
}

static void test_timeparse_duration_rejects_negative(void **state)
{
    (void)state;
    expect_duration_rejected("-1d");
    expect_duration_rejected("+1d");
}

static void test_timeparse_duration_rejects_spaces(void **state)
{
    (void)state;
    expect_duration_rejected(" 1d");
    expect_duration_rejected("1d ");
    expect_duration_rejected("1 d");
}

static void test_timeparse_duration_rejects_fraction(void **state)
{
    (void)state;
    expect_duration_rejected("1.5h");
}

static void test_timeparse_duration_rejects_overflow(void **state)
{
    (void)state;
    /* The number itself does not fit in 64 bits. */
    expect_duration_rejected("100000000000000000000s");
    /* The number fits, the product with the unit does not. */
    expect_duration_rejected("99999999999999w");
    /* Each part fits, their sum does not. */
    expect_duration_rejected("9000000000000000000s9000000000000000000s");
}

static void test_timeparse_duration_large_fits(void **state)
{
    (void)state;
    assert_true(duration_ok("100000000w") == INT64_C(100000000) * 604800);
}

/*** RFC 3339 ***/

static void test_timeparse_rfc3339_epoch(void **state)
{
    (void)state;
    assert_int_equal(rfc3339_ok("1970-01-01T00:00:00Z"), 0);
}

static void test_timeparse_rfc3339_utc(void **state)
{
    (void)state;
    assert_int_equal(rfc3339_ok("2024-05-01T12:00:00Z"), MAY_FIRST_NOON);
}

static void test_timeparse_rfc3339_positive_offset(void **state)
{
    (void)state;
    assert_int_equal(rfc3339_ok("2024-05-01T14:00:00+02:00"),
                     MAY_FIRST_NOON);
}

static void test_timeparse_rfc3339_negative_offset(void **state)
{
    (void)state;
    assert_int_equal(rfc3339_ok("2024-05-01T07:30:00-04:30"),
                     MAY_FIRST_NOON);
}

static void test_timeparse_rfc3339_offset_crosses_day(void **state)
{
    (void)state;
    assert_int_equal(rfc3339_ok("2024-05-02T01:00:00+13:00"),
                     MAY_FIRST_NOON);
}

static void test_timeparse_rfc3339_zero_offset(void **state)
{
    (void)state;
    assert_int_equal(rfc3339_ok("2024-05-01T12:00:00+00:00"),
                     MAY_FIRST_NOON);
    assert_int_equal(rfc3339_ok("2024-05-01T12:00:00-00:00"),
                     MAY_FIRST_NOON);
}

static void test_timeparse_rfc3339_fraction_truncated(void **state)
{
    (void)state;
    assert_int_equal(rfc3339_ok("2024-05-01T12:00:00.999999999Z"),
                     MAY_FIRST_NOON);
    assert_int_equal(rfc3339_ok("2024-05-01T12:00:00.5Z"), MAY_FIRST_NOON);
}

static void test_timeparse_rfc3339_fraction_with_offset(void **state)
{
    (void)state;
    assert_int_equal(rfc3339_ok("2024-05-01T14:00:00.123456+02:00"),
                     MAY_FIRST_NOON);
}

static void test_timeparse_rfc3339_lowercase(void **state)
{
    (void)state;
    assert_int_equal(rfc3339_ok("2024-05-01t12:00:00z"), MAY_FIRST_NOON);
}

static void test_timeparse_rfc3339_before_epoch(void **state)
{
    (void)state;
    assert_int_equal(rfc3339_ok("1969-12-31T23:59:59Z"), -1);
}

static void test_timeparse_rfc3339_leap_day(void **state)
{
    (void)state;
    assert_int_equal(rfc3339_ok("2024-02-29T23:59:59Z"), 1709251199);
    assert_int_equal(rfc3339_ok("2000-02-29T00:00:00Z"), 951782400);
}

static void test_timeparse_rfc3339_after_2038(void **state)
{
    (void)state;
    assert_true(rfc3339_ok("2038-01-19T03:14:08Z") == INT64_C(2147483648));
    assert_true(rfc3339_ok("2100-01-01T00:00:00Z") == INT64_C(4102444800));
}

static void test_timeparse_rfc3339_rejects_bad_month(void **state)
{
    (void)state;
    expect_rfc3339_rejected("2024-13-01T00:00:00Z");
    expect_rfc3339_rejected("2024-00-01T00:00:00Z");
}

static void test_timeparse_rfc3339_rejects_bad_day(void **state)
{
    (void)state;
    expect_rfc3339_rejected("2024-01-00T00:00:00Z");
    expect_rfc3339_rejected("2024-01-32T00:00:00Z");
    expect_rfc3339_rejected("2024-04-31T00:00:00Z");
    expect_rfc3339_rejected("2024-02-30T00:00:00Z");
}

/* RFC 3339 section 5.7: the day must exist in that month and year. */
static void test_timeparse_rfc3339_rejects_feb29_common_year(void **state)
{
    (void)state;
    expect_rfc3339_rejected("2023-02-29T00:00:00Z");
    expect_rfc3339_rejected("1900-02-29T00:00:00Z");
}

static void test_timeparse_rfc3339_rejects_bad_time(void **state)
{
    (void)state;
    expect_rfc3339_rejected("2024-05-01T24:00:00Z");
    expect_rfc3339_rejected("2024-05-01T12:60:00Z");
    expect_rfc3339_rejected("2024-05-01T12:00:61Z");
}

static void test_timeparse_rfc3339_rejects_bad_offset(void **state)
{
    (void)state;
    expect_rfc3339_rejected("2024-05-01T12:00:00+0200");
    expect_rfc3339_rejected("2024-05-01T12:00:00+24:00");
    expect_rfc3339_rejected("2024-05-01T12:00:00+02:60");
    expect_rfc3339_rejected("2024-05-01T12:00:00+2:00");
}

static void test_timeparse_rfc3339_rejects_missing_zone(void **state)
{
    (void)state;
    expect_rfc3339_rejected("2024-05-01T12:00:00");
    expect_rfc3339_rejected("2024-05-01T12:00:00.5");
}

static void test_timeparse_rfc3339_rejects_trailing_junk(void **state)
{
    (void)state;
    expect_rfc3339_rejected("2024-05-01T12:00:00Zjunk");
    expect_rfc3339_rejected("2024-05-01T12:00:00Z\n");
    expect_rfc3339_rejected("2024-05-01T12:00:00Z ");
    expect_rfc3339_rejected("2024-05-01T12:00:00+02:00:00");
}

static void test_timeparse_rfc3339_rejects_malformed(void **state)
{
    (void)state;
    expect_rfc3339_rejected("");
    expect_rfc3339_rejected("2024-05-01");
    expect_rfc3339_rejected("2024-05-01X12:00:00Z");
    expect_rfc3339_rejected("2024-5-01T12:00:00Z");
    expect_rfc3339_rejected("24-05-01T12:00:00Z");
    expect_rfc3339_rejected("2024-05-01T12:00:00.Z");
    expect_rfc3339_rejected("2024-05-01T12:00Z");
    expect_rfc3339_rejected(" 2024-05-01T12:00:00Z");
}

static void test_timeparse_rfc3339_length_argument_respected(void **state)
{
    const char *text = "2024-05-01T12:00:00Zjunk";
    int64_t seconds = 0;

    (void)state;
    assert_int_equal(timeparse_rfc3339(text, 20, &seconds), 0);
    assert_int_equal(seconds, MAY_FIRST_NOON);
    /* Cut inside the zone: nothing beyond len may be read. */
    assert_int_equal(timeparse_rfc3339(text, 19, &seconds), -1);
}

/*** --now ***/

static void test_timeparse_instant_unix_seconds(void **state)
{
    int64_t seconds = -1;

    (void)state;
    assert_int_equal(timeparse_instant("1733000000", &seconds), 0);
    assert_int_equal(seconds, 1733000000);
}

static void test_timeparse_instant_zero(void **state)
{
    int64_t seconds = -1;

    (void)state;
    assert_int_equal(timeparse_instant("0", &seconds), 0);
    assert_int_equal(seconds, 0);
}

static void test_timeparse_instant_rfc3339(void **state)
{
    int64_t seconds = -1;

    (void)state;
    assert_int_equal(timeparse_instant("2024-05-01T12:00:00Z", &seconds), 0);
    assert_int_equal(seconds, MAY_FIRST_NOON);
}

static void test_timeparse_instant_rejects(void **state)
{
    static const char *const bad[] = {
        "", "-5", "1733000000x", "1733000000 ", " 1733000000", "1.5",
        "99999999999999999999", "now", "30d",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t seconds = -12345;
        if (timeparse_instant(bad[i], &seconds) == 0)
            fail_msg("--now \"%s\" was accepted as %lld", bad[i],
                     (long long)seconds);
    }
}

/*** formatting ***/

static void test_timeparse_format_epoch(void **state)
{
    char buf[32];

    (void)state;
    timeparse_format(0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
}

static void test_timeparse_format_2038(void **state)
{
    char buf[32];

    (void)state;
    timeparse_format(INT64_C(2147483647), buf);
    assert_string_equal(buf, "2038-01-19T03:14:07Z");
    timeparse_format(INT64_C(2147483648), buf);
    assert_string_equal(buf, "2038-01-19T03:14:08Z");
}

static void test_timeparse_format_far_future(void **state)
{
    char buf[32];

    (void)state;
    timeparse_format(INT64_C(4102444800), buf);
    assert_string_equal(buf, "2100-01-01T00:00:00Z");
    timeparse_format(INT64_C(253402300799), buf);
    assert_string_equal(buf, "9999-12-31T23:59:59Z");
}

static void test_timeparse_format_leap_day(void **state)
{
    char buf[32];

    (void)state;
    timeparse_format(951782400, buf);
    assert_string_equal(buf, "2000-02-29T00:00:00Z");
}

static void test_timeparse_format_before_epoch(void **state)
{
    char buf[32];

    (void)state;
    timeparse_format(-1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59Z");
}

static void test_timeparse_format_round_trip(void **state)
{
    static const int64_t times[] = {
        0,
        1,
        59,
        86399,
        86400,
        951782399,
        951782400,
        MAY_FIRST_NOON,
        1733000000,
        INT64_C(2147483647),
        INT64_C(2147483648),
        INT64_C(4107542399),
        INT64_C(4102444800),
        INT64_C(253402300799),
    };

    (void)state;
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        char buf[32];
        int64_t back = -12345;

        timeparse_format(times[i], buf);
        if (timeparse_rfc3339(buf, strlen(buf), &back) != 0)
            fail_msg("formatted %lld as \"%s\", which does not parse",
                     (long long)times[i], buf);
        if (back != times[i])
            fail_msg("%lld formatted as \"%s\" parses back as %lld",
                     (long long)times[i], buf, (long long)back);
    }
}

/* Every day boundary of 2023 and 2024 survives the round trip. */
static void test_timeparse_format_round_trip_daily(void **state)
{
    int64_t start = INT64_C(1672531200); /* 2023-01-01T00:00:00Z */

    (void)state;
    for (int64_t day = 0; day < 731; day++) {
        int64_t t = start + day * 86400 + 43199;
        char buf[32];
        int64_t back = -12345;

        timeparse_format(t, buf);
        if (timeparse_rfc3339(buf, strlen(buf), &back) != 0 || back != t)
            fail_msg("%lld formatted as \"%s\" parses back as %lld",
                     (long long)t, buf, (long long)back);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeparse_duration_days),
        cmocka_unit_test(test_timeparse_duration_combined),
        cmocka_unit_test(test_timeparse_duration_minutes),
        cmocka_unit_test(test_timeparse_duration_weeks),
        cmocka_unit_test(test_timeparse_duration_seconds),
        cmocka_unit_test(test_timeparse_duration_zero),
        cmocka_unit_test(test_timeparse_duration_repeated_unit),
        cmocka_unit_test(test_timeparse_duration_rejects_empty),
        cmocka_unit_test(test_timeparse_duration_rejects_unit_only),
        cmocka_unit_test(test_timeparse_duration_rejects_missing_unit),
        cmocka_unit_test(test_timeparse_duration_rejects_unknown_unit),
        cmocka_unit_test(test_timeparse_duration_rejects_negative),
        cmocka_unit_test(test_timeparse_duration_rejects_spaces),
        cmocka_unit_test(test_timeparse_duration_rejects_fraction),
        cmocka_unit_test(test_timeparse_duration_rejects_overflow),
        cmocka_unit_test(test_timeparse_duration_large_fits),
        cmocka_unit_test(test_timeparse_rfc3339_epoch),
        cmocka_unit_test(test_timeparse_rfc3339_utc),
        cmocka_unit_test(test_timeparse_rfc3339_positive_offset),
        cmocka_unit_test(test_timeparse_rfc3339_negative_offset),
        cmocka_unit_test(test_timeparse_rfc3339_offset_crosses_day),
        cmocka_unit_test(test_timeparse_rfc3339_zero_offset),
        cmocka_unit_test(test_timeparse_rfc3339_fraction_truncated),
        cmocka_unit_test(test_timeparse_rfc3339_fraction_with_offset),
        cmocka_unit_test(test_timeparse_rfc3339_lowercase),
        cmocka_unit_test(test_timeparse_rfc3339_before_epoch),
        cmocka_unit_test(test_timeparse_rfc3339_leap_day),
        cmocka_unit_test(test_timeparse_rfc3339_after_2038),
        cmocka_unit_test(test_timeparse_rfc3339_rejects_bad_month),
        cmocka_unit_test(test_timeparse_rfc3339_rejects_bad_day),
        cmocka_unit_test(test_timeparse_rfc3339_rejects_feb29_common_year),
        cmocka_unit_test(test_timeparse_rfc3339_rejects_bad_time),
        cmocka_unit_test(test_timeparse_rfc3339_rejects_bad_offset),
        cmocka_unit_test(test_timeparse_rfc3339_rejects_missing_zone),
        cmocka_unit_test(test_timeparse_rfc3339_rejects_trailing_junk),
        cmocka_unit_test(test_timeparse_rfc3339_rejects_malformed),
        cmocka_unit_test(test_timeparse_rfc3339_length_argument_respected),
        cmocka_unit_test(test_timeparse_instant_unix_seconds),
        cmocka_unit_test(test_timeparse_instant_zero),
        cmocka_unit_test(test_timeparse_instant_rfc3339),
        cmocka_unit_test(test_timeparse_instant_rejects),
        cmocka_unit_test(test_timeparse_format_epoch),
        cmocka_unit_test(test_timeparse_format_2038),
        cmocka_unit_test(test_timeparse_format_far_future),
        cmocka_unit_test(test_timeparse_format_leap_day),
        cmocka_unit_test(test_timeparse_format_before_epoch),
        cmocka_unit_test(test_timeparse_format_round_trip),
        cmocka_unit_test(test_timeparse_format_round_trip_daily),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
