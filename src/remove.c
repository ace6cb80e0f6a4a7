#define _GNU_SOURCE
#include "remove.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <jansson.h>
#include <time.h>

#include "log.h"
#include "timeparse.h"
#include "trash.h"
#include "path.h"
#include "pool.h"
#include "scan.h"
#include "xalloc.h"

int remove_lock(const char *root)
{
    char *path = xasprintf("%s/.regprune.lock", root);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);

    /* flock needs no write access: a lock file another user created,
     * such as root, still serves. */
    if (fd < 0 && errno == EACCES) {
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
            errno = EACCES; /* no lock file, and no right to create one */
    }
    if (fd < 0) {
        log_error("cannot create lock file %s: %s%s", path, strerror(errno),
                  errno == EACCES ? "; run as the user that owns the "
                                    "registry root"
                                  : "");
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            log_error("another regprune run holds %s; wait for it to finish",
                      path);
        else
            log_error("cannot lock %s: %s", path, strerror(errno));
        close(fd);
        free(path);
        return -1;
    }
    free(path);
    return fd;
}

/* One removal, for the audit log. */
struct removal {
    const char *kind; /* "tag", "revision", "layer link", "blob", ... */
    const char *repo; /* or NULL */
    uint32_t digest;  /* or DIGEST_NONE */
    int64_t size;     /* bytes freed, or -1 */
    const struct tag *tag; /* the tag removed, or NULL */
};

static void audit(const struct remove_options *opt, struct registry *reg,
                  const struct removal *r, const char *path)
{
    json_t *line;
    char when[32], digest[DIGEST_TEXT_LEN + 1];

    if (!opt || !opt->audit)
        return;
    line = json_object();
    timeparse_format((int64_t)time(NULL), when);
    json_object_set_new(line, "time", json_string(when));
    json_object_set_new(line, "run", json_string(opt->run_id));
    json_object_set_new(line, "action",
                        json_string(opt->trash_fd >= 0 ? "moved to trash"
                                                       : "deleted"));
    json_object_set_new(line, "kind", json_string(r->kind));
    json_object_set_new(line, "repository",
                        r->repo ? json_string(r->repo) : json_null());
    json_object_set_new(line, "path", json_string(path));
    if (r->digest != DIGEST_NONE) {
        digest_to_text(&reg->ids.digests[r->digest], digest);
        json_object_set_new(line, "digest", json_string(digest));
    }
    if (r->size >= 0)
        json_object_set_new(line, "size", json_integer(r->size));
    if (r->tag) {
        json_object_set_new(line, "tag", json_string(r->tag->name));
        json_object_set_new(line, "reason",
                            json_string(r->tag->delete_reason
                                            ? r->tag->delete_reason
                                            : ""));
        json_object_set_new(line, "source",
                            r->tag->delete_source
                                ? json_string(r->tag->delete_source)
                                : json_null());
    }
    if (json_dumpf(line, opt->audit, JSON_COMPACT | JSON_PRESERVE_ORDER) ||
        fputc('\n', opt->audit) == EOF || fflush(opt->audit) != 0)
        registry_problem(reg, r->repo, path, "cannot write the --log file: "
                         "%s; this removal is not in it", strerror(errno));
    json_decref(line);
}

/* Log and audit a removal that succeeded, or record one that failed. */
static int removal_done(const struct remove_options *opt,
                        struct registry *reg, const struct removal *r,
                        const char *path, int error)
{
    if (error == 0) {
        log_debug("removed %s", path);
        audit(opt, reg, r, path);
        return 0;
    }
    /* A history entry of a kept tag is not in the journal. */
    if (strcmp(r->kind, "tag history") == 0)
        registry_problem(reg, r->repo, path, "cannot remove: %s; it names "
                         "a deleted manifest, and later runs leave it, so "
                         "remove it by hand", strerror(error));
    else
        registry_problem(reg, r->repo, path, "cannot remove: %s; a later "
                         "run will retry", strerror(error));
    return -1;
}

