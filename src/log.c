#include "log.h"

#include <stdarg.h>
#include <stdio.h>

enum log_level log_max_level = LOG_WARNING;
unsigned long log_warning_count;
unsigned long log_error_count;

static const char *const level_names[] = {"error", "warning", "info",
                                          "debug"};

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    if (level == LOG_ERROR)
        log_error_count++;
    else if (level == LOG_WARNING)
        log_warning_count++;
    if (level > log_max_level)
        return;
    fprintf(stderr, "regprune: %s: ", level_names[level]);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
