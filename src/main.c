/*
 * regprune: command line, the order of a run (lock, scan, policy, plan,
 * remove, report) and exit statuses. Only this file ends the process.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "apply.h"
#include "check.h"
#include "config.h"
#include "inuse.h"
#include "inventory.h"
#include "journal.h"
#include "log.h"
#include "plan.h"
#include "policy.h"
#include "pool.h"
#include "registry.h"
#include "remove.h"
#include "report.h"
#include "scan.h"
#include "timeparse.h"
#include "trash.h"
#include "xalloc.h"

#ifndef REGPRUNE_VERSION
#define REGPRUNE_VERSION "unknown"
#endif

extern char **environ;

enum {
    EXIT_OK = 0,
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,
    EXIT_PROBLEMS = 3
};

static const char usage_text[] =
    "usage: regprune [--root DIR] [-v|-q] ls [--json] [--sort KEY] "
    "[REPO...]\n"
    "       regprune [--root DIR] prune --policy FILE [--set NAME=VALUE]... "
    "[--now TIME]\n"
    "                [--dry-run] [--json] [REPO...]\n"
    "       regprune [--root DIR] delete [--dry-run] [--json] "
    "REPO:TAG|REPO@DIGEST...\n"
    "       regprune [--root DIR] gc [--untagged] [--dry-run] [--json]\n"
    "       regprune [--root DIR] check [--verify] [--json] [REPO...]\n"
    "       regprune [--root DIR|--inventory FILE] explain --policy FILE "
    "REPO:TAG...\n"
    "       regprune [--root DIR|--inventory FILE] diff --policy OLD "
    "--policy-new NEW [REPO...]\n"
    "       regprune [--root DIR] restore TRASH_RUN_DIR\n"
    "       regprune [--root DIR] apply PLAN.json\n"
    "       regprune gc --empty-trash DIR --older-than DURATION\n";

static const char help_text[] =
    "\n"
    "Prune a Docker registry's filesystem storage by Lua retention "
    "policies.\n"
    "\n"
    "commands:\n"
    "  ls       list repositories and tags with digest, times, size and "
    "platforms\n"
    "  prune    run the policy on each repository, delete the tags it "
    "rejects and\n"
    "           everything only they used\n"
    "  delete   delete the named tags (REPO:TAG), or manifests with all "
    "their tags\n"
    "           (REPO@sha256:...), and everything only they used\n"
    "  gc       delete blobs and layer links no manifest references, and "
    "stale uploads\n"
    "  check    verify the tree and change nothing: unreadable manifests, "
    "missing blobs,\n"
    "           invalid links, blobs without a _layers link; --verify also "
    "hashes\n"
    "           every blob; exits 3 when it finds problems\n"
    "  explain  show every keep, delete and protect call that named each "
    "tag, in order\n"
    "  diff     list the tags whose verdict changes from --policy to "
    "--policy-new\n"
    "  restore  put back what a --trash run moved into the trash\n"
    "  apply    carry out a plan that --dry-run --plan-out wrote, skipping "
    "what changed\n"
    "\n"
    "options:\n"
    "  --root DIR          the registry's rootdirectory (default: from "
    "--config, then\n"
    "                      $REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY, then "
    "/var/lib/registry)\n"
    "  --config FILE       the registry's config.yml: its storage root and "
    "read-only\n"
    "                      setting, after its REGISTRY_STORAGE* variables\n"
    "  --policy FILE|NAME  Lua policy file, or the name of a shipped one "
    "(keep-last);\n"
    "                      repeat to run several in order\n"
    "  --set NAME=VALUE    a policy parameter, in regprune.params.NAME\n"
    "  --now TIME          the policy clock, RFC 3339 or Unix seconds "
    "(default: now)\n"
    "  -n, --dry-run       print the plan and change nothing\n"
    "  --json              write the report as one JSON document\n"
    "  --sort KEY          ls: order repositories by name, size or "
    "reclaimable bytes\n"
    "  --grace DURATION    leave unreferenced objects younger than this "
    "(default 1h)\n"
    "  --untagged          gc: also delete manifests that no tag reaches\n"
    "  --strict            fail before deleting anything when the tree has "
    "problems\n"
    "  --allow-empty       let a policy delete the last tag of a "
    "repository\n"
    "  --in-use FILE       protect the images FILE names: one reference or "
    "digest per\n"
    "                      line, or the JSON of `kubectl get pods -A -o "
    "json`\n"
    "  --max-delete N      stop before deleting anything when the plan "
    "deletes more\n"
    "                      than N tags\n"
    "  --max-delete-fraction P  likewise when it deletes more than P (0.5 "
    "or 50%) of\n"
    "                      one repository's tags\n"
    "  --max-instructions N  Lua instructions per policy call: one file's "
    "top level,\n"
    "                      or its policy(repo) for one repository "
    "(default 100000000)\n"
    "  --max-memory MIB    memory for the Lua state in MiB (default 512)\n"
    "  --policy-timeout DURATION  wall clock for one policy call "
    "(default 60s)\n"
    "  --jobs N            threads that read and delete files (default: one "
    "per processor)\n"
    "  --trash DIR         prune, delete, gc: move what goes into DIR (same "
    "filesystem,\n"
    "                      outside the root) instead of deleting it\n"
    "  --log FILE          append one JSON line per removal to FILE\n"
    "  --plan-out FILE     with --dry-run: save the plan for apply\n"
    "  --empty-trash DIR --older-than DURATION  gc: free old trash runs\n"
    "  --inventory FILE    evaluate policies against FILE, the output of "
    "`ls --json`,\n"
    "                      instead of a registry (prune is then a dry run)\n"
    "  --expect FILE       prune: compare the verdicts with FILE's lines "
    "\"keep REPO:TAG\"\n"
    "                      or \"delete REPO:TAG\"; exit 1 on a difference\n"
    "  -v, -q              more detail on stderr; errors only\n"
    "  -h, --help          this help, or with a command its own;  "
    "--version  the version\n"
    "\n"
    "The registry must be stopped or read-only during a run that deletes, "
    "and\n"
    "restarted afterwards, because it caches blob metadata.\n"
    "\n"
    "exit status: 0 success, 1 failed with nothing deleted, 2 usage error,\n"
    "3 finished with problems (frozen repositories or failed removals).\n";

/* What `regprune COMMAND --help` prints: its synopsis and options. */
static const struct command_help {
    const char *name;
    const char *text;
} command_help[] = {
    {"ls", "usage: regprune [--root DIR|--config FILE|--inventory FILE] ls "
           "[--json] [--sort name|size|reclaimable] [REPO...]\n\n"
           "List repositories and their tags: digest, push and creation "
           "times, size, kind\nand platforms; with --json, the inventory "
           "that --inventory reads back.\n"},
    {"prune", "usage: regprune [--root DIR|--config FILE] prune --policy "
              "FILE|NAME... [--set NAME=VALUE]...\n"
              "       [--now TIME] [--dry-run] [--json] [--plan-out FILE] "
              "[--trash DIR] [--log FILE]\n"
              "       [--in-use FILE] [--max-delete N] "
              "[--max-delete-fraction P] [--allow-empty]\n"
              "       [--inventory FILE [--expect FILE]] [REPO...]\n\n"
              "Run the policies on each repository, delete the tags they "
              "reject and\neverything only those tags used. A NAME such as "
              "keep-last is a shipped policy.\n"},
    {"delete", "usage: regprune [--root DIR] delete [--dry-run] [--json] "
               "[--trash DIR] [--log FILE]\n"
               "       [--in-use FILE] REPO:TAG|REPO@DIGEST...\n\n"
               "Delete the named tags, or manifests with every tag on them, "
               "and everything only\nthey used.\n"},
    {"gc", "usage: regprune [--root DIR] gc [--untagged] [--grace DURATION] "
           "[--dry-run] [--json]\n"
           "       [--trash DIR] [--log FILE]\n"
           "       regprune gc --empty-trash DIR --older-than DURATION "
           "[--dry-run]\n\n"
           "Delete blobs and layer links no manifest references and stale "
           "uploads, older\nthan the grace window; --untagged also deletes "
           "manifests no tag reaches.\n"},
    {"check", "usage: regprune [--root DIR] check [--verify] [--json] "
              "[REPO...]\n\n"
              "Verify the tree and change nothing; --verify also hashes every "
              "blob. Exits 3\nwhen it finds problems.\n"},
    {"explain", "usage: regprune [--root DIR|--inventory FILE] explain "
                "--policy FILE... REPO:TAG...\n\n"
                "Show every keep, delete and protect call that named each "
                "tag, in order.\n"},
    {"diff", "usage: regprune [--root DIR|--inventory FILE] diff --policy "
             "OLD... --policy-new NEW... [REPO...]\n\n"
             "List the tags whose verdict changes from --policy to "
             "--policy-new.\n"},
    {"apply", "usage: regprune [--root DIR] apply [--dry-run] [--json] "
              "[--trash DIR] [--log FILE] PLAN.json\n\n"
              "Carry out a plan that --dry-run --plan-out wrote, skipping "
              "what changed since.\n"},
    {"restore", "usage: regprune [--root DIR] restore TRASH_RUN_DIR\n\n"
                "Put back what a --trash run moved into the trash.\n"},
};

