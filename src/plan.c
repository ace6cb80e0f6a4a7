#define _GNU_SOURCE
#include "plan.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "path.h"
#include "pool.h"
#include "scan.h"
#include "timeparse.h"
#include "xalloc.h"

/* Per-revision marks while planning one repository. */
enum { MARK_CANDIDATE = 1, MARK_ALIVE = 2, MARK_TAGGED = 4, MARK_FOLLOWER = 8 };

/* Revision index of the manifest that revision i refers to through its
 * "subject" (signatures, SBOMs, attestations), or -1. */
static long subject_of(const struct registry *reg, const struct repo *repo,
                       size_t i)
{
    const struct manifest *m = reg->manifests[repo->revisions[i]];

    if (!m || m->subject == DIGEST_NONE)
        return -1;
    return registry_find_revision(repo, m->subject);
}

/*
 * Set bit on revision index start and every revision reachable from it
 * through index children in the same repository.
 */
static void mark_closure(const struct registry *reg, const struct repo *repo,
                         uint8_t *marks, long start, uint8_t bit,
                         long *stack)
{
    size_t depth = 0;

    if (start < 0 || (marks[start] & bit))
        return;
    marks[start] |= bit;
    stack[depth++] = start;
    while (depth > 0) {
        const struct manifest *m =
            reg->manifests[repo->revisions[stack[--depth]]];
        for (size_t i = 0; m && i < m->child_count; i++) {
            long c = registry_find_revision(repo, m->children[i]);
            if (c < 0 || (marks[c] & bit))
                continue;
            marks[c] |= bit;
            stack[depth++] = c;
        }
    }
}

/* Return 1 when the link file at rel (under the repository) is old enough
 * to sweep; a link that cannot be examined stays. */
static int link_older_than(struct registry *reg, const struct repo *repo,
                           const char *rel, int64_t limit)
{
    char path[PATH_MAX];
    struct stat st;
    int fd;

    pathf(path, sizeof(path), "repositories/%s/%s", repo->name, rel);
    fd = path_open(reg->v2_fd, path, O_RDONLY | O_PATH);
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return 0;
    }
    close(fd);
    return (int64_t)st.st_mtim.tv_sec <= limit;
}

/* Say why a manifest named on the delete command line stays. */
static void note_forced_kept(struct registry *reg, const struct repo *repo,
                             size_t i)
{
    char hex[DIGEST_HEX_LEN + 1];
    const struct tag *holder = NULL;

    for (size_t t = 0; t < repo->tag_count && !holder; t++)
        if (!repo->tags[t].remove &&
            repo->tags[t].digest == repo->revisions[i])
            holder = &repo->tags[t];
    digest_to_hex(&reg->ids.digests[repo->revisions[i]], hex);
    if (holder)
        registry_problem(reg, repo->name, repo->name,
                         "sha256:%s stays: tag %s still points at it (%s)",
                         hex, holder->name,
                         holder->keep_reason ? holder->keep_reason : "kept");
    else
        registry_problem(reg, repo->name, repo->name,
                         "sha256:%s stays: an index that stays in the "
                         "repository lists it; delete that index first",
                         hex);
}

/* gc --untagged: revisions no tag reaches become candidates once their
 * link is older than the grace window. */
static void mark_untagged(struct registry *reg, const struct repo *repo,
                          const struct plan_options *opt, uint8_t *marks)
{
    char hex[DIGEST_HEX_LEN + 1], rel[PATH_MAX];
    int64_t limit = reg->scan_started - opt->grace;

    for (size_t i = 0; i < repo->revision_count; i++) {
        if (marks[i] & (MARK_TAGGED | MARK_CANDIDATE))
            continue;
        digest_to_hex(&reg->ids.digests[repo->revisions[i]], hex);
        pathf(rel, sizeof(rel), "_manifests/revisions/sha256/%s/link", hex);
        if (link_older_than(reg, repo, rel, limit))
            marks[i] |= MARK_CANDIDATE;
    }
}

/*
 * Give followers the fate of their subjects: a referrer or convention tag
 * whose subject stays stays, with what it reaches; one whose subject goes
 * goes. Repeats until nothing changes, for referrers of referrers.
 */
