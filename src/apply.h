/*
 * Reviewed plans: `--dry-run --plan-out PLAN.json` saves a plan, and
 * `regprune apply PLAN.json` carries out no more than that plan. The run
 * plans afresh from the tree as it is now and removes only what both the
 * fresh plan and the reviewed one remove; what drifted is skipped and
 * reported.
 */
#ifndef REGPRUNE_APPLY_H
#define REGPRUNE_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "plan.h"
#include "registry.h"

struct reviewed_plan {
    char *command;  /* "prune", "delete" or "gc" */
    int untagged;   /* gc --untagged */
    int64_t grace;  /* seconds */
    char **keys;    /* sorted: one per item the plan removes */
    size_t key_count;
};

/*
 * Read PLAN.json, written by --plan-out. Return 0, or -1 with err naming
 * the file and the value at fault.
 */
int apply_load(const char *path, struct reviewed_plan *out, char *err,
               size_t err_size);

/*
 * Mark for removal each tag the reviewed plan deletes whose link still
 * names the digest it named then, and report the others; mark the
 * revisions and layer links it removes as candidates for plan_build.
 */
void apply_mark_tags(const struct reviewed_plan *rp, struct registry *reg);

/*
 * After plan_build: keep every revision, layer link, upload and blob the
 * reviewed plan does not remove, then drop from plan the blobs that what
 * stays now needs.
 */
void apply_restrict(const struct reviewed_plan *rp, struct registry *reg,
                    struct plan *plan);

void apply_free(struct reviewed_plan *rp);

#endif