/* Delete path under v2, or move it into the trash; audit what went. */
static int remove_path(const struct remove_options *opt,
                       struct registry *reg, const struct removal *r,
                       const char *path)
{
    int rc;

    if (opt && opt->trash_fd >= 0)
        rc = trash_move(opt, reg->v2_fd, path);
    else
        rc = path_remove_tree(reg->v2_fd, path);
    return removal_done(opt, reg, r, path, rc == 0 ? 0 : errno);
}

/* Keep everything of repo from here on; its blobs stay live. */
static void hold_repo(struct repo *repo)
{
    memset(repo->revision_remove, 0, repo->revision_count);
    memset(repo->layer_remove, 0, repo->layer_count);
}

/* Drop history entries of remaining tags that name removed revisions. */
static void remove_history(const struct remove_options *opt,
                           struct registry *reg, struct repo *repo)
{
    char tags[PATH_MAX];
    int tags_fd;

    pathf(tags, sizeof(tags), "repositories/%s/_manifests/tags", repo->name);
    tags_fd = path_open_dir(reg->v2_fd, tags);
    if (tags_fd < 0)
        return;
    for (size_t i = 0; i < repo->tag_count; i++) {
        struct tag *t = &repo->tags[i];
        struct path_dir dir;
        char rel[PATH_MAX];
        const char *name;
        unsigned char type;
        int fd;

        if (t->remove)
            continue;
        path_join(rel, sizeof(rel), t->name, "index/sha256");
        fd = path_open_dir(tags_fd, rel);
        if (fd < 0)
            continue;
        path_dir_init(&dir, fd);
        while ((name = path_dir_next(&dir, &type)) != NULL) {
            struct digest d;
            uint32_t id;
            long pos;
            char path[PATH_MAX + 300];

            if (digest_parse_hex(name, strlen(name), &d))
                continue;
            id = digest_table_find(&reg->ids, &d);
            if (id == DIGEST_NONE ||
                (pos = registry_find_revision(repo, id)) < 0 ||
                repo->revision_remove[pos] != REV_REMOVE)
                continue;
            pathf(path, sizeof(path), "%s/%s/%s", tags, rel, name);
            struct removal what = {"tag history", repo->name, id, -1, NULL};
            if (opt && opt->trash_fd >= 0)
                remove_path(opt, reg, &what, path);
            else
                removal_done(opt, reg, &what, path,
                             path_remove_dir_of(fd, name, "link") == 0
                                 ? 0
                                 : errno);
        }
        close(fd);
    }
    close(tags_fd);
}

/* Removals handed to the worker pool together. */
#define REMOVAL_BATCH 1024

/* Directories a batch keeps open, each the parent of some of its items. */
#define BATCH_PARENTS 32

enum { ITEM_TAG, ITEM_REVISION, ITEM_LAYER };

static const char *const item_parent[] = {
    [ITEM_TAG] = "_manifests/tags",
    [ITEM_REVISION] = "_manifests/revisions/sha256",
    [ITEM_LAYER] = "_layers/sha256",
};

/*
 * Tags, revisions or layer links to remove. Each item is a directory under
 * a parent that the batch opens once, such as a repository's
 * _layers/sha256, so that a worker resolves only the item's own name.
 */
struct removal_batch {
    const struct remove_options *opt;
    struct registry *reg;
    size_t count, failed, parent_count;
    int drift; /* a tag changed since the scan */
    struct {
        int fd; /* -1 when it cannot be opened */
        const struct repo *repo;
        int kind;
    } parents[BATCH_PARENTS];
    struct {
        char *path;   /* under v2, for messages and the trash */
        size_t name;  /* offset of the last component in path */
        struct repo *repo;
        size_t index; /* in repo->tags, ->revisions or ->layers */
        int kind;
        int parent;   /* in parents */
        int error;
        int changed;  /* a tag re-pointed since the scan */
    } items[REMOVAL_BATCH];
};

/* A tag re-pointed since the scan belongs to a push we did not see. */
static int tag_unchanged(const struct registry *reg, int dirfd,
                         const char *rel, const struct tag *t)
{
    char link[PATH_MAX];
    char *buf;
    size_t len;
    struct digest d;
    int same;

    path_join(link, sizeof(link), rel, "current/link");
    if (path_read_file(dirfd, link, 256, &buf, &len, NULL) != 0)
        return errno == ENOENT ? 1 : 0;
    same = digest_parse(buf, len, &d) == 0 &&
           memcmp(&d, &reg->ids.digests[t->digest], sizeof(d)) == 0;
    free(buf);
    return same;
}

