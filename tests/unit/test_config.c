/* Unit tests for config.c: the registry's config.yml and its environment
 * overrides. */
#define _GNU_SOURCE /* nftw in fixture.h */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "fixture.h"
#include "xalloc.h"

static char scratch[PATH_MAX];
static char config_path[PATH_MAX];
static char err[1024];

/* Debian 12's /etc/docker/registry/config.yml (docker-registry 2.8.2). */
static const char debian_config[] =
    "version: 0.1\n"
    "log:\n"
    "  fields:\n"
    "    service: registry\n"
    "storage:\n"
    "  cache:\n"
    "    blobdescriptor: inmemory\n"
    "  filesystem:\n"
    "    rootdirectory: /var/lib/docker-registry\n"
    "  delete:\n"
    "    enabled: true\n"
    "http:\n"
    "  addr: :5000\n"
    "  headers:\n"
    "    X-Content-Type-Options: [nosniff]\n"
    "auth:\n"
    "  htpasswd:\n"
    "    realm: basic-realm\n"
    "    path: /etc/docker/registry\n"
    "health:\n"
    "  storagedriver:\n"
    "    enabled: true\n"
    "    interval: 10s\n"
    "    threshold: 3\n";

static int setup_group(void **state)
{
    (void)state;
    if (fixture_mkdtemp(scratch, sizeof(scratch)) != 0)
        return -1;
    fixture_path(config_path, sizeof(config_path), "%s/config.yml", scratch);
    return 0;
}

static int teardown_group(void **state)
{
    (void)state;
    return fixture_remove_tree(scratch);
}

static void write_config(const char *text, size_t len)
{
    if (fixture_write(config_path, text, len) != 0)
        fail_msg("cannot write %s", config_path);
}

static void assert_contains(const char *text, const char *part)
{
    if (!strstr(text, part))
        fail_msg("expected \"%s\" in \"%s\"", part, text);
}

/* "<config_path>:<suffix>", for comparing sources and error prefixes. */
static const char *at(const char *suffix)
{
    static char buf[PATH_MAX + 64];

    fixture_path(buf, sizeof(buf), "%s:%s", config_path, suffix);
    return buf;
}

static void load_ok_env(const char *text, char *const *envp,
                        struct registry_config *c)
{
    write_config(text, strlen(text));
    if (config_load(config_path, envp, c, err, sizeof(err)) != 0)
        fail_msg("configuration rejected: %s", err);
}

static void load_ok(const char *text, struct registry_config *c)
{
    load_ok_env(text, NULL, c);
}

/* Expect text (with envp) to be rejected, and out to be left empty. */
static void load_fails_env(const char *text, char *const *envp)
{
    struct registry_config c;

    memset(&c, 0xff, sizeof(c));
    write_config(text, strlen(text));
    err[0] = '\0';
    if (config_load(config_path, envp, &c, err, sizeof(err)) == 0)
        fail_msg("configuration accepted, root %s", c.root_directory);
    assert_null(c.path);
    assert_null(c.root_directory);
    config_free(&c);
}

static void load_fails(const char *text) { load_fails_env(text, NULL); }

/*** the file ***/

static void test_config_debian_default(void **state)
{
    struct registry_config c;

    (void)state;
    load_ok(debian_config, &c);
    assert_string_equal(c.path, config_path);
    assert_string_equal(c.driver, "filesystem");
    assert_string_equal(c.root_directory, "/var/lib/docker-registry");
    assert_string_equal(c.root_source, at("9:20"));
    assert_int_equal(c.readonly, 0);
    assert_null(c.readonly_source);
    assert_int_equal(c.delete_enabled, 1);
    config_free(&c);
    assert_null(c.root_directory);
}

static void test_config_readonly_on(void **state)
{
    struct registry_config c;

    (void)state;
    load_ok("version: 0.1\n"
            "storage:\n"
            "  filesystem:\n"
            "    rootdirectory: /srv/registry\n"
            "  maintenance:\n"
            "    uploadpurging:\n"
            "      enabled: false\n"
            "    readonly:\n"
            "      enabled: true\n",
            &c);
    assert_int_equal(c.readonly, 1);
    assert_string_equal(c.readonly_source, at("9:16"));
    assert_int_equal(c.delete_enabled, 0);
    config_free(&c);
}

