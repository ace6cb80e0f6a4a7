/*
 * Fuzz tag name ordering. The input contains up to three names separated by
 * newlines. The comparisons must be reflexive, antisymmetric and
 * transitive, since regprune.sort hands them to qsort_r.
 */
#include "fuzz.h"

#include "version.h"

enum { NAMES = 3 };

typedef int (*compare_fn)(const char *a, const char *b);

static void check_version(const char *s)
{
    struct version v;
    size_t len = strlen(s);

    if (version_parse(s, &v) != 0)
        return;
    FUZZ_CHECK(v.nparts >= 1 && v.nparts <= VERSION_MAX_PARTS);
    for (int i = v.nparts; i < VERSION_MAX_PARTS; i++)
        FUZZ_CHECK(v.parts[i] == 0);
    if (v.prerelease) {
        FUZZ_CHECK(v.prerelease > s && v.prerelease[-1] == '-');
        FUZZ_CHECK(v.prerelease + v.prerelease_len <= s + len);
        FUZZ_CHECK(v.prerelease_len > 0);
    }
    if (v.build) {
        FUZZ_CHECK(v.build > s && v.build[-1] == '+');
        FUZZ_CHECK(v.build + v.build_len == s + len);
        FUZZ_CHECK(v.build_len > 0);
    }
    FUZZ_CHECK(version_compare(&v, &v) == 0);
}

/* Reflexive, antisymmetric, and zero only for identical names. */
static void check_pair(compare_fn compare, const char *a, const char *b)
{
    int ab = fuzz_sign(compare(a, b));
    int ba = fuzz_sign(compare(b, a));

    FUZZ_CHECK(compare(a, a) == 0);
    FUZZ_CHECK(ab == -ba);
    FUZZ_CHECK((ab == 0) == (strcmp(a, b) == 0));
}

static void check_transitive(compare_fn compare, const char *a, const char *b,
                             const char *c)
{
    int ab = fuzz_sign(compare(a, b));
    int bc = fuzz_sign(compare(b, c));

    if (ab != 0 && ab == bc)
        FUZZ_CHECK(fuzz_sign(compare(a, c)) == ab);
}

/* When both names are versions, the name order follows precedence unless
 * precedence ties. */
static void check_precedence(const char *a, const char *b)
{
    struct version va, vb;
    int by_version, by_name;

    if (version_parse(a, &va) != 0 || version_parse(b, &vb) != 0)
        return;
    by_version = fuzz_sign(version_compare(&va, &vb));
    by_name = fuzz_sign(version_compare_names(a, b));
    FUZZ_CHECK(by_version == -fuzz_sign(version_compare(&vb, &va)));
    if (by_version != 0)
        FUZZ_CHECK(by_version == by_name);
}

/* The length-taking form agrees with the string form both ways round. */
static void check_natural_n(const char *a, const char *b)
{
    const char *names[2] = {a, b};
    size_t lens[2] = {strlen(a), strlen(b)};
    int ab = fuzz_sign(natural_compare_n(names[0], lens[0], names[1], lens[1]));
    int ba = fuzz_sign(natural_compare_n(names[1], lens[1], names[0], lens[0]));

    FUZZ_CHECK(ab == fuzz_sign(natural_compare(a, b)));
    FUZZ_CHECK(ab == -ba);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const compare_fn compares[] = {version_compare_names,
                                          natural_compare};
    char *names[NAMES];
    size_t start = 0;

    for (int i = 0; i < NAMES; i++) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - data) : size;

        names[i] = fuzz_strndup(data + start, end - start);
        start = nl ? end + 1 : size;
    }
    for (int i = 0; i < NAMES; i++)
        check_version(names[i]);
    for (size_t f = 0; f < sizeof(compares) / sizeof(compares[0]); f++) {
        for (int i = 0; i < NAMES; i++)
            for (int j = 0; j < NAMES; j++)
                check_pair(compares[f], names[i], names[j]);
        for (int i = 0; i < NAMES; i++)
            for (int j = 0; j < NAMES; j++)
                for (int k = 0; k < NAMES; k++)
                    check_transitive(compares[f], names[i], names[j], names[k]);
    }
    check_precedence(names[0], names[1]);
    check_natural_n(names[0], names[1]);
    for (int i = 0; i < NAMES; i++)
        free(names[i]);
    return 0;
}
