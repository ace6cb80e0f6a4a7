#include "report.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "log.h"
#include "timeparse.h"
#include "xalloc.h"

void report_format_size(int64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB",
                                        "PiB"};
    double v = (double)bytes;
    int u = 0;

    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%lld B", (long long)bytes);
    else
        snprintf(buf, size, "%.1f %s", v, units[u]);
}

static json_t *digest_json(const struct registry *reg, uint32_t id)
{
    char text[DIGEST_TEXT_LEN + 1];

    digest_to_text(&reg->ids.digests[id], text);
    return json_string(text);
}

/* The verdict, reason and source a tag ends with. */
static void tag_outcome(const struct repo *repo, const struct tag *t,
                        const char **verdict, const char **reason,
                        const char **source, char *buf, size_t size)
{
    *verdict = t->remove ? "delete" : "keep";
    *source = NULL;
    if (t->remove) {
        *reason = t->delete_reason;
        *source = t->delete_source;
    } else if (t->remove_failed) {
        snprintf(buf, size, "%s%sbut it was not removed (see the warning "
                 "about its path)", t->delete_reason ? t->delete_reason : "",
                 t->delete_reason && *t->delete_reason ? ", " : "");
        *reason = buf;
        *source = t->delete_source;
    } else if (t->keep) {
        *reason = t->keep_reason;
        *source = t->keep_source;
    } else if (t->delete && repo->frozen) {
        snprintf(buf, size, "%s, but the repository is frozen: %s",
                 t->delete_reason, repo->frozen);
        *reason = buf;
        *source = t->delete_source;
    } else if (t->delete) {
        *reason = t->delete_reason;
        *source = t->delete_source;
    } else {
        *reason = "no verdict";
    }
    if (!*reason)
        *reason = "";
}

static json_t *json_or_null(json_t *v, int present)
{
    if (present)
        return v;
    json_decref(v);
    return json_null();
}

static json_t *strings_json(char *const *items, size_t count)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < count; i++)
        json_array_append_new(arr, json_string(items[i]));
    return arr;
}

/*
 * A JSON document written as it is made, member by member, in the layout
 * json_dumpf gives with JSON_INDENT(2): a report on a repository of
 * 200,000 tags would otherwise hold every tag as a jansson object.
 */
#define WRITER_MAX_DEPTH 16

struct writer {
    FILE *out;
    int depth;
    int first[WRITER_MAX_DEPTH]; /* nothing written yet at this depth */
};

static void writer_indent(struct writer *w)
{
    fprintf(w->out, "\n%*s", 2 * w->depth, "");
}

/* Start a member (key not NULL) or element: the comma, line and key. */
static void writer_item(struct writer *w, const char *key)
{
    if (w->depth > 0) {
        if (!w->first[w->depth])
            fputc(',', w->out);
        writer_indent(w);
    }
    w->first[w->depth] = 0;
    if (key)
        fprintf(w->out, "\"%s\": ", key);
}

static void writer_open(struct writer *w, const char *key, char bracket)
{
    writer_item(w, key);
    fputc(bracket, w->out);
    w->depth++;
    w->first[w->depth] = 1;
}

static void writer_close(struct writer *w, char bracket)
{
    int empty = w->first[w->depth];

    w->depth--;
    if (!empty)
        writer_indent(w);
    fputc(bracket, w->out);
}

/* Write v as a member or element, indented to its depth, and free it. */
static void writer_value(struct writer *w, const char *key, json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                   JSON_ENCODE_ANY);

    writer_item(w, key);
    if (!text) {
        fputs("null", w->out); /* only when out of memory */
    } else {
        /* A line break in jansson's output is layout, never data. */
        for (const char *p = text; *p; p++) {
            fputc(*p, w->out);
            if (*p == '\n')
                fprintf(w->out, "%*s", 2 * w->depth, "");
        }
        free(text);
    }
    json_decref(v);
}

/* End the document; return 0, or -1 when writing failed. */
static int writer_finish(struct writer *w)
{
    fputc('\n', w->out);
    return ferror(w->out) ? -1 : 0;
}

