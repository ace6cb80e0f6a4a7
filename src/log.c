#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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
    log_progress_done();
    fprintf(stderr, "regprune: %s: %s\n", level_names[level], text);
    if (text != small)
        free(text);
}

char *log_printable(const char *s)
{
    char *copy;

    if (!s)
        return NULL;
    copy = xstrdup(s);
    for (unsigned char *c = (unsigned char *)copy; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            *c = '?';
    return copy;
}

/* -1 until known, then whether progress lines are shown. */
static int progress_enabled = -1;
static int progress_shown;
static struct timespec progress_last, progress_start;

void log_progress(const char *fmt, ...)
{
    struct timespec now;
    va_list ap;
    double since_last;

    if (progress_enabled < 0) {
        progress_enabled = isatty(STDERR_FILENO) && log_max_level >= LOG_WARNING;
        clock_gettime(CLOCK_MONOTONIC, &progress_start);
    }
    if (!progress_enabled)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    since_last = (double)(now.tv_sec - progress_last.tv_sec) +
                 (double)(now.tv_nsec - progress_last.tv_nsec) / 1e9;
    if (since_last < 0.5)
        return;
    progress_last = now;
    fputs("\r\033[Kregprune: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ", %lds", (long)(now.tv_sec - progress_start.tv_sec));
    fflush(stderr);
    progress_shown = 1;
}

void log_progress_done(void)
{
    if (!progress_shown)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    progress_shown = 0;
}
