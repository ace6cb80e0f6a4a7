/*
 * Unit tests for policy.c and the regprune.* library: verdicts, the
 * sandbox and its limits, errors with file and line, and the helpers.
 * Each test writes a small policy file and runs it against a registry
 * tree that mkregistry builds once for the whole group.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <signal.h>
#include <time.h>

#include "log.h"
#include "policy.h"
#include "registry.h"
#include "scan.h"

#define NOW INT64_C(1733000000)
#define DAY 86400

/* Six tags with distinct push and creation times, where latest has no
 * creation time. solo/app has a single tag. */
static const char world_spec[] =
    "image team/app:1.9.0 pushed=-5d created=-6d\n"
    "image team/app:1.10.0 pushed=-4d created=-5d\n"
    "image team/app:1.10.0-rc.1 pushed=-4d12h created=-7d\n"
    "image team/app:latest pushed=-1d created=none\n"
    "image team/app:build-9 pushed=-3d\n"
    "image team/app:build-10 pushed=-2d\n"
    "image solo/app:only pushed=-1d\n";

/* Scratch directory with the tree that every test of the group reads. */
static char world_dir[256];
static char world_root[320];

struct ptest {
    struct registry reg;
    int scanned;
    struct policy *policy;
    char *err;
    struct policy_options opt;
    const char *files[2];
    char paths[2][PATH_MAX];
    struct policy_param params[2];
};

