#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "xalloc.h"

/*
 * Cap on the keys and merged mappings that one mapping yields with its
 * merge keys ("<<"). A list of aliases merged at each level multiplies the
 * work, so without a cap a file of a few lines could take hours to read.
 */
#define MERGE_MAX_WORK 1000
#define MERGE_MAX_DEPTH 16

/*** errors and locations ***/

/* The text being read: the file, or the value of one environment
 * variable. Marks (line and column) are shown for the file only. */
struct source {
    const char *name; /* file path or variable name */
    int is_file;
    yaml_document_t *doc;
    char *err;
    size_t err_size;
};

/* Format "NAME[:LINE:COLUMN]: [KEY: ]message" into src->err and return
 * -1. */
static int vfail(struct source *src, const yaml_mark_t *mark, const char *key,
                 const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static int vfail(struct source *src, const yaml_mark_t *mark, const char *key,
                 const char *fmt, va_list ap)
{
    size_t size = src->err_size, n;
    int k;

    if (src->is_file && mark)
        k = snprintf(src->err, size, "%s:%zu:%zu: ", src->name, mark->line + 1,
                     mark->column + 1);
    else
        k = snprintf(src->err, size, "%s: ", src->name);
    n = k < 0 ? 0 : (size_t)k;
    if (key && n < size) {
        k = snprintf(src->err + n, size - n, "%s: ", key);
        n += k < 0 ? 0 : (size_t)k;
    }
    if (n < size)
        vsnprintf(src->err + n, size - n, fmt, ap);
    return -1;
}

static int fail_at(struct source *src, const yaml_mark_t *mark, const char *key,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail_at(struct source *src, const yaml_mark_t *mark, const char *key,
                   const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(src, mark, key, fmt, ap);
    va_end(ap);
    return -1;
}

/* Like fail_at, at the start of node (which may be NULL). */
static int fail(struct source *src, const yaml_node_t *node, const char *key,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(struct source *src, const yaml_node_t *node, const char *key,
                const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(src, node ? &node->start_mark : NULL, key, fmt, ap);
    va_end(ap);
    return -1;
}

/* Return "FILE:LINE:COLUMN" for a node of the file, else the variable
 * name. The caller frees the string. */
static char *where_of(const struct source *src, const yaml_node_t *node)
{
    if (src->is_file && node)
        return xasprintf("%s:%zu:%zu", src->name, node->start_mark.line + 1,
                         node->start_mark.column + 1);
    return xstrdup(src->name);
}

/* Report a libyaml parse or compose error and return -1. */
static int parser_error(struct source *src, const yaml_parser_t *parser)
{
    const char *problem = parser->problem ? parser->problem : "unknown error";

    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return fail_at(src, NULL, NULL, "out of memory while parsing YAML");
    case YAML_READER_ERROR:
        return fail_at(src, NULL, NULL, "invalid YAML: %s at byte %zu", problem,
                       parser->problem_offset);
    default:
        if (parser->context && src->is_file)
            return fail_at(src, &parser->problem_mark, NULL,
                           "invalid YAML: %s, %s at line %zu, column %zu",
                           problem, parser->context,
                           parser->context_mark.line + 1,
                           parser->context_mark.column + 1);
        if (parser->context)
            return fail_at(src, NULL, NULL, "invalid YAML: %s, %s", problem,
                           parser->context);
        return fail_at(src, &parser->problem_mark, NULL, "invalid YAML: %s",
                       problem);
    }
}

/*** loading ***/

/*
 * Parse the first document of buf as events, only to reject nesting deeper
 * than CONFIG_MAX_DEPTH before it is composed: libyaml 0.2.5 has no limit
 * of its own, and a registry configuration nests about five levels.
 */
static int check_depth(struct source *src, const char *buf, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t event;
    int depth = 0, rc = 0, done = 0;

    if (!yaml_parser_initialize(&parser))
        return fail_at(src, NULL, NULL, "out of memory while parsing YAML");
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &event)) {
            rc = parser_error(src, &parser);
            break;
        }
        switch (event.type) {
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > CONFIG_MAX_DEPTH) {
                rc = fail_at(src, &event.start_mark, NULL,
                             "mappings and lists nested deeper than %d "
                             "levels, while a registry configuration needs "
                             "about five",
                             CONFIG_MAX_DEPTH);
                done = 1;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&event);
    }
    yaml_parser_delete(&parser);
    return rc;
}

