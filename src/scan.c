#define _GNU_SOURCE
#include "scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "path.h"
#include "pool.h"
#include "xalloc.h"

/* A link holds "sha256:" and 64 hex digits; anything longer is invalid. */
#define LINK_MAX_BYTES 256

int scan_open(struct registry *reg, const char *root, char *err,
              size_t err_size)
{
    int root_fd;

    memset(reg, 0, sizeof(*reg));
    reg->v2_fd = -1;
    digest_table_init(&reg->ids);
    reg->root = xstrdup(root);
    reg->scan_started = (int64_t)time(NULL);
    root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        snprintf(err, err_size, "cannot open registry root %s: %s", root,
                 strerror(errno));
        return -1;
    }
    reg->v2_fd = path_open_dir(root_fd, "docker/registry/v2");
    close(root_fd);
    if (reg->v2_fd < 0 && errno == ELOOP) {
        snprintf(err, err_size,
                 "%s/docker/registry/v2 goes through a symbolic link, which "
                 "regprune does not follow; pass the real path with --root",
                 root);
        return -1;
    }
    if (reg->v2_fd < 0) {
        snprintf(err, err_size,
                 "%s does not look like a registry root: cannot open "
                 "docker/registry/v2 in it (%s); pass the registry's "
                 "rootdirectory, the folder that holds docker/, with --root",
                 root, strerror(errno));
        return -1;
    }
    return 0;
}

/*** directory listing ***/

struct name_list {
    char **names;
    size_t count, capacity;
};