static int group_setup(void **state)
{
    (void)state;
    if (fixture_mkdtemp(world_dir, sizeof(world_dir)) != 0)
        return -1;
    fixture_path(world_root, sizeof(world_root), "%s/root", world_dir);
    if (fixture_build(world_dir, world_spec, NOW) != 0) {
        fprintf(stderr, "mkregistry failed to build the policy tree\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fixture_remove_tree(world_dir);
    return 0;
}

/* Scan the policy tree; read its image configs too when configs is 1. */
static int setup_scan(void **state, int configs)
{
    struct ptest *t = calloc(1, sizeof(*t));
    char err[1024];

    if (!t)
        return -1;
    t->scanned = 1;
    if (scan_open(&t->reg, world_root, err, sizeof(err)) != 0 ||
        scan_registry(&t->reg, err, sizeof(err)) != 0) {
        fprintf(stderr, "scan failed: %s\n", err);
        registry_free(&t->reg);
        free(t);
        return -1;
    }
    if (configs)
        scan_configs(&t->reg);
    else
        for (size_t r = 0; r < t->reg.repo_count; r++)
            registry_describe_tags(&t->reg, &t->reg.repos[r]);
    t->opt.files = t->files;
    t->opt.file_count = 1;
    t->opt.now = NOW;
    t->opt.max_instructions = 1000000;
    t->opt.max_memory = (size_t)32 * 1024 * 1024;
    t->params[0].name = "count";
    t->params[0].value = "3";
    t->opt.params = t->params;
    t->opt.param_count = 1;
    *state = t;
    return 0;
}

static int setup(void **state)
{
    return setup_scan(state, 1);
}

/* The image configs left unread, as prune leaves them for a policy to
 * read on demand. */
static int setup_unread(void **state)
{
    return setup_scan(state, 0);
}

static int teardown(void **state)
{
    struct ptest *t = *state;

    policy_free(t->policy);
    free(t->err);
    if (t->scanned)
        registry_free(&t->reg);
    for (size_t i = 0; i < 2; i++)
        if (t->paths[i][0])
            unlink(t->paths[i]);
    free(t);
    return 0;
}

/*** running policies ***/

/* Write policy file number i (0 or 1) with the given bytes. */
static const char *write_policy_bytes(struct ptest *t, size_t i,
                                      const char *data, size_t len)
{
    fixture_path(t->paths[i], sizeof(t->paths[i]), "%s/policy-%zu.lua",
                 world_dir, i);
    if (fixture_write(t->paths[i], data, len) != 0)
        fail_msg("cannot write %s: %s", t->paths[i], strerror(errno));
    t->files[i] = t->paths[i];
    return t->paths[i];
}

static const char *write_policy(struct ptest *t, size_t i, const char *src)
{
    return write_policy_bytes(t, i, src, strlen(src));
}

/* Load the policy files. Return 0, or -1 with t->err set. */
static int load(struct ptest *t)
{
    free(t->err);
    t->err = NULL;
    t->policy = policy_load(&t->opt, &t->err);
    return t->policy ? 0 : -1;
}

static struct repo *repo_of(struct ptest *t, const char *name)
{
    struct repo *repo = registry_find_repo(&t->reg, name);

    if (!repo)
        fail_msg("repository %s not in the policy tree", name);
    return repo;
}

static struct tag *tag_of(struct ptest *t, const char *repo,
                          const char *name)
{
    struct tag *tag = registry_find_tag(repo_of(t, repo), name);

    if (!tag)
        fail_msg("tag %s:%s not in the policy tree", repo, name);
    return tag;
}

/* Evaluate the loaded policy on one repository. Return 0, or -1 with
 * t->err set. */
static int evaluate(struct ptest *t, const char *repo)
{
    free(t->err);
    t->err = NULL;
    return policy_evaluate(t->policy, &t->reg, repo_of(t, repo), &t->err);
}

/* Load src as the only policy and run it on team/app, which must succeed. */
static void expect_policy_ok(struct ptest *t, const char *src)
{
    write_policy(t, 0, src);
    if (load(t) != 0)
        fail_msg("policy failed to load: %s", t->err);
    if (evaluate(t, "team/app") != 0)
        fail_msg("policy failed on team/app: %s", t->err);
}

static void expect_err_contains(struct ptest *t, const char *needle)
{
    if (!t->err)
        fail_msg("no error message, expected one containing \"%s\"",
                 needle);
    if (!strstr(t->err, needle))
        fail_msg("error message lacks \"%s\":\n%s", needle, t->err);
}

/* Load src and run it on team/app. Evaluation must fail with needle in
 * the message. */
static void expect_policy_error(struct ptest *t, const char *src,
                                const char *needle)
{
    write_policy(t, 0, src);
    if (load(t) != 0)
        fail_msg("policy failed to load: %s", t->err);
    if (evaluate(t, "team/app") == 0)
        fail_msg("policy succeeded, expected an error containing \"%s\"",
                 needle);
    expect_err_contains(t, needle);
}

static void expect_load_error(struct ptest *t, const char *src,
                              const char *needle)
{
    write_policy(t, 0, src);
    if (load(t) == 0)
        fail_msg("policy loaded, expected an error containing \"%s\"",
                 needle);
    expect_err_contains(t, needle);
}

/* "<policy path>:<line>:" as Lua prints locations. */
static const char *location(struct ptest *t, size_t file, int line)
{
    static char buf[PATH_MAX + 32];

    fixture_path(buf, sizeof(buf), "%s:%d:", t->paths[file], line);
    return buf;
}

/*
 * Run fn(t) in a child process killed after timeout_sec, so that a hang or
 * a crash fails this test only. fn returns the child's exit status.
 */
static void run_isolated(struct ptest *t, int (*fn)(struct ptest *),
                         unsigned timeout_sec, const char *what)
{
    pid_t pid;
    int status;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* cmocka's handlers would resume the test run in the child. */
        static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE,
                                    SIGABRT};
        int rc;

        for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
            signal(fatal[i], SIG_DFL);
        alarm(timeout_sec);
        rc = fn(t);
        /* Free what the child allocated, for leak checkers. */
        policy_free(t->policy);
        t->policy = NULL;
        _exit(rc);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        fail_msg("%s: still running after %u s", what, timeout_sec);
    if (WIFSIGNALED(status))
        fail_msg("%s: crashed with signal %d", what, WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("%s: failed with status %d", what, WEXITSTATUS(status));
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) +
           (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/*** verdicts ***/

static const char verdict_policy[] =
    "function policy(repo)\n"
    "  for _, tag in ipairs(repo.tags) do\n"
    "    if tag.name == \"latest\" then\n"
    "      keep(tag, \"moving tag\")\n"
    "    else\n"
    "      delete(tag.name, \"old build\")\n"
    "    end\n"
    "  end\n"
    "end\n";

static void test_policy_keep_reason_and_source(void **state)
{
    struct ptest *t = *state;
    struct tag *latest;
    char source[PATH_MAX + 16];

    expect_policy_ok(t, verdict_policy);
    latest = tag_of(t, "team/app", "latest");
    fixture_path(source, sizeof(source), "%s:4", t->paths[0]);

    assert_true(latest->keep);
    assert_false(latest->delete);
    assert_false(latest->remove);
    assert_string_equal(latest->keep_reason, "moving tag");
    assert_string_equal(latest->keep_source, source);
}

static void test_policy_delete_reason_and_source(void **state)
{
    struct ptest *t = *state;
    struct tag *build9;
    char source[PATH_MAX + 16];

    expect_policy_ok(t, verdict_policy);
    build9 = tag_of(t, "team/app", "build-9");
    fixture_path(source, sizeof(source), "%s:6", t->paths[0]);

    assert_true(build9->delete);
    assert_false(build9->keep);
    assert_true(build9->remove);
    assert_string_equal(build9->delete_reason, "old build");
    assert_string_equal(build9->delete_source, source);
}

static void test_policy_default_reasons(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(t, "function policy(repo)\n"
                        "  keep(\"latest\")\n"
                        "  delete(\"build-9\")\n"
                        "end\n");

    assert_string_equal(tag_of(t, "team/app", "latest")->keep_reason,
                        "kept by policy");
    assert_string_equal(tag_of(t, "team/app", "build-9")->delete_reason,
                        "deleted by policy");
}

static void test_policy_no_verdict_keeps(void **state)
{
    struct ptest *t = *state;
    struct repo *repo;

    expect_policy_ok(t, "function policy(repo) end\n");
    repo = repo_of(t, "team/app");

    for (size_t i = 0; i < repo->tag_count; i++) {
        if (repo->tags[i].remove)
            fail_msg("tag %s marked for removal without a verdict",
                     repo->tags[i].name);
        if (repo->tags[i].keep || repo->tags[i].delete)
            fail_msg("tag %s got a verdict from an empty policy",
                     repo->tags[i].name);
    }
}

static void test_policy_keep_wins_over_delete(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(t, "function policy(repo)\n"
                        "  delete(\"1.9.0\", \"old\")\n"
                        "  keep(\"1.9.0\", \"pinned\")\n"
                        "  keep(\"1.10.0\", \"pinned\")\n"
                        "  delete(\"1.10.0\", \"old\")\n"
                        "  delete(\"build-9\", \"old\")\n"
                        "end\n");

    assert_false(tag_of(t, "team/app", "1.9.0")->remove);
    assert_false(tag_of(t, "team/app", "1.10.0")->remove);
    assert_true(tag_of(t, "team/app", "1.9.0")->delete);
    assert_true(tag_of(t, "team/app", "1.10.0")->delete);
    assert_true(tag_of(t, "team/app", "build-9")->remove);
}

static void test_policy_first_reason_recorded(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(t, "function policy(repo)\n"
                        "  keep(\"latest\", \"first\")\n"
                        "  keep(\"latest\", \"second\")\n"
                        "end\n");

    assert_string_equal(tag_of(t, "team/app", "latest")->keep_reason,
                        "first");
}

static void test_policy_protect_beats_delete(void **state)
{
    struct ptest *t = *state;
    struct tag *tag;

    expect_policy_ok(t, "function policy(repo)\n"
                        "  keep(\"1.9.0\", \"plain keep\")\n"
                        "  protect(\"1.9.0\", \"in use\")\n"
                        "  delete(\"1.9.0\", \"old\")\n"
                        "end\n");
    tag = tag_of(t, "team/app", "1.9.0");

    assert_false(tag->remove);
    assert_true(tag->protect);
    assert_string_equal(tag->keep_reason, "in use");
}

static void test_policy_unknown_tag_name(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  delete(\"no-such-tag\")\n"
                        "end\n",
                        "no tag 'no-such-tag' in repository team/app");
    expect_err_contains(t, location(t, 0, 2));
}

static void test_policy_unknown_tag_nothing_removed(void **state)
{
    struct ptest *t = *state;
    struct repo *repo;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  delete(\"build-9\")\n"
                        "  delete(\"no-such-tag\")\n"
                        "end\n",
                        "no-such-tag");
    repo = repo_of(t, "team/app");
    for (size_t i = 0; i < repo->tag_count; i++)
        if (repo->tags[i].remove)
            fail_msg("tag %s marked for removal after a policy error",
                     repo->tags[i].name);
}

static void test_policy_foreign_table_rejected(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  keep({name = \"latest\"})\n"
                        "end\n",
                        "not a tag of repository team/app");
}

static void test_policy_bad_argument_type(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  delete(42)\n"
                        "end\n",
                        "expected a tag or a tag name");
}

/* A tag table of one repository is not a tag of the next. */
static void test_policy_tag_from_other_repo_rejected(void **state)
{
    struct ptest *t = *state;

    write_policy(t, 0,
                 "local saved = {}\n"
                 "function policy(repo)\n"
                 "  if saved[1] then keep(saved[1]) end\n"
                 "  saved[1] = repo.tags[1]\n"
                 "end\n");
    assert_int_equal(load(t), 0);
    assert_int_equal(evaluate(t, "team/app"), 0);
    assert_int_equal(evaluate(t, "solo/app"), -1);
    expect_err_contains(t, "not a tag of repository solo/app");
}

/*** last-tag protection ***/

static const char delete_all_policy[] =
    "function policy(repo)\n"
    "  for _, tag in ipairs(repo.tags) do delete(tag) end\n"
    "end\n";

static void test_policy_last_tag_protected(void **state)
{
    struct ptest *t = *state;
    struct repo *repo;
    struct tag *latest;

    expect_policy_ok(t, delete_all_policy);
    repo = repo_of(t, "team/app");
    latest = tag_of(t, "team/app", "latest");

    /* latest is the most recently pushed tag. */
    assert_false(latest->remove);
    assert_non_null(strstr(latest->keep_reason, "last tag"));
    for (size_t i = 0; i < repo->tag_count; i++)
        if (&repo->tags[i] != latest && !repo->tags[i].remove)
            fail_msg("tag %s kept, only latest should be",
                     repo->tags[i].name);
}

static void test_policy_last_tag_single_tag_repo(void **state)
{
    struct ptest *t = *state;

    write_policy(t, 0, delete_all_policy);
    assert_int_equal(load(t), 0);
    assert_int_equal(evaluate(t, "solo/app"), 0);

    assert_false(tag_of(t, "solo/app", "only")->remove);
}

static void test_policy_allow_empty_deletes_all(void **state)
{
    struct ptest *t = *state;
    struct repo *repo;

    t->opt.allow_empty = 1;
    expect_policy_ok(t, delete_all_policy);
    repo = repo_of(t, "team/app");

    for (size_t i = 0; i < repo->tag_count; i++)
        if (!repo->tags[i].remove)
            fail_msg("tag %s kept despite allow_empty", repo->tags[i].name);
}

static void test_policy_last_tag_not_needed(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(t, "function policy(repo)\n"
                        "  for _, tag in ipairs(repo.tags) do\n"
                        "    if tag.name ~= \"build-9\" then delete(tag) end\n"
                        "  end\n"
                        "end\n");

    assert_false(tag_of(t, "team/app", "build-9")->remove);
    assert_true(tag_of(t, "team/app", "latest")->remove);
}

/*** sandbox: what is missing ***/

static void test_policy_unsafe_globals_absent(void **state)
{
    static const char *const names[] = {
        "io",      "os",    "require",        "load",   "loadfile",
        "dofile",  "debug", "collectgarbage", "package", "loadstring",
    };
    struct ptest *t = *state;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char src[128], needle[64];

        snprintf(src, sizeof(src),
                 "local x = %s\nfunction policy(repo) end\n", names[i]);
        snprintf(needle, sizeof(needle), "undefined global '%s'", names[i]);
        write_policy(t, 0, src);
        if (load(t) == 0)
            fail_msg("global %s is available to policies", names[i]);
        if (!strstr(t->err, needle))
            fail_msg("reading %s: error lacks \"%s\":\n%s", names[i],
                     needle, t->err);
    }
}

static void test_policy_unsafe_global_inside_policy(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  return os.time()\n"
                        "end\n",
                        "undefined global 'os'");
}

static void test_policy_string_dump_absent(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(t, "function policy(repo)\n"
                        "  assert(string.dump == nil, \"string.dump\")\n"
                        "  assert((\"\").dump == nil, \"(''):dump\")\n"
                        "end\n");
}

static void test_policy_safe_libraries_present(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(
        t, "function policy(repo)\n"
           "  assert(string.format(\"%d\", 3) == \"3\", \"string\")\n"
           "  assert(table.concat({\"a\", \"b\"}, \",\") == \"a,b\","
           " \"table\")\n"
           "  assert(math.floor(2.5) == 2, \"math\")\n"
           "  assert(utf8.char(72) == \"H\", \"utf8\")\n"
           "  assert(select(\"#\", 1, 2) == 2, \"select\")\n"
           "  assert(type(pcall) == \"function\", \"pcall\")\n"
           "  assert(tostring(1) == \"1\", \"tostring\")\n"
           "  print(\"policy output goes to the log\")\n"
           "end\n");
}

static void test_policy_bytecode_header_rejected(void **state)
{
    static const char bytecode[] = "\x1bLua\x54\x00\x19\x93\r\n\x1a\n"
                                   "function policy(repo) end\n";
    struct ptest *t = *state;

    write_policy_bytes(t, 0, bytecode, sizeof(bytecode) - 1);
    assert_int_equal(load(t), -1);
    expect_err_contains(t, "binary");
}

static int write_chunk(lua_State *L, const void *data, size_t size, void *ud)
{
    (void)L;
    return fwrite(data, 1, size, ud) == size ? 0 : 1;
}

/* Real bytecode from lua_dump of a valid policy. */
static void test_policy_compiled_chunk_rejected(void **state)
{
    struct ptest *t = *state;
    lua_State *L = luaL_newstate();
    FILE *f;

    assert_non_null(L);
    assert_int_equal(luaL_loadstring(L, "function policy(repo) end"),
                     LUA_OK);
    fixture_path(t->paths[0], sizeof(t->paths[0]), "%s/policy-0.lua",
                 world_dir);
    t->files[0] = t->paths[0];
    f = fopen(t->paths[0], "wb");
    assert_non_null(f);
    assert_int_equal(lua_dump(L, write_chunk, f, 0), 0);
    assert_int_equal(fclose(f), 0);
    lua_close(L);

    assert_int_equal(load(t), -1);
    expect_err_contains(t, "binary");
}

/*** sandbox: limits ***/

static void test_policy_endless_loop_stopped(void **state)
{
    struct ptest *t = *state;
    struct timespec start;

    clock_gettime(CLOCK_MONOTONIC, &start);
    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  while true do end\n"
                        "end\n",
                        "instructions");
    assert_true(seconds_since(&start) < 5.0);
}

