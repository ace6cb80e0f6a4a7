#include "digest.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* One more than the value of each lowercase hex digit; 0 for every
 * other byte. */
static const uint8_t hex_values[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,
    ['5'] = 6,  ['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10,
    ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15,
    ['f'] = 16,
};

int digest_hex_value(char c)
{
    return hex_values[(unsigned char)c] - 1;
}

int digest_parse_hex(const char *hex, size_t len, struct digest *out)
{
    const unsigned char *s = (const unsigned char *)hex;
    int bad = 0;

    if (len != DIGEST_HEX_LEN)
        return -1;
    /* An invalid digit makes hi or lo -1, and bad negative; one test at
     * the end. */
    for (size_t i = 0; i < 32; i++) {
        int hi = hex_values[s[2 * i]] - 1, lo = hex_values[s[2 * i + 1]] - 1;
        bad |= hi | lo;
        out->bytes[i] =
            (uint8_t)(((unsigned)hi & 15) << 4 | ((unsigned)lo & 15));
    }
    return bad < 0 ? -1 : 0;
}

int digest_parse(const char *text, size_t len, struct digest *out)
{
    if (len != DIGEST_TEXT_LEN || memcmp(text, "sha256:", 7) != 0)
        return -1;
    return digest_parse_hex(text + 7, DIGEST_HEX_LEN, out);
}

void digest_to_hex(const struct digest *d, char hex[DIGEST_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < 32; i++) {
        hex[2 * i] = digits[d->bytes[i] >> 4];
        hex[2 * i + 1] = digits[d->bytes[i] & 15];
    }
    hex[DIGEST_HEX_LEN] = '\0';
}

void digest_to_text(const struct digest *d, char text[DIGEST_TEXT_LEN + 1])
{
    /* digest_to_hex writes the terminating NUL. */
    memcpy(text, "sha256:", 7); // NOLINT(bugprone-not-null-terminated-result)
    digest_to_hex(d, text + 7);
}

void digest_table_init(struct digest_table *t)
{
    memset(t, 0, sizeof(*t));
    t->slot_mask = 1023;
    t->slots = xmalloc((t->slot_mask + 1) * sizeof(*t->slots));
    memset(t->slots, 0xff, (t->slot_mask + 1) * sizeof(*t->slots));
}

void digest_table_free(struct digest_table *t)
{
    free(t->digests);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* Digests are uniform already, so their first bytes serve as the hash. */
static size_t digest_hash(const struct digest *d)
{
    uint64_t h;

    memcpy(&h, d->bytes, sizeof(h));
    return (size_t)h;
}

static void rehash(struct digest_table *t)
{
    size_t mask = t->slot_mask * 2 + 1;
    uint32_t *slots = xmalloc((mask + 1) * sizeof(*slots));

    memset(slots, 0xff, (mask + 1) * sizeof(*slots));
    for (uint32_t id = 0; id < t->count; id++) {
        size_t i = digest_hash(&t->digests[id]) & mask;
        while (slots[i] != DIGEST_NONE)
            i = (i + 1) & mask;
        slots[i] = id;
    }
    free(t->slots);
    t->slots = slots;
    t->slot_mask = mask;
}

uint32_t digest_table_find(const struct digest_table *t,
                           const struct digest *d)
{
    size_t i = digest_hash(d) & t->slot_mask;

    while (t->slots[i] != DIGEST_NONE) {
        if (memcmp(&t->digests[t->slots[i]], d, sizeof(*d)) == 0)
            return t->slots[i];
        i = (i + 1) & t->slot_mask;
    }
    return DIGEST_NONE;
}

uint32_t digest_table_intern(struct digest_table *t, const struct digest *d)
{
    size_t i;
    uint32_t id;

    /* Keep the load factor at or below one half. */
    if ((t->count + 1) * 2 > t->slot_mask + 1)
        rehash(t);
    i = digest_hash(d) & t->slot_mask;
    while (t->slots[i] != DIGEST_NONE) {
        if (memcmp(&t->digests[t->slots[i]], d, sizeof(*d)) == 0)
            return t->slots[i];
        i = (i + 1) & t->slot_mask;
    }
    id = (uint32_t)t->count;
    if (t->count == t->capacity) {
        /* By half again, not double: less slack in the largest array. */
        t->capacity = t->capacity ? t->capacity + t->capacity / 2 : 1024;
        t->digests = xrealloc(t->digests,
                              t->capacity * sizeof(*t->digests));
    }
    t->digests[t->count++] = *d;
    t->slots[i] = id;
    return id;
}