struct options {
    const char *root;
    const char *command;
    const char **args;
    size_t arg_count;
    const char **policies;
    size_t policy_count;
    struct policy_param *params;
    size_t param_count;
    int64_t now;
    int64_t grace;
    int dry_run, json, strict, allow_empty, untagged, verify, help;
    uint64_t max_instructions;
    size_t max_memory;
    const char *in_use;
    const char *inventory; /* evaluate against this ls --json file */
    const char *trash;     /* move removals here instead of deleting */
    const char *plan_out;  /* write the plan as JSON to this file */
    const char *config;    /* the registry's config.yml */
    const char *sort;      /* ls: name, size or reclaimable */
    struct reviewed_plan *reviewed; /* apply: the plan to stay within */
    const char *audit_log; /* JSON lines of every removal */
    const char *empty_trash;
    int64_t older_than;
    const char *expect;    /* compare verdicts with this file */
    const char **new_policies; /* diff: --policy-new */
    size_t new_policy_count;
    int64_t policy_timeout;
    long long max_delete;          /* tags per run, or -1 */
    double max_delete_fraction;    /* of a repository's tags, or -1 */
};

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "regprune: error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage_text);
    return EXIT_USAGE;
}

/* Return the option's value: after "=", or the next argument. */
static const char *option_value(int argc, char **argv, int *i,
                                const char *inline_value)
{
    if (inline_value)
        return inline_value;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static int parse_number(const char *s, unsigned long long *out)
{
    char *end;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno || *end ? -1 : 0;
}

/* Options whose value is kept as given. */
static const struct {
    const char *name;
    size_t offset; /* of the const char * in struct options */
} string_options[] = {
    {"--trash", offsetof(struct options, trash)},
    {"--config", offsetof(struct options, config)},
    {"--plan-out", offsetof(struct options, plan_out)},
    {"--log", offsetof(struct options, audit_log)},
    {"--empty-trash", offsetof(struct options, empty_trash)},
    {"--inventory", offsetof(struct options, inventory)},
    {"--expect", offsetof(struct options, expect)},
    {"--in-use", offsetof(struct options, in_use)},
};

/* Options that take a duration or a time. Return 0, -1 for an option
 * not in this group, or a usage status. */
static int parse_time_option(struct options *o, const char *name,
                             const char *value)
{
    static const struct {
        const char *name;
        size_t offset; /* of the int64_t in struct options */
        const char *example;
    } durations[] = {
        {"--grace", offsetof(struct options, grace), "30m, 1h or 2d"},
        {"--policy-timeout", offsetof(struct options, policy_timeout),
         "30s or 5m"},
        {"--older-than", offsetof(struct options, older_than), "7d"},
    };

    if (strcmp(name, "--now") == 0) {
        if (timeparse_instant(value, &o->now) != 0)
            return usage_error("invalid --now '%s': expected RFC 3339 "
                               "(2024-05-01T12:00:00Z) or Unix seconds",
                               value);
        return 0;
    }
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        int64_t *field;

        if (strcmp(name, durations[i].name) != 0)
            continue;
        field = (int64_t *)(void *)((char *)o + durations[i].offset);
        if (timeparse_duration(value, field) != 0)
            return usage_error("invalid %s '%s': expected a duration such "
                               "as %s",
                               name, value, durations[i].example);
        return 0;
    }
    return -1;
}

/* Options that take a number. Return 0, -1 for an option not in this
 * group, or a usage status. */
static int parse_number_option(struct options *o, const char *name,
                               const char *value)
{
    unsigned long long n;

    if (strcmp(name, "--max-instructions") == 0) {
        if (parse_number(value, &n) != 0 || n == 0)
            return usage_error("invalid --max-instructions '%s': expected "
                               "a positive whole number",
                               value);
        o->max_instructions = n;
    } else if (strcmp(name, "--max-memory") == 0) {
        if (parse_number(value, &n) != 0 || n == 0 || n > 1024 * 1024)
            return usage_error("invalid --max-memory '%s': expected MiB "
                               "from 1 to 1048576",
                               value);
        o->max_memory = (size_t)n * 1024 * 1024;
    } else if (strcmp(name, "--jobs") == 0) {
        if (parse_number(value, &n) != 0 || n == 0 || n > POOL_MAX_JOBS)
            return usage_error("invalid --jobs '%s': expected a number of "
                               "threads from 1 to %d",
                               value, POOL_MAX_JOBS);
        pool_jobs = (unsigned)n;
    } else if (strcmp(name, "--max-delete") == 0) {
        if (parse_number(value, &n) != 0 || n > (unsigned long long)LLONG_MAX)
            return usage_error("invalid --max-delete '%s': expected a whole "
                               "number of tags",
                               value);
        o->max_delete = (long long)n;
    } else if (strcmp(name, "--max-delete-fraction") == 0) {
        char *end;
        double f = strtod(value, &end);
        if (end != value && *end == '%') {
            f /= 100;
            end++;
        }
        if (end == value || *end || !(f >= 0 && f <= 1))
            return usage_error("invalid --max-delete-fraction '%s': expected "
                               "a fraction from 0 to 1 (0.5) or a "
                               "percentage (50%%)",
                               value);
        o->max_delete_fraction = f;
    } else {
        return -1;
    }
    return 0;
}