static void test_policy_endless_loop_at_load_stopped(void **state)
{
    struct ptest *t = *state;

    expect_load_error(t,
                      "while true do end\n"
                      "function policy(repo) end\n",
                      "instructions");
}

static void test_policy_budget_per_repository(void **state)
{
    struct ptest *t = *state;

    /* About 600,000 instructions per call, two per iteration: each call
     * fits the budget of 1,000,000, though two calls together would not. */
    write_policy(t, 0,
                 "function policy(repo)\n"
                 "  local n = 0\n"
                 "  for i = 1, 300000 do n = n + i end\n"
                 "end\n");
    assert_int_equal(load(t), 0);
    assert_int_equal(evaluate(t, "team/app"), 0);
    assert_int_equal(evaluate(t, "solo/app"), 0);
    assert_int_equal(evaluate(t, "team/app"), 0);
}

static void test_policy_pcall_endless_loop_stopped(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  pcall(function() while true do end end)\n"
                        "end\n",
                        "instruction");
}

static int run_pcall_loop(struct ptest *t)
{
    write_policy(t, 0,
                 "function policy(repo)\n"
                 "  while true do\n"
                 "    pcall(function() while true do end end)\n"
                 "  end\n"
                 "end\n");
    if (load(t) != 0)
        return 2;
    if (evaluate(t, "team/app") == 0)
        return 3;
    return strstr(t->err, "instruction") ? 0 : 4;
}