/* The fields of a tag that ls and the plans share. */
static json_t *tag_json(const struct registry *reg, const struct tag *t)
{
    json_t *tag = json_object(), *labels = json_object();

    json_object_set_new(tag, "name", json_string(t->name));
    json_object_set_new(tag, "digest", digest_json(reg, t->digest));
    json_object_set_new(tag, "pushed", json_integer(t->pushed));
    json_object_set_new(tag, "created",
                        json_or_null(json_integer(t->created),
                                     t->has_created));
    json_object_set_new(tag, "size", json_integer(t->size));
    json_object_set_new(tag, "kind", json_string(t->kind ? t->kind
                                                         : "unknown"));
    json_object_set_new(tag, "platforms",
                        strings_json(t->platforms, t->platform_count));
    for (size_t i = 0; i < t->label_count; i++)
        json_object_set_new(labels, t->labels[2 * i],
                            json_string(t->labels[2 * i + 1]));
    json_object_set_new(tag, "labels", labels);
    return tag;
}

static void plan_repo_write(struct writer *w, struct registry *reg,
                            const struct repo *repo, int with_tags)
{
    json_t *manifests = json_array(), *layers = json_array();
    json_t *uploads = json_array();
    char buf[1024];

    writer_open(w, NULL, '{');
    writer_value(w, "name", json_string(repo->name));
    writer_value(w, "frozen", json_boolean(repo->frozen != NULL));
    if (repo->frozen)
        writer_value(w, "frozen_reason", json_string(repo->frozen));
    if (with_tags) {
        writer_open(w, "tags", '[');
        for (size_t i = 0; i < repo->tag_count; i++) {
            const struct tag *t = &repo->tags[i];
            const char *verdict, *reason, *source;
            json_t *tag = tag_json(reg, t);

            tag_outcome(repo, t, &verdict, &reason, &source, buf,
                        sizeof(buf));
            json_object_set_new(tag, "verdict", json_string(verdict));
            json_object_set_new(tag, "reason", json_string(reason));
            json_object_set_new(tag, "source",
                                source ? json_string(source) : json_null());
            writer_value(w, NULL, tag);
        }
        writer_close(w, ']');
    }
    for (size_t i = 0; i < repo->revision_count; i++)
        if (repo->revision_remove && repo->revision_remove[i] == REV_REMOVE)
            json_array_append_new(manifests,
                                  digest_json(reg, repo->revisions[i]));
    for (size_t i = 0; i < repo->layer_count; i++)
        if (repo->layer_remove && repo->layer_remove[i])
            json_array_append_new(layers, digest_json(reg, repo->layers[i]));
    for (size_t i = 0; i < repo->upload_count; i++)
        if (repo->upload_remove && repo->upload_remove[i])
            json_array_append_new(uploads, json_string(repo->uploads[i]));
    writer_value(w, "manifests_deleted", manifests);
    writer_value(w, "layer_links_deleted", layers);
    writer_value(w, "uploads_deleted", uploads);
    writer_close(w, '}');
}

static json_t *problems_json(const struct registry *reg)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < reg->problem_count; i++) {
        const struct problem *p = &reg->problems[i];
        json_t *obj = json_object();
        json_object_set_new(obj, "repository",
                            p->repo ? json_string(p->repo) : json_null());
        json_object_set_new(obj, "path", json_string(p->path));
        json_object_set_new(obj, "message", json_string(p->message));
        json_array_append_new(arr, obj);
    }
    return arr;
}

static int write_json(FILE *out, json_t *doc)
{
    int rc = json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

    json_decref(doc);
    if (rc == 0)
        rc = fputc('\n', out) == EOF ? -1 : 0;
    return rc;
}

/* Number of revisions, layer links and uploads a plan removes in repo. */
static size_t repo_changes(const struct repo *repo)
{
    size_t changes = 0;

    for (size_t i = 0; i < repo->revision_count; i++)
        changes += repo->revision_remove[i] == REV_REMOVE;
    for (size_t i = 0; i < repo->layer_count; i++)
        changes += repo->layer_remove[i];
    for (size_t i = 0; i < repo->upload_count; i++)
        changes += repo->upload_remove[i];
    return changes;
}