/* Append value to a list of strings. */
static void append(const char ***list, size_t *count, const char *value)
{
    *list = xrealloc(*list, (*count + 1) * sizeof(char *));
    (*list)[(*count)++] = value;
}

static int parse_value_option(struct options *o, const char *name,
                              const char *value)
{
    int rc;

    for (size_t i = 0; i < sizeof(string_options) / sizeof(string_options[0]);
         i++) {
        if (strcmp(name, string_options[i].name) == 0) {
            *(const char **)(void *)((char *)o + string_options[i].offset) =
                value;
            return 0;
        }
    }
    if (strcmp(name, "--root") == 0) {
        if (*value == '\0')
            return usage_error("%s", "--root needs a directory, got an empty "
                               "string");
        o->root = value;
    } else if (strcmp(name, "--policy") == 0) {
        append(&o->policies, &o->policy_count, value);
    } else if (strcmp(name, "--policy-new") == 0) {
        append(&o->new_policies, &o->new_policy_count, value);
    } else if (strcmp(name, "--set") == 0) {
        const char *eq = strchr(value, '=');
        struct policy_param *p;
        if (!eq || eq == value)
            return usage_error("--set takes NAME=VALUE, got '%s'", value);
        o->params = xrealloc(o->params,
                             (o->param_count + 1) * sizeof(*o->params));
        p = &o->params[o->param_count++];
        p->name = xstrndup(value, (size_t)(eq - value));
        p->value = eq + 1;
    } else if (strcmp(name, "--sort") == 0) {
        if (strcmp(value, "name") && strcmp(value, "size") &&
            strcmp(value, "reclaimable"))
            return usage_error("invalid --sort '%s': expected name, size or "
                               "reclaimable", value);
        o->sort = value;
    } else if ((rc = parse_time_option(o, name, value)) >= 0 ||
               (rc = parse_number_option(o, name, value)) >= 0) {
        return rc;
    } else {
        return -1;
    }
    return 0;
}

static const char *const value_options[] = {
    "--root", "--policy", "--set", "--now", "--grace", "--max-instructions",
    "--max-memory", "--in-use", "--max-delete", "--max-delete-fraction",
    "--policy-timeout", "--inventory", "--expect", "--policy-new", "--trash",
    "--log", "--empty-trash", "--older-than", "--plan-out", "--config", "--sort",
    "--jobs", NULL};

static int is_value_option(const char *name)
{
    for (const char *const *o = value_options; *o; o++)
        if (strcmp(name, *o) == 0)
            return 1;
    return 0;
}

/* Return -1 to go on, or an exit status. */
static int parse_flag(struct options *o, const char *arg)
{
    if (strcmp(arg, "--dry-run") == 0 || strcmp(arg, "-n") == 0)
        o->dry_run = 1;
    else if (strcmp(arg, "--json") == 0)
        o->json = 1;
    else if (strcmp(arg, "--strict") == 0)
        o->strict = 1;
    else if (strcmp(arg, "--allow-empty") == 0)
        o->allow_empty = 1;
    else if (strcmp(arg, "--untagged") == 0)
        o->untagged = 1;
    else if (strcmp(arg, "--verify") == 0)
        o->verify = 1;
    else if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0)
        log_max_level = log_max_level < LOG_INFO ? LOG_INFO : LOG_DEBUG;
    else if (strcmp(arg, "-vv") == 0)
        log_max_level = LOG_DEBUG;
    else if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0)
        log_max_level = LOG_ERROR;
    else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
        o->help = 1;
    else if (strcmp(arg, "--version") == 0) {
        printf("regprune %s\n", REGPRUNE_VERSION);
        return EXIT_OK;
    } else
        return usage_error("unknown option '%s'", arg);
    return -1;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    int only_args = 0;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (!only_args && strcmp(arg, "--") == 0) {
            only_args = 1;
        } else if (!only_args && arg[0] == '-' && arg[1] != '\0') {
            const char *eq = strchr(arg, '=');
            char *name = eq ? xstrndup(arg, (size_t)(eq - arg)) : xstrdup(arg);
            int rc;

            if (is_value_option(name)) {
                const char *value = option_value(argc, argv, &i,
                                                 eq ? eq + 1 : NULL);
                rc = value ? parse_value_option(o, name, value)
                           : usage_error("option %s needs a value", name);
                free(name);
                if (rc != 0)
                    return rc;
                continue;
            }
            free(name);
            if (eq)
                return usage_error("option '%s' takes no value", arg);
            rc = parse_flag(o, arg);
            if (rc >= 0)
                return rc;
        } else if (!o->command) {
            o->command = arg;
        } else {
            o->args = xrealloc(o->args, (o->arg_count + 1) * sizeof(char *));
            o->args[o->arg_count++] = arg;
        }
    }
    return -1;
}

static int is_command(const struct options *o, const char *name)
{
    return strcmp(o->command, name) == 0;
}

/* Whether the command is one that removes (or plans removals). */
static int removes(const struct options *o)
{
    return is_command(o, "prune") || is_command(o, "delete") ||
           is_command(o, "gc") || is_command(o, "apply");
}

/* The command's arguments: -1 when they fit, else a usage status. */
static int check_arguments(const struct options *o)
{
    const char *c = o->command;
    int takes_policy = is_command(o, "prune") || is_command(o, "explain") ||
                       is_command(o, "diff");

    if (takes_policy && o->policy_count == 0)
        return usage_error("%s needs --policy FILE", c);
    if (!takes_policy && (o->policy_count || o->param_count))
        return usage_error("--policy and --set belong to prune, explain and "
                           "diff, not %s", c);
    if (is_command(o, "diff") != (o->new_policy_count > 0))
        return usage_error("%s", "diff compares --policy with --policy-new; "
                           "--policy-new belongs to diff alone");
    if ((is_command(o, "delete") || is_command(o, "explain")) &&
        o->arg_count == 0)
        return usage_error("%s needs REPO:TAG arguments", c);
    if (is_command(o, "gc") && o->arg_count > 0)
        return usage_error("gc takes no arguments, got '%s'", o->args[0]);
    if (is_command(o, "apply") && o->arg_count != 1)
        return usage_error("%s", "apply takes one argument: the plan that "
                           "--dry-run --plan-out wrote");
    if (is_command(o, "restore") && o->arg_count != 1)
        return usage_error("%s", "restore takes one argument: the trash run "
                           "directory a --trash run printed");
    return -1;
}

static int check_single_options(const struct options *o);

