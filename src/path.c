#define _GNU_SOURCE
#include "path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "xalloc.h"

void pathf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "regprune: fatal: path too long: %s...\n", buf);
        abort();
    }
}

void path_join(char *buf, size_t size, const char *dir, const char *name)
{
    size_t dir_len = strlen(dir), name_len = strlen(name);

    if (dir_len + 1 + name_len >= size) {
        fprintf(stderr, "regprune: fatal: path too long: %s/%s\n", dir,
                name);
        abort();
    }
    /* The terminating NUL comes with name below. */
    memcpy(buf, dir, dir_len); // NOLINT(bugprone-not-null-terminated-result)
    buf[dir_len] = '/';
    memcpy(buf + dir_len + 1, name, name_len + 1);
}

/* Kernels before 5.6 lack openat2; then each component is opened in turn. */
static atomic_int have_openat2 = 1;

static int open_by_components(int dirfd, const char *relpath, int flags)
{
    char *copy = xstrdup(relpath);
    char *part = copy, *slash;
    int fd = dirfd, next;

    if (*relpath == '/' || *relpath == '\0') {
        free(copy);
        errno = EXDEV;
        return -1;
    }
    while ((slash = strchr(part, '/')) != NULL) {
        *slash = '\0';
        if (strcmp(part, "..") == 0) {
            errno = EXDEV;
            next = -1;
        } else {
            next = openat(fd, part,
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd != dirfd)
            close(fd);
        if (next < 0) {
            int saved = errno;
            free(copy);
            errno = saved;
            return -1;
        }
        fd = next;
        part = slash + 1;
    }
    if (strcmp(part, "..") == 0) {
        next = -1;
        errno = EXDEV;
    } else {
        next = openat(fd, part, flags | O_NOFOLLOW | O_CLOEXEC);
    }
    {
        int saved = errno;
        if (fd != dirfd)
            close(fd);
        free(copy);
        errno = saved;
    }
    return next;
}

int path_open(int dirfd, const char *relpath, int flags)
{
    if (have_openat2) {
        struct open_how how;
        long fd;

        memset(&how, 0, sizeof(how));
        how.flags = (unsigned long long)(flags | O_NOFOLLOW | O_CLOEXEC);
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                      RESOLVE_NO_MAGICLINKS;
        fd = syscall(SYS_openat2, dirfd, relpath, &how, sizeof(how));
        if (fd >= 0 || errno != ENOSYS)
            return (int)fd;
        have_openat2 = 0;
    }
    return open_by_components(dirfd, relpath, flags);
}

int path_open_dir(int dirfd, const char *relpath)
{
    return path_open(dirfd, relpath, O_RDONLY | O_DIRECTORY);
}

/* fstat fd to tell a FIFO, device or directory from an empty file. */
static int check_regular(int fd)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        return -1;
    if (!S_ISREG(st.st_mode)) {
        errno = EISDIR;
        return -1;
    }
    return 0;
}

