#include "apply.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

/* Keys: kind, repository and item joined by '\n', which no name holds. */
static char *make_key(const char *kind, const char *repo, const char *item)
{
    return xasprintf("%s\n%s\n%s", kind, repo ? repo : "", item);
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_key(const struct reviewed_plan *rp, const char *kind,
                   const char *repo, const char *item)
{
    char *key = make_key(kind, repo, item);
    int found = bsearch(&key, rp->keys, rp->key_count, sizeof(char *),
                        compare_keys) != NULL;

    free(key);
    return found;
}

static void add_key(struct reviewed_plan *rp, size_t *capacity,
                    const char *kind, const char *repo, const char *item)
{
    rp->keys = xgrow(rp->keys, capacity, rp->key_count + 1, sizeof(char *));
    rp->keys[rp->key_count++] = make_key(kind, repo, item);
}

static void add_strings(struct reviewed_plan *rp, size_t *capacity,
                        const char *kind, const char *repo, json_t *arr)
{
    size_t i;
    json_t *v;

    json_array_foreach(arr, i, v)
        if (json_is_string(v))
            add_key(rp, capacity, kind, repo, json_string_value(v));
}

int apply_load(const char *path, struct reviewed_plan *out, char *err,
               size_t err_size)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr), *repos, *repo, *blobs, *b;
    const char *command;
    size_t capacity = 0, i, j;

    memset(out, 0, sizeof(*out));
    if (!root) {
        snprintf(err, err_size, "cannot read plan %s: %s (line %d)", path,
                 jerr.text, jerr.line);
        return -1;
    }
    command = json_string_value(json_object_get(root, "command"));
    repos = json_object_get(root, "repositories");
    if (json_integer_value(json_object_get(root, "regprune")) != 1 ||
        !command || !json_is_array(repos) ||
        (strcmp(command, "prune") && strcmp(command, "delete") &&
         strcmp(command, "gc"))) {
        snprintf(err, err_size, "%s is not a plan that --plan-out wrote",
                 path);
        json_decref(root);
        return -1;
    }
    out->command = xstrdup(command);
    out->untagged = json_is_true(json_object_get(root, "untagged"));
    out->grace = json_integer_value(json_object_get(root, "grace"));
    json_array_foreach(repos, i, repo)
    {
        const char *name = json_string_value(json_object_get(repo, "name"));
        json_t *tag;

        if (!name)
            continue;
        json_array_foreach(json_object_get(repo, "tags"), j, tag)
        {
            const char *verdict =
                json_string_value(json_object_get(tag, "verdict"));
            const char *tag_name =
                json_string_value(json_object_get(tag, "name"));
            const char *digest =
                json_string_value(json_object_get(tag, "digest"));
            json_int_t pushed =
                json_integer_value(json_object_get(tag, "pushed"));
            char *item;

            if (!verdict || strcmp(verdict, "delete") || !tag_name ||
                !digest)
                continue;
            /* The push time too: a tag pushed again is a new decision. */
            item = xasprintf("%s@%s@%lld", tag_name, digest,
                             (long long)pushed);
            add_key(out, &capacity, "tag", name, item);
            free(item);
        }
        add_strings(out, &capacity, "revision", name,
                    json_object_get(repo, "manifests_deleted"));
        add_strings(out, &capacity, "layer", name,
                    json_object_get(repo, "layer_links_deleted"));
        add_strings(out, &capacity, "upload", name,
                    json_object_get(repo, "uploads_deleted"));
    }
    blobs = json_object_get(root, "blobs_deleted");
    json_array_foreach(blobs, i, b)
    {
        const char *digest = json_string_value(json_object_get(b, "digest"));
        if (digest)
            add_key(out, &capacity, "blob", NULL, digest);
    }
    json_decref(root);
    qsort(out->keys, out->key_count, sizeof(char *), compare_keys);
    return 0;
}

