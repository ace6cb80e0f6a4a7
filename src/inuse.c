#include "inuse.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

/* The largest in-use file read; a pod list of a big cluster fits. */
#define INUSE_MAX_BYTES (256 * 1024 * 1024)

/*
 * Whether the first component of a reference names a registry host rather
 * than a repository: it has a "." or ":" or is "localhost", as Docker
 * decides.
 */
static int is_host(const char *s, size_t len)
{
    if (len == 9 && memcmp(s, "localhost", 9) == 0)
        return 1;
    return memchr(s, '.', len) != NULL || memchr(s, ':', len) != NULL;
}

/* Parse one reference; -1 when it names nothing regprune can match. */
static int parse_ref(const char *text, struct inuse_ref *ref)
{
    const char *s = text, *at, *slash, *colon, *end;

    memset(ref, 0, sizeof(*ref));
    /* Container runtimes write imageID as "docker-pullable://..." */
    if (strstr(s, "://"))
        s = strstr(s, "://") + 3;
    at = strchr(s, '@');
    if (at) {
        if (digest_parse(at + 1, strlen(at + 1), &ref->digest) != 0)
            return -1;
        ref->has_digest = 1;
        end = at;
    } else if (digest_parse(s, strlen(s), &ref->digest) == 0) {
        ref->has_digest = 1;
        ref->text = xstrdup(text);
        return 0;
    } else {
        end = s + strlen(s);
    }
    slash = memchr(s, '/', (size_t)(end - s));
    if (slash && is_host(s, (size_t)(slash - s)))
        s = slash + 1;
    slash = NULL;
    for (const char *p = s; p < end; p++)
        if (*p == '/')
            slash = p;
    {
        const char *from = slash ? slash : s;
        colon = end > from ? memchr(from, ':', (size_t)(end - from)) : NULL;
    }
    if (colon) {
        ref->tag = xstrndup(colon + 1, (size_t)(end - colon - 1));
        end = colon;
    }
    if (end == s) {
        free(ref->tag);
        return -1;
    }
    /* A name with neither tag nor digest means :latest, as Docker reads
     * it. */
    if (!ref->tag && !ref->has_digest)
        ref->tag = xstrdup("latest");
    ref->repository = xstrndup(s, (size_t)(end - s));
    ref->text = xstrdup(text);
    return 0;
}

/* Add the reference that text names. Return -1 when it names none. */
static int add_ref(struct inuse *in, const char *text)
{
    struct inuse_ref ref;

    if (parse_ref(text, &ref) != 0)
        return -1;
    in->refs = xgrow(in->refs, &in->capacity, in->count + 1,
                     sizeof(*in->refs));
    in->refs[in->count++] = ref;
    return 0;
}

/* Collect every "image" and "imageID" string anywhere in a JSON value.
 * A pod that has not started yet has an empty imageID. */
static void walk_json(json_t *v, struct inuse *in, const char *path)
{
    const char *key;
    json_t *child;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach(v, key, child)
        {
            if ((strcmp(key, "image") == 0 || strcmp(key, "imageID") == 0) &&
                json_is_string(child)) {
                const char *text = json_string_value(child);

                if (*text && add_ref(in, text) != 0)
                    log_warning("--in-use file %s: '%s' is not an image "
                                "reference, so it protects nothing", path,
                                text);
            } else {
                walk_json(child, in, path);
            }
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child)
            walk_json(child, in, path);
    }
}