/* Remove a tag's index: sha256/<hex>/link by name, anything else listed. */
static int remove_tag_index(int tag_fd)
{
    int fd = path_open_dir(tag_fd, "index");
    int rc;

    if (fd < 0)
        return errno == ENOENT ? 0 : path_remove_tree(tag_fd, "index");
    rc = path_remove_dirs_of(fd, "sha256", "link");
    close(fd);
    if (rc != 0)
        return -1;
    if (path_unlink(tag_fd, "index", AT_REMOVEDIR) == 0 || errno == ENOENT)
        return 0;
    return path_remove_tree(tag_fd, "index");
}

/*
 * Remove tag directory rel beneath dirfd: its history (index/sha256/<hex>/
 * link) and anything else first, and current/link last, so that a tag
 * whose removal fails or stops halfway still names its manifest.
 */
static int remove_tag_dir(int dirfd, const char *rel)
{
    int fd = path_open_dir(dirfd, rel);
    struct path_dir dir;
    const char *name;
    unsigned char type;
    int rc = 0, saved = 0;

    if (fd < 0)
        return path_remove_tree(dirfd, rel);
    path_dir_init(&dir, fd);
    while ((name = path_dir_next(&dir, &type)) != NULL) {
        int failed;

        if (strcmp(name, "current") == 0)
            continue;
        failed = strcmp(name, "index") == 0 ? remove_tag_index(fd)
                                            : path_remove_tree(fd, name);
        if (failed && !rc) {
            saved = errno;
            rc = -1;
        }
    }
    if (errno && !rc) {
        saved = errno;
        rc = -1;
    }
    if (!rc && (path_remove_dir_of(fd, "current", "link") != 0 ||
                (path_unlink(dirfd, rel, AT_REMOVEDIR) != 0 &&
                 errno != ENOENT))) {
        saved = errno;
        rc = -1;
    }
    close(fd);
    errno = saved;
    return rc;
}

static void remove_batch_item(void *ctx, size_t i)
{
    struct removal_batch *b = ctx;
    int parent = b->parents[b->items[i].parent].fd;
    int fd = parent >= 0 ? parent : b->reg->v2_fd;
    const char *rel = b->items[i].path;
    int rc;

    if (parent >= 0)
        rel += b->items[i].name;
    b->items[i].error = 0;
    b->items[i].changed = 0;
    if (b->items[i].kind == ITEM_TAG) {
        const struct tag *t = &b->items[i].repo->tags[b->items[i].index];
        if (!tag_unchanged(b->reg, fd, rel, t)) {
            b->items[i].changed = 1;
            return;
        }
        if (b->opt && b->opt->trash_fd >= 0)
            return; /* moved in order afterwards */
        rc = remove_tag_dir(fd, rel);
    } else {
        rc = path_remove_dir_of(fd, rel, "link");
    }
    if (rc != 0)
        b->items[i].error = errno ? errno : EIO;
}

/* The outcome of a tag's removal, in the order of the plan. */
static void finish_tag(struct removal_batch *b, size_t i)
{
    struct repo *repo = b->items[i].repo;
    struct tag *t = &repo->tags[b->items[i].index];
    const char *path = b->items[i].path;
    struct removal what = {"tag", repo->name, t->digest, -1, t};

    if (b->items[i].changed) {
        registry_problem(b->reg, repo->name, path,
                         "tag changed since the scan (a push?); left alone, "
                         "and no blob is deleted in this run");
        b->drift = 1;
    } else if (removal_done(b->opt, b->reg, &what, path,
                            b->items[i].error) == 0) {
        return;
    }
    t->remove = 0;
    t->remove_failed = 1;
    hold_repo(repo);
    b->failed++;
}

/*
 * Remove the batch's directories on the worker pool. When moving to the
 * trash, only the tag checks run there, and the moves follow one at a
 * time. Then log, audit and undo the
 * plan for each failure, in the order the items were added.
 */