int path_read_file(int dirfd, const char *relpath, size_t max_bytes,
                   char **buf, size_t *len, long long *mtime)
{
    struct stat st;
    char *data = NULL;
    size_t used = 0, cap;
    int fd, saved;

    /* O_NONBLOCK: opening a FIFO put in a file's place must not wait for
     * a writer; the file type check below then rejects it. */
    fd = path_open(dirfd, relpath, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return -1;
    if (mtime) {
        if (fstat(fd, &st) != 0)
            goto fail;
        if (!S_ISREG(st.st_mode)) {
            errno = EISDIR;
            goto fail;
        }
        *mtime = (long long)st.st_mtim.tv_sec;
    }
    /*
     * No fstat for the size: a read of a regular file returns fewer bytes
     * than asked only at its end, so one read into a buffer larger than
     * the file returns all of it. Link files and most manifests fit the
     * first buffer, and a full buffer grows before the next read.
     * NOTE: this holds for Linux's local file systems and NFS; a file
     * system that returns short reads before the end would cut files.
     */
    cap = max_bytes < 4096 ? max_bytes + 1 : 4096;
    data = xmalloc(cap + 1);
    for (;;) {
        ssize_t n = read(fd, data + used, cap - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* EAGAIN comes from a FIFO with a writer: not a regular file. */
            if (errno == EAGAIN)
                check_regular(fd);
            goto fail;
        }
        used += (size_t)n;
        if (used < cap)
            break;
        if (used > max_bytes) {
            errno = EFBIG;
            goto fail;
        }
        cap = cap > max_bytes / 2 ? max_bytes + 1 : cap * 2;
        data = xrealloc(data, cap + 1);
    }
    /* Nothing read: an empty file, or a FIFO or device in its place. */
    if (used == 0 && !mtime && check_regular(fd) != 0)
        goto fail;
    close(fd);
    data[used] = '\0';
    *buf = data;
    *len = used;
    return 0;

fail:
    saved = errno;
    close(fd);
    free(data);
    errno = saved;
    return -1;
}

/*
 * Test hook: with REGPRUNE_CRASH_AFTER=N in the environment, the process
 * ends at once, as kill -9 would end it, before its (N+1)th removal (an
 * unlink, or a move into the trash). The crash-safety tests use it to stop
 * a run at every step in turn.
 */
static atomic_long crash_after;
static pthread_once_t crash_once = PTHREAD_ONCE_INIT;

static void crash_init(void)
{
    const char *env = getenv("REGPRUNE_CRASH_AFTER");

    atomic_store(&crash_after, env ? strtol(env, NULL, 10) : -1);
}

void path_crash_point(void)
{
    pthread_once(&crash_once, crash_init);
    if (atomic_load(&crash_after) >= 0 &&
        atomic_fetch_sub(&crash_after, 1) == 0)
        _exit(137);
}

static int checked_unlinkat(int fd, const char *name, int flags)
{
    path_crash_point();
    return unlinkat(fd, name, flags);
}

int path_unlink(int dirfd, const char *relpath, int flags)
{
    const char *slash = strrchr(relpath, '/');
    char *parent;
    int fd, rc, saved;

    if (!slash)
        return checked_unlinkat(dirfd, relpath, flags);
    parent = xstrndup(relpath, (size_t)(slash - relpath));
    fd = path_open_dir(dirfd, parent);
    free(parent);
    if (fd < 0)
        return -1;
    rc = checked_unlinkat(fd, slash + 1, flags);
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* The header of each entry getdents64(2) returns. */
struct linux_dirent64 {
    uint64_t d_ino; /* cppcheck-suppress unusedStructMember */
    int64_t d_off;  /* cppcheck-suppress unusedStructMember */
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

void path_dir_init(struct path_dir *d, int fd)
{
    d->fd = fd;
    d->pos = d->end = 0;
}

const char *path_dir_next(struct path_dir *d, unsigned char *type)
{
    for (;;) {
        struct linux_dirent64 *ent;
        struct stat st;

        if (d->pos >= d->end) {
            long n = syscall(SYS_getdents64, d->fd, d->buf, sizeof(d->buf));
            if (n <= 0) {
                if (n == 0)
                    errno = 0;
                return NULL;
            }
            d->pos = 0;
            d->end = n;
        }
        ent = (struct linux_dirent64 *)(void *)(d->buf + d->pos);
        d->pos += ent->d_reclen;
        if (ent->d_name[0] == '.' &&
            (ent->d_name[1] == '\0' ||
             (ent->d_name[1] == '.' && ent->d_name[2] == '\0')))
            continue;
        *type = ent->d_type;
        if (*type == DT_UNKNOWN)
            *type = fstatat(d->fd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW)
                        ? DT_UNKNOWN
                        : IFTODT(st.st_mode);
        return ent->d_name;
    }
}

/*
 * The depth below a removed directory at which removal stops. It lies past
 * the deepest tree regprune removes, a trash run holding a repository name
 * of 128 components, and within the descriptors each level keeps open.
 */
#define REMOVE_MAX_DEPTH 256

static int remove_dir_of(int dirfd, const char *relpath, const char *only,
                         int depth);

/*
 * Remove each entry of directory fd, and close fd. A subdirectory goes as
 * path_remove_dir_of(entry, only) removes it; with only, so does every
 * other entry. Return 0, or -1 with errno set by the first failure.
 */
static int remove_entries(int fd, const char *only, int depth)
{
    struct path_dir *dir;
    const char *name;
    unsigned char type;
    int rc = 0, saved = 0;

    if (depth > REMOVE_MAX_DEPTH) {
        close(fd);
        errno = ENAMETOOLONG;
        return -1;
    }
    /* On the heap: this function recurses once per level. */
    dir = xmalloc(sizeof(*dir));
    path_dir_init(dir, fd);
    while ((name = path_dir_next(dir, &type)) != NULL) {
        int failed = only || type == DT_DIR
                         ? remove_dir_of(fd, name, only, depth + 1)
                         : checked_unlinkat(fd, name, 0);
        /* An entry gone meanwhile counts as removed. */
        if (failed && errno != ENOENT && !rc) {
            saved = errno;
            rc = -1;
        }
    }
    if (errno && !rc) {
        saved = errno;
        rc = -1;
    }
    free(dir);
    close(fd);
    errno = saved;
    return rc;
}

int path_remove_tree(int dirfd, const char *relpath)
{
    return remove_dir_of(dirfd, relpath, NULL, 0);
}

int path_remove_dir_of(int dirfd, const char *relpath, const char *only)
{
    return remove_dir_of(dirfd, relpath, only, 0);
}

static int remove_dir_of(int dirfd, const char *relpath, const char *only,
                         int depth)
{
    int fd = path_open(dirfd, relpath, O_RDONLY | O_DIRECTORY);

    if (fd >= 0 && only) {
        /* Most directories hold just the one file: remove it and the
         * directory without listing, and list only when rmdir finds
         * something else left. */
        if (checked_unlinkat(fd, only, 0) == 0 || errno == ENOENT) {
            if (path_unlink(dirfd, relpath, AT_REMOVEDIR) == 0 ||
                errno == ENOENT) {
                close(fd);
                return 0;
            }
        }
        if (errno != ENOTEMPTY && errno != EEXIST && errno != EISDIR &&
            errno != EPERM) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
    }
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno != ENOTDIR)
            return -1;
        /* A file, or a symbolic link that unlinkat removes itself. */
        if (path_unlink(dirfd, relpath, 0) != 0 && errno != ENOENT)
            return -1;
        return 0;
    }
    if (remove_entries(fd, NULL, depth) != 0)
        return -1;
    if (path_unlink(dirfd, relpath, AT_REMOVEDIR) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

int path_remove_dirs_of(int dirfd, const char *relpath, const char *only)
{
    int fd = path_open(dirfd, relpath, O_RDONLY | O_DIRECTORY);

    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    if (remove_entries(fd, only, 0) != 0)
        return -1;
    if (path_unlink(dirfd, relpath, AT_REMOVEDIR) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

void path_prune_empty_dirs(int dirfd, const char *relpath, int stop_depth)
{
    char *copy = xstrdup(relpath);
    int depth = 1;

    for (const char *p = copy; *p; p++)
        depth += *p == '/';
    while (depth > stop_depth) {
        char *slash;

        if (path_unlink(dirfd, copy, AT_REMOVEDIR) != 0)
            break;
        slash = strrchr(copy, '/');
        if (!slash)
            break;
        *slash = '\0';
        depth--;
    }
    free(copy);
}
