/*
 * Diagnostics on stderr, prefixed "regprune: <severity>: ". stdout is left
 * to the report so that --json output can be piped.
 */
#ifndef REGPRUNE_LOG_H
#define REGPRUNE_LOG_H

enum log_level { LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

extern enum log_level log_max_level;

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...)                                                          \
    do {                                                                       \
        if (log_max_level >= LOG_INFO)                                         \
            log_msg(LOG_INFO, __VA_ARGS__);                                    \
    } while (0)
#define log_debug(...)                                                         \
    do {                                                                       \
        if (log_max_level >= LOG_DEBUG)                                        \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                   \
    } while (0)

/*
 * Progress on stderr for long scans: a line rewritten in place at most
 * every half second, only when stderr is a terminal and -q is not given.
 * log_progress_done clears it.
 */
void log_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_progress_done(void);

/*
 * Return a copy of s (NULL for NULL) for text output, with each control
 * character replaced by '?', so that a name or a policy's reason cannot
 * start a line of its own or send escape sequences to a terminal. The
 * caller frees it.
 */
char *log_printable(const char *s);

/* Number of warnings and errors emitted so far. */
extern unsigned long log_warning_count;
extern unsigned long log_error_count;

#endif