static void flush_removals(struct removal_batch *b)
{
    int trash = b->opt && b->opt->trash_fd >= 0;

    if (!trash || (b->count > 0 && b->items[0].kind == ITEM_TAG))
        pool_run(b->count, remove_batch_item, b);
    for (size_t i = 0; i < b->count; i++) {
        struct repo *repo = b->items[i].repo;
        size_t index = b->items[i].index;
        int kind = b->items[i].kind;

        if (trash && !b->items[i].changed)
            b->items[i].error =
                trash_move(b->opt, b->reg->v2_fd, b->items[i].path) == 0
                    ? 0
                    : errno;
        if (kind == ITEM_TAG) {
            finish_tag(b, i);
        } else {
            struct removal what = {kind == ITEM_REVISION ? "revision"
                                                         : "layer link",
                                   repo->name,
                                   kind == ITEM_REVISION
                                       ? repo->revisions[index]
                                       : repo->layers[index],
                                   -1, NULL};
            if (removal_done(b->opt, b->reg, &what, b->items[i].path,
                             b->items[i].error) != 0) {
                b->failed++;
                if (kind == ITEM_REVISION) {
                    /* The manifest stays, and so does what it
                     * references. */
                    repo->revision_remove[index] = REV_STAYS;
                    memset(repo->layer_remove, 0, repo->layer_count);
                } else {
                    repo->layer_remove[index] = 0;
                }
            }
        }
        free(b->items[i].path);
    }
    for (size_t p = 0; p < b->parent_count; p++)
        if (b->parents[p].fd >= 0)
            close(b->parents[p].fd);
    b->count = 0;
    b->parent_count = 0;
}

/* The batch's parent directory for kind in repo, opened on first use. */
static int batch_parent(struct removal_batch *b, const struct repo *repo,
                        int kind)
{
    char path[PATH_MAX];
    size_t p = b->parent_count;

    if (p > 0 && b->parents[p - 1].repo == repo &&
        b->parents[p - 1].kind == kind)
        return (int)p - 1;
    if (p == BATCH_PARENTS) {
        flush_removals(b);
        p = 0;
    }
    pathf(path, sizeof(path), "repositories/%s/%s", repo->name,
          item_parent[kind]);
    b->parents[p].fd = path_open_dir(b->reg->v2_fd, path);
    b->parents[p].repo = repo;
    b->parents[p].kind = kind;
    b->parent_count++;
    return (int)p;
}

static void add_removal(struct removal_batch *b, struct repo *repo,
                        size_t index, int kind)
{
    char name[NAME_MAX + 1];
    size_t n;
    int parent;

    if (b->count == REMOVAL_BATCH)
        flush_removals(b);
    parent = batch_parent(b, repo, kind); /* may flush */
    n = b->count;
    b->items[n].parent = parent;
    b->items[n].changed = 0;
    if (kind == ITEM_TAG)
        snprintf(name, sizeof(name), "%s", repo->tags[index].name);
    else
        digest_to_hex(&b->reg->ids.digests[kind == ITEM_REVISION
                                               ? repo->revisions[index]
                                               : repo->layers[index]],
                      name);
    b->items[n].path = xasprintf("repositories/%s/%s/%s", repo->name,
                                 item_parent[kind], name);
    b->items[n].name = strlen(b->items[n].path) - strlen(name);
    b->items[n].repo = repo;
    b->items[n].index = index;
    b->items[n].kind = kind;
    b->count++;
}

static struct removal_batch *batch_new(const struct remove_options *opt,
                                       struct registry *reg)
{
    struct removal_batch *b = xcalloc(1, sizeof(*b));

    b->opt = opt;
    b->reg = reg;
    return b;
}

/* Finish the batch and free it; return how many of its removals failed. */
static size_t batch_end(struct removal_batch *b, int *drift)
{
    size_t failed;

    flush_removals(b);
    failed = b->failed;
    if (drift)
        *drift = b->drift;
    free(b);
    return failed;
}

static size_t remove_tags(const struct remove_options *opt,
                          struct registry *reg, int *drift)
{
    struct removal_batch *b = batch_new(opt, reg);