/* The budget must also stop a policy that catches the error again and
 * again: 1,000,000 instructions take milliseconds. */
static void test_policy_pcall_in_loop_stopped(void **state)
{
    run_isolated(*state, run_pcall_loop, 3,
                 "pcall inside an endless loop");
}

static void test_policy_memory_bomb_stopped(void **state)
{
    struct ptest *t = *state;

    t->opt.max_instructions = 1000000000;
    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  local s = \"x\"\n"
                        "  while true do s = s .. s end\n"
                        "end\n",
                        "memory");
}

static void test_policy_large_allocation_stopped(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  local s = string.rep(\"x\", 256 * 1024 * 1024)\n"
                        "end\n",
                        "memory");
}

static void test_policy_pcall_memory_bomb_stopped(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  pcall(string.rep, \"x\", 256 * 1024 * 1024)\n"
                        "end\n",
                        "memory limit exceeded");
}

/* Memory a finished repository used is available to the next one. */
static void test_policy_memory_released_between_repos(void **state)
{
    struct ptest *t = *state;

    t->opt.max_instructions = 1000000000;
    write_policy(t, 0,
                 "function policy(repo)\n"
                 "  local t = {}\n"
                 "  for i = 1, 200 do\n"
                 "    t[i] = string.rep(\"x\", 65536) .. i\n"
                 "  end\n"
                 "end\n");
    assert_int_equal(load(t), 0);
    for (int round = 0; round < 5; round++) {
        if (evaluate(t, "team/app") != 0)
            fail_msg("round %d: %s", round, t->err);
    }
}

/*** sandbox: globals ***/

static void test_policy_undefined_global_read(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  if missing_variable then end\n"
                        "end\n",
                        "undefined global 'missing_variable'");
    expect_err_contains(t, location(t, 0, 2));
}