/* Options that apply to some commands only: -1 when all fit. */
static int check_option_scope(const struct options *o)
{
    const char *c = o->command;

    if (o->plan_out && (!o->dry_run || !removes(o) || is_command(o, "apply")))
        return usage_error("%s", "--plan-out goes with --dry-run on prune, "
                           "delete or gc");
    if ((o->trash || o->audit_log) && !removes(o))
        return usage_error("--trash and --log apply to prune, delete, gc "
                           "and apply, not %s", c);
    if ((o->empty_trash != NULL) != (o->older_than >= 0) ||
        (o->empty_trash && !is_command(o, "gc")))
        return usage_error("%s", "gc --empty-trash DIR --older-than DURATION "
                           "go together");
    if (o->empty_trash && (o->untagged || o->json || o->arg_count))
        return usage_error("%s", "gc --empty-trash takes only --older-than "
                           "and --dry-run");
    if (!is_command(o, "prune") && !is_command(o, "delete") &&
        (o->in_use || o->max_delete >= 0 || o->max_delete_fraction >= 0))
        return usage_error("--in-use, --max-delete and --max-delete-fraction "
                           "apply to prune and delete, not %s", c);
    if (o->allow_empty && !is_command(o, "prune"))
        return usage_error("--allow-empty applies to prune, not %s", c);
    if (o->json && (is_command(o, "explain") || is_command(o, "diff") ||
                    is_command(o, "restore")))
        return usage_error("%s writes text only; --json does not apply", c);
    if (o->untagged && !is_command(o, "gc"))
        return usage_error("--untagged belongs to gc, not %s", c);
    if (o->dry_run && is_command(o, "restore"))
        return usage_error("%s", "restore has no dry run: read the trash "
                           "run's MOVED list to see what it puts back");
    if (o->dry_run && !removes(o))
        return usage_error("%s changes nothing; --dry-run does not apply", c);
    return check_single_options(o);
}

/* Options that belong to one command each: -1 when all fit. */
static int check_single_options(const struct options *o)
{
    const char *c = o->command;

    if (o->verify && !is_command(o, "check"))
        return usage_error("--verify belongs to check, not %s", c);
    if (o->inventory && (is_command(o, "gc") || is_command(o, "check") ||
                         is_command(o, "delete")))
        return usage_error("%s reads the tree itself; --inventory applies to "
                           "ls, prune, explain and diff",
                           c);
    if (o->sort && !is_command(o, "ls"))
        return usage_error("--sort belongs to ls, not %s", c);
    if (o->expect && !is_command(o, "prune"))
        return usage_error("--expect belongs to prune, not %s", c);
    return -1;
}

static int check_command(const struct options *o)
{
    static const char *const commands[] = {
        "ls",      "prune", "delete",  "gc",    "check",
        "explain", "diff",  "restore", "apply", NULL};
    int known = 0, rc;

    if (!o->command)
        return usage_error("%s", "no command given");
    for (const char *const *c = commands; *c && !known; c++)
        known = is_command(o, *c);
    if (!known)
        return usage_error("unknown command '%s'", o->command);
    rc = check_arguments(o);
    return rc >= 0 ? rc : check_option_scope(o);
}

/* Mark the named repositories selected, or all when none are named. */
static int select_repos(struct registry *reg, const struct options *o)
{
    if (o->arg_count == 0)
        return 0;
    for (size_t r = 0; r < reg->repo_count; r++)
        reg->repos[r].selected = 0;
    for (size_t i = 0; i < o->arg_count; i++) {
        struct repo *repo = registry_find_repo(reg, o->args[i]);
        if (!repo) {
            log_error("no repository '%s' under %s; `regprune ls` lists "
                      "them", o->args[i], reg->root);
            return -1;
        }
        repo->selected = 1;
    }
    return 0;
}

/* Mark the tags and manifests that delete names. Return 0, -1 when one
 * is absent, or EXIT_USAGE when an argument is malformed. */
static int mark_deletions(struct registry *reg, const struct options *o)
{
    for (size_t r = 0; r < reg->repo_count; r++)
        reg->repos[r].selected = 0;
    plan_prepare(reg);
    for (size_t i = 0; i < o->arg_count; i++) {
        const char *arg = o->args[i];
        const char *at = strchr(arg, '@');
        const char *slash = strrchr(arg, '/');
        const char *colon = strrchr(slash ? slash : arg, ':');
        char *name;
        struct repo *repo;

        if (at)
            name = xstrndup(arg, (size_t)(at - arg));
        else if (colon)
            name = xstrndup(arg, (size_t)(colon - arg));
        else
            return usage_error("'%s' names no tag or digest: write REPO:TAG "
                               "or REPO@sha256:<hex>", arg);
        repo = registry_find_repo(reg, name);
        free(name);
        if (!repo) {
            log_error("%s: no such repository", arg);
            return -1;
        }
        repo->selected = 1;
        if (at) {
            struct digest d;
            uint32_t id;
            long pos = -1;
            int tagged = 0;

            if (digest_parse(at + 1, strlen(at + 1), &d) != 0)
                return usage_error("%s: invalid digest; expected "
                                   "sha256:<64 lowercase hex>", arg);
            id = digest_table_find(&reg->ids, &d);
            if (id != DIGEST_NONE)
                pos = registry_find_revision(repo, id);
            if (pos < 0) {
                log_error("%s: no such manifest in the repository", arg);
                return -1;
            }
            repo->revision_remove[pos] = REV_FORCED;
            for (size_t t = 0; t < repo->tag_count; t++)
                if (repo->tags[t].digest == id) {
                    repo->tags[t].remove = 1;
                    repo->tags[t].delete = 1;
                    free(repo->tags[t].delete_reason);
                    repo->tags[t].delete_reason =
                        xasprintf("named by %s", arg);
                    tagged = 1;
                }
            (void)tagged;
        } else {
            struct tag *t = registry_find_tag(repo, colon + 1);
            if (!t) {
                log_error("%s: no such tag", arg);
                return -1;
            }
            t->remove = 1;
            t->delete = 1;
            free(t->delete_reason);
            t->delete_reason = xasprintf("named on the command line");
        }
    }
    for (size_t r = 0; r < reg->repo_count; r++)
        for (size_t t = 0; t < reg->repos[r].tag_count; t++)
            if (!reg->repos[r].tags[t].remove) {
                reg->repos[r].tags[t].keep_reason = xstrdup("not named");
                reg->repos[r].tags[t].keep = 1;
            }
    return 0;
}

/* Read the image configs of the selected repositories; returns 1. */
static int read_configs(struct registry *reg)
{
    scan_configs(reg);
    return 1;
}

/* Describe the tags of the selected repositories from their manifests,
 * without reading image configs. */
static void describe_tags(struct registry *reg)
{
    for (size_t r = 0; r < reg->repo_count; r++)
        if (reg->repos[r].selected)
            registry_describe_tags(reg, &reg->repos[r]);
}

#ifndef REGPRUNE_DATADIR
#define REGPRUNE_DATADIR "/usr/local/share/regprune"
#endif

/* Whether name ends in ".lua". */
static int has_lua_suffix(const char *name)
{
    size_t len = strlen(name);

    return len > 4 && strcmp(name + len - 4, ".lua") == 0;
}

/*
 * Find a policy given by name, such as keep-last: NAME.lua in
 * $REGPRUNE_POLICY_PATH (directories separated by ':'), beside the
 * program (share/regprune/policies of its prefix, or the policies/ of the
 * source tree it was built in) and in the installed share directory. A path that exists
 * is used as it is. Return a path the caller frees, or NULL.
 */
