/*
 * Helpers shared by the unit tests: scratch directories under mkdtemp,
 * small files, and registry trees built by the mkregistry fixture
 * generator. Every helper is static inline, so that a test binary that
 * uses only some of them compiles without unused-function warnings.
 */
#ifndef REGPRUNE_TEST_FIXTURE_H
#define REGPRUNE_TEST_FIXTURE_H

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Format a path into buf[size] like snprintf. A path that does not fit
 * aborts the test binary, since a cut path would name another file.
 */
static inline void fixture_path(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void fixture_path(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "test path too long: %s...\n", buf);
        abort();
    }
}

/* Path of build/mkregistry, found next to the running test binary. */
static char fixture_mkregistry[PATH_MAX];

/*
 * Remember where mkregistry is: $MKREGISTRY when set, else the directory
 * of argv0, since the Makefile builds both into the same build folder.
 */
static inline void fixture_init(const char *argv0)
{
    const char *env = getenv("MKREGISTRY");
    const char *slash = strrchr(argv0, '/');

    if (env && *env)
        fixture_path(fixture_mkregistry, sizeof(fixture_mkregistry), "%s",
                     env);
    else if (slash)
        fixture_path(fixture_mkregistry, sizeof(fixture_mkregistry),
                     "%.*s/mkregistry", (int)(slash - argv0), argv0);
    else
        fixture_path(fixture_mkregistry, sizeof(fixture_mkregistry),
                     "./mkregistry");
}

/* Create a scratch directory and write its path into dir[size]. Return 0,
 * or -1 when it cannot be created or its path does not fit. */
static inline int fixture_mkdtemp(char *dir, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(dir, size, "%s/regprune-test.XXXXXX",
                     tmp && *tmp ? tmp : "/tmp");

    if (n < 0 || (size_t)n >= size)
        return -1;
    return mkdtemp(dir) ? 0 : -1;
}

static inline int fixture_remove_entry(const char *path,
                                       const struct stat *st, int type,
                                       struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DP)
        return rmdir(path);
    return unlink(path);
}

/* Remove dir and everything below it, without following links. */
static inline int fixture_remove_tree(const char *dir)
{
    if (!dir || !*dir)
        return 0;
    return nftw(dir, fixture_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write len bytes of data to path, replacing the file. Return 0 or -1. */
static inline int fixture_write(const char *path, const void *data,
                                size_t len)
{
    FILE *f = fopen(path, "wb");
    int rc = 0;

    if (!f)
        return -1;
    if (fwrite(data, 1, len, f) != len)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* Write a NUL-terminated string to dir/name and its path to out. */
static inline int fixture_write_text(const char *dir, const char *name,
                                     const char *text, char *out)
{
    char path[PATH_MAX];

    fixture_path(path, sizeof(path), "%s/%s", dir, name);
    if (out)
        fixture_path(out, PATH_MAX, "%s", path);
    return fixture_write(path, text, strlen(text));
}

/*
 * Build the tree that spec describes under dir/root with mkregistry. now
 * is the --now value in Unix seconds, or 0 for the real clock. Return
 * mkregistry's exit status, or -1 when it could not run.
 */
static inline int fixture_build(const char *dir, const char *spec,
                                long long now)
{
    char spec_path[PATH_MAX], root[PATH_MAX], now_text[32];
    pid_t pid;
    int status;

    if (fixture_write_text(dir, "spec", spec, spec_path) != 0)
        return -1;
    fixture_path(root, sizeof(root), "%s/root", dir);
    snprintf(now_text, sizeof(now_text), "%lld", now);
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (now)
            execl(fixture_mkregistry, "mkregistry", "-q", "--now", now_text,
                  "--spec", spec_path, root, (char *)NULL);
        else
            execl(fixture_mkregistry, "mkregistry", "-q", "--spec",
                  spec_path, root, (char *)NULL);
        fprintf(stderr, "cannot run %s: %s (build it with make all)\n",
                fixture_mkregistry, strerror(errno));
        _exit(127);
    }
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* 1 when dir/relpath exists (without following a final link), else 0. */
static inline int fixture_exists(const char *dir, const char *relpath)
{
    char path[PATH_MAX];
    struct stat st;

    fixture_path(path, sizeof(path), "%s/%s", dir, relpath);
    return lstat(path, &st) == 0;
}

/* Size of dir/relpath in bytes, or -1 when it cannot be examined. */
static inline long long fixture_file_size(const char *dir,
                                          const char *relpath)
{
    char path[PATH_MAX];
    struct stat st;

    fixture_path(path, sizeof(path), "%s/%s", dir, relpath);
    if (lstat(path, &st) != 0)
        return -1;
    return (long long)st.st_size;
}

#endif