static void follow_subjects(struct registry *reg, struct repo *repo,
                            uint8_t *marks, long *stack)
{
    char hex[DIGEST_HEX_LEN + 1];
    int changed = 1;

    while (changed) {
        changed = 0;
        for (size_t i = 0; i < repo->revision_count; i++) {
            long s = subject_of(reg, repo, i);
            if (s >= 0 && (marks[s] & MARK_ALIVE) &&
                !(marks[i] & MARK_ALIVE)) {
                mark_closure(reg, repo, marks, (long)i, MARK_ALIVE, stack);
                changed = 1;
            }
        }
        for (size_t i = 0; i < repo->tag_count; i++) {
            struct tag *t = &repo->tags[i];
            long s, r;
            if (t->follows == DIGEST_NONE)
                continue;
            s = registry_find_revision(repo, t->follows);
            r = registry_find_revision(repo, t->digest);
            if (s >= 0 && (marks[s] & MARK_ALIVE) && r >= 0 &&
                !(marks[r] & MARK_ALIVE)) {
                mark_closure(reg, repo, marks, r, MARK_ALIVE, stack);
                changed = 1;
            }
        }
    }
    /* Followers left without a living subject go with it. */
    for (size_t i = 0; i < repo->revision_count; i++)
        if ((marks[i] & MARK_FOLLOWER) && !(marks[i] & MARK_ALIVE))
            marks[i] |= MARK_CANDIDATE;
    for (size_t i = 0; i < repo->tag_count; i++) {
        struct tag *t = &repo->tags[i];
        long s;
        /* A follower named on the delete command line goes as asked. */
        if (t->follows == DIGEST_NONE || (t->remove && t->delete_reason))
            continue;
        s = registry_find_revision(repo, t->follows);
        digest_to_hex(&reg->ids.digests[t->follows], hex);
        free(t->keep_reason);
        free(t->delete_reason);
        t->keep_reason = t->delete_reason = NULL;
        t->remove = !(s >= 0 && (marks[s] & MARK_ALIVE));
        if (t->remove) {
            t->delete = 1;
            t->delete_reason = xasprintf("belongs to sha256:%.12s, which "
                                         "goes", hex);
        } else {
            t->keep = 1;
            t->keep_reason = xasprintf("belongs to sha256:%.12s, which "
                                       "stays", hex);
        }
    }
}

static void plan_revisions(struct registry *reg, struct repo *repo,
                           const struct plan_options *opt, uint8_t *marks,
                           long *stack)
{
    memset(marks, 0, repo->revision_count);
    /* Referrers and manifests of convention tags follow their subject:
     * they are no roots of their own. */
    for (size_t i = 0; i < repo->revision_count; i++)
        if (subject_of(reg, repo, i) >= 0)
            marks[i] |= MARK_FOLLOWER;
    for (size_t i = 0; i < repo->tag_count; i++) {
        long r = registry_find_revision(repo, repo->tags[i].digest);
        if (repo->tags[i].follows != DIGEST_NONE) {
            if (r >= 0)
                marks[r] |= MARK_FOLLOWER;
            continue;
        }
        mark_closure(reg, repo, marks, r, MARK_TAGGED, stack);
        if (repo->tags[i].remove)
            mark_closure(reg, repo, marks, r, MARK_CANDIDATE, stack);
    }
    for (size_t i = 0; i < repo->revision_count; i++) {
        if (repo->revision_remove[i] == REV_FORCED ||
            repo->revision_remove[i] == REV_JOURNAL)
            mark_closure(reg, repo, marks, (long)i, MARK_CANDIDATE, stack);
    }
    if (opt->untagged)
        mark_untagged(reg, repo, opt, marks);
    /* What remaining tags reach, and every revision not a candidate,
     * stays together with everything it reaches. */
    for (size_t i = 0; i < repo->tag_count; i++)
        if (!repo->tags[i].remove && repo->tags[i].follows == DIGEST_NONE)
            mark_closure(reg, repo, marks,
                         registry_find_revision(repo, repo->tags[i].digest),
                         MARK_ALIVE, stack);
    for (size_t i = 0; i < repo->revision_count; i++)
        if (!(marks[i] & (MARK_CANDIDATE | MARK_FOLLOWER)))
            mark_closure(reg, repo, marks, (long)i, MARK_ALIVE, stack);
    follow_subjects(reg, repo, marks, stack);
    for (size_t i = 0; i < repo->revision_count; i++) {
        int forced = repo->revision_remove[i] == REV_FORCED;
        int go = (marks[i] & MARK_CANDIDATE) && !(marks[i] & MARK_ALIVE);

        if (forced && !go)
            note_forced_kept(reg, repo, i);
        repo->revision_remove[i] = go && !repo->pinned ? REV_REMOVE
                                                       : REV_STAYS;
    }
}