static int plan_json(FILE *out, struct registry *reg, const struct plan *plan,
                     const struct report_options *opt)
{
    int is_gc = strcmp(opt->command, "gc") == 0;
    struct writer w = {out, 0, {1}};
    json_t *totals = json_object();

    writer_open(&w, NULL, '{');
    writer_value(&w, "regprune", json_integer(1));
    writer_value(&w, "command", json_string(opt->command));
    writer_value(&w, "dry_run", json_boolean(opt->dry_run));
    writer_value(&w, "now", json_integer(opt->now));
    writer_value(&w, "grace", json_integer(opt->grace));
    writer_value(&w, "untagged", json_boolean(opt->untagged));
    writer_open(&w, "repositories", '[');
    for (size_t r = 0; r < reg->repo_count; r++) {
        const struct repo *repo = &reg->repos[r];
        if (!repo->selected || (is_gc && !repo_changes(repo)))
            continue;
        plan_repo_write(&w, reg, repo, !is_gc);
    }
    writer_close(&w, ']');
    writer_open(&w, "blobs_deleted", '[');
    for (size_t i = 0; i < plan->blob_count; i++) {
        json_t *b = json_object();
        json_object_set_new(b, "digest", digest_json(reg, plan->blobs[i].id));
        json_object_set_new(b, "size", json_integer(plan->blobs[i].size));
        writer_value(&w, NULL, b);
    }
    writer_close(&w, ']');
    writer_value(&w, "problems", problems_json(reg));
    json_object_set_new(totals, "tags_kept", json_integer((json_int_t)plan->tags_kept));
    json_object_set_new(totals, "tags_deleted",
                        json_integer((json_int_t)plan->tags_deleted));
    json_object_set_new(totals, "manifests_deleted",
                        json_integer((json_int_t)plan->manifests_deleted));
    json_object_set_new(totals, "layer_links_deleted",
                        json_integer((json_int_t)plan->layer_links_deleted));
    json_object_set_new(totals, "uploads_deleted",
                        json_integer((json_int_t)plan->uploads_deleted));
    json_object_set_new(totals, "blobs_deleted",
                        json_integer((json_int_t)plan->blob_count));
    json_object_set_new(totals, "bytes_freed",
                        json_integer(plan->bytes_freed));
    writer_value(&w, "totals", totals);
    if (opt->trash_run)
        writer_value(&w, "trash", json_string(opt->trash_run));
    writer_close(&w, '}');
    return writer_finish(&w);
}

static void short_digest(const struct registry *reg, uint32_t id,
                         char buf[20])
{
    char hex[DIGEST_HEX_LEN + 1];

    digest_to_hex(&reg->ids.digests[id], hex);
    snprintf(buf, 20, "sha256:%.12s", hex);
}

static size_t name_width(const struct repo *repo)
{
    size_t width = 3;

    for (size_t i = 0; i < repo->tag_count; i++) {
        size_t n = strlen(repo->tags[i].name);
        if (n > width)
            width = n;
    }
    return width > 40 ? 40 : width;
}

static void plan_repo_text(FILE *out, struct registry *reg,
                           const struct repo *repo, const char *verb,
                           int with_tags)
{
    size_t deleted = 0, manifests = 0, layers = 0, uploads = 0;
    int width = (int)name_width(repo);
    char buf[1024];

    for (size_t i = 0; i < repo->tag_count; i++)
        deleted += repo->tags[i].remove;
    if (with_tags)
        fprintf(out, "%s: tags: %zu, kept: %zu, %s: %zu%s%s\n", repo->name,
                repo->tag_count, repo->tag_count - deleted, verb, deleted,
                repo->frozen ? "; frozen: " : "",
                repo->frozen ? repo->frozen : "");
    else
        fprintf(out, "%s:\n", repo->name);
    /* Without the verdicts (gc), the tags that go with their manifest are
     * still listed. */
    for (size_t i = 0; i < repo->tag_count; i++) {
        const struct tag *t = &repo->tags[i];
        const char *verdict, *reason, *source;
        char digest[20], pushed[32], size[32], *text, *where;

        if (!with_tags && !t->remove)
            continue;
        tag_outcome(repo, t, &verdict, &reason, &source, buf, sizeof(buf));
        short_digest(reg, t->digest, digest);
        timeparse_format(t->pushed, pushed);
        /* gc computes no tag sizes. */
        if (with_tags)
            report_format_size(t->size, size, sizeof(size));
        else
            snprintf(size, sizeof(size), "-");
        text = log_printable(reason);
        where = log_printable(source);
        fprintf(out, "  %-6s  %-*s  %s  %.10s  %10s  %s%s%s%s\n", verdict,
                width, t->name, digest, pushed, size, text,
                where ? " (" : "", where ? where : "", where ? ")" : "");
        free(text);
        free(where);
    }
    for (size_t i = 0; i < repo->revision_count; i++)
        manifests += repo->revision_remove[i] == REV_REMOVE;
    for (size_t i = 0; i < repo->layer_count; i++)
        layers += repo->layer_remove[i];
    for (size_t i = 0; i < repo->upload_count; i++)
        uploads += repo->upload_remove[i];
    if (manifests)
        fprintf(out, "  manifests %s: %zu\n", verb, manifests);
    if (layers)
        fprintf(out, "  layer links %s: %zu\n", verb, layers);
    if (uploads)
        fprintf(out, "  uploads %s: %zu\n", verb, uploads);
}