static void test_config_readonly_off(void **state)
{
    struct registry_config c;

    (void)state;
    load_ok("storage:\n"
            "  filesystem: {rootdirectory: /srv/registry}\n"
            "  maintenance: {readonly: {enabled: false}}\n",
            &c);
    assert_int_equal(c.readonly, 0);
    assert_non_null(c.readonly_source);
    config_free(&c);
}

static void test_config_readonly_without_enabled(void **state)
{
    struct registry_config c;

    (void)state;
    load_ok("storage:\n"
            "  filesystem:\n"
            "  maintenance:\n"
            "    readonly: {}\n",
            &c);
    assert_int_equal(c.readonly, 0);
    assert_string_equal(c.readonly_source, at("4:15"));
    config_free(&c);
}

/* go-yaml v2 reads the YAML 1.1 words; the registry takes all of them. */
static void test_config_readonly_yaml11_booleans(void **state)
{
    static const struct {
        const char *word;
        int value;
    } cases[] = {{"yes", 1}, {"on", 1},  {"True", 1},  {"Y", 1},
                 {"no", 0},  {"off", 0}, {"FALSE", 0}, {"!!bool true", 1}};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct registry_config c;
        char *text = xasprintf("storage:\n"
                               "  filesystem:\n"
                               "  maintenance:\n"
                               "    readonly:\n"
                               "      enabled: %s\n",
                               cases[i].word);

        load_ok(text, &c);
        if (c.readonly != cases[i].value)
            fail_msg("enabled: %s read as %d", cases[i].word, c.readonly);
        config_free(&c);
        free(text);
    }
}

static void test_config_readonly_quoted_rejected(void **state)
{
    (void)state;
    load_fails("storage:\n"
               "  filesystem:\n"
               "  maintenance:\n"
               "    readonly:\n"
               "      enabled: \"true\"\n");
    assert_contains(err, at("5:16: storage.maintenance.readonly.enabled: "));
    assert_contains(err, "remove the quotes");
}

static void test_config_readonly_not_boolean(void **state)
{
    (void)state;
    load_fails("storage:\n"
               "  filesystem:\n"
               "  maintenance:\n"
               "    readonly:\n"
               "      enabled: maybe\n");
    assert_contains(err, at("5:16: storage.maintenance.readonly.enabled: "
                            "expected true or false, got 'maybe'"));
}

/* The registry does not start with "readonly: true"; it needs a mapping. */
static void test_config_readonly_scalar_rejected(void **state)
{
    (void)state;
    load_fails("storage:\n"
               "  filesystem:\n"
               "  maintenance:\n"
               "    readonly: true\n");
    assert_contains(err, at("4:15: storage.maintenance.readonly: expected a "
                            "mapping such as {enabled: true}, got 'true'"));

    load_fails("storage:\n"
               "  filesystem:\n"
               "  maintenance:\n"
               "    readonly:\n");
    assert_contains(err, "storage.maintenance.readonly: expected a mapping");
}

static void test_config_delete_on_off(void **state)
{
    struct registry_config c;

    (void)state;
    load_ok("storage:\n"
            "  filesystem:\n"
            "  delete:\n"
            "    enabled: true\n",
            &c);
    assert_int_equal(c.delete_enabled, 1);
    config_free(&c);

    load_ok("storage:\n"
            "  filesystem:\n"
            "  delete:\n"
            "    enabled: false\n",
            &c);
    assert_int_equal(c.delete_enabled, 0);
    config_free(&c);

    load_ok("storage:\n"
            "  filesystem:\n"
            "  delete:\n",
            &c);
    assert_int_equal(c.delete_enabled, 0);
    config_free(&c);
}

