#include "registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

uint32_t registry_intern(struct registry *reg, const struct digest *d)
{
    uint32_t id = digest_table_intern(&reg->ids, d);

    if (id >= reg->ids_capacity) {
        size_t old = reg->ids_capacity;
        size_t cap = old ? old + old / 2 : 1024;

        while (cap <= id)
            cap += cap / 2;
        reg->manifests = xrealloc(reg->manifests, cap * sizeof(void *));
        reg->flags = xrealloc(reg->flags, cap);
        memset(reg->manifests + old, 0, (cap - old) * sizeof(void *));
        memset(reg->flags + old, 0, cap - old);
        reg->ids_capacity = cap;
    }
    return id;
}

void registry_problem(struct registry *reg, const char *repo,
                      const char *path, const char *fmt, ...)
{
    struct problem *p;
    va_list ap;

    reg->problems = xgrow(reg->problems, &reg->problem_capacity,
                          reg->problem_count + 1, sizeof(*reg->problems));
    p = &reg->problems[reg->problem_count++];
    p->repo = repo ? xstrdup(repo) : NULL;
    p->path = xstrdup(path ? path : "");
    va_start(ap, fmt);
    p->message = xvasprintf(fmt, ap);
    va_end(ap);
    if (!reg->problems_in_report) {
        char *path_text = log_printable(p->path);
        char *message_text = log_printable(p->message);

        log_warning("%s: %s", path_text, message_text);
        free(path_text);
        free(message_text);
    }
}

void registry_freeze(struct repo *repo, const char *reason)
{
    if (!repo->frozen)
        repo->frozen = xstrdup(reason);
}

void registry_alloc_layers(struct manifest *m, size_t count)
{
    m->layer_sizes = xcalloc(1, count * (sizeof(*m->layer_sizes) +
                                         sizeof(*m->layers) + 1) +
                                    1);
    m->layers = (uint32_t *)(void *)(m->layer_sizes + count);
    m->layer_external = (uint8_t *)(m->layers + count);
}

static void manifest_free(struct manifest *m)
{
    if (!m)
        return;
    free(m->error);
    /* The block also contains layers and layer_external. */
    free(m->layer_sizes);
    free(m->children);
    for (size_t i = 0; i < m->child_count; i++)
        free(m->child_platforms ? m->child_platforms[i] : NULL);
    free(m->child_platforms);
    free(m->platform);
    for (size_t i = 0; i < 2 * m->label_count; i++)
        free(m->labels[i]);
    free(m->labels);
    free(m);
}

static void free_strings(char **items, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(items[i]);
    free(items);
}

void registry_add_event(struct tag *t, const char *call, const char *reason,
                        const char *source)
{
    struct verdict_event *e;

    /* Most tags get one event: start with room for one, not xgrow's 8. */
    if (t->event_count == t->event_capacity) {
        t->event_capacity = t->event_capacity ? 2 * t->event_capacity : 1;
        t->events = xrealloc(t->events,
                             t->event_capacity * sizeof(*t->events));
    }
    e = &t->events[t->event_count++];
    e->call = call;
    e->reason = reason ? xstrdup(reason) : NULL;
    e->source = source;
}

/* FNV-1a. */
static size_t string_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    return (size_t)h;
}

const char *registry_intern_string(struct registry *reg, const char *s)
{
    size_t i;

    /* Keep the set at most half full. */
    if (2 * (reg->string_count + 1) > reg->string_mask + 1) {
        size_t mask = reg->string_mask ? 2 * reg->string_mask + 1 : 15;
        char **grown = xcalloc(mask + 1, sizeof(*grown));

        for (size_t k = 0; reg->strings && k <= reg->string_mask; k++) {
            if (!reg->strings[k])
                continue;
            for (i = string_hash(reg->strings[k]) & mask; grown[i];
                 i = (i + 1) & mask)
                ;
            grown[i] = reg->strings[k];
        }
        free(reg->strings);
        reg->strings = grown;
        reg->string_mask = mask;
    }
    for (i = string_hash(s) & reg->string_mask; reg->strings[i];
         i = (i + 1) & reg->string_mask)
        if (strcmp(reg->strings[i], s) == 0)
            return reg->strings[i];
    reg->strings[i] = xstrdup(s);
    reg->string_count++;
    return reg->strings[i];
}