static int plan_text(FILE *out, struct registry *reg, const struct plan *plan,
                     const struct report_options *opt)
{
    const char *verb = opt->dry_run     ? "to delete"
                       : opt->trash_run ? "moved to the trash"
                                        : "deleted";
    int is_gc = strcmp(opt->command, "gc") == 0;
    size_t repos = 0;
    char size[32];

    for (size_t r = 0; r < reg->repo_count; r++) {
        const struct repo *repo = &reg->repos[r];

        if (!repo->selected)
            continue;
        repos++;
        /* gc decides on objects, not tags: show only repositories it
         * changes. */
        if (is_gc && repo_changes(repo) == 0)
            continue;
        plan_repo_text(out, reg, repo, verb, !is_gc);
    }
    report_format_size(plan->bytes_freed, size, sizeof(size));
    fprintf(out, "blobs %s: %zu (%s)\n", verb, plan->blob_count, size);
    if (opt->trash_run)
        fprintf(out, "trash: %s; `regprune restore %s` puts it back\n",
                opt->trash_run, opt->trash_run);
    /* One line of name=value pairs for monitoring systems to scrape. */
    fprintf(out, "summary: command=%s dry_run=%s repositories=%zu "
            "tags_kept=%zu tags_deleted=%zu manifests_deleted=%zu "
            "layer_links_deleted=%zu uploads_deleted=%zu blobs_deleted=%zu "
            "bytes_freed=%lld problems=%zu\n",
            opt->command, opt->dry_run ? "yes" : "no", repos,
            plan->tags_kept, plan->tags_deleted, plan->manifests_deleted,
            plan->layer_links_deleted, plan->uploads_deleted,
            plan->blob_count, (long long)plan->bytes_freed,
            reg->problem_count);
    return ferror(out) ? -1 : 0;
}

int report_plan(FILE *out, struct registry *reg, const struct plan *plan,
                const struct report_options *opt)
{
    if (opt->json)
        return plan_json(out, reg, plan, opt);
    return plan_text(out, reg, plan, opt);
}

static void inventory_repo_write(struct writer *w, struct registry *reg,
                                 const struct repo *repo, int64_t size,
                                 int64_t reclaimable)
{
    json_t *untagged = json_array();
    uint8_t *tagged = xcalloc(repo->revision_count + 1, 1);

    writer_open(w, NULL, '{');
    writer_value(w, "name", json_string(repo->name));
    writer_value(w, "frozen", json_boolean(repo->frozen != NULL));
    writer_open(w, "tags", '[');
    for (size_t i = 0; i < repo->tag_count; i++) {
        const struct tag *t = &repo->tags[i];
        long pos = registry_find_revision(repo, t->digest);

        if (pos >= 0)
            tagged[pos] = 1;
        writer_value(w, NULL, tag_json(reg, t));
    }
    writer_close(w, ']');
    for (size_t i = 0; i < repo->revision_count; i++)
        if (!tagged[i])
            json_array_append_new(untagged,
                                  digest_json(reg, repo->revisions[i]));
    free(tagged);
    writer_value(w, "manifests",
                 json_integer((json_int_t)repo->revision_count));
    writer_value(w, "layer_links", json_integer((json_int_t)repo->layer_count));
    writer_value(w, "size", json_integer(size));
    writer_value(w, "reclaimable", json_integer(reclaimable));
    writer_value(w, "not_tagged_directly", untagged);
    writer_close(w, '}');
}

struct repo_order {
    size_t index;
    int64_t key;
};