static void test_policy_global_assignment_raises(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  counter = 1\n"
                        "end\n",
                        "assignment to global 'counter'");
    expect_err_contains(t, location(t, 0, 2));
}

static void test_policy_global_defined_at_load(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(t, "limit = 2\n"
                        "local function helper() return limit end\n"
                        "function policy(repo)\n"
                        "  assert(helper() == 2, \"limit\")\n"
                        "end\n");
}

/* Each policy file has its own globals. */
static void test_policy_files_have_own_globals(void **state)
{
    struct ptest *t = *state;

    write_policy(t, 0, "shared = 1\nfunction policy(repo) end\n");
    write_policy(t, 1, "function policy(repo)\n"
                       "  return shared\n"
                       "end\n");
    t->opt.file_count = 2;
    assert_int_equal(load(t), 0);
    assert_int_equal(evaluate(t, "team/app"), -1);
    expect_err_contains(t, "undefined global 'shared'");
    expect_err_contains(t, location(t, 1, 2));
}

static void test_policy_files_combine_verdicts(void **state)
{
    struct ptest *t = *state;

    write_policy(t, 0, "function policy(repo)\n"
                       "  delete(\"build-9\")\n"
                       "  delete(\"build-10\")\n"
                       "end\n");
    write_policy(t, 1, "function policy(repo)\n"
                       "  keep(\"build-9\", \"second file\")\n"
                       "end\n");
    t->opt.file_count = 2;
    assert_int_equal(load(t), 0);
    assert_int_equal(evaluate(t, "team/app"), 0);

    assert_false(tag_of(t, "team/app", "build-9")->remove);
    assert_true(tag_of(t, "team/app", "build-10")->remove);
}

/*** error messages ***/

static void test_policy_syntax_error_location(void **state)
{
    struct ptest *t = *state;

    expect_load_error(t,
                      "function policy(repo)\n"
                      "  if then\n"
                      "end\n",
                      location(t, 0, 2));
}

static void test_policy_runtime_error_location(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "\n"
                        "  error(\"boom\")\n"
                        "end\n",
                        "boom");
    expect_err_contains(t, location(t, 0, 3));
    expect_err_contains(t, "team/app");
}

static void test_policy_load_error_location(void **state)
{
    struct ptest *t = *state;

    expect_load_error(t,
                      "local x = 1\n"
                      "error(\"bad setup\")\n"
                      "function policy(repo) end\n",
                      "bad setup");
    expect_err_contains(t, location(t, 0, 2));
}

static void test_policy_missing_function(void **state)
{
    struct ptest *t = *state;

    expect_load_error(t, "local x = 1\n",
                      "does not define a function policy(repo)");
}

static void test_policy_policy_not_function(void **state)
{
    struct ptest *t = *state;

    expect_load_error(t, "policy = 1\n",
                      "does not define a function policy(repo)");
}

static void test_policy_missing_file(void **state)
{
    struct ptest *t = *state;

    t->files[0] = "/nonexistent/regprune/policy.lua";
    assert_int_equal(load(t), -1);
    expect_err_contains(t, "/nonexistent/regprune/policy.lua");
}

/* A verdict needs a repository, so calling keep while the file loads must
 * be a Lua error, not a crash. */
static int run_keep_at_load(struct ptest *t)
{
    write_policy(t, 0, "keep(\"latest\")\nfunction policy(repo) end\n");
    if (load(t) == 0)
        return 2;
    return strstr(t->err, location(t, 0, 1)) ? 0 : 3;
}

static void test_policy_keep_at_load_is_error(void **state)
{
    run_isolated(*state, run_keep_at_load, 3, "keep() at load time");
}

static int run_sort_at_load(struct ptest *t)
{
    write_policy(t, 0, "local s = regprune.sort({}, \"name\")\n"
                       "function policy(repo) end\n");
    if (load(t) == 0)
        return 2;
    return 0;
}

static void test_policy_sort_at_load_is_error(void **state)
{
    run_isolated(*state, run_sort_at_load, 3,
                 "regprune.sort() at load time");
}

/*** tag tables ***/

static void test_policy_tag_fields(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(
        t, "function policy(repo)\n"
           "  assert(repo.name == \"team/app\", \"repo.name\")\n"
           "  assert(#repo.tags == 6, \"#repo.tags\")\n"
           "  local old, latest\n"
           "  for _, tag in ipairs(repo.tags) do\n"
           "    if tag.name == \"1.9.0\" then old = tag end\n"
           "    if tag.name == \"latest\" then latest = tag end\n"
           "  end\n"
           "  assert(old.pushed == regprune.now - 5 * 86400, \"pushed\")\n"
           "  assert(old.created == regprune.now - 6 * 86400, \"created\")\n"
           "  assert(latest.created == nil, \"created nil\")\n"
           "  assert(#old.digest == 71, \"digest length\")\n"
           "  assert(old.digest:match(\"^sha256:%x+$\"), \"digest form\")\n"
           "  assert(math.type(old.size) == \"integer\", \"size type\")\n"
           "  assert(old.size > 2048, \"size\")\n"
           "  assert(#old.platforms == 1, \"#platforms\")\n"
           "  assert(old.platforms[1] == \"linux/amd64\", \"platform\")\n"
           "  keep(old, old.digest)\n"
           "end\n");
}

static void test_policy_tag_digest_matches_scan(void **state)
{
    struct ptest *t = *state;
    struct tag *old;
    char text[DIGEST_TEXT_LEN + 1];

    expect_policy_ok(t, "function policy(repo)\n"
                        "  for _, tag in ipairs(repo.tags) do\n"
                        "    keep(tag, tag.digest)\n"
                        "  end\n"
                        "end\n");
    old = tag_of(t, "team/app", "1.9.0");
    digest_to_text(&t->reg.ids.digests[old->digest], text);

    assert_string_equal(old->keep_reason, text);
}

