/*
 * File access relative to directory descriptors that never follows a
 * symbolic link and never leaves the directory it starts from.
 */
#ifndef REGPRUNE_PATH_H
#define REGPRUNE_PATH_H

#include <stddef.h>
#include <sys/types.h>

/* Maximum repository name length; the distribution registry allows 255. */
#define PATH_REPO_NAME_MAX 255

/*
 * Format a path into buf like snprintf. The caller guarantees that it fits
 * (names are length-checked when scanned); a path that would be cut short
 * aborts the process rather than name another file.
 */
void pathf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Write dir "/" name into buf[size], or abort like pathf. Hot paths use
 * it because formatting costs more there than the system call. */
void path_join(char *buf, size_t size, const char *dir, const char *name);

/*
 * Open relpath beneath dirfd like openat(2) with O_CLOEXEC, refusing any
 * symbolic link on the way ("..", absolute paths and links fail with
 * ELOOP or EXDEV). Return the descriptor, or -1 with errno set.
 */
int path_open(int dirfd, const char *relpath, int flags);

/* Open a directory beneath dirfd (O_DIRECTORY | O_RDONLY). */
int path_open_dir(int dirfd, const char *relpath);

/*
 * Read a whole regular file beneath dirfd into a new NUL-terminated buffer
 * of at most max_bytes. Return 0 and set *buf, *len and *mtime (may be
 * NULL); -1 with errno set (EFBIG when larger than max_bytes, EISDIR
 * when not a regular file).
 */
int path_read_file(int dirfd, const char *relpath, size_t max_bytes,
                   char **buf, size_t *len, long long *mtime);

/* Test hook before each removal; see REGPRUNE_CRASH_AFTER in path.c. */
void path_crash_point(void);

/*
 * A directory listed with getdents64(2) directly, which needs neither the
 * descriptor checks of fdopendir(3) nor a DIR of its own. The caller owns
 * fd and closes it.
 */
struct path_dir {
    int fd;
    long pos, end;
    _Alignas(8) char buf[8192];
};

void path_dir_init(struct path_dir *d, int fd);
/*
 * The next entry's name, "." and ".." left out, and its type (DT_DIR,
 * DT_REG, ...; a file system that does not tell gets an fstatat, and
 * DT_UNKNOWN when that fails too). NULL at the end, with errno 0, or
 * after a failed read, with errno set.
 */
const char *path_dir_next(struct path_dir *d, unsigned char *type);

/*
 * unlinkat(2) relpath beneath dirfd with flags, resolving its parent
 * without following symbolic links. Return 0, or -1 with errno set.
 */
int path_unlink(int dirfd, const char *relpath, int flags);

/*
 * Remove relpath beneath dirfd and everything below it, without following
 * links. A missing path counts as removed. Return 0, or -1 with errno set
 * by the first failure.
 */
int path_remove_tree(int dirfd, const char *relpath);
/*
 * The same, for a directory expected to hold only the file named only:
 * that file and the directory are removed without listing it, and the
 * directory is listed only when something else is left in it.
 */
int path_remove_dir_of(int dirfd, const char *relpath, const char *only);

/*
 * Remove directory relpath beneath dirfd, each of whose entries is removed
 * as path_remove_dir_of(entry, only) removes it. A missing relpath is not
 * an error. Return 0, or -1 with errno set.
 */
int path_remove_dirs_of(int dirfd, const char *relpath, const char *only);

/*
 * Remove the directory relpath beneath dirfd and then each parent up to
 * (not including) the first stop_depth components, while they are empty.
 */
void path_prune_empty_dirs(int dirfd, const char *relpath, int stop_depth);

#endif
