/*
 * Shared between policy.c (sandbox, loading, verdicts) and policy_lib.c
 * (the regprune.* functions). Nothing outside those two files uses it.
 */
#ifndef REGPRUNE_POLICY_INTERNAL_H
#define REGPRUNE_POLICY_INTERNAL_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "rx.h"

struct policy {
    lua_State *L;
    const struct policy_options *opt;
    size_t memory_used;
    uint64_t instructions;
    int budget_exceeded;
    int memory_exceeded;
    int loading;
    int *env_refs; /* one environment table per policy file */
    struct rx_cache *rx;
    /* The repository being evaluated. */
    struct registry *reg;
    struct repo *repo;
    int lookup_ref; /* tag table or name -> tag index (1-based) */
    /* A policy read a creation time, platform or label: read each later
     * repository's image configs before its policy call. */
    int want_configs;
    int known_params_ref; /* parameter name -> policy that declared it,
                          * or "regprune.params" for one read there */
    char *policy_names;   /* of the files that declared parameters */
};

/* Return the policy that owns L. */
struct policy *policy_of(lua_State *L);

/*
 * Make sure the image configs of repo are read, so that its tags' creation
 * times, platforms and labels are known.
 */
void policy_need_configs(struct policy *p, struct repo *repo);

/*
 * Return the index (0-based) in p->repo->tags of the tag given as argument
 * arg, a tag table or a tag name; raise a Lua error naming fname otherwise.
 */
size_t policy_check_tag(lua_State *L, struct policy *p, int arg,
                        const char *fname);

/* Push the tag table of p->repo->tags[index]. */
void policy_push_tag(lua_State *L, struct policy *p, size_t index);

/* Replace the table on top of the stack with a read-only view of it. */
void policy_make_readonly(lua_State *L);

/* Reject --set names that no file's regprune.parameters declared. Return
 * 0, or -1 with *err set to a message the caller frees. */
int policy_lib_check_params(struct policy *p, char **err);

/* Push the regprune table: clock, parameters and helper functions. */
void policy_lib_open(lua_State *L, const struct policy_options *opt);

#endif
