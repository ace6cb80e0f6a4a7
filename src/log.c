#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "xalloc.h"

enum log_level log_max_level = LOG_WARNING;
unsigned long log_warning_count;
unsigned long log_error_count;

static const char *const level_names[] = {"error", "warning", "info",
                                          "debug"};

void log_msg(enum log_level level, const char *fmt, ...)
{
    char small[1024], *text = small;
    va_list ap;
    int n;

    if (level == LOG_ERROR)
        log_error_count++;
    else if (level == LOG_WARNING)
        log_warning_count++;
    if (level > log_max_level)
        return;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(small)) {
        text = xmalloc((size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    /* Names come from the tree; keep their control characters from
     * reaching the terminal. */
    for (char *c = text; *c; c++)
        if (((unsigned char)*c < 0x20 && *c != '\n' && *c != '\t') ||
            *c == 0x7f)
            *c = '?';
    fprintf(stderr, "regprune: %s: %s\n", level_names[level], text);
    if (text != small)
        free(text);
}
