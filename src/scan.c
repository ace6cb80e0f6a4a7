#define _GNU_SOURCE
#include "scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "path.h"
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

/*
 * List the entries of relpath beneath dirfd whose type matches want (DT_DIR
 * or DT_REG), sorted. Entries of another type go to others when it is not
 * NULL. Return 0, or -1 with errno set.
 */
static int list_dir(int parent_fd, const char *relpath, unsigned char want,
                    struct name_list *out, struct name_list *others)
{
    int fd = path_open_dir(parent_fd, relpath);
    DIR *dir;
    struct dirent *ent;

    memset(out, 0, sizeof(*out));
    if (others)
        memset(others, 0, sizeof(*others));
    if (fd < 0)
        return -1;
    dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return -1;
    }
    while ((ent = readdir(dir)) != NULL) {
        unsigned char type = ent->d_type;
        struct name_list *dest;

        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        if (type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd(dir), ent->d_name, &st, AT_SYMLINK_NOFOLLOW))
                continue;
            type = S_ISDIR(st.st_mode)   ? DT_DIR
                   : S_ISREG(st.st_mode) ? DT_REG
                                         : DT_LNK;
        }
        dest = type == want ? out : others;
        if (!dest)
            continue;
        dest->names = xgrow(dest->names, &dest->capacity, dest->count + 1,
                            sizeof(char *));
        dest->names[dest->count++] = xstrdup(ent->d_name);
    }
    closedir(dir);
    if (out->count > 1)
        qsort(out->names, out->count, sizeof(char *), compare_strings);
    return 0;
}

/*** repositories ***/