static char *find_policy(const char *name)
{
    char exe[PATH_MAX], *dirs[10], *found = NULL, *env_copy = NULL;
    size_t count = 0;
    ssize_t n;
    const char *env = getenv("REGPRUNE_POLICY_PATH");
    int has_suffix = has_lua_suffix(name);

    if (access(name, R_OK) == 0 || strchr(name, '/'))
        return xstrdup(name);
    if (env && *env) {
        env_copy = xstrdup(env);
        for (char *save = NULL, *d = strtok_r(env_copy, ":", &save);
             d && count < 4; d = strtok_r(NULL, ":", &save))
            dirs[count++] = xstrdup(d);
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        char *slash;
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            dirs[count++] = xasprintf("%s/../share/regprune/policies", exe);
            dirs[count++] = xasprintf("%s/policies", exe);
            /* A build folder inside a source tree. */
            dirs[count++] = xasprintf("%s/../policies", exe);
        }
    }
    dirs[count++] = xstrdup(REGPRUNE_DATADIR "/policies");
    for (size_t i = 0; i < count; i++) {
        char *path = xasprintf("%s/%s%s", dirs[i], name,
                               has_suffix ? "" : ".lua");
        if (!found && access(path, R_OK) == 0)
            found = path;
        else
            free(path);
        free(dirs[i]);
    }
    free(env_copy);
    return found;
}

static int run_policies(struct registry *reg, const struct options *o,
                        const char **files, size_t file_count)
{
    struct policy_options popt = {
        .files = files,
        .file_count = file_count,
        .params = o->params,
        .param_count = o->param_count,
        .now = o->now,
        .allow_empty = o->allow_empty,
        .max_instructions = o->max_instructions,
        .max_memory = o->max_memory,
        .timeout_sec = o->policy_timeout,
        .record_events = strcmp(o->command, "explain") == 0,
    };
    char *err = NULL;
    char **paths = xcalloc(file_count + 1, sizeof(char *));
    struct policy *p = NULL;
    int rc = 0;

    for (size_t i = 0; i < file_count; i++) {
        paths[i] = find_policy(files[i]);
        if (!paths[i]) {
            log_error("policy '%s' not found: no such file, and no %s%s "
                      "among the shipped policies ($REGPRUNE_POLICY_PATH, "
                      "the policies/ beside or above the program, %s/"
                      "policies)", files[i], files[i],
                      has_lua_suffix(files[i]) ? "" : ".lua",
                      REGPRUNE_DATADIR);
            for (size_t j = 0; j < i; j++)
                free(paths[j]);
            free(paths);
            return -1;
        }
    }
    popt.files = (const char *const *)paths;
    p = policy_load(&popt, &err);
    if (!p) {
        log_error("%s", err);
        free(err);
        rc = -1;
    }
    for (size_t r = 0; p && rc == 0 && r < reg->repo_count; r++) {
        if (!reg->repos[r].selected)
            continue;
        if (policy_evaluate(p, reg, &reg->repos[r], &err) != 0) {
            log_error("%s\nnothing was deleted", err);
            free(err);
            rc = -1;
        }
    }
    policy_free(p);
    for (size_t i = 0; i < file_count; i++)
        free(paths[i]);
    free(paths);
    return rc;
}

