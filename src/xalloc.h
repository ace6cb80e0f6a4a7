/*
 * Allocation wrappers that never return NULL: on failure they print the
 * requested size and abort, so callers do not check their results.
 */
#ifndef REGPRUNE_XALLOC_H
#define REGPRUNE_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Grow an array of elem_size items to hold at least need items. */
void *xgrow(void *ptr, size_t *cap, size_t need, size_t elem_size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Return a newly allocated formatted string; the caller frees it. */
char *xvasprintf(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));
char *xasprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif
