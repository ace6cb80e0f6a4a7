#define _GNU_SOURCE
#include "trash.h"

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

#define TRASH_LIST "MOVED"

/* Whether path a is b or lies below it. */
static int is_within(const char *a, const char *b)
{
    size_t n = strlen(b);

    return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

/* Open DIR after checking it is outside root on v2_fd's filesystem. */
static int open_checked(const char *dir, const char *root, int v2_fd,
                        char *err, size_t err_size)
{
    char real_dir[PATH_MAX], real_root[PATH_MAX];
    struct stat trash_st, v2_st;
    int dir_fd;

    if (!realpath(dir, real_dir) || !realpath(root, real_root)) {
        snprintf(err, err_size, "--trash %s: %s; create the directory "
                 "first", dir, strerror(errno));
        return -1;
    }
    if (is_within(real_dir, real_root) || is_within(real_root, real_dir)) {
        snprintf(err, err_size, "--trash %s is inside the registry root %s "
                 "(or holds it); choose a directory outside it on the same "
                 "filesystem", dir, root);
        return -1;
    }
    dir_fd = open(real_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || fstat(dir_fd, &trash_st) != 0 ||
        fstat(v2_fd, &v2_st) != 0) {
        snprintf(err, err_size, "--trash %s: %s", dir, strerror(errno));
        if (dir_fd >= 0)
            close(dir_fd);
        return -1;
    }
    if (trash_st.st_dev != v2_st.st_dev) {
        snprintf(err, err_size, "--trash %s is on another filesystem than "
                 "the registry, so moving into it would copy; choose one on "
                 "the registry's filesystem", dir);
        close(dir_fd);
        return -1;
    }
    return dir_fd;
}

int trash_check(const char *dir, const char *root, int v2_fd, char *err,
                size_t err_size)
{
    int fd = open_checked(dir, root, v2_fd, err, err_size);

    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

int trash_open(const char *dir, const char *root, int v2_fd,
               const char *run_id, struct remove_options *opt, char *err,
               size_t err_size)
{
    int dir_fd = open_checked(dir, root, v2_fd, err, err_size);
    int run_fd = -1, list_fd;

    if (dir_fd < 0)
        return -1;
    if (mkdirat(dir_fd, run_id, 0700) == 0)
        run_fd = openat(dir_fd, run_id,
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(dir_fd);
    if (run_fd < 0) {
        snprintf(err, err_size, "cannot create %s/%s: %s", dir, run_id,
                 strerror(errno));
        return -1;
    }
    list_fd = openat(run_fd, TRASH_LIST,
                     O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    opt->trash_list = list_fd >= 0 ? fdopen(list_fd, "a") : NULL;
    if (!opt->trash_list) {
        snprintf(err, err_size, "cannot create %s/%s/%s: %s", dir, run_id,
                 TRASH_LIST, strerror(errno));
        if (list_fd >= 0)
            close(list_fd);
        close(run_fd);
        return -1;
    }
    opt->trash_fd = run_fd;
    return 0;
}

void trash_close(struct remove_options *opt)
{
    if (opt->trash_list)
        fclose(opt->trash_list);
    if (opt->trash_fd >= 0)
        close(opt->trash_fd);
    opt->trash_list = NULL;
    opt->trash_fd = -1;
}

/*
 * Open the directory reldir beneath base_fd, creating each missing
 * component, without following symbolic links. Return it, or -1.
 */
static int make_dirs(int base_fd, const char *reldir)
{
    char *copy = xstrdup(reldir), *save = NULL;
    int fd = dup(base_fd);

    for (char *part = strtok_r(copy, "/", &save); part && fd >= 0;
         part = strtok_r(NULL, "/", &save)) {
        int next;

        if (mkdirat(fd, part, 0755) != 0 && errno != EEXIST) {
            close(fd);
            fd = -1;
            break;
        }
        next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                    O_CLOEXEC);
        close(fd);
        fd = next;
    }
    free(copy);
    return fd;
}

/* Rename from_fd/path to to_fd/path, creating to's parents. */
static int move_between(int from_fd, int to_fd, const char *path)
{
    const char *slash = strrchr(path, '/');
    char *parent = slash ? xstrndup(path, (size_t)(slash - path)) : NULL;
    const char *base = slash ? slash + 1 : path;
    int src = parent ? path_open_dir(from_fd, parent) : dup(from_fd);
    int dst = parent ? make_dirs(to_fd, parent) : dup(to_fd);
    int rc = -1, saved;

    if (src >= 0 && dst >= 0)
        rc = renameat2(src, base, dst, base, RENAME_NOREPLACE);
    saved = errno;
    if (src >= 0)
        close(src);
    if (dst >= 0)
        close(dst);
    free(parent);
    errno = saved;
    return rc;
}

int trash_move(const struct remove_options *opt, int v2_fd,
               const char *path)
{
    int fd = path_open(v2_fd, path, O_PATH);

    /* A path already gone counts as moved, as a deletion would. */
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    close(fd);
    if (move_between(v2_fd, opt->trash_fd, path) != 0)
        return -1;
    fprintf(opt->trash_list, "%s\n", path);
    fflush(opt->trash_list);
    return 0;
}

long trash_restore(const char *run_dir, int v2_fd, char *err,
                   size_t err_size)
{
    int run_fd = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int list_fd;
    FILE *list;
    char **paths = NULL;
    size_t count = 0, capacity = 0;
    char line[PATH_MAX];
    long failed = 0;

    if (run_fd < 0) {
        snprintf(err, err_size, "cannot open trash run %s: %s", run_dir,
                 strerror(errno));
        return -1;
    }
    list_fd = openat(run_fd, TRASH_LIST, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    list = list_fd >= 0 ? fdopen(list_fd, "r") : NULL;
    if (!list) {
        snprintf(err, err_size, "%s has no %s list: pass the run directory "
                 "that a --trash run printed", run_dir, TRASH_LIST);
        if (list_fd >= 0)
            close(list_fd);
        close(run_fd);
        return -1;
    }
    while (fgets(line, sizeof(line), list)) {
        line[strcspn(line, "\n")] = '\0';
        if (!*line || line[0] == '/' || strstr(line, ".."))
            continue;
        paths = xgrow(paths, &capacity, count + 1, sizeof(*paths));
        paths[count++] = xstrdup(line);
    }
    fclose(list);
    /* Blobs went last, so they come back first: a tag is never back
     * before what it needs. */
    while (count > 0) {
        char *path = paths[--count];
        if (move_between(run_fd, v2_fd, path) != 0) {
            log_warning("%s/%s: cannot restore: %s; left in the trash",
                        run_dir, path, strerror(errno));
            failed++;
        } else {
            log_info("restored %s", path);
        }
        free(path);
    }
    free(paths);
    close(run_fd);
    if (failed == 0) {
        const char *slash = strrchr(run_dir, '/');
        char *parent = slash ? xstrndup(run_dir, (size_t)(slash - run_dir))
                             : xstrdup(".");
        int parent_fd = open(*parent ? parent : "/",
                             O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (parent_fd < 0 ||
            path_remove_tree(parent_fd, slash ? slash + 1 : run_dir) != 0)
            log_warning("%s: restored, but the run directory cannot be "
                        "removed: %s", run_dir, strerror(errno));
        if (parent_fd >= 0)
            close(parent_fd);
        free(parent);
    }
    return failed;
}

long trash_empty(const char *dir, int64_t older_than, char *err,
                 size_t err_size)
{
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d;
    struct dirent *ent;
    long removed = 0;
    int64_t limit = (int64_t)time(NULL) - older_than;

    if (dir_fd < 0 || !(d = fdopendir(dir_fd))) {
        snprintf(err, err_size, "cannot open trash %s: %s", dir,
                 strerror(errno));
        if (dir_fd >= 0)
            close(dir_fd);
        return -1;
    }
    while ((ent = readdir(d)) != NULL) {
        char list[PATH_MAX];
        struct stat st;

        if (ent->d_name[0] == '.')
            continue;
        snprintf(list, sizeof(list), "%s/%s", ent->d_name, TRASH_LIST);
        /* Only run directories, known by their list, are touched. */
        if (fstatat(dirfd(d), list, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode) || (int64_t)st.st_mtim.tv_sec > limit)
            continue;
        if (path_remove_tree(dirfd(d), ent->d_name) != 0) {
            log_warning("%s/%s: cannot remove: %s", dir, ent->d_name,
                        strerror(errno));
            continue;
        }
        log_info("emptied %s/%s", dir, ent->d_name);
        removed++;
    }
    closedir(d);
    return removed;
}