static void name_list_free(struct name_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void name_list_add(struct name_list *l, const char *name)
{
    l->names = xgrow(l->names, &l->capacity, l->count + 1, sizeof(char *));
    l->names[l->count++] = xstrdup(name);
}

/*
 * List the freshly opened directory fd, which stays open, into out
 * (entries of type want, DT_DIR or DT_REG) and others (every other entry,
 * when not NULL), each sorted. Return 0, or -1 with errno set.
 */
static int list_fd(int fd, unsigned char want, struct name_list *out,
                   struct name_list *others)
{
    struct path_dir dir;
    const char *name;
    unsigned char type;

    memset(out, 0, sizeof(*out));
    if (others)
        memset(others, 0, sizeof(*others));
    path_dir_init(&dir, fd);
    while ((name = path_dir_next(&dir, &type)) != NULL) {
        if (type == DT_UNKNOWN)
            continue; /* gone since the listing */
        if (type == want)
            name_list_add(out, name);
        else if (others)
            name_list_add(others, name);
    }
    if (errno) {
        int saved = errno;
        name_list_free(out);
        if (others)
            name_list_free(others);
        errno = saved;
        return -1;
    }
    if (out->count > 1)
        qsort(out->names, out->count, sizeof(char *), compare_strings);
    if (others && others->count > 1)
        qsort(others->names, others->count, sizeof(char *), compare_strings);
    return 0;
}

/* list_fd on the directory relpath beneath parent_fd. */
static int list_dir(int parent_fd, const char *relpath, unsigned char want,
                    struct name_list *out, struct name_list *others)
{
    int fd = path_open_dir(parent_fd, relpath);
    int rc, saved;

    memset(out, 0, sizeof(*out));
    if (others)
        memset(others, 0, sizeof(*others));
    if (fd < 0)
        return -1;
    rc = list_fd(fd, want, out, others);
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/*** repositories ***/

static int compare_ids(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/*
 * What a worker found in one repository. Workers touch nothing shared:
 * digests wait here to be interned, and problems and log lines wait to be
 * replayed, in the order a single thread would have produced them.
 */
enum note_kind {
    NOTE_PROBLEM,    /* registry_problem for the repository */
    NOTE_INCOMPLETE, /* mark_incomplete: no blob may go */
    NOTE_WARNING,
    NOTE_INFO,
    NOTE_DEBUG
};

struct note {
    enum note_kind kind;
    char *path;
    char *text;
};

struct repo_scan {
    struct repo *repo;
    int check_layer_links; /* read every layer link as well */
    struct note *notes;
    size_t note_count, note_capacity;
    struct digest *tag_digests; /* one per repo->tags entry */
    struct digest *revisions;   /* in the order to intern them */
    size_t revision_count;
    struct digest *layers;
    size_t layer_count;
    int64_t newest_upload;
};

static void note(struct repo_scan *s, enum note_kind kind, const char *path,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void note(struct repo_scan *s, enum note_kind kind, const char *path,
                 const char *fmt, ...)
{
    struct note *n;
    va_list ap;

    s->notes = xgrow(s->notes, &s->note_capacity, s->note_count + 1,
                     sizeof(*s->notes));
    n = &s->notes[s->note_count++];
    n->kind = kind;
    n->path = xstrdup(path ? path : "");
    va_start(ap, fmt);
    n->text = xvasprintf(fmt, ap);
    va_end(ap);
}

static struct digest *push_digest(struct digest *v, size_t *count,
                                  size_t *cap, const struct digest *d)
{
    v = xgrow(v, cap, *count + 1, sizeof(*v));
    v[(*count)++] = *d;
    return v;
}

/*
 * Read the link file rel beneath dirfd, which messages name as dir/rel.
 * Return 0 with *d set, 1 when the file does not exist, or -1 after noting
 * why it is invalid and freezing the repository.
 */
static int read_link(struct repo_scan *s, int dirfd, const char *rel,
                     const char *dir, struct digest *d, long long *mtime)
{
    char *buf = NULL, path[PATH_MAX];
    size_t len;

    if (path_read_file(dirfd, rel, LINK_MAX_BYTES, &buf, &len, mtime)) {
        if (errno == ENOENT)
            return 1;
        path_join(path, sizeof(path), dir, rel);
        if (errno == EFBIG)
            note(s, NOTE_PROBLEM, path,
                 "invalid link: longer than a sha256 digest");
        else if (errno == EISDIR)
            note(s, NOTE_PROBLEM, path, "invalid link: not a regular file "
                 "(a directory, FIFO or device); the repository is left "
                 "alone");
        else
            note(s, NOTE_PROBLEM, path, "cannot read link: %s%s",
                 strerror(errno),
                 errno == EACCES ? "; run regprune as the user the registry "
                                   "runs as"
                                 : "");
        registry_freeze(s->repo, "a link cannot be read");
        return -1;
    }
    if (digest_parse(buf, len, d) != 0) {
        path_join(path, sizeof(path), dir, rel);
        note(s, NOTE_PROBLEM, path,
             len == 0 ? "invalid link: the file is empty; the repository is "
                        "left alone"
                      : "invalid link: expected sha256:<64 lowercase hex> "
                        "and nothing else (no newline); the repository is "
                        "left alone until the link is fixed");
        registry_freeze(s->repo, "a link is invalid");
        free(buf);
        return -1;
    }
    free(buf);
    return 0;
}

int scan_valid_tag_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 128 || *s == '.' || *s == '-')
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/*
 * Open the directory rel beneath repo_fd and list it into names and
 * others as list_fd does. Return its descriptor, or -1 with errno set.
 */
static int open_and_list(int repo_fd, const char *rel, struct name_list *names,
                         struct name_list *others)
{
    int fd = path_open_dir(repo_fd, rel);

    memset(names, 0, sizeof(*names));
    memset(others, 0, sizeof(*others));
    if (fd < 0)
        return -1;
    if (list_fd(fd, DT_DIR, names, others) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static void scan_tags(struct repo_scan *s, int repo_fd)
{
    struct repo *repo = s->repo;
    struct name_list tags, others;
    char path[PATH_MAX];
    int fd = open_and_list(repo_fd, "_manifests/tags", &tags, &others);

    if (fd < 0) {
        if (errno != ENOENT) {
            pathf(path, sizeof(path), "repositories/%s/_manifests/tags",
                  repo->name);
            note(s, NOTE_PROBLEM, path, "cannot list tags: %s",
                 strerror(errno));
            registry_freeze(repo, "its tags cannot be listed");
        }
        return;
    }
    for (size_t i = 0; i < others.count; i++) {
        pathf(path, sizeof(path), "repositories/%s/_manifests/tags/%s",
              repo->name, others.names[i]);
        note(s, NOTE_PROBLEM, path, "not a directory (a symbolic link is not "
             "followed); the repository is left alone");
        registry_freeze(repo, "a tag is not a directory");
    }
    repo->tags = xcalloc(tags.count, sizeof(*repo->tags));
    s->tag_digests = xcalloc(tags.count + 1, sizeof(*s->tag_digests));
    /* Messages name the tags directory; paths are made only for them. */
    pathf(path, sizeof(path), "repositories/%s/_manifests/tags", repo->name);
    for (size_t i = 0; i < tags.count; i++) {
        struct tag *t = &repo->tags[repo->tag_count];
        long long mtime;
        int rc;
        char rel[PATH_MAX], tag_path[PATH_MAX];

        if (!scan_valid_tag_name(tags.names[i])) {
            path_join(tag_path, sizeof(tag_path), path, tags.names[i]);
            note(s, NOTE_PROBLEM, tag_path,
                 "invalid tag name; repository left alone");
            registry_freeze(repo, "a tag name is invalid");
            continue;
        }
        path_join(rel, sizeof(rel), tags.names[i], "current/link");
        rc = read_link(s, fd, rel, path, &s->tag_digests[repo->tag_count],
                       &mtime);
        if (rc == 1) {
            path_join(tag_path, sizeof(tag_path), path, tags.names[i]);
            note(s, NOTE_WARNING, NULL, "%s: the tag has no current/link, "
                 "so the registry does not serve it; left alone", tag_path);
        }
        if (rc != 0)
            continue;
        t->name = tags.names[i];
        tags.names[i] = NULL;
        t->pushed = mtime;
        repo->tag_count++;
    }
    close(fd);
    name_list_free(&tags);
    name_list_free(&others);
}

/*
 * Collect the digests under DIR/sha256/<hex>/link. The directory listing
 * names every digest, so a layer link is taken from it, and read only
 * with check_layer_links. Every revision link is read, because the
 * registry's DELETE removes only the link file and because the registry
 * serves the manifest a link names. A link that names another digest
 * than its directory freezes the repository and keeps that manifest.
 */
static struct digest *scan_links(struct repo_scan *s, int repo_fd,
                                 const char *dir, int revisions,
                                 size_t *count)
{
    struct repo *repo = s->repo;
    struct name_list names, others;
    char rel[PATH_MAX], path[PATH_MAX], dir_path[PATH_MAX];
    char link_rel[DIGEST_HEX_LEN + 8];
    struct digest *out = NULL;
    size_t cap = 0;
    int fd;

    *count = 0;
    pathf(rel, sizeof(rel), "%s/sha256", dir);
    fd = open_and_list(repo_fd, rel, &names, &others);
    if (fd < 0) {
        if (errno != ENOENT) {
            pathf(path, sizeof(path), "repositories/%s/%s", repo->name, rel);
            note(s, NOTE_PROBLEM, path, "cannot list: %s", strerror(errno));
            registry_freeze(repo, "a link directory cannot be listed");
        }
        return NULL;
    }
    for (size_t i = 0; i < others.count; i++) {
        pathf(path, sizeof(path), "repositories/%s/%s/sha256/%s", repo->name,
              dir, others.names[i]);
        note(s, NOTE_PROBLEM, path, "not a directory (a symbolic link is not "
             "followed); the repository is left alone");
        registry_freeze(repo, "a link directory holds something else");
    }
    name_list_free(&others);
    /* Messages name the sha256 directory; paths are made only for them. */
    pathf(dir_path, sizeof(dir_path), "repositories/%s/%s", repo->name, rel);
    for (size_t i = 0; i < names.count; i++) {
        struct digest d, linked;
        int rc;

        if (digest_parse_hex(names.names[i], strlen(names.names[i]), &d)) {
            path_join(path, sizeof(path), dir_path, names.names[i]);
            note(s, NOTE_PROBLEM, path, "directory name is not a sha256 "
                 "digest; the repository is left alone");
            registry_freeze(repo, "a link directory has an invalid name");
            continue;
        }
        out = push_digest(out, count, &cap, &d);
        if (!revisions && !s->check_layer_links)
            continue;
        path_join(link_rel, sizeof(link_rel), names.names[i], "link");
        rc = read_link(s, fd, link_rel, dir_path, &linked, NULL);
        if (rc == 1) {
            /* A deleted revision or layer link: the directory stays,
             * without its link. */
            path_join(path, sizeof(path), dir_path, names.names[i]);
            note(s, NOTE_DEBUG, NULL, "%s: no link, %s", path,
                 revisions ? "a deleted revision" : "an unlinked layer");
            (*count)--;
            continue;
        }
        /* An invalid link froze the repository; its manifest still counts,
         * so that the blobs it references stay. */
        if (rc == 0 && memcmp(&linked, &d, sizeof(d)) != 0) {
            path_join(path, sizeof(path), dir_path, names.names[i]);
            note(s, NOTE_PROBLEM, path,
                 "link names another digest than its directory");
            registry_freeze(repo, "a link names the wrong digest");
            out = push_digest(out, count, &cap, &linked);
        }
    }
    close(fd);
    name_list_free(&names);
    return out;
}

static void scan_uploads(struct repo_scan *s, int repo_fd)
{
    struct repo *repo = s->repo;
    struct name_list names;
    char rel[PATH_MAX];

    if (list_dir(repo_fd, "_uploads", DT_DIR, &names, NULL))
        return;
    repo->uploads = names.names;
    repo->upload_count = names.count;
    /* The newest upload tells whether the registry is taking pushes. */
    for (size_t i = 0; i < names.count; i++) {
        struct stat st;

        pathf(rel, sizeof(rel), "_uploads/%s", names.names[i]);
        if (fstatat(repo_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            (int64_t)st.st_mtim.tv_sec > s->newest_upload)
            s->newest_upload = (int64_t)st.st_mtim.tv_sec;
    }
}

struct scan_run {
    int repositories_fd;
    struct repo_scan *scans;
};

/* A worker: read one repository's tags, links and uploads. */
static void scan_one_repo(void *ctx, size_t i)
{
    struct scan_run *run = ctx;
    struct repo_scan *s = &run->scans[i];
    const char *name = s->repo->name;
    int fd = path_open_dir(run->repositories_fd, name[0] ? name : ".");

    if (fd < 0) {
        char path[PATH_MAX];
        pathf(path, sizeof(path), "repositories/%s", name);
        note(s, NOTE_INCOMPLETE, path, "cannot open: %s", strerror(errno));
        return;
    }
    scan_tags(s, fd);
    s->revisions = scan_links(s, fd, "_manifests/revisions", 1,
                              &s->revision_count);
    s->layers = scan_links(s, fd, "_layers", 0, &s->layer_count);
    scan_uploads(s, fd);
    close(fd);
}

static void mark_incomplete(struct registry *reg, const char *path,
                            const char *what);

static uint32_t *intern_all(struct registry *reg, const struct digest *v,
                            size_t count)
{
    uint32_t *ids = xmalloc(count * sizeof(*ids) + 1);

    for (size_t i = 0; i < count; i++) {
        ids[i] = registry_intern(reg, &v[i]);
        reg->flags[ids[i]] |= ID_REFERENCED;
    }
    qsort(ids, count, sizeof(*ids), compare_ids);
    return ids;
}

/* Replay what a worker found into the registry, and free it. */
static void merge_repo_scan(struct registry *reg, struct repo_scan *s)
{
    struct repo *repo = s->repo;

    for (size_t i = 0; i < s->note_count; i++) {
        struct note *n = &s->notes[i];
        switch (n->kind) {
        case NOTE_PROBLEM:
            registry_problem(reg, repo->name, n->path, "%s", n->text);
            break;
        case NOTE_INCOMPLETE:
            mark_incomplete(reg, n->path, n->text);
            break;
        case NOTE_WARNING:
            log_warning("%s", n->text);
            break;
        case NOTE_INFO:
            log_info("%s", n->text);
            break;
        case NOTE_DEBUG:
            log_debug("%s", n->text);
            break;
        }
        free(n->path);
        free(n->text);
    }
    free(s->notes);
    for (size_t i = 0; i < repo->tag_count; i++) {
        repo->tags[i].digest = registry_intern(reg, &s->tag_digests[i]);
        reg->flags[repo->tags[i].digest] |= ID_REFERENCED;
    }
    free(s->tag_digests);
    if (s->revisions) {
        repo->revisions = intern_all(reg, s->revisions, s->revision_count);
        repo->revision_count = s->revision_count;
    }
    free(s->revisions);
    if (s->layers) {
        repo->layers = intern_all(reg, s->layers, s->layer_count);
        repo->layer_count = s->layer_count;
    }
    free(s->layers);
    if (s->newest_upload > reg->newest_upload) {
        reg->newest_upload = s->newest_upload;
        free(reg->newest_upload_repo);
        reg->newest_upload_repo = xstrdup(repo->name);
    }
}

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/*
 * Repository path components follow the distribution grammar: runs of
 * lowercase alphanumerics separated by ".", "_", "__" or one or more "-".
 */
static int valid_repo_component(const char *s)
{
    size_t i = 0;

    for (;;) {
        if (!is_lower_alnum(s[i]))
            return 0;
        while (is_lower_alnum(s[i]))
            i++;
        if (s[i] == '\0')
            return 1;
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i += s[i + 1] == '_' ? 2 : 1;
        } else if (s[i] == '-') {
            while (s[i] == '-')
                i++;
        } else {
            return 0;
        }
    }
}

struct repo_list {
    struct repo *repos;
    size_t count, capacity;
};

/* Add a repository to the list; its contents are read later. */
static void add_repo(struct repo_list *list, const char *name)
{
    struct repo *repo;

    list->repos = xgrow(list->repos, &list->capacity, list->count + 1,
                        sizeof(*list->repos));
    repo = &list->repos[list->count++];
    memset(repo, 0, sizeof(*repo));
    repo->name = xstrdup(name);
    repo->selected = 1;
    log_progress("scanning: %zu repositories", list->count);
}

/*
 * Record that part of the repositories tree cannot be read: its manifests
 * may reference any blob, so no blob may be deleted in this run.
 */
static void mark_incomplete(struct registry *reg, const char *path,
                            const char *what)
{
    registry_problem(reg, NULL, path, "%s; no blob is deleted in this run, "
                     "because that part of the tree may use any of them",
                     what);
    reg->incomplete = 1;
}

/* Report entries of a repositories directory that are symbolic links. */
static void check_other_entries(struct registry *reg, int dirfd,
                                const char *name,
                                const struct name_list *others)
{
    char path[PATH_MAX];

    for (size_t i = 0; i < others->count; i++) {
        struct stat st;

        if (fstatat(dirfd, others->names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode))
            continue; /* a stray file is not a repository */
        pathf(path, sizeof(path), "repositories/%s%s%s", name,
              name[0] ? "/" : "", others->names[i]);
        mark_incomplete(reg, path, "a symbolic link (or other special file) "
                        "in the repositories tree is not followed");
    }
}

static void walk(struct registry *reg, struct repo_list *list, int dirfd,
                 const char *name, int depth)
{
    struct name_list dirs, others;
    int is_repo = 0;
    char path[PATH_MAX];

    if (list_dir(dirfd, ".", DT_DIR, &dirs, &others)) {
        pathf(path, sizeof(path), "repositories%s%s", name[0] ? "/" : "",
              name);
        mark_incomplete(reg, path, strerror(errno));
        return;
    }
    check_other_entries(reg, dirfd, name, &others);
    name_list_free(&others);
    for (size_t i = 0; i < dirs.count; i++)
        if (strcmp(dirs.names[i], "_manifests") == 0 ||
            strcmp(dirs.names[i], "_layers") == 0 ||
            strcmp(dirs.names[i], "_uploads") == 0)
            is_repo = 1;
    if (is_repo)
        add_repo(list, name);
    for (size_t i = 0; i < dirs.count; i++) {
        const char *child = dirs.names[i];
        char child_name[PATH_MAX];
        int fd;

        if (child[0] == '_')
            continue;
        if (strlen(name) + 1 + strlen(child) > PATH_REPO_NAME_MAX ||
            depth >= PATH_REPO_NAME_MAX / 2) {
            pathf(path, sizeof(path), "repositories/%.200s/%.200s...", name,
                  child);
            mark_incomplete(reg, path, "repository name longer than 255 "
                            "characters");
            continue;
        }
        pathf(child_name, sizeof(child_name), "%s%s%s", name,
              name[0] ? "/" : "", child);
        pathf(path, sizeof(path), "repositories/%s", child_name);
        fd = path_open_dir(dirfd, child);
        if (fd < 0) {
            char what[256];
            snprintf(what, sizeof(what), "cannot open: %s", strerror(errno));
            mark_incomplete(reg, path, what);
            continue;
        }
        walk(reg, list, fd, child_name, depth + 1);
        close(fd);
        if (!valid_repo_component(child)) {
            /* Mark repositories at and below an invalid component. */
            size_t len = strlen(child_name);
            for (size_t j = 0; j < list->count; j++) {
                struct repo *r = &list->repos[j];
                if (strncmp(r->name, child_name, len) == 0 &&
                    (r->name[len] == '\0' || r->name[len] == '/') &&
                    !r->frozen) {
                    registry_problem(reg, r->name, path,
                                     "invalid repository name; left alone");
                    registry_freeze(r, "its name is invalid");
                }
            }
        }
    }
    name_list_free(&dirs);
}

static int compare_repos(const void *a, const void *b)
{
    return strcmp(((const struct repo *)a)->name,
                  ((const struct repo *)b)->name);
}

/*** manifests ***/

static char *blob_path(const struct registry *reg, uint32_t id, char *buf,
                       size_t size)
{
    char hex[DIGEST_HEX_LEN + 1];

    digest_to_hex(&reg->ids.digests[id], hex);
    snprintf(buf, size, "blobs/sha256/%.2s/%s/data", hex, hex);
    return buf;
}

void scan_open_blob_dirs(struct registry *reg)
{
    struct name_list prefixes;

    if (reg->blob_fds || reg->v2_fd < 0)
        return;
    reg->blob_fds = xmalloc(256 * sizeof(*reg->blob_fds));
    for (int i = 0; i < 256; i++)
        reg->blob_fds[i] = -1;
    if (list_dir(reg->v2_fd, "blobs/sha256", DT_DIR, &prefixes, NULL))
        return;
    for (size_t i = 0; i < prefixes.count; i++) {
        const char *p = prefixes.names[i];
        int hi = digest_hex_value(p[0]);
        int lo = hi < 0 ? -1 : digest_hex_value(p[1]);
        char rel[64];

        if (lo < 0 || p[2] != '\0')
            continue;
        pathf(rel, sizeof(rel), "blobs/sha256/%s", p);
        reg->blob_fds[hi * 16 + lo] = path_open_dir(reg->v2_fd, rel);
    }
    name_list_free(&prefixes);
}

int scan_blob_at(const struct registry *reg, uint32_t id, const char *file,
                 char *rel, size_t size)
{
    char hex[DIGEST_HEX_LEN + 1];
    int fd;

    digest_to_hex(&reg->ids.digests[id], hex);
    fd = reg->blob_fds ? reg->blob_fds[reg->ids.digests[id].bytes[0]] : -1;
    if (fd < 0) {
        pathf(rel, size, "blobs/sha256/%.2s/%s%s%s", hex, hex,
              file ? "/" : "", file ? file : "");
        return reg->v2_fd;
    }
    /* Every blob read or sized comes here, so no formatting. */
    if (file)
        path_join(rel, size, hex, file);
    else
        pathf(rel, size, "%s", hex);
    return fd;
}

/*
 * Read a blob's data file. Through the prefix directory first; when that
 * is gone (removed once empty, and perhaps made again by a push), by its
 * whole path.
 */
static int read_blob(const struct registry *reg, uint32_t id,
                     size_t max_bytes, char **buf, size_t *len)
{
    char rel[128];
    int fd = scan_blob_at(reg, id, "data", rel, sizeof(rel));

    if (path_read_file(fd, rel, max_bytes, buf, len, NULL) == 0)
        return 0;
    if (errno != ENOENT || fd == reg->v2_fd)
        return -1;
    blob_path(reg, id, rel, sizeof(rel));
    return path_read_file(reg->v2_fd, rel, max_bytes, buf, len, NULL);
}

long long scan_blob_size(const struct registry *reg, uint32_t id,
                         long long *mtime)
{
    char rel[128];
    struct stat st;
    int fd = scan_blob_at(reg, id, "data", rel, sizeof(rel));

    /* The listing or the manifest named the blob's directory; the stat
     * gives its size and follows no link at the last component. */
    if (fstatat(fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT || fd == reg->v2_fd)
            return -1;
        blob_path(reg, id, rel, sizeof(rel));
        if (fstatat(reg->v2_fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0)
            return -1;
    }
    if (!S_ISREG(st.st_mode))
        return -1;
    if (mtime)
        *mtime = (long long)st.st_mtim.tv_sec;
    return (long long)st.st_size;
}

static void set_error(struct manifest *m, enum manifest_state state,
                      const char *msg)
{
    m->state = state;
    free(m->error);
    m->error = xstrdup(msg);
}

static void convert_manifest(struct registry *reg, struct manifest *m,
                             struct manifest_info *info)
{
    m->kind = info->kind;
    m->config = DIGEST_NONE;
    m->subject = DIGEST_NONE;
    if (info->has_config) {
        m->config = registry_intern(reg, &info->config.digest);
        m->config_size = info->config.size;
        reg->flags[m->config] |= ID_REFERENCED;
    }
    registry_alloc_layers(m, info->layer_count);
    for (size_t i = 0; i < info->layer_count; i++) {
        m->layers[i] = registry_intern(reg, &info->layers[i].digest);
        m->layer_sizes[i] = info->layers[i].size;
        m->layer_external[i] = (uint8_t)info->layers[i].external;
        reg->flags[m->layers[i]] |= ID_REFERENCED;
    }
    m->layer_count = info->layer_count;
    if (info->child_count) {
        m->children = xmalloc(info->child_count * sizeof(*m->children));
        m->child_platforms = xmalloc(info->child_count * sizeof(char *));
    }
    for (size_t i = 0; i < info->child_count; i++) {
        m->children[i] = registry_intern(reg, &info->children[i].digest);
        m->child_platforms[i] = info->children[i].platform;
        info->children[i].platform = NULL;
        reg->flags[m->children[i]] |= ID_REFERENCED;
    }
    m->child_count = info->child_count;
    if (info->has_subject)
        m->subject = registry_intern(reg, &info->subject);
    m->artifact = info->artifact;
    m->has_created = info->has_created;
    m->created = info->created;
    m->platform = info->platform;
    info->platform = NULL;
}

/* A manifest or config read by a worker, for the caller to take in. */
struct blob_read {
    uint32_t id;
    int error; /* errno of the read, or 0 */
    int parsed; /* 0 when the parser failed */
    struct manifest_info info;
    struct image_config config;
    struct manifest *m; /* configs: the manifest the config belongs to */
    size_t len; /* bytes read */
    char err[512];
};

/* Read and parse a manifest blob; safe on a worker. */
static void read_manifest(const struct registry *reg, struct blob_read *r)
{
    char *buf;
    size_t len;

    memset(&r->info, 0, sizeof(r->info));
    r->error = 0;
    r->parsed = 0;
    r->len = 0;
    r->err[0] = '\0';
    if (read_blob(reg, r->id, MANIFEST_MAX_BYTES, &buf, &len)) {
        r->error = errno;
        return;
    }
    r->len = len;
    r->parsed = manifest_parse(buf, len, &r->info, r->err,
                               sizeof(r->err)) == 0;
    free(buf);
}

/* Take a read manifest into the registry; the caller's thread only. */
static struct manifest *finish_manifest(struct registry *reg,
                                        struct blob_read *r)
{
    struct manifest *m = xcalloc(1, sizeof(*m));
    char path[128], err[512];

    m->config = m->subject = DIGEST_NONE;
    reg->manifests[r->id] = m;
    if (r->error || !r->parsed || r->info.kind == MANIFEST_UNKNOWN)
        blob_path(reg, r->id, path, sizeof(path));
    if (r->error) {
        if (r->error == ENOENT)
            snprintf(err, sizeof(err), "manifest blob %s is missing", path);
        else if (r->error == EFBIG)
            snprintf(err, sizeof(err), "manifest blob %s is larger than "
                     "%d bytes", path, MANIFEST_MAX_BYTES);
        else if (r->error == EISDIR)
            snprintf(err, sizeof(err), "manifest blob %s is not a regular "
                     "file", path);
        else
            snprintf(err, sizeof(err), "cannot read manifest blob %s: %s",
                     path, strerror(r->error));
        set_error(m, r->error == ENOENT ? MSTATE_MISSING : MSTATE_INVALID,
                  err);
        return m;
    }
    m->blob_size = (int64_t)r->len;
    if (!r->parsed) {
        char msg[700];
        snprintf(msg, sizeof(msg), "manifest blob %s: %s", path, r->err);
        set_error(m, MSTATE_INVALID, msg);
        return m;
    }
    convert_manifest(reg, m, &r->info);
    if (r->info.kind == MANIFEST_UNKNOWN) {
        char msg[700];
        snprintf(msg, sizeof(msg), "manifest blob %s: %s", path, r->err);
        set_error(m, MSTATE_UNKNOWN, msg);
    } else {
        m->state = MSTATE_OK;
    }
    manifest_info_free(&r->info);
    return m;
}

/* Read and parse the manifest blob of id once for the whole run. */
static struct manifest *load_manifest(struct registry *reg, uint32_t id)
{
    struct blob_read r;

    if (reg->manifests[id])
        return reg->manifests[id];
    r.id = id;
    read_manifest(reg, &r);
    return finish_manifest(reg, &r);
}

/* Items a worker pool reads at a time: enough to keep every worker busy,
 * few enough that the parsed but not yet merged ones take little memory. */
#define READ_BATCH 512

struct read_batch {
    const struct registry *reg;
    struct blob_read *reads;
};

static void read_manifest_item(void *ctx, size_t i)
{
    struct read_batch *b = ctx;
    read_manifest(b->reg, &b->reads[i]);
}

/*
 * Load the manifests ids[0..count) not loaded yet, on the worker pool, and
 * take them in in the order given, so that digests get the same ids
 * whatever the number of workers.
 */
static void load_manifests(struct registry *reg, const uint32_t *ids,
                           size_t count)
{
    struct blob_read *reads = xmalloc(READ_BATCH * sizeof(*reads));
    struct read_batch b = {reg, reads};

    for (size_t done = 0; done < count;) {
        size_t n = 0;

        while (done < count && n < READ_BATCH) {
            uint32_t id = ids[done++];
            if (reg->manifests[id] || (reg->flags[id] & ID_QUEUED))
                continue;
            reg->flags[id] |= ID_QUEUED;
            reads[n++].id = id;
        }
        pool_run(n, read_manifest_item, &b);
        for (size_t k = 0; k < n; k++) {
            reg->flags[reads[k].id] &= (uint8_t)~ID_QUEUED;
            finish_manifest(reg, &reads[k]);
        }
    }
    free(reads);
}

/* Read and parse an image config; safe on a worker. */
static void read_config(const struct registry *reg, struct blob_read *r)
{
    char *buf;
    size_t len;

    memset(&r->config, 0, sizeof(r->config));
    r->error = 0;
    r->parsed = 0;
    if (read_blob(reg, r->m->config, CONFIG_MAX_BYTES, &buf, &len)) {
        r->error = errno;
        return;
    }
    r->parsed = manifest_parse_config(buf, len, &r->config, r->err,
                                      sizeof(r->err)) == 0;
    free(buf);
}

static void read_config_item(void *ctx, size_t i)
{
    struct read_batch *b = ctx;
    read_config(b->reg, &b->reads[i]);
}

/* Take a read config into its manifest. */
static void finish_config(struct registry *reg, struct blob_read *r)
{
    struct manifest *m = r->m;
    char path[128];

    blob_path(reg, m->config, path, sizeof(path));
    if (r->error) {
        log_debug("%s: cannot read image config: %s", path,
                  strerror(r->error));
        return;
    }
    if (!r->parsed) {
        log_debug("%s: %s", path, r->err);
        return;
    }
    m->has_created = r->config.has_created;
    m->created = r->config.created;
    free(m->platform);
    m->platform = r->config.platform;
    r->config.platform = NULL;
    m->labels = r->config.labels;
    m->label_count = r->config.label_count;
    r->config.labels = NULL;
    r->config.label_count = 0;
    image_config_free(&r->config);
}

/* Freeze or pin repo according to the state of the manifest it links. */
static void check_manifest(struct registry *reg, struct repo *repo,
                           uint32_t id, const char *what)
{
    struct manifest *m = reg->manifests[id];
    char hex[DIGEST_HEX_LEN + 1];

    digest_to_hex(&reg->ids.digests[id], hex);
    if (m->state == MSTATE_MISSING || m->state == MSTATE_INVALID) {
        registry_problem(reg, repo->name, repo->name, "%s sha256:%s: %s",
                         what, hex, m->error);
        registry_freeze(repo, "a manifest cannot be read");
    } else if (m->state == MSTATE_UNKNOWN && !repo->pinned) {
        log_warning("repository %s: %s; keeping every revision and layer "
                    "link of the repository",
                    repo->name, m->error);
        repo->pinned = xstrdup(m->error);
    }
}

static void scan_repo_manifests(struct registry *reg, struct repo *repo)
{
    char hex[DIGEST_HEX_LEN + 1];

    for (size_t i = 0; i < repo->tag_count; i++)
        repo->tags[i].follows =
            registry_convention_subject(reg, repo, repo->tags[i].name);

    for (size_t i = 0; i < repo->revision_count; i++) {
        load_manifest(reg, repo->revisions[i]);
        check_manifest(reg, repo, repo->revisions[i], "revision");
    }
    for (size_t i = 0; i < repo->tag_count; i++) {
        struct tag *t = &repo->tags[i];

        if (registry_find_revision(repo, t->digest) >= 0)
            continue;
        digest_to_hex(&reg->ids.digests[t->digest], hex);
        registry_problem(reg, repo->name, repo->name,
                         "tag %s points at sha256:%s, which has no "
                         "revision link in the repository",
                         t->name, hex);
        registry_freeze(repo, "a tag points at a missing revision");
        load_manifest(reg, t->digest);
    }
    /* An index naming a child the repository lacks is normal. */
    for (size_t i = 0; i < repo->revision_count; i++) {
        struct manifest *m = reg->manifests[repo->revisions[i]];
        for (size_t c = 0; c < m->child_count; c++) {
            if (registry_find_revision(repo, m->children[c]) >= 0 ||
                repo->child_missing_noted)
                continue;
            digest_to_hex(&reg->ids.digests[repo->revisions[i]], hex);
            log_info("repository %s: index sha256:%.12s lists a manifest "
                     "the repository does not hold; the index is kept as "
                     "it is", repo->name, hex);
            repo->child_missing_noted = 1;
        }
    }
}

/* Queue m's config in reads when it has one not read yet. */
static void queue_config(struct blob_read *reads, size_t *n,
                         struct manifest *m)
{
    if (!m || m->state != MSTATE_OK || m->config_read ||
        m->config == DIGEST_NONE)
        return;
    m->config_read = 1;
    reads[*n].m = m;
    (*n)++;
}

/* Read the queued configs on the worker pool and take them in. */
static void flush_configs(struct registry *reg, struct blob_read *reads,
                          size_t *n)
{
    struct read_batch b = {reg, reads};

    pool_run(*n, read_config_item, &b);
    for (size_t k = 0; k < *n; k++)
        finish_config(reg, &reads[k]);
    *n = 0;
}

/* Queue the configs of repo's tags, reading those queued so far first
 * when a batch is full. */
static void queue_repo_configs(struct registry *reg, struct repo *repo,
                               struct blob_read **reads, size_t *n,
                               size_t *cap)
{
    /* Each tag queues at most its own config and one per child. */
    for (size_t i = 0; i < repo->tag_count; i++) {
        struct manifest *m = reg->manifests[repo->tags[i].digest];
        size_t need;

        if (!m || m->state != MSTATE_OK)
            continue;
        need = *n + 1 + m->child_count;
        if (need > READ_BATCH && *n > 0) {
            flush_configs(reg, *reads, n);
            need = 1 + m->child_count;
        }
        *reads = xgrow(*reads, cap, need, sizeof(**reads));
        queue_config(*reads, n, m);
        for (size_t c = 0; c < m->child_count; c++)
            if (registry_find_revision(repo, m->children[c]) >= 0)
                queue_config(*reads, n, reg->manifests[m->children[c]]);
    }
    repo->configs_read = 1;
}

void scan_configs(struct registry *reg)
{
    struct blob_read *reads = NULL;
    size_t n = 0, cap = 0;

    for (size_t r = 0; r < reg->repo_count; r++)
        if (reg->repos[r].selected && !reg->repos[r].configs_read)
            queue_repo_configs(reg, &reg->repos[r], &reads, &n, &cap);
    flush_configs(reg, reads, &n);
    free(reads);
    for (size_t r = 0; r < reg->repo_count; r++)
        if (reg->repos[r].selected)
            registry_describe_tags(reg, &reg->repos[r]);
}

void scan_repo_configs(struct registry *reg, struct repo *repo)
{
    struct blob_read *reads = NULL;
    size_t n = 0, cap = 0;

    if (repo->configs_read)
        return;
    queue_repo_configs(reg, repo, &reads, &n, &cap);
    flush_configs(reg, reads, &n);
    free(reads);
    registry_describe_tags(reg, repo);
}

/*
 * Read every repository in list on the worker pool, in batches, and take
 * each in, in list order.
 */
static void scan_repos(struct registry *reg, struct repo_list *list,
                       int repositories_fd)
{
    struct repo_scan *scans = xcalloc(READ_BATCH, sizeof(*scans));
    struct scan_run run = {repositories_fd, scans};

    for (size_t done = 0; done < list->count;) {
        size_t n = list->count - done;

        if (n > READ_BATCH)
            n = READ_BATCH;

        for (size_t k = 0; k < n; k++) {
            memset(&scans[k], 0, sizeof(scans[k]));
            scans[k].repo = &list->repos[done + k];
            scans[k].check_layer_links = reg->check_layer_links;
        }
        log_progress("reading repository %zu of %zu", done + 1,
                     list->count);
        pool_run(n, scan_one_repo, &run);
        for (size_t k = 0; k < n; k++)
            merge_repo_scan(reg, &scans[k]);
        done += n;
    }
    free(scans);
}

/* The manifests scan_repo_manifests loads, in the order it does. */
static void load_repo_manifests(struct registry *reg)
{
    uint32_t *ids = NULL;
    size_t n = 0, cap = 0;

    for (size_t r = 0; r < reg->repo_count; r++) {
        struct repo *repo = &reg->repos[r];

        ids = xgrow(ids, &cap, n + repo->revision_count + repo->tag_count,
                    sizeof(*ids));
        for (size_t i = 0; i < repo->revision_count; i++)
            ids[n++] = repo->revisions[i];
        for (size_t i = 0; i < repo->tag_count; i++)
            if (registry_find_revision(repo, repo->tags[i].digest) < 0)
                ids[n++] = repo->tags[i].digest;
    }
    load_manifests(reg, ids, n);
    free(ids);
}

int scan_registry(struct registry *reg, char *err, size_t err_size)
{
    struct repo_list list = {0};
    int fd = path_open_dir(reg->v2_fd, "repositories");

    if (fd < 0) {
        if (errno != ENOENT) {
            snprintf(err, err_size, "cannot open %s/docker/registry/v2/"
                     "repositories: %s", reg->root, strerror(errno));
            return -1;
        }
    } else {
        scan_open_blob_dirs(reg);
        walk(reg, &list, fd, "", 0);
        scan_repos(reg, &list, fd);
        close(fd);
    }
    if (list.count > 1)
        qsort(list.repos, list.count, sizeof(*list.repos), compare_repos);
    reg->repos = list.repos;
    reg->repo_count = list.count;
    load_repo_manifests(reg);
    for (size_t i = 0; i < reg->repo_count; i++) {
        log_progress("reading manifests: repository %zu of %zu", i + 1,
                     reg->repo_count);
        scan_repo_manifests(reg, &reg->repos[i]);
    }
    log_progress_done();
    return 0;
}

int scan_blob_store(struct registry *reg, char *err, size_t err_size)
{
    struct name_list prefixes;

    if (list_dir(reg->v2_fd, "blobs/sha256", DT_DIR, &prefixes, NULL)) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, err_size, "cannot list %s/docker/registry/v2/blobs/"
                 "sha256: %s", reg->root, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < prefixes.count; i++) {
        struct name_list blobs;
        char rel[64];

        pathf(rel, sizeof(rel), "blobs/sha256/%.8s", prefixes.names[i]);
        if (strlen(prefixes.names[i]) != 2 ||
            list_dir(reg->v2_fd, rel, DT_DIR, &blobs, NULL)) {
            registry_problem(reg, NULL, rel, "unexpected entry in the blob "
                             "store; left alone");
            continue;
        }
        for (size_t j = 0; j < blobs.count; j++) {
            struct digest d;
            uint32_t id;
            if (digest_parse_hex(blobs.names[j], strlen(blobs.names[j]),
                                 &d) != 0 ||
                strncmp(blobs.names[j], prefixes.names[i], 2) != 0) {
                char path[PATH_MAX];
                pathf(path, sizeof(path), "%s/%s", rel, blobs.names[j]);
                registry_problem(reg, NULL, path, "not a sha256 blob "
                                 "directory; left alone");
                continue;
            }
            id = registry_intern(reg, &d);
            reg->flags[id] |= ID_IN_STORE;
        }
        name_list_free(&blobs);
    }
    name_list_free(&prefixes);
    return 0;
}

/*** refresh before blobs go ***/

/* Mark live every blob the manifest id references, reading it if new. */
static void refresh_manifest(struct registry *reg, uint32_t id)
{
    struct manifest *m = load_manifest(reg, id);

    reg->flags[id] |= ID_LIVE;
    /* A manifest regprune cannot read may use any blob, but the registry
     * serves a repository only the blobs its _layers links name, and the
     * refresh marks every one of those live. */
    if (m->state != MSTATE_OK)
        return;
    if (m->config != DIGEST_NONE)
        reg->flags[m->config] |= ID_LIVE;
    for (size_t i = 0; i < m->layer_count; i++)
        reg->flags[m->layers[i]] |= ID_LIVE;
}

/* List DIR/sha256 under fd and mark each digest found. */
static void refresh_links(struct registry *reg, int fd, const char *dir,
                          int manifests)
{
    struct name_list names;
    char rel[64];

    snprintf(rel, sizeof(rel), "%s/sha256", dir);
    if (list_dir(fd, rel, DT_DIR, &names, NULL))
        return;
    for (size_t i = 0; i < names.count; i++) {
        struct digest d;
        struct stat st;
        uint32_t id;
        char link[PATH_MAX];

        if (digest_parse_hex(names.names[i], strlen(names.names[i]), &d))
            continue;
        /* A directory without its link is deleted, as the registry sees
         * it (a DELETE, or a removal this run or a stopped one began). */
        pathf(link, sizeof(link), "%s/%s/link", rel, names.names[i]);
        if (fstatat(fd, link, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        id = digest_table_find(&reg->ids, &d);
        if (id == DIGEST_NONE)
            id = registry_intern(reg, &d); /* pushed during the run */
        if (manifests) {
            refresh_manifest(reg, id);
        } else {
            reg->flags[id] |= ID_LIVE;
        }
    }
    name_list_free(&names);
}

static void refresh_walk(struct registry *reg, int dirfd, int depth)
{
    struct name_list dirs;

    if (depth > PATH_REPO_NAME_MAX / 2 ||
        list_dir(dirfd, ".", DT_DIR, &dirs, NULL)) {
        reg->incomplete = 1;
        return;
    }
    for (size_t i = 0; i < dirs.count; i++) {
        const char *name = dirs.names[i];
        int fd;

        if (strcmp(name, "_manifests") == 0) {
            refresh_links(reg, dirfd, "_manifests/revisions", 1);
            continue;
        }
        if (strcmp(name, "_layers") == 0) {
            refresh_links(reg, dirfd, "_layers", 0);
            continue;
        }
        if (name[0] == '_')
            continue;
        fd = path_open_dir(dirfd, name);
        if (fd < 0) {
            reg->incomplete = 1;
            continue;
        }
        refresh_walk(reg, fd, depth + 1);
        close(fd);
    }
    name_list_free(&dirs);
}

void scan_refresh(struct registry *reg)
{
    int fd = path_open_dir(reg->v2_fd, "repositories");

    if (fd < 0) {
        if (errno != ENOENT)
            reg->incomplete = 1;
        return;
    }
    refresh_walk(reg, fd, 0);
    close(fd);
}

static int compare_history(const void *a, const void *b)
{
    const struct history_entry *x = a, *y = b;

    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return (x->digest > y->digest) - (x->digest < y->digest);
}

size_t scan_tag_history(struct registry *reg, const struct repo *repo,
                        const struct tag *t, struct history_entry **out)
{
    struct name_list names;
    char rel[PATH_MAX], link[PATH_MAX];
    struct history_entry *entries;
    size_t count = 0;
    int fd;

    *out = NULL;
    if (reg->v2_fd < 0)
        return 0;
    pathf(rel, sizeof(rel), "repositories/%s/_manifests/tags/%s/index",
          repo->name, t->name);
    fd = path_open_dir(reg->v2_fd, rel);
    if (fd < 0)
        return 0;
    if (list_dir(fd, "sha256", DT_DIR, &names, NULL)) {
        close(fd);
        return 0;
    }
    entries = xcalloc(names.count + 1, sizeof(*entries));
    for (size_t i = 0; i < names.count; i++) {
        struct digest d;
        struct stat st;

        if (digest_parse_hex(names.names[i], strlen(names.names[i]), &d))
            continue;
        pathf(link, sizeof(link), "sha256/%s/link", names.names[i]);
        if (fstatat(fd, link, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        entries[count].digest = registry_intern(reg, &d);
        entries[count].time = (int64_t)st.st_mtim.tv_sec;
        count++;
    }
    name_list_free(&names);
    close(fd);
    qsort(entries, count, sizeof(*entries), compare_history);
    *out = entries;
    return count;
}
