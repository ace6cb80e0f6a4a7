/*
 * PCRE2 regular expressions for policies: each pattern is compiled once per
 * run and cached; matching runs under match and depth limits so that a
 * pathological pattern fails instead of hanging the run.
 */
#ifndef REGPRUNE_RX_H
#define REGPRUNE_RX_H

#include <stddef.h>

struct rx_cache;

struct rx_cache *rx_cache_new(void);
void rx_cache_free(struct rx_cache *cache);

/*
 * Match subject against pattern, anchored at both ends when whole is set.
 * Return 1 on a match, 0 on none, -1 on an invalid pattern or a match that
 * hit a limit; then err (of err_size bytes) says why.
 */
int rx_match(struct rx_cache *cache, const char *pattern, size_t pattern_len,
             const char *subject, size_t subject_len, int whole, char *err,
             size_t err_size);

#endif