/*
 * Compose the first document of buf into doc, with aliases resolved to
 * the nodes they name. Later documents are not read, as in the registry.
 * On success the caller deletes doc, whose root is NULL for empty input.
 *
 * NOTE: libyaml 0.2.5 rejects an anchor defined twice ("found duplicate
 * anchor"), which go-yaml v2 and so the registry accept, the later
 * definition winning.
 */
static int load_document(struct source *src, const char *buf, size_t len,
                         yaml_document_t *doc)
{
    yaml_parser_t parser;
    int rc = 0;

    if (check_depth(src, buf, len) != 0)
        return -1;
    if (!yaml_parser_initialize(&parser))
        return fail_at(src, NULL, NULL, "out of memory while parsing YAML");
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, doc))
        rc = parser_error(src, &parser);
    yaml_parser_delete(&parser);
    return rc;
}

static int read_file(const char *path, char **buf, size_t *len, char *err,
                     size_t err_size)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    if (!f) {
        snprintf(err, err_size, "cannot open registry configuration %s: %s",
                 path, strerror(errno));
        return -1;
    }
    *buf = xmalloc(CONFIG_FILE_MAX_BYTES + 1);
    n = fread(*buf, 1, CONFIG_FILE_MAX_BYTES + 1, f);
    if (ferror(f)) {
        snprintf(err, err_size, "cannot read registry configuration %s: %s",
                 path, strerror(errno));
        fclose(f);
        return -1;
    }
    fclose(f);
    if (n > CONFIG_FILE_MAX_BYTES) {
        snprintf(err, err_size,
                 "%s: larger than %d KiB; a registry "
                 "configuration is a few kilobytes, so check the path",
                 path, CONFIG_FILE_MAX_BYTES / 1024);
        return -1;
    }
    *len = n;
    return 0;
}

/*** scalars ***/

static int is_scalar(const yaml_node_t *n, const char *text)
{
    return n && n->type == YAML_SCALAR_NODE &&
           n->data.scalar.length == strlen(text) &&
           memcmp(n->data.scalar.value, text, n->data.scalar.length) == 0;
}

static int has_tag(const yaml_node_t *n, const char *tag)
{
    return n->tag && strcmp((const char *)n->tag, tag) == 0;
}

/* A plain scalar without a tag, which YAML 1.1 resolves by its text.
 * libyaml gives such a scalar the default !!str tag. */
static int is_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE &&
           n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           has_tag(n, YAML_DEFAULT_SCALAR_TAG);
}

static int is_one_of(const yaml_node_t *n, const char *const *words)
{
    for (; *words; words++)
        if (is_scalar(n, *words))
            return 1;
    return 0;
}

/* An absent value, an empty value, ~ or null. */
static int is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};

    if (!n)
        return 1;
    if (n->type != YAML_SCALAR_NODE)
        return 0;
    return has_tag(n, YAML_NULL_TAG) || (is_plain(n) && is_one_of(n, nulls));
}

/* Describe a value for a message, such as "'maybe'" or "a list". */
static const char *describe(const yaml_node_t *n, char *buf, size_t size)
{
    if (is_null(n))
        return "an empty value";
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (n->data.scalar.length > 40)
        snprintf(buf, size, "'%.37s...'", (const char *)n->data.scalar.value);
    else
        snprintf(buf, size, "'%s'", (const char *)n->data.scalar.value);
    return buf;
}

/* The YAML 1.1 booleans, as the registry's YAML library (go-yaml v2)
 * resolves them. */
