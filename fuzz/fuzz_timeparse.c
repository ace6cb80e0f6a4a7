/*
 * Fuzz the duration, RFC 3339 and --now parsers, and check that formatting
 * an accepted timestamp and parsing it again gives the same instant.
 */
#include "fuzz.h"

#include <inttypes.h>

#include "timeparse.h"

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: four-digit years. */
#define SANE_MIN (-62135596800LL)
#define SANE_MAX 253402300799LL

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Format t, check the text, and parse it back when t is in range. */
static void check_format(int64_t t)
{
    char buf[32];
    int64_t back;

    memset(buf, 'x', sizeof(buf));
    timeparse_format(t, buf);
    FUZZ_CHECK(memchr(buf, '\0', sizeof(buf)) != NULL);
    if (t < SANE_MIN || t > SANE_MAX)
        return;
    FUZZ_CHECK(strlen(buf) == 20);
    if (timeparse_rfc3339(buf, strlen(buf), &back) != 0 || back != t) {
        fprintf(stderr,
                "%" PRId64 " formats as %s, which parses back as "
                "%" PRId64 "\n",
                t, buf, back);
        abort();
    }
}

/*
 * Format t again for an input of the form "YYYY-MM-DDThh:mm:ssZ" with
 * seconds below 60. Any text other than the input means that the parser
 * accepted a date that does not exist and moved it.
 */
static void check_canonical(const char *s, size_t len, int64_t t)
{
    char buf[32];

    if (len != 20 || s[10] != 'T' || s[19] != 'Z' || s[17] == '6')
        return;
    timeparse_format(t, buf);
    if (memcmp(buf, s, 20) != 0) {
        fprintf(stderr, "%.20s parses as %" PRId64 ", which formats as %s\n", s,
                t, buf);
        abort();
    }
}

static void check_duration(const char *s)
{
    int64_t seconds = -1;

    if (timeparse_duration(s, &seconds) != 0)
        return;
    FUZZ_CHECK(seconds >= 0);
    FUZZ_CHECK(s[0] != '\0');
    FUZZ_CHECK(is_digit(s[0]));
}

static void check_instant(const char *s)
{
    int64_t t;
    const char *p = s;
    int64_t n = 0;

    if (timeparse_instant(s, &t) != 0)
        return;
    while (is_digit(*p) && n <= (INT64_MAX - 9) / 10)
        n = n * 10 + (*p++ - '0');
    if (p != s && *p == '\0')
        FUZZ_CHECK(t == n);
    check_format(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size copy for the length-taking parser, NUL-terminated copy
     * for the others. */
    char *raw = malloc(size ? size : 1);
    char *text = fuzz_strndup(data, size);
    int64_t t;

    if (!raw)
        abort();
    memcpy(raw, data, size);
    if (timeparse_rfc3339(raw, size, &t) == 0) {
        check_format(t);
        check_canonical(raw, size, t);
    }
    check_duration(text);
    check_instant(text);
    if (size >= sizeof(t)) {
        memcpy(&t, data, sizeof(t));
        check_format(t);
    }
    free(raw);
    free(text);
    return 0;
}