/* Stamp (repository number + 1) on every blob a manifest references. */
static void stamp_refs(const struct manifest *m, uint32_t id, uint32_t *stamp,
                       uint32_t value)
{
    stamp[id] = value;
    if (!m)
        return;
    if (m->config != DIGEST_NONE)
        stamp[m->config] = value;
    for (size_t i = 0; i < m->layer_count; i++)
        stamp[m->layers[i]] = value;
}

static void plan_layers(struct registry *reg, struct repo *repo,
                        uint32_t repo_stamp, const struct plan_options *opt,
                        uint32_t *alive_stamp, uint32_t *start_stamp)
{
    char hex[DIGEST_HEX_LEN + 1], rel[PATH_MAX];
    int64_t limit = reg->scan_started - opt->grace;

    for (size_t i = 0; i < repo->revision_count; i++) {
        uint32_t id = repo->revisions[i];
        stamp_refs(reg->manifests[id], id, start_stamp, repo_stamp);
        if (repo->revision_remove[i] != REV_REMOVE)
            stamp_refs(reg->manifests[id], id, alive_stamp, repo_stamp);
    }
    for (size_t i = 0; i < repo->layer_count; i++) {
        uint32_t id = repo->layers[i];
        int journaled = repo->layer_remove[i] == LAYER_JOURNAL;

        repo->layer_remove[i] = LAYER_STAYS;
        if (repo->pinned || alive_stamp[id] == repo_stamp)
            continue;
        if (start_stamp[id] == repo_stamp || journaled) {
            repo->layer_remove[i] = LAYER_REMOVE;
        } else if (opt->sweep) {
            digest_to_hex(&reg->ids.digests[id], hex);
            pathf(rel, sizeof(rel), "_layers/sha256/%s/link", hex);
            repo->layer_remove[i] = link_older_than(reg, repo, rel, limit);
        }
    }
}

/* Read _uploads/<name>/startedat; 1 when the upload is older than limit. */
static int upload_is_stale(struct registry *reg, const struct repo *repo,
                           const char *name, int64_t limit)
{
    char path[PATH_MAX];
    char *buf;
    size_t len;
    int64_t started;

    pathf(path, sizeof(path), "repositories/%s/_uploads/%s/startedat",
             repo->name, name);
    if (path_read_file(reg->v2_fd, path, 256, &buf, &len, NULL) != 0) {
        log_info("%s: cannot read (%s); upload left alone", path,
                 strerror(errno));
        return 0;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (timeparse_rfc3339(buf, len, &started) != 0) {
        log_info("%s: not an RFC 3339 time; upload left alone", path);
        free(buf);
        return 0;
    }
    free(buf);
    return started <= limit;
}

/* The registry names uploads by UUID (8-4-4-4-12 hex digits); anything
 * else under _uploads is not its own and is left alone. */
static int is_uuid(const char *s)
{
    static const int groups[] = {8, 4, 4, 4, 12};

    for (size_t g = 0; g < 5; g++) {
        for (int i = 0; i < groups[g]; i++, s++)
            if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
                  (*s >= 'A' && *s <= 'F')))
                return 0;
        if (*s != (g < 4 ? '-' : '\0'))
            return 0;
        s += g < 4;
    }
    return 1;
}

static void plan_uploads(struct registry *reg, struct repo *repo,
                         const struct plan_options *opt)
{
    for (size_t i = 0; i < repo->upload_count; i++)
        repo->upload_remove[i] =
            opt->sweep && !repo->frozen && is_uuid(repo->uploads[i]) &&
            upload_is_stale(reg, repo, repo->uploads[i],
                            reg->scan_started - opt->grace);
}