static const char *const true_words[] = {"y",   "Y",    "yes",  "Yes",
                                         "YES", "true", "True", "TRUE",
                                         "on",  "On",   "ON",   NULL};
static const char *const false_words[] = {"n",   "N",     "no",    "No",
                                          "NO",  "false", "False", "FALSE",
                                          "off", "Off",   "OFF",   NULL};

static int read_bool(struct source *src, const yaml_node_t *n, const char *key,
                     int *out)
{
    char buf[64];

    if (n && n->type == YAML_SCALAR_NODE &&
        (is_plain(n) || has_tag(n, YAML_BOOL_TAG))) {
        if (is_one_of(n, true_words)) {
            *out = 1;
            return 0;
        }
        if (is_one_of(n, false_words)) {
            *out = 0;
            return 0;
        }
    }
    if (n && n->type == YAML_SCALAR_NODE &&
        (is_one_of(n, true_words) || is_one_of(n, false_words)))
        return fail(src, n, key,
                    "expected true or false, got the quoted "
                    "string %s; the registry does not read a quoted value "
                    "as a boolean, so remove the quotes",
                    describe(n, buf, sizeof(buf)));
    return fail(src, n, key, "expected true or false, got %s",
                describe(n, buf, sizeof(buf)));
}

/* Read an absolute path into *out, replacing what it held. The caller
 * owns the new string. */
static int read_path(struct source *src, const yaml_node_t *n, const char *key,
                     char **out)
{
    char buf[64];
    const char *text;

    if (is_null(n) || n->type != YAML_SCALAR_NODE)
        return fail(src, n, key, "expected an absolute path, got %s",
                    describe(n, buf, sizeof(buf)));
    text = (const char *)n->data.scalar.value;
    if (strlen(text) != n->data.scalar.length)
        return fail(src, n, key, "the path contains a NUL character");
    if (text[0] != '/')
        return fail(src, n, key,
                    "'%s' is not an absolute path; the "
                    "registry resolves a relative path against its own "
                    "working directory, so write the full path",
                    text);
    free(*out);
    *out = xstrdup(text);
    return 0;
}

/*** mappings and merge keys ***/

/*
 * The registry decodes YAML with go-yaml v2, which reads a mapping as a
 * series of writes in document order. Each key sets its value, and a merge
 * key ("<<") sets every key of the mappings it names at that point, so it
 * overwrites a key given before it. A list of mappings is applied from the
 * last to the first, so the first one wins. The entries below are those
 * writes in the same order, and the last entry for a key is the value the
 * registry uses (checked with docker-registry 2.8.2).
 */
struct entry {
    yaml_node_t *key; /* always a scalar */
    yaml_node_t *value;
    int merged; /* written by a merge key, not by the mapping itself */
};

struct entries {
    struct entry *items;
    size_t count, capacity;
    size_t work; /* entries plus merged mappings, against MERGE_MAX_WORK */
};

static int is_merge_key(const yaml_node_t *k)
{
    return k->type == YAML_SCALAR_NODE &&
           (has_tag(k, "tag:yaml.org,2002:merge") ||
            (is_plain(k) && is_scalar(k, "<<")));
}

static int collect(struct source *src, yaml_node_t *map, int depth,
                   struct entries *out);

/* Append the writes of the mappings that a merge key's value names. */
static int collect_merge(struct source *src, yaml_node_t *value, int depth,
                         struct entries *out)
{
    yaml_node_item_t *first, *item;
    char buf[64];

    if (value->type == YAML_MAPPING_NODE)
        return collect(src, value, depth + 1, out);
    if (value->type != YAML_SEQUENCE_NODE)
        return fail(src, value, "<<",
                    "a merge key takes a mapping or a "
                    "list of mappings, got %s",
                    describe(value, buf, sizeof(buf)));
    first = value->data.sequence.items.start;
    for (item = value->data.sequence.items.top; item > first; item--) {
        yaml_node_t *m = yaml_document_get_node(src->doc, item[-1]);

        if (!m || m->type != YAML_MAPPING_NODE)
            return fail(src, m ? m : value, "<<",
                        "a merge key takes a "
                        "mapping or a list of mappings, got %s in the list",
                        describe(m, buf, sizeof(buf)));
        if (collect(src, m, depth + 1, out) != 0)
            return -1;
    }
    return 0;
}