static char *read_all(const char *path, size_t *len, char *err,
                      size_t err_size)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t cap = 65536;

    if (!f) {
        snprintf(err, err_size, "cannot open --in-use file %s: %s", path,
                 strerror(errno));
        return NULL;
    }
    buf = xmalloc(cap + 1);
    *len = 0;
    for (;;) {
        size_t n = fread(buf + *len, 1, cap - *len, f);
        *len += n;
        if (n == 0)
            break;
        if (*len == cap) {
            if (cap >= INUSE_MAX_BYTES) {
                snprintf(err, err_size, "--in-use file %s is larger than "
                         "%d bytes", path, INUSE_MAX_BYTES);
                fclose(f);
                free(buf);
                return NULL;
            }
            cap *= 2;
            buf = xrealloc(buf, cap + 1);
        }
    }
    if (ferror(f)) {
        snprintf(err, err_size, "cannot read --in-use file %s: %s", path,
                 strerror(errno));
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

int inuse_load(const char *path, struct inuse *out, char *err,
               size_t err_size)
{
    size_t len;
    char *buf = read_all(path, &len, err, err_size);
    const char *p;
    int lineno = 0;

    memset(out, 0, sizeof(*out));
    if (!buf)
        return -1;
    for (p = buf; *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'; p++)
        ;
    if (*p == '{' || *p == '[') {
        json_error_t jerr;
        json_t *root = json_loadb(buf, len, 0, &jerr);
        free(buf);
        if (!root) {
            snprintf(err, err_size, "--in-use file %s: invalid JSON at line "
                     "%d: %s", path, jerr.line, jerr.text);
            return -1;
        }
        walk_json(root, out, path);
        json_decref(root);
        return 0;
    }
    for (char *line = buf, *next; line && *line; line = next) {
        char *end, *hash;

        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        end = line + strlen(line);
        while (end > line && (end[-1] == ' ' || end[-1] == '\t' ||
                              end[-1] == '\r'))
            *--end = '\0';
        if (*line && add_ref(out, line) != 0) {
            snprintf(err, err_size, "--in-use file %s:%d: '%s' is not an "
                     "image reference; write REPO:TAG, REPO@sha256:DIGEST "
                     "with all 64 hex digits, or a bare digest",
                     path, lineno, line);
            free(buf);
            inuse_free(out);
            return -1;
        }
    }
    free(buf);
    return 0;
}

static void protect(struct tag *t, const char *text)
{
    if (t->protect)
        return;
    free(t->keep_reason);
    t->keep_reason = xasprintf("in use: %s", text);
    registry_add_event(t, "in use", t->keep_reason, NULL);
    t->keep_source = NULL;
    t->protect = t->keep = 1;
    t->remove = 0;
}

/* Whether the manifest id is digest, or an index listing it. */
static int names_digest(const struct registry *reg, uint32_t id,
                        uint32_t digest)
{
    const struct manifest *m = reg->manifests[id];

    if (id == digest)
        return 1;
    for (size_t i = 0; m && i < m->child_count; i++)
        if (m->children[i] == digest)
            return 1;
    return 0;
}

static size_t apply_ref(const struct inuse_ref *ref, struct registry *reg)
{
    uint32_t digest;
    size_t count = 0;

    if (ref->has_digest) {
        digest = digest_table_find(&reg->ids, &ref->digest);
        if (digest == DIGEST_NONE)
            return 0;
        /* A digest pins the image wherever it is tagged. */
        for (size_t r = 0; r < reg->repo_count; r++)
            for (size_t i = 0; i < reg->repos[r].tag_count; i++)
                if (names_digest(reg, reg->repos[r].tags[i].digest, digest)) {
                    protect(&reg->repos[r].tags[i], ref->text);
                    count++;
                }
        return count;
    }
    if (ref->repository && ref->tag) {
        struct repo *repo = registry_find_repo(reg, ref->repository);
        struct tag *t;
        /* Docker Hub's short names live under library/. */
        if (!repo && !strchr(ref->repository, '/')) {
            char *full = xasprintf("library/%s", ref->repository);
            repo = registry_find_repo(reg, full);
            free(full);
        }
        if (repo && (t = registry_find_tag(repo, ref->tag)) != NULL) {
            protect(t, ref->text);
            count++;
        }
    }
    return count;
}

size_t inuse_apply(const struct inuse *in, struct registry *reg)
{
    size_t count = 0;

    for (size_t i = 0; i < in->count; i++) {
        size_t n = apply_ref(&in->refs[i], reg);
        if (n == 0)
            log_info("--in-use: %s matches no tag in this registry",
                     in->refs[i].text);
        count += n;
    }
    return count;
}

void inuse_free(struct inuse *in)
{
    for (size_t i = 0; i < in->count; i++) {
        free(in->refs[i].text);
        free(in->refs[i].repository);
        free(in->refs[i].tag);
    }
    free(in->refs);
    memset(in, 0, sizeof(*in));
}