static void test_policy_tags_read_only(void **state)
{
    static const char *const writes[] = {
        "repo.tags[1] = nil",
        "repo.tags[7] = repo.tags[1]",
        "repo.tags[1].name = \"other\"",
        "repo.tags[1].pushed = 0",
        "repo.tags[1].platforms[1] = \"x\"",
        "repo.name = \"other\"",
        "repo.extra = 1",
        "table.insert(repo.tags, repo.tags[1])",
        "table.remove(repo.tags, 1)",
        "table.sort(repo.tags, function(a, b) return a.name < b.name end)",
    };
    struct ptest *t = *state;

    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
        char src[256];

        snprintf(src, sizeof(src), "function policy(repo)\n  %s\nend\n",
                 writes[i]);
        write_policy(t, 0, src);
        policy_free(t->policy);
        if (load(t) != 0)
            fail_msg("%s: %s", writes[i], t->err);
        if (evaluate(t, "team/app") == 0)
            fail_msg("policy could run: %s", writes[i]);
        if (!strstr(t->err, "read-only"))
            fail_msg("%s: error lacks \"read-only\":\n%s", writes[i],
                     t->err);
    }
}

static void test_policy_tags_iterable(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(t, "function policy(repo)\n"
                        "  local n = 0\n"
                        "  for k, v in pairs(repo.tags) do n = n + 1 end\n"
                        "  assert(n == 6, \"pairs saw \" .. n)\n"
                        "  n = 0\n"
                        "  for k, v in pairs(repo.tags[1]) do n = n + 1 end\n"
                        "  assert(n >= 5, \"tag fields \" .. n)\n"
                        "end\n");
}

/*** regprune.* ***/

/* Keep every tag with its 1-based rank in regprune.sort(tags, order). */
static void run_sort(struct ptest *t, const char *order_arg)
{
    char src[512];

    snprintf(src, sizeof(src),
             "function policy(repo)\n"
             "  for i, tag in ipairs(regprune.sort(repo.tags%s)) do\n"
             "    keep(tag, tostring(i))\n"
             "  end\n"
             "end\n",
             order_arg);
    expect_policy_ok(t, src);
}

static void expect_ranks(struct ptest *t, const char *const *names,
                         size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct tag *tag = tag_of(t, "team/app", names[i]);
        char rank[24];

        snprintf(rank, sizeof(rank), "%zu", i + 1);
        if (!tag->keep_reason || strcmp(tag->keep_reason, rank) != 0)
            fail_msg("tag %s: rank %s, expected %s", names[i],
                     tag->keep_reason ? tag->keep_reason : "none", rank);
    }
}

static void test_policy_sort_version(void **state)
{
    static const char *const expected[] = {
        "1.10.0", "1.10.0-rc.1", "1.9.0", "latest", "build-10", "build-9",
    };
    struct ptest *t = *state;

    run_sort(t, ", \"version\"");
    expect_ranks(t, expected, sizeof(expected) / sizeof(expected[0]));
}

static void test_policy_sort_pushed(void **state)
{
    static const char *const expected[] = {
        "latest", "build-10", "build-9", "1.10.0", "1.10.0-rc.1", "1.9.0",
    };
    struct ptest *t = *state;

    run_sort(t, ", \"pushed\"");
    expect_ranks(t, expected, sizeof(expected) / sizeof(expected[0]));
}

static void test_policy_sort_default_is_pushed(void **state)
{
    static const char *const expected[] = {
        "latest", "build-10", "build-9", "1.10.0", "1.10.0-rc.1", "1.9.0",
    };
    struct ptest *t = *state;

    run_sort(t, "");
    expect_ranks(t, expected, sizeof(expected) / sizeof(expected[0]));
}

static void test_policy_sort_created(void **state)
{
    static const char *const expected[] = {
        "build-10", "build-9", "1.10.0", "1.9.0", "1.10.0-rc.1", "latest",
    };
    struct ptest *t = *state;

    run_sort(t, ", \"created\"");
    expect_ranks(t, expected, sizeof(expected) / sizeof(expected[0]));
}

static void test_policy_sort_name(void **state)
{
    static const char *const expected[] = {
        "latest", "build-10", "build-9", "1.10.0-rc.1", "1.10.0", "1.9.0",
    };
    struct ptest *t = *state;

    run_sort(t, ", \"name\"");
    expect_ranks(t, expected, sizeof(expected) / sizeof(expected[0]));
}

static void test_policy_sort_invalid_order(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  regprune.sort(repo.tags, \"size\")\n"
                        "end\n",
                        "size");
}

static void test_policy_sort_returns_new_array(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(t, "function policy(repo)\n"
                        "  local s = regprune.sort(repo.tags, \"name\")\n"
                        "  assert(s ~= repo.tags, \"same table\")\n"
                        "  assert(#s == #repo.tags, \"length\")\n"
                        "  s[#s + 1] = \"extra\"\n"
                        "  assert(#repo.tags == 6, \"input changed\")\n"
                        "  local two = regprune.sort({s[5], s[1]}, \"name\")\n"
                        "  assert(#two == 2, \"subset length\")\n"
                        "  assert(two[1] == s[1], \"subset order\")\n"
                        "end\n");
}