static void test_config_delete_not_boolean(void **state)
{
    (void)state;
    load_fails("storage:\n"
               "  filesystem:\n"
               "  delete:\n"
               "    enabled: [true]\n");
    assert_contains(err, at("4:14: storage.delete.enabled: expected true or "
                            "false, got a list"));
}

static void test_config_missing_rootdirectory(void **state)
{
    static const char *const texts[] = {
        "storage:\n  filesystem:\n    maxthreads: 100\n",
        "storage:\n  filesystem:\n",
        "storage:\n  filesystem: {}\n",
        "storage: filesystem\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct registry_config c;

        load_ok(texts[i], &c);
        assert_string_equal(c.root_directory, CONFIG_DEFAULT_ROOT);
        assert_string_equal(c.root_directory, "/var/lib/registry");
        assert_string_equal(c.root_source, "default");
        config_free(&c);
    }
}

static void test_config_rootdirectory_invalid(void **state)
{
    (void)state;
    load_fails("storage:\n"
               "  filesystem:\n"
               "    rootdirectory: data/registry\n");
    assert_contains(err, at("3:20: storage.filesystem.rootdirectory: "
                            "'data/registry' is not an absolute path"));

    load_fails("storage:\n"
               "  filesystem:\n"
               "    rootdirectory:\n");
    assert_contains(err, "storage.filesystem.rootdirectory: expected an "
                         "absolute path, got an empty value");

    load_fails("storage:\n"
               "  filesystem:\n"
               "    rootdirectory: {path: /srv}\n");
    assert_contains(err, "got a mapping");

    load_fails("storage:\n"
               "  filesystem: /srv/registry\n");
    assert_contains(err, at("2:15: storage.filesystem: expected a mapping"));
}

static void test_config_s3_rejected(void **state)
{
    (void)state;
    load_fails("version: 0.1\n"
               "storage:\n"
               "  s3:\n"
               "    region: us-east-1\n"
               "    bucket: images\n"
               "  delete:\n"
               "    enabled: true\n");
    assert_contains(err, at("3:3: storage driver 's3' is not supported: "
                            "regprune reads the tree of the filesystem "
                            "driver"));

    load_fails("storage: inmemory\n");
    assert_contains(err, at("1:10: storage driver 'inmemory' is not "
                            "supported"));
}

static void test_config_two_drivers_rejected(void **state)
{
    (void)state;
    load_fails("storage:\n"
               "  filesystem:\n"
               "    rootdirectory: /srv/registry\n"
               "  azure:\n"
               "    accountname: a\n");
    assert_contains(err, "more than one storage driver");
    assert_contains(err, "'filesystem' at ");
    assert_contains(err, "'azure' at ");
}

static void test_config_no_driver_rejected(void **state)
{
    (void)state;
    load_fails("storage:\n"
               "  delete:\n"
               "    enabled: true\n"
               "  cache:\n"
               "    blobdescriptor: inmemory\n");
    assert_contains(err, "no storage driver is configured");

    load_fails("version: 0.1\nhttp:\n  addr: :5000\n");
    assert_contains(err, "no storage driver is configured");

    load_fails("storage:\n");
    assert_contains(err, "no storage driver is configured");
}

static void test_config_invalid_yaml_line(void **state)
{
    (void)state;
    load_fails("version: 0.1\n"
               "storage:\n"
               "  filesystem:\n"
               "    rootdirectory: /srv/registry\n"
               "   delete:\n"
               "    enabled: true\n");
    assert_contains(err, at("5:"));
    assert_contains(err, "invalid YAML: ");

    load_fails("storage: {filesystem: {rootdirectory: /srv}\n");
    assert_contains(err, "invalid YAML: ");
    assert_contains(err, config_path);

    load_fails("storage:\n"
               "  filesystem: *missing\n");
    assert_contains(err, at("2:15: invalid YAML: found undefined alias"));
}