/* Protect the tags that --in-use names; -1 when the file is bad. */
static int apply_in_use(struct registry *reg, const struct options *o)
{
    struct inuse in;
    char err[1024];
    size_t count;

    if (!o->in_use)
        return 0;
    if (inuse_load(o->in_use, &in, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return -1;
    }
    count = inuse_apply(&in, reg);
    log_info("%s: %zu references, %zu tags protected as in use", o->in_use,
             in.count, count);
    inuse_free(&in);
    return 0;
}

/*
 * Stop a plan that deletes more than --max-delete tags in all, or more than
 * --max-delete-fraction of one repository's tags. Return -1 when tripped.
 */
static int check_breakers(const struct registry *reg, const struct options *o)
{
    long long total = 0;
    const struct repo *worst = NULL;
    size_t worst_count = 0;

    for (size_t r = 0; r < reg->repo_count; r++) {
        const struct repo *repo = &reg->repos[r];
        size_t deleted = 0;

        if (!repo->selected || repo->frozen)
            continue;
        for (size_t i = 0; i < repo->tag_count; i++)
            deleted += repo->tags[i].remove;
        total += (long long)deleted;
        if (deleted > worst_count) {
            worst = repo;
            worst_count = deleted;
        }
        if (o->max_delete_fraction >= 0 && repo->tag_count > 0 &&
            (double)deleted > o->max_delete_fraction *
                                  (double)repo->tag_count) {
            log_error("the plan deletes %zu of the %zu tags of %s, more than "
                      "--max-delete-fraction %g allows; nothing was deleted",
                      deleted, repo->tag_count, repo->name,
                      o->max_delete_fraction);
            return -1;
        }
    }
    if (o->max_delete >= 0 && total > o->max_delete) {
        log_error("the plan deletes %lld tags, more than --max-delete %lld "
                  "allows (the most, %zu, in %s); nothing was deleted",
                  total, o->max_delete, worst_count,
                  worst ? worst->name : "-");
        return -1;
    }
    return 0;
}

static int run_check(const struct options *o)
{
    struct registry reg;
    struct check_result result;
    char err[1024];
    int status = EXIT_OK;

    if (scan_open(&reg, o->root, err, sizeof(err)) != 0) {
        log_error("%s", err);
        registry_free(&reg);
        return EXIT_FAILED;
    }
    reg.problems_in_report = 1;
    reg.check_layer_links = 1;
    if (scan_registry(&reg, err, sizeof(err)) != 0 ||
        (o->verify && scan_blob_store(&reg, err, sizeof(err)) != 0)) {
        log_error("%s", err);
        status = EXIT_FAILED;
    } else if (select_repos(&reg, o) != 0) {
        status = EXIT_FAILED;
    } else {
        check_registry(&reg, o->verify, &result);
        if (report_check(stdout, &reg, &result, o->json) != 0)
            status = EXIT_FAILED;
        else if (reg.problem_count)
            status = EXIT_PROBLEMS;
    }
    registry_free(&reg);
    return status;
}

static int plan_removes_anything(const struct plan *plan)
{
    return plan->tags_deleted || plan->manifests_deleted ||
           plan->layer_links_deleted || plan->uploads_deleted ||
           plan->blob_count || plan->leftovers;
}

static int load(struct registry *reg, const struct options *o,
                int *lock_fd);

/* Whether the run removes anything, so that it needs the lock. */
static int deletes(const struct options *o)
{
    return !o->dry_run && !o->inventory && !o->expect &&
           (is_command(o, "prune") || is_command(o, "delete") ||
            is_command(o, "gc") || is_command(o, "apply"));
}

/* Split "REPO:TAG" at the colon after the last slash; NULL if none. */
static struct tag *find_tag_arg(struct registry *reg, const char *arg,
                                struct repo **repo_out)
{
    const char *slash = strrchr(arg, '/');
    const char *colon = strrchr(slash ? slash : arg, ':');
    struct repo *repo;
    char *name;

    if (!colon)
        return NULL;
    name = xstrndup(arg, (size_t)(colon - arg));
    repo = registry_find_repo(reg, name);
    free(name);
    if (repo_out)
        *repo_out = repo;
    return repo ? registry_find_tag(repo, colon + 1) : NULL;
}

/*
 * Compare the verdicts with FILE: lines "keep REPO:TAG" or "delete
 * REPO:TAG", '#' comments. Print each difference; return 0 when there is
 * none, 1 otherwise, 2 for a bad file.
 */
static int check_expectations(struct registry *reg, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int lineno = 0, mismatches = 0, checked = 0;

    if (!f) {
        log_error("cannot open --expect file %s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    while (fgets(line, sizeof(line), f)) {
        char verdict[16], ref[900];
        struct repo *repo = NULL;
        struct tag *t;

        lineno++;
        if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
            continue;
        if (sscanf(line, "%15s %899s", verdict, ref) != 2 ||
            (strcmp(verdict, "keep") && strcmp(verdict, "delete"))) {
            log_error("%s:%d: expected \"keep REPO:TAG\" or \"delete "
                      "REPO:TAG\"", path, lineno);
            fclose(f);
            return EXIT_USAGE;
        }
        t = find_tag_arg(reg, ref, &repo);
        if (!t) {
            log_error("%s:%d: no tag %s in the registry", path, lineno, ref);
            fclose(f);
            return EXIT_USAGE;
        }
        checked++;
        /* A frozen repository loses nothing, whatever the verdict. */
        if (repo && repo->frozen)
            t->remove = 0;
        if ((strcmp(verdict, "delete") == 0) != t->remove) {
            char *reason = log_printable(t->remove ? t->delete_reason
                                                      : t->keep_reason);
            char *source = log_printable(t->remove ? t->delete_source
                                                      : t->keep_source);

            printf("%s:%d: expected %s %s, the policy %s it: %s%s%s%s\n",
                   path, lineno, verdict, ref,
                   t->remove ? "deletes" : "keeps",
                   reason ? reason : "no verdict", source ? " (" : "",
                   source ? source : "", source ? ")" : "");
            free(reason);
            free(source);
            mismatches++;
        }
    }
    fclose(f);
    printf("%d passed, %d failed\n", checked - mismatches, mismatches);
    return mismatches ? EXIT_FAILED : EXIT_OK;
}

static int run(struct options *o);

/* apply: carry out a reviewed plan, skipping what drifted since. */
static int run_apply(struct options *o)
{
    struct reviewed_plan rp;
    char err[1024];
    int rc;

    if (o->arg_count != 1)
        return EXIT_USAGE;
    if (apply_load(o->args[0], &rp, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return EXIT_FAILED;
    }
    o->reviewed = &rp;
    o->arg_count = 0;
    rc = run(o);
    o->reviewed = NULL;
    apply_free(&rp);
    return rc;
}

/* restore: put a trash run back under the root. */
static int run_restore(const struct options *o)
{
    struct registry reg;
    char err[1024];
    int lock_fd = -1, status = EXIT_OK;
    long failed, restored;

    if (o->arg_count != 1)
        return EXIT_USAGE;
    if (scan_open(&reg, o->root, err, sizeof(err)) != 0) {
        log_error("%s", err);
        registry_free(&reg);
        return EXIT_FAILED;
    }
    lock_fd = remove_lock(o->root);
    if (lock_fd < 0) {
        registry_free(&reg);
        return EXIT_FAILED;
    }
    failed = trash_restore(o->args[0], reg.v2_fd, &restored, err,
                           sizeof(err));
    if (failed >= 0)
        printf("restored %ld path%s from %s\n", restored,
               restored == 1 ? "" : "s", o->args[0]);
    if (failed < 0) {
        log_error("%s", err);
        status = EXIT_FAILED;
    } else if (failed > 0) {
        log_error("%ld paths could not be restored; they stay in %s",
                  failed, o->args[0]);
        status = EXIT_PROBLEMS;
    }
    if (failed >= 0) {
        struct check_result result;

        /* What was put back supersedes an interrupted run's plan. */
        journal_remove(&reg);
        /* A later run may have removed what the restored images need. */
        if (scan_registry(&reg, err, sizeof(err)) == 0) {
            check_registry(&reg, 0, &result);
            if (reg.problem_count) {
                log_error("the tree has %zu problems after the restore (a "
                          "later run may have removed what restored images "
                          "need; restore newer trash runs first); `regprune "
                          "check` lists them", reg.problem_count);
                status = EXIT_PROBLEMS;
            }
        }
    }
    registry_free(&reg);
    close(lock_fd);
    return status;
}

/* gc --empty-trash: free the trash runs older than --older-than. */
static int run_empty_trash(const struct options *o)
{
    char err[1024];
    long removed = trash_empty(o->empty_trash, o->older_than, o->dry_run,
                               err, sizeof(err));

    if (removed < 0) {
        log_error("%s", err);
        return EXIT_FAILED;
    }
    printf("summary: command=gc dry_run=%s trash_runs_deleted=%ld\n",
           o->dry_run ? "yes" : "no", removed);
    return EXIT_OK;
}

/* explain: every verdict call on each named tag, in order. */
static int run_explain(struct options *o)
{
    struct registry reg;
    int lock_fd = -1, status;

    memset(&reg, 0, sizeof(reg));
    reg.v2_fd = -1;
    status = load(&reg, o, &lock_fd);
    for (size_t r = 0; status == 0 && r < reg.repo_count; r++)
        reg.repos[r].selected = 0;
    for (size_t i = 0; status == 0 && i < o->arg_count; i++) {
        struct repo *repo = NULL;
        if (!find_tag_arg(&reg, o->args[i], &repo)) {
            log_error("%s: no such tag; write REPO:TAG", o->args[i]);
            status = EXIT_FAILED;
        } else {
            repo->selected = 1;
        }
    }
    if (status == 0 && !o->inventory)
        read_configs(&reg);
    if (status == 0 &&
        run_policies(&reg, o, o->policies, o->policy_count) != 0)
        status = EXIT_FAILED;
    if (status == 0 && apply_in_use(&reg, o) != 0)
        status = EXIT_FAILED;
    for (size_t i = 0; status == 0 && i < o->arg_count; i++) {
        struct repo *repo;
        struct tag *t = find_tag_arg(&reg, o->args[i], &repo);

        printf("%s: %s\n", o->args[i], t->remove ? "delete" : "keep");
        for (size_t e = 0; e < t->event_count; e++) {
            char *reason = log_printable(t->events[e].reason);
            char *source = log_printable(t->events[e].source);

            printf("  %-7s %s%s%s%s\n", t->events[e].call,
                   reason ? reason : "", source ? " (" : "",
                   source ? source : "", source ? ")" : "");
            free(reason);
            free(source);
        }
        if (t->event_count == 0)
            printf("  no call named this tag: kept\n");
        else if (!t->remove && !t->keep && t->delete && repo->frozen)
            printf("  kept: the repository is frozen: %s\n", repo->frozen);
        else if (!t->remove && !t->keep)
            printf("  kept: last tag of the repository\n");
    }
    registry_free(&reg);
    if (lock_fd >= 0)
        close(lock_fd);
    return status;
}

/* diff: the tags whose verdict changes from --policy to --policy-new. */
static int run_diff(struct options *o)
{
    struct registry reg;
    uint8_t **before = NULL;
    int lock_fd = -1, status;
    size_t changed = 0;

    memset(&reg, 0, sizeof(reg));
    reg.v2_fd = -1;
    status = load(&reg, o, &lock_fd);
    if (status == 0 && select_repos(&reg, o) != 0)
        status = EXIT_FAILED;
    if (status == 0 && !o->inventory)
        read_configs(&reg);
    if (status == 0 &&
        run_policies(&reg, o, o->policies, o->policy_count) != 0)
        status = EXIT_FAILED;
    if (status == 0) {
        before = xcalloc(reg.repo_count + 1, sizeof(*before));
        for (size_t r = 0; r < reg.repo_count; r++) {
            struct repo *repo = &reg.repos[r];
            before[r] = xcalloc(repo->tag_count + 1, 1);
            for (size_t i = 0; i < repo->tag_count; i++)
                before[r][i] = repo->tags[i].remove;
            registry_reset_verdicts(repo);
        }
        if (run_policies(&reg, o, o->new_policies, o->new_policy_count) != 0)
            status = EXIT_FAILED;
    }
    for (size_t r = 0; status == 0 && r < reg.repo_count; r++) {
        const struct repo *repo = &reg.repos[r];
        for (size_t i = 0; repo->selected && i < repo->tag_count; i++) {
            const struct tag *t = &repo->tags[i];
            const char *reason = t->remove ? t->delete_reason
                                           : t->keep_reason;
            if (before[r][i] == t->remove)
                continue;
            changed++;
            printf("%s:%s: %s -> %s: %s\n", repo->name, t->name,
                   before[r][i] ? "delete" : "keep",
                   t->remove ? "delete" : "keep",
                   reason ? reason : "no verdict");
        }
    }
    if (status == 0)
        printf("summary: command=diff tags_changed=%zu\n", changed);
    for (size_t r = 0; before && r < reg.repo_count; r++)
        free(before[r]);
    free(before);
    registry_free(&reg);
    if (lock_fd >= 0)
        close(lock_fd);
    return status;
}

/*
 * Read the tree, or the inventory given with --inventory, into reg; take
 * the lock first for a run that deletes. Return 0, or an exit status.
 */
static int load(struct registry *reg, const struct options *o, int *lock_fd)
{
    char err[1024];
    int is_gc = strcmp(o->command, "gc") == 0;

    if (o->inventory) {
        memset(reg, 0, sizeof(*reg));
        if (inventory_load(reg, o->inventory, err, sizeof(err)) != 0) {
            log_error("%s", err);
            return EXIT_FAILED;
        }
        return 0;
    }
    /* Open the root first, so that a wrong --root gets no lock file. */
    if (scan_open(reg, o->root, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return EXIT_FAILED;
    }
    if (deletes(o)) {
        *lock_fd = remove_lock(o->root);
        if (*lock_fd < 0)
            return EXIT_FAILED;
    }
    if (scan_registry(reg, err, sizeof(err)) != 0 ||
        (is_gc && scan_blob_store(reg, err, sizeof(err)) != 0)) {
        log_error("%s", err);
        return EXIT_FAILED;
    }
    return 0;
}

/* Decide the tags: the policies for prune, the arguments for delete. */
static int decide(struct registry *reg, const struct options *o)
{
    int is_prune = strcmp(o->command, "prune") == 0;
    int rc;

    if (o->reviewed) {
        apply_mark_tags(o->reviewed, reg);
        read_configs(reg);
        return 0;
    }
    if (strcmp(o->command, "delete") == 0) {
        rc = mark_deletions(reg, o);
        if (rc != 0)
            return rc == EXIT_USAGE ? EXIT_USAGE : EXIT_FAILED;
    } else if (strcmp(o->command, "gc") != 0 && select_repos(reg, o) != 0) {
        return EXIT_FAILED;
    }
    /* The text plan shows nothing image configs hold, and policies that
     * read creation times, platforms or labels read the configs then. ls
     * and the JSON reports show them. */
    if (strcmp(o->command, "gc") != 0 && !o->inventory) {
        if (o->json || o->plan_out || strcmp(o->command, "ls") == 0)
            read_configs(reg);
        else
            describe_tags(reg);
    }
    if (is_prune && run_policies(reg, o, o->policies, o->policy_count) != 0)
        return EXIT_FAILED;
    return 0;
}

/* Open the audit log and the trash a run that removes writes to. */
static int open_removal_outputs(struct registry *reg, const struct options *o,
                                struct remove_options *ropts, char *err,
                                size_t err_size)
{
    if (o->audit_log) {
        int fd = open(o->audit_log, O_WRONLY | O_CREAT | O_APPEND |
                                        O_CLOEXEC, 0644);
        ropts->audit = fd >= 0 ? fdopen(fd, "a") : NULL;
        if (!ropts->audit) {
            snprintf(err, err_size, "cannot open --log file %s: %s",
                     o->audit_log, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
    }
    if (o->trash)
        return trash_open(o->trash, o->root, reg->v2_fd, ropts->run_id,
                          ropts, err, err_size);
    return 0;
}

static void close_removal_outputs(struct remove_options *ropts)
{
    if (ropts->audit)
        fclose(ropts->audit);
    ropts->audit = NULL;
    trash_close(ropts);
}

/* An upload younger than this means the registry is taking pushes. */
#define SERVING_WINDOW_SEC 600

/*
 * Warn, before a run deletes, about what can be seen of misuse: a tree
 * owned by another user, and uploads that started minutes ago, which mean
 * the registry is serving and writable.
 */
static void warn_about_misuse(const struct registry *reg)
{
    struct stat st;
    int64_t age = reg->scan_started - reg->newest_upload;

    if (fstat(reg->v2_fd, &st) == 0 && st.st_uid != geteuid())
        log_warning("%s/docker/registry/v2 belongs to uid %u, and this run "
                    "is uid %u: run regprune as the registry's user, so "
                    "that the files it writes (lock, journal, restored "
                    "paths) have the right owner",
                    reg->root, (unsigned)st.st_uid, (unsigned)geteuid());
    if (reg->newest_upload > 0 && age < SERVING_WINDOW_SEC)
        log_warning("repository %s has an upload that started %llds ago: "
                    "the registry looks like it is serving and writable; "
                    "stop it or make it read-only before deleting",
                    reg->newest_upload_repo, (long long)age);
}

/* Write the plan as the JSON report to path, for apply. */
static int write_plan(struct registry *reg, const struct plan *plan,
                      const struct report_options *ropt, const char *path)
{
    struct report_options json = *ropt;
    FILE *f = fopen(path, "w");
    int rc;

    if (!f) {
        log_error("cannot write --plan-out file %s: %s", path,
                  strerror(errno));
        return -1;
    }
    json.json = 1;
    rc = report_plan(f, reg, plan, &json);
    if (fclose(f) != 0 || rc != 0) {
        log_error("cannot write --plan-out file %s: %s", path,
                  strerror(errno));
        return -1;
    }
    return 0;
}

/* Carry out (or, in a dry run, only plan) what the tags' verdicts imply,
 * and report it. */
static int execute(struct registry *reg, const struct options *o, int status)
{
    struct plan plan;
    char err[1024];
    long journaled;
    int is_gc = strcmp(o->command, "gc") == 0 ||
                (o->reviewed && strcmp(o->reviewed->command, "gc") == 0);
    int real = !o->dry_run && !o->inventory;
    struct plan_options popt = {
        .sweep = is_gc,
        .untagged = o->reviewed ? o->reviewed->untagged : o->untagged,
        .grace = o->reviewed ? o->reviewed->grace : o->grace};
    struct report_options ropt = {.command = o->command,
                                  .dry_run = !real,
                                  .json = o->json,
                                  .now = o->now,
                                  .grace = popt.grace,
                                  .untagged = popt.untagged};

    if (real && o->trash &&
        trash_check(o->trash, o->root, reg->v2_fd, err, sizeof(err)) != 0) {
        log_error("%s; nothing was deleted", err);
        return EXIT_FAILED;
    }
    journaled = o->inventory ? 0 : journal_apply(reg, err, sizeof(err));
    if (journaled < 0) {
        log_error("%s", err);
        return EXIT_FAILED;
    }
    if (o->strict && reg->problem_count) {
        log_error("%zu problems found and --strict given; nothing was "
                  "deleted", reg->problem_count);
        return EXIT_FAILED;
    }
    if (real)
        warn_about_misuse(reg);
    plan_build(reg, &popt, &plan);
    if (o->reviewed)
        apply_restrict(o->reviewed, reg, &plan);
    plan.leftovers = reg->leftover_count;
    if (o->plan_out && write_plan(reg, &plan, &ropt, o->plan_out) != 0) {
        plan_free(&plan);
        return EXIT_FAILED;
    }
    if (real && plan_removes_anything(&plan)) {
        struct remove_options ropts = {.trash_fd = -1};
        char run_id[64], when[32];

        timeparse_format((int64_t)time(NULL), when);
        snprintf(run_id, sizeof(run_id), "regprune-%.19s-%ld", when,
                 (long)getpid());
        ropts.run_id = run_id;
        if (open_removal_outputs(reg, o, &ropts, err, sizeof(err)) != 0 ||
            journal_write(reg, &plan, err, sizeof(err)) != 0) {
            log_error("%s; nothing was deleted", err);
            close_removal_outputs(&ropts);
            plan_free(&plan);
            return EXIT_FAILED;
        }
        if (remove_execute(reg, &plan, &ropts) == 0)
            journal_remove(reg);
        journaled = 0;
        if (ropts.trash_fd >= 0)
            ropt.trash_run = xasprintf("%s/%s", o->trash, run_id);
        close_removal_outputs(&ropts);
    }
    /* A journal whose entries are all gone already has done its job. */
    if (real && journaled > 0)
        journal_remove(reg);
    if (report_plan(stdout, reg, &plan, &ropt) != 0)
        log_error("cannot write the report: %s", strerror(errno));
    free((char *)ropt.trash_run);
    plan_free(&plan);
    if (reg->problem_count && status == EXIT_OK)
        status = EXIT_PROBLEMS;
    return status;
}

static int run(struct options *o)
{
    struct registry reg;
    int is_ls = strcmp(o->command, "ls") == 0;
    int is_gc = strcmp(o->command, "gc") == 0;
    int lock_fd = -1, status;

    memset(&reg, 0, sizeof(reg));
    reg.v2_fd = -1;
    status = load(&reg, o, &lock_fd);
    if (status == 0)
        status = decide(&reg, o);
    if (status != 0)
        goto out;
    if (is_ls) {
        if (report_inventory(stdout, &reg, o->json, o->sort) != 0)
            status = EXIT_FAILED;
        else if (reg.problem_count)
            status = EXIT_PROBLEMS;
        goto out;
    }
    if (!is_gc && apply_in_use(&reg, o) != 0) {
        status = EXIT_FAILED;
        goto out;
    }
    if (o->expect) {
        status = check_expectations(&reg, o->expect);
        goto out;
    }
    /* A dry run still shows the plan that tripped a breaker. */
    if (!is_gc && check_breakers(&reg, o) != 0) {
        status = EXIT_FAILED;
        if (!o->dry_run && !o->inventory)
            goto out;
    }
    status = execute(&reg, o, status);
out:
    registry_free(&reg);
    if (lock_fd >= 0)
        close(lock_fd);
    return status;
}

/* Print the help of command, or the general help; return the status. */
static int print_help(const char *command)
{
    for (size_t i = 0; command &&
                       i < sizeof(command_help) / sizeof(command_help[0]);
         i++) {
        if (strcmp(command, command_help[i].name) == 0) {
            printf("%s\nregprune --help lists every option.\n",
                   command_help[i].text);
            return EXIT_OK;
        }
    }
    if (command)
        return usage_error("unknown command '%s'", command);
    printf("%s%s", usage_text, help_text);
    return EXIT_OK;
}

/*
 * Read --config: the root unless --root names one, and a warning before a
 * run that deletes while the registry is not read-only. Return -1 to go
 * on, or an exit status.
 */
static int use_config(struct options *o, struct registry_config *cfg)
{
    char err[1024];
    if (config_load(o->config, environ, cfg, err, sizeof(err)) != 0) {
        log_error("%s; nothing was deleted", err);
        return EXIT_FAILED;
    }
    if (!o->root) {
        o->root = cfg->root_directory;
        log_info("storage root %s (from %s)", cfg->root_directory,
                 cfg->root_source);
    } else if (strcmp(o->root, cfg->root_directory) != 0) {
        log_warning("--root %s differs from %s in %s", o->root,
                    cfg->root_directory, cfg->root_source);
    }
    if (deletes(o) && !cfg->readonly)
        log_warning("%s: storage.maintenance.readonly is not enabled; stop "
                    "the registry, or set readonly to {enabled: true} and "
                    "restart it, before deleting",
                    cfg->path);
    return -1;
}

int main(int argc, char **argv)
{
    struct options o = {
        .grace = 3600,
        .max_instructions = 100000000,
        .max_memory = (size_t)512 * 1024 * 1024,
        .max_delete = -1,
        .policy_timeout = 60,
        .older_than = -1,
        .max_delete_fraction = -1,
    };
    struct registry_config cfg;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    o.now = (int64_t)time(NULL);
#ifdef M_ARENA_MAX
    /* One malloc arena for every thread, so that the workers' short-lived
     * read buffers reuse memory the main thread freed. Arenas of their own
     * added 13% to the peak RSS of a dry run (bench/memory.sh, scale 0.3)
     * and made it no faster. */
    mallopt(M_ARENA_MAX, 1);
#endif
    pool_jobs = pool_default_jobs();
    /* Seed jansson's hashing here, before any worker parses JSON. */
    json_object_seed(0);
    rc = parse_args(argc, argv, &o);
    if (rc < 0 && o.help) {
        rc = print_help(o.command);
    } else if (rc < 0) {
        rc = check_command(&o);
    }
    if (rc < 0 && o.config)
        rc = use_config(&o, &cfg);
    if (rc < 0 && o.command) {
        if (!o.root)
            o.root = getenv("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY");
        if (!o.root || !*o.root)
            o.root = "/var/lib/registry";
        if (strcmp(o.command, "check") == 0)
            rc = run_check(&o);
        else if (strcmp(o.command, "explain") == 0)
            rc = run_explain(&o);
        else if (strcmp(o.command, "diff") == 0)
            rc = run_diff(&o);
        else if (strcmp(o.command, "restore") == 0)
            rc = run_restore(&o);
        else if (strcmp(o.command, "apply") == 0)
            rc = run_apply(&o);
        else if (o.empty_trash)
            rc = run_empty_trash(&o);
        else
            rc = run(&o);
    }
    config_free(&cfg);
    for (size_t i = 0; i < o.param_count; i++)
        free((char *)o.params[i].name);
    free(o.params);
    free(o.policies);
    free(o.new_policies);
    free(o.args);
    if ((fflush(stdout) != 0 || ferror(stdout)) && rc != EXIT_USAGE) {
        log_error("cannot write the report to standard output: %s",
                  strerror(errno));
        rc = EXIT_FAILED;
    }
    return rc;
}