static void set_live(struct registry *reg, uint32_t id)
{
    const struct manifest *m = reg->manifests[id];

    reg->flags[id] |= ID_LIVE;
    if (!m)
        return;
    if (m->config != DIGEST_NONE)
        reg->flags[m->config] |= ID_LIVE;
    for (size_t i = 0; i < m->layer_count; i++)
        reg->flags[m->layers[i]] |= ID_LIVE;
}

void plan_mark_live(struct registry *reg)
{
    for (size_t i = 0; i < reg->ids.count; i++)
        reg->flags[i] &= (uint8_t)~ID_LIVE;
    for (size_t r = 0; r < reg->repo_count; r++) {
        struct repo *repo = &reg->repos[r];

        for (size_t i = 0; i < repo->tag_count; i++)
            if (!repo->tags[i].remove)
                set_live(reg, repo->tags[i].digest);
        for (size_t i = 0; i < repo->revision_count; i++)
            if (repo->revision_remove[i] != REV_REMOVE)
                set_live(reg, repo->revisions[i]);
        for (size_t i = 0; i < repo->layer_count; i++)
            if (!repo->layer_remove[i])
                reg->flags[repo->layers[i]] |= ID_LIVE;
    }
}

static void add_candidate(struct registry *reg, uint32_t id)
{
    const struct manifest *m = reg->manifests[id];

    reg->flags[id] |= ID_CANDIDATE;
    if (!m)
        return;
    if (m->config != DIGEST_NONE)
        reg->flags[m->config] |= ID_CANDIDATE;
    for (size_t i = 0; i < m->layer_count; i++)
        reg->flags[m->layers[i]] |= ID_CANDIDATE;
}

struct blob_sizes {
    const struct registry *reg;
    struct plan_blob *blobs;
    int64_t limit; /* unreferenced blobs newer than this stay */
};

/*
 * A worker: the size of one candidate blob's data file, or -1 when the
 * blob stays: absent (as layers with external URLs are), or unreferenced
 * and within the grace window.
 */
static void size_blob(void *ctx, size_t i)
{
    struct blob_sizes *s = ctx;
    uint32_t id = s->blobs[i].id;
    long long mtime = 0;

    s->blobs[i].size = scan_blob_size(s->reg, id, &mtime);
    if (!(s->reg->flags[id] & ID_REFERENCED) && mtime > s->limit)
        s->blobs[i].size = -1;
}

static void plan_blobs(struct registry *reg, const struct plan_options *opt,
                       struct plan *plan)
{
    int64_t limit = reg->scan_started - opt->grace;
    struct blob_sizes sizes;
    size_t kept = 0;

    /* Unread repositories may reference any blob. */
    if (reg->incomplete)
        return;
    for (size_t r = 0; r < reg->repo_count; r++) {
        struct repo *repo = &reg->repos[r];
        for (size_t i = 0; i < repo->revision_count; i++)
            if (repo->revision_remove[i] == REV_REMOVE)
                add_candidate(reg, repo->revisions[i]);
        for (size_t i = 0; i < repo->layer_count; i++)
            if (repo->layer_remove[i])
                reg->flags[repo->layers[i]] |= ID_CANDIDATE;
    }
    sizes.reg = reg;
    for (int pass = 0; pass < 2; pass++) {
        size_t n = 0;

        for (uint32_t id = 0; id < reg->ids.count; id++) {
            uint8_t f = reg->flags[id];

            if (opt->sweep && (f & ID_IN_STORE))
                f |= ID_CANDIDATE;
            if (!(f & ID_CANDIDATE) || (f & ID_LIVE))
                continue;
            if (pass == 1)
                plan->blobs[n].id = id;
            n++;
        }
        if (pass == 0) {
            plan->blobs = xmalloc((n + 1) * sizeof(*plan->blobs));
            plan->blob_capacity = n + 1;
        }
        plan->blob_count = n;
    }
    /* One stat per candidate, on the worker pool. */
    sizes.blobs = plan->blobs;
    sizes.limit = limit;
    pool_run(plan->blob_count, size_blob, &sizes);
    for (size_t i = 0; i < plan->blob_count; i++) {
        if (plan->blobs[i].size < 0)
            continue;
        plan->blobs[kept++] = plan->blobs[i];
        plan->bytes_freed += plan->blobs[i].size;
    }
    plan->blob_count = kept;
}

