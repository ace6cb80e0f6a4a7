/*
 * Parsers for the time values regprune reads: durations such as "30d" or
 * "1d12h", RFC 3339 timestamps (image configs, --now) and Unix seconds.
 * All times are UTC Unix seconds.
 */
#ifndef REGPRUNE_TIMEPARSE_H
#define REGPRUNE_TIMEPARSE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse a duration: one or more <digits><unit> with units s, m, h, d, w
 * ("90m", "1w2d"), or a bare "0". Return 0 and store seconds, or -1.
 */
int timeparse_duration(const char *s, int64_t *seconds);

/*
 * Parse an RFC 3339 timestamp ("2024-05-01T12:00:00Z", optional fraction,
 * "Z" or "+hh:mm"). Fractions are truncated. Return 0 or -1.
 */
int timeparse_rfc3339(const char *s, size_t len, int64_t *seconds);

/* Parse --now: RFC 3339, or a whole number of Unix seconds up to the end
 * of year 9999. */
int timeparse_instant(const char *s, int64_t *seconds);

/* Format t as "YYYY-MM-DDThh:mm:ssZ" into buf[32]. */
void timeparse_format(int64_t t, char buf[32]);

#endif
