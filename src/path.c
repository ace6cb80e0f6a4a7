#define _GNU_SOURCE
#include "path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
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

int path_read_file(int dirfd, const char *relpath, size_t max_bytes,
                   char **buf, size_t *len, long long *mtime)
{
    struct stat st;
    char *data = NULL;
    size_t used = 0, cap;
    int fd, saved;

    /* O_NONBLOCK: opening a FIFO put in a file's place must not wait for
     * a writer; fstat then rejects it. */
    fd = path_open(dirfd, relpath, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0)
        goto fail;
    if (!S_ISREG(st.st_mode)) {
        errno = EISDIR;
        goto fail;
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        errno = EFBIG;
        goto fail;
    }
    /* Ask for one byte more than the size, to see a file that grew
     * meanwhile. A read that returns just the size has reached the end,
     * so no further read is needed to see EOF. */
    cap = (size_t)st.st_size + 1;
    data = xmalloc(cap + 1);
    for (;;) {
        ssize_t n = read(fd, data + used, cap - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used == (size_t)st.st_size && used > 0)
            break;
        if (used == cap) {
            if (cap > max_bytes) {
                errno = EFBIG;
                goto fail;
            }
            cap *= 2;
            data = xrealloc(data, cap + 1);
        }
    }
    close(fd);
    data[used] = '\0';
    *buf = data;
    *len = used;
    if (mtime)
        *mtime = (long long)st.st_mtim.tv_sec;
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

static int remove_dir_contents(int fd)
{
    DIR *dir = fdopendir(fd);
    struct dirent *ent;
    int rc = 0, saved = 0;

    if (!dir) {
        close(fd);
        return -1;
    }
    while ((ent = readdir(dir)) != NULL) {
        int is_dir;

        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        is_dir = ent->d_type == DT_DIR;
        if (ent->d_type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd(dir), ent->d_name, &st, AT_SYMLINK_NOFOLLOW))
                is_dir = 0;
            else
                is_dir = S_ISDIR(st.st_mode);
        }
        if (is_dir) {
            int sub = openat(dirfd(dir), ent->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0 || remove_dir_contents(sub) != 0 ||
                checked_unlinkat(dirfd(dir), ent->d_name, AT_REMOVEDIR) != 0) {
                if (!rc)
                    saved = errno;
                rc = -1;
            }
        } else if (checked_unlinkat(dirfd(dir), ent->d_name, 0) != 0) {
            if (!rc)
                saved = errno;
            rc = -1;
        }
    }
    closedir(dir);
    errno = saved;
    return rc;
}

int path_remove_tree(int dirfd, const char *relpath)
{
    return path_remove_dir_of(dirfd, relpath, NULL);
}

int path_remove_dir_of(int dirfd, const char *relpath, const char *only)
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
    if (remove_dir_contents(fd) != 0)
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
