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

/*
 * ROOT_ID in a run directory: the device and inode of the v2 directory the
 * run moved from, so that restore puts nothing into another registry.
 */
#define TRASH_ROOT_ID "ROOT_ID"

static int write_identity(int run_fd, int v2_fd, char *err, size_t err_size)
{
    struct stat st;
    char text[64];
    int fd, n, ok;

    if (fstat(v2_fd, &st) != 0)
        return -1;
    n = snprintf(text, sizeof(text), "%llu %llu\n",
                 (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
    fd = openat(run_fd, TRASH_ROOT_ID,
                O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ok = fd >= 0 && write(fd, text, (size_t)n) == n;
    if (fd >= 0)
        close(fd);
    if (!ok)
        snprintf(err, err_size, "cannot write the trash run's %s: %s",
                 TRASH_ROOT_ID, strerror(errno));
    return ok ? 0 : -1;
}

/* Whether the run directory came from the registry at v2_fd. */
static int same_identity(int run_fd, int v2_fd)
{
    struct stat st;
    char text[64] = "", expected[64];
    int fd = openat(run_fd, TRASH_ROOT_ID,
                    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    ssize_t n;

    if (fd < 0 || fstat(v2_fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    snprintf(expected, sizeof(expected), "%llu %llu\n",
             (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    return strcmp(text, expected) == 0;
}

/* Whether the tree below fd contains anything but directories. */
static int holds_files(int fd)
{
    DIR *dir = fdopendir(dup(fd));
    struct dirent *ent;
    int found = 0;

    if (!dir)
        return 1;
    while (!found && (ent = readdir(dir)) != NULL) {
        struct stat st;
        int sub;

        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd(dir), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISDIR(st.st_mode)) {
            found = 1;
            break;
        }
        sub = openat(dirfd(dir), ent->d_name,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        found = sub < 0 || holds_files(sub);
        if (sub >= 0)
            close(sub);
    }
    closedir(dir);
    return found;
}

int trash_check(const char *dir, const char *root, int v2_fd, char *err,
                size_t err_size)
{
    int fd = open_checked(dir, root, v2_fd, err, err_size);
    char probe[64];
    int probe_fd, rc = 0;

    if (fd < 0)
        return -1;
    /* A bind mount of the same filesystem passes the device check but
     * rejects renames, so rename a probe file from beside v2 to find out. */
    snprintf(probe, sizeof(probe), ".regprune-trash-probe-%ld",
             (long)getpid());
    probe_fd = openat(v2_fd, probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                      0600);
    if (probe_fd >= 0) {
        close(probe_fd);
        if (renameat(v2_fd, probe, fd, probe) == 0) {
            unlinkat(fd, probe, 0);
        } else {
            snprintf(err, err_size, "--trash %s: cannot rename into it from "
                     "the registry (%s); choose a directory on the same "
                     "mount", dir, strerror(errno));
            unlinkat(v2_fd, probe, 0);
            rc = -1;
        }
    }
    close(fd);
    return rc;
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
    return write_identity(run_fd, v2_fd, err, err_size);
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
    /* List the path before moving it, so that a run stopped in between
     * leaves nothing in the trash that restore does not know of. */
    fprintf(opt->trash_list, "%s\n", path);
    if (fflush(opt->trash_list) != 0 || fdatasync(fileno(opt->trash_list)))
        return -1;
    path_crash_point();
    return move_between(v2_fd, opt->trash_fd, path);
}

long trash_restore(const char *run_dir, int v2_fd, long *restored,
                   char *err, size_t err_size)
{
    int run_fd = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int list_fd;
    FILE *list;
    char **paths = NULL;
    size_t count = 0, capacity = 0;
    char line[PATH_MAX];
    long failed = 0;

    *restored = 0;
    if (run_fd < 0) {
        snprintf(err, err_size, "cannot open trash run %s: %s", run_dir,
                 strerror(errno));
        return -1;
    }
    if (!same_identity(run_fd, v2_fd)) {
        snprintf(err, err_size, "%s was not moved from this registry (its "
                 "%s does not match the root); pass the --root it came "
                 "from", run_dir, TRASH_ROOT_ID);
        close(run_fd);
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
        int src = path_open(run_fd, path, O_PATH);
        int moved = -1;

        if (src >= 0) {
            close(src);
            moved = move_between(run_fd, v2_fd, path);
        }
        if (src < 0 && errno == ENOENT) {
            /* Listed but never moved (a stopped run), or restored by an
             * earlier, stopped restore. */
            log_debug("%s: not in the trash", path);
        } else if (moved != 0) {
            log_warning("%s/%s: cannot restore: %s; left in the trash",
                        run_dir, path, strerror(errno));
            failed++;
        } else {
            log_info("restored %s", path);
            ++*restored;
        }
        free(path);
    }
    free(paths);
    /* The run directory goes only when nothing but empty directories and
     * its own records are left in it. */
    if (failed == 0) {
        unlinkat(run_fd, TRASH_LIST, 0);
        unlinkat(run_fd, TRASH_ROOT_ID, 0);
        if (holds_files(run_fd)) {
            log_warning("%s: files the list does not name are left in it; "
                        "the run directory stays", run_dir);
            failed++;
        }
    }
    close(run_fd);
    if (failed == 0) {
        char *copy = xstrdup(run_dir);
        size_t len = strlen(copy);
        char *slash, *parent;
        int parent_fd;

        while (len > 1 && copy[len - 1] == '/')
            copy[--len] = '\0';
        slash = strrchr(copy, '/');
        parent = slash ? xstrndup(copy, (size_t)(slash - copy)) : xstrdup(".");
        parent_fd = open(*parent ? parent : "/",
                         O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent_fd < 0 ||
            path_remove_tree(parent_fd, slash ? slash + 1 : copy) != 0)
            log_warning("%s: restored, but the run directory cannot be "
                        "removed: %s", run_dir, strerror(errno));
        if (parent_fd >= 0)
            close(parent_fd);
        free(parent);
        free(copy);
    }
    return failed;
}

long trash_empty(const char *dir, int64_t older_than, int dry_run,
                 char *err, size_t err_size)
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

        if (strncmp(ent->d_name, "regprune-", 9) != 0)
            continue;
        snprintf(list, sizeof(list), "%s/%s", ent->d_name, TRASH_LIST);
        /* Only run directories, known by their list, are touched. */
        if (fstatat(dirfd(d), list, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode) || (int64_t)st.st_mtim.tv_sec > limit)
            continue;
        if (dry_run) {
            printf("would free %s/%s\n", dir, ent->d_name);
            removed++;
            continue;
        }
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