/*
 * Append the writes of map to out in the order go-yaml v2 makes them.
 * Keys that are not scalars are skipped. depth is 0 for the mapping read,
 * and counts merge keys below it.
 */
static int collect(struct source *src, yaml_node_t *map, int depth,
                   struct entries *out)
{
    yaml_node_pair_t *top = map->data.mapping.pairs.top;

    if (depth > MERGE_MAX_DEPTH)
        return fail(src, map, "<<",
                    "merge keys nested deeper than %d "
                    "levels",
                    MERGE_MAX_DEPTH);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < top; p++) {
        yaml_node_t *key = yaml_document_get_node(src->doc, p->key);
        yaml_node_t *value = yaml_document_get_node(src->doc, p->value);

        if (!key || !value || key->type != YAML_SCALAR_NODE)
            continue;
        if (++out->work > MERGE_MAX_WORK)
            return fail(src, key, NULL,
                        "more than %d keys in one mapping, "
                        "counting merged ones",
                        MERGE_MAX_WORK);
        if (is_merge_key(key)) {
            if (collect_merge(src, value, depth, out) != 0)
                return -1;
            continue;
        }
        out->items = xgrow(out->items, &out->capacity, out->count + 1,
                           sizeof(*out->items));
        out->items[out->count++] = (struct entry){key, value, depth > 0};
    }
    return 0;
}

static int same_key(const yaml_node_t *a, const yaml_node_t *b)
{
    return a->data.scalar.length == b->data.scalar.length &&
           memcmp(a->data.scalar.value, b->data.scalar.value,
                  a->data.scalar.length) == 0;
}

/*
 * Return 1 when entry i is the last write of its key, so its value is the
 * one that counts, and 0 when a later write overrides it. A key that the
 * mapping itself gives twice is an error (-1): go-yaml v2 silently takes
 * the last, but two values for one storage setting are better fixed than
 * guessed at.
 */
static int is_last_write(struct source *src, const struct entries *e, size_t i,
                         const char *path)
{
    const yaml_node_t *key = e->items[i].key;

    for (size_t j = i + 1; j < e->count; j++) {
        const yaml_node_t *later = e->items[j].key;

        if (!same_key(key, later))
            continue;
        if (!e->items[i].merged && !e->items[j].merged)
            return fail(src, later, path,
                        "duplicate key '%s', first given "
                        "at line %zu; the registry uses the last one, so "
                        "remove the other",
                        (const char *)key->data.scalar.value,
                        key->start_mark.line + 1);
        return 0;
    }
    return 1;
}

/* Find key in the entries; *value is NULL when it is absent. path names
 * the mapping in messages. */
static int lookup(struct source *src, const struct entries *e, const char *key,
                  const char *path, yaml_node_t **value)
{
    *value = NULL;
    for (size_t i = 0; i < e->count; i++) {
        int last;

        if (!is_scalar(e->items[i].key, key))
            continue;
        last = is_last_write(src, e, i, path);
        if (last < 0)
            return -1;
        if (last)
            *value = e->items[i].value;
    }
    return 0;
}

/* Look up one key of map, which must be a mapping. */
static int get_key(struct source *src, yaml_node_t *map, const char *key,
                   const char *path, yaml_node_t **value)
{
    struct entries e = {0};
    int rc = collect(src, map, 0, &e);

    if (rc == 0)
        rc = lookup(src, &e, key, path, value);
    free(e.items);
    return rc;
}

/*** the storage section ***/

struct driver {
    char *name;
    char *where; /* "FILE:LINE:COLUMN" or a variable name */
};