static int compare_ids(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/*
 * Read the link file rel under the repository. Return 0 with *id set, 1
 * when the file does not exist, or -1 after recording why it is invalid
 * and freezing the repository.
 */
static int read_link(struct registry *reg, struct repo *repo, int repo_fd,
                     const char *rel, uint32_t *id, long long *mtime)
{
    char path[PATH_MAX];
    char *buf = NULL;
    size_t len;
    struct digest d;

    pathf(path, sizeof(path), "repositories/%s/%s", repo->name, rel);
    if (path_read_file(repo_fd, rel, LINK_MAX_BYTES, &buf, &len, mtime)) {
        if (errno == ENOENT)
            return 1;
        if (errno == EFBIG)
            registry_problem(reg, repo->name, path,
                             "invalid link: longer than a sha256 digest");
        else
            registry_problem(reg, repo->name, path,
                             "cannot read link: %s%s", strerror(errno),
                             errno == EACCES ? "; run regprune as the user "
                                               "the registry runs as"
                                             : "");
        registry_freeze(repo, "a link cannot be read");
        return -1;
    }
    if (digest_parse(buf, len, &d) != 0) {
        registry_problem(reg, repo->name, path,
                         len == 0 ? "invalid link: the file is empty; "
                                    "the repository is left alone"
                                  : "invalid link: expected "
                                    "sha256:<64 lowercase hex> and nothing "
                                    "else (no newline); the repository is "
                                    "left alone until the link is fixed");
        registry_freeze(repo, "a link is invalid");
        free(buf);
        return -1;
    }
    free(buf);
    *id = registry_intern(reg, &d);
    reg->flags[*id] |= ID_REFERENCED;
    return 0;
}

/*
 * Tag names follow the distribution grammar [A-Za-z0-9_][A-Za-z0-9_.-]*,
 * at most 128 characters.
 */
static int valid_tag_name(const char *s)
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

static void scan_tags(struct registry *reg, struct repo *repo, int repo_fd)
{
    struct name_list tags, others;
    char path[PATH_MAX];

    if (list_dir(repo_fd, "_manifests/tags", DT_DIR, &tags, &others)) {
        if (errno != ENOENT) {
            pathf(path, sizeof(path), "repositories/%s/_manifests/tags",
                     repo->name);
            registry_problem(reg, repo->name, path, "cannot list tags: %s",
                             strerror(errno));
            registry_freeze(repo, "its tags cannot be listed");
        }
        return;
    }
    for (size_t i = 0; i < others.count; i++) {
        pathf(path, sizeof(path), "repositories/%s/_manifests/tags/%s",
                 repo->name, others.names[i]);
        registry_problem(reg, repo->name, path,
                         "not a directory (a symbolic link is not "
                         "followed); the repository is left alone");
        registry_freeze(repo, "a tag is not a directory");
    }
    repo->tags = xcalloc(tags.count, sizeof(*repo->tags));
    for (size_t i = 0; i < tags.count; i++) {
        struct tag *t = &repo->tags[repo->tag_count];
        long long mtime;
        int rc;
        char rel[PATH_MAX];

        pathf(path, sizeof(path), "repositories/%s/_manifests/tags/%s",
                 repo->name, tags.names[i]);
        if (!valid_tag_name(tags.names[i])) {
            registry_problem(reg, repo->name, path,
                             "invalid tag name; repository left alone");
            registry_freeze(repo, "a tag name is invalid");
            continue;
        }
        pathf(rel, sizeof(rel), "_manifests/tags/%s/current/link",
                 tags.names[i]);
        rc = read_link(reg, repo, repo_fd, rel, &t->digest, &mtime);
        if (rc == 1)
            log_warning("%s: the tag has no current/link, so the registry "
                        "does not serve it; left alone", path);
        if (rc != 0)
            continue;
        t->name = tags.names[i];
        tags.names[i] = NULL;
        t->pushed = mtime;
        repo->tag_count++;
    }
    name_list_free(&tags);
    name_list_free(&others);
}

/*
 * Read the digests under DIR/sha256/<hex>/link. Revision links are read and
 * must name their own directory; layer links are taken from the listing.
 */
static uint32_t *scan_links(struct registry *reg, struct repo *repo,
                            int repo_fd, const char *dir, int read_links,
                            size_t *count)
{
    struct name_list names, others;
    char rel[PATH_MAX], path[PATH_MAX];
    uint32_t *ids;

    *count = 0;
    pathf(rel, sizeof(rel), "%s/sha256", dir);
    if (list_dir(repo_fd, rel, DT_DIR, &names, &others)) {
        if (errno != ENOENT) {
            pathf(path, sizeof(path), "repositories/%s/%s", repo->name,
                     rel);
            registry_problem(reg, repo->name, path, "cannot list: %s",
                             strerror(errno));
            registry_freeze(repo, "a link directory cannot be listed");
        }
        return NULL;
    }
    for (size_t i = 0; i < others.count; i++) {
        pathf(path, sizeof(path), "repositories/%s/%s/sha256/%s", repo->name,
              dir, others.names[i]);
        registry_problem(reg, repo->name, path,
                         "not a directory (a symbolic link is not "
                         "followed); the repository is left alone");
        registry_freeze(repo, "a link directory holds something else");
    }
    name_list_free(&others);
    /* Room for each directory's digest and the one its link names. */
    ids = xmalloc(2 * names.count * sizeof(*ids) + 1);
    for (size_t i = 0; i < names.count; i++) {
        struct digest d;
        uint32_t id, linked;

        pathf(path, sizeof(path), "repositories/%s/%s/sha256/%s",
                 repo->name, dir, names.names[i]);
        if (digest_parse_hex(names.names[i], strlen(names.names[i]), &d)) {
            registry_problem(reg, repo->name, path,
                             "directory name is not a sha256 digest; the "
                             "repository is left alone");
            registry_freeze(repo, "a link directory has an invalid name");
            continue;
        }
        id = registry_intern(reg, &d);
        reg->flags[id] |= ID_REFERENCED;
        if (read_links) {
            pathf(rel, sizeof(rel), "%s/sha256/%s/link", dir,
                     names.names[i]);
            int rc = read_link(reg, repo, repo_fd, rel, &linked, NULL);
            /* The registry's DELETE removes only the link file. */
            if (rc == 1) {
                log_debug("%s: no link, a deleted revision", path);
                continue;
            }
            /* An invalid link froze the repository; its manifest still
             * counts, so that the blobs it references stay. */
            if (rc == 0 && linked != id) {
                registry_problem(reg, repo->name, path,
                                 "link names another digest than its "
                                 "directory");
                registry_freeze(repo, "a link names the wrong digest");
                ids[(*count)++] = linked;
            }
        }
        ids[(*count)++] = id;
    }
    name_list_free(&names);
    qsort(ids, *count, sizeof(*ids), compare_ids);
    return ids;
}

static void scan_uploads(struct registry *reg, struct repo *repo,
                         int repo_fd)
{
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
            (int64_t)st.st_mtim.tv_sec > reg->newest_upload) {
            reg->newest_upload = (int64_t)st.st_mtim.tv_sec;
            free(reg->newest_upload_repo);
            reg->newest_upload_repo = xstrdup(repo->name);
        }
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

static void scan_repo(struct registry *reg, struct repo_list *list,
                      const char *name, int fd)
{
    struct repo *repo;

    list->repos = xgrow(list->repos, &list->capacity, list->count + 1,
                        sizeof(*list->repos));
    repo = &list->repos[list->count++];
    memset(repo, 0, sizeof(*repo));
    repo->name = xstrdup(name);
    repo->selected = 1;
    log_progress("scanning: %zu repositories", list->count);
    scan_tags(reg, repo, fd);
    repo->revisions = scan_links(reg, repo, fd, "_manifests/revisions", 1,
                                 &repo->revision_count);
    repo->layers = scan_links(reg, repo, fd, "_layers", 0,
                              &repo->layer_count);
    scan_uploads(reg, repo, fd);
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
        scan_repo(reg, list, name, dirfd);
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

long long scan_blob_size(struct registry *reg, uint32_t id, long long *mtime)
{
    char path[128];
    struct stat st;
    int fd;

    blob_path(reg, id, path, sizeof(path));
    fd = path_open(reg->v2_fd, path, O_RDONLY | O_PATH);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    close(fd);
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
    m->layers = xmalloc(info->layer_count * sizeof(*m->layers));
    m->layer_sizes = xmalloc(info->layer_count * sizeof(*m->layer_sizes));
    m->layer_external = xmalloc(info->layer_count + 1);
    for (size_t i = 0; i < info->layer_count; i++) {
        m->layers[i] = registry_intern(reg, &info->layers[i].digest);
        m->layer_sizes[i] = info->layers[i].size;
        m->layer_external[i] = (uint8_t)info->layers[i].external;
        reg->flags[m->layers[i]] |= ID_REFERENCED;
    }
    m->layer_count = info->layer_count;
    m->children = xmalloc(info->child_count * sizeof(*m->children));
    m->child_platforms = xmalloc(info->child_count * sizeof(char *));
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

/* Read and parse the manifest blob of id once for the whole run. */
static struct manifest *load_manifest(struct registry *reg, uint32_t id)
{
    struct manifest *m = reg->manifests[id];
    struct manifest_info info;
    char path[128], err[512];
    char *buf;
    size_t len;

    if (m)
        return m;
    m = xcalloc(1, sizeof(*m));
    m->config = m->subject = DIGEST_NONE;
    reg->manifests[id] = m;
    blob_path(reg, id, path, sizeof(path));
    if (path_read_file(reg->v2_fd, path, MANIFEST_MAX_BYTES, &buf, &len,
                       NULL)) {
        if (errno == ENOENT)
            snprintf(err, sizeof(err), "manifest blob %s is missing", path);
        else if (errno == EFBIG)
            snprintf(err, sizeof(err), "manifest blob %s is larger than "
                     "%d bytes", path, MANIFEST_MAX_BYTES);
        else
            snprintf(err, sizeof(err), "cannot read manifest blob %s: %s",
                     path, strerror(errno));
        set_error(m, errno == ENOENT ? MSTATE_MISSING : MSTATE_INVALID, err);
        return m;
    }
    m->blob_size = (int64_t)len;
    if (manifest_parse(buf, len, &info, err, sizeof(err)) != 0) {
        char msg[700];
        snprintf(msg, sizeof(msg), "manifest blob %s: %s", path, err);
        set_error(m, MSTATE_INVALID, msg);
    } else {
        /* Reassign: interning may have moved reg->manifests. */
        convert_manifest(reg, m, &info);
        if (info.kind == MANIFEST_UNKNOWN) {
            char msg[700];
            snprintf(msg, sizeof(msg), "manifest blob %s: %s", path, err);
            set_error(m, MSTATE_UNKNOWN, msg);
        } else {
            m->state = MSTATE_OK;
        }
        manifest_info_free(&info);
    }
    free(buf);
    return m;
}

static void load_config(struct registry *reg, struct manifest *m)
{
    struct image_config c;
    char path[128], err[256];
    char *buf;
    size_t len;

    if (m->config_read || m->config == DIGEST_NONE)
        return;
    m->config_read = 1;
    blob_path(reg, m->config, path, sizeof(path));
    if (path_read_file(reg->v2_fd, path, CONFIG_MAX_BYTES, &buf, &len,
                       NULL)) {
        log_debug("%s: cannot read image config: %s", path, strerror(errno));
        return;
    }
    if (manifest_parse_config(buf, len, &c, err, sizeof(err)) == 0) {
        m->has_created = c.has_created;
        m->created = c.created;
        free(m->platform);
        m->platform = c.platform;
        c.platform = NULL;
        m->labels = c.labels;
        m->label_count = c.label_count;
        c.labels = NULL;
        c.label_count = 0;
        image_config_free(&c);
    } else {
        log_debug("%s: %s", path, err);
    }
    free(buf);
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

void scan_configs(struct registry *reg, struct repo *repo)
{
    for (size_t i = 0; i < repo->tag_count; i++) {
        struct manifest *m = reg->manifests[repo->tags[i].digest];

        if (!m || m->state != MSTATE_OK)
            continue;
        load_config(reg, m);
        for (size_t c = 0; c < m->child_count; c++) {
            struct manifest *child = reg->manifests[m->children[c]];
            if (child && child->state == MSTATE_OK &&
                registry_find_revision(repo, m->children[c]) >= 0)
                load_config(reg, child);
        }
    }
    registry_describe_tags(reg, repo);
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
        walk(reg, &list, fd, "", 0);
        close(fd);
    }
    if (list.count > 1)
        qsort(list.repos, list.count, sizeof(*list.repos), compare_repos);
    reg->repos = list.repos;
    reg->repo_count = list.count;
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
    if (m->state == MSTATE_UNKNOWN || m->state == MSTATE_INVALID) {
        reg->incomplete = 1; /* it may reference anything */
        return;
    }
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
