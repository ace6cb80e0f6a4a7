#include "timeparse.h"

#include <stdio.h>
#include <string.h>

/* Seconds per unit letter; 0 for letters that are not units. */
static int64_t unit_seconds(char c)
{
    switch (c) {
    case 's':
        return 1;
    case 'm':
        return 60;
    case 'h':
        return 3600;
    case 'd':
        return 86400;
    case 'w':
        return 7 * 86400;
    default:
        return 0;
    }
}

int timeparse_duration(const char *s, int64_t *seconds)
{
    int64_t total = 0;

    if (strcmp(s, "0") == 0) {
        *seconds = 0;
        return 0;
    }
    if (*s == '\0')
        return -1;
    while (*s) {
        int64_t n = 0, unit;

        if (*s < '0' || *s > '9')
            return -1;
        while (*s >= '0' && *s <= '9') {
            if (n > (INT64_MAX - 9) / 10)
                return -1;
            n = n * 10 + (*s++ - '0');
        }
        unit = unit_seconds(*s);
        if (unit == 0)
            return -1;
        s++;
        if (n > (INT64_MAX - total) / unit)
            return -1;
        total += n * unit;
    }
    *seconds = total;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian civil date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int read_digits(const char *s, size_t len, size_t *pos, int count,
                       int *out)
{
    int v = 0;

    for (int i = 0; i < count; i++) {
        if (*pos >= len || s[*pos] < '0' || s[*pos] > '9')
            return -1;
        v = v * 10 + (s[(*pos)++] - '0');
    }
    *out = v;
    return 0;
}

static int expect_char(const char *s, size_t len, size_t *pos, char c)
{
    if (*pos >= len || s[*pos] != c)
        return -1;
    (*pos)++;
    return 0;
}

int timeparse_rfc3339(const char *s, size_t len, int64_t *seconds)
{
    static const int month_days[] = {31, 29, 31, 30, 31, 30,
                                      31, 31, 30, 31, 30, 31};
    size_t pos = 0;
    int y, mo, d, h, mi, sec, off_h, off_m, sign;
    int64_t t;

    if (read_digits(s, len, &pos, 4, &y) || expect_char(s, len, &pos, '-') ||
        read_digits(s, len, &pos, 2, &mo) || expect_char(s, len, &pos, '-') ||
        read_digits(s, len, &pos, 2, &d))
        return -1;
    if (pos >= len || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' '))
        return -1;
    pos++;
    if (read_digits(s, len, &pos, 2, &h) || expect_char(s, len, &pos, ':') ||
        read_digits(s, len, &pos, 2, &mi) ||
        expect_char(s, len, &pos, ':') || read_digits(s, len, &pos, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1] || h > 23 ||
        mi > 59 || sec > 60)
        return -1;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return -1;
    if (pos < len && s[pos] == '.') {
        pos++;
        if (pos >= len || s[pos] < '0' || s[pos] > '9')
            return -1;
        while (pos < len && s[pos] >= '0' && s[pos] <= '9')
            pos++;
    }
    if (pos >= len)
        return -1;
    if (s[pos] == 'Z' || s[pos] == 'z') {
        pos++;
        sign = 0;
        off_h = off_m = 0;
    } else if (s[pos] == '+' || s[pos] == '-') {
        sign = s[pos++] == '-' ? -1 : 1;
        if (read_digits(s, len, &pos, 2, &off_h) ||
            expect_char(s, len, &pos, ':') ||
            read_digits(s, len, &pos, 2, &off_m) || off_h > 23 || off_m > 59)
            return -1;
    } else {
        return -1;
    }
    if (pos != len)
        return -1;
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= sign * (off_h * 3600 + off_m * 60);
    *seconds = t;
    return 0;
}

/* The last second of year 9999: later clocks make age arithmetic
 * overflow and mean nothing here. */
#define INSTANT_MAX INT64_C(253402300799)

int timeparse_instant(const char *s, int64_t *seconds)
{
    const char *p = s;
    int64_t n = 0;

    if (*p >= '0' && *p <= '9') {
        while (*p >= '0' && *p <= '9') {
            if (n > (INT64_MAX - 9) / 10)
                return -1;
            n = n * 10 + (*p++ - '0');
        }
        if (*p == '\0') {
            if (n > INSTANT_MAX)
                return -1;
            *seconds = n;
            return 0;
        }
    }
    return timeparse_rfc3339(s, strlen(s), seconds);
}

void timeparse_format(int64_t t, char buf[32])
{
    /* Floor division and its remainder, with no product that could
     * overflow near the ends of int64_t. */
    int64_t days = t / 86400 - (t % 86400 < 0);
    int64_t rem = t % 86400 < 0 ? t % 86400 + 86400 : t % 86400;
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    int64_t y = yoe + era * 400 + (m <= 2);

    snprintf(buf, 32, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d,
             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
}