    for (size_t r = 0; r < reg->repo_count; r++) {
        struct repo *repo = &reg->repos[r];

        for (size_t i = 0; i < repo->tag_count; i++)
            if (repo->tags[i].remove)
                add_removal(b, repo, i, ITEM_TAG);
    }
    return batch_end(b, drift);
}

static size_t remove_revisions(const struct remove_options *opt,
                               struct registry *reg)
{
    struct removal_batch *b = batch_new(opt, reg);
    uint8_t *any = xcalloc(reg->repo_count + 1, 1);
    size_t failed;

    for (size_t r = 0; r < reg->repo_count; r++) {
        struct repo *repo = &reg->repos[r];

        for (size_t i = 0; i < repo->revision_count; i++) {
            if (repo->revision_remove[i] != REV_REMOVE)
                continue;
            any[r] = 1;
            add_removal(b, repo, i, ITEM_REVISION);
        }
    }
    failed = batch_end(b, NULL);
    for (size_t r = 0; r < reg->repo_count; r++)
        if (any[r])
            remove_history(opt, reg, &reg->repos[r]);
    free(any);
    return failed;
}

static size_t remove_layers(const struct remove_options *opt,
                            struct registry *reg)
{
    struct removal_batch *b = batch_new(opt, reg);

    for (size_t r = 0; r < reg->repo_count; r++) {
        struct repo *repo = &reg->repos[r];

        for (size_t i = 0; i < repo->layer_count; i++)
            if (repo->layer_remove[i])
                add_removal(b, repo, i, ITEM_LAYER);
    }
    return batch_end(b, NULL);
}

struct blob_removals {
    const struct registry *reg;
    const struct plan *plan;
    int *errors; /* per blob: 0, an errno, or -1 when it stays */
};

/* A worker: delete one blob's directory through its two-digit parent. */
static void remove_blob_item(void *ctx, size_t i)
{
    struct blob_removals *b = ctx;
    uint32_t id = b->plan->blobs[i].id;
    char rel[128];
    int fd;

    if (b->reg->flags[id] & ID_LIVE) {
        b->errors[i] = -1; /* an earlier failure kept something needing it */
        return;
    }
    fd = scan_blob_at(b->reg, id, NULL, rel, sizeof(rel));
    b->errors[i] = 0;
    if (path_remove_dir_of(fd, rel, "data") != 0)
        b->errors[i] = errno ? errno : EIO;
}

/* Remove each two-digit directory of blobs/sha256 that is now empty. */
static void remove_empty_prefixes(struct registry *reg, const uint8_t *used)
{
    char path[64];

    for (int p = 0; p < 256; p++) {
        if (!used[p])
            continue;
        pathf(path, sizeof(path), "blobs/sha256/%02x", p);
        if (path_unlink(reg->v2_fd, path, AT_REMOVEDIR) != 0)
            continue;
        if (reg->blob_fds && reg->blob_fds[p] >= 0) {
            close(reg->blob_fds[p]);
            reg->blob_fds[p] = -1;
        }
    }
}

/*
 * Delete the plan's blobs: on the worker pool when deleting, one at a time
 * when moving to the trash. The log, the audit lines and the problems
 * follow the plan's order either way.
 */
static size_t remove_blobs(const struct remove_options *opt,
                           struct registry *reg, struct plan *plan)
{
    char hex[DIGEST_HEX_LEN + 1], path[PATH_MAX];
    size_t failed = 0;
    uint8_t used[256] = {0};
    int *errors = xcalloc(plan->blob_count + 1, sizeof(*errors));
    struct blob_removals b = {reg, plan, errors};

    if (!opt || opt->trash_fd < 0)
        pool_run(plan->blob_count, remove_blob_item, &b);
    for (size_t i = 0; i < plan->blob_count; i++) {
        uint32_t id = plan->blobs[i].id;
        struct removal what = {"blob", NULL, id, plan->blobs[i].size, NULL};

        digest_to_hex(&reg->ids.digests[id], hex);
        pathf(path, sizeof(path), "blobs/sha256/%.2s/%s", hex, hex);
        if (opt && opt->trash_fd >= 0) {
            if (reg->flags[id] & ID_LIVE)
                continue;
            errors[i] = trash_move(opt, reg->v2_fd, path) == 0 ? 0 : errno;
        }
        if (errors[i] < 0)
            continue;
        if (removal_done(opt, reg, &what, path, errors[i]) != 0) {
            reg->flags[id] |= ID_LIVE; /* it stays: not counted as freed */
            failed++;
            continue;
        }
        used[reg->ids.digests[id].bytes[0]] = 1;
    }
    remove_empty_prefixes(reg, used);
    free(errors);
    return failed;
}

