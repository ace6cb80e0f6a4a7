/* Unit tests for path.c: reading, listing and removing beneath a
 * directory fd. */
#define _GNU_SOURCE /* nftw in fixture.h */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "path.h"

struct scratch {
    char dir[PATH_MAX];
    int fd;
};

static int setup(void **state)
{
    struct scratch *s = calloc(1, sizeof(*s));

    if (!s || fixture_mkdtemp(s->dir, sizeof(s->dir)) != 0) {
        free(s);
        return -1;
    }
    s->fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *state = s;
    return s->fd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    struct scratch *s = *state;

    close(s->fd);
    fixture_remove_tree(s->dir);
    free(s);
    return 0;
}

static void make_dir(const struct scratch *s, const char *rel)
{
    char path[PATH_MAX];

    fixture_path(path, sizeof(path), "%s/%s", s->dir, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

static void make_file(const struct scratch *s, const char *rel)
{
    assert_int_equal(fixture_write_text(s->dir, rel, "x", NULL), 0);
}

static void test_only_file_removed_with_dir(void **state)
{
    struct scratch *s = *state;

    make_dir(s, "ab");
    make_file(s, "ab/data");
    assert_int_equal(path_remove_dir_of(s->fd, "ab", "data"), 0);
    assert_false(fixture_exists(s->dir, "ab"));
}

static void test_other_entries_removed_too(void **state)
{
    struct scratch *s = *state;

    make_dir(s, "ab");
    make_file(s, "ab/data");
    make_file(s, "ab/data.partial");
    make_dir(s, "ab/sub");
    make_file(s, "ab/sub/file");
    assert_int_equal(path_remove_dir_of(s->fd, "ab", "data"), 0);
    assert_false(fixture_exists(s->dir, "ab"));
}

static void test_expected_file_absent(void **state)
{
    struct scratch *s = *state;

    make_dir(s, "ab");
    make_file(s, "ab/other");
    assert_int_equal(path_remove_dir_of(s->fd, "ab", "data"), 0);
    assert_false(fixture_exists(s->dir, "ab"));
}

static void test_expected_name_is_a_directory(void **state)
{
    struct scratch *s = *state;

    make_dir(s, "ab");
    make_dir(s, "ab/data");
    make_file(s, "ab/data/inner");
    assert_int_equal(path_remove_dir_of(s->fd, "ab", "data"), 0);
    assert_false(fixture_exists(s->dir, "ab"));
}

static void test_missing_dir_counts_as_removed(void **state)
{
    struct scratch *s = *state;

    assert_int_equal(path_remove_dir_of(s->fd, "nothing/here", "data"), 0);
    assert_int_equal(path_remove_tree(s->fd, "nothing"), 0);
}

static void test_nested_relative_path(void **state)
{
    struct scratch *s = *state;

    make_dir(s, "a");
    make_dir(s, "a/b");
    make_file(s, "a/b/link");
    assert_int_equal(path_remove_dir_of(s->fd, "a/b", "link"), 0);
    assert_false(fixture_exists(s->dir, "a/b"));
    assert_true(fixture_exists(s->dir, "a"));
}

/* A symbolic link in place of the directory is not followed: what it
 * points to stays whole. */
static void test_symlinked_dir_not_followed(void **state)
{
    struct scratch *s = *state;
    char target[PATH_MAX], link_path[PATH_MAX];

    make_dir(s, "outside");
    make_file(s, "outside/data");
    fixture_path(target, sizeof(target), "%s/outside", s->dir);
    fixture_path(link_path, sizeof(link_path), "%s/ab", s->dir);
    assert_int_equal(symlink(target, link_path), 0);
    path_remove_dir_of(s->fd, "ab", "data");
    path_remove_tree(s->fd, "ab");
    assert_true(fixture_exists(s->dir, "outside/data"));
}

static void test_plain_file_in_place_of_dir(void **state)
{
    struct scratch *s = *state;

    make_file(s, "ab");
    assert_int_equal(path_remove_dir_of(s->fd, "ab", "data"), 0);
    assert_false(fixture_exists(s->dir, "ab"));
}

static void test_dirs_of_removes_all(void **state)
{
    struct scratch *s = *state;

    make_dir(s, "index");
    make_dir(s, "index/sha256");
    make_dir(s, "index/sha256/aa");
    make_file(s, "index/sha256/aa/link");
    make_dir(s, "index/sha256/bb");
    make_file(s, "index/sha256/bb/link");
    make_file(s, "index/sha256/bb/stray");
    make_file(s, "index/sha256/loose");
    assert_int_equal(path_remove_dirs_of(s->fd, "index/sha256", "link"), 0);
    assert_false(fixture_exists(s->dir, "index/sha256"));
    assert_true(fixture_exists(s->dir, "index"));
    assert_int_equal(path_remove_dirs_of(s->fd, "index/sha256", "link"), 0);
}

/* More entries than one getdents64 buffer fits, each listed once. */
static void test_listing_spans_several_reads(void **state)
{
    struct scratch *s = *state;
    struct path_dir dir;
    const char *name;
    unsigned char type;
    char rel[96];
    int fd, files = 0, dirs = 0;

    make_dir(s, "many");
    for (int i = 0; i < 600; i++) {
        snprintf(rel, sizeof(rel), "many/%064d", i);
        if (i % 3 == 0)
            make_dir(s, rel);
        else
            make_file(s, rel);
    }
    fd = path_open_dir(s->fd, "many");
    assert_true(fd >= 0);
    path_dir_init(&dir, fd);
    while ((name = path_dir_next(&dir, &type)) != NULL) {
        assert_int_equal(strlen(name), 64);
        if (type == DT_DIR)
            dirs++;
        else if (type == DT_REG)
            files++;
    }
    assert_int_equal(errno, 0);
    close(fd);
    assert_int_equal(dirs, 200);
    assert_int_equal(files, 400);
    assert_int_equal(path_remove_tree(s->fd, "many"), 0);
    assert_false(fixture_exists(s->dir, "many"));
}

static void write_bytes(const struct scratch *s, const char *rel, size_t n)
{
    char path[PATH_MAX];
    FILE *f;

    fixture_path(path, sizeof(path), "%s/%s", s->dir, rel);
    f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fputc('a' + (int)(i % 26), f);
    assert_int_equal(fclose(f), 0);
}

/* Sizes around the first buffer and the limit read whole or fail EFBIG. */
static void test_read_file_sizes(void **state)
{
    struct scratch *s = *state;
    static const size_t sizes[] = {0, 1, 71, 256, 257, 4095, 4096, 4097,
                                   8192, 10000};
    char *buf;
    size_t len;

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        write_bytes(s, "f", sizes[i]);
        assert_int_equal(path_read_file(s->fd, "f", 10000, &buf, &len,
                                        NULL), 0);
        assert_int_equal(len, sizes[i]);
        assert_int_equal(buf[len], '\0');
        if (len > 0)
            assert_int_equal(buf[len - 1], 'a' + (int)((len - 1) % 26));
        free(buf);
        assert_int_equal(path_read_file(s->fd, "f", 256, &buf, &len, NULL),
                         sizes[i] > 256 ? -1 : 0);
        if (sizes[i] > 256)
            assert_int_equal(errno, EFBIG);
        else
            free(buf);
    }
}

static void test_read_file_not_regular(void **state)
{
    struct scratch *s = *state;
    char path[PATH_MAX];
    char *buf;
    size_t len;
    long long mtime;

    fixture_path(path, sizeof(path), "%s/fifo", s->dir);
    assert_int_equal(mkfifo(path, 0644), 0);
    assert_int_equal(path_read_file(s->fd, "fifo", 256, &buf, &len, NULL),
                     -1);
    assert_int_equal(errno, EISDIR);
    assert_int_equal(path_read_file(s->fd, "fifo", 256, &buf, &len, &mtime),
                     -1);
    assert_int_equal(errno, EISDIR);
    make_dir(s, "d");
    assert_int_equal(path_read_file(s->fd, "d", 256, &buf, &len, NULL), -1);
    assert_int_equal(errno, EISDIR);
    assert_int_equal(path_read_file(s->fd, "absent", 256, &buf, &len, NULL),
                     -1);
    assert_int_equal(errno, ENOENT);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_only_file_removed_with_dir,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_entries_removed_too,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_expected_file_absent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expected_name_is_a_directory,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_dir_counts_as_removed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_relative_path, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_symlinked_dir_not_followed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_file_in_place_of_dir,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_dirs_of_removes_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing_spans_several_reads,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_file_sizes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_read_file_not_regular, setup,
                                        teardown),
    };

    (void)argc;
    fixture_init(argv[0]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