void plan_prepare(struct registry *reg)
{
    for (size_t r = 0; r < reg->repo_count; r++) {
        struct repo *repo = &reg->repos[r];

        if (!repo->revision_remove)
            repo->revision_remove = xcalloc(repo->revision_count + 1, 1);
        if (!repo->layer_remove)
            repo->layer_remove = xcalloc(repo->layer_count + 1, 1);
        if (!repo->upload_remove)
            repo->upload_remove = xcalloc(repo->upload_count + 1, 1);
    }
}

void plan_build(struct registry *reg, const struct plan_options *opt,
                struct plan *plan)
{
    uint32_t *alive_stamp = xcalloc(reg->ids.count, sizeof(uint32_t));
    uint32_t *start_stamp = xcalloc(reg->ids.count, sizeof(uint32_t));
    size_t max_revisions = 1;

    memset(plan, 0, sizeof(*plan));
    plan_prepare(reg);
    for (size_t r = 0; r < reg->repo_count; r++)
        if (reg->repos[r].revision_count > max_revisions)
            max_revisions = reg->repos[r].revision_count;
    {
        uint8_t *marks = xmalloc(max_revisions);
        long *stack = xmalloc(max_revisions * sizeof(long));

        for (size_t r = 0; r < reg->repo_count; r++) {
            struct repo *repo = &reg->repos[r];
            int active = repo->selected && !repo->frozen;

            for (size_t i = 0; i < repo->tag_count; i++) {
                if (!active)
                    repo->tags[i].remove = 0;
                if (!repo->selected)
                    continue;
                plan->tags_deleted += repo->tags[i].remove;
                plan->tags_kept += !repo->tags[i].remove;
            }
            if (!active) {
                memset(repo->revision_remove, REV_STAYS,
                       repo->revision_count);
                memset(repo->layer_remove, LAYER_STAYS, repo->layer_count);
                continue;
            }
            plan_revisions(reg, repo, opt, marks, stack);
            plan_layers(reg, repo, (uint32_t)r + 1, opt, alive_stamp,
                        start_stamp);
            plan_uploads(reg, repo, opt);
            for (size_t i = 0; i < repo->revision_count; i++)
                plan->manifests_deleted +=
                    repo->revision_remove[i] == REV_REMOVE;
            for (size_t i = 0; i < repo->layer_count; i++)
                plan->layer_links_deleted += repo->layer_remove[i];
            for (size_t i = 0; i < repo->upload_count; i++)
                plan->uploads_deleted += repo->upload_remove[i];
        }
        free(marks);
        free(stack);
    }
    free(alive_stamp);
    free(start_stamp);
    plan_mark_live(reg);
    plan_blobs(reg, opt, plan);
    /* Tags that follow a subject were decided during planning. */
    plan_count(reg, plan);
}

void plan_count(struct registry *reg, struct plan *plan)
{
    plan->tags_kept = plan->tags_deleted = plan->manifests_deleted = 0;
    plan->layer_links_deleted = plan->uploads_deleted = 0;
    for (size_t r = 0; r < reg->repo_count; r++) {
        const struct repo *repo = &reg->repos[r];

        if (!repo->selected)
            continue;
        for (size_t i = 0; i < repo->tag_count; i++) {
            plan->tags_deleted += repo->tags[i].remove;
            plan->tags_kept += !repo->tags[i].remove;
        }
        for (size_t i = 0; i < repo->revision_count; i++)
            plan->manifests_deleted += repo->revision_remove[i] == REV_REMOVE;
        for (size_t i = 0; i < repo->layer_count; i++)
            plan->layer_links_deleted += repo->layer_remove[i] != 0;
        for (size_t i = 0; i < repo->upload_count; i++)
            plan->uploads_deleted += repo->upload_remove[i] != 0;
    }
}

void plan_free(struct plan *plan)
{
    free(plan->blobs);
    memset(plan, 0, sizeof(*plan));
}
