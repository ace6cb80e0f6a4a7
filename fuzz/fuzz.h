/*
 * Helpers shared by the libFuzzer targets in this folder. A failed check
 * prints what broke and aborts, so libFuzzer saves the input as a crash.
 */
#ifndef REGPRUNE_FUZZ_H
#define REGPRUNE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

/*
 * Return a heap copy of len bytes with a NUL after them, so that ASan
 * reports any read past the end of the piece. The caller frees it.
 */
static inline char *fuzz_strndup(const void *bytes, size_t len)
{
    char *s = malloc(len + 1);

    if (!s)
        abort();
    memcpy(s, bytes, len);
    s[len] = '\0';
    return s;
}

static inline int fuzz_sign(int v)
{
    return (v > 0) - (v < 0);
}

#endif
