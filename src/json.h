/*
 * A strict JSON reader for manifests and image configs. One pass checks
 * the text and records every value as a token in one flat array. Strings
 * stay in the text until a caller asks for one unescaped.
 *
 * It accepts what jansson's json_loadb accepts with no flags. It rejects:
 * - a top level that is not an object or array;
 * - control characters, invalid UTF-8, \u0000 and unpaired surrogates in
 *   strings;
 * - integers outside int64_t and numbers too large for a double;
 * - nesting deeper than 2048, and anything but whitespace after the value.
 * A key given twice names its last value.
 */
#ifndef REGPRUNE_JSON_H
#define REGPRUNE_JSON_H

#include <stddef.h>
#include <stdint.h>

enum json_token_type {
    JSON_T_OBJECT,
    JSON_T_ARRAY,
    JSON_T_STRING,
    JSON_T_INTEGER, /* a number without fraction or exponent */
    JSON_T_REAL,
    JSON_T_TRUE,
    JSON_T_FALSE,
    JSON_T_NULL
};

struct json_token {
    uint32_t start;  /* offset in the text; for a string, after the quote */
    uint32_t length; /* bytes; for a string, between the quotes */
    uint32_t next;   /* the token after this value and everything in it */
    uint32_t count;  /* members of an object, elements of an array */
    uint8_t type;    /* enum json_token_type */
    uint8_t escaped; /* a string with at least one backslash */
};

struct json_doc {
    const char *text;
    struct json_token *tokens; /* tokens[0] is the top-level value */
    size_t count, capacity;
};

/*
 * Parse len bytes of text, which must outlive doc. Return 0, or -1 with
 * "line L column C: what" in err and nothing to free.
 */
int json_doc_parse(struct json_doc *doc, const char *text, size_t len,
                   char *err, size_t err_size);
void json_doc_free(struct json_doc *doc);

/* Index of the value of key in object obj, or -1 (also when obj is -1 or
 * not an object). */
int json_doc_get(const struct json_doc *doc, int obj, const char *key);

/* Whether token i exists and has the given type. */
int json_doc_is(const struct json_doc *doc, int i, enum json_token_type type);

/* Elements or members of token i; 0 when i is -1 or a scalar. */
size_t json_doc_size(const struct json_doc *doc, int i);

/*
 * First element of array i, or -1; json_doc_next gives the one after
 * element i. The caller counts json_doc_size(array) elements.
 */
int json_doc_first(const struct json_doc *doc, int i);
int json_doc_next(const struct json_doc *doc, int i);

/*
 * Unescape string i into buf (NUL-terminated) and set *len. Return 0, or
 * -1 when i is not a string or its value does not fit in size bytes.
 */
int json_doc_string(const struct json_doc *doc, int i, char *buf,
                    size_t size, size_t *len);

/* A new copy of string i, unescaped, or NULL when i is not a string. */
char *json_doc_strdup(const struct json_doc *doc, int i);

/* Whether i is a string equal to s. */
int json_doc_streq(const struct json_doc *doc, int i, const char *s);

/* Return 0 with *out set when i is an integer, else -1. */
int json_doc_integer(const struct json_doc *doc, int i, int64_t *out);

/*
 * Call fn for each member of object obj, in text order, with the key's
 * token and the value's; stop when fn returns nonzero.
 */
void json_doc_members(const struct json_doc *doc, int obj,
                      int (*fn)(void *ctx, int key, int value), void *ctx);

#endif
