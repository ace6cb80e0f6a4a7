/* Unit tests for path.c: removing directories beneath a directory fd. */
#define _GNU_SOURCE /* nftw in fixture.h */
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
    };

    (void)argc;
    fixture_init(argv[0]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