void registry_reset_verdicts(struct repo *repo)
{
    for (size_t i = 0; i < repo->tag_count; i++) {
        struct tag *t = &repo->tags[i];

        free(t->keep_reason);
        free(t->delete_reason);
        t->keep_reason = t->delete_reason = NULL;
        t->keep_source = t->delete_source = NULL;
        t->keep = t->delete = t->protect = t->remove = 0;
        t->remove_failed = 0;
        for (size_t e = 0; e < t->event_count; e++)
            free(t->events[e].reason);
        t->event_count = 0;
    }
}

static void tag_free(struct tag *t)
{
    if (t->borrowed) {
        free(t->platforms);
    } else {
        free_strings(t->platforms, t->platform_count);
        free_strings(t->labels, 2 * t->label_count);
    }
    for (size_t e = 0; e < t->event_count; e++)
        free(t->events[e].reason);
    free(t->events);
    free(t->name);
    free(t->keep_reason);
    free(t->delete_reason);
}

void registry_free(struct registry *reg)
{
    for (size_t i = 0; i < reg->repo_count; i++) {
        struct repo *r = &reg->repos[i];
        for (size_t j = 0; j < r->tag_count; j++)
            tag_free(&r->tags[j]);
        for (size_t j = 0; j < r->upload_count; j++)
            free(r->uploads[j]);
        free(r->tags);
        free(r->revisions);
        free(r->revision_remove);
        free(r->layers);
        free(r->layer_remove);
        free(r->uploads);
        free(r->upload_remove);
        free(r->frozen);
        free(r->pinned);
        free(r->name);
    }
    free(reg->repos);
    for (size_t i = 0; i < reg->ids.count; i++)
        manifest_free(reg->manifests[i]);
    free(reg->manifests);
    free(reg->flags);
    free(reg->size_marks);
    free(reg->size_marked);
    free(reg->newest_upload_repo);
    for (size_t i = 0; i < reg->problem_count; i++) {
        free(reg->problems[i].repo);
        free(reg->problems[i].path);
        free(reg->problems[i].message);
    }
    free(reg->problems);
    for (size_t i = 0; i < reg->leftover_count; i++)
        free(reg->leftovers[i]);
    free(reg->leftovers);
    for (size_t i = 0; reg->strings && i <= reg->string_mask; i++)
        free(reg->strings[i]);
    free(reg->strings);
    digest_table_free(&reg->ids);
    if (reg->blob_fds)
        for (int i = 0; i < 256; i++)
            if (reg->blob_fds[i] >= 0)
                close(reg->blob_fds[i]);
    free(reg->blob_fds);
    if (reg->v2_fd >= 0)
        close(reg->v2_fd);
    free(reg->root);
    memset(reg, 0, sizeof(*reg));
    reg->v2_fd = -1;
}