static void test_config_non_mapping_storage(void **state)
{
    (void)state;
    load_fails("storage:\n"
               "  - filesystem\n");
    assert_contains(err, at("2:3: storage: expected a mapping with a driver "
                            "key such as filesystem, got a list"));

    load_fails("storage:\n"
               "  filesystem:\n"
               "  maintenance: on\n");
    assert_contains(err, at("3:16: storage.maintenance: expected a mapping"));

    load_fails("storage:\n"
               "  filesystem:\n"
               "  delete: true\n");
    assert_contains(err, at("3:11: storage.delete: expected a mapping"));
}

static void test_config_top_level_not_mapping(void **state)
{
    (void)state;
    load_fails("- storage\n- filesystem\n");
    assert_contains(err, at("1:1: expected a mapping of settings"));

    load_fails("");
    assert_contains(err, "the file is empty");

    load_fails("# only a comment\n");
    assert_contains(err, "the file is empty");
}

static void test_config_unknown_keys_ignored(void **state)
{
    struct registry_config c;

    (void)state;
    load_ok("version: 0.1\n"
            "loglevel: debug\n"
            "future:\n"
            "  setting: [1, 2, {three: 3}]\n"
            "notifications:\n"
            "  endpoints:\n"
            "    - name: hook\n"
            "      url: http://127.0.0.1:1/\n"
            "storage:\n"
            "  filesystem:\n"
            "    rootdirectory: /srv/registry\n"
            "    maxthreads: 100\n"
            "    unknown: value\n"
            "  cache:\n"
            "    blobdescriptor: redis\n"
            "  redirect:\n"
            "    disable: true\n"
            "  tag:\n"
            "    concurrencylimit: 8\n"
            "  maintenance:\n"
            "    uploadpurging: {enabled: true, age: 168h}\n"
            "    readonly:\n"
            "      enabled: true\n"
            "      reason: pruning\n"
            "  delete:\n"
            "    enabled: true\n"
            "    also: ignored\n"
            "---\n"
            "second: document, not read\n",
            &c);
    assert_string_equal(c.root_directory, "/srv/registry");
    assert_int_equal(c.readonly, 1);
    assert_int_equal(c.delete_enabled, 1);
    config_free(&c);
}

static void test_config_duplicate_key_rejected(void **state)
{
    (void)state;
    load_fails("storage:\n"
               "  filesystem:\n"
               "    rootdirectory: /srv/a\n"
               "  filesystem:\n"
               "    rootdirectory: /srv/b\n");
    assert_contains(err, at("4:3: storage: duplicate key 'filesystem', "
                            "first given at line 2"));

    load_fails("storage:\n"
               "  filesystem:\n"
               "    rootdirectory: /srv/a\n"
               "    rootdirectory: /srv/b\n");
    assert_contains(err, "storage.filesystem: duplicate key 'rootdirectory'");
}

/*** anchors, aliases and merge keys ***/

static void test_config_aliases_resolved(void **state)
{
    struct registry_config c;

    (void)state;
    load_ok("x-root: &root /srv/registry\n"
            "x-on: &on {enabled: true}\n"
            "storage:\n"
            "  filesystem:\n"
            "    rootdirectory: *root\n"
            "  maintenance:\n"
            "    readonly: *on\n"
            "  delete: *on\n",
            &c);
    assert_string_equal(c.root_directory, "/srv/registry");
    assert_string_equal(c.root_source, at("1:9"));
    assert_int_equal(c.readonly, 1);
    assert_int_equal(c.delete_enabled, 1);
    config_free(&c);
}

/*
 * The registry (go-yaml v2) applies a merge key at its place in the
 * mapping: keys after it override the merged ones, keys before it are
 * overwritten, and in a list of mappings the first wins. docker-registry
 * 2.8.2 serves from /srv/merged in the second case.
 */