static void test_policy_sort_rejects_non_tags(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  regprune.sort({\"latest\", {}}, \"name\")\n"
                        "end\n",
                        "regprune.sort");
}

static void test_policy_duration(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(
        t, "function policy(repo)\n"
           "  assert(regprune.duration(\"30d\") == 30 * 86400, \"30d\")\n"
           "  assert(regprune.duration(\"1d12h\") == 129600, \"1d12h\")\n"
           "  assert(regprune.duration(\"90m\") == 5400, \"90m\")\n"
           "  assert(math.type(regprune.duration(\"2w\")) == \"integer\","
           " \"integer\")\n"
           "end\n");
}

static void test_policy_duration_invalid(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  regprune.duration(\"1x\")\n"
                        "end\n",
                        "invalid duration '1x'");
}

static void test_policy_now(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(t, "function policy(repo)\n"
                        "  assert(regprune.now == 1733000000, \"now\")\n"
                        "end\n");
}

static void test_policy_params(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(
        t, "function policy(repo)\n"
           "  assert(regprune.params.count == \"3\", \"count\")\n"
           "  assert(type(regprune.params.count) == \"string\", \"type\")\n"
           "  assert(regprune.params.missing == nil, \"missing\")\n"
           "end\n");
}

static void test_policy_params_read_only(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  regprune.params.count = \"4\"\n"
                        "end\n",
                        "read-only");
}

static void test_policy_regprune_table_read_only(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  regprune.now = 0\n"
                        "end\n",
                        "read-only");
}

static void test_policy_regex_helpers(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(
        t, "function policy(repo)\n"
           "  assert(regprune.fullmatch(\"v1-bad\", \"^v\\\\d+$\") == false,"
           " \"fullmatch anchored\")\n"
           "  assert(regprune.fullmatch(\"v12\", \"v\\\\d+\") == true,"
           " \"fullmatch\")\n"
           "  assert(regprune.search(\"v1-bad\", \"bad\") == true,"
           " \"search\")\n"
           "  assert(regprune.search(\"v1\", \"^1\") == false,"
           " \"search anchor\")\n"
           "end\n");
}

static void test_policy_regex_invalid_pattern(void **state)
{
    struct ptest *t = *state;

    expect_policy_error(t,
                        "function policy(repo)\n"
                        "  regprune.search(\"v1\", \"([a-z\")\n"
                        "end\n",
                        "([a-z");
    expect_err_contains(t, location(t, 0, 2));
}

/* A byte order mark and a "#!" first line load as the lua program takes
 * them, and line numbers stay those of the file. */
static void test_policy_bom_and_shebang(void **state)
{
    static const char src[] = "\xef\xbb\xbf#!/usr/bin/env lua\n"
                              "function policy(repo)\n"
                              "  error(\"stop\")\n"
                              "end\n";
    struct ptest *t = *state;

    write_policy_bytes(t, 0, src, sizeof(src) - 1);
    if (load(t) != 0)
        fail_msg("policy failed to load: %s", t->err);
    assert_int_equal(evaluate(t, "team/app"), -1);
    expect_err_contains(t, location(t, 0, 3));
}

/* Tags judged by the same line share one copy of its "file:line". */
static void test_policy_sources_shared(void **state)
{
    struct ptest *t = *state;
    const struct tag *a, *b;
    char source[PATH_MAX + 16];

    expect_policy_ok(t, "function policy(repo)\n"
                        "  for _, tag in ipairs(repo.tags) do\n"
                        "    keep(tag)\n"
                        "  end\n"
                        "end\n");
    a = tag_of(t, "team/app", "1.9.0");
    b = tag_of(t, "team/app", "latest");
    assert_non_null(a->keep_source);
    assert_ptr_equal(a->keep_source, b->keep_source);
    fixture_path(source, sizeof(source), "%s:3", t->paths[0]);
    assert_string_equal(a->keep_source, source);
}

/*** image configs read on demand ***/

static void test_policy_configs_unread_until_used(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(t, "function policy(repo)\n"
                        "  for _, tag in ipairs(repo.tags) do\n"
                        "    keep(tag, tag.name .. tag.pushed .. tag.kind)\n"
                        "  end\n"
                        "end\n");
    assert_false(repo_of(t, "team/app")->configs_read);
    assert_false(tag_of(t, "team/app", "1.9.0")->has_created);
}

static void test_policy_configs_read_on_first_use(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(t, "function policy(repo)\n"
                        "  if repo.name ~= \"team/app\" then return end\n"
                        "  for _, tag in ipairs(repo.tags) do\n"
                        "    if tag.name == \"1.9.0\" then\n"
                        "      keep(tag, tostring(tag.created))\n"
                        "    end\n"
                        "  end\n"
                        "end\n");
    assert_true(repo_of(t, "team/app")->configs_read);
    assert_string_equal(tag_of(t, "team/app", "1.9.0")->keep_reason,
                        "1732481600");
    /* After that first use, later repositories are read before the policy
     * runs. */
    assert_false(repo_of(t, "solo/app")->configs_read);
    assert_int_equal(evaluate(t, "solo/app"), 0);
    assert_true(repo_of(t, "solo/app")->configs_read);
}

static void test_policy_pairs_lists_unread_created(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(t, "function policy(repo)\n"
                        "  local tag = repo.tags[1]\n"
                        "  local seen = {}\n"
                        "  for k in pairs(tag) do seen[k] = true end\n"
                        "  assert(seen.created == (tag.created ~= nil))\n"
                        "  assert(seen.platforms and seen.labels)\n"
                        "  keep(tag)\n"
                        "end\n");
}

