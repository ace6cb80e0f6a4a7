#include "version.h"

#include <string.h>

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '-';
}

/* Check a dot-separated list of non-empty identifiers of length len. */
static int valid_identifiers(const char *s, size_t len)
{
    size_t run = 0;

    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (run == 0)
                return 0;
            run = 0;
        } else if (is_ident_char(s[i])) {
            run++;
        } else {
            return 0;
        }
    }
    return run > 0;
}

/* "<commits>-g<4 to 40 hex>[-dirty]": what git describe appends. */
static long long parse_describe(const char *s, size_t len)
{
    size_t i = 0, hex = 0;
    long long commits = 0;

    while (i < len && is_digit(s[i]) && i < 9)
        commits = commits * 10 + (s[i++] - '0');
    if (i == 0 || i + 2 > len || s[i] != '-' || s[i + 1] != 'g')
        return -1;
    i += 2;
    while (i < len && ((s[i] >= '0' && s[i] <= '9') ||
                       (s[i] >= 'a' && s[i] <= 'f'))) {
        i++;
        hex++;
    }
    if (hex < 4 || hex > 40)
        return -1;
    if (i == len || (len - i == 6 && memcmp(s + i, "-dirty", 6) == 0))
        return commits;
    return -1;
}

int version_parse(const char *s, struct version *v)
{
    const char *p = s;
    int has_v = 0;

    memset(v, 0, sizeof(*v));
    v->describe_commits = -1;
    if (*p == 'v' || *p == 'V') {
        has_v = 1;
        p++;
    }
    for (;;) {
        uint64_t n = 0;
        int digits = 0;

        if (v->nparts == VERSION_MAX_PARTS)
            return -1;
        while (is_digit(*p)) {
            if (++digits > 18)
                return -1;
            n = n * 10 + (uint64_t)(*p++ - '0');
        }
        if (digits == 0)
            return -1;
        v->parts[v->nparts++] = n;
        if (*p != '.')
            break;
        p++;
    }
    if (v->nparts < 2 && !has_v)
        return -1;
    if (*p == '-') {
        const char *end = strchr(p, '+');
        size_t len = end ? (size_t)(end - p - 1) : strlen(p + 1);

        if (!valid_identifiers(p + 1, len))
            return -1;
        v->describe_commits = parse_describe(p + 1, len);
        if (v->describe_commits < 0) {
            v->prerelease = p + 1;
            v->prerelease_len = len;
        }
        p += 1 + len;
    }
    if (*p == '+') {
        size_t len = strlen(p + 1);

        if (!valid_identifiers(p + 1, len))
            return -1;
        v->build = p + 1;
        v->build_len = len;
        p += 1 + len;
    }
    return *p == '\0' ? 0 : -1;
}

static int all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_digit(s[i]))
            return 0;
    return len > 0;
}

/* Compare digit strings as numbers of any length. */
static int compare_numeric(const char *a, size_t alen, const char *b,
                           size_t blen)
{
    int c;

    while (alen > 1 && *a == '0') {
        a++;
        alen--;
    }
    while (blen > 1 && *b == '0') {
        b++;
        blen--;
    }
    if (alen != blen)
        return alen < blen ? -1 : 1;
    c = memcmp(a, b, alen);
    return c < 0 ? -1 : c > 0;
}

static int compare_prerelease(const char *a, size_t alen, const char *b,
                              size_t blen)
{
    while (alen > 0 && blen > 0) {
        const char *adot = memchr(a, '.', alen);
        const char *bdot = memchr(b, '.', blen);
        size_t ai = adot ? (size_t)(adot - a) : alen;
        size_t bi = bdot ? (size_t)(bdot - b) : blen;
        int anum = all_digits(a, ai), bnum = all_digits(b, bi);
        int c;

        if (anum && bnum)
            c = compare_numeric(a, ai, b, bi);
        else if (anum != bnum)
            c = anum ? -1 : 1;
        else
            c = natural_compare_n(a, ai, b, bi);
        if (c)
            return c;
        a += ai;
        alen -= ai;
        b += bi;
        blen -= bi;
        if (alen) {
            a++;
            alen--;
        }
        if (blen) {
            b++;
            blen--;
        }
    }
    return (alen > 0) - (blen > 0);
}

int version_compare(const struct version *a, const struct version *b)
{
    for (int i = 0; i < VERSION_MAX_PARTS; i++) {
        if (a->parts[i] != b->parts[i])
            return a->parts[i] < b->parts[i] ? -1 : 1;
    }
    if (!a->prerelease || !b->prerelease) {
        int c = (a->prerelease == NULL) - (b->prerelease == NULL);
        if (c || a->prerelease)
            return c;
        return (a->describe_commits > b->describe_commits) -
               (a->describe_commits < b->describe_commits);
    }
    return compare_prerelease(a->prerelease, a->prerelease_len,
                              b->prerelease, b->prerelease_len);
}

int natural_compare_n(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i = 0, j = 0;

    while (i < alen && j < blen) {
        if (is_digit(a[i]) && is_digit(b[j])) {
            size_t is = i, js = j;
            int c;

            while (i < alen && is_digit(a[i]))
                i++;
            while (j < blen && is_digit(b[j]))
                j++;
            c = compare_numeric(a + is, i - is, b + js, j - js);
            if (c)
                return c;
        } else {
            unsigned char ca = (unsigned char)a[i++];
            unsigned char cb = (unsigned char)b[j++];
            if (ca != cb)
                return ca < cb ? -1 : 1;
        }
    }
    if (i < alen || j < blen)
        return i < alen ? 1 : -1;
    /* Equal as numbers ("01" and "1"): fall back to bytes for a total order. */
    {
        size_t n = alen < blen ? alen : blen;
        int c = memcmp(a, b, n);
        if (c)
            return c < 0 ? -1 : 1;
        return (alen > blen) - (alen < blen);
    }
}

int natural_compare(const char *a, const char *b)
{
    return natural_compare_n(a, strlen(a), b, strlen(b));
}

int version_compare_names(const char *a, const char *b)
{
    struct version va, vb;
    int a_ok = version_parse(a, &va) == 0;
    int b_ok = version_parse(b, &vb) == 0;

    if (a_ok != b_ok)
        return a_ok ? 1 : -1;
    if (a_ok) {
        int c = version_compare(&va, &vb);
        if (c)
            return c;
    }
    return natural_compare(a, b);
}
