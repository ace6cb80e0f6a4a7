#define _GNU_SOURCE
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "path.h"
#include "scan.h"
#include "xalloc.h"

#define JOURNAL_NAME ".regprune.journal"
#define JOURNAL_HEADER "regprune-journal 1"

static char *journal_path(const struct registry *reg, const char *suffix)
{
    return xasprintf("%s/%s%s", reg->root, JOURNAL_NAME, suffix);
}

static void add_leftover(struct registry *reg, char *path)
{
    reg->leftovers = xgrow(reg->leftovers, &reg->leftover_capacity,
                           reg->leftover_count + 1, sizeof(char *));
    reg->leftovers[reg->leftover_count++] = path;
}

/* Whether the directory v2/dir exists. */
static int dir_exists(const struct registry *reg, const char *dir)
{
    int fd = path_open_dir(reg->v2_fd, dir);

    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

/*
 * A tag whose current/link is gone, a revision without its link, a blob
 * directory without data: the interrupted run removed the file that made
 * the object visible, and this run removes the rest.
 */
static void note_leftover(struct registry *reg, char *dir)
{
    if (dir_exists(reg, dir))
        add_leftover(reg, dir);
    else
        free(dir);
}

/* A revision an interrupted run already removed. The history entries of
 * its repository's tags that name it are left to remove. */
struct gone_revision {
    size_t repo;
    uint32_t id;
};

struct gone_list {
    struct gone_revision *items;
    size_t count, capacity;
};

/*
 * Apply a "leftover" entry, a half-removed directory that an earlier
 * stopped run found. It goes only when the scanned tree agrees, so a
 * journal cannot remove anything whole: a tag without current/link, a
 * revision or blob the scan did not find, or a history entry that names a
 * revision the repository lacks. Return -1 for a path of another shape.
 */
static int apply_leftover(struct registry *reg, const char *path)
{
    static const char blobs[] = "blobs/sha256/";
    static const char repos[] = "repositories/";
    const char *rest, *mark;
    struct digest d;
    struct repo *repo;
    char *name;

    if (strstr(path, "..") || strstr(path, "//"))
        return -1;
    if (path[0] == '?') {
        rest = path + 1;
        if (strncmp(rest, blobs, sizeof(blobs) - 1) != 0 ||
            strlen(rest) != sizeof(blobs) - 1 + 2)
            return -1;
        add_leftover(reg, xstrdup(path));
        return 0;
    }
    if (strncmp(path, blobs, sizeof(blobs) - 1) == 0) {
        rest = path + sizeof(blobs) - 1;
        if (strlen(rest) < 3 || rest[2] != '/' ||
            digest_parse_hex(rest + 3, strlen(rest + 3), &d) != 0 ||
            memcmp(rest, rest + 3, 2) != 0)
            return -1;
        if (scan_blob_size(reg, registry_intern(reg, &d), NULL) < 0)
            note_leftover(reg, xstrdup(path));
        return 0;
    }
    if (strncmp(path, repos, sizeof(repos) - 1) != 0 ||
        !(mark = strstr(path, "/_manifests/")))
        return -1;
    name = xstrndup(path + sizeof(repos) - 1,
                    (size_t)(mark - path) - (sizeof(repos) - 1));
    repo = registry_find_repo(reg, name);
    free(name);
    if (!repo || repo->frozen)
        return 0; /* gone already, or left alone */
    rest = mark + strlen("/_manifests/");
    if (strncmp(rest, "revisions/sha256/", 17) == 0) {
        if (digest_parse_hex(rest + 17, strlen(rest + 17), &d) != 0)
            return -1;
        if (registry_find_revision(repo, registry_intern(reg, &d)) < 0)
            note_leftover(reg, xstrdup(path));
        return 0;
    }
    if (strncmp(rest, "tags/", 5) != 0 || !rest[5])
        return -1;
    rest += 5;
    mark = strstr(rest, "/index/sha256/");
    if (mark) {
        char *tag = xstrndup(rest, (size_t)(mark - rest));
        int valid = scan_valid_tag_name(tag);

        free(tag);
        if (!valid ||
            digest_parse_hex(mark + 14, strlen(mark + 14), &d) != 0)
            return -1;
        if (registry_find_revision(repo, registry_intern(reg, &d)) < 0)
            note_leftover(reg, xstrdup(path));
        return 0;
    }
    if (!scan_valid_tag_name(rest))
        return -1;
    if (!registry_find_tag(repo, rest))
        note_leftover(reg, xstrdup(path));
    return 0;
}

static int apply_line(struct registry *reg, char *line,
                      struct gone_list *gone)
{
    char *kind = strtok(line, " "), *a = strtok(NULL, " ");
    char *b = strtok(NULL, " ");
    struct digest d;
    struct repo *repo;
    uint32_t id;

    if (!kind || !a)
        return -1;
    if (strcmp(kind, "blob") == 0) {
        if (b || digest_parse_hex(a, strlen(a), &d) != 0)
            return -1;
        id = registry_intern(reg, &d);
        reg->flags[id] |= ID_CANDIDATE | ID_REFERENCED;
        if (scan_blob_size(reg, id, NULL) < 0) {
            note_leftover(reg, xasprintf("blobs/sha256/%.2s/%s", a, a));
            /* Its prefix directory goes too, if nothing else is in it. */
            add_leftover(reg, xasprintf("?blobs/sha256/%.2s", a));
        }
        return 0;
    }
    if (strcmp(kind, "leftover") == 0)
        return b ? -1 : apply_leftover(reg, a);
    if (strcmp(kind, "tag") == 0) {
        if (!b || !scan_valid_tag_name(b) || strtok(NULL, " "))
            return -1;
        repo = registry_find_repo(reg, a);
        if (!repo || repo->frozen)
            return 0;
        if (!registry_find_tag(repo, b))
            note_leftover(reg, xasprintf("repositories/%s/_manifests/tags/%s",
                                         a, b));
        return 0;
    }
    if (!b || digest_parse_hex(b, strlen(b), &d) != 0)
        return -1;
    repo = registry_find_repo(reg, a);
    id = registry_intern(reg, &d);
    if (!repo)
        return 0; /* gone already */
    if (strcmp(kind, "revision") == 0) {
        long pos = registry_find_revision(repo, id);
        if (pos < 0 && !repo->frozen) {
            note_leftover(reg, xasprintf("repositories/%s/_manifests/"
                                         "revisions/sha256/%s", a, b));
            gone->items = xgrow(gone->items, &gone->capacity,
                                gone->count + 1, sizeof(*gone->items));
            gone->items[gone->count].repo = (size_t)(repo - reg->repos);
            gone->items[gone->count++].id = id;
        }
        if (pos >= 0 && repo->revision_remove[pos] == REV_STAYS) {
            repo->revision_remove[pos] = REV_JOURNAL;
            repo->selected = 1;
        }
        return 0;
    }
    if (strcmp(kind, "layer") == 0) {
        for (size_t i = 0; i < repo->layer_count; i++)
            if (repo->layers[i] == id) {
                repo->layer_remove[i] = LAYER_JOURNAL;
                repo->selected = 1;
            }
        return 0;
    }
    return -1;
}

static int compare_gone(const void *pa, const void *pb)
{
    const struct gone_revision *x = pa, *y = pb;

    if (x->repo != y->repo)
        return x->repo < y->repo ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Add the history entries of repo's tags that name one of ids (sorted, all
 * of repo) as leftovers. */
static void note_history_leftovers(struct registry *reg,
                                   const struct repo *repo,
                                   const struct gone_revision *ids,
                                   size_t count)
{
    for (size_t i = 0; i < repo->tag_count; i++) {
        char rel[PATH_MAX];
        struct path_dir dir;
        const char *name;
        unsigned char type;
        int fd;

        pathf(rel, sizeof(rel), "repositories/%s/_manifests/tags/%s/index/"
              "sha256", repo->name, repo->tags[i].name);
        fd = path_open_dir(reg->v2_fd, rel);
        if (fd < 0)
            continue;
        path_dir_init(&dir, fd);
        while ((name = path_dir_next(&dir, &type)) != NULL) {
            struct gone_revision key = {ids[0].repo, DIGEST_NONE};
            struct digest d;

            if (digest_parse_hex(name, strlen(name), &d))
                continue;
            key.id = digest_table_find(&reg->ids, &d);
            if (key.id != DIGEST_NONE &&
                bsearch(&key, ids, count, sizeof(*ids), compare_gone))
                add_leftover(reg, xasprintf("%s/%s", rel, name));
        }
        close(fd);
    }
}

/* Add the history entries that name the gone revisions as leftovers,
 * one repository at a time. */
static void note_gone_history(struct registry *reg,
                              struct gone_revision *items, size_t count)
{
    size_t start = 0;

    qsort(items, count, sizeof(*items), compare_gone);
    for (size_t i = 1; i <= count; i++) {
        if (i < count && items[i].repo == items[start].repo)
            continue;
        note_history_leftovers(reg, &reg->repos[items[start].repo],
                               &items[start], i - start);
        start = i;
    }
}

long journal_apply(struct registry *reg, char *err, size_t err_size)
{
    char *path = journal_path(reg, "");
    FILE *f = fopen(path, "re");
    char line[1024];
    long entries = 0, lineno = 1;
    long rc = -1;
    struct gone_list gone = {NULL, 0, 0};

    plan_prepare(reg);
    if (!f) {
        if (errno == ENOENT)
            rc = 0;
        else
            snprintf(err, err_size, "cannot read the journal %s: %s", path,
                     strerror(errno));
        free(path);
        return rc;
    }
    if (!fgets(line, sizeof(line), f) ||
        strcmp(line, JOURNAL_HEADER "\n") != 0) {
        snprintf(err, err_size, "%s is not a regprune journal; move it aside "
                 "to go on", path);
        goto out;
    }
    while (fgets(line, sizeof(line), f)) {
        size_t len = strcspn(line, "\n");

        lineno++;
        /* A line longer than the buffer names nothing regprune writes. */
        if (line[len] != '\n' && !feof(f)) {
            snprintf(err, err_size, "%s:%ld: journal line too long; move "
                     "the file aside to go on without it", path, lineno);
            goto out;
        }
        line[len] = '\0';
        if (apply_line(reg, line, &gone) != 0) {
            snprintf(err, err_size, "%s:%ld: invalid journal entry; move the "
                     "file aside to go on without it", path, lineno);
            goto out;
        }
        entries++;
    }
    if (gone.items)
        note_gone_history(reg, gone.items, gone.count);
    if (entries)
        log_warning("%s: an interrupted run left %ld removals unfinished; "
                    "this run plans again those that no kept image needs",
                    path, entries);
    rc = entries;
out:
    free(gone.items);
    fclose(f);
    free(path);
    return rc;
}

int journal_write(struct registry *reg, const struct plan *plan, char *err,
                  size_t err_size)
{
    char *tmp = journal_path(reg, ".tmp"), *path = journal_path(reg, "");
    char hex[DIGEST_HEX_LEN + 1];
    FILE *f = NULL;
    int fd, rc = -1;

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
              0644);
    if (fd < 0 || !(f = fdopen(fd, "w"))) {
        snprintf(err, err_size, "cannot write the journal %s: %s", tmp,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    fprintf(f, "%s\n", JOURNAL_HEADER);
    for (size_t r = 0; r < reg->repo_count; r++) {
        const struct repo *repo = &reg->repos[r];
        for (size_t i = 0; i < repo->tag_count; i++)
            if (repo->tags[i].remove)
                fprintf(f, "tag %s %s\n", repo->name, repo->tags[i].name);
        for (size_t i = 0; i < repo->revision_count; i++) {
            if (repo->revision_remove[i] != REV_REMOVE)
                continue;
            digest_to_hex(&reg->ids.digests[repo->revisions[i]], hex);
            fprintf(f, "revision %s %s\n", repo->name, hex);
        }
        for (size_t i = 0; i < repo->layer_count; i++) {
            if (repo->layer_remove[i] != LAYER_REMOVE)
                continue;
            digest_to_hex(&reg->ids.digests[repo->layers[i]], hex);
            fprintf(f, "layer %s %s\n", repo->name, hex);
        }
    }
    for (size_t i = 0; i < plan->blob_count; i++) {
        digest_to_hex(&reg->ids.digests[plan->blobs[i].id], hex);
        fprintf(f, "blob %s\n", hex);
    }
    /* What an earlier interrupted run left, for when this one stops too. */
    for (size_t i = 0; i < reg->leftover_count; i++)
        fprintf(f, "leftover %s\n", reg->leftovers[i]);
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
        snprintf(err, err_size, "cannot write the journal %s: %s", tmp,
                 strerror(errno));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, err_size, "cannot rename %s to %s: %s", tmp, path,
                 strerror(errno));
        goto out;
    }
    /* Make the rename itself durable. */
    fd = open(reg->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    rc = 0;
out:
    if (f)
        fclose(f);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    free(path);
    return rc;
}

void journal_remove(struct registry *reg)
{
    char *path = journal_path(reg, "");

    if (unlink(path) != 0 && errno != ENOENT)
        log_warning("cannot remove the journal %s: %s; the next run "
                    "re-checks its entries",
                    path, strerror(errno));
    free(path);
}
