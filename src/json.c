#include "json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* jansson's JSON_PARSER_MAX_DEPTH, so that both accept the same texts. */
#define MAX_DEPTH 2048

struct parser {
    struct json_doc *doc;
    const unsigned char *s;
    size_t len, pos;
    char *err;
    size_t err_size;
};

static int fail(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Write "line L column C: message" for the current position; return -1. */
static int fail(struct parser *p, const char *fmt, ...)
{
    size_t line = 1, column = 1, at;
    char what[160];
    va_list ap;

    at = p->pos < p->len ? p->pos : p->len;
    for (size_t i = 0; i < at; i++) {
        if (p->s[i] == '\n') {
            line++;
            column = 1;
        } else {
            column++;
        }
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->err_size, "line %zu column %zu: %s", line, column,
             what);
    return -1;
}

static int peek(const struct parser *p)
{
    return p->pos < p->len ? p->s[p->pos] : -1;
}

static void skip_space(struct parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static uint32_t add_token(struct parser *p, enum json_token_type type)
{
    struct json_doc *d = p->doc;
    struct json_token *t;

    d->tokens = xgrow(d->tokens, &d->capacity, d->count + 1,
                      sizeof(*d->tokens));
    t = &d->tokens[d->count];
    memset(t, 0, sizeof(*t));
    t->type = (uint8_t)type;
    t->start = (uint32_t)p->pos;
    return (uint32_t)d->count++;
}

static int hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_length(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */

    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (len > n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* The escape at pos, a backslash: check it and step over it. */
static int parse_escape(struct parser *p)
{
    unsigned char c;
    unsigned v, low;

    if (p->pos + 1 >= p->len)
        return fail(p, "premature end of input in a string");
    c = p->s[p->pos + 1];
    if (c != 'u') {
        if (!strchr("\"\\/bfnrt", c) || c == '\0')
            return fail(p, "invalid escape");
        p->pos += 2;
        return 0;
    }
    if (p->pos + 6 > p->len || hex4(p->s + p->pos + 2, &v))
        return fail(p, "invalid \\u escape");
    if (v == 0)
        return fail(p, "\\u0000 is not allowed");
    if (v >= 0xdc00 && v <= 0xdfff)
        return fail(p, "invalid Unicode '\\u%04X'", v);
    if (v >= 0xd800 && v <= 0xdbff) {
        /* A high surrogate must come with a low one. */
        if (p->pos + 12 > p->len || p->s[p->pos + 6] != '\\' ||
            p->s[p->pos + 7] != 'u' || hex4(p->s + p->pos + 8, &low) ||
            low < 0xdc00 || low > 0xdfff)
            return fail(p, "invalid Unicode '\\u%04X'", v);
        p->pos += 6;
    }
    p->pos += 6;
    return 0;
}

/*
 * Return the position of the first byte from pos on that a string cannot
 * hold as it is ('"', '\\', a control character or a byte of a multibyte
 * UTF-8 sequence), or len. Eight bytes are tested at a time.
 */
static size_t skip_plain(const unsigned char *s, size_t pos, size_t len)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;

    while (len - pos >= 8) {
        uint64_t x, quote, backslash, control;

        memcpy(&x, s + pos, 8);
        /* A byte b is zero exactly when (b - 1) & ~b has its high bit
         * set, and below 0x20 when (b - 0x20) & ~b has. The ~b term
         * clears the high bit of bytes >= 0x80, so x & highs tests them. */
        quote = x ^ (ones * '"');
        backslash = x ^ (ones * '\\');
        control = (x - ones * 0x20) & ~x;
        if ((((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) |
             control | x) & highs)
            break;
        pos += 8;
    }
    return pos;
}

/* A string at the opening quote; adds its token. */
static int parse_string(struct parser *p)
{
    uint32_t index;
    int escaped = 0;

    p->pos++;
    index = add_token(p, JSON_T_STRING);
    for (;;) {
        unsigned char c;

        p->pos = skip_plain(p->s, p->pos, p->len);
        if (p->pos >= p->len)
            return fail(p, "premature end of input in a string");
        c = p->s[p->pos];
        if (c == '"')
            break;
        if (c < 0x20)
            return fail(p, "control character 0x%x in a string", c);
        if (c >= 0x80) {
            size_t n = utf8_length(p->s + p->pos, p->len - p->pos);
            if (n == 0)
                return fail(p, "invalid UTF-8 in a string");
            p->pos += n;
        } else if (c == '\\') {
            escaped = 1;
            if (parse_escape(p))
                return -1;
        } else {
            p->pos++;
        }
    }
    p->doc->tokens[index].length =
        (uint32_t)(p->pos - p->doc->tokens[index].start);
    p->doc->tokens[index].escaped = (uint8_t)escaped;
    p->doc->tokens[index].next = index + 1;
    p->pos++; /* the closing quote */
    return 0;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Whether the integer text s (optional '-', then digits) fits int64_t. */
static int integer_fits(const unsigned char *s, size_t len)
{
    int negative = s[0] == '-';
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;

    for (size_t i = negative; i < len; i++) {
        unsigned d = s[i] - '0';
        if (v > (limit - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    return 1;
}

/* Whether the real number text overflows a double when strtod parses it. */
static int real_overflows(const unsigned char *s, size_t len)
{
    char small[64], *copy = len < sizeof(small) ? small : xmalloc(len + 1);
    double v;

    memcpy(copy, s, len);
    copy[len] = '\0';
    errno = 0;
    v = strtod(copy, NULL);
    if (copy != small)
        free(copy);
    return errno == ERANGE && isinf(v);
}

static int parse_number(struct parser *p)
{
    size_t start = p->pos;
    int real = 0;
    uint32_t index;

    if (peek(p) == '-')
        p->pos++;
    if (peek(p) == '0') {
        p->pos++;
        if (is_digit(peek(p)))
            return fail(p, "invalid number: a leading zero");
    } else if (is_digit(peek(p))) {
        while (is_digit(peek(p)))
            p->pos++;
    } else {
        return fail(p, "invalid number");
    }
    if (peek(p) == '.') {
        real = 1;
        p->pos++;
        if (!is_digit(peek(p)))
            return fail(p, "invalid number");
        while (is_digit(peek(p)))
            p->pos++;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        real = 1;
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-')
            p->pos++;
        if (!is_digit(peek(p)))
            return fail(p, "invalid number");
        while (is_digit(peek(p)))
            p->pos++;
    }
    if (!real && !integer_fits(p->s + start, p->pos - start))
        return fail(p, "too big integer");
    if (real && real_overflows(p->s + start, p->pos - start))
        return fail(p, "real number overflow");
    {
        size_t end = p->pos;
        p->pos = start;
        index = add_token(p, real ? JSON_T_REAL : JSON_T_INTEGER);
        p->pos = end;
    }
    p->doc->tokens[index].length = (uint32_t)(p->pos - start);
    p->doc->tokens[index].next = index + 1;
    return 0;
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int parse_literal(struct parser *p)
{
    static const struct {
        const char *word;
        enum json_token_type type;
    } words[] = {{"true", JSON_T_TRUE},
                 {"false", JSON_T_FALSE},
                 {"null", JSON_T_NULL}};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t n = strlen(words[i].word);
        uint32_t index;

        if (p->len - p->pos < n || memcmp(p->s + p->pos, words[i].word, n) ||
            (p->pos + n < p->len && is_alpha(p->s[p->pos + n])))
            continue;
        index = add_token(p, words[i].type);
        p->pos += n;
        p->doc->tokens[index].length = (uint32_t)n;
        p->doc->tokens[index].next = index + 1;
        return 0;
    }
    return fail(p, "invalid token");
}

/* A key and its colon, leaving pos at the value. */
static int parse_key(struct parser *p)
{
    skip_space(p);
    if (peek(p) != '"')
        return fail(p, "string or '}' expected");
    if (parse_string(p))
        return -1;
    skip_space(p);
    if (peek(p) != ':')
        return fail(p, "':' expected");
    p->pos++;
    return 0;
}

/* The containers open at pos, outermost first. */
struct open_containers {
    uint32_t tokens[MAX_DEPTH];
    size_t depth;
};

/* Set where container token index ends, at pos, after its closer. */
static void close_container(struct parser *p, uint32_t index)
{
    struct json_token *t = &p->doc->tokens[index];

    t->next = (uint32_t)p->doc->count;
    t->length = (uint32_t)(p->pos - t->start);
}

/*
 * Read the value starting at pos: a scalar whole, a container up to its
 * first value. Return 1 when the value ended (a scalar or an empty
 * container), 0 when a container's first value comes next, -1 on error.
 */
static int start_value(struct parser *p, struct open_containers *open)
{
    int c;
    uint32_t index;

    skip_space(p);
    c = peek(p);
    if (c == '"')
        return parse_string(p) ? -1 : 1;
    if (c == '-' || is_digit(c))
        return parse_number(p) ? -1 : 1;
    if (is_alpha(c))
        return parse_literal(p) ? -1 : 1;
    if (c != '{' && c != '[')
        return fail(p, c < 0 ? "premature end of input"
                             : "unexpected character");
    if (open->depth == MAX_DEPTH)
        return fail(p, "maximum parsing depth reached");
    index = add_token(p, c == '{' ? JSON_T_OBJECT : JSON_T_ARRAY);
    p->pos++;
    skip_space(p);
    if (peek(p) == (c == '{' ? '}' : ']')) {
        p->pos++;
        close_container(p, index);
        return 1;
    }
    open->tokens[open->depth++] = index;
    if (c == '{' && parse_key(p))
        return -1;
    return 0;
}

/*
 * After a value: count it in its container, then read the comma that
 * leads to the next value or the closers of the containers that end.
 * Return 0 when another value follows, 1 at the end of the text, -1 on
 * error.
 */
static int end_value(struct parser *p, struct open_containers *open)
{
    for (;;) {
        struct json_token *parent;
        int object, c;

        if (open->depth == 0) {
            skip_space(p);
            if (p->pos != p->len)
                return fail(p, "end of file expected");
            return 1;
        }
        parent = &p->doc->tokens[open->tokens[open->depth - 1]];
        object = parent->type == JSON_T_OBJECT;
        parent->count++;
        skip_space(p);
        c = peek(p);
        if (c == ',') {
            p->pos++;
            return object && parse_key(p) ? -1 : 0;
        }
        if (c != (object ? '}' : ']'))
            return fail(p, object ? "'}' expected" : "']' expected");
        p->pos++;
        close_container(p, open->tokens[--open->depth]);
    }
}

static int parse(struct parser *p)
{
    struct open_containers open; /* 8 KiB, well within a thread's stack */
    int rc;

    open.depth = 0;
    skip_space(p);
    if (peek(p) != '{' && peek(p) != '[')
        return fail(p, "'[' or '{' expected");
    do {
        rc = start_value(p, &open);
        if (rc == 1)
            rc = end_value(p, &open);
    } while (rc == 0);
    return rc < 0 ? -1 : 0;
}

int json_doc_parse(struct json_doc *doc, const char *text, size_t len,
                   char *err, size_t err_size)
{
    struct parser p;

    memset(doc, 0, sizeof(*doc));
    doc->text = text;
    p.doc = doc;
    p.s = (const unsigned char *)text;
    p.len = len;
    p.pos = 0;
    p.err = err;
    p.err_size = err_size;
    if (len >= UINT32_MAX) {
        snprintf(err, err_size, "line 1 column 1: too large");
        return -1;
    }
    if (parse(&p) != 0) {
        json_doc_free(doc);
        return -1;
    }
    return 0;
}

void json_doc_free(struct json_doc *doc)
{
    free(doc->tokens);
    memset(doc, 0, sizeof(*doc));
}

int json_doc_is(const struct json_doc *doc, int i, enum json_token_type type)
{
    return i >= 0 && (size_t)i < doc->count && doc->tokens[i].type == type;
}

size_t json_doc_size(const struct json_doc *doc, int i)
{
    if (!json_doc_is(doc, i, JSON_T_OBJECT) &&
        !json_doc_is(doc, i, JSON_T_ARRAY))
        return 0;
    return doc->tokens[i].count;
}

int json_doc_first(const struct json_doc *doc, int i)
{
    return json_doc_size(doc, i) > 0 ? i + 1 : -1;
}

int json_doc_next(const struct json_doc *doc, int i)
{
    return (int)doc->tokens[i].next;
}

/* Unescape string token t into out, which has room for t->length + 1. */
static size_t unescape(const struct json_doc *doc, const struct json_token *t,
                       char *out)
{
    const unsigned char *s = (const unsigned char *)doc->text + t->start;
    size_t n = 0;

    if (!t->escaped) {
        memcpy(out, s, t->length);
        out[t->length] = '\0';
        return t->length;
    }
    for (size_t i = 0; i < t->length;) {
        unsigned v = 0, low = 0xdc00;

        if (s[i] != '\\') {
            out[n++] = (char)s[i++];
            continue;
        }
        switch (s[i + 1]) {
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u':
            hex4(s + i + 2, &v);
            if (v >= 0xd800 && v <= 0xdbff) {
                hex4(s + i + 8, &low);
                v = 0x10000 + ((v - 0xd800) << 10) + (low - 0xdc00);
                i += 6;
            }
            /* The escape takes 6 or 12 bytes, more than its UTF-8. */
            if (v < 0x80) {
                out[n++] = (char)v;
            } else if (v < 0x800) {
                out[n++] = (char)(0xc0 | (v >> 6));
                out[n++] = (char)(0x80 | (v & 0x3f));
            } else if (v < 0x10000) {
                out[n++] = (char)(0xe0 | (v >> 12));
                out[n++] = (char)(0x80 | ((v >> 6) & 0x3f));
                out[n++] = (char)(0x80 | (v & 0x3f));
            } else {
                out[n++] = (char)(0xf0 | (v >> 18));
                out[n++] = (char)(0x80 | ((v >> 12) & 0x3f));
                out[n++] = (char)(0x80 | ((v >> 6) & 0x3f));
                out[n++] = (char)(0x80 | (v & 0x3f));
            }
            i += 4;
            break;
        default: /* '"', '\\' and '/' stand for themselves */
            out[n++] = (char)s[i + 1];
            break;
        }
        i += 2;
    }
    out[n] = '\0';
    return n;
}

int json_doc_string(const struct json_doc *doc, int i, char *buf,
                    size_t size, size_t *len)
{
    const struct json_token *t;

    if (!json_doc_is(doc, i, JSON_T_STRING))
        return -1;
    t = &doc->tokens[i];
    /* The unescaped value is never longer than the text. */
    if ((size_t)t->length + 1 > size) {
        char *tmp = xmalloc((size_t)t->length + 1);
        size_t n = unescape(doc, t, tmp);
        int rc = -1;
        if (n + 1 <= size) {
            memcpy(buf, tmp, n + 1);
            *len = n;
            rc = 0;
        }
        free(tmp);
        return rc;
    }
    *len = unescape(doc, t, buf);
    return 0;
}

char *json_doc_strdup(const struct json_doc *doc, int i)
{
    char *out;

    if (!json_doc_is(doc, i, JSON_T_STRING))
        return NULL;
    out = xmalloc((size_t)doc->tokens[i].length + 1);
    unescape(doc, &doc->tokens[i], out);
    return out;
}

int json_doc_streq(const struct json_doc *doc, int i, const char *s)
{
    const struct json_token *t;
    size_t n = strlen(s);
    char *copy;
    int same;

    if (!json_doc_is(doc, i, JSON_T_STRING))
        return 0;
    t = &doc->tokens[i];
    if (!t->escaped)
        return t->length == n && memcmp(doc->text + t->start, s, n) == 0;
    /* An escape is never shorter than what it stands for. */
    if (t->length < n)
        return 0;
    copy = json_doc_strdup(doc, i);
    same = strcmp(copy, s) == 0;
    free(copy);
    return same;
}

int json_doc_get(const struct json_doc *doc, int obj, const char *key)
{
    int found = -1;
    uint32_t k;

    if (!json_doc_is(doc, obj, JSON_T_OBJECT))
        return -1;
    k = (uint32_t)obj + 1;
    for (uint32_t m = 0; m < doc->tokens[obj].count; m++) {
        if (json_doc_streq(doc, (int)k, key))
            found = (int)k + 1;
        k = doc->tokens[k + 1].next;
    }
    return found;
}

void json_doc_members(const struct json_doc *doc, int obj,
                      int (*fn)(void *ctx, int key, int value), void *ctx)
{
    uint32_t k;

    if (!json_doc_is(doc, obj, JSON_T_OBJECT))
        return;
    k = (uint32_t)obj + 1;
    for (uint32_t m = 0; m < doc->tokens[obj].count; m++) {
        if (fn(ctx, (int)k, (int)k + 1))
            return;
        k = doc->tokens[k + 1].next;
    }
}

int json_doc_integer(const struct json_doc *doc, int i, int64_t *out)
{
    const struct json_token *t;
    int64_t v = 0;
    int negative;

    if (!json_doc_is(doc, i, JSON_T_INTEGER))
        return -1;
    t = &doc->tokens[i];
    negative = doc->text[t->start] == '-';
    /* The parser checked the range; accumulate negatively to reach
     * INT64_MIN. */
    for (uint32_t j = (uint32_t)negative; j < t->length; j++)
        v = v * 10 - (doc->text[t->start + j] - '0');
    *out = negative ? v : -v;
    return 0;
}