/* The storage settings as read so far; NULL strings mean unset. */
struct storage {
    struct driver *drivers;
    size_t driver_count, driver_capacity;
    char *root, *root_where;
    int delete_enabled;
    int readonly_present; /* storage.maintenance.readonly has a value */
    int readonly;
    char *readonly_where;
};

static void storage_clear_readonly(struct storage *st)
{
    st->readonly_present = 0;
    st->readonly = 0;
    free(st->readonly_where);
    st->readonly_where = NULL;
}

static void storage_clear_root(struct storage *st)
{
    free(st->root);
    free(st->root_where);
    st->root = st->root_where = NULL;
}

static void storage_clear(struct storage *st)
{
    for (size_t i = 0; i < st->driver_count; i++) {
        free(st->drivers[i].name);
        free(st->drivers[i].where);
    }
    free(st->drivers);
    storage_clear_root(st);
    storage_clear_readonly(st);
    memset(st, 0, sizeof(*st));
}

/* Add a driver unless one of that name is there; return its entry. The
 * registry matches the names of environment variables without regard to
 * case, and keys of the file exactly. */
static struct driver *storage_add_driver(struct storage *st, const char *name,
                                         size_t len, int ignore_case,
                                         char *where)
{
    struct driver *d;

    for (size_t i = 0; i < st->driver_count; i++) {
        d = &st->drivers[i];
        if (strlen(d->name) == len &&
            (ignore_case ? strncasecmp(d->name, name, len)
                         : strncmp(d->name, name, len)) == 0) {
            free(where);
            return d;
        }
    }
    st->drivers = xgrow(st->drivers, &st->driver_capacity, st->driver_count + 1,
                        sizeof(*st->drivers));
    d = &st->drivers[st->driver_count++];
    d->name = xstrndup(name, len);
    d->where = where;
    return d;
}

static int read_filesystem(struct source *src, yaml_node_t *n,
                           struct storage *st)
{
    yaml_node_t *root;
    char buf[64];