static int compare_order(const void *a, const void *b)
{
    const struct repo_order *x = a, *y = b;

    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

int report_inventory(FILE *out, struct registry *reg, int json,
                     const char *sort)
{
    int64_t *size = xcalloc(reg->repo_count + 1, sizeof(int64_t));
    int64_t *reclaimable = xcalloc(reg->repo_count + 1, sizeof(int64_t));
    struct repo_order *order = xcalloc(reg->repo_count + 1, sizeof(*order));
    struct writer w = {out, 0, {1}};
    int rc;

    registry_repo_bytes(reg, size, reclaimable);
    for (size_t r = 0; r < reg->repo_count; r++) {
        order[r].index = r;
        order[r].key = !sort || strcmp(sort, "name") == 0 ? 0
                       : strcmp(sort, "size") == 0        ? size[r]
                                                          : reclaimable[r];
    }
    qsort(order, reg->repo_count, sizeof(*order), compare_order);
    if (json) {
        writer_open(&w, NULL, '{');
        writer_value(&w, "regprune", json_integer(1));
        writer_value(&w, "command", json_string("ls"));
        writer_open(&w, "repositories", '[');
    }
    for (size_t k = 0; k < reg->repo_count; k++) {
        size_t r = order[k].index;
        const struct repo *repo = &reg->repos[r];
        int width = (int)name_width(repo);
        char total[32], free_bytes[32];

        if (!repo->selected)
            continue;
        if (json) {
            inventory_repo_write(&w, reg, repo, size[r], reclaimable[r]);
            continue;
        }
        report_format_size(size[r], total, sizeof(total));
        report_format_size(reclaimable[r], free_bytes, sizeof(free_bytes));
        fprintf(out, "%s: %zu tags, %zu manifests, %zu layer links, %s, %s "
                "reclaimable%s%s\n",
                repo->name, repo->tag_count, repo->revision_count,
                repo->layer_count, total, free_bytes,
                repo->frozen ? "; frozen: " : "",
                repo->frozen ? repo->frozen : "");
        for (size_t i = 0; i < repo->tag_count; i++) {
            const struct tag *t = &repo->tags[i];
            char digest[20], pushed[32], created[32], tag_size[32];

            short_digest(reg, t->digest, digest);
            timeparse_format(t->pushed, pushed);
            if (t->has_created)
                timeparse_format(t->created, created);
            else
                strcpy(created, "-");
            report_format_size(t->size, tag_size, sizeof(tag_size));
            fprintf(out, "  %-*s  %s  pushed %.10s  created %-10.10s  %10s  "
                    "%-8s", width, t->name, digest, pushed, created, tag_size,
                    t->kind ? t->kind : "unknown");
            for (size_t p = 0; p < t->platform_count; p++)
                fprintf(out, "%s%s", p ? "," : " ", t->platforms[p]);
            fputc('\n', out);
        }
    }
    free(size);
    free(reclaimable);
    free(order);
    if (json) {
        writer_close(&w, ']');
        writer_value(&w, "problems", problems_json(reg));
        writer_close(&w, '}');
        return writer_finish(&w);
    }
    rc = ferror(out) ? -1 : 0;
    return rc;
}

int report_check(FILE *out, struct registry *reg,
                 const struct check_result *result, int json)
{
    if (json) {
        json_t *doc = json_object();

        json_object_set_new(doc, "regprune", json_integer(1));
        json_object_set_new(doc, "command", json_string("check"));
        json_object_set_new(doc, "repositories",
                            json_integer((json_int_t)result->repositories));
        json_object_set_new(doc, "manifests",
                            json_integer((json_int_t)result->manifests));
        json_object_set_new(doc, "blobs_verified",
                            json_integer((json_int_t)result->blobs_verified));
        json_object_set_new(doc, "problems", problems_json(reg));
        return write_json(out, doc);
    }
    for (size_t i = 0; i < reg->problem_count; i++) {
        char *path = log_printable(reg->problems[i].path);
        char *message = log_printable(reg->problems[i].message);

        fprintf(out, "%s: %s\n", path, message);
        free(path);
        free(message);
    }
    fprintf(out, "summary: command=check repositories=%zu manifests=%zu "
            "blobs_verified=%zu problems=%zu\n",
            result->repositories, result->manifests, result->blobs_verified,
            reg->problem_count);
    return ferror(out) ? -1 : 0;
}
