/*
 * Lua retention policies: a sandboxed Lua 5.4 state that loads policy
 * files and calls their policy(repo) function per repository, recording
 * keep and delete verdicts in the tags.
 */
#ifndef REGPRUNE_POLICY_H
#define REGPRUNE_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"

struct policy_param {
    const char *name;
    const char *value;
};

struct policy_options {
    const char *const *files;
    size_t file_count;
    const struct policy_param *params;
    size_t param_count;
    int64_t now;              /* regprune.now, Unix seconds */
    int allow_empty;          /* may delete the last tag of a repository */
    uint64_t max_instructions; /* per policy(repo) call */
    size_t max_memory;         /* bytes for the whole Lua state */
    int64_t timeout_sec;       /* wall clock per policy call, 0 for none */
    int record_events;         /* keep every verdict call, for explain */
};

struct policy;

/*
 * Create the sandbox and run each policy file's top level. Return the
 * policy, or NULL with *err set to a message the caller frees.
 */
struct policy *policy_load(const struct policy_options *opt, char **err);

/*
 * Call every policy file's policy(repo) in order for repo and settle each
 * tag's verdict in tag->remove. Return 0, or -1 with *err set to a message
 * (with the file, line, repository and a traceback) the caller frees.
 */
int policy_evaluate(struct policy *p, struct registry *reg, struct repo *repo,
                    char **err);

void policy_free(struct policy *p);

#endif
