#define PCRE2_CODE_UNIT_WIDTH 8
#include "rx.h"

#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "xalloc.h"

/* Enough for any sane tag pattern; a runaway backtrack fails quickly. */
#define RX_MATCH_LIMIT 1000000
#define RX_DEPTH_LIMIT 10000
#define RX_BUCKETS 256

struct rx_entry {
    struct rx_entry *next;
    char *pattern;
    size_t pattern_len;
    int whole;
    pcre2_code *code;
};

struct rx_cache {
    struct rx_entry *buckets[RX_BUCKETS];
    pcre2_match_context *match_context;
    pcre2_match_data *match_data;
};

struct rx_cache *rx_cache_new(void)
{
    struct rx_cache *cache = xcalloc(1, sizeof(*cache));

    cache->match_context = pcre2_match_context_create(NULL);
    cache->match_data = pcre2_match_data_create(1, NULL);
    if (!cache->match_context || !cache->match_data)
        abort();
    pcre2_set_match_limit(cache->match_context, RX_MATCH_LIMIT);
    pcre2_set_depth_limit(cache->match_context, RX_DEPTH_LIMIT);
    return cache;
}

void rx_cache_free(struct rx_cache *cache)
{
    if (!cache)
        return;
    for (size_t i = 0; i < RX_BUCKETS; i++) {
        struct rx_entry *e = cache->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            pcre2_code_free(e->code);
            free(e->pattern);
            free(e);
        }
    }
    pcre2_match_data_free(cache->match_data);
    pcre2_match_context_free(cache->match_context);
    free(cache);
}

static size_t hash_pattern(const char *s, size_t len, int whole)
{
    size_t h = 1469598103934665603u ^ (size_t)whole;

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h % RX_BUCKETS;
}

static pcre2_code *lookup(struct rx_cache *cache, const char *pattern,
                          size_t len, int whole, char *err, size_t err_size)
{
    size_t b = hash_pattern(pattern, len, whole);
    struct rx_entry *e;
    pcre2_code *code;
    int code_err;
    PCRE2_SIZE offset;
    uint32_t options = PCRE2_UTF | (whole ? PCRE2_ANCHORED | PCRE2_ENDANCHORED
                                          : 0);

    for (e = cache->buckets[b]; e; e = e->next)
        if (e->whole == whole && e->pattern_len == len &&
            memcmp(e->pattern, pattern, len) == 0)
            return e->code;
    code = pcre2_compile((PCRE2_SPTR)pattern, len, options, &code_err, &offset,
                         NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code_err, msg, sizeof(msg));
        snprintf(err, err_size, "invalid regular expression '%.*s': %s at "
                 "offset %zu", (int)len, pattern, (const char *)msg,
                 (size_t)offset);
        return NULL;
    }
    e = xmalloc(sizeof(*e));
    e->pattern = xstrndup(pattern, len);
    e->pattern_len = len;
    e->whole = whole;
    e->code = code;
    e->next = cache->buckets[b];
    cache->buckets[b] = e;
    return code;
}

int rx_match(struct rx_cache *cache, const char *pattern, size_t pattern_len,
             const char *subject, size_t subject_len, int whole, char *err,
             size_t err_size)
{
    pcre2_code *code = lookup(cache, pattern, pattern_len, whole, err,
                              err_size);
    int rc;

    if (!code)
        return -1;
    rc = pcre2_match(code, (PCRE2_SPTR)subject, subject_len, 0, 0,
                     cache->match_data, cache->match_context);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof(msg));
        snprintf(err, err_size, "matching '%.*s' against '%.*s' failed: %s",
                 (int)pattern_len, pattern, (int)subject_len, subject,
                 (const char *)msg);
    }
    return -1;
}
