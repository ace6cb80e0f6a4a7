/*
 * Version ordering for tag names: semantic versioning 2.0 precedence with
 * an optional "v", partial versions ("1.2") and natural ordering for the
 * rest, so that "1.10" ranks above "1.9".
 */
#ifndef REGPRUNE_VERSION_H
#define REGPRUNE_VERSION_H

#include <stddef.h>
#include <stdint.h>

#define VERSION_MAX_PARTS 4

struct version {
    uint64_t parts[VERSION_MAX_PARTS]; /* missing parts are 0 */
    int nparts;
    const char *prerelease; /* points into the parsed string, or NULL */
    size_t prerelease_len;
    const char *build; /* after "+", or NULL; ignored by precedence */
    size_t build_len;
    /* Commits after the release in a git-describe suffix ("-14-gabc1234"),
     * or -1. Such a version ranks above its release, not below it. */
    long long describe_commits;
};

/*
 * Parse a version: optional "v" or "V", then two to four dot-separated
 * numbers ("v" allows one: "v2"), then optional "-prerelease" and
 * "+build". A pre-release of the form "<n>-g<hex>" (git describe, with an
 * optional "-dirty") sets describe_commits instead. The struct borrows
 * from s. Return 0, or -1 when s is not a version.
 */
int version_parse(const char *s, struct version *v);

/*
 * Compare by semantic-versioning precedence: numbers, then a release above
 * its pre-releases, then pre-release identifiers one by one (numeric ones
 * numerically and below alphanumeric ones, which compare naturally, so
 * "rc9" < "rc10"). Return <0, 0 or >0.
 */
int version_compare(const struct version *a, const struct version *b);

/* Compare with runs of digits taken as numbers: "build-9" < "build-10". */
int natural_compare(const char *a, const char *b);
int natural_compare_n(const char *a, size_t alen, const char *b, size_t blen);

/*
 * Order two tag names: versions above everything that is not a version,
 * versions by precedence, equal precedence and non-versions naturally.
 */
int version_compare_names(const char *a, const char *b);

#endif