struct repo *registry_find_repo(struct registry *reg, const char *name)
{
    size_t lo = 0, hi = reg->repo_count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(reg->repos[mid].name, name);
        if (c == 0)
            return &reg->repos[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

struct tag *registry_find_tag(struct repo *repo, const char *name)
{
    size_t lo = 0, hi = repo->tag_count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(repo->tags[mid].name, name);
        if (c == 0)
            return &repo->tags[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

long registry_find_revision(const struct repo *repo, uint32_t id)
{
    size_t lo = 0, hi = repo->revision_count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (repo->revisions[mid] == id)
            return (long)mid;
        if (repo->revisions[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/*
 * Return size the first time blob id is counted for the current image,
 * and 0 after: reg->size_marks has a bit per id, and the ids set are
 * listed to be cleared when the image is done, so counting stays linear
 * however many layers an image has.
 */
static int64_t count_once(struct registry *reg, uint32_t id, int64_t size)
{
    uint8_t bit = (uint8_t)(1u << (id & 7));

    if (reg->size_marks[id >> 3] & bit)
        return 0;
    reg->size_marks[id >> 3] |= bit;
    reg->size_marked = xgrow(reg->size_marked, &reg->size_marked_capacity,
                             reg->size_marked_count + 1,
                             sizeof(*reg->size_marked));
    reg->size_marked[reg->size_marked_count++] = id;
    return size > 0 ? size : 0;
}

static int64_t add_image(struct registry *reg, const struct manifest *m)
{
    int64_t total = 0;

    if (m->config != DIGEST_NONE)
        total += count_once(reg, m->config, m->config_size);
    for (size_t i = 0; i < m->layer_count; i++)
        total += count_once(reg, m->layers[i], m->layer_sizes[i]);
    return total;
}

int64_t registry_image_size(struct registry *reg, const struct repo *repo,
                            uint32_t manifest_id)
{
    const struct manifest *m = reg->manifests[manifest_id];
    int64_t total;

    if (!m || m->state != MSTATE_OK)
        return 0;
    if (reg->size_marks_count < reg->ids.count) {
        free(reg->size_marks);
        reg->size_marks_count = reg->ids.count;
        reg->size_marks = xcalloc(reg->size_marks_count / 8 + 1, 1);
    }
    total = m->blob_size + add_image(reg, m);
    for (size_t i = 0; i < m->child_count; i++) {
        const struct manifest *c = reg->manifests[m->children[i]];
        if (!c || c->state != MSTATE_OK ||
            registry_find_revision(repo, m->children[i]) < 0)
            continue;
        total += count_once(reg, m->children[i], c->blob_size);
        total += add_image(reg, c);
    }
    for (size_t i = 0; i < reg->size_marked_count; i++)
        reg->size_marks[reg->size_marked[i] >> 3] = 0;
    reg->size_marked_count = 0;
    return total;
}

static const char *manifest_kind_of(const struct manifest *m)
{
    if (!m || m->state == MSTATE_MISSING || m->state == MSTATE_INVALID)
        return "unreadable";
    if (m->state == MSTATE_UNKNOWN)
        return "unknown";
    if (m->subject != DIGEST_NONE)
        return "referrer";
    if (m->child_count > 0 || m->kind == MANIFEST_DOCKER_LIST ||
        m->kind == MANIFEST_OCI_INDEX)
        return "index";
    return m->artifact ? "artifact" : "image";
}

/* Add a platform the manifests own; t->platforms has room for it. */
static void add_platform(struct tag *t, const char *platform)
{
    for (size_t i = 0; i < t->platform_count; i++)
        if (strcmp(t->platforms[i], platform) == 0)
            return;
    t->platforms[t->platform_count++] = (char *)platform;
}

void registry_describe_tags(struct registry *reg, struct repo *repo)
{
    for (size_t i = 0; i < repo->tag_count; i++) {
        struct tag *t = &repo->tags[i];
        const struct manifest *m = reg->manifests[t->digest];

        if (t->borrowed) { /* described before, with fewer configs read */
            free(t->platforms);
            t->platforms = NULL;
            t->labels = NULL;
            t->platform_count = t->label_count = 0;
        }
        t->kind = manifest_kind_of(m);
        t->size = registry_image_size(reg, repo, t->digest);
        if (!m)
            continue;
        t->has_created = m->has_created;
        t->created = m->created;
        /* The strings stay the manifests': a registry has a tag for each
         * image, and its labels and platforms would be copied each time. */
        t->borrowed = 1;
        t->platforms = xmalloc((m->child_count ? m->child_count : 1) *
                               sizeof(char *));
        if (m->child_count == 0 && m->platform)
            add_platform(t, m->platform);
        for (size_t c = 0; c < m->child_count; c++) {
            const struct manifest *child = reg->manifests[m->children[c]];
            const char *platform = m->child_platforms[c];

            if (!platform && child)
                platform = child->platform;
            if (platform && registry_find_revision(repo, m->children[c]) >= 0)
                add_platform(t, platform);
        }
        t->labels = m->labels;
        t->label_count = m->label_count;
    }
}

/*
 * The manifest a tag named "sha256-<hex>.sig", ".att" or ".sbom" (the
 * signature, attestation and SBOM convention of cosign and others) belongs
 * to, when the repository holds it; else DIGEST_NONE.
 */
uint32_t registry_convention_subject(struct registry *reg,
                                     const struct repo *repo,
                                     const char *name)
{
    static const char *const suffixes[] = {".sig", ".att", ".sbom"};
    struct digest d;
    uint32_t id;

    if (strncmp(name, "sha256-", 7) != 0 || strlen(name) < 7 + 64 + 4)
        return DIGEST_NONE;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (strcmp(name + 7 + 64, suffixes[i]) != 0)
            continue;
        if (digest_parse_hex(name + 7, 64, &d) != 0)
            return DIGEST_NONE;
        id = digest_table_find(&reg->ids, &d);
        if (id != DIGEST_NONE && registry_find_revision(repo, id) >= 0)
            return id;
    }
    return DIGEST_NONE;
}

/* Owner marks: 0 for none yet, repository number + 1, or UINT32_MAX for
 * a blob that two repositories reference. */
static void own(uint32_t *owner, int64_t *bytes, uint32_t id, int64_t size,
                uint32_t repo_mark)
{
    if (owner[id] == repo_mark || owner[id] == UINT32_MAX)
        return;
    owner[id] = owner[id] == 0 ? repo_mark : UINT32_MAX;
    if (owner[id] == repo_mark)
        bytes[id] = size > 0 ? size : 0;
}

void registry_repo_bytes(struct registry *reg, int64_t *size,
                         int64_t *reclaimable)
{
    uint32_t *owner = xcalloc(reg->ids.count + 1, sizeof(uint32_t));
    int64_t *bytes = xcalloc(reg->ids.count + 1, sizeof(int64_t));
    uint32_t *seen = xcalloc(reg->ids.count + 1, sizeof(uint32_t));

    for (size_t r = 0; r < reg->repo_count; r++) {
        const struct repo *repo = &reg->repos[r];
        uint32_t mark = (uint32_t)r + 1;

        size[r] = 0;
        for (size_t i = 0; i < repo->revision_count; i++) {
            uint32_t id = repo->revisions[i];
            const struct manifest *m = reg->manifests[id];

            if (!m || m->state != MSTATE_OK)
                continue;
            if (seen[id] != mark) {
                seen[id] = mark;
                size[r] += m->blob_size;
            }
            own(owner, bytes, id, m->blob_size, mark);
            if (m->config != DIGEST_NONE) {
                if (seen[m->config] != mark) {
                    seen[m->config] = mark;
                    size[r] += m->config_size > 0 ? m->config_size : 0;
                }
                own(owner, bytes, m->config, m->config_size, mark);
            }
            for (size_t l = 0; l < m->layer_count; l++) {
                uint32_t b = m->layers[l];
                if (seen[b] != mark) {
                    seen[b] = mark;
                    size[r] += m->layer_sizes[l] > 0 ? m->layer_sizes[l] : 0;
                }
                own(owner, bytes, b, m->layer_sizes[l], mark);
            }
        }
    }
    for (size_t r = 0; r < reg->repo_count; r++)
        reclaimable[r] = 0;
    for (uint32_t id = 0; id < reg->ids.count; id++)
        if (owner[id] != 0 && owner[id] != UINT32_MAX)
            reclaimable[owner[id] - 1] += bytes[id];
    free(owner);
    free(bytes);
    free(seen);
}