void apply_mark_tags(const struct reviewed_plan *rp, struct registry *reg)
{
    char digest[DIGEST_TEXT_LEN + 1];

    plan_prepare(reg);
    for (size_t r = 0; r < reg->repo_count; r++) {
        struct repo *repo = &reg->repos[r];

        /* What the plan removes is a candidate again, as in a journal. */
        for (size_t i = 0; i < repo->revision_count; i++) {
            digest_to_text(&reg->ids.digests[repo->revisions[i]], digest);
            if (has_key(rp, "revision", repo->name, digest))
                repo->revision_remove[i] = REV_JOURNAL;
        }
        for (size_t i = 0; i < repo->layer_count; i++) {
            digest_to_text(&reg->ids.digests[repo->layers[i]], digest);
            if (has_key(rp, "layer", repo->name, digest))
                repo->layer_remove[i] = LAYER_JOURNAL;
        }
        for (size_t i = 0; i < repo->tag_count; i++) {
            struct tag *t = &repo->tags[i];
            char *item;

            digest_to_text(&reg->ids.digests[t->digest], digest);
            item = xasprintf("%s@%s@%lld", t->name, digest,
                             (long long)t->pushed);
            if (has_key(rp, "tag", repo->name, item)) {
                t->remove = t->delete = 1;
                free(t->delete_reason);
                t->delete_reason = xstrdup("in the reviewed plan");
            }
            free(item);
        }
    }
    /* Tags the plan deletes that now name another digest, or are gone. */
    for (size_t k = 0; k < rp->key_count; k++) {
        char *copy, *repo_name, *item, *at;
        struct repo *repo;
        struct tag *t;

        if (strncmp(rp->keys[k], "tag\n", 4) != 0)
            continue;
        copy = xstrdup(rp->keys[k] + 4);
        repo_name = copy;
        item = strchr(copy, '\n');
        *item++ = '\0';
        at = strchr(item, '@');
        *at = '\0';
        repo = registry_find_repo(reg, repo_name);
        t = repo ? registry_find_tag(repo, item) : NULL;
        if (!t || !t->remove)
            log_warning("%s:%s: %s since the plan was made; left alone",
                        repo_name, item,
                        t ? "re-pointed or pushed again"
                          : "gone or unreadable");
        free(copy);
    }
}

void apply_restrict(const struct reviewed_plan *rp, struct registry *reg,
                    struct plan *plan)
{
    char text[DIGEST_TEXT_LEN + 1];
    size_t kept = 0;

    for (size_t r = 0; r < reg->repo_count; r++) {
        struct repo *repo = &reg->repos[r];

        for (size_t i = 0; i < repo->revision_count; i++) {
            digest_to_text(&reg->ids.digests[repo->revisions[i]], text);
            if (repo->revision_remove[i] == REV_REMOVE &&
                !has_key(rp, "revision", repo->name, text)) {
                repo->revision_remove[i] = REV_STAYS;
                log_info("%s@%s: not in the reviewed plan; left alone",
                         repo->name, text);
            }
        }
        for (size_t i = 0; i < repo->layer_count; i++) {
            digest_to_text(&reg->ids.digests[repo->layers[i]], text);
            if (repo->layer_remove[i] &&
                !has_key(rp, "layer", repo->name, text))
                repo->layer_remove[i] = LAYER_STAYS;
        }
        for (size_t i = 0; i < repo->upload_count; i++)
            if (repo->upload_remove[i] &&
                !has_key(rp, "upload", repo->name, repo->uploads[i]))
                repo->upload_remove[i] = 0;
    }
    plan_mark_live(reg);
    plan->bytes_freed = 0;
    for (size_t i = 0; i < plan->blob_count; i++) {
        uint32_t id = plan->blobs[i].id;

        digest_to_text(&reg->ids.digests[id], text);
        if ((reg->flags[id] & ID_LIVE) || !has_key(rp, "blob", NULL, text))
            continue;
        plan->blobs[kept++] = plan->blobs[i];
        plan->bytes_freed += plan->blobs[i].size;
    }
    plan->blob_count = kept;
    plan_count(reg, plan);
}

void apply_free(struct reviewed_plan *rp)
{
    for (size_t i = 0; i < rp->key_count; i++)
        free(rp->keys[i]);
    free(rp->keys);
    free(rp->command);
    memset(rp, 0, sizeof(*rp));
}
