#include "inventory.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static int compare_repo_names(const void *a, const void *b)
{
    return strcmp(((const struct repo *)a)->name,
                  ((const struct repo *)b)->name);
}

static int compare_tag_names(const void *a, const void *b)
{
    return strcmp(((const struct tag *)a)->name,
                  ((const struct tag *)b)->name);
}

static int compare_ids(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static char **strings_of(json_t *arr, size_t *count)
{
    char **items = xcalloc(json_array_size(arr) + 1, sizeof(char *));
    size_t i;
    json_t *v;

    *count = 0;
    json_array_foreach(arr, i, v)
        if (json_is_string(v))
            items[(*count)++] = xstrdup(json_string_value(v));
    return items;
}

static int load_tag(struct registry *reg, struct tag *t, json_t *obj,
                    const char *where, char *err, size_t err_size)
{
    const char *name = json_string_value(json_object_get(obj, "name"));
    json_t *digest = json_object_get(obj, "digest");
    json_t *created = json_object_get(obj, "created");
    json_t *labels = json_object_get(obj, "labels");
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    struct digest d;

    if (!name || !json_is_string(digest) ||
        digest_parse(json_string_value(digest), json_string_length(digest),
                     &d) != 0) {
        snprintf(err, err_size, "%s: every tag needs a \"name\" and a "
                 "\"digest\" of the form sha256:<64 lowercase hex>", where);
        return -1;
    }
    t->name = xstrdup(name);
    t->digest = registry_intern(reg, &d);
    t->pushed = json_integer_value(json_object_get(obj, "pushed"));
    t->has_created = json_is_integer(created);
    t->created = json_integer_value(created);
    t->size = json_integer_value(json_object_get(obj, "size"));
    /* Only the kinds regprune reports; the string must outlive the run. */
    t->kind = "image";
    if (kind) {
        static const char *const kinds[] = {"image",   "index",
                                            "artifact", "referrer",
                                            "unknown",  "unreadable"};
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
            if (strcmp(kind, kinds[k]) == 0)
                t->kind = kinds[k];
    }
    {
        size_t count;
        t->platforms = strings_of(json_object_get(obj, "platforms"), &count);
        t->platform_count = (uint32_t)count;
    }
    if (json_is_object(labels)) {
        const char *key;
        json_t *value;

        t->labels = xcalloc(2 * json_object_size(labels) + 1,
                            sizeof(char *));
        json_object_foreach(labels, key, value)
        {
            if (!json_is_string(value))
                continue;
            t->labels[2 * t->label_count] = xstrdup(key);
            t->labels[2 * t->label_count + 1] =
                xstrdup(json_string_value(value));
            t->label_count++;
        }
    }
    return 0;
}

static int load_repo(struct registry *reg, struct repo *repo, json_t *obj,
                     const char *path, char *err, size_t err_size)
{
    const char *name = json_string_value(json_object_get(obj, "name"));
    json_t *tags = json_object_get(obj, "tags");
    json_t *untagged = json_object_get(obj, "not_tagged_directly");
    size_t i, cap;
    json_t *v;
    char where[600];

    if (!name || !*name || !json_is_array(tags)) {
        snprintf(err, err_size, "%s: every repository needs a \"name\" and "
                 "a \"tags\" array", path);
        return -1;
    }
    repo->name = xstrdup(name);
    repo->selected = 1;
    repo->configs_read = 1; /* the inventory describes the tags */
    repo->tags = xcalloc(json_array_size(tags) + 1, sizeof(*repo->tags));
    json_array_foreach(tags, i, v)
    {
        snprintf(where, sizeof(where), "%s: repository %s, tag %zu", path,
                 name, i + 1);
        if (load_tag(reg, &repo->tags[repo->tag_count], v, where, err,
                     err_size) != 0)
            return -1;
        repo->tag_count++;
    }
    qsort(repo->tags, repo->tag_count, sizeof(*repo->tags),
          compare_tag_names);
    /* Every digest a tag names, and the untagged ones, are revisions. */
    cap = repo->tag_count + json_array_size(untagged) + 1;
    repo->revisions = xmalloc(cap * sizeof(uint32_t));
    for (size_t t = 0; t < repo->tag_count; t++)
        repo->revisions[repo->revision_count++] = repo->tags[t].digest;
    json_array_foreach(untagged, i, v)
    {
        struct digest d;
        if (json_is_string(v) &&
            digest_parse(json_string_value(v), json_string_length(v), &d) == 0)
            repo->revisions[repo->revision_count++] =
                registry_intern(reg, &d);
    }
    qsort(repo->revisions, repo->revision_count, sizeof(uint32_t),
          compare_ids);
    /* Drop repeats so the binary search sees each digest once. */
    {
        size_t n = 0;
        for (size_t r = 0; r < repo->revision_count; r++)
            if (n == 0 || repo->revisions[n - 1] != repo->revisions[r])
                repo->revisions[n++] = repo->revisions[r];
        repo->revision_count = n;
    }
    for (size_t t = 0; t < repo->tag_count; t++)
        repo->tags[t].follows =
            registry_convention_subject(reg, repo, repo->tags[t].name);
    return 0;
}

int inventory_load(struct registry *reg, const char *path, char *err,
                   size_t err_size)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr), *repos;
    size_t i;
    json_t *v;
    int rc = 0;

    reg->v2_fd = -1;
    digest_table_init(&reg->ids);
    reg->root = xstrdup(path);
    if (!root) {
        snprintf(err, err_size, "cannot read inventory %s: %s (line %d)",
                 path, jerr.text, jerr.line);
        return -1;
    }
    repos = json_object_get(root, "repositories");
    if (!json_is_array(repos)) {
        snprintf(err, err_size, "%s has no \"repositories\" array; write it "
                 "with `regprune ls --json`", path);
        json_decref(root);
        return -1;
    }
    reg->repos = xcalloc(json_array_size(repos) + 1, sizeof(*reg->repos));
    json_array_foreach(repos, i, v)
    {
        rc = load_repo(reg, &reg->repos[reg->repo_count], v, path, err,
                       err_size);
        reg->repo_count++;
        if (rc != 0)
            break;
    }
    json_decref(root);
    if (rc == 0 && reg->repo_count > 1)
        qsort(reg->repos, reg->repo_count, sizeof(*reg->repos),
              compare_repo_names);
    for (size_t r = 0; rc == 0 && r + 1 < reg->repo_count; r++)
        if (strcmp(reg->repos[r].name, reg->repos[r + 1].name) == 0) {
            snprintf(err, err_size, "%s: repository %s appears twice", path,
                     reg->repos[r].name);
            rc = -1;
        }
    return rc;
}
