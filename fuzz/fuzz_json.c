/*
 * Differential fuzzing of the JSON reader against jansson: both must
 * accept the same texts without NUL bytes, and for an accepted text every
 * value must have the same type and contents in both.
 */
#include "fuzz.h"

#include <jansson.h>

#include "json.h"

static void compare(const struct json_doc *d, int i, json_t *v, int depth);

static void compare_object(const struct json_doc *d, int i, json_t *v,
                           int depth)
{
    const char *key;
    json_t *member;
    size_t found = 0;

    FUZZ_CHECK(json_doc_is(d, i, JSON_T_OBJECT));
    json_object_foreach(v, key, member)
    {
        int got = json_doc_get(d, i, key);
        FUZZ_CHECK(got >= 0);
        compare(d, got, member, depth + 1);
        found++;
    }
    /* Duplicate keys in the text collapse into one in jansson. */
    FUZZ_CHECK(json_doc_size(d, i) >= found);
}

static void compare(const struct json_doc *d, int i, json_t *v, int depth)
{
    if (depth > 100)
        return; /* deep enough; the parse itself went all the way */
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        compare_object(d, i, v, depth);
        break;
    case JSON_ARRAY: {
        int e = json_doc_first(d, i);
        FUZZ_CHECK(json_doc_is(d, i, JSON_T_ARRAY));
        FUZZ_CHECK(json_doc_size(d, i) == json_array_size(v));
        for (size_t k = 0; k < json_array_size(v); k++) {
            compare(d, e, json_array_get(v, k), depth + 1);
            e = json_doc_next(d, e);
        }
        break;
    }
    case JSON_STRING: {
        char *s = json_doc_strdup(d, i);
        FUZZ_CHECK(s != NULL);
        FUZZ_CHECK(strlen(s) == json_string_length(v));
        FUZZ_CHECK(memcmp(s, json_string_value(v), strlen(s)) == 0);
        FUZZ_CHECK(json_doc_streq(d, i, json_string_value(v)));
        free(s);
        break;
    }
    case JSON_INTEGER: {
        int64_t n;
        FUZZ_CHECK(json_doc_integer(d, i, &n) == 0);
        FUZZ_CHECK(n == (int64_t)json_integer_value(v));
        break;
    }
    case JSON_REAL:
        FUZZ_CHECK(json_doc_is(d, i, JSON_T_REAL));
        break;
    case JSON_TRUE:
        FUZZ_CHECK(json_doc_is(d, i, JSON_T_TRUE));
        break;
    case JSON_FALSE:
        FUZZ_CHECK(json_doc_is(d, i, JSON_T_FALSE));
        break;
    case JSON_NULL:
        FUZZ_CHECK(json_doc_is(d, i, JSON_T_NULL));
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    struct json_doc d;
    json_error_t jerr;
    char err[256];
    json_t *v = json_loadb(text, size, 0, &jerr);
    int rc = json_doc_parse(&d, text, size, err, sizeof(err));

    /* jansson's reader skips some NUL bytes outside strings; JSON allows
     * none, so only the reader's own checks apply to such texts. */
    if (memchr(text, '\0', size) != NULL) {
        if (v)
            json_decref(v);
        if (rc == 0)
            json_doc_free(&d);
        free(text);
        return 0;
    }
    if (!v != (rc != 0)) {
        fprintf(stderr, "jansson %s, json_doc_parse %s (%s)\n",
                v ? "accepts" : jerr.text, rc ? "rejects" : "accepts",
                rc ? err : "");
        abort();
    }
    if (v) {
        compare(&d, 0, v, 0);
        json_decref(v);
        json_doc_free(&d);
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }
    free(text);
    return 0;
}
