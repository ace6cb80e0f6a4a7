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

#include "log.h"
#include "path.h"
#include "xalloc.h"

int remove_lock(const char *root)
{
    char *path = xasprintf("%s/.regprune.lock", root);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);

    if (fd < 0) {
        log_error("cannot create lock file %s: %s", path, strerror(errno));
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

static int remove_path(struct registry *reg, const char *repo,
                       const char *path)
{
    if (path_remove_tree(reg->v2_fd, path) == 0) {
        log_debug("removed %s", path);
        return 0;
    }
    registry_problem(reg, repo, path, "cannot remove: %s; a later run will "
                     "retry", strerror(errno));
    return -1;
}

/* A tag re-pointed since the scan belongs to a push we did not see. */
static int tag_unchanged(struct registry *reg, struct repo *repo,
                         const struct tag *t)
{
    char path[PATH_MAX];
    char *buf;
    size_t len;
    struct digest d;
    int same;

    pathf(path, sizeof(path),
             "repositories/%s/_manifests/tags/%s/current/link", repo->name,
             t->name);
    if (path_read_file(reg->v2_fd, path, 256, &buf, &len, NULL) != 0)
        return errno == ENOENT ? 1 : 0;
    same = digest_parse(buf, len, &d) == 0 &&
           memcmp(&d, &reg->ids.digests[t->digest], sizeof(d)) == 0;
    free(buf);
    return same;
}

/* Keep everything of repo from here on; its blobs stay live. */
static void hold_repo(struct repo *repo)
{
    memset(repo->revision_remove, 0, repo->revision_count);
    memset(repo->layer_remove, 0, repo->layer_count);
}

static size_t remove_tags(struct registry *reg, int *drift)
{
    char path[PATH_MAX];
    size_t failed = 0;

    for (size_t r = 0; r < reg->repo_count; r++) {
        struct repo *repo = &reg->repos[r];
        for (size_t i = 0; i < repo->tag_count; i++) {
            struct tag *t = &repo->tags[i];
            if (!t->remove)
                continue;
            if (!tag_unchanged(reg, repo, t)) {
                registry_problem(reg, repo->name, t->name,
                                 "tag changed since the scan (a push?); "
                                 "left alone, and no blob is deleted in "
                                 "this run");
                t->remove = 0;
                hold_repo(repo);
                *drift = 1;
                failed++;
                continue;
            }
            pathf(path, sizeof(path), "repositories/%s/_manifests/tags/%s",
                     repo->name, t->name);
            if (remove_path(reg, repo->name, path) != 0) {
                t->remove = 0;
                hold_repo(repo);
                failed++;
            }
        }
    }
    return failed;
}

/* Drop history entries of remaining tags that name removed revisions. */
static void remove_history(struct registry *reg, struct repo *repo)
{
    char rel[PATH_MAX];

    for (size_t i = 0; i < repo->tag_count; i++) {
        struct tag *t = &repo->tags[i];
        struct dirent *ent;
        DIR *dir;
        int fd;

        if (t->remove)
            continue;
        pathf(rel, sizeof(rel),
                 "repositories/%s/_manifests/tags/%s/index/sha256",
                 repo->name, t->name);
        fd = path_open_dir(reg->v2_fd, rel);
        if (fd < 0 || !(dir = fdopendir(fd))) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        while ((ent = readdir(dir)) != NULL) {
            struct digest d;
            uint32_t id;
            long pos;
            char path[PATH_MAX + 300];

            if (digest_parse_hex(ent->d_name, strlen(ent->d_name), &d))
                continue;
            id = digest_table_find(&reg->ids, &d);
            if (id == DIGEST_NONE ||
                (pos = registry_find_revision(repo, id)) < 0 ||
                repo->revision_remove[pos] != REV_REMOVE)
                continue;
            pathf(path, sizeof(path), "%s/%s", rel, ent->d_name);
            remove_path(reg, repo->name, path);
        }
        closedir(dir);
    }
}

static size_t remove_revisions(struct registry *reg)
{
    char hex[DIGEST_HEX_LEN + 1], path[PATH_MAX];
    size_t failed = 0;

    for (size_t r = 0; r < reg->repo_count; r++) {
        struct repo *repo = &reg->repos[r];
        int any = 0;

        for (size_t i = 0; i < repo->revision_count; i++) {
            if (repo->revision_remove[i] != REV_REMOVE)
                continue;
            any = 1;
            digest_to_hex(&reg->ids.digests[repo->revisions[i]], hex);
            pathf(path, sizeof(path),
                     "repositories/%s/_manifests/revisions/sha256/%s",
                     repo->name, hex);
            if (remove_path(reg, repo->name, path) != 0) {
                /* The manifest stays, and so does what it references. */
                repo->revision_remove[i] = REV_STAYS;
                memset(repo->layer_remove, 0, repo->layer_count);
                failed++;
            }
        }
        if (any)
            remove_history(reg, repo);
    }
    return failed;
}

static size_t remove_layers(struct registry *reg)
{
    char hex[DIGEST_HEX_LEN + 1], path[PATH_MAX];
    size_t failed = 0;

    for (size_t r = 0; r < reg->repo_count; r++) {
        struct repo *repo = &reg->repos[r];
        for (size_t i = 0; i < repo->layer_count; i++) {
            if (!repo->layer_remove[i])
                continue;
            digest_to_hex(&reg->ids.digests[repo->layers[i]], hex);
            pathf(path, sizeof(path), "repositories/%s/_layers/sha256/%s",
                     repo->name, hex);
            if (remove_path(reg, repo->name, path) != 0) {
                repo->layer_remove[i] = 0;
                failed++;
            }
        }
    }
    return failed;
}

static size_t remove_blobs(struct registry *reg, struct plan *plan)
{
    char hex[DIGEST_HEX_LEN + 1], path[PATH_MAX];
    size_t failed = 0;

    for (size_t i = 0; i < plan->blob_count; i++) {
        uint32_t id = plan->blobs[i].id;

        if (reg->flags[id] & ID_LIVE)
            continue; /* an earlier failure kept something that needs it */
        digest_to_hex(&reg->ids.digests[id], hex);
        pathf(path, sizeof(path), "blobs/sha256/%.2s/%s", hex, hex);
        if (remove_path(reg, NULL, path) != 0) {
            failed++;
            continue;
        }
        pathf(path, sizeof(path), "blobs/sha256/%.2s", hex);
        path_unlink(reg->v2_fd, path, AT_REMOVEDIR); /* only when empty */
    }
    return failed;
}

static size_t remove_uploads(struct registry *reg)
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
            failed += remove_path(reg, repo->name, path) != 0;
        }
    }
    return failed;
}

static size_t remove_leftovers(struct registry *reg)
{
    size_t failed = 0;

    /* Directories only to remove when empty ("?" prefix) go last. */
    for (size_t i = 0; i < reg->leftover_count; i++)
        if (reg->leftovers[i][0] != '?')
            failed += remove_path(reg, NULL, reg->leftovers[i]) != 0;
    for (size_t i = 0; i < reg->leftover_count; i++)
        if (reg->leftovers[i][0] == '?')
            path_unlink(reg->v2_fd, reg->leftovers[i] + 1, AT_REMOVEDIR);
    return failed;
}

size_t remove_execute(struct registry *reg, struct plan *plan)
{
    int drift = 0;
    size_t failed = remove_tags(reg, &drift);

    failed += remove_revisions(reg);
    failed += remove_layers(reg);
    if (drift) {
        log_warning("a tag changed during the run; blobs are left for the "
                    "next run");
    } else {
        plan_mark_live(reg);
        failed += remove_blobs(reg, plan);
    }
    failed += remove_uploads(reg);
    failed += remove_leftovers(reg);
    return failed;
}