static void test_config_merge_keys(void **state)
{
    struct registry_config c;

    (void)state;
    load_ok("common: &common\n"
            "  filesystem:\n"
            "    rootdirectory: /srv/common\n"
            "  delete:\n"
            "    enabled: true\n"
            "ro: &ro\n"
            "  readonly: {enabled: true}\n"
            "storage:\n"
            "  <<: *common\n"
            "  delete:\n"
            "    enabled: false\n"
            "  maintenance:\n"
            "    <<: [*ro, {readonly: {enabled: false}}]\n",
            &c);
    assert_string_equal(c.root_directory, "/srv/common");
    assert_string_equal(c.root_source, at("3:20"));
    assert_int_equal(c.delete_enabled, 0);
    assert_int_equal(c.readonly, 1);
    config_free(&c);

    load_ok("merged: &merged\n"
            "  filesystem:\n"
            "    rootdirectory: /srv/merged\n"
            "storage:\n"
            "  filesystem:\n"
            "    rootdirectory: /srv/explicit\n"
            "  <<: *merged\n",
            &c);
    assert_string_equal(c.root_directory, "/srv/merged");
    config_free(&c);

    load_ok("x: &x {rootdirectory: /srv/x}\n"
            "y: &y {rootdirectory: /srv/y}\n"
            "storage:\n"
            "  filesystem:\n"
            "    <<: [*x, *y]\n",
            &c);
    assert_string_equal(c.root_directory, "/srv/x");
    config_free(&c);

    load_fails("storage:\n"
               "  <<: /srv\n"
               "  filesystem:\n");
    assert_contains(err, at("2:7: <<: a merge key takes a mapping"));
}

/* go-yaml v2 lets a later anchor of the same name win, but libyaml 0.2.5
 * rejects the file. */
static void test_config_anchor_redefined_rejected(void **state)
{
    (void)state;
    load_fails("a: &root /srv/a\n"
               "b: &root /srv/b\n"
               "storage:\n"
               "  filesystem:\n"
               "    rootdirectory: *root\n");
    assert_contains(err, at("2:4: invalid YAML: "));
    assert_contains(err, "duplicate anchor");
}

static void test_config_merge_cycle_rejected(void **state)
{
    (void)state;
    load_fails("storage: &s\n"
               "  filesystem:\n"
               "  <<: *s\n");
    assert_contains(err, "merge keys nested deeper than");
}

/* Nine levels of nine aliases would be 9^9 mappings if expanded. */
static void test_config_alias_bomb(void **state)
{
    static const char bomb[] = "a: &a [x, x, x, x, x, x, x, x, x]\n"
                               "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                               "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                               "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                               "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                               "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                               "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                               "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                               "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    static const char merge_bomb[] =
        "a: &a {}\n"
        "b: &b {<<: [*a, *a, *a, *a, *a, *a, *a, *a, *a]}\n"
        "c: &c {<<: [*b, *b, *b, *b, *b, *b, *b, *b, *b]}\n"
        "d: &d {<<: [*c, *c, *c, *c, *c, *c, *c, *c, *c]}\n"
        "e: &e {<<: [*d, *d, *d, *d, *d, *d, *d, *d, *d]}\n"
        "f: &f {<<: [*e, *e, *e, *e, *e, *e, *e, *e, *e]}\n"
        "g: &g {<<: [*f, *f, *f, *f, *f, *f, *f, *f, *f]}\n"
        "h: &h {<<: [*g, *g, *g, *g, *g, *g, *g, *g, *g]}\n"
        "storage:\n"
        "  <<: [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n"
        "  filesystem:\n";
    struct registry_config c;
    char *text = xasprintf("%sstorage:\n  filesystem:\n", bomb);
    clock_t start = clock();

    (void)state;
    load_ok(text, &c);
    assert_string_equal(c.root_directory, CONFIG_DEFAULT_ROOT);
    config_free(&c);
    free(text);

    load_fails(merge_bomb);
    assert_contains(err, "counting merged ones");
    assert_true(clock() - start < 5 * CLOCKS_PER_SEC);
}

/*** limits ***/

static void test_config_deep_nesting_rejected(void **state)
{
    size_t depth = 100000;
    char *text = xmalloc(depth * 2 + 32);
    size_t n = 0;

    (void)state;
    n += (size_t)sprintf(text, "storage: ");
    memset(text + n, '[', depth);
    n += depth;
    memset(text + n, ']', depth);
    n += depth;
    text[n++] = '\n';
    text[n] = '\0';
    load_fails(text);
    assert_contains(err, at("1:"));
    assert_contains(err, "nested deeper than 64 levels");

    /* 64 levels are fine as far as nesting goes. */
    n = (size_t)sprintf(text, "storage: ");
    memset(text + n, '[', 63);
    memset(text + n + 63, ']', 63);
    strcpy(text + n + 126, "\n");
    load_fails(text);
    assert_contains(err, "storage: expected a mapping");
    free(text);
}