static size_t remove_uploads(const struct remove_options *opt,
                             struct registry *reg)
{
    char path[PATH_MAX];
    size_t failed = 0;

    for (size_t r = 0; r < reg->repo_count; r++) {
        struct repo *repo = &reg->repos[r];
        for (size_t i = 0; i < repo->upload_count; i++) {
            if (!repo->upload_remove[i])
                continue;
            pathf(path, sizeof(path), "repositories/%s/_uploads/%s",
                     repo->name, repo->uploads[i]);
            struct removal what = {"upload", repo->name, DIGEST_NONE, -1,
                                   NULL};
            failed += remove_path(opt, reg, &what, path) != 0;
        }
    }
    return failed;
}

static size_t remove_leftovers(const struct remove_options *opt,
                               struct registry *reg)
{
    size_t failed = 0;

    /* Directories only to remove when empty ("?" prefix) go last. */
    for (size_t i = 0; i < reg->leftover_count; i++)
        if (reg->leftovers[i][0] != '?')
        {
            struct removal what = {"leftover", NULL, DIGEST_NONE, -1, NULL};
            failed += remove_path(opt, reg, &what, reg->leftovers[i]) != 0;
        }
    for (size_t i = 0; i < reg->leftover_count; i++)
        if (reg->leftovers[i][0] == '?')
            path_unlink(reg->v2_fd, reg->leftovers[i] + 1, AT_REMOVEDIR);
    return failed;
}

/* Blobs this run leaves, so that the counts leave them out. */
static void keep_all_blobs(struct registry *reg, const struct plan *plan)
{
    for (size_t i = 0; i < plan->blob_count; i++)
        reg->flags[plan->blobs[i].id] |= ID_LIVE;
}

/* After failures, count what was really removed. */
static void recount(struct registry *reg, struct plan *plan)
{
    size_t kept = 0;

    plan->bytes_freed = 0;
    for (size_t i = 0; i < plan->blob_count; i++) {
        if (reg->flags[plan->blobs[i].id] & ID_LIVE)
            continue;
        plan->blobs[kept++] = plan->blobs[i];
        plan->bytes_freed += plan->blobs[i].size;
    }
    plan->blob_count = kept;
    plan_count(reg, plan);
}

/*
 * Test hook: REGPRUNE_TEST_PAUSE_BEFORE_BLOBS=N sleeps N seconds before
 * blobs are removed, so that the end-to-end test can push meanwhile.
 */
static void pause_for_tests(void)
{
    const char *env = getenv("REGPRUNE_TEST_PAUSE_BEFORE_BLOBS");
    unsigned seconds = env ? (unsigned)strtoul(env, NULL, 10) : 0;

    if (seconds > 0 && seconds <= 60)
        sleep(seconds);
}

size_t remove_execute(struct registry *reg, struct plan *plan,
                      const struct remove_options *opt)
{
    int drift = 0;
    size_t failed = remove_tags(opt, reg, &drift);

    failed += remove_revisions(opt, reg);
    failed += remove_layers(opt, reg);
    if (drift) {
        log_warning("a tag changed during the run; blobs are left for the "
                    "next run");
        keep_all_blobs(reg, plan);
    } else if (plan->blob_count > 0) {
        plan_mark_live(reg);
        pause_for_tests();
        /* Whatever the tree links now, pushed during the run or not,
         * keeps its blobs. */
        scan_refresh(reg);
        if (reg->incomplete) {
            log_warning("the tree changed in a way this run cannot follow; "
                        "blobs are left for the next run");
            keep_all_blobs(reg, plan);
            failed++;
        } else
            failed += remove_blobs(opt, reg, plan);
    }
    failed += remove_uploads(opt, reg);
    failed += remove_leftovers(opt, reg);
    if (failed || drift)
        recount(reg, plan);
    return failed;
}