static void test_policy_age_of_unread_created(void **state)
{
    struct ptest *t = *state;

    expect_policy_ok(t, "function policy(repo)\n"
                        "  for _, tag in ipairs(repo.tags) do\n"
                        "    if tag.name == \"1.9.0\" then\n"
                        "      assert(regprune.age(tag, \"created\") == "
                        "6 * 86400)\n"
                        "      assert(regprune.older_than(tag, \"5d\", "
                        "\"created\"))\n"
                        "      keep(tag)\n"
                        "    end\n"
                        "  end\n"
                        "end\n");
}

/* A tag table kept from an earlier repository still describes its own
 * tag, not the tag at the same position of the repository judged now. */
static void test_policy_kept_table_own_repo(void **state)
{
    struct ptest *t = *state;
    const struct tag *only;
    char expected[64];

    write_policy(t, 0, "local saved\n"
                       "function policy(repo)\n"
                       "  if repo.name == \"solo/app\" then\n"
                       "    saved = repo.tags[1]\n"
                       "    return\n"
                       "  end\n"
                       "  for _, tag in ipairs(repo.tags) do\n"
                       "    keep(tag, saved.name .. \" \" .. "
                       "tostring(saved.created) .. \" \" .. "
                       "#saved.siblings)\n"
                       "  end\n"
                       "end\n");
    if (load(t) != 0)
        fail_msg("policy failed to load: %s", t->err);
    assert_int_equal(evaluate(t, "solo/app"), 0);
    assert_int_equal(evaluate(t, "team/app"), 0);
    only = tag_of(t, "solo/app", "only");
    assert_true(only->has_created);
    snprintf(expected, sizeof(expected), "only %lld 0",
             (long long)only->created);
    assert_string_equal(tag_of(t, "team/app", "1.9.0")->keep_reason,
                        expected);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define TEST_UNREAD(name)                                                     \
    cmocka_unit_test_setup_teardown(name, setup_unread, teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        TEST(test_policy_keep_reason_and_source),
        TEST(test_policy_delete_reason_and_source),
        TEST(test_policy_default_reasons),
        TEST(test_policy_no_verdict_keeps),
        TEST(test_policy_keep_wins_over_delete),
        TEST(test_policy_first_reason_recorded),
        TEST(test_policy_protect_beats_delete),
        TEST(test_policy_unknown_tag_name),
        TEST(test_policy_unknown_tag_nothing_removed),
        TEST(test_policy_foreign_table_rejected),
        TEST(test_policy_bad_argument_type),
        TEST(test_policy_tag_from_other_repo_rejected),
        TEST(test_policy_last_tag_protected),
        TEST(test_policy_last_tag_single_tag_repo),
        TEST(test_policy_allow_empty_deletes_all),
        TEST(test_policy_last_tag_not_needed),
        TEST(test_policy_unsafe_globals_absent),
        TEST(test_policy_unsafe_global_inside_policy),
        TEST(test_policy_string_dump_absent),
        TEST(test_policy_safe_libraries_present),
        TEST(test_policy_bytecode_header_rejected),
        TEST(test_policy_compiled_chunk_rejected),
        TEST(test_policy_endless_loop_stopped),
        TEST(test_policy_endless_loop_at_load_stopped),
        TEST(test_policy_budget_per_repository),
        TEST(test_policy_pcall_endless_loop_stopped),
        TEST(test_policy_pcall_in_loop_stopped),
        TEST(test_policy_memory_bomb_stopped),
        TEST(test_policy_large_allocation_stopped),
        TEST(test_policy_pcall_memory_bomb_stopped),
        TEST(test_policy_memory_released_between_repos),
        TEST(test_policy_undefined_global_read),
        TEST(test_policy_global_assignment_raises),
        TEST(test_policy_global_defined_at_load),
        TEST(test_policy_files_have_own_globals),
        TEST(test_policy_files_combine_verdicts),
        TEST(test_policy_syntax_error_location),
        TEST(test_policy_runtime_error_location),
        TEST(test_policy_load_error_location),
        TEST(test_policy_missing_function),
        TEST(test_policy_policy_not_function),
        TEST(test_policy_missing_file),
        TEST(test_policy_keep_at_load_is_error),
        TEST(test_policy_sort_at_load_is_error),
        TEST(test_policy_tag_fields),
        TEST(test_policy_tag_digest_matches_scan),
        TEST(test_policy_tags_read_only),
        TEST(test_policy_tags_iterable),
        TEST(test_policy_sort_version),
        TEST(test_policy_sort_pushed),
        TEST(test_policy_sort_default_is_pushed),
        TEST(test_policy_sort_created),
        TEST(test_policy_sort_name),
        TEST(test_policy_sort_invalid_order),
        TEST(test_policy_sort_returns_new_array),
        TEST(test_policy_sort_rejects_non_tags),
        TEST(test_policy_duration),
        TEST(test_policy_duration_invalid),
        TEST(test_policy_now),
        TEST(test_policy_params),
        TEST(test_policy_params_read_only),
        TEST(test_policy_regprune_table_read_only),
        TEST(test_policy_regex_helpers),
        TEST(test_policy_regex_invalid_pattern),
        TEST(test_policy_sources_shared),
        TEST(test_policy_bom_and_shebang),
        TEST_UNREAD(test_policy_tag_fields),
        TEST_UNREAD(test_policy_sort_created),
        TEST_UNREAD(test_policy_configs_unread_until_used),
        TEST_UNREAD(test_policy_configs_read_on_first_use),
        TEST_UNREAD(test_policy_pairs_lists_unread_created),
        TEST_UNREAD(test_policy_age_of_unread_created),
        TEST(test_policy_kept_table_own_repo),
        TEST_UNREAD(test_policy_kept_table_own_repo),
    };

    (void)argc;
    fixture_init(argv[0]);
    /* Policies print at info level, but the tests show only results and
     * errors. */
    log_max_level = LOG_ERROR;
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
