/*
 * sha256 digests as 32 raw bytes, their strict text form, and an interning
 * table that numbers every distinct digest a run meets.
 */
#ifndef REGPRUNE_DIGEST_H
#define REGPRUNE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_HEX_LEN 64
/* "sha256:" plus 64 hex digits. */
#define DIGEST_TEXT_LEN (7 + DIGEST_HEX_LEN)
#define DIGEST_NONE UINT32_MAX

struct digest {
    uint8_t bytes[32];
};

/*
 * Parse exactly "sha256:<64 lowercase hex>" of length len. Anything else,
 * including a trailing newline or uppercase hex, returns -1.
 */
int digest_parse(const char *text, size_t len, struct digest *out);
/* Parse exactly 64 lowercase hex digits, as in a storage path component. */
/* The value of one lowercase hex digit, or -1 for any other character. */
int digest_hex_value(char c);
int digest_parse_hex(const char *hex, size_t len, struct digest *out);
/* Write 64 lowercase hex digits and a NUL into hex[65]. */
void digest_to_hex(const struct digest *d, char hex[DIGEST_HEX_LEN + 1]);
/* Write "sha256:<hex>" and a NUL into text[72]. */
void digest_to_text(const struct digest *d, char text[DIGEST_TEXT_LEN + 1]);

/* Digest interning: each distinct digest gets a dense id from 0. */
struct digest_table {
    struct digest *digests; /* indexed by id */
    size_t count;
    size_t capacity;
    uint32_t *slots; /* open addressing; DIGEST_NONE marks an empty slot */
    size_t slot_mask;
};

void digest_table_init(struct digest_table *t);
void digest_table_free(struct digest_table *t);
/* Return the id of d, adding it when absent. */
uint32_t digest_table_intern(struct digest_table *t, const struct digest *d);
/* Return the id of d, or DIGEST_NONE when absent. */
uint32_t digest_table_find(const struct digest_table *t,
                           const struct digest *d);

#endif