    storage_clear_root(st);
    if (is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return fail(src, n, "storage.filesystem",
                    "expected a mapping of "
                    "driver parameters such as rootdirectory, got %s",
                    describe(n, buf, sizeof(buf)));
    if (get_key(src, n, "rootdirectory", "storage.filesystem", &root) != 0)
        return -1;
    if (!root)
        return 0;
    if (read_path(src, root, "storage.filesystem.rootdirectory", &st->root) !=
        0)
        return -1;
    st->root_where = where_of(src, root);
    return 0;
}

static int read_delete(struct source *src, yaml_node_t *n, struct storage *st)
{
    yaml_node_t *enabled;
    char buf[64];

    st->delete_enabled = 0;
    if (is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return fail(src, n, "storage.delete",
                    "expected a mapping such as "
                    "{enabled: true}, got %s",
                    describe(n, buf, sizeof(buf)));
    if (get_key(src, n, "enabled", "storage.delete", &enabled) != 0)
        return -1;
    if (!enabled)
        return 0;
    return read_bool(src, enabled, "storage.delete.enabled",
                     &st->delete_enabled);
}

/* Read storage.maintenance.readonly, which must be a mapping because the
 * registry does not start with a bare true or an empty value. */
static int read_readonly(struct source *src, yaml_node_t *n, struct storage *st)
{
    yaml_node_t *enabled;
    char buf[64];

    storage_clear_readonly(st);
    if (is_null(n) || n->type != YAML_MAPPING_NODE)
        return fail(src, n, "storage.maintenance.readonly",
                    "expected a "
                    "mapping such as {enabled: true}, got %s",
                    describe(n, buf, sizeof(buf)));
    if (get_key(src, n, "enabled", "storage.maintenance.readonly", &enabled) !=
        0)
        return -1;
    st->readonly_present = 1;
    st->readonly_where = where_of(src, enabled ? enabled : n);
    if (!enabled)
        return 0;
    return read_bool(src, enabled, "storage.maintenance.readonly.enabled",
                     &st->readonly);
}

static int read_maintenance(struct source *src, yaml_node_t *n,
                            struct storage *st)
{
    yaml_node_t *readonly;
    char buf[64];

    storage_clear_readonly(st);
    if (is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return fail(src, n, "storage.maintenance",
                    "expected a mapping such "
                    "as {readonly: {enabled: true}}, got %s",
                    describe(n, buf, sizeof(buf)));
    if (get_key(src, n, "readonly", "storage.maintenance", &readonly) != 0)
        return -1;
    return readonly ? read_readonly(src, readonly, st) : 0;
}

/* Keys of storage that configure the registry rather than name a driver:
 * maintenance, cache, delete and redirect in distribution 2.8, and tag in
 * some later releases. */
static int is_storage_option(const char *name)
{
    static const char *const options[] = {"maintenance", "cache", "delete",
                                          "redirect",    "tag",   NULL};

    for (const char *const *o = options; *o; o++)
        if (strcmp(name, *o) == 0)
            return 1;
    return 0;
}

/* Read one key of the storage mapping. */
static int read_storage_entry(struct source *src, struct entry *e,
                              struct storage *st)
{
    const char *name = (const char *)e->key->data.scalar.value;
    size_t len = e->key->data.scalar.length;

    if (strcmp(name, "delete") == 0)
        return read_delete(src, e->value, st);
    if (strcmp(name, "maintenance") == 0)
        return read_maintenance(src, e->value, st);
    if (is_storage_option(name))
        return 0;
    storage_add_driver(st, name, len, 0, where_of(src, e->key));
    if (strcmp(name, "filesystem") == 0)
        return read_filesystem(src, e->value, st);
    return 0;
}

/*
 * Replace st with the storage section n: a mapping with one driver key and
 * options, or a bare driver name (the registry reads "storage: s3" as the
 * s3 driver with no parameters). An empty value leaves no driver.
 */
static int read_storage(struct source *src, yaml_node_t *n, struct storage *st)
{
    struct entries e = {0};
    char buf[64];
    int rc = 0;

    storage_clear(st);
    if (is_null(n))
        return 0;
    if (n->type == YAML_SCALAR_NODE) {
        storage_add_driver(st, (const char *)n->data.scalar.value,
                           n->data.scalar.length, 0, where_of(src, n));
        return 0;
    }
    if (n->type != YAML_MAPPING_NODE)
        return fail(src, n, "storage",
                    "expected a mapping with a driver "
                    "key such as filesystem, got %s",
                    describe(n, buf, sizeof(buf)));
    rc = collect(src, n, 0, &e);
    for (size_t i = 0; rc == 0 && i < e.count; i++) {
        int last = is_last_write(src, &e, i, "storage");

        if (last < 0)
            rc = -1;
        else if (last)
            rc = read_storage_entry(src, &e.items[i], st);
    }
    free(e.items);
    return rc;
}

static int read_top(struct source *src, struct storage *st)
{
    yaml_node_t *root = yaml_document_get_root_node(src->doc);
    yaml_node_t *storage;
    char buf[64];

    if (!root)
        return fail(src, NULL, NULL,
                    "the file is empty; expected a "
                    "registry configuration with a storage section");
    if (root->type != YAML_MAPPING_NODE)
        return fail(src, root, NULL,
                    "expected a mapping of settings such "
                    "as version and storage at the top level, got %s",
                    describe(root, buf, sizeof(buf)));
    if (get_key(src, root, "storage", NULL, &storage) != 0)
        return -1;
    return read_storage(src, storage, st);
}

/*** environment overrides ***/

#define ENV_PREFIX "REGISTRY_STORAGE"
#define ENV_PREFIX_LEN (sizeof(ENV_PREFIX) - 1)

static size_t env_name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* Order "NAME=VALUE" strings by the bytes of NAME, as the registry sorts
 * its overrides, so that REGISTRY_STORAGE applies before the variables
 * that change parts of it. */
static int compare_env_names(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t nx = env_name_len(x), ny = env_name_len(y);
    int c = memcmp(x, y, nx < ny ? nx : ny);

    if (c != 0)
        return c;
    return (nx > ny) - (nx < ny);
}

/* Whether section (len bytes, not NUL-terminated) is exactly word. */
static int env_is(const char *section, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(section, word, len) == 0;
}

/* Any section of a variable name that is not a storage option names a
 * driver, which the registry adds to the storage section in lowercase
 * unless a key of that name, in any case, is there. */
static struct driver *add_env_driver(struct storage *st, const char *section,
                                     size_t len, const char *var)
{
    char *lower = xstrndup(section, len);
    struct driver *d;

    for (char *c = lower; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    d = storage_add_driver(st, lower, len, 1, xstrdup(var));
    free(lower);
    return d;
}

/*
 * Apply one variable whose name is REGISTRY_STORAGE_<section>[_<rest>],
 * where rest is NULL when absent. value_root is the variable's value parsed
 * as YAML, as the registry parses it, and NULL when the value is empty.
 */
static int apply_env_section(struct source *src, const char *section,
                             size_t len, const char *rest,
                             yaml_node_t *value_root, struct storage *st)
{
    struct driver *d;

    if (env_is(section, len, "DELETE")) {
        if (!rest)
            return read_delete(src, value_root, st);
        if (strcmp(rest, "ENABLED") == 0)
            return read_bool(src, value_root, "storage.delete.enabled",
                             &st->delete_enabled);
        return 0;
    }
    if (env_is(section, len, "MAINTENANCE")) {
        if (!rest)
            return read_maintenance(src, value_root, st);
        if (strcmp(rest, "READONLY") == 0)
            return read_readonly(src, value_root, st);
        /* The registry adds keys below an existing readonly mapping only
         * when its keys are strings, which a mapping from YAML never has,
         * so it ignores the variable. With no readonly mapping it creates
         * one that its own check then rejects, and it does not start. */
        if (strncmp(rest, "READONLY_", 9) == 0 && !st->readonly_present)
            return fail(src, NULL, NULL,
                        "the registry does not start with "
                        "this variable unless storage.maintenance.readonly "
                        "is set, and then ignores it; set REGISTRY_STORAGE_"
                        "MAINTENANCE_READONLY='{enabled: true}' instead");
        return 0;
    }
    if (env_is(section, len, "CACHE") || env_is(section, len, "REDIRECT") ||
        env_is(section, len, "TAG"))
        return 0;

    d = add_env_driver(st, section, len, src->name);
    if (strcmp(d->name, "filesystem") != 0)
        return 0;
    if (!rest)
        return read_filesystem(src, value_root, st);
    if (strcmp(rest, "ROOTDIRECTORY") != 0)
        return 0;
    if (read_path(src, value_root, "storage.filesystem.rootdirectory",
                  &st->root) != 0)
        return -1;
    free(st->root_where);
    st->root_where = xstrdup(src->name);
    return 0;
}

/* Apply one "NAME=VALUE" entry that starts with REGISTRY_STORAGE. err is
 * written through src. */
static int apply_env_entry(const char *entry, struct storage *st,
                           char *err, // NOLINT(readability-non-const-parameter)
                           size_t err_size)
{
    size_t name_len = env_name_len(entry);
    char *name = xstrndup(entry, name_len);
    const char *value = entry[name_len] ? entry + name_len + 1 : "";
    struct source src = {name, 0, NULL, err, err_size};
    yaml_document_t doc;
    yaml_node_t *value_root;
    int rc;

    if (load_document(&src, value, strlen(value), &doc) != 0) {
        free(name);
        return -1;
    }
    src.doc = &doc;
    value_root = yaml_document_get_root_node(&doc);
    if (name_len == ENV_PREFIX_LEN) {
        rc = read_storage(&src, value_root, st);
    } else {
        const char *section = name + ENV_PREFIX_LEN + 1;
        const char *sep = strchr(section, '_');
        size_t len = sep ? (size_t)(sep - section) : strlen(section);

        rc = 0;
        if (len > 0)
            rc = apply_env_section(&src, section, len, sep ? sep + 1 : NULL,
                                   value_root, st);
    }
    yaml_document_delete(&doc);
    free(name);
    return rc;
}

static int apply_env(char *const *envp, struct storage *st, char *err,
                     size_t err_size)
{
    const char **vars = NULL;
    size_t count = 0, capacity = 0;
    int rc = 0;

    for (char *const *e = envp; *e; e++) {
        size_t n = env_name_len(*e);

        if (strncmp(*e, ENV_PREFIX, ENV_PREFIX_LEN) != 0 ||
            (n != ENV_PREFIX_LEN && (*e)[ENV_PREFIX_LEN] != '_'))
            continue;
        vars = xgrow(vars, &capacity, count + 1, sizeof(*vars));
        vars[count++] = *e;
    }
    if (count)
        qsort(vars, count, sizeof(*vars), compare_env_names);
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = apply_env_entry(vars[i], st, err, err_size);
    free(vars);
    return rc;
}

/*** result ***/

/* Require exactly one driver, the filesystem one. */
static int check_driver(const struct storage *st, const char *path, char *err,
                        size_t err_size)
{
    if (st->driver_count == 0) {
        snprintf(err, err_size,
                 "%s: storage: no storage driver is "
                 "configured; regprune reads the tree of the filesystem "
                 "driver, set with storage.filesystem.rootdirectory",
                 path);
        return -1;
    }
    if (st->driver_count > 1) {
        const struct driver *a = &st->drivers[0], *b = &st->drivers[1];

        snprintf(err, err_size,
                 "%s: storage: more than one storage driver "
                 "('%s' at %s, '%s' at %s); the registry accepts exactly one",
                 path, a->name, a->where, b->name, b->where);
        return -1;
    }
    if (strcmp(st->drivers[0].name, "filesystem") != 0) {
        snprintf(err, err_size,
                 "%s: storage driver '%s' is not supported: "
                 "regprune reads the tree of the filesystem driver, so for "
                 "other storage use the registry's own garbage-collect",
                 st->drivers[0].where, st->drivers[0].name);
        return -1;
    }
    return 0;
}

static char *take(char **s)
{
    char *p = *s;
    *s = NULL;
    return p;
}

int config_load(const char *path, char *const *envp,
                struct registry_config *out, char *err, size_t err_size)
{
    struct source src = {path, 1, NULL, err, err_size};
    struct storage st = {0};
    yaml_document_t doc;
    int have_doc = 0, rc = -1;
    char *buf = NULL;
    size_t len;

    memset(out, 0, sizeof(*out));
    if (read_file(path, &buf, &len, err, err_size) != 0)
        goto out;
    if (load_document(&src, buf, len, &doc) != 0)
        goto out;
    have_doc = 1;
    src.doc = &doc;
    if (read_top(&src, &st) != 0)
        goto out;
    if (envp && apply_env(envp, &st, err, err_size) != 0)
        goto out;
    if (check_driver(&st, path, err, err_size) != 0)
        goto out;

    out->path = xstrdup(path);
    out->driver = xstrdup("filesystem");
    out->root_directory =
        st.root ? take(&st.root) : xstrdup(CONFIG_DEFAULT_ROOT);
    out->root_source =
        st.root_where ? take(&st.root_where) : xstrdup("default");
    out->readonly = st.readonly;
    out->readonly_source = take(&st.readonly_where);
    out->delete_enabled = st.delete_enabled;
    rc = 0;
out:
    if (have_doc)
        yaml_document_delete(&doc);
    storage_clear(&st);
    free(buf);
    return rc;
}

void config_free(struct registry_config *c)
{
    free(c->path);
    free(c->driver);
    free(c->root_directory);
    free(c->root_source);
    free(c->readonly_source);
    memset(c, 0, sizeof(*c));
}