static void test_config_huge_file_rejected(void **state)
{
    size_t len = CONFIG_FILE_MAX_BYTES + 100;
    char *text = xmalloc(len);
    struct registry_config c;

    (void)state;
    memset(text, '#', len);
    memcpy(text, "storage:\n  filesystem:\n", 23);
    write_config(text, len);
    free(text);
    assert_int_equal(config_load(config_path, NULL, &c, err, sizeof(err)), -1);
    assert_contains(err, "larger than 1024 KiB");
}

static void test_config_missing_file(void **state)
{
    struct registry_config c;
    char path[PATH_MAX];

    (void)state;
    fixture_path(path, sizeof(path), "%s/absent.yml", scratch);
    assert_int_equal(config_load(path, NULL, &c, err, sizeof(err)), -1);
    assert_contains(err, "cannot open registry configuration ");
    assert_contains(err, "absent.yml: No such file or directory");
    assert_null(c.root_directory);

    assert_int_equal(config_load(scratch, NULL, &c, err, sizeof(err)), -1);
    assert_contains(err, "cannot read registry configuration ");
}

static void test_config_binary_rejected(void **state)
{
    (void)state;
    load_fails("storage:\n  filesystem: \x01\n");
    assert_contains(err, "invalid YAML: control characters are not allowed");
}

/*** environment overrides ***/

