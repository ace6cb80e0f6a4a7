/*
 * Fuzz the strict digest parsers that read link files and storage path
 * components, and the digest interning table fed by them.
 */
#include "fuzz.h"

#include "digest.h"

/* Intern every 32-byte slice of the input, with variants that push the
 * table past its first rehash, and check that each digest keeps its id. */
static void check_table(const uint8_t *data, size_t size)
{
    enum { VARIANTS = 8 };
    struct digest_table table;
    size_t slices = size / 32;

    digest_table_init(&table);
    for (size_t i = 0; i < slices; i++) {
        for (unsigned v = 0; v < VARIANTS; v++) {
            struct digest d;
            uint32_t id;

            memcpy(d.bytes, data + i * 32, 32);
            d.bytes[31] ^= (uint8_t)v;
            id = digest_table_intern(&table, &d);
            FUZZ_CHECK(id < table.count);
            FUZZ_CHECK(memcmp(&table.digests[id], &d, sizeof(d)) == 0);
            FUZZ_CHECK(digest_table_intern(&table, &d) == id);
        }
    }
    for (size_t i = 0; i < slices; i++) {
        struct digest d;

        memcpy(d.bytes, data + i * 32, 32);
        FUZZ_CHECK(digest_table_find(&table, &d) != DIGEST_NONE);
    }
    FUZZ_CHECK(table.count <= slices * VARIANTS);
    digest_table_free(&table);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy without a NUL, so a read past len is a bug. */
    char *text = malloc(size ? size : 1);
    char out[DIGEST_TEXT_LEN + 1];
    char hex[DIGEST_HEX_LEN + 1];
    struct digest d;

    if (!text)
        abort();
    memcpy(text, data, size);

    if (digest_parse(text, size, &d) == 0) {
        FUZZ_CHECK(size == DIGEST_TEXT_LEN);
        digest_to_text(&d, out);
        FUZZ_CHECK(strlen(out) == DIGEST_TEXT_LEN);
        FUZZ_CHECK(memcmp(out, text, size) == 0);
    }
    if (digest_parse_hex(text, size, &d) == 0) {
        FUZZ_CHECK(size == DIGEST_HEX_LEN);
        digest_to_hex(&d, hex);
        FUZZ_CHECK(strlen(hex) == DIGEST_HEX_LEN);
        FUZZ_CHECK(memcmp(hex, text, size) == 0);
    }
    /* A link file read with its trailing newline must be rejected. */
    if (size > 0 && text[size - 1] == '\n')
        FUZZ_CHECK(digest_parse(text, size, &d) != 0);

    check_table(data, size);
    free(text);
    return 0;
}