static void test_config_env_rootdirectory(void **state)
{
    char *const env[] = {
        (char *)"PATH=/usr/bin",
        (char *)"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/srv/env", NULL};
    struct registry_config c;

    (void)state;
    load_ok_env(debian_config, env, &c);
    assert_string_equal(c.root_directory, "/srv/env");
    assert_string_equal(c.root_source,
                        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY");
    assert_int_equal(c.delete_enabled, 1);
    config_free(&c);

    /* It also adds the driver when the file names none. */
    load_ok_env("storage:\n  delete: {enabled: true}\n", env, &c);
    assert_string_equal(c.root_directory, "/srv/env");
    assert_int_equal(c.delete_enabled, 1);
    config_free(&c);
}

static void test_config_env_rootdirectory_invalid(void **state)
{
    char *const empty[] = {(char *)"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=",
                           NULL};
    char *const relative[] = {
        (char *)"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=data", NULL};

    (void)state;
    load_fails_env(debian_config, empty);
    assert_string_equal(err, "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: "
                             "storage.filesystem.rootdirectory: expected an "
                             "absolute path, got an empty value");
    load_fails_env(debian_config, relative);
    assert_contains(err, "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: "
                         "storage.filesystem.rootdirectory: 'data' is not "
                         "an absolute path");
}

static void test_config_env_readonly(void **state)
{
    char *const on[] = {
        (char *)"REGISTRY_STORAGE_MAINTENANCE_READONLY={enabled: true}", NULL};
    char *const off[] = {
        (char *)"REGISTRY_STORAGE_MAINTENANCE_READONLY=enabled: false", NULL};
    char *const bare[] = {(char *)"REGISTRY_STORAGE_MAINTENANCE_READONLY=true",
                          NULL};
    char *const broken[] = {
        (char *)"REGISTRY_STORAGE_MAINTENANCE_READONLY={enabled: true", NULL};
    struct registry_config c;

    (void)state;
    load_ok_env(debian_config, on, &c);
    assert_int_equal(c.readonly, 1);
    assert_string_equal(c.readonly_source,
                        "REGISTRY_STORAGE_MAINTENANCE_READONLY");
    config_free(&c);

    load_ok_env("storage:\n"
                "  filesystem:\n"
                "  maintenance: {readonly: {enabled: true}}\n",
                off, &c);
    assert_int_equal(c.readonly, 0);
    config_free(&c);

    load_fails_env(debian_config, bare);
    assert_string_equal(err, "REGISTRY_STORAGE_MAINTENANCE_READONLY: "
                             "storage.maintenance.readonly: expected a "
                             "mapping such as {enabled: true}, got 'true'");

    load_fails_env(debian_config, broken);
    assert_contains(err, "REGISTRY_STORAGE_MAINTENANCE_READONLY: invalid "
                         "YAML: ");
}

/* docker-registry 2.8.2 panics with "readonly config key must contain
 * additional keys" when this variable meets a file without readonly, and
 * ignores it when the file has a readonly mapping. */
static void test_config_env_readonly_enabled(void **state)
{
    char *const env[] = {
        (char *)"REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED=true", NULL};
    struct registry_config c;

    (void)state;
    load_fails_env(debian_config, env);
    assert_contains(err, "REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED: the "
                         "registry does not start with this variable unless "
                         "storage.maintenance.readonly is set");
    assert_contains(err, "REGISTRY_STORAGE_MAINTENANCE_READONLY='{enabled: "
                         "true}'");

    load_ok_env("storage:\n"
                "  filesystem:\n"
                "  maintenance: {readonly: {enabled: false}}\n",
                env, &c);
    assert_int_equal(c.readonly, 0);
    config_free(&c);
}

static void test_config_env_delete(void **state)
{
    char *const off[] = {(char *)"REGISTRY_STORAGE_DELETE_ENABLED=false", NULL};
    char *const on[] = {(char *)"REGISTRY_STORAGE_DELETE_ENABLED=true", NULL};
    char *const section[] = {(char *)"REGISTRY_STORAGE_DELETE={enabled: yes}",
                             NULL};
    char *const bad[] = {(char *)"REGISTRY_STORAGE_DELETE_ENABLED=sometimes",
                         NULL};
    struct registry_config c;

    (void)state;
    load_ok_env(debian_config, off, &c);
    assert_int_equal(c.delete_enabled, 0);
    config_free(&c);

    load_ok_env("storage:\n  filesystem:\n", on, &c);
    assert_int_equal(c.delete_enabled, 1);
    config_free(&c);

    load_ok_env("storage:\n  filesystem:\n", section, &c);
    assert_int_equal(c.delete_enabled, 1);
    config_free(&c);

    load_fails_env(debian_config, bad);
    assert_string_equal(err, "REGISTRY_STORAGE_DELETE_ENABLED: "
                             "storage.delete.enabled: expected true or "
                             "false, got 'sometimes'");
}

/* REGISTRY_STORAGE replaces the whole section, options included. */
static void test_config_env_storage_driver(void **state)
{
    char *const to_filesystem[] = {(char *)"REGISTRY_STORAGE=filesystem", NULL};
    char *const to_s3[] = {(char *)"REGISTRY_STORAGE=s3", NULL};
    char *const to_mapping[] = {
        (char *)"REGISTRY_STORAGE={filesystem: {rootdirectory: /srv/m}, "
                "maintenance: {readonly: {enabled: true}}}",
        NULL};
    struct registry_config c;

    (void)state;
    load_ok_env("storage:\n"
                "  s3:\n"
                "    bucket: images\n"
                "  delete:\n"
                "    enabled: true\n",
                to_filesystem, &c);
    assert_string_equal(c.root_directory, CONFIG_DEFAULT_ROOT);
    assert_string_equal(c.root_source, "default");
    assert_int_equal(c.delete_enabled, 0);
    config_free(&c);

    load_fails_env(debian_config, to_s3);
    assert_string_equal(err, "REGISTRY_STORAGE: storage driver 's3' is not "
                             "supported: regprune reads the tree of the "
                             "filesystem driver, so for other storage use "
                             "the registry's own garbage-collect");

    load_ok_env(debian_config, to_mapping, &c);
    assert_string_equal(c.root_directory, "/srv/m");
    assert_string_equal(c.root_source, "REGISTRY_STORAGE");
    assert_int_equal(c.readonly, 1);
    assert_int_equal(c.delete_enabled, 0);
    config_free(&c);
}

/* The registry applies its variables in the byte order of their names,
 * whatever their order in the environment. */
static void test_config_env_order(void **state)
{
    char *const env[] = {
        (char *)"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/srv/late",
        (char *)"REGISTRY_STORAGE_DELETE_ENABLED=true",
        (char *)"REGISTRY_STORAGE=filesystem",
        (char *)"REGISTRY_HTTP_ADDR=127.0.0.1:5000",
        (char *)"REGISTRY_STORAGEX=ignored",
        NULL};
    struct registry_config c;

    (void)state;
    load_ok_env(debian_config, env, &c);
    assert_string_equal(c.root_directory, "/srv/late");
    assert_int_equal(c.delete_enabled, 1);
    config_free(&c);
}

/* docker-registry 2.8.2 panics with "multiple storage drivers specified
 * in configuration or environment" here. */
static void test_config_env_second_driver(void **state)
{
    char *const env[] = {(char *)"REGISTRY_STORAGE_S3_BUCKET=images", NULL};
    char *const same[] = {(char *)"REGISTRY_STORAGE_FILESYSTEM_MAXTHREADS=50",
                          NULL};
    struct registry_config c;

    (void)state;
    load_fails_env(debian_config, env);
    assert_contains(err, "more than one storage driver ('filesystem' at ");
    assert_contains(err, "'s3' at REGISTRY_STORAGE_S3_BUCKET)");

    load_ok_env(debian_config, same, &c);
    assert_string_equal(c.root_directory, "/var/lib/docker-registry");
    config_free(&c);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_debian_default),
        cmocka_unit_test(test_config_readonly_on),
        cmocka_unit_test(test_config_readonly_off),
        cmocka_unit_test(test_config_readonly_without_enabled),
        cmocka_unit_test(test_config_readonly_yaml11_booleans),
        cmocka_unit_test(test_config_readonly_quoted_rejected),
        cmocka_unit_test(test_config_readonly_not_boolean),
        cmocka_unit_test(test_config_readonly_scalar_rejected),
        cmocka_unit_test(test_config_delete_on_off),
        cmocka_unit_test(test_config_delete_not_boolean),
        cmocka_unit_test(test_config_missing_rootdirectory),
        cmocka_unit_test(test_config_rootdirectory_invalid),
        cmocka_unit_test(test_config_s3_rejected),
        cmocka_unit_test(test_config_two_drivers_rejected),
        cmocka_unit_test(test_config_no_driver_rejected),
        cmocka_unit_test(test_config_invalid_yaml_line),
        cmocka_unit_test(test_config_non_mapping_storage),
        cmocka_unit_test(test_config_top_level_not_mapping),
        cmocka_unit_test(test_config_unknown_keys_ignored),
        cmocka_unit_test(test_config_duplicate_key_rejected),
        cmocka_unit_test(test_config_aliases_resolved),
        cmocka_unit_test(test_config_merge_keys),
        cmocka_unit_test(test_config_anchor_redefined_rejected),
        cmocka_unit_test(test_config_merge_cycle_rejected),
        cmocka_unit_test(test_config_alias_bomb),
        cmocka_unit_test(test_config_deep_nesting_rejected),
        cmocka_unit_test(test_config_huge_file_rejected),
        cmocka_unit_test(test_config_missing_file),
        cmocka_unit_test(test_config_binary_rejected),
        cmocka_unit_test(test_config_env_rootdirectory),
        cmocka_unit_test(test_config_env_rootdirectory_invalid),
        cmocka_unit_test(test_config_env_readonly),
        cmocka_unit_test(test_config_env_readonly_enabled),
        cmocka_unit_test(test_config_env_delete),
        cmocka_unit_test(test_config_env_storage_driver),
        cmocka_unit_test(test_config_env_order),
        cmocka_unit_test(test_config_env_second_driver),
    };

    (void)argc;
    (void)argv;
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
